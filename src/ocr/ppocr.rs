//! Field reading with PaddleOCR's PP-OCRv6 small text-line recognizer (Apache-2.0), run by the
//! pure-Rust `rten` runtime from the ONNX file set-up extracts into `ocr-models/ppocr/`.
//!
//! Why this and not Tesseract for fields: measured on this machine (TECH-NOTES), handwriting
//! fonts read at 0.5% CER with a per-field character mask against Tesseract's 21%, digits in
//! comb boxes at 0.7% against Tesseract reading the box lines as `|` and `1`.
//!
//! The model: input `[N, 3, 48, W]` (grey in three channels, `(p/255 − 0.5)/0.5`, height 48,
//! width kept in proportion and padded), output `[N, T, C]` softmax over C = 1 (CTC blank) +
//! the dictionary (ONNX metadata key `character`, 18,708 entries) + 1 (space). Decoding is
//! greedy CTC with the argmax taken only over the characters the field may hold
//! ([`CharSet`]): a digit field cannot come out as `l` or `|`.

use std::path::{Path, PathBuf};

use image::GrayImage;
use image::imageops::FilterType;
use rten::Model;
use rten_tensor::NdTensor;
use rten_tensor::prelude::*;

/// Input height the model was trained at.
const HEIGHT: u32 = 48;
/// Narrowest input width (shorter lines are padded).
const MIN_WIDTH: u32 = 320;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("PP-OCR model {path}: {detail} (run `make setup`, or set HOZON_PPOCR_MODEL)")]
    Load { path: String, detail: String },
    #[error("PP-OCR inference failed: {0}")]
    Run(String),
}

/// Which characters a field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CharSet {
    /// 0–9 only (numbers, My Number).
    Digits,
    /// Digits and `-` (phone, postal code).
    DigitsDash,
    /// Katakana, ー and space (フリガナ).
    Katakana,
    /// Digits, 年月日, era names, 元, `/ - .` (dates).
    Date,
    /// Anything Shift_JIS (CP932) can encode: what the subsidy system accepts.
    Cp932,
}

impl CharSet {
    /// What a dictionary entry reads as in a field of this set: itself if allowed, its
    /// look-alike if the set has one (力 in a katakana field is カ, O in a number is 0), or
    /// nothing (the class is masked out).
    pub fn output(self, c: &str) -> Option<String> {
        if self.allows(c) {
            return Some(c.to_owned());
        }
        let lookalike = match (self, c) {
            (CharSet::Katakana, "力") => "カ",
            (CharSet::Katakana, "夕") => "タ",
            (CharSet::Katakana, "口") => "ロ",
            (CharSet::Katakana, "工") => "エ",
            (CharSet::Katakana, "二") => "ニ",
            (CharSet::Katakana, "八") => "ハ",
            (CharSet::Katakana, "卜") => "ト",
            (CharSet::Digits | CharSet::DigitsDash | CharSet::Date, "O" | "o" | "〇") => "0",
            (CharSet::Digits | CharSet::DigitsDash | CharSet::Date, "l" | "I" | "|") => "1",
            (CharSet::DigitsDash, "ー" | "一" | "－" | "―") => "-",
            _ => return None,
        };
        Some(lookalike.to_owned())
    }

    pub fn allows(self, c: &str) -> bool {
        let mut chars = c.chars();
        let (Some(ch), None) = (chars.next(), chars.next()) else {
            // Multi-character dictionary entries: only in free text.
            return self == CharSet::Cp932 && cp932(c);
        };
        match self {
            CharSet::Digits => ch.is_ascii_digit(),
            CharSet::DigitsDash => ch.is_ascii_digit() || ch == '-',
            CharSet::Katakana => matches!(ch, '\u{30A1}'..='\u{30FA}' | 'ー' | ' ' | '\u{3000}'),
            CharSet::Date => ch.is_ascii_digit() || "年月日明治大正昭和平成令和元/-.".contains(ch),
            CharSet::Cp932 => cp932(c),
        }
    }
}

fn cp932(s: &str) -> bool {
    let (_, _, unmappable) = encoding_rs::SHIFT_JIS.encode(s);
    !unmappable
}

