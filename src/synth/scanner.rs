//! How an office's scanner turns a filled-in page into a file: the page fed in any of four
//! ways round, sampled at 200, 300 or 400 dpi, saved as grey, 1-bit (a threshold, as a
//! scanner's "text" mode does) or colour (blue or black ballpoint, a red received stamp, a
//! cream paper), with or without the resolution written in the file.
//!
//! The page is drawn at 300 dpi in layers (print, the applicant's ink, the stamp);
//! [`scan_page`] lays them together in grey or colour, adds the scanner's artefacts
//! ([`super::render::scan`]) and applies the [`Condition`].

use image::{GrayImage, ImageBuffer, Luma, Pixel, Rgb, RgbImage};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::render::{self, Knobs};

/// How a file is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Grey,
    /// 1 bit per pixel: everything darker than the scanner's threshold is black.
    Bilevel,
    Colour,
}

/// One page's scanning: orientation, resolution, mode and whether the file says its
/// resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// Clockwise quarter turns of the page as fed (0 = upright; 2 = upside down).
    pub quarter_turns: u8,
    pub dpi: u32,
    pub mode: Mode,
    /// The file carries its resolution (PNG pHYs); many scanners' files do, not all.
    pub dpi_tag: bool,
}

impl Condition {
    /// Upright, 300 dpi, grey, no resolution written: the set the project began with.
    pub fn plain() -> Condition {
        Condition { quarter_turns: 0, dpi: 300, mode: Mode::Grey, dpi_tag: false }
    }

    /// A condition as offices produce them, each axis drawn evenly.
    pub fn draw(rng: &mut impl Rng) -> Condition {
        Condition {
            quarter_turns: rng.gen_range(0..4),
            dpi: *[200, 300, 400].choose(rng).expect("non-empty"),
            mode: *[Mode::Grey, Mode::Bilevel, Mode::Colour].choose(rng).expect("non-empty"),
            dpi_tag: rng.gen_bool(0.5),
        }
    }

    /// The axes as `eval` reports them: `("rotation", "90")`, `("dpi", "200")`, `("mode", "bilevel")`.
    pub fn axes(&self) -> [(&'static str, String); 3] {
        let mode = match self.mode {
            Mode::Grey => "grey",
            Mode::Bilevel => "bilevel",
            Mode::Colour => "colour",
        };
        [
            ("rotation", (u32::from(self.quarter_turns) * 90).to_string()),
            ("dpi", self.dpi.to_string()),
            ("mode", mode.to_owned()),
        ]
    }
}

/// A page's layers at 300 dpi (white = nothing there).
pub struct Layers<'a> {
    /// The printed form.
    pub print: &'a GrayImage,
    /// The applicant's ink (or sheet 1's carbon impression).
    pub ink: &'a GrayImage,
    /// The ink's colour on a colour scan (blue or black ballpoint; a carbon copy is blue-black).
    pub ink_colour: [u8; 3],
    /// The received stamp, if struck.
    pub stamp: Option<&'a GrayImage>,
}

const PAPER: [u8; 3] = [250, 246, 236];
const PRINT: [u8; 3] = [24, 24, 28];
const STAMP_RED: [u8; 3] = [214, 40, 52];
/// Ballpoint colours an applicant may use.
pub const INKS: [[u8; 3]; 3] = [[28, 44, 150], [20, 30, 96], [30, 30, 34]];

/// The page as the scanner saves it: a PNG under `cond`.
pub fn scan_page(layers: &Layers, cond: &Condition, knobs: &Knobs, rng: &mut impl Rng) -> anyhow::Result<Vec<u8>> {
    match cond.mode {
        Mode::Grey | Mode::Bilevel => {
            let mut page = layers.print.clone();
            render::darken_all(&mut page, layers.ink);
            if let Some(stamp) = layers.stamp {
                render::darken_all(&mut page, stamp);
            }
            let scanned = finish(render::scan(&page, rng, knobs), cond);
            if cond.mode == Mode::Bilevel {
                let threshold = rng.gen_range(165..=190u8);
                encode_bilevel(&scanned, threshold, cond)
            } else {
                encode(&scanned, png::ColorType::Grayscale, cond)
            }
        }
        Mode::Colour => {
            let (w, h) = layers.print.dimensions();
            let page = RgbImage::from_fn(w, h, |x, y| {
                let mut c = PAPER.map(f32::from);
                let mut lay = |v: u8, colour: [u8; 3]| {
                    // Ink absorbs light: each layer multiplies by its colour, by its darkness.
                    let d = f32::from(255 - v) / 255.0;
                    for (ch, k) in c.iter_mut().zip(colour) {
                        *ch *= 1.0 - d * (1.0 - f32::from(k) / 255.0);
                    }
                };
                lay(layers.print.get_pixel(x, y).0[0], PRINT);
                lay(layers.ink.get_pixel(x, y).0[0], layers.ink_colour);
                if let Some(stamp) = layers.stamp {
                    // A stamp pad's ink is as strong as the ring's grey says, in red.
                    lay(stamp.get_pixel(x, y).0[0].saturating_sub(60), STAMP_RED);
                }
                Rgb(c.map(|v| v.round().clamp(0.0, 255.0) as u8))
            });
            let scanned = finish(render::scan(&page, rng, knobs), cond);
            encode(&scanned, png::ColorType::Rgb, cond)
        }
    }
}

