//! The resolution a scan's file says it has (PNG `pHYs`, JPEG JFIF density, TIFF
//! `XResolution`), so a page read at 200 or 400 dpi is scaled to the templates' 300 dpi frame.
//! Only a plausible figure counts: photo software writes 72 dpi into files that are nothing of
//! the kind, so a value outside 100–1200 dpi, or one that makes the page larger than A3 or
//! smaller than a postcard, is ignored (`forms::upright` then goes by the page's size).

/// Dots per inch from a PNG's `pHYs` chunk (metre unit only; unit 0 is an aspect ratio).
pub fn png(bytes: &[u8]) -> Option<f32> {
    let mut at = 8;
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
        let kind = &header[4..8];
        if kind == b"pHYs" {
            let body = bytes.get(at + 8..at + 8 + 9)?;
            let x = u32::from_be_bytes(body[..4].try_into().ok()?);
            return (body[8] == 1).then_some(x as f32 * 0.0254);
        }
        if kind == b"IDAT" || kind == b"IEND" {
            return None;
        }
        at = at.checked_add(12)?.checked_add(len)?;
    }
    None
}

/// Dots per inch from a JPEG's JFIF APP0 segment (units 1 = per inch, 2 = per cm).
pub fn jpeg(bytes: &[u8]) -> Option<f32> {
    let mut at = 2;
    while let Some(&[0xFF, marker, hi, lo]) = bytes.get(at..at + 4) {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if marker == 0xE0 {
            let body = bytes.get(at + 4..at + 2 + len)?;
            if body.len() >= 12 && &body[..5] == b"JFIF\0" {
                let x = f32::from(u16::from_be_bytes([body[8], body[9]]));
                return match body[7] {
                    1 => Some(x),
                    2 => Some(x * 2.54),
                    _ => None,
                };
            }
        }
        if marker == 0xDA {
            return None;
        }
        at += 2 + len;
    }
    None
}

/// A TIFF page's `XResolution` in dots per inch.
pub fn tiff<R: std::io::Read + std::io::Seek>(d: &mut tiff::decoder::Decoder<R>) -> Option<f32> {
    use tiff::decoder::ifd::Value;
    use tiff::tags::Tag;
    let x = match d.find_tag(Tag::XResolution).ok()?? {
        Value::Rational(n, d) if d > 0 => n as f32 / d as f32,
        _ => return None,
    };
    match d.find_tag(Tag::ResolutionUnit).ok().flatten().and_then(|v| v.into_u16().ok()) {
        Some(3) => Some(x * 2.54),
        // Absent means inches.
        Some(2) | None => Some(x),
        _ => None,
    }
}

/// `dpi` if it is a scanner's and makes a `w`×`h` page a plausible paper size.
pub fn plausible(dpi: Option<f32>, w: u32, h: u32) -> Option<f32> {
    let dpi = dpi.filter(|d| (100.0..=1200.0).contains(d))?;
    let (long, short) = (w.max(h) as f32 / dpi * 25.4, w.min(h) as f32 / dpi * 25.4);
    // Between a postcard (148 × 100 mm) and A3 (420 × 297 mm), with a margin either way.
    (long <= 450.0 && short <= 320.0 && long >= 130.0 && short >= 85.0).then_some(dpi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_is_read_from_png_and_jpeg_headers() {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 4, 4);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_pixel_dims(Some(png::PixelDimensions { xppu: 7874, yppu: 7874, unit: png::Unit::Meter }));
        enc.write_header().unwrap().write_image_data(&[255; 16]).unwrap();
        assert!((png(&out).unwrap() - 200.0).abs() < 0.1);
        let mut plain = Vec::new();
        image::GrayImage::new(4, 4).write_to(&mut std::io::Cursor::new(&mut plain), image::ImageFormat::Png).unwrap();
        assert_eq!(png(&plain), None);
        // JFIF APP0: density 400 per inch.
        let jfif = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 1, 0x01, 0x90, 0x01, 0x90, 0, 0, 0xFF, 0xDA,
        ];
        assert_eq!(jpeg(&jfif), Some(400.0));
        let mut cm = jfif;
        (cm[13], cm[14], cm[15]) = (2, 0, 118);
        assert!((jpeg(&cm).unwrap() - 299.72).abs() < 0.01);
    }

    #[test]
    fn implausible_resolutions_are_ignored() {
        // An A4 page at 300 dpi is 2480 × 3508.
        assert_eq!(plausible(Some(300.0), 2480, 3508), Some(300.0));
        // The same pixels said to be 72 dpi would be 1.2 m long.
        assert_eq!(plausible(Some(72.0), 2480, 3508), None);
        assert_eq!(plausible(Some(1200.0), 2480, 3508), None, "5 cm wide");
        assert_eq!(plausible(None, 2480, 3508), None);
    }
}