/// One line read: text and, per character, the probability the model gave it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineReading {
    pub text: String,
    pub char_confidence: Vec<f32>,
    /// Characters read where the model could as well have meant a variant form (read,
    /// variant): 濱 for a handwritten 浜, 穂 for 穗. Kept as read, for a reviewer to confirm.
    pub variant_doubts: Vec<(String, String)>,
}

impl LineReading {
    /// The least sure character's probability (1.0 for an empty reading).
    pub fn min_confidence(&self) -> f32 {
        self.char_confidence.iter().copied().fold(1.0, f32::min)
    }
}

/// Where the model is: `HOZON_PPOCR_MODEL`, else `ocr-models/ppocr/PP-OCRv6_rec_small.onnx`.
pub fn default_model() -> PathBuf {
    crate::resources::path("HOZON_PPOCR_MODEL", "ocr-models/ppocr/PP-OCRv6_rec_small.onnx")
}

pub struct PpOcr {
    model: Model,
    /// Class index → text; index 0 is the CTC blank (empty string).
    classes: Vec<String>,
    variants: Variants,
    /// Per char set, what each class reads as (`None`: masked out), built on first use.
    masks: std::sync::Mutex<std::collections::HashMap<CharSet, std::sync::Arc<Vec<Option<String>>>>>,
}

impl PpOcr {
    pub fn load(path: &Path) -> Result<PpOcr, Error> {
        let err = |detail: String| Error::Load { path: path.display().to_string(), detail };
        let model = Model::load_file(path).map_err(|e| err(e.to_string()))?;
        let dict = model.metadata().get("character").ok_or_else(|| err("no `character` metadata".into()))?;
        let mut classes = vec![String::new()];
        classes.extend(dict.lines().map(|l| fold_variant(l).to_owned()));
        classes.push(" ".to_owned());
        let variants = Variants::new(&classes);
        Ok(PpOcr { model, classes, variants, masks: Default::default() })
    }

    fn mask(&self, set: CharSet) -> std::sync::Arc<Vec<Option<String>>> {
        let mut masks = self.masks.lock().expect("mask cache poisoned");
        masks
            .entry(set)
            .or_insert_with(|| {
                let mut m: Vec<Option<String>> = self.classes.iter().map(|c| set.output(c)).collect();
                m[0] = Some(String::new()); // blank
                std::sync::Arc::new(m)
            })
            .clone()
    }

    /// Reads a page's line crops: grouped by width into a few inference calls, so a short
    /// date is not padded to the width of the address (the model's cost grows with width).
    pub fn read_batch(&self, crops: &[(&GrayImage, CharSet)]) -> Result<Vec<LineReading>, Error> {
        const GROUP: usize = 4;
        let width = |img: &GrayImage| u64::from(img.width()) * u64::from(HEIGHT) / u64::from(img.height().max(1));
        let mut order: Vec<usize> = (0..crops.len()).collect();
        order.sort_by_key(|&i| width(crops[i].0));
        let mut out: Vec<Option<LineReading>> = vec![None; crops.len()];
        for group in order.chunks(GROUP) {
            let batch: Vec<(&GrayImage, CharSet)> = group.iter().map(|&i| crops[i]).collect();
            for (&i, r) in group.iter().zip(self.infer(&batch)?) {
                out[i] = Some(r);
            }
        }
        Ok(out.into_iter().map(|r| r.expect("every crop read")).collect())
    }

