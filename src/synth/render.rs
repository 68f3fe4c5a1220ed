//! Draws a form page at 300 dpi in two layers, the way paper forms are made: the printed form
//! (title, labels, boxes, option captions) and the applicant's ink (handwriting, ticks,
//! corrections), then makes the result look scanned. The carbon copy (sheet 2) is its own
//! printed form under a faint, spread impression of sheet 1's ink.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use image::{GrayImage, ImageBuffer, Luma, Pixel};
use imageproc::drawing::{
    draw_filled_rect_mut, draw_hollow_circle_mut, draw_line_segment_mut, draw_text_mut, text_size,
};
use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};
use imageproc::rect::Rect;
use rand::Rng;
use rand::seq::SliceRandom;

use super::strokes::{Hand, Strokes};

/// A4 at 300 dpi.
pub const PAGE_W: u32 = 2480;
pub const PAGE_H: u32 = 3508;
const MARGIN: i32 = 200;
const LABEL_W: i32 = 560;
const ROW_H: i32 = 160;
/// Where values start in a row (left edge of the value cell + 40).
const VALUE_X: i32 = MARGIN + LABEL_W + 40;
const INK: Luma<u8> = Luma([20]);
const WHITE: Luma<u8> = Luma([255]);
/// Comb cell width (My Number: 12 cells).
const CELL: i32 = 118;
/// Tick box: side, and the distance between a choice's boxes.
const BOX: i32 = 70;
const OPTION_STEP: i32 = 320;
/// In a split row, where the second caption starts.
const SPLIT_STEP: i32 = 800;

pub const GOTHIC: &str = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf";
pub const MINCHO: &str = "/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf";
/// Handwriting-style fonts (Debian fonts-klee, fonts-seto, fonts-kiloji, fonts-yozvox-yozfont).
/// Klee One, the most complete, is the fallback for characters another font lacks.
pub const HANDS: [&str; 5] = [
    "/usr/share/fonts/truetype/klee/KleeOne-Regular.ttf",
    "/usr/share/fonts/truetype/klee/KleeOne-SemiBold.ttf",
    "/usr/share/fonts/truetype/seto/setofont.ttf",
    "/usr/share/fonts/truetype/yozvox-yozfont/YOzRN_.ttf",
    "/usr/share/fonts/truetype/kiloji/kiloji.ttf",
];

pub struct Fonts {
    pub gothic: FontVec,
    pub mincho: FontVec,
    pub hands: Vec<FontVec>,
}

fn load_font(p: &str) -> anyhow::Result<FontVec> {
    let bytes = std::fs::read(p)
        .map_err(|e| anyhow::anyhow!("font {p}: {e} (the fonts are Debian packages installed by `make setup`)"))?;
    FontVec::try_from_vec(bytes).map_err(|e| anyhow::anyhow!("font {p}: {e}"))
}

impl Fonts {
    pub fn load() -> anyhow::Result<Fonts> {
        Ok(Fonts {
            gothic: load_font(GOTHIC)?,
            mincho: load_font(MINCHO)?,
            hands: HANDS.iter().map(|p| load_font(p)).collect::<anyhow::Result<_>>()?,
        })
    }
}

/// What a row's value cell holds.
pub enum Value<'a> {
    /// Text, handwritten by the applicant or printed (typed by a hospital system).
    Text { text: &'a str, hand: bool },
    /// One character per comb box, handwritten or typed.
    Comb { text: &'a str, hand: bool },
    /// Two parts after printed captions (記号 … 番号 …), handwritten or typed.
    Split { parts: [(&'a str, &'a str); 2], hand: bool },
    /// Printed boxes with captions; the chosen one ticked.
    Choice { options: &'a [&'a str], chosen: &'a str },
    /// One printed box with a caption, ticked or not.
    Checkbox { caption: &'a str, ticked: bool },
}

pub struct Row<'a> {
    pub label: &'a str,
    pub value: Value<'a>,
}

pub struct PageSpec<'a> {
    pub title: &'a str,
    pub subtitle: &'a str,
    pub rows: Vec<Row<'a>>,
    pub footer: &'a str,
}

fn line(img: &mut GrayImage, x: i32, y: i32, w: u32, h: u32) {
    draw_filled_rect_mut(img, Rect::at(x, y).of_size(w, h), INK);
}

