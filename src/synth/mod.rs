//! synth/: "give me realistic scans whose contents I know." Seeded synthetic submissions:
//! each is four A4 pages at 300 dpi (application sheet 1, its carbon copy sheet 2, the My
//! Number form, the clinical survey cover), optionally an attachment no template fits, plus
//! `truth.jsonl` with every field of every page.
//! The same seed gives the same bytes. Writes only under the folder it is given.

pub(crate) mod people;
pub mod render;
pub mod scanner;
pub mod strokes;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use image::GrayImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

pub use people::{Person, my_number};
pub use render::Knobs;
use render::{Fonts, PageSpec, Row, RowInk, Value};

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub out: PathBuf,
    pub count: usize,
    pub seed: u64,
    /// How rough the scans are (skew, grain, blur, stamps, empty fields, corrections).
    pub knobs: Knobs,
    /// Scan each page as offices do (any orientation, 200–400 dpi, grey, 1-bit or colour);
    /// else upright, 300 dpi, grey.
    pub conditions: bool,
    /// Make some applicants (two in five) fill in the Excel editions of the application and
    /// the My Number form: typed, printed one-sided, no carbon copy (no sheet 2).
    pub typed: bool,
    /// Add an attachment no form template fits to each submission (a 住民票の写し, at times
    /// printed with the My Number, or a 課税証明書): truth form `attachment`, field `doc_type`.
    pub attachments: bool,
    /// How applicants write by hand.
    pub style: HandStyle,
}

/// How the synthetic applicants write by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum HandStyle {
    /// Handwriting-style fonts, each character jittered (the sets the project began with).
    #[default]
    Font,
    /// A pen drawing KanjiVG's strokes: wandering control points, pressure, joins, slant.
    Strokes,
    /// Half the applicants one way, half the other.
    Mixed,
}

impl SynthOptions {
    /// Clean scans (skew only), as the demo and most tests use.
    pub fn easy(out: PathBuf, count: usize, seed: u64, max_skew_deg: f32) -> SynthOptions {
        SynthOptions {
            out,
            count,
            seed,
            knobs: Knobs::easy(max_skew_deg),
            conditions: false,
            typed: false,
            attachments: false,
            style: HandStyle::Font,
        }
    }
}

/// One line of truth.jsonl.
#[derive(Debug, Clone, Serialize)]
pub struct PageTruth {
    pub file: String,
    pub submission: usize,
    pub form: &'static str,
    pub sheet: Option<u8>,
    /// Field name → what the applicant meant (after any correction); `""` for a field left
    /// empty, `"true"`/`"false"` for a checkbox, the option for a choice.
    pub fields: serde_json::Value,
    /// Field name → written by hand (else printed, or a box).
    pub handwritten: serde_json::Value,
    /// Typed on the Excel edition (else handwritten on the paper form).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub typed: bool,
    /// How the page was scanned (absent: upright, 300 dpi, grey).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<scanner::Condition>,
    /// How the handwriting was made, `"font"` or `"strokes"` (absent: a set made with fonts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hand: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// The Excel edition of the application, typed and printed on plain paper: sheet 1 only.
    TypedApplication,
    /// The Excel edition of the My Number form.
    TypedMyNumber,
    ApplicationSheet1,
    ApplicationSheet2,
    MyNumber,
    ClinicalCover,
    /// 住民票の写し: printed by the municipality, the My Number on it if `true`.
    ResidentRecord(bool),
    /// 課税（非課税）証明書.
    TaxCertificate,
}

/// The truth form of a page no template should fit.
pub const ATTACHMENT: &str = "attachment";

impl Form {
    const ALL: [Form; 4] = [Form::ApplicationSheet1, Form::ApplicationSheet2, Form::MyNumber, Form::ClinicalCover];

