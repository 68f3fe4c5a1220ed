//! capture/: "what came in, and can we accept it?" Finds scans in a folder (a scanner's hot
//! folder or `hozon ingest DIR`), checks each file before anything expensive happens, and
//! drives the ingest pipeline (see [`ingest`]). Writes no files itself: storage goes through
//! `store`, and an inbox file is deleted only after its record is durably stored.

pub mod batch;
pub mod dpi;
pub mod hotfolder;
pub mod ingest;
pub mod pages;
pub mod pdf;
pub mod strict;

pub use pages::Pages;

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
    #[error("画像の後ろに別のデータが付いています (trailing data after the image: {0})")]
    Trailing(String),
    #[error("{page} ページ目: 画素数が上限を超えています ({width}×{height} px, limit {limit} px)")]
    PageTooLarge { page: usize, width: u32, height: u32, limit: u64 },
    #[error(
        "ページ数が上限を超えています ({found} ページ以上, limit {limit}): {from} ページ目以降を受け付けませんでした"
    )]
    TooManyPages { found: usize, limit: usize, from: usize },
    #[error("展開後の合計サイズが上限 {limit_mb} MB を超えるため、{from} ページ目以降を受け付けませんでした")]
    OverBudget { limit_mb: u64, from: usize },
    #[error("受け付けなかったページがあります ({0}); ファイル全体を保管しました")]
    PagesRefused(String),
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

/// A page that passed every check, decoded to 8-bit grey (colour through [`luma`]).
pub struct DecodedPage {
    pub gray: GrayImage,
    pub format: ImageFormat,
    /// The resolution the file states, if plausible ([`dpi::plausible`]).
    pub dpi: Option<f32>,
}

/// Checks and decodes a scan. The header is read first, so a 30000×30000 image is refused
/// before any pixel memory is allocated; a PNG or JPEG must also be whole, with nothing after
/// its end (`strict`), because its bytes are what is stored.
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
    strict::check(bytes, format)?;
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
    let stated = match format {
        ImageFormat::Png => dpi::png(bytes),
        ImageFormat::Jpeg => dpi::jpeg(bytes),
        _ => None,
    };
    let gray = if img.color().has_color() {
        let rgb = img.into_rgb8();
        GrayImage::from_raw(rgb.width(), rgb.height(), rgb.as_raw().chunks_exact(3).map(luma).collect())
            .expect("one grey pixel per colour pixel")
    } else {
        img.into_luma8()
    };
    Ok(DecodedPage { dpi: dpi::plausible(stated, gray.width(), gray.height()), gray, format })
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

/// Grey of a colour pixel, with red dropped: a pixel clearly redder than it is green or blue
/// (a received stamp, a seal, a red correction mark) counts by its red channel, which is
/// light, so it does not hide the print under it; everything else by its luminance (blue and
/// black ink stay dark). Forms printed in red ink (dropout forms) would lose their rules.
fn luma(px: &[u8]) -> u8 {
    let (r, g, b) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
    if r - g.max(b) > 60 {
        return px[0];
    }
    ((r * 299 + g * 587 + b * 114) / 1000) as u8
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
        let pages = pages::all(&bytes).unwrap();
        let firsts: Vec<u8> = pages.iter().map(|p| p.gray.get_pixel(0, 0).0[0]).collect();
        // The last page is reddish (200, 100, 50): dropped to its red channel like a stamp.
        assert_eq!(firsts, [10, 120, 240, 200]);
        assert!(pages.iter().all(|p| p.gray.dimensions() == (30, 20)));
        // A single page file is one page; a cut-off multi-page file is refused, not half-read.
        assert_eq!(pages::all(&png(40, 30)).unwrap().len(), 1);
        assert!(pages::all(&bytes[..bytes.len() * 2 / 3]).is_err());
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