fn boxed(img: &mut GrayImage, x: i32, y: i32, w: u32, h: u32) {
    line(img, x, y, w, 3);
    line(img, x, y + h as i32 - 3, w, 3);
    line(img, x, y, 3, h);
    line(img, x + w as i32 - 3, y, 3, h);
}

fn row_top(i: usize) -> i32 {
    520 + i as i32 * ROW_H
}

/// The printed form: everything the applicant did not write.
pub fn draw_form(spec: &PageSpec, fonts: &Fonts) -> GrayImage {
    let mut img = GrayImage::from_pixel(PAGE_W, PAGE_H, WHITE);
    let centred = |img: &mut GrayImage, y: i32, size: f32, text: &str| {
        let scale = PxScale::from(size);
        let (w, _) = text_size(scale, &fonts.gothic, text);
        draw_text_mut(img, INK, (PAGE_W as i32 - w as i32) / 2, y, scale, &fonts.gothic, text);
    };
    centred(&mut img, 230, 76.0, spec.title);
    centred(&mut img, 340, 44.0, spec.subtitle);
    let caption = PxScale::from(46.0);
    let table_w = PAGE_W as i32 - 2 * MARGIN;
    for (i, row) in spec.rows.iter().enumerate() {
        let y = row_top(i);
        boxed(&mut img, MARGIN, y, table_w as u32, ROW_H as u32);
        line(&mut img, MARGIN + LABEL_W, y, 3, ROW_H as u32);
        draw_text_mut(&mut img, INK, MARGIN + 30, y + 55, caption, &fonts.gothic, row.label);
        match &row.value {
            Value::Text { text, hand: false } => {
                draw_text_mut(&mut img, INK, VALUE_X, y + 45, PxScale::from(62.0), &fonts.mincho, text);
            }
            Value::Text { .. } => {}
            Value::Comb { text, hand } => {
                for (i, c) in text.chars().enumerate() {
                    let x = VALUE_X + i as i32 * CELL;
                    boxed(&mut img, x, y + 20, CELL as u32, (ROW_H - 40) as u32);
                    if !hand {
                        let digit = PxScale::from(70.0);
                        draw_text_mut(&mut img, INK, x + 40, y + 45, digit, &fonts.mincho, &c.to_string());
                    }
                }
            }
            Value::Split { parts, hand } => {
                for (i, (cap, text)) in parts.iter().enumerate() {
                    let x = VALUE_X + i as i32 * SPLIT_STEP;
                    draw_text_mut(&mut img, INK, x, y + 55, caption, &fonts.gothic, cap);
                    if !hand {
                        draw_text_mut(&mut img, INK, x + 140, y + 45, PxScale::from(62.0), &fonts.mincho, text);
                    }
                }
            }
            Value::Choice { options, .. } => {
                for (i, opt) in options.iter().enumerate() {
                    let bx = VALUE_X + i as i32 * OPTION_STEP;
                    boxed(&mut img, bx, y + 45, BOX as u32, BOX as u32);
                    draw_text_mut(&mut img, INK, bx + BOX + 25, y + 55, caption, &fonts.gothic, opt);
                }
            }
            Value::Checkbox { caption: cap, .. } => {
                boxed(&mut img, VALUE_X, y + 45, BOX as u32, BOX as u32);
                draw_text_mut(&mut img, INK, VALUE_X + BOX + 25, y + 55, caption, &fonts.gothic, cap);
            }
        }
    }
    let footer_y = row_top(spec.rows.len()) + 80;
    draw_text_mut(&mut img, INK, MARGIN, footer_y, PxScale::from(40.0), &fonts.gothic, spec.footer);
    img
}

/// One applicant's hand: a font (or a pen drawing KanjiVG strokes), a size, a pen, a slant.
/// Every character then varies on its own.
pub struct Writer<'f> {
    font: &'f FontVec,
    fallback: &'f FontVec,
    size: f32,
    pen: u8,
    slant_deg: f32,
    /// Writes stroke by stroke where KanjiVG has the character (the font for the rest).
    strokes: Option<(&'f Strokes, Hand)>,
}

