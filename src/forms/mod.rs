//! forms/: "which form is this page, and what is written in each field?"
//!
//! A page is straightened and matched against the templates of `ocr-models/forms/`
//! (`template.rs`): a template fits when its field table is found on the page (`register.rs`)
//! and its printed keywords are read in its title zone. Each field's zone is then cropped
//! (the form's own box lines whitened) and all fields of the page are read by the PP-OCR
//! recognizer in one batch, each with the character set of its type. A page no template fits
//! is reported as unclassified; the caller keeps it with full-page text.

pub mod check;
pub mod crop;
pub mod doctypes;
pub mod marks;
pub mod propose;
pub mod register;
mod stamps;
pub mod template;
pub mod upright;

use image::GrayImage;
use unicode_normalization::UnicodeNormalization;

use crate::ocr::{CharSet, Recognizer};
use register::{Rect, crop_without_rules, deskew, locate};
use template::{FieldType, Template};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ocr(#[from] crate::ocr::Error),
    #[error(transparent)]
    Register(#[from] register::Error),
    #[error("the proposed template does not parse: {0}")]
    Proposal(String),
}

/// One field as read (before normalisation and validation).
#[derive(Debug, Clone)]
pub struct FieldReading {
    pub name: String,
    pub label: String,
    pub kind: FieldType,
    pub text: String,
    pub char_confidence: Vec<f32>,
    /// Where it was cut from on the straightened page.
    pub rect: Rect,
    /// A crossed-out mistake was found and left out; `text` is what follows it.
    pub struck: bool,
    /// Characters the recognizer could as well have read as a variant form (read, variant).
    pub variant_doubts: Vec<(String, String)>,
}

/// A page matched to a template and its fields read.
#[derive(Debug, Clone)]
pub struct PageReading {
    /// Template id (`application#1`, `my_number_form`, …).
    pub template: String,
    pub form: String,
    pub sheet: Option<u8>,
    pub skew_deg: f32,
    /// How the scan was turned and scaled before it was read (see [`upright`]).
    pub frame: upright::Frame,
    pub fields: Vec<FieldReading>,
}

/// A scan brought into the templates' frame and read.
pub struct Scan<'a> {
    pub frame: upright::Frame,
    /// The scan in the frame (upright, 300 dpi): what the fields were cut from, and what a
    /// page no template fits is read whole from.
    pub image: std::borrow::Cow<'a, GrayImage>,
    /// `None`: no template fits.
    pub reading: Option<PageReading>,
}

/// Brings a scan (stating `dpi`, if it does) upright and to 300 dpi, then finds its template
/// and reads its fields ([`read_page`]).
pub fn read_scan<'a>(
    gray: &'a GrayImage,
    dpi: Option<f32>,
    templates: &[Template],
    ocr: &mut dyn Recognizer,
) -> Result<Scan<'a>, Error> {
    // The likely ways up are tried with the templates themselves: a title that reads as a
    // form's is proof enough that the page is that way up, so most pages need no reading of
    // their own to turn them.
    let (scale, turns) = upright::likely_turns(gray, dpi);
    for turns in turns {
        let frame = upright::Frame { turns, scale };
        let image = upright::apply(gray, frame);
        if let Some(r) = read_page(&image, templates, ocr)? {
            return Ok(Scan { frame, image, reading: Some(PageReading { frame, ..r }) });
        }
    }
    // No form: turned by how well its text reads, for the full-page text.
    let frame = upright::find(gray, dpi, ocr)?;
    Ok(Scan { frame, image: upright::apply(gray, frame), reading: None })
}

/// The recognizer's character set for a field type.
pub fn charset(kind: FieldType) -> CharSet {
    match kind {
        FieldType::Number | FieldType::MyNumber => CharSet::Digits,
        FieldType::Phone | FieldType::PostalCode => CharSet::DigitsDash,
        FieldType::Kana => CharSet::Katakana,
        FieldType::Date => CharSet::Date,
        FieldType::Text | FieldType::Checkbox | FieldType::Choice => CharSet::Cp932,
    }
}

