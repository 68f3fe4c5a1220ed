//! Image-only PDF (what a scanner's "scan to PDF" writes): each page's largest image is the
//! page. Read with `lopdf`; JPEG (DCTDecode) and Flate-compressed grey or RGB images (8 bit,
//! or 1 bit) are decoded, anything else is refused with the filter named. Text in a PDF is
//! not used: a scanned page is read by the form recognizer like any other.

use image::{GrayImage, ImageFormat};

use super::{DecodedPage, MAX_PIXELS, MAX_SIDE, Rejection, decode_page};

pub fn is_pdf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"%PDF-")
}

/// An opened image-only PDF: its page objects in page order (nothing decoded yet).
pub struct PdfPages {
    doc: lopdf::Document,
    pages: Vec<(u32, lopdf::ObjectId)>,
}

fn corrupt(what: String) -> Rejection {
    Rejection::Corrupt(format!("PDF: {what}"))
}

impl PdfPages {
    pub fn open(bytes: &[u8]) -> Result<PdfPages, Rejection> {
        let doc = lopdf::Document::load_mem(bytes).map_err(|e| corrupt(e.to_string()))?;
        let pages: Vec<(u32, lopdf::ObjectId)> = doc.get_pages().into_iter().collect();
        if pages.is_empty() {
            return Err(corrupt("no pages".into()));
        }
        Ok(PdfPages { doc, pages })
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Page `i` (0-based): its largest image's size, then the decoded page if `admit` lets the
    /// size through (the caller's limits), all before any pixel memory is allocated.
    pub fn page(
        &self,
        i: usize,
        admit: impl FnOnce(u32, u32) -> Result<(), Rejection>,
    ) -> Result<DecodedPage, Rejection> {
        let (no, id) = self.pages[i];
        let images = self.doc.get_page_images(id).map_err(|e| corrupt(format!("page {no}: {e}")))?;
        let img = images
            .iter()
            .max_by_key(|i| i.width.saturating_mul(i.height))
            .ok_or_else(|| corrupt(format!("page {no} has no image (not a scan)")))?;
        admit(u32::try_from(img.width).unwrap_or(u32::MAX), u32::try_from(img.height).unwrap_or(u32::MAX))?;
        page_image(img).map_err(|why| corrupt(format!("page {no}: {why}")))
    }
}

fn page_image(img: &lopdf::xobject::PdfImage) -> Result<DecodedPage, String> {
    let (w, h) = (u32::try_from(img.width).unwrap_or(0), u32::try_from(img.height).unwrap_or(0));
    if w == 0 || h == 0 {
        return Err("zero-sized image".into());
    }
    if w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!("image is {w}×{h} px, limit {MAX_SIDE} px a side and {MAX_PIXELS} px"));
    }
    let filters: Vec<&str> = img.filters.iter().flatten().map(String::as_str).collect();
    match filters.as_slice() {
        ["DCTDecode"] => {
            // The JPEG's own header must say what the page dictionary said (and the limits saw).
            let own = image::ImageReader::with_format(std::io::Cursor::new(img.content), ImageFormat::Jpeg)
                .into_dimensions()
                .map_err(|e| e.to_string())?;
            if own != (w, h) {
                return Err(format!("JPEG is {}×{} px, the page says {w}×{h}", own.0, own.1));
            }
            let page = decode_page(img.content).map_err(|e| e.to_string())?;
            Ok(DecodedPage { gray: page.gray, format: ImageFormat::Jpeg, dpi: None })
        }
        ["FlateDecode"] => {
            let limit = (u64::from(w) * u64::from(h) * 3) as usize + 16;
            let raw = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(img.content, limit)
                .map_err(|e| format!("Flate: {e:?}"))?;
            let (wu, hu) = (w as usize, h as usize);
            let space = img.color_space.as_deref().unwrap_or("DeviceGray");
            let gray: Vec<u8> = match (space, img.bits_per_component.unwrap_or(8)) {
                ("DeviceGray", 8) if raw.len() >= wu * hu => raw[..wu * hu].to_vec(),
                ("DeviceRGB", 8) if raw.len() >= wu * hu * 3 => {
                    raw.chunks_exact(3).take(wu * hu).map(super::luma).collect()
                }
                ("DeviceGray", 1) => super::unpack_bits(&raw, wu, hu).ok_or("short pixel data")?,
                (space, bpc) => return Err(format!("unsupported image: {space}, {bpc} bit")),
            };
            let gray = GrayImage::from_raw(w, h, gray).ok_or("short pixel data")?;
            Ok(DecodedPage { gray, format: ImageFormat::Png, dpi: None })
        }
        other => Err(format!("image compression {other:?} is not supported (JPEG and Flate are)")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref};

    /// A two-page scan-style PDF: a JPEG page and a Flate-compressed grey page.
    pub(crate) fn scan_pdf(jpeg: (&[u8], u32, u32), gray: &GrayImage) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let (catalog, tree) = (Ref::new(1), Ref::new(2));
        pdf.catalog(catalog).pages(tree);
        let ids: Vec<(Ref, Ref, Ref)> =
            (0..2).map(|i| (Ref::new(10 + i * 3), Ref::new(11 + i * 3), Ref::new(12 + i * 3))).collect();
        pdf.pages(tree).kids(ids.iter().map(|(p, _, _)| *p)).count(2);
        let flate = miniz_oxide::deflate::compress_to_vec_zlib(gray.as_raw(), 6);
        for (i, (page, image, content)) in ids.iter().enumerate() {
            let mut p = pdf.page(*page);
            p.media_box(Rect::new(0.0, 0.0, 595.0, 842.0)).parent(tree).contents(*content);
            p.resources().x_objects().pair(Name(b"Im0"), *image);
            p.finish();
            let (data, w, h, filter): (&[u8], u32, u32, Filter) = if i == 0 {
                (jpeg.0, jpeg.1, jpeg.2, Filter::DctDecode)
            } else {
                (&flate, gray.width(), gray.height(), Filter::FlateDecode)
            };
            let mut x = pdf.image_xobject(*image, data);
            x.filter(filter);
            x.width(w as i32).height(h as i32).bits_per_component(8);
            x.color_space().device_gray();
            x.finish();
            let mut c = Content::new();
            c.save_state().transform([595.0, 0.0, 0.0, 842.0, 0.0, 0.0]).x_object(Name(b"Im0")).restore_state();
            pdf.stream(*content, &c.finish());
        }
        pdf.finish()
    }

    #[test]
    fn image_only_pdf_pages_are_read() {
        let a = GrayImage::from_fn(40, 30, |x, _| image::Luma([if x < 20 { 30 } else { 220 }]));
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageLuma8(a.clone())
            .write_to(&mut std::io::Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        let b = GrayImage::from_fn(50, 20, |_, y| image::Luma([if y < 10 { 0 } else { 200 }]));
        let bytes = scan_pdf((&jpeg, 40, 30), &b);
        assert!(is_pdf(&bytes));
        let pages = super::super::pages::all(&bytes).unwrap();
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0].gray.dimensions(), (40, 30));
        assert!(pages[0].gray.get_pixel(5, 5).0[0] < 80 && pages[0].gray.get_pixel(35, 5).0[0] > 170);
        assert_eq!(pages[1].gray, b);
        // A PDF cut short, or one without images, is refused with a reason.
        assert!(matches!(super::super::pages::all(&bytes[..bytes.len() / 2]), Err(Rejection::Corrupt(_))));
    }
}