impl<'f> Writer<'f> {
    pub fn new(fonts: &'f Fonts, rng: &mut impl Rng) -> Writer<'f> {
        Writer {
            font: fonts.hands.choose(rng).expect("handwriting fonts"),
            fallback: &fonts.hands[0],
            size: rng.gen_range(60.0..72.0),
            pen: rng.gen_range(10..80),
            slant_deg: rng.gen_range(-3.0..3.0),
            strokes: None,
        }
    }

    /// The same person writing with a pen, stroke by stroke.
    pub fn with_strokes(self, strokes: &'f Strokes, rng: &mut impl Rng) -> Writer<'f> {
        let hand = Hand::draw(rng, self.slant_deg);
        Writer { strokes: Some((strokes, hand)), ..self }
    }

    /// How this writer writes: `"strokes"` or `"font"` (truth.jsonl, eval's conditions).
    pub fn style(&self) -> &'static str {
        if self.strokes.is_some() { "strokes" } else { "font" }
    }

    fn font_for(&self, c: char) -> &'f FontVec {
        if self.font.glyph_id(c).0 != 0 { self.font } else { self.fallback }
    }

    /// Draws one character with its top-left near (x, y); returns its advance.
    fn glyph(&self, ink: &mut GrayImage, c: char, x: i32, y: i32, size: f32, rng: &mut impl Rng) -> i32 {
        if let Some((strokes, hand)) = &self.strokes {
            let pen = (i32::from(self.pen) + rng.gen_range(-10..=10)).clamp(0, 110) as u8;
            let drawn = hand.glyph(strokes, ink, c, f64::from(x), f64::from(y), f64::from(size), pen, rng);
            if let Some(advance) = drawn {
                return advance;
            }
        }
        let font = self.font_for(c);
        let scale = PxScale::from(size);
        let advance = font.as_scaled(scale).h_advance(font.glyph_id(c)).round() as i32;
        if c.is_whitespace() {
            return advance;
        }
        let pad = (size * 0.3) as i32;
        let side = (size * 1.6) as u32;
        let mut canvas = GrayImage::from_pixel(side, side, WHITE);
        let pen = (i32::from(self.pen) + rng.gen_range(-10..=10)).clamp(0, 110) as u8;
        draw_text_mut(&mut canvas, Luma([pen]), pad, pad, scale, font, &c.to_string());
        let angle = (self.slant_deg + rng.gen_range(-4.0..4.0f32)).to_radians();
        let turned = rotate_about_center(&canvas, angle, Interpolation::Bilinear, Border::Constant(WHITE));
        darken(ink, &turned, x - pad, y - pad);
        advance
    }

    /// Writes `text` from (x, y) with per-character size, rotation, baseline and spacing jitter;
    /// returns where the writing ends.
    pub fn write(&self, ink: &mut GrayImage, text: &str, x: i32, y: i32, rng: &mut impl Rng) -> i32 {
        let mut x = x;
        for c in text.chars() {
            let size = self.size * rng.gen_range(0.9..1.1);
            let dy = rng.gen_range(-5..=5);
            x += self.glyph(ink, c, x, y + dy, size, rng) + rng.gen_range(-3..=6);
        }
        x
    }

    /// One digit per comb cell, each placed by hand (not quite centred).
    fn comb(&self, ink: &mut GrayImage, text: &str, x: i32, y: i32, rng: &mut impl Rng) {
        for (i, c) in text.chars().enumerate() {
            let size = rng.gen_range(66.0..80.0);
            let cx = x + i as i32 * CELL + (CELL - (size * 0.55) as i32) / 2 + rng.gen_range(-8..=8);
            self.glyph(ink, c, cx, y + 20 + rng.gen_range(18..34), size, rng);
        }
    }

    /// A tick (✓) or a cross (✗) in the box at (x, y), with a thick pen.
    fn tick(&self, ink: &mut GrayImage, x: i32, y: i32, rng: &mut impl Rng) {
        let j = |rng: &mut dyn rand::RngCore| rng.gen_range(-6..=6) as f32;
        let (x, y) = (x as f32, y as f32);
        let strokes: Vec<[(f32, f32); 2]> = if rng.gen_bool(0.8) {
            let mid = (x + 28.0 + j(rng), y + 58.0 + j(rng));
            vec![[(x + 8.0 + j(rng), y + 32.0 + j(rng)), mid], [mid, (x + 80.0 + j(rng), y - 4.0 + j(rng))]]
        } else {
            vec![
                [(x + 8.0 + j(rng), y + 8.0 + j(rng)), (x + 62.0 + j(rng), y + 62.0 + j(rng))],
                [(x + 62.0 + j(rng), y + 8.0 + j(rng)), (x + 8.0 + j(rng), y + 62.0 + j(rng))],
            ]
        };
        let pen = Luma([self.pen]);
        for [a, b] in strokes {
            for d in -3..=3 {
                let d = d as f32;
                draw_line_segment_mut(ink, (a.0 + d * 0.5, a.1 + d), (b.0 + d * 0.5, b.1 + d), pen);
            }
        }
    }
}

