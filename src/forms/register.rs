//! Registration: straightening a scan and mapping the template's coordinates onto it, so that
//! a field's zone crops exactly that field even when the page went through the scanner a few
//! degrees askew, a few percent enlarged or shifted.
//!
//! Skew: the angle at which the dark pixels' rows line up best (a projection profile over
//! sheared coordinates, on a quarter-size copy; ±5° in 0.1° then 0.02° steps). Then the
//! field table's outer rules, the longest dark lines on a form, are found by row and column
//! profiles, and the template's table rectangle is mapped onto them (scale and shift per axis).

use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};

use super::template::{Template, Zone};

/// The grey level below which a pixel is ink on this page (Otsu's threshold, capped: a faint
/// carbon copy has lighter ink than an original).
pub fn ink_level(gray: &GrayImage) -> u8 {
    otsu_level(gray).clamp(90, 210)
}

/// Otsu's threshold: the level that best separates the histogram into two classes. Written
/// here because `imageproc::contrast::otsu_level` (0.27) sums `level × count` in `u32`, which
/// overflows on a mostly white page above ~16.8 Mpx (an A3 scan at 400 dpi): a panic in a
/// debug build, a wrong threshold in a release one.
pub fn otsu_level(gray: &GrayImage) -> u8 {
    let mut hist = [0u64; 256];
    for p in gray.as_raw() {
        hist[usize::from(*p)] += 1;
    }
    let total: u64 = hist.iter().sum();
    let sum: f64 = hist.iter().enumerate().map(|(level, n)| level as f64 * *n as f64).sum();
    let (mut back_weight, mut back_sum) = (0u64, 0f64);
    let (mut best, mut best_level) = (-1f64, 0u8);
    for (level, n) in hist.iter().enumerate() {
        back_weight += n;
        if back_weight == 0 {
            continue;
        }
        let fore_weight = total - back_weight;
        if fore_weight == 0 {
            break;
        }
        back_sum += level as f64 * *n as f64;
        let back_mean = back_sum / back_weight as f64;
        let fore_mean = (sum - back_sum) / fore_weight as f64;
        let between = back_weight as f64 * fore_weight as f64 * (back_mean - fore_mean).powi(2);
        if between > best {
            best = between;
            best_level = level as u8;
        }
    }
    best_level
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("no field table found (rules of the template's table not on the page)")]
    NoTable,
    #[error("table found at scale {0:.3}, outside the ±8% a scan can be off")]
    Scale(f32),
}

/// Template coordinates → scan coordinates (after deskew): `scan = template × s + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub sx: f32,
    pub sy: f32,
    pub tx: f32,
    pub ty: f32,
}

/// A pixel rectangle on the registered scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Affine {
    /// Where a template zone is on the scan, clamped to the image.
    pub fn zone(&self, z: Zone, width: u32, height: u32) -> Rect {
        let x0 = (z.x as f32 * self.sx + self.tx).round().clamp(0.0, width as f32) as u32;
        let y0 = (z.y as f32 * self.sy + self.ty).round().clamp(0.0, height as f32) as u32;
        let x1 = ((z.x + z.w) as f32 * self.sx + self.tx).round().clamp(0.0, width as f32) as u32;
        let y1 = ((z.y + z.h) as f32 * self.sy + self.ty).round().clamp(0.0, height as f32) as u32;
        Rect { x: x0, y: y0, w: x1.saturating_sub(x0).max(1), h: y1.saturating_sub(y0).max(1) }
    }
}

/// A straightened scan and how the template lies on it.
pub struct Registered {
    pub image: GrayImage,
    /// The skew found (degrees; the scan was turned back by this much).
    pub skew_deg: f32,
    /// Grey level below which a pixel is ink.
    pub ink: u8,
    pub map: Affine,
}