    fn slug(self) -> &'static str {
        match self {
            Form::ApplicationSheet1 => "application-1",
            Form::TypedApplication => "application-typed",
            Form::TypedMyNumber => "mynumber-typed",
            Form::ApplicationSheet2 => "application-2",
            Form::MyNumber => "mynumber",
            Form::ClinicalCover => "clinical",
            Form::ResidentRecord(_) => "resident",
            Form::TaxCertificate => "tax",
        }
    }

    fn form_type(self) -> &'static str {
        match self {
            Form::ApplicationSheet1 | Form::ApplicationSheet2 | Form::TypedApplication => "application",
            Form::MyNumber | Form::TypedMyNumber => "my_number",
            Form::ClinicalCover => "clinical_survey",
            Form::ResidentRecord(_) | Form::TaxCertificate => ATTACHMENT,
        }
    }

    fn sheet(self) -> Option<u8> {
        match self {
            Form::ApplicationSheet1 | Form::TypedApplication => Some(1),
            Form::ApplicationSheet2 => Some(2),
            _ => None,
        }
    }

    fn titles(self) -> (&'static str, &'static str) {
        match self {
            Form::ApplicationSheet1 => ("特定医療費（指定難病）支給認定申請書", "（新規・更新）申請書原本"),
            Form::ApplicationSheet2 => ("特定医療費（指定難病）支給認定申請書", "（新規・更新）入力票"),
            Form::TypedApplication => ("特定医療費（指定難病）支給認定申請書", "（新規・更新・変更）申請書"),
            Form::MyNumber | Form::TypedMyNumber => ("個人番号に係る調書", "（特定医療費（指定難病）支給認定申請）"),
            Form::ClinicalCover => ("臨床調査個人票", "（新規・更新）"),
            Form::ResidentRecord(_) => ("住民票の写し", "（世帯全員）"),
            Form::TaxCertificate => ("特別区民税・都民税　課税（非課税）証明書", "（令和7年度）"),
        }
    }

    /// The document type a reviewer files an attachment as (`document-types.toml`).
    fn doc_type(self) -> Option<&'static str> {
        match self {
            Form::ResidentRecord(_) => Some("resident_record"),
            Form::TaxCertificate => Some("tax_certificate"),
            _ => None,
        }
    }
}

const APPLICATION_TYPES: [&str; 3] = ["新規", "更新", "変更"];
const SEXES: [&str; 2] = ["男", "女"];

/// One row of a form as filled in: what is drawn, and the truth fields it carries
/// (name, value, handwritten).
struct Entry<'a> {
    row: Row<'a>,
    truth: Vec<(&'static str, String, bool)>,
}

fn hand<'a>(label: &'a str, name: &'static str, text: &'a str) -> Entry<'a> {
    Entry { row: Row { label, value: Value::Text { text, hand: true } }, truth: vec![(name, text.to_owned(), true)] }
}

fn printed<'a>(label: &'a str, name: &'static str, text: &'a str) -> Entry<'a> {
    Entry { row: Row { label, value: Value::Text { text, hand: false } }, truth: vec![(name, text.to_owned(), false)] }
}

fn choice<'a>(label: &'a str, name: &'static str, options: &'a [&'a str], chosen: &'a str) -> Entry<'a> {
    Entry {
        row: Row { label, value: Value::Choice { options, chosen } },
        truth: vec![(name, chosen.to_owned(), false)],
    }
}

fn checkbox<'a>(label: &'a str, name: &'static str, caption: &'a str, ticked: bool) -> Entry<'a> {
    Entry {
        row: Row { label, value: Value::Checkbox { caption, ticked } },
        truth: vec![(name, ticked.to_string(), false)],
    }
}

