//! Received stamps (受付印) over a form's title. Offices strike a round date stamp on the
//! original as it arrives, often across the printed title. On a grey or colour scan its red
//! ink is mid-grey and drops out; on a 1-bit scan it is as black as the print, and its ring
//! cuts through the very characters that tell one form from another (申請書原本, 調書).
//!
//! A ring is one connected blob far larger than any character but sparse (a circle's outline,
//! or the arc of it a zone shows). The circle is fitted to the blob and only the pixels on it
//! are whitened: a character the ring crossed keeps its other strokes and stays legible; the
//! stamp's own small text inside the ring stays too (the keyword match tolerates extra
//! characters).

use image::{GrayImage, Luma};
use imageproc::region_labelling::{Connectivity, connected_components};

/// Smallest span of a ring's blob at 300 dpi (a 受付印 is 15–40 mm across: 180–470 px; a
/// zone may show only part of it). Title characters are under 100 px.
const MIN_SPAN: u32 = 140;
/// A ring's outline covers little of its bounding box (a circle 15 px thick: about 20%); a
/// solid blot covers most of it.
const MAX_FILL: f64 = 0.4;

/// Per blob: pixel count, bounding box, and the sums a least-squares circle fit needs.
#[derive(Default, Clone)]
struct Blob {
    n: f64,
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    sx: f64,
    sy: f64,
    sxx: f64,
    syy: f64,
    sxy: f64,
    sxxx: f64,
    syyy: f64,
    sxxy: f64,
    sxyy: f64,
}

impl Blob {
    fn add(&mut self, x: u32, y: u32) {
        if self.n == 0.0 {
            (self.x0, self.y0, self.x1, self.y1) = (x, y, x, y);
        }
        (self.x0, self.y0, self.x1, self.y1) = (self.x0.min(x), self.y0.min(y), self.x1.max(x), self.y1.max(y));
        let (x, y) = (f64::from(x), f64::from(y));
        self.n += 1.0;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.syy += y * y;
        self.sxy += x * y;
        self.sxxx += x * x * x;
        self.syyy += y * y * y;
        self.sxxy += x * x * y;
        self.sxyy += x * y * y;
    }

    fn looks_like_a_ring(&self) -> bool {
        let (w, h) = (self.x1 - self.x0 + 1, self.y1 - self.y0 + 1);
        w.max(h) >= MIN_SPAN && w.min(h) >= MIN_SPAN / 3 && self.n / (f64::from(w) * f64::from(h)) <= MAX_FILL
    }

    /// The circle through the blob's pixels (Kåsa's algebraic fit): centre and radius.
    fn circle(&self) -> Option<(f64, f64, f64)> {
        let n = self.n;
        let (mx, my) = (self.sx / n, self.sy / n);
        // Centred moments.
        let suu = self.sxx / n - mx * mx;
        let svv = self.syy / n - my * my;
        let suv = self.sxy / n - mx * my;
        let suuu = self.sxxx / n - 3.0 * mx * self.sxx / n + 2.0 * mx.powi(3);
        let svvv = self.syyy / n - 3.0 * my * self.syy / n + 2.0 * my.powi(3);
        let suuv = self.sxxy / n - 2.0 * mx * self.sxy / n - my * self.sxx / n + 2.0 * mx * mx * my;
        let suvv = self.sxyy / n - 2.0 * my * self.sxy / n - mx * self.syy / n + 2.0 * mx * my * my;
        let (b1, b2) = (0.5 * (suuu + suvv), 0.5 * (svvv + suuv));
        let det = suu * svv - suv * suv;
        if det.abs() < 1e-9 {
            return None;
        }
        let (uc, vc) = ((b1 * svv - b2 * suv) / det, (suu * b2 - suv * b1) / det);
        let r = (uc * uc + vc * vc + suu + svv).sqrt();
        r.is_finite().then_some((uc + mx, vc + my, r))
    }
}

