//! A field's image for the reviewer: cut from the stored (unstraightened) scan around the
//! field's rectangle on the straightened page, then turned straight itself. Turning only the
//! small region costs a fraction of turning the whole page, which the review screen would
//! otherwise do once per field.

use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};

/// Margin around the field in the crop (pixels at 300 dpi), so the reviewer sees the box.
pub const MARGIN: u32 = 12;

/// The field `rect` (x, y, w, h on the page straightened by `skew_deg`) cut from `page`, the
/// page as scanned, with [`MARGIN`] around it.
pub fn field_image(page: &GrayImage, skew_deg: f32, rect: [u32; 4]) -> GrayImage {
    let (pw, ph) = (page.width() as f32, page.height() as f32);
    let [x, y, w, h] = rect.map(|v| v as f32);
    let m = MARGIN as f32;
    let (w, h) = (w + 2.0 * m, h + 2.0 * m);
    // The field's centre on the straightened page, carried back onto the scan: the page was
    // turned by -skew about its centre, so the scan point is the straight one turned by +skew.
    let (cx, cy) = (pw / 2.0, ph / 2.0);
    let (px, py) = (x - m + w / 2.0 - cx, y - m + h / 2.0 - cy);
    let t = skew_deg.to_radians();
    let (s, c) = t.sin_cos();
    let (qx, qy) = (cx + px * c - py * s, cy + px * s + py * c);
    // A region large enough to hold the turned field, centred on it.
    let side_w = (w * c.abs() + h * s.abs()).ceil() + 4.0;
    let side_h = (w * s.abs() + h * c.abs()).ceil() + 4.0;
    let mut region = GrayImage::from_pixel(side_w as u32, side_h as u32, Luma([255]));
    let (ox, oy) = ((qx - side_w / 2.0).round() as i64, (qy - side_h / 2.0).round() as i64);
    for ry in 0..region.height() {
        for rx in 0..region.width() {
            let (sx, sy) = (ox + i64::from(rx), oy + i64::from(ry));
            if sx >= 0 && sy >= 0 && (sx as u32) < page.width() && (sy as u32) < page.height() {
                region.put_pixel(rx, ry, *page.get_pixel(sx as u32, sy as u32));
            }
        }
    }
    let straight = if skew_deg.abs() >= 0.05 {
        rotate_about_center(&region, -t, Interpolation::Bilinear, Border::Constant(Luma([255])))
    } else {
        region
    };
    let (sw, sh) = straight.dimensions();
    let (w, h) = ((w as u32).min(sw), (h as u32).min(sh));
    image::imageops::crop_imm(&straight, (sw - w) / 2, (sh - h) / 2, w, h).to_image()
}

/// Covers the left `hidden` of `total` equal comb cells of the field inside a crop made by
/// [`field_image`] (a My Number's first eight digits for a user without the right).
pub fn cover_cells(img: &mut GrayImage, hidden: u32, total: u32) {
    let inner = img.width().saturating_sub(2 * MARGIN);
    let until = (MARGIN + inner * hidden / total.max(1) + 2).min(img.width());
    for y in 0..img.height() {
        for x in 0..until {
            img.put_pixel(x, y, Luma([96]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crop_matches_the_straightened_page() {
        // A page with a black box; skewed by 2°; the box's crop from the skewed scan should
        // look like the crop from the page straightened whole.
        let mut straight = GrayImage::from_pixel(1200, 1600, Luma([255]));
        for y in 700..760 {
            for x in 300..900 {
                straight.put_pixel(x, y, Luma([0]));
            }
        }
        let skew = 2.0f32;
        let scan =
            rotate_about_center(&straight, skew.to_radians(), Interpolation::Bilinear, Border::Constant(Luma([255])));
        let crop = field_image(&scan, skew, [300, 700, 600, 60]);
        assert_eq!(crop.dimensions(), (600 + 2 * MARGIN, 60 + 2 * MARGIN));
        let dark = |x: u32, y: u32| crop.get_pixel(x, y).0[0] < 128;
        // Inside the box (well away from its edges) is dark, the margin is light.
        assert!(dark(MARGIN + 10, MARGIN + 30) && dark(MARGIN + 590, MARGIN + 30), "ends of the box");
        assert!(!dark(MARGIN + 300, 3) && !dark(MARGIN + 300, crop.height() - 3), "margins");
        // Unskewed: a plain copy.
        let plain = field_image(&straight, 0.0, [300, 700, 600, 60]);
        assert!(plain.get_pixel(MARGIN, MARGIN).0[0] == 0 && plain.get_pixel(MARGIN - 1, MARGIN).0[0] == 255);
    }

    #[test]
    fn covered_cells_hide_the_left_digits_only() {
        let mut img = GrayImage::from_pixel(1200 + 2 * MARGIN, 100, Luma([0]));
        cover_cells(&mut img, 8, 12);
        assert_eq!(img.get_pixel(MARGIN + 799, 50).0[0], 96);
        assert_eq!(img.get_pixel(MARGIN + 805, 50).0[0], 0);
    }
}