/// The rows of a form for one applicant; `blank` names handwritten fields left empty.
fn entries<'a>(form: Form, p: &'a Person, blank: &[&str]) -> Vec<Entry<'a>> {
    let typed = matches!(form, Form::TypedApplication | Form::TypedMyNumber);
    let hand = |label, name: &'static str, text: &'a str| {
        let text = if blank.contains(&name) { "" } else { text };
        if typed { printed(label, name, text) } else { hand(label, name, text) }
    };
    match form {
        Form::ApplicationSheet1 | Form::ApplicationSheet2 | Form::TypedApplication => vec![
            hand("フリガナ", "kana", &p.kana),
            hand("受診者氏名", "name", &p.name),
            hand("生年月日", "birth_date", &p.birth_date),
            choice("性別", "sex", &SEXES, &p.sex),
            hand("郵便番号", "postal_code", &p.postal_code),
            hand("住所", "address", &p.address),
            hand("電話番号", "phone", &p.phone),
            hand("保険者番号", "insurer_number", &p.insurer_number),
            Entry {
                row: Row {
                    label: "記号・番号",
                    value: Value::Split {
                        parts: [("記号", &p.insured_symbol), ("番号", &p.insured_number)],
                        hand: !typed,
                    },
                },
                truth: vec![
                    ("insured_symbol", p.insured_symbol.clone(), !typed),
                    ("insured_number", p.insured_number.clone(), !typed),
                ],
            },
            hand("病名", "disease", &p.disease),
            hand("申請日", "application_date", &p.application_date),
            choice("申請区分", "application_type", &APPLICATION_TYPES, &p.application_type),
            checkbox("高額かつ長期", "high_cost", "該当する", p.high_cost),
            checkbox("人工呼吸器等装着", "ventilator", "該当する", p.ventilator),
            hand("受給者番号", "recipient_no", &p.recipient_no),
        ],
        Form::MyNumber | Form::TypedMyNumber => vec![
            hand("フリガナ", "kana", &p.kana),
            hand("氏名", "name", &p.name),
            hand("生年月日", "birth_date", &p.birth_date),
            hand("住所", "address", &p.address),
            Entry {
                row: Row { label: "個人番号", value: Value::Comb { text: &p.my_number, hand: !typed } },
                truth: vec![("my_number", p.my_number.clone(), !typed)],
            },
        ],
        Form::ClinicalCover => vec![
            printed("病名", "disease", &p.disease),
            printed("氏名", "name", &p.name),
            printed("生年月日", "birth_date", &p.birth_date),
            printed("性別", "sex", &p.sex),
            printed("医療機関名", "hospital", &p.hospital),
            printed("指定医氏名", "doctor", &p.doctor),
        ],
        Form::ResidentRecord(with_number) => vec![
            printed("氏名", "name", &p.name),
            printed("生年月日", "birth_date", &p.birth_date),
            printed("住所", "address", &p.address),
            printed("世帯主", "householder", &p.name),
            printed("住民となった年月日", "moved_in", "平成20年4月1日"),
            printed("個人番号", "my_number", if with_number { &p.my_number } else { "（記載省略）" }),
        ],
        Form::TaxCertificate => vec![
            printed("氏名", "name", &p.name),
            printed("住所", "address", &p.address),
            printed("総所得金額", "income", "1,234,000円"),
            printed("区民税・都民税額", "tax", "56,700円"),
        ],
    }
}

/// Fields an applicant may leave empty (the `--hard` knob).
const OPTIONAL: [&str; 2] = ["phone", "insurer_number"];

/// A plausible slip of the pen: the value with one character changed.
fn mistake(value: &str, rng: &mut impl Rng) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let candidates: Vec<usize> = (0..chars.len()).filter(|&i| !chars[i].is_whitespace()).collect();
    let Some(&i) = candidates.choose(rng) else { return value.to_owned() };
    let c = chars[i];
    chars[i] = if c.is_ascii_digit() {
        char::from(b'0' + (c as u8 - b'0' + rng.gen_range(1..10)) % 10)
    } else {
        let others: Vec<char> = chars.iter().copied().filter(|&o| o != c && !o.is_whitespace()).collect();
        others.choose(rng).copied().unwrap_or('一')
    };
    chars.into_iter().collect()
}

/// The page's ink decisions: per row, a struck-out mistake before the value or not.
fn corrections<'a>(
    entries: &[Entry<'_>],
    knobs: &Knobs,
    wrong: &'a mut Vec<String>,
    rng: &mut impl Rng,
) -> Vec<RowInk<'a>> {
    wrong.clear();
    let mut struck_rows = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let Value::Text { text, hand: true } = e.row.value {
            let n = text.chars().count();
            if n > 0 && 2 * n <= 20 && rng.gen_bool(knobs.crossout_rate) {
                wrong.push(mistake(text, rng));
                struck_rows.push(i);
            }
        }
    }
    let mut out = vec![RowInk::default(); entries.len()];
    for (row, w) in struck_rows.into_iter().zip(wrong.iter()) {
        out[row].struck = Some(w.as_str());
    }
    out
}

