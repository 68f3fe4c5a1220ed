//! capture/: "what came in, and can we accept it?" Finds scans in a folder (a scanner's hot
//! folder or `hozon ingest DIR`), checks each file before anything expensive happens, and
//! drives the ingest pipeline (see [`ingest`]). Writes no files itself: storage goes through
//! `store`, and an inbox file is deleted only after its record is durably stored.

pub mod batch;
pub mod hotfolder;
pub mod ingest;
pub mod pdf;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageFormat, ImageReader, Limits};

/// Largest file accepted (an A3 colour scan at 600 dpi as uncompressed TIFF is ~200 MB).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Largest side in pixels (A0 at 400 dpi) and largest pixel count accepted.
pub const MAX_SIDE: u32 = 20_000;
pub const MAX_PIXELS: u64 = 200_000_000;

const SCAN_EXTENSIONS: &[&str] = &["png", "tif", "tiff", "jpg", "jpeg", "pdf"];

/// Why a file was not accepted as a page. Messages are Japanese first (staff read them), with
/// the English cause after.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("空のファイルです (empty file, 0 bytes)")]
    Empty,
    #[error("ファイルが大きすぎます (file is {0} bytes, limit {MAX_FILE_BYTES})")]
    TooBig(u64),
    #[error("画像ファイルではありません (not an image: unrecognised format)")]
    NotAnImage,
    #[error("画像の寸法が大きすぎます (image is {0}×{1} px, limit {MAX_SIDE} px a side and {MAX_PIXELS} px)")]
    TooLarge(u32, u32),
    #[error("画像が壊れているか途中で切れています (corrupt or truncated image: {0})")]
    Corrupt(String),
}

/// Files under `dir` that look like scans, in a stable order. Other files (`truth.jsonl`,
/// notes, hidden files) are not pages and are left alone.
pub fn scan_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} is not a folder", dir.display())));
    }
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| SCAN_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A page that passed every check, decoded to 8-bit grey.
pub struct DecodedPage {
    pub gray: GrayImage,
    pub format: ImageFormat,
}

/// Checks and decodes a scan. The header is read first, so a 30000×30000 image is refused
/// before any pixel memory is allocated.
pub fn decode_page(bytes: &[u8]) -> Result<DecodedPage, Rejection> {
    if bytes.is_empty() {
        return Err(Rejection::Empty);
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Rejection::TooBig(bytes.len() as u64));
    }
    let format = image::guess_format(bytes).map_err(|_| Rejection::NotAnImage)?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Tiff) {
        return Err(Rejection::NotAnImage);
    }
    // Reading the dimensions parses the header only; no pixel memory is allocated.
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| Rejection::Corrupt(e.to_string()))?;
    if w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(Rejection::TooLarge(w, h));
    }
    if w == 0 || h == 0 {
        return Err(Rejection::Corrupt("zero-sized image".into()));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => Rejection::TooLarge(w, h),
        other => Rejection::Corrupt(other.to_string()),
    })?;
    Ok(DecodedPage { gray: img.into_luma8(), format })
}

/// Most pages accepted from one multi-page file.
pub const MAX_PAGES: usize = 1000;

/// Every page of a scan file: a multi-page TIFF or an image-only PDF (how many scanners deliver
/// a batch) gives one page per frame or page; other files give one page.
pub fn decode_pages(bytes: &[u8]) -> Result<Vec<DecodedPage>, Rejection> {
    if pdf::is_pdf(bytes) {
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(Rejection::TooBig(bytes.len() as u64));
        }
        return pdf::pages(bytes);
    }
    if image::guess_format(bytes).ok() == Some(ImageFormat::Tiff) {
        let frames = tiff_frames(bytes)?;
        if frames > 1 {
            return (0..frames.min(MAX_PAGES)).map(|i| tiff_frame(bytes, i)).collect();
        }
    }
    decode_page(bytes).map(|p| vec![p])
}

/// How many pages a TIFF has; a broken chain of pages is an error, never a shorter file.
fn tiff_frames(bytes: &[u8]) -> Result<usize, Rejection> {
    let mut d =
        tiff::decoder::Decoder::new(Cursor::new(bytes)).map_err(|e| Rejection::Corrupt(format!("TIFF: {e}")))?;
    let mut n = 1;
    while d.more_images() && n <= MAX_PAGES {
        d.next_image().map_err(|e| Rejection::Corrupt(format!("TIFF after page {n}: {e}")))?;
        n += 1;
    }
    Ok(n)
}

