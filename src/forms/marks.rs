//! Marks that are not characters: ticks in boxes (read by ink density, never by OCR) and the
//! double line (二重線) through a crossed-out mistake, which must not be read as the value.

use image::GrayImage;

use super::register::Rect;

/// Share of a box's inside darker than its paper, at and above which it is ticked.
pub const TICKED: f32 = 0.05;
/// At and below this it is empty; between the two it is unsure (flagged for the reviewer).
pub const EMPTY: f32 = 0.015;
/// Grey levels below the box's own paper that count as a mark, after smoothing. Relative to
/// the paper, not to the page's ink level: a carbon copy's ticks are pale.
const MARK_DEPTH: i32 = 30;

/// The share of the inside of box `r` (its printed walls left out) that carries a mark.
pub fn box_ink(img: &GrayImage, r: Rect) -> f32 {
    // The walls are 3 px and registration is good to 2–3 px: keep 10 px clear of the edge.
    const INSET: u32 = 10;
    if r.w <= 2 * INSET + 4 || r.h <= 2 * INSET + 4 {
        return 0.0;
    }
    let (x0, y0) = (r.x + INSET, r.y + INSET);
    let (w, h) = (r.w - 2 * INSET, r.h - 2 * INSET);
    if x0 + w + 1 > img.width() || y0 + h + 1 > img.height() {
        return 0.0;
    }
    // 3×3 mean: scanner grain averages out, a pen stroke (≥ 5 px) does not.
    let smooth: Vec<i32> = (y0..y0 + h)
        .flat_map(|y| {
            (x0..x0 + w).map(move |x| {
                let mut sum = 0i32;
                for dy in 0..3 {
                    for dx in 0..3 {
                        sum += i32::from(img.get_pixel(x + dx - 1, y + dy - 1).0[0]);
                    }
                }
                sum / 9
            })
        })
        .collect();
    let mut sorted = smooth.clone();
    sorted.sort_unstable();
    let paper = sorted[sorted.len() * 3 / 4];
    let marked = smooth.iter().filter(|&&v| v < paper - MARK_DEPTH).count();
    marked as f32 / smooth.len() as f32
}

/// A tick read from its ink: (ticked, confidence). Between `EMPTY` and `TICKED` the answer is
/// a guess and the confidence says so.
pub fn tick(ink: f32) -> (bool, f32) {
    if ink >= TICKED {
        (true, 0.99)
    } else if ink <= EMPTY {
        (false, 0.99)
    } else {
        (ink >= (TICKED + EMPTY) / 2.0, 0.5)
    }
}

/// The option of a choice from its boxes' ink: `None` when no box is ticked. Sure only when
/// one box is clearly ticked and every other clearly empty.
pub fn choose(inks: &[f32]) -> (Option<usize>, f32) {
    let best = (0..inks.len()).max_by(|&a, &b| inks[a].total_cmp(&inks[b]));
    let Some(best) = best else { return (None, 0.0) };
    let others_empty = inks.iter().enumerate().all(|(i, &v)| i == best || v <= EMPTY);
    match (tick(inks[best]), others_empty) {
        ((true, c), true) => (Some(best), c),
        ((true, _), false) => (Some(best), 0.5),
        ((false, c), _) => (None, c),
    }
}

/// Columns of a (contrast-stretched) field crop struck through with a double line: two long,
/// nearly horizontal bands of ink 12–30 px apart over the same stretch. Returns the struck
/// column range, if any.
pub fn struck_columns(crop: &GrayImage) -> Option<(u32, u32)> {
    const MIN_RUN: u32 = 200;
    const BAND: u32 = 2;
    let (w, h) = crop.dimensions();
    if w < MIN_RUN || h < 20 {
        return None;
    }
    let dark = |x: u32, y: u32| crop.get_pixel(x, y).0[0] < 128;
    // Per row: the longest run of columns with ink within ±BAND rows (a slightly tilted line
    // covers a band of rows, not one).
    let mut runs: Vec<(u32, u32, u32)> = Vec::with_capacity(h as usize);
    for y in 0..h {
        let (lo, hi) = (y.saturating_sub(BAND), (y + BAND).min(h - 1));
        let (mut best, mut start) = ((0, 0, 0), None);
        for x in 0..=w {
            let on = x < w && (lo..=hi).any(|yy| dark(x, yy));
            match (on, start) {
                (true, None) => start = Some(x),
                (false, Some(s)) => {
                    if x - s > best.0 {
                        best = (x - s, s, x);
                    }
                    start = None;
                }
                _ => {}
            }
        }
        runs.push(best);
    }
    for (y1, a) in runs.iter().enumerate() {
        if a.0 < MIN_RUN {
            continue;
        }
        for (y2, b) in runs.iter().enumerate().skip(y1 + 12).take(19) {
            let overlap = a.2.min(b.2).saturating_sub(a.1.max(b.1));
            if b.0 >= MIN_RUN && overlap * 10 >= a.0.min(b.0) * 8 {
                // The longest run of one row can stop short where the line thins: follow
                // either band's ink out to both ends, across gaps of a few pixels.
                let inked = |x: u32| {
                    [y1 as u32, y2 as u32]
                        .iter()
                        .any(|&y| (y.saturating_sub(BAND + 1)..=(y + BAND + 1).min(h - 1)).any(|yy| dark(x, yy)))
                };
                const GAP: u32 = 8;
                let (mut x0, mut x1) = (a.1.min(b.1), a.2.max(b.2));
                while let Some(next) = (1..=GAP).find(|d| x0 >= *d && inked(x0 - d)) {
                    x0 -= next;
                }
                while let Some(next) = (1..=GAP).find(|d| x1 + d < w && inked(x1 + d)) {
                    x1 += next;
                }
                return Some((x0, x1));
            }
        }
    }
    None
}

