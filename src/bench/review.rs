//! `hozon bench review DIR`: how much typing the review desk saves. The synthetic set is
//! ingested into a fresh store (the real pipeline), half the applicants are put into the case
//! register (the subsidy system's export), and a careful reviewer works through the queue
//! through the same calls the review screen makes (`review_view`, `submit_review`): a field
//! read right is accepted with Enter, a wrong one is retyped from the truth file (a corrected
//! My Number twice), and the case is confirmed when it was not linked automatically. The
//! baseline is today's contract keying: every field typed from the paper.
//!
//! Keystroke model (the same for both): ASCII 1 per character; with a romaji IME a kana is 2
//! keys, a kanji 4 (its share of the reading), and each run of kana/kanji 2 more (convert,
//! confirm); a tick box is 1; each field ends with Enter or Tab. Reviewer seconds follow the
//! keystroke-level model: 0.28 s per keystroke plus 1.2 s per field to compare value and image
//! (the keyer spends the same reading the paper).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::app::{CaseChoice, Hozon};
use crate::auth::{Actor, Role};
use crate::cases::{CaseFields, CaseStatus};
use crate::drafts::review::Submission;
use crate::forms::template::FieldType;
use crate::store::RecordId;

const KEY_SECONDS: f64 = 0.28;
const LOOK_SECONDS: f64 = 1.2;

#[derive(Debug, Default, Serialize)]
pub struct Figures {
    pub forms: usize,
    pub fields: usize,
    pub keystrokes_per_form: f64,
    pub baseline_keystrokes_per_form: f64,
    pub ratio: f64,
    pub seconds_per_form: f64,
    pub baseline_seconds_per_form: f64,
    /// Measured: `review_view`, every field's image, `submit_review`.
    pub api_ms_per_form: f64,
    pub accepted_fields: usize,
    pub corrected_fields: usize,
    /// After review, fields that still differ from the truth (should be 0).
    pub wrong_after_review: usize,
    pub auto_linked: usize,
    /// Automatic links by how they were made (recipient number, My Number, other sheet, scored).
    pub auto_by: BTreeMap<String, usize>,
    pub wrong_auto_links: usize,
    pub reviewer_linked: usize,
    pub provisional_cases: usize,
    pub ingest_seconds: f64,
}

/// Keys to type `s` from scratch (see the module comment).
pub fn typing_cost(s: &str) -> usize {
    let mut keys = 0;
    let mut in_run = false;
    for c in s.chars() {
        let japanese = matches!(c, '\u{3041}'..='\u{30FF}' | '\u{4E00}'..='\u{9FFF}' | '々' | '〆');
        if japanese && !in_run {
            keys += 2;
        }
        in_run = japanese;
        keys += match c {
            '\u{4E00}'..='\u{9FFF}' | '々' | '〆' => 4,
            'ー' => 1,
            '\u{3041}'..='\u{30FF}' => 2,
            _ => 1,
        };
    }
    keys
}

/// Keys to key a field from scratch, as the contractor does.
fn baseline_cost(kind: FieldType, truth: &str) -> usize {
    match kind {
        FieldType::Checkbox | FieldType::Choice => 2,
        _ => typing_cost(truth) + 1,
    }
}

/// Keys to put `truth` into the review screen's box (replacing the selected reading).
fn retype_cost(kind: FieldType, truth: &str) -> usize {
    match kind {
        FieldType::Checkbox => 2,
        FieldType::MyNumber => 2 * typing_cost(truth) + 2,
        _ => typing_cost(truth) + 1,
    }
}

fn comparable(kind: FieldType, s: &str) -> String {
    super::eval::comparable(kind, s)
}

pub(crate) struct Truth {
    submission: u64,
    pub(crate) fields: BTreeMap<String, String>,
}

pub(crate) fn truth_of(dir: &Path) -> anyhow::Result<Vec<(String, Truth)>> {
    let path = dir.join("truth.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value =
                serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))?;
            let fields = v["fields"]
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default();
            Ok((
                v["file"].as_str().context("truth line without file")?.to_owned(),
                Truth { submission: v["submission"].as_u64().unwrap_or(0), fields },
            ))
        })
        .collect()
}