/// `dst = min(dst, src)` at an offset: ink only ever darkens paper.
fn darken(dst: &mut GrayImage, src: &GrayImage, x0: i32, y0: i32) {
    let (w, h) = dst.dimensions();
    for (x, y, p) in src.enumerate_pixels() {
        let (dx, dy) = (x0 + x as i32, y0 + y as i32);
        if dx >= 0 && dy >= 0 && (dx as u32) < w && (dy as u32) < h {
            let q = dst.get_pixel_mut(dx as u32, dy as u32);
            q.0[0] = q.0[0].min(p.0[0]);
        }
    }
}

/// What the applicant did in one row beyond writing the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowInk<'a> {
    /// Wrote this first, struck it through with a double line and wrote the value after it.
    pub struck: Option<&'a str>,
}

/// The applicant's ink for a page: handwritten values, comb digits, ticks and corrections (with
/// a small correction seal, 訂正印, as Japanese forms require).
pub fn draw_ink(spec: &PageSpec, writer: &Writer, extras: &[RowInk], rng: &mut impl Rng) -> GrayImage {
    let mut ink = GrayImage::from_pixel(PAGE_W, PAGE_H, WHITE);
    for (i, row) in spec.rows.iter().enumerate() {
        let y = row_top(i);
        let extra = extras.get(i).copied().unwrap_or_default();
        match &row.value {
            Value::Text { text, hand: true } => {
                let mut x = VALUE_X + rng.gen_range(-6..=10);
                if let Some(wrong) = extra.struck {
                    let end = writer.write(&mut ink, wrong, x, y + 45, rng);
                    strike(&mut ink, x - 8, end + 4, y + 80, writer.pen, rng);
                    seal(&mut ink, end - 20, y + 40, 28, rng);
                    x = end + 60;
                }
                writer.write(&mut ink, text, x, y + 45, rng);
            }
            Value::Text { .. } => {}
            Value::Comb { text, hand: true } => writer.comb(&mut ink, text, VALUE_X, y, rng),
            Value::Comb { .. } | Value::Split { hand: false, .. } => {}
            Value::Split { parts, hand: true } => {
                for (k, (_, text)) in parts.iter().enumerate() {
                    writer.write(&mut ink, text, VALUE_X + k as i32 * SPLIT_STEP + 140, y + 45, rng);
                }
            }
            Value::Choice { options, chosen } => {
                if let Some(k) = options.iter().position(|o| o == chosen) {
                    writer.tick(&mut ink, VALUE_X + k as i32 * OPTION_STEP, y + 45, rng);
                }
            }
            Value::Checkbox { ticked, .. } => {
                if *ticked {
                    writer.tick(&mut ink, VALUE_X, y + 45, rng);
                }
            }
        }
    }
    ink
}

/// A double line through a mistake (二重線).
fn strike(ink: &mut GrayImage, x0: i32, x1: i32, y: i32, pen: u8, rng: &mut impl Rng) {
    for gap in [-9.0f32, 9.0] {
        let tilt = rng.gen_range(-4.0..4.0f32);
        for t in -1..=1 {
            let dy = y as f32 + gap + t as f32;
            draw_line_segment_mut(ink, (x0 as f32, dy), (x1 as f32, dy + tilt), Luma([pen]));
        }
    }
}

/// A seal impression: a ring in stamp-pad ink (mid grey once scanned) with a character in it.
fn seal(img: &mut GrayImage, cx: i32, cy: i32, r: i32, rng: &mut impl Rng) {
    let grey = Luma([rng.gen_range(120..160)]);
    for d in 0..(r / 8).max(2) {
        draw_hollow_circle_mut(img, (cx, cy), r - d, grey);
    }
}

/// The received stamp (受付印) struck over the header: a ring, the office and a date, on a
/// layer of its own (a colour scan shows it red).
pub fn stamp(fonts: &Fonts, date: &str, rng: &mut impl Rng) -> GrayImage {
    let mut layer = GrayImage::from_pixel(PAGE_W, PAGE_H, WHITE);
    let img = &mut layer;
    let (cx, cy) = (rng.gen_range(1550..2150), rng.gen_range(250..380));
    let grey = rng.gen_range(120..160);
    seal(img, cx, cy, 120, rng);
    let mut text = GrayImage::from_pixel(PAGE_W, PAGE_H, WHITE);
    let s = PxScale::from(40.0);
    for (dy, t) in [(-70, "東京都"), (-20, date), (30, "受付")] {
        let (w, _) = text_size(s, &fonts.gothic, t);
        draw_text_mut(&mut text, Luma([grey]), cx - w as i32 / 2, cy + dy, s, &fonts.gothic, t);
    }
    darken_all(img, &text);
    layer
}

