//! Bringing a scan into the templates' frame before anything else looks at it: turned
//! upright (pages arrive fed any of four ways round) and scaled to 300 dpi (scanners default
//! to 200, some to 400 or 600).
//!
//! Scale: from the resolution the file states when it is plausible, else from the page's size
//! (every form here is A4: its short side is 210 mm whatever the resolution), else left alone
//! (registration still absorbs a few percent).
//!
//! Orientation: the recognizer reads a few text lines of the page as it would be turned each
//! candidate way; upright Japanese reads with high confidence, upside-down or sideways text as
//! low-confidence noise. A portrait page is upright or upside down; a landscape one may be any
//! of four (a portrait form fed sideways, or a landscape document). The page as scanned is
//! tried first and kept when it reads clearly, so an upright page costs one small batch. The
//! lines come from a half-size copy with the form's rules (long straight runs of ink) removed,
//! so a table's verticals do not join every row into one band.

use std::borrow::Cow;

use image::GrayImage;
use serde::{Deserialize, Serialize};

use crate::ocr::{CharSet, Recognizer};

/// How a scan is brought into the templates' frame: turned `turns` quarter turns clockwise,
/// then scaled by `scale`. Stored with the draft, so the reviewer's field images are cut from
/// the same frame the fields were read in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub turns: u8,
    pub scale: f32,
}

impl Default for Frame {
    fn default() -> Frame {
        Frame { turns: 0, scale: 1.0 }
    }
}

impl Frame {
    pub fn is_identity(&self) -> bool {
        self.turns.is_multiple_of(4) && self.scale == 1.0
    }
}

/// A4's short side at 300 dpi, in pixels.
const A4_SHORT: f32 = 2480.0;
/// Scales closer to 1 than this are left alone (registration absorbs them).
const SCALE_SLACK: f32 = 0.015;

/// The factor that brings a `w`×`h` scan to 300 dpi: from `dpi` if the file stated a
/// plausible one, else from the A4 shape, else 1.
pub fn scale_of(w: u32, h: u32, dpi: Option<f32>) -> f32 {
    let (long, short) = (w.max(h) as f32, w.min(h).max(1) as f32);
    let scale = match dpi {
        Some(d) => 300.0 / d,
        // A4 is 297 × 210 mm (√2); at 150–650 dpi its short side is 1240–5370 px.
        None if (1.36..=1.47).contains(&(long / short)) && (1240.0..=5370.0).contains(&short) => A4_SHORT / short,
        None => 1.0,
    };
    if (scale - 1.0).abs() < SCALE_SLACK { 1.0 } else { scale.clamp(0.25, 4.0) }
}

/// Turns `gray` clockwise by `turns` quarter turns.
fn turn(gray: &GrayImage, turns: u8) -> GrayImage {
    match turns % 4 {
        1 => image::imageops::rotate90(gray),
        2 => image::imageops::rotate180(gray),
        3 => image::imageops::rotate270(gray),
        _ => gray.clone(),
    }
}

/// The scan in the frame: turned, then scaled.
pub fn apply(gray: &GrayImage, frame: Frame) -> Cow<'_, GrayImage> {
    if frame.is_identity() {
        return Cow::Borrowed(gray);
    }
    let turned = if frame.turns.is_multiple_of(4) { Cow::Borrowed(gray) } else { Cow::Owned(turn(gray, frame.turns)) };
    if frame.scale == 1.0 {
        return turned;
    }
    let (w, h) = turned.dimensions();
    let (nw, nh) = ((w as f32 * frame.scale).round().max(1.0) as u32, (h as f32 * frame.scale).round().max(1.0) as u32);
    let mut scaled = image::imageops::resize(turned.as_ref(), nw, nh, image::imageops::FilterType::Triangle);
    if is_bilevel(gray) {
        // A 1-bit scan stays 1-bit: resampling greys a thin stroke's edges (from 400 dpi its
        // whole width), and the title's colour dropout would then take the stroke for a
        // stamp's grey. A quarter covered is ink, so that a hairline survives halving.
        for p in scaled.pixels_mut() {
            p.0[0] = if p.0[0] < 192 { 0 } else { 255 };
        }
    }
    Cow::Owned(scaled)
}