/// The subsidy system's export: every applicant who is already a recipient (a renewal or a
/// change writes the recipient number on the form), with the My Number for every other one,
/// so number, hash, sheet and scored links all occur; first applications (新規) are new.
fn register(h: &Hozon, truth: &[(String, Truth)]) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut rows = BTreeMap::new();
    for (_, t) in truth {
        let f = |n: &str| t.fields.get(n).cloned().unwrap_or_default();
        if f("recipient_no").is_empty() || rows.contains_key(&t.submission) {
            continue;
        }
        let Some(birth_date) = crate::drafts::parse_date(&f("birth_date")) else { continue };
        let mn = truth
            .iter()
            .find(|(_, o)| o.submission == t.submission && o.fields.contains_key("my_number"))
            .map(|(_, o)| o.fields["my_number"].clone())
            .filter(|_| t.submission % 2 == 1);
        rows.insert(
            t.submission,
            CaseFields {
                recipient_no: f("recipient_no"),
                application_no: format!("R8-{:05}", t.submission),
                name: f("name"),
                kana: f("kana"),
                birth_date,
                address: f("address"),
                disease: f("disease"),
                valid_from: None,
                valid_to: None,
                status: CaseStatus::UnderReview,
                my_number: mn,
            },
        );
    }
    let admin = Actor::with_role("bench-import", Role::Reviewer);
    h.upsert_cases(&admin, rows.values().cloned().collect(), "bench", Vec::new())?;
    Ok(rows.into_iter().map(|(s, c)| (s, c.recipient_no)).collect())
}

/// Ingests `dir` into `h` and reviews every draft as a careful reviewer.
pub fn run(h: &Hozon, dir: &Path, jobs: usize, progress: bool) -> anyhow::Result<Figures> {
    let truth = truth_of(dir)?;
    let started = Instant::now();
    let opts = crate::capture::ingest::IngestOptions { jobs, keep_files: true, progress, batch: None };
    crate::capture::ingest::ingest_dir(h, &Actor::operator("bench"), dir, &opts)?;
    let mut f = Figures { ingest_seconds: started.elapsed().as_secs_f64(), ..Default::default() };
    let mut expected = register(h, &truth)?;
    let by_record: BTreeMap<RecordId, &Truth> = truth
        .iter()
        .filter_map(|(file, t)| {
            let bytes = std::fs::read(dir.join(file)).ok()?;
            let id = h.store.dedupe_lookup(&h.store.scan_fingerprint(&bytes)).ok()??;
            Some((id, t))
        })
        .collect();
    let reviewer = Actor::with_role("bench-reviewer", Role::Reviewer);
    let (mut keys, mut baseline, mut api) = (0usize, 0usize, 0.0f64);
    let filter = crate::app::QueueFilter::default();
    let (_, queue) = h.review_queue(&reviewer, &filter, usize::MAX)?;
    for item in queue {
        let Some(t) = by_record.get(&item.id) else { continue };
        let t0 = Instant::now();
        let view = h.review_view(&reviewer, &item.id)?;
        // The screen loads every field's image.
        for f in &view.draft.fields {
            h.field_image(&reviewer, &item.id, &f.name)?;
        }
        api += t0.elapsed().as_secs_f64();
        let mut sub = Submission::default();
        for &i in &view.order {
            let d = &view.draft.fields[i];
            let want = t.fields.get(&d.name).cloned().unwrap_or_default();
            f.fields += 1;
            baseline += baseline_cost(d.kind, &want);
            if comparable(d.kind, d.value_or_raw()) == comparable(d.kind, &want) {
                keys += 1;
                f.accepted_fields += 1;
            } else {
                keys += retype_cost(d.kind, &want);
                f.corrected_fields += 1;
                if d.kind == FieldType::MyNumber {
                    sub.my_number_confirm = want.clone();
                }
                sub.values.insert(d.name.clone(), want);
            }
        }
        // The case: confirmed unless linked automatically to the right one.
        let want_case = expected.get(&t.submission).cloned();
        let auto = view.case_match.automatic();
        let choice = match (&auto, &want_case) {
            _ if view.draft.case.is_some() => CaseChoice::Automatic,
            (Some((got, how)), Some(want)) if got == want => {
                f.auto_linked += 1;
                let key = serde_json::to_value(how).ok().and_then(|v| v["by"].as_str().map(str::to_owned));
                *f.auto_by.entry(key.unwrap_or_default()).or_default() += 1;
                CaseChoice::Automatic
            }
            (a, Some(want)) => {
                f.wrong_auto_links += usize::from(a.is_some());
                f.reviewer_linked += 1;
                // Tab to the list, arrow down to the case (or type its number if not listed).
                keys += match view.case_match.candidates.iter().position(|c| &c.recipient_no == want) {
                    Some(p) => 1 + p + 1,
                    None => 1 + typing_cost(want) + 1,
                };
                CaseChoice::Case(want.clone())
            }
            (_, None) => {
                f.provisional_cases += 1;
                keys += 1 + view.case_match.candidates.len() + 1;
                CaseChoice::Provisional
            }
        };
        let t0 = Instant::now();
        h.submit_review(&reviewer, &item.id, &sub, &choice)?;
        api += t0.elapsed().as_secs_f64();
        // A provisional case is the applicant's case for their other pages.
        if choice == CaseChoice::Provisional {
            let rec = h.store.record(&item.id)?.context("reviewed record")?;
            if let Some(link) = h.draft_of(&rec)?.and_then(|d| d.case) {
                expected.insert(t.submission, link.recipient_no);
            }
        }
        // Check what the record now says.
        let rec = h.store.record(&item.id)?.context("reviewed record")?;
        let d = h.draft_of(&rec)?.context("reviewed draft")?;
        for field in &d.fields {
            let want = t.fields.get(&field.name).cloned().unwrap_or_default();
            if comparable(field.kind, field.value_or_raw()) != comparable(field.kind, &want) {
                f.wrong_after_review += 1;
            }
        }
        f.forms += 1;
    }
    anyhow::ensure!(f.forms > 0, "no recognised forms in {}", dir.display());
    let n = f.forms as f64;
    f.keystrokes_per_form = keys as f64 / n;
    f.baseline_keystrokes_per_form = baseline as f64 / n;
    f.ratio = f.baseline_keystrokes_per_form / f.keystrokes_per_form.max(1e-9);
    let fields_per_form = f.fields as f64 / n;
    f.seconds_per_form = f.keystrokes_per_form * KEY_SECONDS + fields_per_form * LOOK_SECONDS;
    f.baseline_seconds_per_form = f.baseline_keystrokes_per_form * KEY_SECONDS + fields_per_form * LOOK_SECONDS;
    f.api_ms_per_form = api * 1000.0 / n;
    Ok(f)
}

