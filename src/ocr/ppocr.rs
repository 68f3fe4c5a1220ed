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
#[derive(Debug, Clone, PartialEq)]
pub struct LineReading {
    pub text: String,
    pub char_confidence: Vec<f32>,
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
        Ok(PpOcr { model, classes, masks: Default::default() })
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
                decode(rows.chunks_exact(classes), &self.mask(*set))
            })
            .collect())
    }
}

/// Greedy CTC over the allowed classes: per step the most probable allowed class; repeats
/// collapse, blanks separate. A character's confidence is its best step's probability.
fn decode<'a>(steps: impl Iterator<Item = &'a [f32]>, outputs: &[Option<String>]) -> LineReading {
    let mut text = String::new();
    let mut char_confidence = Vec::new();
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
        } else if best != 0
            && let Some(last) = char_confidence.last_mut()
        {
            *last = last.max(p);
        }
        prev = best;
    }
    LineReading { text: fix_long_vowels(&text), char_confidence }
}

/// Simplified Chinese forms the dictionary holds beside the Japanese ones, folded to the
/// Japanese form (the model sometimes prefers the Chinese glyph for a Japanese name).
fn fold_variant(c: &str) -> &str {
    match c {
        "边" => "辺",
        "險" => "険",
        "东" => "東",
        "发" => "発",
        "县" => "県",
        // Traditional forms the model reads for handwritten shinjitai.
        "增" => "増",
        "惠" => "恵",
        "縱" => "縦",
        "黑" => "黒",
        "藏" => "蔵",
        "團" => "団",
        "國" => "国",
        "會" => "会",
        "濱" => "浜",
        "廣" => "広",
        // Seen in the 800-page hard set (none occurs in the name, place or disease lists; 穗
        // does, in names, and is left alone).
        "髓" => "髄",
        "奧" => "奥",
        "寬" => "寛",
        "德" => "徳",
        "帶" => "帯",
        _ => c,
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
        let r = decode(steps.iter().map(Vec::as_slice), &outputs(&c, None));
        assert_eq!(r.text, "l|");
        // Digits with look-alikes: "l" and "|" read as 1, so the steps give 1, 1 (collapsed),
        // blank, then "|" as 1 (0.6 beats "2" at 0.2).
        let r = decode(steps.iter().map(Vec::as_slice), &outputs(&c, Some(CharSet::Digits)));
        assert_eq!(r.text, "11");
        // With only true digits allowed (no look-alikes): "1" then "2".
        let strict: Vec<Option<String>> =
            c.iter().enumerate().map(|(i, s)| (i == 0 || CharSet::Digits.allows(s)).then(|| s.clone())).collect();
        let r = decode(steps.iter().map(Vec::as_slice), &strict);
        assert_eq!(r.text, "12");
        assert_eq!(r.char_confidence, vec![0.35, 0.2], "best step of the repeated 1");
        assert!((r.min_confidence() - 0.2).abs() < 1e-6);
    }

    #[test]
    fn repeats_need_a_blank_between() {
        let c = classes(&["1"]);
        let s = |p: f32| vec![1.0 - p, p];
        let steps = [s(0.9), s(0.9), s(0.1), s(0.9)];
        let r = decode(steps.iter().map(Vec::as_slice), &outputs(&c, None));
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
