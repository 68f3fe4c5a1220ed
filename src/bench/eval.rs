//! `hozon eval DIR`: how well the draft pipeline reads a synthetic set, against its
//! `truth.jsonl`. Runs the same recognition as ingest (classification, registration, field
//! reading, normalisation, checks, two-sheet reconciliation) without storing anything, and
//! counts exact matches per field type, My Number outcomes and classification.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::drafts::{self, Draft};
use crate::forms::template::{FieldType, Template};
use crate::ocr::Recognizer;

/// Exact matches out of a count.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tally {
    pub exact: usize,
    pub total: usize,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        self.total += 1;
        self.exact += usize::from(ok);
    }
    pub fn rate(&self) -> Option<f64> {
        (self.total > 0).then(|| self.exact as f64 / self.total as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub engine: String,
    pub pages: usize,
    pub classification_accuracy: f64,
    pub field_accuracy: Option<f64>,
    pub printed_field_accuracy: Option<f64>,
    /// Over the fields truth.jsonl marks as handwritten.
    pub handwritten_field_accuracy: Option<f64>,
    /// Checkboxes and choices (each choice counts once: the right option or not).
    pub checkbox_accuracy: Option<f64>,
    pub my_number_correct: usize,
    pub my_number_flagged: usize,
    pub my_number_silent_errors: usize,
    /// Names, readings and addresses read: wrong without a flag is what a reviewer would pass.
    pub name_address_fields: usize,
    pub name_address_silent_errors: usize,
    pub name_address_silent_rate: Option<f64>,
    pub by_type: BTreeMap<String, Tally>,
    /// Per scanning condition axis and value (`rotation 90`, `dpi 200`, `mode bilevel`), for
    /// sets made with `synth --conditions`.
    pub by_condition: BTreeMap<String, ConditionTally>,
    pub flagged_fields: usize,
    pub seconds: f64,
    /// Fields read wrong (not in the JSON figures: they would carry the synthetic values).
    #[serde(skip)]
    pub misses: Vec<Miss>,
}

/// How one scanning condition fared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConditionTally {
    pub pages: usize,
    pub classified: usize,
    /// Text fields (not boxes).
    pub fields: Tally,
    /// The handwritten ones among them.
    pub handwritten: Tally,
    pub boxes: Tally,
}

/// A field read wrong, for the `--misses` listing.
#[derive(Debug, Clone)]
pub struct Miss {
    pub file: String,
    pub field: String,
    pub want: String,
    pub got: String,
    pub flagged: bool,
}

