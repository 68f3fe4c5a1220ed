//! The pages of one scan file, read one at a time under the office's limits.
//!
//! A multi-page TIFF or an image-only PDF is opened without decoding anything; each call to
//! [`Pages::next_page`] decodes one page (its size checked against the limits first), which the
//! caller stores before asking for the next. So a file of a thousand 36-megapixel pages costs
//! the memory of one page, and the limits (`config::Capture`) bound the time: pages past
//! `max_pages_per_file`, or past `max_decoded_mb_per_file` in total, are refused by number —
//! never dropped without a word.

use std::io::Cursor;

use image::{GrayImage, ImageFormat};

use super::pdf::PdfPages;
use super::{DecodedPage, MAX_PIXELS, MAX_SIDE, Rejection, decode_page, luma, unpack_bits};
use crate::config::Capture;

/// Most pages counted in a file (counting reads page headers only, but a hostile file could
/// chain millions).
const COUNT_CAP: usize = 100_000;

enum Kind<'a> {
    /// PNG or JPEG (or what claims to be): stored as the original bytes once decoded.
    Single,
    Tiff(Box<tiff::decoder::Decoder<Cursor<&'a [u8]>>>),
    Pdf(Box<PdfPages>),
}

pub struct Pages<'a> {
    bytes: &'a [u8],
    kind: Kind<'a>,
    /// Pages in the file (at most `COUNT_CAP`).
    found: usize,
    /// Pages handed out so far.
    next: usize,
    /// Decoded bytes handed out so far.
    decoded: u64,
    limits: Capture,
    /// Set once a limit ended the reading: pages from this one (1-based) on are refused.
    refused_from: Option<(usize, Rejection)>,
}

