//! synth/: "give me realistic scans whose contents I know." Seeded synthetic submissions:
//! each is four A4 pages at 300 dpi (application sheet 1, its carbon copy sheet 2, the My
//! Number form, the clinical survey cover), plus `truth.jsonl` with every field of every page.
//! The same seed gives the same bytes. Writes only under the folder it is given.

pub(crate) mod people;
pub mod render;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::SeedableRng;
use serde::Serialize;

pub use people::{Person, my_number};
use render::{Fonts, PageSpec, Row};

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub out: PathBuf,
    pub count: usize,
    pub seed: u64,
    /// Largest skew either way, in degrees.
    pub max_skew_deg: f32,
}

/// One line of truth.jsonl.
#[derive(Debug, Clone, Serialize)]
pub struct PageTruth {
    pub file: String,
    pub submission: usize,
    pub form: &'static str,
    pub sheet: Option<u8>,
    pub fields: serde_json::Value,
}

#[derive(Clone, Copy)]
enum Form {
    ApplicationSheet1,
    ApplicationSheet2,
    MyNumber,
    ClinicalCover,
}

impl Form {
    const ALL: [Form; 4] = [Form::ApplicationSheet1, Form::ApplicationSheet2, Form::MyNumber, Form::ClinicalCover];

    fn slug(self) -> &'static str {
        match self {
            Form::ApplicationSheet1 => "application-1",
            Form::ApplicationSheet2 => "application-2",
            Form::MyNumber => "mynumber",
            Form::ClinicalCover => "clinical",
        }
    }

    fn form_type(self) -> &'static str {
        match self {
            Form::ApplicationSheet1 | Form::ApplicationSheet2 => "application",
            Form::MyNumber => "my_number",
            Form::ClinicalCover => "clinical_survey",
        }
    }

    fn sheet(self) -> Option<u8> {
        match self {
            Form::ApplicationSheet1 => Some(1),
            Form::ApplicationSheet2 => Some(2),
            _ => None,
        }
    }

    /// The printed page and the (field name, value) pairs it carries.
    fn spec(self, p: &Person) -> (PageSpec<'_>, Vec<(&'static str, &str)>) {
        let row = |label, value| Row { label, value, comb: false };
        let (title, subtitle, rows, fields): (&str, &str, Vec<Row>, Vec<(&'static str, &str)>) = match self {
            Form::ApplicationSheet1 | Form::ApplicationSheet2 => (
                "特定医療費（指定難病）支給認定申請書",
                if matches!(self, Form::ApplicationSheet1) {
                    "（新規・更新）申請書原本"
                } else {
                    "（新規・更新）入力票"
                },
                vec![
                    row("フリガナ", p.kana.as_str()),
                    row("受診者氏名", &p.name),
                    row("生年月日", &p.birth_date),
                    row("性別", &p.sex),
                    row("郵便番号", &p.postal_code),
                    row("住所", &p.address),
                    row("電話番号", &p.phone),
                    row("保険者番号", &p.insurer_number),
                    row("記号・番号", &p.insured_symbol),
                    row("病名", &p.disease),
                    row("申請日", &p.application_date),
                ],
                vec![
                    ("kana", p.kana.as_str()),
                    ("name", &p.name),
                    ("birth_date", &p.birth_date),
                    ("sex", &p.sex),
                    ("postal_code", &p.postal_code),
                    ("address", &p.address),
                    ("phone", &p.phone),
                    ("insurer_number", &p.insurer_number),
                    ("insured_symbol", &p.insured_symbol),
                    ("disease", &p.disease),
                    ("application_date", &p.application_date),
                ],
            ),
            Form::MyNumber => (
                "個人番号に係る調書",
                "（特定医療費（指定難病）支給認定申請）",
                vec![
                    row("フリガナ", &p.kana),
                    row("氏名", &p.name),
                    row("生年月日", &p.birth_date),
                    row("住所", &p.address),
                    Row { label: "個人番号", value: &p.my_number, comb: true },
                ],
                vec![
                    ("kana", p.kana.as_str()),
                    ("name", &p.name),
                    ("birth_date", &p.birth_date),
                    ("address", &p.address),
                    ("my_number", &p.my_number),
                ],
            ),
            Form::ClinicalCover => (
                "臨床調査個人票",
                "（新規・更新）",
                vec![
                    row("病名", &p.disease),
                    row("氏名", &p.name),
                    row("生年月日", &p.birth_date),
                    row("性別", &p.sex),
                    row("医療機関名", &p.hospital),
                    row("指定医氏名", &p.doctor),
                ],
                vec![
                    ("disease", p.disease.as_str()),
                    ("name", &p.name),
                    ("birth_date", &p.birth_date),
                    ("sex", &p.sex),
                    ("hospital", &p.hospital),
                    ("doctor", &p.doctor),
                ],
            ),
        };
        let spec = PageSpec { title, subtitle, rows, footer: "東京都福祉局　難病医療費助成担当" };
        (spec, fields)
    }
}

fn submission_rng(seed: u64, index: usize) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Renders one submission's pages; returns (file name, PNG bytes, truth) per page.
fn submission(
    index: usize,
    opts: &SynthOptions,
    reference: &people::Reference,
    fonts: &Fonts,
) -> anyhow::Result<Vec<(String, Vec<u8>, PageTruth)>> {
    let mut rng = submission_rng(opts.seed, index);
    let person = people::person(reference, &mut rng);
    let mut out = Vec::new();
    for (page_no, form) in Form::ALL.into_iter().enumerate() {
        let (spec, fields) = form.spec(&person);
        let mut clean = render::draw(&spec, fonts, &mut rng);
        if matches!(form, Form::ApplicationSheet2) {
            clean = render::carbon_copy(&clean);
        }
        let scanned = render::scan(&clean, &mut rng, opts.max_skew_deg);
        let mut png = Vec::new();
        scanned.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
        let file = format!("s{:04}-p{}-{}.png", index + 1, page_no + 1, form.slug());
        let fields: serde_json::Map<String, serde_json::Value> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
        let truth = PageTruth {
            file: file.clone(),
            submission: index + 1,
            form: form.form_type(),
            sheet: form.sheet(),
            fields: fields.into(),
        };
        out.push((file, png, truth));
    }
    Ok(out)
}

/// Writes `count` submissions (4 pages each) and truth.jsonl into `out`. Two threads render;
/// each submission has its own seeded generator, so the output does not depend on timing.
pub fn generate(opts: &SynthOptions, progress: &indicatif::ProgressBar) -> anyhow::Result<Vec<PageTruth>> {
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let fonts = Fonts::load()?;
    let reference = people::Reference::load();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= opts.count {
                        break;
                    }
                    let r = submission(i, opts, &reference, &fonts).and_then(|pages| {
                        for (file, png, _) in &pages {
                            write_file(&opts.out.join(file), png)?;
                        }
                        Ok(pages.into_iter().map(|(_, _, t)| t).collect::<Vec<_>>())
                    });
                    results.lock().expect("lock").push((i, r));
                    progress.inc(1);
                }
            });
        }
    });
    let mut results = results.into_inner().expect("lock");
    results.sort_by_key(|(i, _)| *i);
    let mut truths = Vec::new();
    for (_, r) in results {
        truths.extend(r?);
    }
    let mut jsonl = Vec::new();
    for t in &truths {
        serde_json::to_writer(&mut jsonl, t)?;
        jsonl.push(b'\n');
    }
    write_file(&opts.out.join("truth.jsonl"), &jsonl)?;
    Ok(truths)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