/// The skew of a page in degrees: rotating the page by `-skew` straightens it.
///
/// Coarse on a quarter-size copy (text lines dominate there), then fine at full size on every
/// second column, where the form's thin rules are sharp: handwriting alone, each character at
/// its own angle, would leave the estimate a few tenths of a degree off, enough to blur the
/// rules that registration looks for.
pub fn estimate_skew(gray: &GrayImage, ink: u8) -> f32 {
    let small = image::imageops::thumbnail(gray, gray.width() / 4, gray.height() / 4);
    let points: Vec<(f32, f32)> =
        small.enumerate_pixels().filter(|(_, _, p)| p.0[0] < ink).map(|(x, y, _)| (x as f32, y as f32)).collect();
    if points.is_empty() {
        return 0.0;
    }
    let coarse = best_angle(&points, small.height(), -5.0, 5.0, 0.1);
    let (w, h) = gray.dimensions();
    let full: Vec<(f32, f32)> = (0..h)
        .flat_map(|y| (0..w).step_by(2).map(move |x| (x, y)))
        .filter(|&(x, y)| gray.get_pixel(x, y).0[0] < ink)
        .map(|(x, y)| (x as f32, y as f32))
        .collect();
    best_angle(&full, h, coarse - 0.15, coarse + 0.15, 0.01)
}

/// The angle in `from..=to` (degrees, by `step`) at which the points' rows line up best.
fn best_angle(points: &[(f32, f32)], height: u32, from: f32, to: f32, step: f32) -> f32 {
    let half = height as f32 / 2.0;
    let score = |deg: f32| -> f64 {
        let t = deg.to_radians().tan();
        let mut bins = vec![0u32; (height * 2) as usize + 2];
        for &(x, y) in points {
            let yy = y - x * t + half;
            if yy >= 0.0 && (yy as usize) < bins.len() {
                bins[yy as usize] += 1;
            }
        }
        bins.iter().map(|&c| f64::from(c) * f64::from(c)).sum()
    };
    let n = ((to - from) / step).round() as i32;
    (0..=n).map(|i| from + i as f32 * step).max_by(|a, b| score(*a).total_cmp(&score(*b))).unwrap_or(0.0)
}

/// Ink count per row of `image` (x in `xs`) and per column (y in `ys`).
pub(crate) fn ink_profile(image: &GrayImage, ink: u8, xs: (u32, u32), ys: (u32, u32), by_row: bool) -> Vec<u32> {
    let n = if by_row { image.height() } else { image.width() };
    let mut out = vec![0u32; n as usize];
    for y in ys.0..ys.1.min(image.height()) {
        for x in xs.0..xs.1.min(image.width()) {
            if image.get_pixel(x, y).0[0] < ink {
                out[if by_row { y } else { x } as usize] += 1;
            }
        }
    }
    out
}

/// Centres of runs of consecutive indices whose count reaches `min` (rules in a row or
/// column ink profile).
pub(crate) fn rule_centres(profile: &[u32], min: u32) -> Vec<f32> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, &c) in profile.iter().chain(std::iter::once(&0)).enumerate() {
        match (c >= min, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s + i - 1) as f32 / 2.0);
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Straightens `gray` and finds where `template`'s table is on it.
pub fn register(gray: &GrayImage, template: &Template) -> Result<Registered, Error> {
    let (image, skew_deg, ink) = deskew(gray);
    let map = locate(&image, template, ink)?;
    Ok(Registered { image, skew_deg, ink, map })
}

/// The page turned straight, the skew it had, and its ink level.
pub fn deskew(gray: &GrayImage) -> (GrayImage, f32, u8) {
    let ink = ink_level(gray);
    let skew_deg = estimate_skew(gray, ink);
    let image = if skew_deg.abs() >= 0.05 {
        // Nearest-neighbour: a third of bilinear's time on a 300 dpi page, and the recognizer
        // scales every crop down by half anyway, which smooths the steps away.
        rotate_about_center(gray, (-skew_deg).to_radians(), Interpolation::Nearest, Border::Constant(Luma([255])))
    } else {
        gray.clone()
    };
    (image, skew_deg, ink)
}