pub fn print(f: &Figures) {
    println!("hozon bench review — {} forms, {} fields", f.forms, f.fields);
    println!(
        "  keystrokes per form   review {:>7.1}   keying from scratch {:>7.1}   ({:.1}× fewer)",
        f.keystrokes_per_form, f.baseline_keystrokes_per_form, f.ratio
    );
    println!(
        "  seconds per form      review {:>7.1}   keying from scratch {:>7.1}   (KLM model)",
        f.seconds_per_form, f.baseline_seconds_per_form
    );
    println!(
        "  fields accepted {} / corrected {}; wrong after review {}",
        f.accepted_fields, f.corrected_fields, f.wrong_after_review
    );
    println!(
        "  case links: automatic {} (wrong {}), confirmed by the reviewer {}, provisional cases {}",
        f.auto_linked, f.wrong_auto_links, f.reviewer_linked, f.provisional_cases
    );
    let by: Vec<String> = f.auto_by.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("  automatic links by: {}", by.join(", "));
    println!("  review calls {:.1} ms per form; ingest {:.1} s", f.api_ms_per_form, f.ingest_seconds);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_costs_follow_the_ime_model() {
        assert_eq!(typing_cost("191-0022"), 8);
        assert_eq!(typing_cost("ヤマダ"), 2 + 6);
        assert_eq!(typing_cost("山田　太郎"), 2 + 8 + 1 + 2 + 8);
        assert_eq!(baseline_cost(FieldType::Checkbox, "true"), 2);
        assert_eq!(retype_cost(FieldType::MyNumber, "123456789018"), 26);
    }
}