/// `crop` with the outline of any stamp ring on it whitened (pixels darker than `ink` count
/// as marks).
pub fn without_rings(mut crop: GrayImage, ink: u8) -> GrayImage {
    let marks = GrayImage::from_fn(crop.width(), crop.height(), |x, y| {
        Luma([if crop.get_pixel(x, y).0[0] < ink { 255 } else { 0 }])
    });
    let labels = connected_components(&marks, Connectivity::Eight, Luma([0u8]));
    let mut blobs: Vec<Blob> = Vec::new();
    for (x, y, p) in labels.enumerate_pixels() {
        let l = p.0[0] as usize;
        if l == 0 {
            continue;
        }
        if l >= blobs.len() {
            blobs.resize(l + 1, Blob::default());
        }
        blobs[l].add(x, y);
    }
    for (label, blob) in blobs.iter().enumerate().filter(|(_, b)| b.n > 0.0 && b.looks_like_a_ring()) {
        let Some((cx, cy, r)) = blob.circle() else { continue };
        if !(f64::from(MIN_SPAN) / 2.0..=300.0).contains(&r) {
            continue;
        }
        // The ring's own band: where most of the blob's pixels lie from the centre (the
        // characters it touched are the few outside it).
        let mut radii: Vec<f64> = Vec::with_capacity(blob.n as usize);
        for y in blob.y0..=blob.y1 {
            for x in blob.x0..=blob.x1 {
                if labels.get_pixel(x, y).0[0] as usize == label {
                    radii.push((f64::from(x) - cx).hypot(f64::from(y) - cy));
                }
            }
        }
        radii.sort_by(f64::total_cmp);
        let (inner, outer) = (radii[radii.len() / 10] - 2.0, radii[radii.len() * 9 / 10] + 2.0);
        // Not a ring after all when its pixels do not keep to one band (a big character
        // drawn in one stroke, a scribble).
        if outer - inner > r * 0.35 {
            continue;
        }
        for y in blob.y0..=blob.y1 {
            for x in blob.x0..=blob.x1 {
                let d = (f64::from(x) - cx).hypot(f64::from(y) - cy);
                if labels.get_pixel(x, y).0[0] as usize == label && (inner..=outer).contains(&d) {
                    crop.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }
    crop
}

#[cfg(test)]
mod tests {
    use super::*;
    use imageproc::drawing::{draw_hollow_circle_mut, draw_text_mut};

    #[test]
    fn a_ring_across_a_title_is_removed_and_the_title_reads() {
        let fonts = crate::synth::render::Fonts::load().unwrap();
        let title = "特定医療費（指定難病）支給認定申請書";
        let mut crop = GrayImage::from_pixel(1500, 300, Luma([255]));
        draw_text_mut(&mut crop, Luma([0]), 40, 110, ab_glyph::PxScale::from(72.0), &fonts.gothic, title);
        let clean = crop.clone();
        // A 1-bit stamp: a black ring 15 px thick, 120 px in radius, struck over the title's
        // last words.
        for d in 0..15 {
            draw_hollow_circle_mut(&mut crop, (1120, 146), 120 - d, Luma([0]));
        }
        let out = without_rings(crop.clone(), 128);
        let dark = |img: &GrayImage| img.pixels().filter(|p| p.0[0] < 128).count() as i64;
        // The ring is gone; the print stays, less the few pixels the ring lay over.
        assert!((dark(&out) - dark(&clean)).abs() < dark(&clean) / 10, "{} vs {}", dark(&out), dark(&clean));
        assert!(dark(&crop) - dark(&out) > 8000);
        let mut ocr = crate::ocr::ppocr::PpOcr::load(&crate::ocr::ppocr::default_model()).unwrap();
        let read = |img: &GrayImage, ocr: &mut crate::ocr::ppocr::PpOcr| {
            let line = [(img, crate::ocr::CharSet::Cp932)];
            crate::ocr::Recognizer::read_lines(ocr, &line).unwrap().remove(0).text
        };
        // The form is told by its title's keywords: found once the ring is gone, and as well
        // read as with the ring (the recognizer copes with a thin ring alone; with the
        // stamp's own text and a 1-bit scan's breaks as well, it does not: `hozon eval` on
        // 1-bit pages measures that).
        let keywords = ["支給認定申請書".to_owned()];
        let (with_ring, without) = (read(&crop, &mut ocr), read(&out, &mut ocr));
        let score = |t: &str| super::super::keyword_score(t, &keywords).unwrap_or(0.0);
        assert!(score(&without) >= 0.7 && score(&without) >= score(&with_ring), "{without} / {with_ring}");
    }
}
