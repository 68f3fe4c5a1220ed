//! `hozon bench export --forms N`: a week's intake of reviewed applications made into the
//! subsidy system's input data. Setup (not timed): `--ocr-sample K` synthetic submissions go
//! through the real pipeline (synth scans, ingest, a careful reviewer as `bench review`), and
//! the rest are stored as verified drafts straight from synthetic applicants (both sheets and
//! the My Number form, in batches per municipality). Timed: the export run alone (the pool
//! found, every row built and checked, the file written and zipped, the run sealed). Then the
//! ZIP is opened with its password, the file read back with the layout and every exported
//! field compared with the truth: `field_exact`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use serde::Serialize;

use super::dispose::{BulkPage, store_bulk};
use crate::app::Hozon;
use crate::auth::Actor;
use crate::drafts::review::{Review, ReviewStatus};
use crate::drafts::{Draft, DraftField};
use crate::export::format;
use crate::forms::template::{FieldType, Template};
use crate::store::{BlobRole, RecordId};

#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub forms: usize,
    pub ocr_sample: usize,
    pub rows: usize,
    pub held: usize,
    /// Why rows were held back, with how many.
    pub held_reasons: BTreeMap<String, usize>,
    pub seconds: f64,
    pub rows_per_s: f64,
    pub setup_seconds: f64,
    pub fields: usize,
    pub fields_exact: usize,
    pub field_exact: f64,
    pub zip_bytes: u64,
}

/// Truth per record: its fields as written on the paper.
pub type Truth = BTreeMap<RecordId, BTreeMap<String, String>>;

fn person_value(p: &crate::synth::Person, name: &str) -> String {
    match name {
        "name" => p.name.clone(),
        "kana" => p.kana.clone(),
        "sex" => p.sex.clone(),
        "birth_date" => p.birth_date.clone(),
        "postal_code" => p.postal_code.clone(),
        "address" => p.address.clone(),
        "phone" => p.phone.clone(),
        "insurer_number" => p.insurer_number.clone(),
        "insured_symbol" => p.insured_symbol.clone(),
        "insured_number" => p.insured_number.clone(),
        "application_type" => p.application_type.clone(),
        "recipient_no" => p.recipient_no.clone(),
        "high_cost" => p.high_cost.to_string(),
        "ventilator" => p.ventilator.to_string(),
        "my_number" => p.my_number.clone(),
        "disease" => p.disease.clone(),
        "application_date" => p.application_date.clone(),
        _ => String::new(),
    }
}

/// A verified draft of `t` saying what `p` wrote.
fn verified_draft(t: &Template, p: &crate::synth::Person, pair: Option<&RecordId>) -> Draft {
    let fields = t
        .fields
        .iter()
        .map(|f| {
            let raw = person_value(p, &f.name);
            DraftField {
                name: f.name.clone(),
                label: f.label.clone(),
                kind: f.kind,
                value: crate::drafts::normalise(f.kind, &raw).unwrap_or_default(),
                raw,
                confidence: 1.0,
                flags: Vec::new(),
                rect: [0; 4],
            }
        })
        .collect();
    Draft {
        template: t.id(),
        title: t.title.clone(),
        form: t.form.clone(),
        sheet: t.sheet,
        fields,
        pair: pair.map(|p| p.to_string()),
        review: Some(Review {
            status: ReviewStatus::Verified,
            by: "bench".into(),
            at: chrono::Utc::now(),
            second_look: Vec::new(),
            corrections: Vec::new(),
        }),
        ..Default::default()
    }
}

/// Stores `n` reviewed applications (both sheets and the My Number form each), in batches
/// of 100 per municipality; returns their truth.
pub fn populate(h: &Hozon, n: usize, progress: &indicatif::ProgressBar) -> anyhow::Result<Truth> {
    let find = |form: &str, sheet: Option<u8>| {
        h.forms.iter().find(|t| t.form == form && t.sheet == sheet).ok_or_else(|| anyhow::anyhow!("template {form}"))
    };
    let (t1, t2, tm) = (find("application", Some(1))?, find("application", Some(2))?, find("my_number_form", None)?);
    let reference = crate::synth::people::Reference::load();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let op = Actor::operator("bench");
    let mut truth = Truth::new();
    let now = chrono::Utc::now();
    for start in (0..n).step_by(100) {
        let people: Vec<_> =
            (start..n.min(start + 100)).map(|_| crate::synth::people::person(&reference, &mut rng)).collect();
        let new = crate::capture::batch::NewBatch {
            municipality: people[0].city.clone(),
            received_on: crate::jp::today().to_string(),
            channel: "交換便".into(),
            expected_pages: (people.len() * 3).to_string(),
            note: "bench".into(),
        };
        let batch = h.create_batch(&op, &new)?.id;
        let mut pages = Vec::with_capacity(people.len() * 3);
        for p in &people {
            let ids: Vec<RecordId> = (0..3).map(|_| RecordId::from_fingerprint(&rand::random::<[u8; 32]>())).collect();
            for (i, (t, class, pair)) in
                [(t1, "application", Some(&ids[1])), (t2, "application", Some(&ids[0])), (tm, "my_number_form", None)]
                    .into_iter()
                    .enumerate()
            {
                let d = verified_draft(t, p, pair);
                let text = d.index_text();
                truth.insert(
                    ids[i].clone(),
                    t.fields.iter().map(|f| (f.name.clone(), person_value(p, &f.name))).collect(),
                );
                let blobs = vec![(BlobRole::Original, vec![0u8; 64]), (BlobRole::Draft, serde_json::to_vec(&d)?)];
                pages.push(BulkPage { id: ids[i].clone(), class: class.into(), blobs, text });
            }
        }
        store_bulk(h, &pages, now, Some(&batch))?;
        progress.inc(people.len() as u64);
    }
    Ok(truth)
}