impl<'a> Pages<'a> {
    /// Opens a scan file: counts its pages (a broken chain of pages is an error, never a
    /// shorter file) without decoding any.
    pub fn open(bytes: &'a [u8], limits: &Capture) -> Result<Pages<'a>, Rejection> {
        if bytes.is_empty() {
            return Err(Rejection::Empty);
        }
        if bytes.len() as u64 > super::MAX_FILE_BYTES {
            return Err(Rejection::TooBig(bytes.len() as u64));
        }
        let (kind, found) = if super::pdf::is_pdf(bytes) {
            let pdf = PdfPages::open(bytes)?;
            let n = pdf.len();
            (Kind::Pdf(Box::new(pdf)), n)
        } else if image::guess_format(bytes).ok() == Some(ImageFormat::Tiff) {
            let n = tiff_count(bytes)?;
            let d = tiff::decoder::Decoder::new(Cursor::new(bytes)).map_err(tiff_corrupt(1))?;
            (Kind::Tiff(Box::new(d)), n)
        } else {
            (Kind::Single, 1)
        };
        Ok(Pages { bytes, kind, found, next: 0, decoded: 0, limits: limits.clone(), refused_from: None })
    }

    /// True when pages are re-encoded from their pixels (TIFF and PDF pages, whose files can
    /// carry anything besides the image); false for a PNG or JPEG stored as it came.
    pub fn multi(&self) -> bool {
        !matches!(self.kind, Kind::Single)
    }

    /// Pages in the file (counted up to 100,000).
    pub fn found(&self) -> usize {
        self.found
    }

    /// Why reading stopped early, and the first page (1-based) that was refused.
    pub fn refused(&self) -> Option<&(usize, Rejection)> {
        self.refused_from.as_ref()
    }

    /// The next page, decoded; `None` after the last page or once a limit stopped the reading
    /// (then [`Pages::refused`] says from which page and why). A page that is bad on its own
    /// (corrupt, too many pixels) is an `Err` and reading goes on.
    pub fn next_page(&mut self) -> Option<Result<DecodedPage, Rejection>> {
        if self.next >= self.found || self.refused_from.is_some() {
            return None;
        }
        let page = self.next + 1;
        if self.next >= self.limits.max_pages_per_file {
            let found = self.found;
            let limit = self.limits.max_pages_per_file;
            self.refused_from = Some((page, Rejection::TooManyPages { found, limit, from: page }));
            return None;
        }
        self.next += 1;
        let budget = self.limits.max_decoded_mb_per_file * 1024 * 1024;
        let (max_pixels, decoded) = (self.limits.max_page_pixels, self.decoded);
        let mut over_budget = false;
        let mut admitted = 0u64;
        let admit = |w: u32, h: u32| -> Result<(), Rejection> {
            let pixels = u64::from(w) * u64::from(h);
            if w == 0 || h == 0 {
                return Err(Rejection::Corrupt(format!("page {page}: zero-sized")));
            }
            if w > MAX_SIDE || h > MAX_SIDE || pixels > max_pixels.min(MAX_PIXELS) {
                return Err(Rejection::PageTooLarge { page, width: w, height: h, limit: max_pixels });
            }
            if decoded + pixels > budget {
                over_budget = true;
                return Err(Rejection::OverBudget { limit_mb: budget >> 20, from: page });
            }
            admitted = pixels;
            Ok(())
        };
        let result = match &mut self.kind {
            Kind::Single => single(self.bytes, admit),
            Kind::Pdf(pdf) => pdf.page(page - 1, admit),
            Kind::Tiff(d) => {
                let moved = if page > 1 { d.next_image().map_err(tiff_corrupt(page)) } else { Ok(()) };
                moved.and_then(|()| tiff_page(d, page, admit))
            }
        };
        if over_budget && let Err(why) = &result {
            self.refused_from = Some((page, why.clone()));
            return None;
        }
        // A page counts once its size was admitted, decoded or not (a corrupt page costs the
        // work of trying too).
        self.decoded += admitted;
        Some(result)
    }
}

/// Every page of a file with the default limits (tests and tools; ingest reads page by page).
pub fn all(bytes: &[u8]) -> Result<Vec<DecodedPage>, Rejection> {
    let mut pages = Pages::open(bytes, &Capture::default())?;
    let mut out = Vec::new();
    while let Some(p) = pages.next_page() {
        out.push(p?);
    }
    match pages.refused() {
        Some((_, why)) => Err(why.clone()),
        None => Ok(out),
    }
}

fn single(bytes: &[u8], admit: impl FnOnce(u32, u32) -> Result<(), Rejection>) -> Result<DecodedPage, Rejection> {
    let format = image::guess_format(bytes).map_err(|_| Rejection::NotAnImage)?;
    if matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Tiff) {
        let dims = image::ImageReader::with_format(Cursor::new(bytes), format).into_dimensions();
        if let Ok((w, h)) = dims {
            admit(w, h)?;
        }
    }
    decode_page(bytes)
}

fn tiff_corrupt(page: usize) -> impl Fn(tiff::TiffError) -> Rejection {
    move |e| Rejection::Corrupt(format!("TIFF page {page}: {e}"))
}

/// How many pages a TIFF has (up to `COUNT_CAP`); a broken chain of pages is an error.
fn tiff_count(bytes: &[u8]) -> Result<usize, Rejection> {
    let mut d = tiff::decoder::Decoder::new(Cursor::new(bytes)).map_err(tiff_corrupt(1))?;
    let mut n = 1;
    while d.more_images() && n < COUNT_CAP {
        d.next_image().map_err(|e| Rejection::Corrupt(format!("TIFF after page {n}: {e}")))?;
        n += 1;
    }
    Ok(n)
}