/// Splits a crop into its text lines (bands of rows with ink, separated by blank rows).
fn text_lines(crop: &GrayImage, ink: u8) -> Vec<GrayImage> {
    let (w, h) = crop.dimensions();
    let inked: Vec<bool> = (0..h).map(|y| (0..w).any(|x| crop.get_pixel(x, y).0[0] < ink)).collect();
    let mut out = Vec::new();
    let mut start: Option<u32> = None;
    for y in 0..=h {
        let ink = y < h && inked[y as usize];
        match (ink, start) {
            (true, None) => start = Some(y),
            (false, Some(s)) if y - s >= 12 => {
                let (top, bottom) = (s.saturating_sub(6), (y + 6).min(h));
                out.push(image::imageops::crop_imm(crop, 0, top, w, bottom - top).to_image());
                start = None;
            }
            (false, Some(_)) => start = None,
            _ => {}
        }
    }
    out
}

/// No mark in a crop, not even a faint one (pencil, pale ink, a thin carbon stroke: anything
/// darker than the paper's grain, which the contrast stretch leaves near white): a field
/// left empty. Anything fainter than the ink level but there still goes to the recognizer,
/// which reads grey.
fn blank(crop: &GrayImage) -> bool {
    const FAINT: u8 = 230;
    crop.pixels().all(|p| p.0[0] >= FAINT)
}

