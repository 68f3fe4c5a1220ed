//! Files an attacker or a broken scanner sends, made on the spot (so no binary blobs sit in the
//! repository and the sizes are exact): a TIFF "bomb" whose pages all point at one tiny
//! compressed strip (120 pages of 6000×6000 in a few kilobytes), a file with more pages than
//! allowed, a JPEG cut at 10%, a PNG with a ZIP appended, and a PNG whose header claims
//! 30000×30000. `bench serve --hostile` uploads them during the load; tests and the fuzz
//! corpus use them too.

use std::io::Cursor;

/// The TIFF bomb: `pages` pages of `side`×`side` 1-bit white, every page's strip the same
/// Deflate stream of zeros.
pub fn tiff_bomb(pages: usize, side: u32) -> Vec<u8> {
    let raw = vec![0u8; side.div_ceil(8) as usize * side as usize];
    let strip = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 9);
    let mut out = b"II*\0".to_vec();
    let first_ifd = 8 + strip.len() as u32;
    out.extend_from_slice(&first_ifd.to_le_bytes());
    out.extend_from_slice(&strip);
    const ENTRIES: u16 = 9;
    let ifd_len = 2 + 12 * u32::from(ENTRIES) + 4;
    for p in 0..pages {
        let at = first_ifd + p as u32 * ifd_len;
        out.extend_from_slice(&ENTRIES.to_le_bytes());
        // (tag, type: 3 SHORT / 4 LONG, value), in tag order.
        let entries: [(u16, u16, u32); ENTRIES as usize] = [
            (256, 4, side),
            (257, 4, side),
            (258, 3, 1),
            (259, 3, 8), // Adobe Deflate
            (262, 3, 0), // WhiteIsZero: zeros are white
            (273, 4, 8),
            (277, 3, 1),
            (278, 4, side),
            (279, 4, strip.len() as u32),
        ];
        for (tag, kind, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        let next = if p + 1 == pages { 0 } else { at + ifd_len };
        out.extend_from_slice(&next.to_le_bytes());
    }
    out
}

/// A TIFF of `pages` small grey pages.
pub fn many_pages(pages: usize) -> Vec<u8> {
    use tiff::encoder::{TiffEncoder, colortype};
    let mut buf = Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut buf).expect("tiff encoder");
    for i in 0..pages {
        enc.write_image::<colortype::Gray8>(64, 48, &[(i % 200) as u8 + 40; 64 * 48]).expect("tiff page");
    }
    buf.into_inner()
}

fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let img =
        image::GrayImage::from_fn(600, 400, |x, y| image::Luma([if (x / 20 + y / 20) % 2 == 0 { 30 } else { 230 }]));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).expect("encode");
    out
}

/// A PNG whose header claims `side`×`side` (the data is a few bytes).
pub fn png_header_bomb(side: u32) -> Vec<u8> {
    let mut png = encoded(image::ImageFormat::Png);
    // IHDR's width and height sit at bytes 16..24; the chunk's CRC is recomputed.
    png[16..20].copy_from_slice(&side.to_be_bytes());
    png[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for b in data {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// The set, named as they are uploaded; `max_pages` is the office's page limit.
pub fn files(max_pages: usize) -> Vec<(String, Vec<u8>)> {
    let jpeg = encoded(image::ImageFormat::Jpeg);
    let mut zip = encoded(image::ImageFormat::Png);
    zip.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x08\x00 an archive riding along with the page");
    vec![
        ("bomb.tif".into(), tiff_bomb(120, 6000)),
        ("many.tif".into(), many_pages(max_pages + 5)),
        ("cut.jpg".into(), jpeg[..jpeg.len() / 10].to_vec()),
        ("zip.png".into(), zip),
        ("huge.png".into(), png_header_bomb(30_000)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Pages, Rejection};
    use crate::config::Capture;

    #[test]
    fn the_bomb_is_small_and_read_one_page_at_a_time_within_the_budget() {
        let bomb = tiff_bomb(120, 6000);
        assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
        let limits = Capture { max_decoded_mb_per_file: 100, ..Capture::default() };
        let mut pages = Pages::open(&bomb, &limits).unwrap();
        assert_eq!(pages.found(), 120);
        let first = pages.next_page().unwrap().unwrap();
        assert_eq!(first.gray.dimensions(), (6000, 6000));
        assert_eq!(first.gray.get_pixel(10, 10).0[0], 255, "white");
        drop(first);
        let mut n = 1;
        while let Some(p) = pages.next_page() {
            p.unwrap();
            n += 1;
        }
        assert_eq!(n, 2, "100 MB holds two 36 MB pages");
        assert!(matches!(pages.refused(), Some((3, Rejection::OverBudget { .. }))));
    }

    #[test]
    fn every_other_hostile_file_is_refused_with_its_reason() {
        for (name, bytes) in files(20).into_iter().skip(2) {
            let r = crate::capture::decode_page(&bytes);
            assert!(r.is_err(), "{name} was accepted");
        }
        let huge = crate::capture::decode_page(&png_header_bomb(30_000));
        assert!(matches!(huge, Err(Rejection::TooLarge(30_000, 30_000))), "{:?}", huge.err());
    }
}