    /// One inference call over `crops`, padded to the widest.
    fn infer(&self, crops: &[(&GrayImage, CharSet)]) -> Result<Vec<LineReading>, Error> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let resized: Vec<GrayImage> = crops.iter().map(|(img, _)| to_height(img)).collect();
        let width = resized.iter().map(GrayImage::width).max().unwrap_or(MIN_WIDTH).max(MIN_WIDTH) as usize;
        let (n, h) = (resized.len(), HEIGHT as usize);
        // Zero after normalisation is mid-grey, PaddleOCR's own padding.
        let mut input = vec![0f32; n * 3 * h * width];
        for (i, img) in resized.iter().enumerate() {
            for (x, y, p) in img.enumerate_pixels() {
                let v = (f32::from(p.0[0]) / 255.0 - 0.5) / 0.5;
                for ch in 0..3 {
                    input[((i * 3 + ch) * h + y as usize) * width + x as usize] = v;
                }
            }
        }
        let tensor = NdTensor::from_data([n, 3, h, width], input);
        let out = self.model.run_one(tensor.into(), None).map_err(|e| Error::Run(e.to_string()))?;
        let probs: NdTensor<f32, 3> = out.try_into().map_err(|e: rten::TryFromValueError| Error::Run(e.to_string()))?;
        let [_, steps, classes] = probs.shape();
        if classes != self.classes.len() {
            return Err(Error::Run(format!("model has {classes} classes, dictionary {}", self.classes.len())));
        }
        let probs = probs.to_vec();
        Ok(crops
            .iter()
            .enumerate()
            .map(|(i, (_, set))| {
                let rows = &probs[i * steps * classes..(i + 1) * steps * classes];
                decode(rows.chunks_exact(classes), &self.mask(*set), &self.variants)
            })
            .collect())
    }
}

/// Greedy CTC over the allowed classes: per step the most probable allowed class; repeats
/// collapse, blanks separate. A character's confidence is its best step's probability; a
/// variant form as probable as [`VARIANT_DOUBT`] at that step is noted.
fn decode<'a>(steps: impl Iterator<Item = &'a [f32]>, outputs: &[Option<String>], variants: &Variants) -> LineReading {
    let mut text = String::new();
    let mut char_confidence = Vec::new();
    // Per character read: its class and its best step's row.
    let mut best_rows: Vec<(usize, &[f32])> = Vec::new();
    let mut prev = 0usize;
    for row in steps {
        let (best, p) = row
            .iter()
            .enumerate()
            .filter(|(c, _)| outputs[*c].is_some())
            .fold((0usize, f32::MIN), |acc, (c, p)| if *p > acc.1 { (c, *p) } else { acc });
        if best != 0 && best != prev {
            text.push_str(outputs[best].as_deref().unwrap_or_default());
            char_confidence.push(p);
            best_rows.push((best, row));
        } else if best != 0
            && let Some(last) = char_confidence.last_mut()
            && p > *last
        {
            *last = p;
            if let Some(r) = best_rows.last_mut() {
                r.1 = row;
            }
        }
        prev = best;
    }
    let variant_doubts = best_rows
        .iter()
        .filter_map(|&(class, row)| {
            let other = variants.doubt(class, row, outputs)?;
            Some((outputs[class].clone()?, outputs[other].clone()?))
        })
        .collect();
    LineReading { text: fix_long_vowels(&text), char_confidence, variant_doubts }
}

/// Simplified Chinese forms the dictionary holds beside the Japanese ones, folded to the
/// Japanese form (the model sometimes prefers the Chinese glyph for a Japanese name; none of
/// these is in CP932, so no Japanese writer meant them). Japanese old and new forms (濱/浜,
/// 國/国…) are never folded: a name is kept as written, and a doubt between the two is
/// flagged ([`Variants`]).
fn fold_variant(c: &str) -> &str {
    match c {
        "边" => "辺",
        "东" => "東",
        "发" => "発",
        "县" => "県",
        _ => c,
    }
}

/// Kanji variant pairs (old and new forms, 濱/浜) from `ocr-models/kanji-variants.tsv`
/// (KANJIDIC2), as class indices of the model's dictionary.
#[derive(Default)]
struct Variants {
    /// Class → the classes of its variants.
    of: std::collections::HashMap<usize, Vec<usize>>,
    /// Classes that are the rare (old) member of a pair: the model reads a handwritten common
    /// form as the old one at full confidence, so such a reading is always a doubt.
    rare: std::collections::HashSet<usize>,
}

/// The table, compiled in (it is data about characters, not about an installation).
const VARIANT_TABLE: &str = include_str!("../../ocr-models/kanji-variants.tsv");
/// A variant this probable at the step a character was read makes it a doubt.
const VARIANT_DOUBT: f32 = 0.2;