/// Frame `i` of a multi-page TIFF as 8-bit grey: grey (1, 8 or 16 bit, either photometric
/// sense), RGB and RGBA; other layouts are refused with their name.
fn tiff_frame(bytes: &[u8], i: usize) -> Result<DecodedPage, Rejection> {
    use tiff::ColorType as C;
    use tiff::decoder::{Decoder, DecodingResult};
    let corrupt = |e: tiff::TiffError| Rejection::Corrupt(format!("TIFF page {}: {e}", i + 1));
    let mut d = Decoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    d.seek_to_image(i).map_err(corrupt)?;
    let (w, h) = d.dimensions().map_err(corrupt)?;
    if w == 0 || h == 0 {
        return Err(Rejection::Corrupt(format!("TIFF page {}: zero-sized", i + 1)));
    }
    if w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(Rejection::TooLarge(w, h));
    }
    let color = d.colortype().map_err(corrupt)?;
    // 0 = WhiteIsZero: the grey values are inverted.
    let white_is_zero =
        d.find_tag(tiff::tags::Tag::PhotometricInterpretation).ok().flatten().and_then(|v| v.into_u16().ok())
            == Some(0);
    let image = d.read_image().map_err(corrupt)?;
    let (wu, hu) = (w as usize, h as usize);
    let mut gray: Vec<u8> = match (color, image) {
        (C::Gray(8), DecodingResult::U8(v)) => v,
        (C::Gray(16), DecodingResult::U16(v)) => v.iter().map(|x| (x >> 8) as u8).collect(),
        (C::Gray(1), DecodingResult::U8(v)) => unpack_bits(&v, wu, hu)
            .ok_or_else(|| Rejection::Corrupt(format!("TIFF page {}: short pixel data", i + 1)))?,
        (C::RGB(8), DecodingResult::U8(v)) => v.chunks_exact(3).map(luma).collect(),
        (C::RGBA(8), DecodingResult::U8(v)) => v.chunks_exact(4).map(luma).collect(),
        (other, _) => {
            return Err(Rejection::Corrupt(format!("TIFF page {}: unsupported pixel layout {other:?}", i + 1)));
        }
    };
    if white_is_zero {
        gray.iter_mut().for_each(|p| *p = 255 - *p);
    }
    let gray = GrayImage::from_raw(w, h, gray)
        .ok_or_else(|| Rejection::Corrupt(format!("TIFF page {}: short pixel data", i + 1)))?;
    Ok(DecodedPage { gray, format: ImageFormat::Tiff })
}

/// 1-bit rows (each padded to a byte, first pixel in the high bit; 1 = white) as 8-bit grey;
/// `None` if the data is short.
fn unpack_bits(packed: &[u8], w: usize, h: usize) -> Option<Vec<u8>> {
    let stride = w.div_ceil(8);
    if packed.len() < stride * h {
        return None;
    }
    Some(
        (0..h)
            .flat_map(|y| {
                let row = &packed[y * stride..];
                (0..w).map(move |x| if row[x / 8] & (0x80 >> (x % 8)) != 0 { 255 } else { 0 })
            })
            .collect(),
    )
}

fn luma(px: &[u8]) -> u8 {
    ((u32::from(px[0]) * 299 + u32::from(px[1]) * 587 + u32::from(px[2]) * 114) / 1000) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = GrayImage::from_pixel(w, h, image::Luma([200]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn good_page_decodes() {
        let p = decode_page(&png(40, 30)).unwrap();
        assert_eq!(p.gray.dimensions(), (40, 30));
    }

    #[test]
    fn bad_inputs_are_named() {
        assert_eq!(decode_page(b"").err(), Some(Rejection::Empty));
        assert_eq!(decode_page("これはテキストです".as_bytes()).err(), Some(Rejection::NotAnImage));
        let full = png(400, 300);
        assert!(matches!(decode_page(&full[..full.len() / 2]), Err(Rejection::Corrupt(_))));
        // One pixel too wide: refused from the header, before decoding.
        assert!(matches!(decode_page(&png(MAX_SIDE + 1, 1)), Err(Rejection::TooLarge(..))));
    }

    #[test]
    fn multi_page_tiff_gives_every_page() {
        use tiff::encoder::{TiffEncoder, colortype};
        let mut buf = Cursor::new(Vec::new());
        let mut enc = TiffEncoder::new(&mut buf).unwrap();
        for shade in [10u8, 120, 240] {
            enc.write_image::<colortype::Gray8>(30, 20, &vec![shade; 600]).unwrap();
        }
        let rgb: Vec<u8> = [200u8, 100, 50].repeat(600);
        enc.write_image::<colortype::RGB8>(30, 20, &rgb).unwrap();
        let bytes = buf.into_inner();
        let pages = decode_pages(&bytes).unwrap();
        let firsts: Vec<u8> = pages.iter().map(|p| p.gray.get_pixel(0, 0).0[0]).collect();
        assert_eq!(firsts, [10, 120, 240, 124]);
        assert!(pages.iter().all(|p| p.gray.dimensions() == (30, 20)));
        // A single page file is one page; a cut-off multi-page file is refused, not half-read.
        assert_eq!(decode_pages(&png(40, 30)).unwrap().len(), 1);
        assert!(decode_pages(&bytes[..bytes.len() * 2 / 3]).is_err());
    }

    #[test]
    fn scan_files_filters_by_extension() {
        let tmp = tempfile::tempdir().unwrap();
        for n in ["b.png", "a.TIF", "truth.jsonl", ".hidden.png", "c.jpg", "notes.txt"] {
            std::fs::write(tmp.path().join(n), b"x").unwrap();
        }
        let names: Vec<_> = scan_files(tmp.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.TIF", "b.png", "c.jpg"]);
    }
}
