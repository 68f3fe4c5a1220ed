//! ocr/: "what does this page say?" Image in, text and confidence out; no storage, no clock.
//!
//! Today: full-page reading with Tesseract (`jpn`) through the `tesseract` crate's binding to
//! the system libtesseract. The library's default page segmentation (a single block) returns
//! empty text on a boxed form, so pages are read with automatic layout analysis (PSM 3).
//!
//! An engine instance is not shared between threads: each ingest worker opens its own
//! (`TesseractEngine::new`), which loads the model once (~0.3 s) and then reads page after page.
//! Reading is deterministic for the same pixels and model.

pub mod ppocr;

use std::path::{Path, PathBuf};

use image::GrayImage;
use tesseract::{PageSegMode, Tesseract};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Tesseract could not load language {lang:?} from {path}: {detail} (run `make setup`, or set HOZON_TESSDATA)"
    )]
    Init { lang: String, path: String, detail: String },
    #[error("Tesseract failed on the page: {0}")]
    Recognise(String),
    #[error(transparent)]
    Ppocr(#[from] ppocr::Error),
}

pub use ppocr::{CharSet, LineReading};

/// Reads field crops (one text line each) with a character set per crop. Two engines:
/// [`ppocr::PpOcr`] (the default for fields) and [`TesseractEngine`] (baseline, fallback).
pub trait Recognizer {
    fn name(&self) -> &'static str;
    fn read_lines(&mut self, crops: &[(&GrayImage, CharSet)]) -> Result<Vec<LineReading>, Error>;
}

impl Recognizer for ppocr::PpOcr {
    fn name(&self) -> &'static str {
        "ppocr"
    }
    fn read_lines(&mut self, crops: &[(&GrayImage, CharSet)]) -> Result<Vec<LineReading>, Error> {
        Ok(self.read_batch(crops)?)
    }
}

impl Recognizer for TesseractEngine {
    fn name(&self) -> &'static str {
        "tesseract"
    }
    /// One line at a time (PSM 7), with a character whitelist where the set is small. Tesseract
    /// gives no per-character probability here: each character gets the line's mean confidence.
    fn read_lines(&mut self, crops: &[(&GrayImage, CharSet)]) -> Result<Vec<LineReading>, Error> {
        crops.iter().map(|(img, set)| self.read_line(img, *set)).collect()
    }
}

/// Text read from one page, with Tesseract's mean word confidence (0–100).
#[derive(Debug, Clone)]
pub struct PageText {
    pub text: String,
    pub mean_confidence: i32,
}

/// Where the traineddata files are: `HOZON_TESSDATA`, else `ocr-models/tessdata` if present,
/// else the Debian package's directory.
pub fn default_tessdata() -> PathBuf {
    if let Some(p) = std::env::var_os("HOZON_TESSDATA") {
        return PathBuf::from(p);
    }
    let local = crate::resources::root().join("ocr-models/tessdata");
    if local.join("jpn.traineddata").exists() {
        return local;
    }
    PathBuf::from("/usr/share/tesseract-ocr/5/tessdata")
}

pub struct TesseractEngine {
    tess: Option<Tesseract>,
    tessdata: PathBuf,
    lang: String,
}

impl TesseractEngine {
    pub fn new(tessdata: &Path, lang: &str) -> Result<TesseractEngine, Error> {
        let init_err = |detail: String| Error::Init { lang: lang.into(), path: tessdata.display().to_string(), detail };
        let path = tessdata.to_str().ok_or_else(|| init_err("path is not UTF-8".into()))?;
        let tess = Tesseract::new(Some(path), Some(lang))
            .map_err(|e| init_err(e.to_string()))?
            // Tesseract prints diagnostics ("Detected 35 diacritics") to stderr otherwise.
            .set_variable("debug_file", "/dev/null")
            .map_err(|e| init_err(e.to_string()))?;
        Ok(TesseractEngine { tess: Some(tess), tessdata: tessdata.to_owned(), lang: lang.into() })
    }

    /// Reads one line (PSM 7) restricted to `set` where Tesseract can be told (a whitelist).
    pub fn read_line(&mut self, line: &GrayImage, set: CharSet) -> Result<LineReading, Error> {
        let tess = match self.tess.take() {
            Some(t) => t,
            None => TesseractEngine::new(&self.tessdata, &self.lang)?.tess.take().expect("just opened"),
        };
        let whitelist = match set {
            CharSet::Digits => "0123456789",
            CharSet::DigitsDash => "0123456789-",
            CharSet::Date => "0123456789年月日明治大正昭和平成令和元/-.",
            CharSet::Katakana => {
                "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポァィゥェォッャュョヮヴー "
            }
            CharSet::Cp932 => "",
        };
        let tess =
            tess.set_variable("tessedit_char_whitelist", whitelist).map_err(|e| Error::Recognise(e.to_string()))?;
        let (w, h) = (line.width() as i32, line.height() as i32);
        let mut tess = tess.set_frame(line.as_raw(), w, h, 1, w).map_err(|e| Error::Recognise(e.to_string()))?;
        tess = tess.set_source_resolution(300);
        tess.set_page_seg_mode(PageSegMode::PsmSingleLine);
        let result = tess.get_text().map_err(|e| Error::Recognise(e.to_string()));
        let conf = tess.mean_text_conf();
        self.tess = Some(tess);
        let text: String = result?.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = if set == CharSet::Cp932 || set == CharSet::Katakana {
            // Tesseract's jpn model spaces out CJK characters.
            crate::index::normalise(&text)
        } else {
            text.replace(' ', "")
        };
        let n = text.chars().count();
        Ok(LineReading { text, char_confidence: vec![(conf.max(0) as f32) / 100.0; n], variant_doubts: Vec::new() })
    }

    /// Reads a whole page with automatic layout analysis.
    pub fn read_page(&mut self, page: &GrayImage, dpi: i32) -> Result<PageText, Error> {
        // A failed call consumes the handle; open a fresh one rather than poison the worker.
        let tess = match self.tess.take() {
            Some(t) => t,
            None => TesseractEngine::new(&self.tessdata, &self.lang)?.tess.take().expect("just opened"),
        };
        let (w, h) = (page.width() as i32, page.height() as i32);
        let mut tess = match tess.set_frame(page.as_raw(), w, h, 1, w) {
            Ok(t) => t,
            Err(e) => return Err(Error::Recognise(e.to_string())),
        };
        tess = tess.set_source_resolution(dpi);
        tess.set_page_seg_mode(PageSegMode::PsmAuto);
        let result = tess.get_text().map_err(|e| Error::Recognise(e.to_string()));
        let conf = tess.mean_text_conf();
        self.tess = Some(tess);
        Ok(PageText { text: result?, mean_confidence: conf })
    }
}