/// Whitens the struck columns (and the correction seal beside them), leaving the correction.
pub fn erase_columns(crop: &mut GrayImage, (x0, x1): (u32, u32)) {
    const SEAL: u32 = 12;
    let (w, h) = crop.dimensions();
    for x in x0.saturating_sub(SEAL)..(x1 + SEAL).min(w) {
        for y in 0..h {
            crop.put_pixel(x, y, image::Luma([255]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;
    use imageproc::drawing::{draw_filled_rect_mut, draw_line_segment_mut};
    use imageproc::rect::Rect as IRect;

    fn box_page(mark: impl Fn(&mut GrayImage)) -> GrayImage {
        let mut img = GrayImage::from_pixel(200, 200, Luma([235]));
        for (x, y, w, h) in [(50, 50, 70, 3), (50, 117, 70, 3), (50, 50, 3, 70), (117, 50, 3, 70)] {
            draw_filled_rect_mut(&mut img, IRect::at(x, y).of_size(w, h), Luma([20]));
        }
        mark(&mut img);
        img
    }

    #[test]
    fn ticks_are_read_by_ink_not_walls() {
        let r = Rect { x: 50, y: 50, w: 70, h: 70 };
        let empty = box_page(|_| {});
        assert_eq!(tick(box_ink(&empty, r)), (false, 0.99));
        // A pale (carbon) tick still counts: depth relative to the paper.
        let ticked = box_page(|img| {
            for d in 0..6 {
                let d = d as f32;
                draw_line_segment_mut(img, (58.0, 80.0 + d), (78.0, 105.0 + d), Luma([190]));
                draw_line_segment_mut(img, (78.0, 105.0 + d), (125.0, 45.0 + d), Luma([190]));
            }
        });
        assert!(tick(box_ink(&ticked, r)).0, "{}", box_ink(&ticked, r));
        // Specks and a box shifted by 2 px stay empty.
        let specks = box_page(|img| {
            img.put_pixel(80, 80, Luma([30]));
            img.put_pixel(90, 70, Luma([30]));
        });
        assert!(!tick(box_ink(&specks, Rect { x: 52, y: 48, w: 70, h: 70 })).0);
    }

    #[test]
    fn a_choice_is_sure_only_with_one_clear_tick() {
        assert_eq!(choose(&[0.0, 0.2, 0.01]), (Some(1), 0.99));
        assert_eq!(choose(&[0.0, 0.0]).0, None);
        assert_eq!(choose(&[0.2, 0.15]), (Some(0), 0.5));
        assert_eq!(choose(&[0.03, 0.0]).1, 0.5);
    }

    #[test]
    fn a_double_line_is_found_and_a_single_stroke_is_not() {
        let mut crop = GrayImage::from_pixel(900, 140, Luma([255]));
        // Handwriting-ish blobs, one long single stroke (not a strike).
        draw_filled_rect_mut(&mut crop, IRect::at(500, 40).of_size(300, 6), Luma([0]));
        assert_eq!(struck_columns(&crop), None);
        for y in [60.0f32, 78.0] {
            for t in 0..3 {
                draw_line_segment_mut(&mut crop, (20.0, y + t as f32), (330.0, y + 3.0 + t as f32), Luma([0]));
            }
        }
        let (x0, x1) = struck_columns(&crop).expect("double line");
        assert!(x0 <= 22 && (328..=332).contains(&x1), "{x0}..{x1}");
        erase_columns(&mut crop, (x0, x1));
        assert!(crop.enumerate_pixels().filter(|(x, _, _)| *x < 340).all(|(_, _, p)| p.0[0] == 255));
        assert!(crop.get_pixel(600, 42).0[0] == 0, "the rest of the crop is kept");
    }
}