/// Every pixel black or white: a 1-bit scan (as decoded).
fn is_bilevel(gray: &GrayImage) -> bool {
    gray.as_raw().iter().all(|&v| v == 0 || v == 255)
}

/// Half of the 300 dpi size: lines 20–50 px high, enough for the recognizer to be sure, and
/// a quarter of the pixels to look through.
fn half_size(gray: &GrayImage, scale: f32) -> GrayImage {
    let f = scale / 2.0;
    let (w, h) =
        ((gray.width() as f32 * f).round().max(1.0) as u32, (gray.height() as f32 * f).round().max(1.0) as u32);
    // Area averaging when shrinking (fast); a 150 dpi scan is enlarged a little.
    if f <= 1.0 {
        image::imageops::thumbnail(gray, w, h)
    } else {
        image::imageops::resize(gray, w, h, image::imageops::FilterType::Triangle)
    }
}

fn is_portrait(w: u32, h: u32) -> bool {
    h as f32 > w as f32 * 1.1
}

/// The ways a scan may be up, likeliest first (quarter turns clockwise), with its scale. A
/// portrait page is upright or upside down; a landscape scan is mostly a portrait form fed
/// sideways, turned one way or the other, and only that when the page's long rules run down
/// it (a form's table has more row rules than column rules: it lies sideways when the
/// columns win).
pub fn likely_turns(gray: &GrayImage, dpi: Option<f32>) -> (f32, Vec<u8>) {
    let scale = scale_of(gray.width(), gray.height(), dpi);
    if is_portrait(gray.width(), gray.height()) {
        return (scale, vec![0, 2]);
    }
    let half = half_size(gray, scale);
    let ink = super::register::ink_level(&half);
    (scale, landscape_turns(&half, ink).to_vec())
}

fn landscape_turns(half: &GrayImage, ink: u8) -> &'static [u8] {
    match rules_run_across(half, ink) {
        Some(false) => &[1, 3],
        _ => &[1, 3, 0, 2],
    }
}

/// Finds the frame of a scan: its scale (see [`scale_of`]) and which way up it is, by how well
/// its text reads (for a page no form template fits; a form is turned by its title).
pub fn find(gray: &GrayImage, dpi: Option<f32>, ocr: &mut dyn Recognizer) -> Result<Frame, crate::ocr::Error> {
    let scale = scale_of(gray.width(), gray.height(), dpi);
    let half = half_size(gray, scale);
    let ink = super::register::ink_level(&half);
    let clean = without_rules(&half, ink, 40);
    let portrait = is_portrait(half.width(), half.height());
    // Without a sideways table to go by, a landscape page (a card copy, a landscape
    // document) is read as scanned first, and the best reading wins.
    let candidates: &[u8] = match (portrait, rules_run_across(&half, ink)) {
        (true, _) => &[0, 2],
        (false, Some(false)) => &[1, 3],
        (false, _) => &[0, 1, 3, 2],
    };
    let mut best = (candidates[0], f32::MIN);
    for &turns in candidates {
        let page = turn(&clean, turns);
        let score = legibility(&page, ink, ocr)?;
        // Most portrait pages come upright: upside down must read clearly better, not just a
        // little (on a murky page both ways score low, and noise must not turn it over). A
        // landscape page: the best reading wins.
        let needed = if portrait && best.0 == 0 { best.1 * MARGIN + 0.05 } else { best.1 };
        if score > needed {
            best = (turns, score);
        }
        // Reads clearly this way round: no need to try the others (turned text scores
        // below half of this).
        if score >= CLEAR {
            break;
        }
    }
    Ok(Frame { turns: best.0, scale })
}