/// Where `template`'s table is on a straightened page.
pub fn locate(image: &GrayImage, template: &Template, ink: u8) -> Result<Affine, Error> {
    let (w, h) = image.dimensions();
    let t = template.table;
    // Rules are at least half the expected table width (the page may be scaled ±8%).
    let expect_w = (t.right - t.left) as f32 * w as f32 / template.page.width as f32;
    let rows = ink_profile(image, ink, (0, w), (0, h), true);
    let horizontal = rule_centres(&rows, (expect_w * 0.6) as u32);
    let (Some(&top), Some(&bottom)) = (horizontal.first(), horizontal.last()) else {
        return Err(Error::NoTable);
    };
    if bottom - top < 10.0 {
        return Err(Error::NoTable);
    }
    let cols = ink_profile(image, ink, (0, w), (top as u32, bottom as u32 + 1), false);
    let vertical = rule_centres(&cols, ((bottom - top) * 0.8) as u32);
    let (Some(&left), Some(&right)) = (vertical.first(), vertical.last()) else {
        return Err(Error::NoTable);
    };
    // The template's rules are 3 px thick starting at the given coordinate: their centres.
    let (tl, tt, tr, tbm) = (t.left as f32 + 1.0, t.top as f32 + 1.0, t.right as f32 - 2.0, t.bottom as f32 - 2.0);
    let sx = (right - left) / (tr - tl);
    let sy = (bottom - top) / (tbm - tt);
    for s in [sx, sy] {
        if !(0.92..=1.08).contains(&s) {
            return Err(Error::Scale(s));
        }
    }
    Ok(Affine { sx, sy, tx: left - tl * sx, ty: top - tt * sy })
}

/// Copies `r` out of `img` and whitens the form's own lines in it: rows or columns that are
/// ink across most of the crop (box rules, comb box walls), so the recognizer sees only the
/// writing.
pub fn crop_without_rules(img: &GrayImage, r: Rect, ink: u8) -> GrayImage {
    // Keep clear of the cell's own rules: zones sit a few pixels inside them, registration is
    // good to a pixel or two, and even a faint sliver of a rule along the edge of a line
    // crop throws the recognizer off its first characters.
    const INSET: u32 = 6;
    let r = if r.w > 4 * INSET && r.h > 4 * INSET {
        Rect { x: r.x + INSET, y: r.y + INSET, w: r.w - 2 * INSET, h: r.h - 2 * INSET }
    } else {
        r
    };
    let mut crop = image::imageops::crop_imm(img, r.x, r.y, r.w, r.h).to_image();
    let (w, h) = crop.dimensions();
    // A rule crossing the crop is ink across most of it; near the crop's edges, where a rule
    // only partly inside the zone (a pixel or two of registration error) runs, less suffices.
    const EDGE: u32 = 12;
    let row_ink = |y: u32| (0..w).filter(|&x| crop.get_pixel(x, y).0[0] < ink).count() as f32 / w as f32;
    let col_ink = |x: u32| (0..h).filter(|&y| crop.get_pixel(x, y).0[0] < ink).count() as f32 / h as f32;
    let at_edge = |i: u32, n: u32| i < EDGE || i + EDGE >= n;
    let dark_rows: Vec<u32> = (0..h).filter(|&y| row_ink(y) > if at_edge(y, h) { 0.25 } else { 0.7 }).collect();
    let dark_cols: Vec<u32> = (0..w).filter(|&x| col_ink(x) > if at_edge(x, w) { 0.25 } else { 0.7 }).collect();
    for y in dark_rows {
        for x in 0..w {
            crop.put_pixel(x, y, Luma([255]));
        }
    }
    for x in dark_cols {
        for y in 0..h {
            crop.put_pixel(x, y, Luma([255]));
        }
    }
    stretch_contrast(&mut crop);
    crop
}