impl Variants {
    fn new(classes: &[String]) -> Variants {
        let index: std::collections::HashMap<&str, usize> =
            classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        let mut v = Variants::default();
        for line in VARIANT_TABLE.lines().filter(|l| !l.starts_with('#')) {
            let mut cols = line.split('\t');
            let (Some(a), Some(b), kind) = (cols.next(), cols.next(), cols.next()) else { continue };
            let (Some(&ia), Some(&ib)) = (index.get(a), index.get(b)) else { continue };
            v.of.entry(ia).or_default().push(ib);
            v.of.entry(ib).or_default().push(ia);
            if kind == Some("old") {
                v.rare.insert(ia);
            }
        }
        v
    }

    /// The variant the model also saw at this step, if the reading of `class` is in doubt.
    fn doubt(&self, class: usize, row: &[f32], allowed: &[Option<String>]) -> Option<usize> {
        let others = self.of.get(&class)?;
        let best =
            others.iter().copied().filter(|&o| allowed[o].is_some()).max_by(|&a, &b| row[a].total_cmp(&row[b]))?;
        (self.rare.contains(&class) || row[best] >= VARIANT_DOUBT).then_some(best)
    }
}

/// 一 (kanji one) right after kana is the long vowel mark ー.
fn fix_long_vowels(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let after_kana = prev.is_some_and(|p| matches!(p, '\u{3041}'..='\u{309F}' | '\u{30A1}'..='\u{30FA}' | 'ー'));
        out.push(if c == '一' && after_kana { 'ー' } else { c });
        prev = Some(c);
    }
    out
}