/// Cuts a field crop down to its ink (plus a margin): the recognizer scales every line to 48
/// pixels high, so a tight crop keeps small marks (・, dakuten) legible, and a short line is
/// less work than a cell's full width. An empty cell stays as it is.
fn tighten(crop: GrayImage, ink: u8) -> GrayImage {
    const MARGIN: u32 = 8;
    let (w, h) = crop.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in crop.enumerate_pixels() {
        if p.0[0] < ink {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    if x1 < x0 || y1 < y0 {
        return crop;
    }
    let (x0, y0) = (x0.saturating_sub(MARGIN), y0.saturating_sub(MARGIN));
    let (x1, y1) = ((x1 + MARGIN).min(w - 1), (y1 + MARGIN).min(h - 1));
    image::imageops::crop_imm(&crop, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image()
}

/// How well a title reading carries a template's keywords: each keyword must be found at least
/// 70% (its characters in order, so a stamp over a character or two does not hide the form);
/// the score is the sum. `None`: some keyword is missing.
fn keyword_score(title: &str, keywords: &[String]) -> Option<f32> {
    let title: Vec<char> = title.chars().collect();
    let mut total = 0.0;
    for k in keywords {
        // `a|b`: either wording identifies the form (a stamp may cover one of them).
        let share = k
            .split('|')
            .map(|alt| alt.nfkc().filter(|c| !c.is_whitespace()).collect::<Vec<char>>())
            .filter(|alt| !alt.is_empty())
            .map(|alt| best_window_lcs(&alt, &title) as f32 / alt.len() as f32)
            .fold(None, |best: Option<f32>, s| Some(best.map_or(s, |b| b.max(s))));
        let Some(share) = share else { continue };
        if share < 0.7 {
            return None;
        }
        total += share;
    }
    Some(total)
}

/// The longest common subsequence of `k` and any stretch of `text` at most twice `k`'s length
/// (so a keyword's characters scattered over a whole title do not count).
fn best_window_lcs(k: &[char], text: &[char]) -> usize {
    let span = 2 * k.len();
    let mut best = 0;
    for start in 0..text.len().max(1) {
        let window = &text[start..(start + span).min(text.len())];
        let mut row = vec![0usize; window.len() + 1];
        for &a in k {
            let mut diag = 0;
            for (j, &b) in window.iter().enumerate() {
                let up = row[j + 1];
                row[j + 1] = if a == b { diag + 1 } else { up.max(row[j]) };
                diag = up;
            }
        }
        best = best.max(row[window.len()]);
        if best == k.len() {
            break;
        }
    }
    best
}

/// Colour dropout for the title zone: printed titles are black, received stamps are red or
/// blue ink that scans mid-grey. On a contrast-stretched crop, whitening everything lighter
/// than dark grey leaves the print (the grainy remains of a stamp are then specks).
fn dropout(mut crop: GrayImage) -> GrayImage {
    for p in crop.pixels_mut() {
        if p.0[0] > 90 {
            p.0[0] = 255;
        }
    }
    crop
}

/// Whitens specks: 8-connected dark blobs of fewer than `MIN_AREA` pixels (dust, toner,
/// scanner grain). A dakuten or a 、 is larger at 300 dpi.
fn despeckle(mut crop: GrayImage, ink: u8) -> GrayImage {
    use imageproc::region_labelling::{Connectivity, connected_components};
    const MIN_AREA: usize = 20;
    let binary = GrayImage::from_fn(crop.width(), crop.height(), |x, y| {
        image::Luma([if crop.get_pixel(x, y).0[0] < ink { 255 } else { 0 }])
    });
    let labels = connected_components(&binary, Connectivity::Eight, image::Luma([0u8]));
    let mut area: Vec<usize> = Vec::new();
    for p in labels.pixels() {
        let l = p.0[0] as usize;
        if l >= area.len() {
            area.resize(l + 1, 0);
        }
        area[l] += 1;
    }
    for (x, y, p) in labels.enumerate_pixels() {
        let l = p.0[0] as usize;
        if l != 0 && area[l] < MIN_AREA {
            crop.put_pixel(x, y, image::Luma([255]));
        }
    }
    crop
}

/// Splits a tight line crop at its widest blank gap (the space between surname and given
/// name): the recognizer reads a wide gap as a character (ー) or loses the letters beside it.
/// Only one split: a value has at most one such space, and a hand that spaces one word's
/// letters widely must not become two words. The gap counts from half a handwritten
/// character (≈ 36 px at 300 dpi). Runs of ink too small to be writing (a speck far from the
/// line) are dropped.
fn words(crop: &GrayImage, ink: u8) -> Vec<GrayImage> {
    const MIN_WORD_INK: usize = 80;
    const MIN_GAP: u32 = 36;
    let (w, h) = crop.dimensions();
    let column_ink: Vec<usize> = (0..w).map(|x| (0..h).filter(|&y| crop.get_pixel(x, y).0[0] < ink).count()).collect();
    // Runs of inked columns separated by at least MIN_GAP blank ones: (start, end inclusive).
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for x in 0..w {
        if column_ink[x as usize] == 0 {
            continue;
        }
        match runs.last_mut() {
            Some((_, end)) if x - *end <= MIN_GAP => *end = x,
            _ => runs.push((x, x)),
        }
    }
    runs.retain(|&(a, b)| column_ink[a as usize..=b as usize].iter().sum::<usize>() >= MIN_WORD_INK);
    let cut = |a: u32, b: u32| {
        let (x0, x1) = (a.saturating_sub(8), (b + 9).min(w));
        image::imageops::crop_imm(crop, x0, 0, x1 - x0, h).to_image()
    };
    let (Some(&(first, _)), Some(&(_, last))) = (runs.first(), runs.last()) else { return vec![crop.clone()] };
    let widest = (1..runs.len()).max_by_key(|&i| runs[i].0 - runs[i - 1].1);
    match widest {
        Some(i) => vec![cut(first, runs[i - 1].1), cut(runs[i].0, last)],
        None => vec![cut(first, last)],
    }
}

/// Finds the template `gray` is, and reads its fields. `None`: no template fits.
pub fn read_page(
    gray: &GrayImage,
    templates: &[Template],
    ocr: &mut dyn Recognizer,
) -> Result<Option<PageReading>, Error> {
    let (image, skew_deg, ink) = deskew(gray);
    let (w, h) = image.dimensions();
    let mut found = None;
    // Templates of the same layout share their title zone: read each zone once.
    let mut titles: Vec<(Rect, String)> = Vec::new();
    for t in templates {
        let Ok(map) = locate(&image, t, ink) else {
            continue;
        };
        let rect = map.zone(t.classify.zone, w, h);
        let title = match titles.iter().find(|(r, _)| *r == rect) {
            Some((_, title)) => title.clone(),
            None => {
                let title = read_title(&image, rect, ink, ocr)?;
                titles.push((rect, title.clone()));
                title
            }
        };
        if let Some(score) = keyword_score(&title, &t.classify.keywords)
            && found.as_ref().is_none_or(|(_, _, best)| score > *best)
        {
            found = Some((t, map, score));
        }
    }
    let Some((t, map, _)) = found else {
        return Ok(None);
    };
    read_fields(&image, t, &map, skew_deg, ink, ocr).map(Some)
}

/// The printed words in `rect` of a straightened page (NFKC, no spaces).
fn read_title(image: &GrayImage, rect: Rect, ink: u8, ocr: &mut dyn Recognizer) -> Result<String, Error> {
    let zone = despeckle(dropout(stamps::without_rings(crop_without_rules(image, rect, ink), ink)), 128);
    // Each line cut to its ink: the recognizer's work grows with the width.
    let lines: Vec<GrayImage> = text_lines(&zone, ink).into_iter().map(|l| tighten(l, ink)).collect();
    let batch: Vec<(&GrayImage, CharSet)> = lines.iter().map(|l| (l, CharSet::Cp932)).collect();
    let read: String = ocr.read_lines(&batch)?.into_iter().map(|r| r.text).collect();
    Ok(read.nfkc().filter(|c| !c.is_whitespace()).collect())
}

/// How a template lies on a scan, for `hozon form check`: the scan upright and straightened,
/// where the table was found (or why not), the title read and whether its keywords match,
/// and every field as read.
pub struct Fit {
    pub frame: upright::Frame,
    pub image: GrayImage,
    pub map: Result<register::Affine, register::Error>,
    pub title: String,
    pub keywords_match: bool,
    pub reading: Option<PageReading>,
}

/// Lays `template` over a scan and reads it, whether or not it would be classified as it.
pub fn fit(gray: &GrayImage, dpi: Option<f32>, template: &Template, ocr: &mut dyn Recognizer) -> Result<Fit, Error> {
    // Turned as ingest would turn it (by this form's title, else by its text).
    let frame = read_scan(gray, dpi, std::slice::from_ref(template), ocr)?.frame;
    let upright = upright::apply(gray, frame);
    let (image, skew_deg, ink) = deskew(&upright);
    let map = locate(&image, template, ink);
    let (mut title, mut keywords_match, mut reading) = (String::new(), false, None);
    if let Ok(m) = &map {
        let (w, h) = image.dimensions();
        title = read_title(&image, m.zone(template.classify.zone, w, h), ink, ocr)?;
        keywords_match = keyword_score(&title, &template.classify.keywords).is_some();
        reading = Some(PageReading { frame, ..read_fields(&image, template, m, skew_deg, ink, ocr)? });
    }
    Ok(Fit { frame, image, map, title, keywords_match, reading })
}

/// Reads a scan as `template` whatever its printed title says (a reviewer picked the form of
/// a page no template was recognised on): brought upright and to 300 dpi, straightened, then
/// registered to the template's table rules. Fails when the rules are not found.
pub fn read_as(
    gray: &GrayImage,
    dpi: Option<f32>,
    template: &Template,
    ocr: &mut dyn Recognizer,
) -> Result<PageReading, Error> {
    let fit = fit(gray, dpi, template, ocr)?;
    fit.map?;
    Ok(fit.reading.expect("a registered page is read"))
}

/// Reads every field of `t` from a straightened page registered to it by `map`.
fn read_fields(
    image: &GrayImage,
    t: &Template,
    map: &register::Affine,
    skew_deg: f32,
    ink: u8,
    ocr: &mut dyn Recognizer,
) -> Result<PageReading, Error> {
    let (w, h) = image.dimensions();
    // Boxes are read by their ink; every other field is cropped (struck-out mistakes
    // whitened) and all of them go to the recognizer in one batch.
    let mut fields: Vec<FieldReading> = Vec::with_capacity(t.fields.len());
    let mut crops: Vec<(usize, GrayImage)> = Vec::new();
    for f in &t.fields {
        let rect = map.zone(f.zone, w, h);
        let mut reading = FieldReading {
            name: f.name.clone(),
            label: f.label.clone(),
            kind: f.kind,
            text: String::new(),
            char_confidence: Vec::new(),
            rect,
            struck: false,
            variant_doubts: Vec::new(),
        };
        match f.kind {
            FieldType::Checkbox => {
                let (ticked, confidence) = marks::tick(marks::box_ink(image, rect));
                reading.text = ticked.to_string();
                reading.char_confidence = vec![confidence];
            }
            FieldType::Choice => {
                let inks: Vec<f32> = f.boxes.iter().map(|b| marks::box_ink(image, map.zone(*b, w, h))).collect();
                let (chosen, confidence) = marks::choose(&inks);
                reading.text = chosen.map(|i| f.options[i].clone()).unwrap_or_default();
                reading.char_confidence = vec![confidence];
            }
            _ => {
                let mut crop = crop_without_rules(image, rect, ink);
                if let Some(columns) = marks::struck_columns(&crop) {
                    marks::erase_columns(&mut crop, columns);
                    reading.struck = true;
                }
                let crop = tighten(despeckle(crop, ink), ink);
                if blank(&crop) {
                    // Nothing written, not even faintly: nothing for the recognizer to do.
                } else if matches!(f.kind, FieldType::Kana | FieldType::Text) {
                    crops.extend(words(&crop, ink).into_iter().map(|w| (fields.len(), w)));
                } else {
                    crops.push((fields.len(), crop));
                }
            }
        }
        fields.push(reading);
    }
    let batch: Vec<(&GrayImage, CharSet)> = crops.iter().map(|(i, c)| (c, charset(fields[*i].kind))).collect();
    let read = ocr.read_lines(&batch)?;
    for ((i, _), r) in crops.iter().zip(read) {
        let field = &mut fields[*i];
        if !field.text.is_empty() && !r.text.is_empty() {
            field.text.push(' ');
        }
        field.text.push_str(&r.text);
        field.char_confidence.extend(r.char_confidence);
        field.variant_doubts.extend(r.variant_doubts);
    }
    Ok(PageReading {
        template: t.id(),
        form: t.form.clone(),
        sheet: t.sheet,
        skew_deg,
        frame: upright::Frame::default(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::ppocr::PpOcr;

    /// Synthetic submissions written by hand (clean scans, skewed up to 2.5°, carbon copies
    /// included): every page classified, boxes read by ink, nearly every field exact as read
    /// (before the drafts' list checks).
    #[test]
    fn synthetic_handwritten_pages_are_classified_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::synth::SynthOptions::easy(dir.path().to_owned(), 2, 11, 2.5);
        crate::synth::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
        let templates = template::load_dir(&template::default_dir()).unwrap();
        let mut ocr = PpOcr::load(&crate::ocr::ppocr::default_model()).expect("PP-OCR model: run `make setup`");
        let truth = std::fs::read_to_string(dir.path().join("truth.jsonl")).unwrap();
        let (mut fields, mut exact, mut boxes) = (0, 0, 0);
        let mut misses = Vec::new();
        for line in truth.lines() {
            let t: serde_json::Value = serde_json::from_str(line).unwrap();
            let png = std::fs::read(dir.path().join(t["file"].as_str().unwrap())).unwrap();
            let gray = image::load_from_memory(&png).unwrap().to_luma8();
            let page = read_page(&gray, &templates, &mut ocr).unwrap().expect("classified");
            let form = match t["form"].as_str().unwrap() {
                "my_number" => "my_number_form",
                f => f,
            };
            assert_eq!(page.form, form, "{}", t["file"]);
            assert_eq!(page.sheet.map(u64::from), t["sheet"].as_u64(), "{}", t["file"]);
            for f in &page.fields {
                let want: String =
                    t["fields"][&f.name].as_str().unwrap().nfkc().filter(|c| !c.is_whitespace()).collect();
                let got: String = f.text.nfkc().filter(|c| !c.is_whitespace()).collect();
                if matches!(f.kind, FieldType::Checkbox | FieldType::Choice) {
                    assert_eq!(want, got, "{} {}: boxes are read exactly", t["file"], f.name);
                    boxes += 1;
                    continue;
                }
                fields += 1;
                if want == got {
                    exact += 1;
                } else {
                    misses.push(format!("{} {}: {want} ≠ {got}", t["file"], f.name));
                }
            }
        }
        assert_eq!((fields, boxes), (2 * (12 + 12 + 5 + 6), 2 * 2 * 4));
        assert!(exact * 100 >= fields * 95, "{exact}/{fields} exact: {misses:#?}");
    }

    #[test]
    fn keywords_tolerate_a_stamp_and_take_either_wording() {
        let k = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let sheet1 = k(&["支給認定申請書", "申請書原本|更新）申請書"]);
        let sheet2 = k(&["支給認定申請書", "更新）入力票"]);
        // The stamp over 原本: the other wording still names sheet 1.
        let stamped = "特定医療費（指定難病）支給認定申請書（新規・更新）申請書〇受付";
        assert!(keyword_score(stamped, &sheet1).is_some());
        assert!(keyword_score(stamped, &sheet2).is_none());
        // A character or two under a stamp is tolerated, a missing keyword is not.
        assert!(keyword_score("特定医療費支給認〇申請書（新規・更新）入力票", &sheet2).is_some());
        assert!(keyword_score("特定医療費支給認定申請書", &sheet2).is_none());
    }

    #[test]
    fn a_page_no_template_fits_is_unclassified() {
        let templates = template::load_dir(&template::default_dir()).unwrap();
        let mut ocr = PpOcr::load(&crate::ocr::ppocr::default_model()).expect("PP-OCR model: run `make setup`");
        let blank = GrayImage::from_pixel(2480, 3508, image::Luma([250]));
        assert!(read_page(&blank, &templates, &mut ocr).unwrap().is_none());
    }

    /// The Excel editions (typed on plain paper, no carbon copy) are recognised as sheet 1 of
    /// the application and as the My Number form, and read exactly; attachments no template
    /// fits are left for the classification queue.
    #[test]
    fn typed_applications_and_attachments() {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::synth::SynthOptions {
            typed: true,
            attachments: true,
            ..crate::synth::SynthOptions::easy(dir.path().to_owned(), 3, 41, 1.5)
        };
        let truth = crate::synth::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
        let templates = template::load_dir(&template::default_dir()).unwrap();
        let mut ocr = PpOcr::load(&crate::ocr::ppocr::default_model()).expect("PP-OCR model: run `make setup`");
        let (mut typed, mut attachments) = (0, 0);
        for t in truth.iter().filter(|t| (t.typed && t.form != "clinical_survey") || t.form == crate::synth::ATTACHMENT)
        {
            let gray = image::open(dir.path().join(&t.file)).unwrap().to_luma8();
            let page = read_page(&gray, &templates, &mut ocr).unwrap();
            if t.form == crate::synth::ATTACHMENT {
                assert!(page.is_none(), "{}: an attachment is no form", t.file);
                attachments += 1;
                continue;
            }
            let page = page.expect("a typed form is recognised");
            assert_eq!(page.sheet, t.sheet, "{}", t.file);
            for f in page.fields.iter().filter(|f| !matches!(f.kind, FieldType::Checkbox | FieldType::Choice)) {
                let want: String = t.fields[&f.name].as_str().unwrap().nfkc().filter(|c| !c.is_whitespace()).collect();
                let got: String = f.text.nfkc().filter(|c| !c.is_whitespace()).collect();
                assert_eq!(want, got, "{} {}", t.file, f.name);
            }
            typed += 1;
        }
        assert!(typed >= 2 && attachments == 3, "{typed} typed pages, {attachments} attachments");
        assert!(!truth.iter().any(|t| t.typed && t.sheet == Some(2)), "a typed application has no carbon copy");
    }

    /// Handwriting drawn stroke by stroke (KanjiVG) is other ink than the font's for the same
    /// applicant, and is read.
    #[test]
    fn stroke_drawn_handwriting_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fonts = tempfile::tempdir().unwrap();
        let with = |out: &std::path::Path, style| crate::synth::SynthOptions {
            style,
            ..crate::synth::SynthOptions::easy(out.to_owned(), 2, 17, 1.0)
        };
        let bar = indicatif::ProgressBar::hidden();
        let truth = crate::synth::generate(&with(dir.path(), crate::synth::HandStyle::Strokes), &bar).unwrap();
        crate::synth::generate(&with(fonts.path(), crate::synth::HandStyle::Font), &bar).unwrap();
        assert!(truth.iter().all(|t| t.hand == Some("strokes")));
        let (a, b) = (
            std::fs::read(dir.path().join(&truth[0].file)).unwrap(),
            std::fs::read(fonts.path().join(&truth[0].file)).unwrap(),
        );
        assert_ne!(a, b, "the same applicant written two ways");
        let templates = template::load_dir(&template::default_dir()).unwrap();
        let mut ocr = PpOcr::load(&crate::ocr::ppocr::default_model()).expect("PP-OCR model: run `make setup`");
        let (mut exact, mut total) = (0, 0);
        for t in truth.iter().filter(|t| t.sheet == Some(1) || t.form == "my_number") {
            let gray = image::open(dir.path().join(&t.file)).unwrap().to_luma8();
            let page = read_page(&gray, &templates, &mut ocr).unwrap().expect("the form is recognised");
            for f in &page.fields {
                if t.handwritten[&f.name] != true || t.fields[&f.name] == "" {
                    continue;
                }
                let d = crate::drafts::normalise(f.kind, &f.text).unwrap_or_default();
                let want = crate::drafts::normalise(f.kind, t.fields[&f.name].as_str().unwrap()).unwrap();
                total += 1;
                exact += usize::from(
                    d.split_whitespace().collect::<String>() == want.split_whitespace().collect::<String>(),
                );
            }
        }
        assert!(total >= 20 && exact * 100 >= total * 85, "{exact}/{total} handwritten fields exact");
    }
}