fn submission_rng(seed: u64, index: usize) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Renders one submission's pages; returns (file name, PNG bytes, truth) per page. One
/// applicant's hand fills the application and the My Number form; sheet 2 carries sheet 1's
/// ink as a carbon impression.
fn submission(
    index: usize,
    opts: &SynthOptions,
    reference: &people::Reference,
    fonts: &Fonts,
    strokes: Option<&strokes::Strokes>,
) -> anyhow::Result<Vec<(String, Vec<u8>, PageTruth)>> {
    let knobs = &opts.knobs;
    let mut rng = submission_rng(opts.seed, index);
    // Scanning draws from its own generator: the pages' contents do not depend on it.
    let mut scan_rng = submission_rng(opts.seed ^ 0x5CA7_5CA7, index);
    let ink_colour = *scanner::INKS.choose(&mut scan_rng).expect("inks");
    let person = people::person(reference, &mut rng);
    let mut writer = render::Writer::new(fonts, &mut rng);
    if let Some(strokes) = strokes {
        // Drawn apart, so that a set written with fonts is the same as before strokes existed.
        let mut pen_rng = submission_rng(opts.seed ^ 0x57_0CE5, index);
        if opts.style == HandStyle::Strokes || pen_rng.gen_bool(0.5) {
            writer = writer.with_strokes(strokes, &mut pen_rng);
        }
    }
    let blank: Vec<&str> = OPTIONAL.into_iter().filter(|_| rng.gen_bool(knobs.empty_rate)).collect();
    // The date on the received stamp (令和8年 = 2026).
    let received = format!("8.{}.{}", rng.gen_range(4..12), rng.gen_range(1..29));
    let mut application_ink: Option<GrayImage> = None;
    let mut out = Vec::new();
    let mut wrong = Vec::new();
    // Drawn apart, so that sets made without typed applicants stay as they were.
    let typed = opts.typed && submission_rng(opts.seed ^ 0x7E9ED, index).gen_bool(0.4);
    let mut forms = match typed {
        true => vec![Form::TypedApplication, Form::TypedMyNumber, Form::ClinicalCover],
        false => Form::ALL.to_vec(),
    };
    if opts.attachments {
        forms.push(if rng.gen_bool(0.6) { Form::ResidentRecord(rng.gen_bool(0.5)) } else { Form::TaxCertificate });
    }
    for (page_no, form) in forms.into_iter().enumerate() {
        let entries = entries(form, &person, &blank);
        let (title, subtitle) = form.titles();
        let mut truth_fields = serde_json::Map::new();
        let mut handwritten = serde_json::Map::new();
        for (name, value, by_hand) in entries.iter().flat_map(|e| e.truth.iter()) {
            truth_fields.insert((*name).to_owned(), value.clone().into());
            handwritten.insert((*name).to_owned(), (*by_hand).into());
        }
        if let Some(t) = form.doc_type() {
            truth_fields.insert("doc_type".into(), t.into());
        }
        let extras = corrections(&entries, knobs, &mut wrong, &mut rng);
        let spec = PageSpec {
            title,
            subtitle,
            rows: entries.into_iter().map(|e| e.row).collect(),
            footer: match form {
                Form::ResidentRecord(_) => "この写しは、住民票の原本と相違ないことを証明する。",
                Form::TaxCertificate => "上記のとおり証明します。",
                _ => "東京都福祉局　難病医療費助成担当",
            },
        };
        let print = render::draw_form(&spec, fonts);
        let ink = match (form, &application_ink) {
            (Form::ApplicationSheet2, Some(ink)) => render::carbon(ink, knobs.carbon.0, knobs.carbon.1),
            _ => render::draw_ink(&spec, &writer, &extras, &mut rng),
        };
        let stamp = (knobs.stamps
            && matches!(form, Form::ApplicationSheet1 | Form::MyNumber | Form::TypedApplication | Form::TypedMyNumber))
        .then(|| render::stamp(fonts, &received, &mut rng));
        let condition =
            if opts.conditions { scanner::Condition::draw(&mut scan_rng) } else { scanner::Condition::plain() };
        let layers = scanner::Layers { print: &print, ink: &ink, ink_colour, stamp: stamp.as_ref() };
        let png = scanner::scan_page(&layers, &condition, knobs, &mut rng)?;
        if form == Form::ApplicationSheet1 {
            application_ink = Some(ink);
        }
        let file = format!("s{:04}-p{}-{}.png", index + 1, page_no + 1, form.slug());
        let truth = PageTruth {
            file: file.clone(),
            submission: index + 1,
            form: form.form_type(),
            sheet: form.sheet(),
            fields: truth_fields.into(),
            handwritten: handwritten.into(),
            scan: opts.conditions.then_some(condition),
            hand: (opts.style != HandStyle::Font).then(|| writer.style()),
            typed,
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
    let strokes = match opts.style {
        HandStyle::Font => None,
        HandStyle::Strokes | HandStyle::Mixed => Some(strokes::Strokes::load()?),
    };
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
                    let r = submission(i, opts, &reference, &fonts, strokes.as_ref()).and_then(|pages| {
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