/// Whether a page's ruled lines run mostly across it (`Some(true)`), mostly down it
/// (`Some(false)`), or neither clearly (`None`: too little ruling, or as much each way). A
/// rule is measured as the length of its straight runs of ink at least a twentieth of the
/// short side long, each run allowed to wander a row either way (pages come a few degrees
/// skewed, and a slanted rule steps from row to row).
fn rules_run_across(page: &GrayImage, ink: u8) -> Option<bool> {
    let (w, h) = page.dimensions();
    let long = (w.min(h) / 20).max(8);
    let dark = |x: u32, y: u32| page.get_pixel(x, y).0[0] < ink;
    let ruled = |lines: u32, along: u32, at: &dyn Fn(u32, u32) -> bool| -> u64 {
        let mut total = 0u64;
        for i in 1..lines.saturating_sub(1) {
            let mut run = 0u32;
            for j in 0..=along {
                if j < along && (at(i - 1, j) || at(i, j) || at(i + 1, j)) {
                    run += 1;
                } else {
                    if run >= long {
                        total += u64::from(run);
                    }
                    run = 0;
                }
            }
        }
        total
    };
    let across = ruled(h, w, &|y, x| dark(x, y));
    let down = ruled(w, h, &|x, y| dark(x, y));
    // Less than two page widths of ruling in all: no table to go by.
    if across + down < 2 * u64::from(w.max(h)) {
        return None;
    }
    if across >= 2 * down {
        Some(true)
    } else if down >= 2 * across {
        Some(false)
    } else {
        None
    }
}

/// Legibility at which a page is taken to be upright without trying other ways (upright
/// forms score 0.75–0.95, turned ones below 0.45).
const CLEAR: f32 = 0.7;
/// How much better than the best so far another orientation must read.
const MARGIN: f32 = 1.25;
/// Lines read per candidate orientation.
const LINES: usize = 4;

/// How well the recognizer reads a few of the page's text lines: per line, the sum of its
/// characters' confidences over the number of characters a line of that length holds (about
/// one per line-height of width, Japanese characters being square), capped at 1; averaged.
/// Turned text reads as a few confident strokes (一, |), so counting characters as well as
/// their confidence is what tells it apart.
fn legibility(page: &GrayImage, ink: u8, ocr: &mut dyn Recognizer) -> Result<f32, crate::ocr::Error> {
    let lines = sample_lines(page, ink);
    if lines.is_empty() {
        return Ok(0.0);
    }
    let batch: Vec<(&GrayImage, CharSet)> = lines.iter().map(|l| (l, CharSet::Cp932)).collect();
    let read = ocr.read_lines(&batch)?;
    let total: f32 = lines
        .iter()
        .zip(&read)
        .map(|(line, r)| {
            let expected = (line.width() as f32 / line.height().max(1) as f32).max(1.0);
            (r.char_confidence.iter().sum::<f32>() / expected).min(1.0)
        })
        .sum();
    Ok(total / lines.len() as f32)
}

/// Up to [`LINES`] text lines of `page` (bands of inked rows 10–50 px high), each cut to at
/// most eight line-heights from its first ink, spread over the page.
fn sample_lines(page: &GrayImage, ink: u8) -> Vec<GrayImage> {
    let (w, h) = page.dimensions();
    let inked: Vec<u32> = (0..h).map(|y| (0..w).filter(|&x| page.get_pixel(x, y).0[0] < ink).count() as u32).collect();
    // A row of text has ink in dozens of columns; scanner grain leaves a speck or two.
    let min_ink = (w / 200).max(4);
    let mut bands: Vec<(u32, u32)> = Vec::new();
    let mut start = None;
    for y in 0..=h {
        let on = y < h && inked[y as usize] >= min_ink;
        match (on, start) {
            (true, None) => start = Some(y),
            (false, Some(s)) => {
                if (10..=50).contains(&(y - s)) {
                    bands.push((s, y));
                }
                start = None;
            }
            _ => {}
        }
    }
    // Spread the sample over the page: every k-th band.
    let step = bands.len().div_ceil(LINES).max(1);
    bands
        .iter()
        .step_by(step)
        .filter_map(|&(top, bottom)| {
            let bh = bottom - top;
            let cols: Vec<u32> = (0..w).filter(|&x| (top..bottom).any(|y| page.get_pixel(x, y).0[0] < ink)).collect();
            let (&x0, &x1) = (cols.first()?, cols.last()?);
            let x0 = x0.saturating_sub(4);
            let width = (x1 + 5 - x0).min(8 * bh).min(w - x0);
            let (y0, y1) = (top.saturating_sub(4), (bottom + 4).min(h));
            Some(image::imageops::crop_imm(page, x0, y0, width, y1 - y0).to_image())
        })
        .take(LINES)
        .collect()
}