/// Resolution and orientation: sampled at `cond.dpi`, turned as fed.
fn finish<P>(page: ImageBuffer<P, Vec<u8>>, cond: &Condition) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let page = if cond.dpi == 300 {
        page
    } else {
        let (w, h) = page.dimensions();
        let f = cond.dpi as f32 / 300.0;
        image::imageops::resize(
            &page,
            (w as f32 * f).round() as u32,
            (h as f32 * f).round() as u32,
            image::imageops::FilterType::Triangle,
        )
    };
    match cond.quarter_turns % 4 {
        1 => image::imageops::rotate90(&page),
        2 => image::imageops::rotate180(&page),
        3 => image::imageops::rotate270(&page),
        _ => page,
    }
}

fn encoder<'a>(out: &'a mut Vec<u8>, w: u32, h: u32, cond: &Condition) -> png::Encoder<'a, &'a mut Vec<u8>> {
    let mut enc = png::Encoder::new(out, w, h);
    if cond.dpi_tag {
        let per_metre = (f64::from(cond.dpi) / 0.0254).round() as u32;
        enc.set_pixel_dims(Some(png::PixelDimensions { xppu: per_metre, yppu: per_metre, unit: png::Unit::Meter }));
    }
    enc
}

fn encode<P>(img: &ImageBuffer<P, Vec<u8>>, colour: png::ColorType, cond: &Condition) -> anyhow::Result<Vec<u8>>
where
    P: Pixel<Subpixel = u8>,
{
    let mut out = Vec::new();
    let mut enc = encoder(&mut out, img.width(), img.height(), cond);
    enc.set_color(colour);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(img.as_raw())?;
    Ok(out)
}

/// A 1-bit PNG: rows packed high bit first, 0 = black.
fn encode_bilevel(img: &GrayImage, threshold: u8, cond: &Condition) -> anyhow::Result<Vec<u8>> {
    let (w, h) = img.dimensions();
    let stride = w.div_ceil(8) as usize;
    let mut packed = vec![0u8; stride * h as usize];
    for (x, y, p) in img.enumerate_pixels() {
        if p.0[0] >= threshold {
            packed[y as usize * stride + x as usize / 8] |= 0x80 >> (x % 8);
        }
    }
    let mut out = Vec::new();
    let mut enc = encoder(&mut out, w, h, cond);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::One);
    enc.write_header()?.write_image_data(&packed)?;
    Ok(out)
}

/// A grey layer of `Luma` pixels, white.
pub fn blank_layer(w: u32, h: u32) -> GrayImage {
    GrayImage::from_pixel(w, h, Luma([255]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn layers_test(cond: Condition) -> image::DynamicImage {
        let mut print = blank_layer(300, 400);
        for x in 20..280 {
            print.put_pixel(x, 50, Luma([0]));
        }
        let mut ink = blank_layer(300, 400);
        for x in 100..140 {
            ink.put_pixel(x, 200, Luma([10]));
        }
        let layers = Layers { print: &print, ink: &ink, ink_colour: INKS[0], stamp: None };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let png = scan_page(&layers, &cond, &Knobs::easy(0.0), &mut rng).unwrap();
        image::load_from_memory(&png).unwrap()
    }

    #[test]
    fn conditions_turn_sample_and_save_as_said() {
        let img = layers_test(Condition { quarter_turns: 1, dpi: 200, mode: Mode::Bilevel, dpi_tag: true });
        // 300×400 at 300 dpi → 200×267 at 200 dpi, turned a quarter: 267 wide.
        assert_eq!((img.width(), img.height()), (267, 200));
        let grey = img.to_luma8();
        assert!(grey.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255), "1-bit");
        let colour = layers_test(Condition { quarter_turns: 0, dpi: 300, mode: Mode::Colour, dpi_tag: false });
        let px = colour.to_rgb8();
        // The blue ink stays blue.
        let ink = px.get_pixel(120, 200).0;
        assert!(ink[2] > ink[0] + 40, "{ink:?}");
    }
}