/// Maps the crop's darkest ink to black and its paper to white (a carbon copy's faint strokes
/// become as legible as the original's).
fn stretch_contrast(img: &mut GrayImage) {
    let mut hist = [0u32; 256];
    for p in img.pixels() {
        hist[p.0[0] as usize] += 1;
    }
    let total: u32 = hist.iter().sum();
    let level_at = |share: f32| -> u8 {
        let target = (total as f32 * share) as u32;
        let mut seen = 0;
        for (v, n) in hist.iter().enumerate() {
            seen += n;
            if seen > target {
                return v as u8;
            }
        }
        255
    };
    let (lo, hi) = (level_at(0.005), level_at(0.6));
    if hi <= lo.saturating_add(20) {
        return; // blank or uniform: nothing to stretch
    }
    let span = f32::from(hi - lo);
    for p in img.pixels_mut() {
        p.0[0] = ((f32::from(p.0[0]) - f32::from(lo)) / span * 255.0).clamp(0.0, 255.0) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::template::{default_dir, load_dir};

    #[test]
    fn otsu_agrees_with_imageproc_and_survives_a_large_white_page() {
        let img = GrayImage::from_fn(300, 200, |x, y| Luma([if (x + y) % 7 == 0 { 40 } else { 200 + (x % 40) as u8 }]));
        assert_eq!(otsu_level(&img), imageproc::contrast::otsu_level(&img));
        // 36 Mpx, nearly white: imageproc's own overflows here.
        let mut big = GrayImage::from_pixel(6000, 6000, Luma([255]));
        big.put_pixel(5, 5, Luma([0]));
        assert!(otsu_level(&big) < 255);
    }

    fn page_with_table() -> GrayImage {
        let mut img = GrayImage::from_pixel(2480, 3508, Luma([255]));
        let mut rule = |x: u32, y: u32, w: u32, h: u32| {
            for yy in y..y + h {
                for xx in x..x + w {
                    img.put_pixel(xx, yy, Luma([20]));
                }
            }
        };
        for i in 0..=5 {
            rule(200, 520 + i * 160, 2080, 3);
        }
        rule(200, 520, 3, 800);
        rule(2277, 520, 3, 800);
        rule(760, 520, 3, 800);
        img
    }

    #[test]
    fn skew_is_measured_both_ways() {
        let page = page_with_table();
        for deg in [-3.0f32, -1.2, 0.0, 0.7, 2.5] {
            let turned =
                rotate_about_center(&page, deg.to_radians(), Interpolation::Bilinear, Border::Constant(Luma([255])));
            let found = estimate_skew(&turned, 140);
            assert!((found - deg).abs() < 0.1, "turned {deg}°, found {found}°");
        }
    }

    #[test]
    fn table_is_found_after_skew_scale_and_shift() {
        let forms = load_dir(&default_dir()).unwrap();
        let t = forms.iter().find(|t| t.form == "my_number_form").unwrap();
        let page = page_with_table();
        // 4% larger, shifted, turned 2°.
        let big = image::imageops::resize(&page, 2579, 3648, image::imageops::FilterType::Triangle);
        let mut shifted = GrayImage::from_pixel(2480, 3508, Luma([255]));
        image::imageops::overlay(&mut shifted, &big, -60, 35);
        let turned =
            rotate_about_center(&shifted, 2.0f32.to_radians(), Interpolation::Bilinear, Border::Constant(Luma([255])));
        let r = register(&turned, t).unwrap();
        assert!((r.skew_deg - 2.0).abs() < 0.1, "{}", r.skew_deg);
        assert!((r.map.sx - 1.04).abs() < 0.01 && (r.map.sy - 1.04).abs() < 0.01, "{:?}", r.map);
        // The label column rule (x = 760 on the template) lands on ink in the registered image.
        let x = (761.0 * r.map.sx + r.map.tx).round() as u32;
        let y = (700.0 * r.map.sy + r.map.ty).round() as u32;
        assert!(r.image.get_pixel(x, y).0[0] < r.ink, "rule expected at ({x}, {y})");
        let blank = GrayImage::from_pixel(800, 1000, Luma([255]));
        assert_eq!(register(&blank, t).err(), Some(Error::NoTable));
    }

    #[test]
    fn rules_are_removed_from_crops() {
        let page = page_with_table();
        // A crop that straddles the rule at y = 680 and the divider at x = 760.
        let crop = crop_without_rules(&page, Rect { x: 740, y: 660, w: 300, h: 60 }, 140);
        assert!(crop.pixels().all(|p| p.0[0] == 255), "box lines whitened");
    }
}
