//! `hozon form check TEMPLATE SCAN`: draws where a template's zones fall on a real scan, so
//! an office adapting a template to a new form revision sees at once which zone misses its
//! cell. The picture is the scan as hozon reads it (upright, 300 dpi, straightened): the
//! table rules in blue, the title zone in green when its keywords were read (orange when
//! not), each field in red with its name, each tick box in purple.

use ab_glyph::{FontVec, PxScale};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_hollow_rect_mut, draw_text_mut};
use imageproc::rect::Rect as PxRect;

use super::Fit;
use super::register::Rect;
use super::template::{Template, Zone};

const TABLE: Rgb<u8> = Rgb([0, 90, 220]);
const TITLE_OK: Rgb<u8> = Rgb([0, 150, 60]);
const TITLE_MISSED: Rgb<u8> = Rgb([230, 120, 0]);
const FIELD: Rgb<u8> = Rgb([220, 0, 0]);
const BOX: Rgb<u8> = Rgb([150, 0, 180]);

/// A rectangle drawn `width` pixels thick (a 300 dpi page needs more than a hairline).
fn frame(img: &mut RgbImage, r: Rect, colour: Rgb<u8>, width: u32) {
    for i in 0..width {
        if r.w > 2 * i && r.h > 2 * i {
            let px = PxRect::at((r.x + i) as i32, (r.y + i) as i32).of_size(r.w - 2 * i, r.h - 2 * i);
            draw_hollow_rect_mut(img, px, colour);
        }
    }
}

/// The overlay picture of `fit` (see the module doc). `font` labels the fields.
pub fn overlay(fit: &Fit, template: &Template, font: Option<&FontVec>) -> RgbImage {
    let mut img: RgbImage = image::DynamicImage::ImageLuma8(fit.image.clone()).to_rgb8();
    let Ok(map) = &fit.map else { return img };
    let (w, h) = (img.width(), img.height());
    let zone = |z: Zone| map.zone(z, w, h);
    let t = template.table;
    frame(&mut img, zone(Zone { x: t.left, y: t.top, w: t.right - t.left, h: t.bottom - t.top }), TABLE, 4);
    let title = if fit.keywords_match { TITLE_OK } else { TITLE_MISSED };
    frame(&mut img, zone(template.classify.zone), title, 6);
    for f in &template.fields {
        let r = zone(f.zone);
        frame(&mut img, r, FIELD, 4);
        for b in &f.boxes {
            frame(&mut img, zone(*b), BOX, 4);
        }
        if let Some(font) = font {
            draw_text_mut(&mut img, FIELD, r.x as i32 + 8, r.y as i32 + 6, PxScale::from(30.0), font, &f.name);
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_drawn_inside_the_rectangle() {
        let mut img = RgbImage::from_pixel(40, 30, Rgb([255, 255, 255]));
        frame(&mut img, Rect { x: 5, y: 5, w: 20, h: 10 }, FIELD, 2);
        assert_eq!(*img.get_pixel(5, 5), FIELD);
        assert_eq!(*img.get_pixel(6, 10), FIELD, "second line of the frame");
        assert_eq!(*img.get_pixel(10, 10), Rgb([255, 255, 255]), "inside stays");
        assert_eq!(*img.get_pixel(26, 5), Rgb([255, 255, 255]), "outside stays");
    }
}