/// The OCR sample: synthetic scans through ingest and a careful review; returns their truth.
fn ocr_sample(h: &Hozon, dir: &Path, k: usize) -> anyhow::Result<Truth> {
    let opts = crate::synth::SynthOptions::easy(dir.to_owned(), k, 7, 2.0);
    crate::synth::generate(&opts, &indicatif::ProgressBar::hidden())?;
    let lines = super::review::truth_of(dir)?;
    let review = super::review::run(h, dir, 2, false)?;
    anyhow::ensure!(review.wrong_after_review == 0, "the reviewed sample still differs from its truth");
    let mut truth = Truth::new();
    for (file, t) in lines {
        let bytes = std::fs::read(dir.join(&file))?;
        if let Some(id) = h.store.dedupe_lookup(&h.store.scan_fingerprint(&bytes))? {
            truth.insert(id, t.fields);
        }
    }
    Ok(truth)
}

/// Compares a data file read back with the truth: (fields compared, fields equal, the first
/// differences).
pub fn compare(
    h: &Hozon,
    layout: &crate::export::layout::Layout,
    run: &crate::export::ExportRun,
    data: &[u8],
    truth: &Truth,
) -> anyhow::Result<(usize, usize, Vec<String>)> {
    let parsed = format::parse(layout, data).map_err(|e| anyhow::anyhow!(e))?;
    anyhow::ensure!(parsed.len() == run.rows.len(), "{} lines for {} rows", parsed.len(), run.rows.len());
    let kinds: BTreeMap<&str, FieldType> =
        h.forms.iter().flat_map(|t| t.fields.iter().map(|f| (f.name.as_str(), f.kind))).collect();
    let (mut fields, mut exact, mut diffs) = (0, 0, Vec::new());
    for (row, line) in run.rows.iter().zip(&parsed) {
        let of = |page: &String| RecordId::parse(page).and_then(|id| truth.get(&id));
        let Some(app) = RecordId::parse(&row.application).and_then(|id| truth.get(&id)) else { continue };
        let mn = row.pages.iter().filter_map(of).find_map(|t| t.get("my_number"));
        for c in &layout.columns {
            let want = match c.source.split_once('.') {
                Some(("application", "disease_no")) => continue,
                Some(("application", f)) => app.get(f),
                Some(("my_number", "my_number")) => mn,
                _ => continue,
            };
            let Some(want) = want else { continue };
            let field = c.source.split_once('.').map_or("", |(_, f)| f);
            let kind = kinds.get(field).copied().unwrap_or(FieldType::Text);
            let got = format::canonical(layout, c, &line[&c.name]);
            fields += 1;
            if super::eval::comparable(kind, &got) == super::eval::comparable(kind, want) {
                exact += 1;
            } else if diffs.len() < 10 {
                diffs.push(format!("{} {}: {got:?} ≠ {want:?}", row.key, c.name));
            }
        }
    }
    Ok((fields, exact, diffs))
}

pub fn run(forms: usize, sample: usize, show_progress: bool) -> anyhow::Result<Figures> {
    let tmp = tempfile::tempdir()?;
    let (h, _) = Hozon::init(&tmp.path().join("data"), &tmp.path().join("master.key"))?;
    let t0 = Instant::now();
    let sample = sample.min(forms);
    let mut truth = if sample > 0 { ocr_sample(&h, &tmp.path().join("scans"), sample)? } else { Truth::new() };
    let bar = if show_progress {
        indicatif::ProgressBar::new((forms - sample) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    truth.extend(populate(&h, forms - sample, &bar)?);
    bar.finish_and_clear();
    let setup_seconds = t0.elapsed().as_secs_f64();

    let op = Actor::operator("bench");
    let t = Instant::now();
    let created = h.export_create(&op, None, None)?;
    let seconds = t.elapsed().as_secs_f64();

    let (info, zip) = h.export_download(&op, &created.run.id)?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&zip))?;
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name_decrypt(&info.data_name, created.password.as_bytes())?, &mut data)?;
    let layout = h.export_layout()?;
    let (fields, fields_exact, diffs) = compare(&h, &layout, &created.run, &data, &truth)?;
    for d in diffs {
        eprintln!("  differs: {d}");
    }
    let rows = created.run.rows.len();
    let mut held_reasons = BTreeMap::new();
    for r in created.run.held.iter().flat_map(|h| &h.reasons) {
        *held_reasons.entry(r.clone()).or_insert(0) += 1;
    }
    Ok(Figures {
        forms,
        ocr_sample: sample,
        rows,
        held: created.run.held.len(),
        held_reasons,
        seconds,
        rows_per_s: rows as f64 / seconds.max(1e-9),
        setup_seconds,
        fields,
        fields_exact,
        field_exact: fields_exact as f64 / fields.max(1) as f64,
        zip_bytes: info.bytes,
    })
}

pub fn print(f: &Figures) {
    println!("hozon bench export — {} reviewed applications ({} through OCR and review)", f.forms, f.ocr_sample);
    println!("  setup (not timed)     {:>8.1} s", f.setup_seconds);
    println!(
        "  export run            {:>8.2} s   {:>8.0} rows/s   {} rows, {} held back",
        f.seconds, f.rows_per_s, f.rows, f.held
    );
    for (why, n) in &f.held_reasons {
        println!("    held: {why} ({n})");
    }
    println!("  ZIP                   {:>8} bytes", f.zip_bytes);
    println!("  fields equal to truth {:>8} / {}   field_exact {:.4}", f.fields_exact, f.fields, f.field_exact);
}