fn type_key(t: FieldType) -> String {
    serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

pub(crate) fn comparable(kind: FieldType, s: &str) -> String {
    let v = drafts::normalise(kind, s).unwrap_or_else(|_| s.to_owned());
    v.nfkc().filter(|c| !c.is_whitespace()).collect()
}

/// Runs the evaluation of `dir` with one recognizer.
pub fn run(dir: &Path, templates: &[Template], ocr: &mut dyn Recognizer) -> anyhow::Result<Figures> {
    let truth_path = dir.join("truth.jsonl");
    let truth_text =
        std::fs::read_to_string(&truth_path).with_context(|| format!("reading {}", truth_path.display()))?;
    let truth: Vec<serde_json::Value> = truth_text
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{} line {}", truth_path.display(), i + 1)))
        .collect::<anyhow::Result<_>>()?;
    let started = Instant::now();
    let mut drafts: Vec<Option<Draft>> = Vec::with_capacity(truth.len());
    for t in &truth {
        let file = dir.join(t["file"].as_str().context("truth line without file")?);
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let page = crate::capture::decode_page(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        drafts.push(crate::forms::read_scan(&page.gray, page.dpi, templates, ocr)?.reading.map(|r| {
            let tpl = templates.iter().find(|t| t.id() == r.template).expect("template of a reading");
            drafts::from_reading(&r, tpl)
        }));
    }
    // Sheet 1 then sheet 2 of the same submission: reconciled, as for a scanned set.
    drafts::reconcile_pairs(&mut drafts, |a, b| truth[a]["submission"] == truth[b]["submission"]);
    let seconds = started.elapsed().as_secs_f64();
    let mut f = Figures {
        engine: ocr.name().to_owned(),
        pages: truth.len(),
        classification_accuracy: 0.0,
        field_accuracy: None,
        printed_field_accuracy: None,
        handwritten_field_accuracy: None,
        checkbox_accuracy: None,
        my_number_correct: 0,
        my_number_flagged: 0,
        my_number_silent_errors: 0,
        name_address_fields: 0,
        name_address_silent_errors: 0,
        name_address_silent_rate: None,
        by_type: BTreeMap::new(),
        by_condition: BTreeMap::new(),
        flagged_fields: 0,
        seconds,
        misses: Vec::new(),
    };
    let (mut all, mut printed, mut handwritten, mut boxes, mut classified) =
        (Tally::default(), Tally::default(), Tally::default(), Tally::default(), 0);
    for (t, draft) in truth.iter().zip(&drafts) {
        // The condition tallies this page counts in (none for a set without conditions).
        let mut conditions: Vec<String> = match t.get("scan") {
            Some(scan) => ["rotation", "dpi", "mode"]
                .iter()
                .filter_map(|axis| {
                    let v = scan.get(if *axis == "rotation" { "quarter_turns" } else { axis })?;
                    Some(match (*axis, v.as_u64()) {
                        ("rotation", Some(q)) => format!("rotation {}", q * 90),
                        (_, Some(n)) => format!("{axis} {n}"),
                        _ => format!("{axis} {}", v.as_str().unwrap_or("?")),
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        if t["typed"] == true {
            conditions.push("typed (Excel edition)".into());
        } else if let Some(hand) = t.get("hand").and_then(|h| h.as_str()) {
            conditions.push(format!("handwriting {hand}"));
        }
        let tally = |f: &mut Figures, each: &dyn Fn(&mut ConditionTally)| {
            for c in &conditions {
                each(f.by_condition.entry(c.clone()).or_default());
            }
        };
        tally(&mut f, &|c| c.pages += 1);
        let form = match t["form"].as_str().unwrap_or_default() {
            "my_number" => "my_number_form",
            other => other,
        };
        let page_miss = |got: String| Miss {
            file: t["file"].as_str().unwrap_or_default().to_owned(),
            field: "(form)".into(),
            want: form.to_owned(),
            got,
            flagged: true,
        };
        // An attachment is right when no form claims it (it goes to the classification queue).
        if form == crate::synth::ATTACHMENT {
            match draft {
                None => {
                    classified += 1;
                    tally(&mut f, &|c| c.classified += 1);
                }
                Some(d) => f.misses.push(page_miss(d.template.clone())),
            }
            continue;
        }
        let Some(d) = draft else {
            f.misses.push(page_miss("unclassified".into()));
            continue;
        };
        if d.form != form || d.sheet.map(u64::from) != t["sheet"].as_u64() {
            f.misses.push(page_miss(d.template.clone()));
            continue;
        }
        classified += 1;
        tally(&mut f, &|c| c.classified += 1);
        for field in &d.fields {
            let Some(want) = t["fields"].get(&field.name).and_then(|v| v.as_str()) else { continue };
            let ok = comparable(field.kind, want) == comparable(field.kind, field.value_or_raw());
            f.by_type.entry(type_key(field.kind)).or_default().add(ok);
            f.flagged_fields += usize::from(field.flagged());
            let miss = || Miss {
                file: t["file"].as_str().unwrap_or_default().to_owned(),
                field: field.name.clone(),
                want: want.to_owned(),
                got: field.value_or_raw().to_owned(),
                flagged: field.flagged(),
            };
            if matches!(field.kind, FieldType::Checkbox | FieldType::Choice) {
                // Boxes are read by ink, not characters: their own figure.
                boxes.add(ok);
                tally(&mut f, &|c| c.boxes.add(ok));
                if !ok {
                    f.misses.push(miss());
                }
                continue;
            }
            all.add(ok);
            tally(&mut f, &|c| c.fields.add(ok));
            let hand = t.get("handwritten").and_then(|h| h.get(&field.name)).and_then(|v| v.as_bool()).unwrap_or(false);
            if hand {
                handwritten.add(ok);
                tally(&mut f, &|c| c.handwritten.add(ok));
            } else {
                printed.add(ok)
            };
            if NAME_ADDRESS.contains(&field.name.as_str()) {
                f.name_address_fields += 1;
                f.name_address_silent_errors += usize::from(!ok && !field.flagged());
            }
            if !ok {
                f.misses.push(miss());
            }
            if field.kind == FieldType::MyNumber {
                match (field.flagged(), field.value == want) {
                    (true, _) => f.my_number_flagged += 1,
                    (false, true) => f.my_number_correct += 1,
                    (false, false) => f.my_number_silent_errors += 1,
                }
            }
        }
    }
    f.classification_accuracy = classified as f64 / f.pages.max(1) as f64;
    f.field_accuracy = all.rate();
    f.printed_field_accuracy = printed.rate();
    f.handwritten_field_accuracy = handwritten.rate();
    f.checkbox_accuracy = boxes.rate();
    f.name_address_silent_rate =
        (f.name_address_fields > 0).then(|| f.name_address_silent_errors as f64 / f.name_address_fields as f64);
    Ok(f)
}

/// Truth fields holding a person's name, its reading or an address.
const NAME_ADDRESS: [&str; 3] = ["name", "kana", "address"];

/// Prints the readable table for one engine.
pub fn print(f: &Figures) {
    let pct = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{:.2}%", v * 100.0));
    println!("hozon eval — engine {}, {} pages in {:.1} s", f.engine, f.pages, f.seconds);
    println!("  classification         {:>8}", pct(Some(f.classification_accuracy)));
    println!("  fields exact           {:>8}", pct(f.field_accuracy));
    println!("    printed              {:>8}", pct(f.printed_field_accuracy));
    println!("    handwritten          {:>8}", pct(f.handwritten_field_accuracy));
    for (k, t) in &f.by_type {
        println!("    {k:<20} {:>8}  ({}/{})", pct(t.rate()), t.exact, t.total);
    }
    println!("  checkboxes             {:>8}", pct(f.checkbox_accuracy));
    println!(
        "  My Number: correct {}, flagged {}, silently wrong {}",
        f.my_number_correct, f.my_number_flagged, f.my_number_silent_errors
    );
    println!(
        "  names/addresses: {} read, silently wrong {} ({})",
        f.name_address_fields,
        f.name_address_silent_errors,
        pct(f.name_address_silent_rate)
    );
    println!("  flagged fields         {:>8}", f.flagged_fields);
    if !f.by_condition.is_empty() {
        println!("  by condition           pages  classified  fields exact  handwritten  boxes exact");
        for (k, c) in &f.by_condition {
            println!(
                "    {k:<20} {:>4}  {:>10}  {:>12}  {:>11}  {:>11}",
                c.pages,
                pct(Some(c.classified as f64 / c.pages.max(1) as f64)),
                pct(c.fields.rate()),
                pct(c.handwritten.rate()),
                pct(c.boxes.rate())
            );
        }
    }
}