/// Scales a crop to the model's height, keeping its proportions.
fn to_height(img: &GrayImage) -> GrayImage {
    let (w, h) = img.dimensions();
    let new_w = ((u64::from(w) * u64::from(HEIGHT)) / u64::from(h.max(1))).max(1) as u32;
    image::imageops::resize(img, new_w, HEIGHT, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(list: &[&str]) -> Vec<String> {
        let mut v = vec![String::new()];
        v.extend(list.iter().map(|s| s.to_string()));
        v
    }

    fn outputs(c: &[String], set: Option<CharSet>) -> Vec<Option<String>> {
        c.iter()
            .enumerate()
            .map(|(i, s)| if i == 0 { Some(String::new()) } else { set.map_or(Some(s.clone()), |m| m.output(s)) })
            .collect()
    }

    #[test]
    fn masked_greedy_ctc() {
        // Classes: blank, "1", "l", "|", "2".
        let c = classes(&["1", "l", "|", "2"]);
        let steps: Vec<Vec<f32>> = vec![
            vec![0.1, 0.3, 0.5, 0.1, 0.0], // "l" wins unmasked, "1" among digits
            vec![0.1, 0.35, 0.45, 0.1, 0.0],
            vec![0.9, 0.0, 0.1, 0.0, 0.0], // blank
            vec![0.1, 0.0, 0.1, 0.6, 0.2], // "|" unmasked, "2" among digits
        ];
        let r = decode(steps.iter().map(Vec::as_slice), &outputs(&c, None), &Variants::default());
        assert_eq!(r.text, "l|");
        // Digits with look-alikes: "l" and "|" read as 1, so the steps give 1, 1 (collapsed),
        // blank, then "|" as 1 (0.6 beats "2" at 0.2).
        let r = decode(steps.iter().map(Vec::as_slice), &outputs(&c, Some(CharSet::Digits)), &Variants::default());
        assert_eq!(r.text, "11");
        // With only true digits allowed (no look-alikes): "1" then "2".
        let strict: Vec<Option<String>> =
            c.iter().enumerate().map(|(i, s)| (i == 0 || CharSet::Digits.allows(s)).then(|| s.clone())).collect();
        let r = decode(steps.iter().map(Vec::as_slice), &strict, &Variants::default());
        assert_eq!(r.text, "12");
        assert_eq!(r.char_confidence, vec![0.35, 0.2], "best step of the repeated 1");
        assert!((r.min_confidence() - 0.2).abs() < 1e-6);
    }

    #[test]
    fn old_forms_are_kept_and_doubts_noted() {
        // Classes: blank, 浜, 濱, 田, 穗, 穂.
        let c = classes(&["浜", "濱", "田", "穗", "穂"]);
        let v = Variants::new(&c);
        let all = outputs(&c, Some(CharSet::Cp932));
        // 濱 read at full confidence: kept as read, and a doubt (the model reads a handwritten
        // 浜 this way); 田 has no variant.
        let steps: Vec<Vec<f32>> = vec![vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0], vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0]];
        let r = decode(steps.iter().map(Vec::as_slice), &all, &v);
        assert_eq!(r.text, "濱田");
        assert_eq!(r.variant_doubts, vec![("濱".to_owned(), "浜".to_owned())]);
        // The common form read clearly: no doubt. Read with its old form close behind: a doubt.
        let clear: Vec<Vec<f32>> = vec![vec![0.0, 0.995, 0.005, 0.0, 0.0, 0.0]];
        assert!(decode(clear.iter().map(Vec::as_slice), &all, &v).variant_doubts.is_empty());
        let close: Vec<Vec<f32>> = vec![vec![0.0, 0.0, 0.0, 0.0, 0.3, 0.7]];
        let r = decode(close.iter().map(Vec::as_slice), &all, &v);
        assert_eq!((r.text.as_str(), r.variant_doubts.len()), ("穂", 1));
        // Japanese variants are not folded any more; simplified Chinese still is.
        assert_eq!(fold_variant("濱"), "濱");
    }

    #[test]
    fn repeats_need_a_blank_between() {
        let c = classes(&["1"]);
        let s = |p: f32| vec![1.0 - p, p];
        let steps = [s(0.9), s(0.9), s(0.1), s(0.9)];
        let r = decode(steps.iter().map(Vec::as_slice), &outputs(&c, None), &Variants::default());
        assert_eq!(r.text, "11");
    }

    #[test]
    fn char_sets() {
        assert!(CharSet::Katakana.allows("ヤ") && CharSet::Katakana.allows("ー") && !CharSet::Katakana.allows("や"));
        assert!(CharSet::Date.allows("令") && CharSet::Date.allows("元") && !CharSet::Date.allows("口"));
        assert!(CharSet::Cp932.allows("髙") && CharSet::Cp932.allows("〒") && !CharSet::Cp932.allows("边"));
        assert!(CharSet::DigitsDash.allows("-") && !CharSet::Digits.allows("-"));
        assert_eq!(CharSet::Katakana.output("力").as_deref(), Some("カ"));
        assert_eq!(CharSet::Katakana.output("山"), None);
        assert_eq!(CharSet::Digits.output("O").as_deref(), Some("0"));
        assert_eq!(fix_long_vowels("パ一キンソン 一郎"), "パーキンソン 一郎");
        assert_eq!(fold_variant("边"), "辺");
        assert!(CharSet::Cp932.allows(fold_variant("边")), "a folded variant becomes readable");
    }

    /// A line of text drawn like a field value (black on white, some margin).
    fn line(font_path: &str, text: &str) -> GrayImage {
        use ab_glyph::{FontVec, PxScale};
        let font = FontVec::try_from_vec(std::fs::read(font_path).expect("font (make setup)")).unwrap();
        let scale = PxScale::from(62.0);
        let (w, h) = imageproc::drawing::text_size(scale, &font, text);
        let mut img = GrayImage::from_pixel(w + 40, h.max(62) + 40, image::Luma([255]));
        imageproc::drawing::draw_text_mut(&mut img, image::Luma([25]), 20, 16, scale, &font, text);
        img
    }

    /// Names from the reference list written with old forms (惠, 穗, 鎭, 櫻…), and the same
    /// names in the common form, in handwriting-style fonts: each is read as written or its
    /// field is in doubt (a variant or a low-confidence character), never silently changed.
    #[test]
    fn names_are_kept_as_written_or_flagged() {
        let ocr = PpOcr::load(&default_model()).expect("PP-OCR model missing: run `make setup`");
        let table: Vec<(&str, &str)> = VARIANT_TABLE
            .lines()
            .filter(|l| l.ends_with("\told"))
            .filter_map(|l| l.split('\t').next().zip(l.split('\t').nth(1)))
            .collect();
        let names: Vec<String> = include_str!("../../reference-data/japanese-names.tsv")
            .lines()
            .filter_map(|l| l.split('\t').nth(1))
            .filter(|n| n.chars().any(|c| table.iter().any(|(old, _)| old.starts_with(c))))
            .map(str::to_owned)
            .collect();
        assert!(names.len() >= 40, "{} old-form names in the list", names.len());
        let modern = |n: &str| -> String {
            n.chars()
                .map(|c| {
                    table.iter().find(|(old, _)| old.starts_with(c)).map_or(c.to_string(), |(_, new)| new.to_string())
                })
                .collect()
        };
        let fonts = [
            "/usr/share/fonts/truetype/klee/KleeOne-Regular.ttf",
            "/usr/share/fonts/truetype/seto/setofont.ttf",
            crate::synth::render::MINCHO,
        ];
        let mut cases: Vec<(GrayImage, String)> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let font = fonts[i % fonts.len()];
            cases.push((line(font, n), n.clone()));
            cases.push((line(font, &modern(n)), modern(n)));
        }
        let batch: Vec<(&GrayImage, CharSet)> = cases.iter().map(|(img, _)| (img, CharSet::Cp932)).collect();
        let read = ocr.read_batch(&batch).unwrap();
        let (mut sure, mut flagged, mut silent) = ([0, 0], [0, 0], Vec::new());
        for (i, ((_, want), got)) in cases.iter().zip(&read).enumerate() {
            // Even cases are written with the old form, odd ones with the common form.
            let form = i % 2;
            let doubt = !got.variant_doubts.is_empty() || got.min_confidence() < crate::drafts::MIN_CONFIDENCE;
            if doubt {
                flagged[form] += 1;
                if form == 1 {
                    eprintln!("common form flagged: {want} → {} {:?}", got.text, got.variant_doubts);
                }
            } else if got.text == *want {
                sure[form] += 1;
            } else {
                silent.push(format!("{want} → {}", got.text));
            }
        }
        eprintln!(
            "old forms: {} sure, {} flagged; common forms: {} sure, {} flagged; {} silent",
            sure[0],
            flagged[0],
            sure[1],
            flagged[1],
            silent.len()
        );
        assert!(silent.is_empty(), "silently changed: {silent:?}");
        // The common form of a name mostly reads sure: the flag is for real doubts.
        assert!(sure[1] * 100 >= names.len() * 65, "common forms read sure: {}/{}", sure[1], names.len());
    }

    #[test]
    fn reads_printed_and_handwriting_style_lines_in_one_batch() {
        let ocr = PpOcr::load(&default_model()).expect("PP-OCR model missing: run `make setup`");
        let mincho = crate::synth::render::MINCHO;
        let klee = "/usr/share/fonts/truetype/klee/KleeOne-Regular.ttf";
        let cases = [
            (line(mincho, "東京都新宿区西新宿二丁目8番1号"), CharSet::Cp932, "東京都新宿区西新宿二丁目8番1号"),
            (line(klee, "ヤマダ タロウ"), CharSet::Katakana, "ヤマダ タロウ"),
            (line(klee, "123456789018"), CharSet::Digits, "123456789018"),
            (line(mincho, "昭和35年5月1日"), CharSet::Date, "昭和35年5月1日"),
            (line(klee, "潰瘍性大腸炎"), CharSet::Cp932, "潰瘍性大腸炎"),
        ];
        let batch: Vec<(&GrayImage, CharSet)> = cases.iter().map(|(img, set, _)| (img, *set)).collect();
        let read = ocr.read_batch(&batch).unwrap();
        for ((_, set, want), got) in cases.iter().zip(&read) {
            assert_eq!(got.text.replace(' ', ""), want.replace(' ', ""), "{set:?}");
            assert_eq!(got.char_confidence.len(), got.text.chars().count());
            assert!(got.min_confidence() > 0.3, "{want}: {:?}", got.char_confidence);
            assert!(got.text.chars().all(|c| c == ' ' || set.allows(&c.to_string())), "{set:?} mask: {}", got.text);
        }
        assert!(ocr.read_batch(&[]).unwrap().is_empty());
    }
}