/// The decoder's current page as 8-bit grey: grey (1, 8 or 16 bit, either photometric
/// sense), RGB and RGBA; other layouts are refused with their name.
fn tiff_page(
    d: &mut tiff::decoder::Decoder<Cursor<&[u8]>>,
    page: usize,
    admit: impl FnOnce(u32, u32) -> Result<(), Rejection>,
) -> Result<DecodedPage, Rejection> {
    use tiff::ColorType as C;
    use tiff::decoder::DecodingResult;
    let corrupt = tiff_corrupt(page);
    let (w, h) = d.dimensions().map_err(&corrupt)?;
    admit(w, h)?;
    let color = d.colortype().map_err(&corrupt)?;
    // WhiteIsZero pages (fax-style 1-bit scans) come out of the decoder already inverted.
    let image = d.read_image().map_err(&corrupt)?;
    let (wu, hu) = (w as usize, h as usize);
    let short = || Rejection::Corrupt(format!("TIFF page {page}: short pixel data"));
    let gray: Vec<u8> = match (color, image) {
        (C::Gray(8), DecodingResult::U8(v)) => v,
        (C::Gray(16), DecodingResult::U16(v)) => v.iter().map(|x| (x >> 8) as u8).collect(),
        (C::Gray(1), DecodingResult::U8(v)) => unpack_bits(&v, wu, hu).ok_or_else(short)?,
        (C::RGB(8), DecodingResult::U8(v)) => v.chunks_exact(3).map(luma).collect(),
        (C::RGBA(8), DecodingResult::U8(v)) => v.chunks_exact(4).map(luma).collect(),
        (other, _) => {
            return Err(Rejection::Corrupt(format!("TIFF page {page}: unsupported pixel layout {other:?}")));
        }
    };
    let gray = GrayImage::from_raw(w, h, gray).ok_or_else(short)?;
    Ok(DecodedPage { dpi: super::dpi::plausible(super::dpi::tiff(d), w, h), gray, format: ImageFormat::Tiff })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiff::encoder::{TiffEncoder, colortype};

    fn tiff_of(pages: usize, w: u32, h: u32) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        let mut enc = TiffEncoder::new(&mut buf).unwrap();
        for i in 0..pages {
            enc.write_image::<colortype::Gray8>(w, h, &vec![(i * 7) as u8; (w * h) as usize]).unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn pages_past_the_limit_are_refused_by_number() {
        let bytes = tiff_of(12, 20, 10);
        let limits = Capture { max_pages_per_file: 10, ..Capture::default() };
        let mut p = Pages::open(&bytes, &limits).unwrap();
        assert_eq!(p.found(), 12);
        let mut n = 0;
        while let Some(page) = p.next_page() {
            assert_eq!(page.unwrap().gray.get_pixel(0, 0).0[0], (n * 7) as u8);
            n += 1;
        }
        assert_eq!(n, 10);
        let (from, why) = p.refused().unwrap();
        assert_eq!(*from, 11);
        assert!(why.to_string().contains("11 ページ目以降"), "{why}");
    }

    #[test]
    fn the_decoded_budget_stops_reading_and_big_pages_are_refused_alone() {
        // 1 MB budget, pages of 0.3 MB: three pages, then refused from the fourth.
        let bytes = tiff_of(6, 1000, 300);
        let limits = Capture { max_decoded_mb_per_file: 1, ..Capture::default() };
        let mut p = Pages::open(&bytes, &limits).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| p.next_page()).collect();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(Result::is_ok));
        assert!(matches!(p.refused(), Some((4, Rejection::OverBudget { from: 4, .. }))));
        // A page over the pixel limit is refused on its own; the others are read.
        let mut buf = Cursor::new(Vec::new());
        let mut enc = TiffEncoder::new(&mut buf).unwrap();
        enc.write_image::<colortype::Gray8>(20, 10, &[1; 200]).unwrap();
        enc.write_image::<colortype::Gray8>(1500, 1000, &vec![2; 1_500_000]).unwrap();
        enc.write_image::<colortype::Gray8>(20, 10, &[3; 200]).unwrap();
        let bytes = buf.into_inner();
        let limits = Capture { max_page_pixels: 1_000_000, ..Capture::default() };
        let mut p = Pages::open(&bytes, &limits).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| p.next_page()).collect();
        assert_eq!(got.len(), 3);
        assert!(matches!(got[1], Err(Rejection::PageTooLarge { page: 2, .. })));
        assert_eq!(got[2].as_ref().unwrap().gray.get_pixel(0, 0).0[0], 3);
        assert!(p.refused().is_none());
    }
}