/// `page` with every straight run of ink longer than `long` pixels (horizontal or vertical)
/// whitened: the form's rules and boxes go, text (shorter strokes) stays.
fn without_rules(page: &GrayImage, ink: u8, long: u32) -> GrayImage {
    let (w, h) = page.dimensions();
    let mut out = page.clone();
    let dark = |x: u32, y: u32| page.get_pixel(x, y).0[0] < ink;
    let erase = |out: &mut GrayImage, coords: &mut dyn Iterator<Item = (u32, u32)>| {
        let mut run: Vec<(u32, u32)> = Vec::new();
        for (x, y) in coords.chain(std::iter::once((u32::MAX, u32::MAX))) {
            if x != u32::MAX && dark(x, y) {
                run.push((x, y));
                continue;
            }
            if run.len() as u32 > long {
                for &(rx, ry) in &run {
                    out.put_pixel(rx, ry, image::Luma([255]));
                }
            }
            run.clear();
        }
    };
    for y in 0..h {
        erase(&mut out, &mut (0..w).map(|x| (x, y)));
    }
    for x in 0..w {
        erase(&mut out, &mut (0..h).map(|y| (x, y)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_comes_from_the_stated_resolution_or_the_a4_shape() {
        assert_eq!(scale_of(1654, 2339, Some(200.0)), 1.5);
        assert_eq!(scale_of(1654, 2339, None), 2480.0 / 1654.0, "A4 at 200 dpi by its shape");
        assert_eq!(scale_of(2339, 1654, None), 2480.0 / 1654.0, "sideways too");
        assert_eq!(scale_of(2480, 3508, None), 1.0);
        assert_eq!(scale_of(2475, 3500, None), 1.0, "within the slack registration absorbs");
        assert_eq!(scale_of(1654, 1169, None), 1.0, "not A4: left alone");
    }

    #[test]
    fn apply_turns_then_scales() {
        let mut img = GrayImage::from_pixel(40, 20, image::Luma([255]));
        img.put_pixel(0, 0, image::Luma([0]));
        let out = apply(&img, Frame { turns: 1, scale: 2.0 });
        assert_eq!(out.dimensions(), (40, 80));
        // The top-left pixel, turned clockwise, is at the top right.
        assert!(out.get_pixel(39, 0).0[0] < 128);
        assert!(matches!(apply(&img, Frame::default()), Cow::Borrowed(_)));
    }

    #[test]
    fn rules_are_removed_and_text_stays() {
        let mut img = GrayImage::from_pixel(200, 100, image::Luma([255]));
        for x in 0..200 {
            img.put_pixel(x, 50, image::Luma([0]));
        }
        for y in 0..100 {
            img.put_pixel(10, y, image::Luma([0]));
        }
        for x in 100..120 {
            img.put_pixel(x, 20, image::Luma([0]));
        }
        let out = without_rules(&img, 128, 40);
        assert_eq!(out.get_pixel(150, 50).0[0], 255);
        assert_eq!(out.get_pixel(10, 80).0[0], 255);
        assert_eq!(out.get_pixel(110, 20).0[0], 0);
    }

    /// A skewed form fed sideways: its rules run down the page, so only the two sideways
    /// turns are tried, and the right one is found; upright, its rules run across.
    #[test]
    fn a_sideways_skewed_form_is_turned_by_its_rules_and_its_text() {
        use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::synth::SynthOptions::easy(dir.path().to_owned(), 1, 11, 0.0);
        let truth = crate::synth::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
        let page = image::open(dir.path().join(&truth[2].file)).unwrap().to_luma8();
        let skewed = rotate_about_center(
            &page,
            2.8f32.to_radians(),
            Interpolation::Bilinear,
            Border::Constant(image::Luma([255])),
        );
        let half = image::imageops::thumbnail(&skewed, skewed.width() / 2, skewed.height() / 2);
        assert_eq!(rules_run_across(&half, 160), Some(true));
        let sideways = turn(&skewed, 1);
        assert_eq!(rules_run_across(&turn(&half, 1), 160), Some(false));
        assert_eq!(likely_turns(&sideways, None).1, vec![1, 3], "a sideways form is turned one way or the other");
        let mut ocr = crate::ocr::ppocr::PpOcr::load(&crate::ocr::ppocr::default_model()).expect("PP-OCR model");
        assert_eq!(find(&sideways, None, &mut ocr).unwrap().turns, 3);
        assert_eq!(find(&turn(&skewed, 3), None, &mut ocr).unwrap().turns, 1);
        // A 1-bit scan scaled stays 1-bit.
        let bilevel =
            GrayImage::from_fn(300, 400, |x, y| image::Luma([if (x / 3 + y / 5) % 2 == 0 { 0 } else { 255 }]));
        let scaled = apply(&bilevel, Frame { turns: 0, scale: 0.75 });
        assert!(is_bilevel(&scaled) && scaled.pixels().filter(|p| p.0[0] == 0).count() > 20_000);
    }

    /// A scan at 150 or 600 dpi (resolution stated, or not) is brought to the templates'
    /// 300 dpi and read like any other.
    #[test]
    fn pages_at_150_and_600_dpi_are_read() {
        use crate::forms::template;
        use unicode_normalization::UnicodeNormalization;
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::synth::SynthOptions::easy(dir.path().to_owned(), 1, 3, 1.0);
        let truth = crate::synth::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
        let t = &truth[0];
        let page = image::open(dir.path().join(&t.file)).unwrap().to_luma8();
        let templates = template::load_dir(&template::default_dir()).unwrap();
        let mut ocr = crate::ocr::ppocr::PpOcr::load(&crate::ocr::ppocr::default_model()).expect("PP-OCR model");
        for (dpi, stated) in [(150u32, Some(150.0)), (150, None), (600, Some(600.0))] {
            let (w, h) = (page.width() * dpi / 300, page.height() * dpi / 300);
            let scan = image::imageops::resize(&page, w, h, image::imageops::FilterType::Triangle);
            let read = crate::forms::read_scan(&scan, stated, &templates, &mut ocr).unwrap();
            let reading = read.reading.unwrap_or_else(|| panic!("{dpi} dpi ({stated:?}): not classified"));
            assert_eq!((reading.form.as_str(), reading.sheet), ("application", Some(1)), "{dpi} dpi");
            let norm = |s: &str| -> String { s.nfkc().filter(|c| !c.is_whitespace()).collect() };
            let texts: Vec<_> = reading
                .fields
                .iter()
                .filter(|f| !matches!(f.kind, template::FieldType::Checkbox | template::FieldType::Choice))
                .collect();
            let exact = texts.iter().filter(|f| norm(&f.text) == norm(t.fields[&f.name].as_str().unwrap())).count();
            assert!(exact * 10 >= texts.len() * 9, "{dpi} dpi: {exact}/{} fields exact", texts.len());
        }
    }
}