/// Lays the ink over the form.
pub fn darken_all(page: &mut GrayImage, ink: &GrayImage) {
    for (p, q) in page.pixels_mut().zip(ink.pixels()) {
        p.0[0] = p.0[0].min(q.0[0]);
    }
}

/// Carbon copy of the ink: fainter (`strength` of the original darkness) and spread.
pub fn carbon(ink: &GrayImage, strength: f32, spread: f32) -> GrayImage {
    let mut faint = ink.clone();
    for p in faint.pixels_mut() {
        p.0[0] = 255 - (f32::from(255 - p.0[0]) * strength) as u8;
    }
    imageproc::filter::gaussian_blur_f32(&faint, spread)
}

/// How rough the scans are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knobs {
    pub max_skew_deg: f32,
    /// Grain: each pixel moves up to this many grey levels; specks scale with it too.
    pub noise: u8,
    /// Gaussian blur of the whole scan (0 = none).
    pub blur: f32,
    /// A received stamp over the header.
    pub stamps: bool,
    /// Chance that an optional handwritten field is left empty.
    pub empty_rate: f64,
    /// Chance that a handwritten field carries a crossed-out mistake before its value.
    pub crossout_rate: f64,
    /// The carbon copy's darkness relative to the original, and its spread.
    pub carbon: (f32, f32),
}

impl Knobs {
    pub fn easy(max_skew_deg: f32) -> Knobs {
        Knobs {
            max_skew_deg,
            noise: 0,
            blur: 0.0,
            stamps: false,
            empty_rate: 0.0,
            crossout_rate: 0.0,
            carbon: (0.55, 1.1),
        }
    }

    /// `--hard`: every difficulty on.
    pub fn hard(max_skew_deg: f32) -> Knobs {
        Knobs {
            max_skew_deg,
            noise: 24,
            blur: 0.8,
            stamps: true,
            empty_rate: 0.15,
            crossout_rate: 0.08,
            carbon: (0.4, 1.4),
        }
    }
}

/// Scanner artefacts: a contrast gradient across the page, grain, specks, blur, and a skew of up
/// to `knobs.max_skew_deg` degrees either way. Grey or colour alike (each channel the same).
pub fn scan<P>(img: &ImageBuffer<P, Vec<u8>>, rng: &mut impl Rng, knobs: &Knobs) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + Send + Sync,
{
    // A pixel of grey level `v` in every channel.
    let level = |v: u8| *P::from_slice(&[v; 4][..usize::from(P::CHANNEL_COUNT)]);
    let mut out = img.clone();
    let (w, h) = out.dimensions();
    let dark_left = rng.gen_bool(0.5);
    let depth = rng.gen_range(10.0..28.0f32);
    let grain = i16::from(knobs.noise);
    for (x, _, p) in out.enumerate_pixels_mut() {
        let t = x as f32 / w as f32;
        let shade = depth * if dark_left { 1.0 - t } else { t };
        let noise = if grain > 0 { f32::from(rng.gen_range(-grain..=grain)) } else { 0.0 };
        for c in p.channels_mut() {
            *c = (f32::from(*c) - shade + noise).clamp(0.0, 255.0) as u8;
        }
    }
    for _ in 0..400 + 40 * usize::from(knobs.noise) {
        let (x, y) = (rng.gen_range(0..w - 3), rng.gen_range(0..h - 3));
        let v = rng.gen_range(40..160u8);
        draw_filled_rect_mut(
            &mut out,
            Rect::at(x as i32, y as i32).of_size(rng.gen_range(1..4), rng.gen_range(1..4)),
            level(v),
        );
    }
    if knobs.blur > 0.0 {
        out = imageproc::filter::gaussian_blur_f32(&out, knobs.blur);
    }
    let deg = rng.gen_range(-knobs.max_skew_deg..=knobs.max_skew_deg);
    rotate_about_center(&out, deg.to_radians(), Interpolation::Bilinear, Border::Constant(level(240)))
}
