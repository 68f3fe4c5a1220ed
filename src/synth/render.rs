//! Draws a printed form page at 300 dpi and makes it look scanned: uneven contrast, specks,
//! skew, and for the carbon copy a fainter, blurred impression.

use ab_glyph::{FontVec, PxScale};
use image::{GrayImage, Luma};
use imageproc::drawing::{draw_filled_rect_mut, draw_text_mut, text_size};
use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};
use imageproc::rect::Rect;
use rand::Rng;

/// A4 at 300 dpi.
pub const PAGE_W: u32 = 2480;
pub const PAGE_H: u32 = 3508;
const MARGIN: i32 = 200;
const LABEL_W: i32 = 560;
const ROW_H: i32 = 160;
const INK: Luma<u8> = Luma([20]);

pub struct Fonts {
    pub gothic: FontVec,
    pub mincho: FontVec,
}

pub const GOTHIC: &str = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf";
pub const MINCHO: &str = "/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf";

impl Fonts {
    pub fn load() -> anyhow::Result<Fonts> {
        let load = |p: &str| -> anyhow::Result<FontVec> {
            let bytes = std::fs::read(p).map_err(|e| {
                anyhow::anyhow!(
                    "font {p}: {e} (install fonts-ipaexfont-gothic and fonts-ipaexfont-mincho: `make setup`)"
                )
            })?;
            FontVec::try_from_vec(bytes).map_err(|e| anyhow::anyhow!("font {p}: {e}"))
        };
        Ok(Fonts { gothic: load(GOTHIC)?, mincho: load(MINCHO)? })
    }
}

/// One line of a form: a printed label and what the applicant wrote.
pub struct Row<'a> {
    pub label: &'a str,
    pub value: &'a str,
    /// Draw the value one character per comb box (My Number).
    pub comb: bool,
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

/// Draws the clean page.
pub fn draw(spec: &PageSpec, fonts: &Fonts, rng: &mut impl Rng) -> GrayImage {
    let mut img = GrayImage::from_pixel(PAGE_W, PAGE_H, Luma([255]));
    let title_scale = PxScale::from(76.0);
    let (tw, _) = text_size(title_scale, &fonts.gothic, spec.title);
    draw_text_mut(&mut img, INK, (PAGE_W as i32 - tw as i32) / 2, 230, title_scale, &fonts.gothic, spec.title);
    let sub_scale = PxScale::from(44.0);
    let (sw, _) = text_size(sub_scale, &fonts.gothic, spec.subtitle);
    draw_text_mut(&mut img, INK, (PAGE_W as i32 - sw as i32) / 2, 340, sub_scale, &fonts.gothic, spec.subtitle);
    let table_w = PAGE_W as i32 - 2 * MARGIN;
    let mut y = 520;
    let label_scale = PxScale::from(46.0);
    let value_scale = PxScale::from(62.0);
    for row in &spec.rows {
        boxed(&mut img, MARGIN, y, table_w as u32, ROW_H as u32);
        line(&mut img, MARGIN + LABEL_W, y, 3, ROW_H as u32);
        draw_text_mut(&mut img, INK, MARGIN + 30, y + 55, label_scale, &fonts.gothic, row.label);
        let vx = MARGIN + LABEL_W + 40;
        if row.comb {
            let cell = 118;
            for (i, ch) in row.value.chars().enumerate() {
                let cx = vx + i as i32 * cell;
                boxed(&mut img, cx, y + 20, cell as u32, (ROW_H - 40) as u32);
                let jitter = rng.gen_range(-4..=4);
                draw_text_mut(&mut img, INK, cx + 38 + jitter, y + 42, value_scale, &fonts.mincho, &ch.to_string());
            }
        } else {
            let jitter = rng.gen_range(-6..=6);
            draw_text_mut(&mut img, INK, vx + jitter, y + 45 + jitter, value_scale, &fonts.mincho, row.value);
        }
        y += ROW_H;
    }
    draw_text_mut(&mut img, INK, MARGIN, y + 80, PxScale::from(40.0), &fonts.gothic, spec.footer);
    img
}

/// Carbon copy: the impression is fainter and slightly spread.
pub fn carbon_copy(img: &GrayImage) -> GrayImage {
    let mut faint = img.clone();
    for p in faint.pixels_mut() {
        p.0[0] = 255 - ((255 - u32::from(p.0[0])) * 55 / 100) as u8;
    }
    imageproc::filter::gaussian_blur_f32(&faint, 1.1)
}

/// Scanner artefacts: a contrast gradient across the page, specks, and a skew of up to
/// `max_skew_deg` degrees either way.
pub fn scan(img: &GrayImage, rng: &mut impl Rng, max_skew_deg: f32) -> GrayImage {
    let mut out = img.clone();
    let (w, h) = out.dimensions();
    let dark_left = rng.gen_bool(0.5);
    let depth = rng.gen_range(10.0..28.0f32);
    for (x, _, p) in out.enumerate_pixels_mut() {
        let t = x as f32 / w as f32;
        let shade = depth * if dark_left { 1.0 - t } else { t };
        p.0[0] = (f32::from(p.0[0]) - shade).clamp(0.0, 255.0) as u8;
    }
    for _ in 0..400 {
        let (x, y) = (rng.gen_range(0..w - 3), rng.gen_range(0..h - 3));
        let v = rng.gen_range(40..160u8);
        draw_filled_rect_mut(
            &mut out,
            Rect::at(x as i32, y as i32).of_size(rng.gen_range(1..4), rng.gen_range(1..4)),
            Luma([v]),
        );
    }
    let deg = rng.gen_range(-max_skew_deg..=max_skew_deg);
    let paper = Luma([240]);
    rotate_about_center(&out, deg.to_radians(), Interpolation::Bilinear, Border::Constant(paper))
}
