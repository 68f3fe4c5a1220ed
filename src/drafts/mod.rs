//! drafts/: "what does the form say, and how sure are we?" A page's field readings become a
//! draft: per field the raw reading, the normalised value (NFKC, era dates → ISO 8601, digits
//! only where digits belong), the reader's confidence, its crop rectangle, and the checks
//! it failed. A field that failed a check or was read unsure is *flagged*: the reviewer looks
//! at it first, and nothing flagged is ever accepted silently (a My Number above all).

pub mod checks;
pub mod review;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::forms::template::FieldType;
use crate::forms::{FieldReading, PageReading};

/// Below this per-character probability a reading is not trusted.
pub const MIN_CONFIDENCE: f32 = 0.90;

/// Why a field is flagged, in words a reviewer acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flag {
    /// Nothing was read in a required field.
    Empty,
    /// Some character was read with low confidence.
    Unsure,
    /// The value does not have the field type's form (a date that does not exist, …).
    Invalid { reason: String },
    /// A My Number whose check digit is wrong.
    CheckDigit,
    /// Disagrees with another field or a reference list.
    CrossCheck { reason: String },
    /// The two sheets of a carbon-copy form read differently.
    SheetsDisagree { other: String },
    /// A crossed-out mistake precedes the value (the value read is what follows it).
    Corrected,
    /// A character may be the other form of a variant pair (濱 or 浜): the value keeps what was
    /// read, the reviewer confirms the form on the paper (a name is kept as written).
    Variant { pairs: Vec<String> },
}

impl Flag {
    pub fn message_ja(&self) -> String {
        match self {
            Flag::Empty => "読み取れませんでした（空欄）".into(),
            Flag::Unsure => "読み取りの確信度が低い文字があります".into(),
            Flag::Invalid { reason } => format!("形式が正しくありません：{reason}"),
            Flag::CheckDigit => "個人番号の検査用数字が一致しません".into(),
            Flag::CrossCheck { reason } => format!("他の記載と一致しません：{reason}"),
            Flag::SheetsDisagree { other } => format!("原本と入力票で読み取りが異なります（もう一方：{other}）"),
            Flag::Corrected => "二重線で訂正された記載があります（訂正後の記載を読み取りました）".into(),
            Flag::Variant { pairs } => format!("字体を原本で確認してください：{}", pairs.join("、")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftField {
    pub name: String,
    pub label: String,
    pub kind: FieldType,
    /// As read.
    pub raw: String,
    /// Normalised (ISO date, digits, NFKC text); empty when it could not be normalised.
    pub value: String,
    /// The least sure character's probability.
    pub confidence: f32,
    pub flags: Vec<Flag>,
    /// Crop rectangle on the straightened page: x, y, w, h.
    pub rect: [u32; 4],
}

impl DraftField {
    pub fn flagged(&self) -> bool {
        !self.flags.is_empty()
    }

    /// The normalised value, or what was read when it could not be normalised.
    pub fn value_or_raw(&self) -> &str {
        if self.value.is_empty() { &self.raw } else { &self.value }
    }

    /// The value as a reviewer reads it: a checkbox as ☑/☐, an unticked choice as （未選択）.
    pub fn display_ja(&self) -> String {
        match (self.kind, self.value_or_raw()) {
            (FieldType::Checkbox, "true") => "☑ あり".into(),
            (FieldType::Checkbox, _) => "☐ なし".into(),
            (FieldType::Choice, "") => "（未選択）".into(),
            (_, v) => v.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub template: String,
    /// The form's printed title.
    pub title: String,
    pub form: String,
    pub sheet: Option<u8>,
    pub fields: Vec<DraftField>,
    /// For a two-sheet form: the record of the other sheet of the same application, once the
    /// two have been reconciled.
    #[serde(default)]
    pub pair: Option<String>,
    /// The page's skew as read (degrees), so a field's crop can be cut from the stored scan.
    #[serde(default)]
    pub skew_deg: Option<f32>,
    /// How the scan was turned and scaled before it was read (pages fed sideways, scanned at
    /// 200 dpi…): field rectangles are in that frame.
    #[serde(default, skip_serializing_if = "crate::forms::upright::Frame::is_identity")]
    pub frame: crate::forms::upright::Frame,
    /// The reviewer's verdict and the corrections made (see `review`).
    #[serde(default)]
    pub review: Option<review::Review>,
    /// The central case this page belongs to, once linked.
    #[serde(default)]
    pub case: Option<crate::cases::CaseLink>,
    /// The subsidy system refused the row this page went out in: the draft is back in the
    /// review queue with the system's reason (kept after the next verification, as history).
    #[serde(default)]
    pub returned: Option<Returned>,
}

/// A refusal by the subsidy system (取込結果の不受理), as the reviewer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Returned {
    /// The export run and row key (整理番号).
    pub run: String,
    pub key: String,
    pub reason: String,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Draft {
    /// Checked against the paper by a person (every field), and not reopened since.
    pub fn verified(&self) -> bool {
        self.review.as_ref().is_some_and(|r| r.status == review::ReviewStatus::Verified)
    }

    pub fn field(&self, name: &str) -> Option<&DraftField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Replaces every My Number (raw reading, value and any flag quoting it) by its mask, for
    /// users without the My Number right.
    pub fn mask_my_numbers(&mut self) {
        for f in self.fields.iter_mut().filter(|f| f.kind == FieldType::MyNumber) {
            f.raw = mask(&f.raw);
            f.value = mask(&f.value);
            for fl in &mut f.flags {
                if let Flag::SheetsDisagree { other } = fl {
                    *other = mask(other);
                }
            }
        }
    }

    /// The page's index text: the printed title, labels and values, no full-page OCR needed.
    /// The My Number is left out (it is found only through its keyed hash).
    pub fn index_text(&self) -> String {
        let mut out = self.title.clone();
        for f in &self.fields {
            if f.kind == FieldType::MyNumber {
                continue;
            }
            out.push(' ');
            out.push_str(&f.label);
            out.push(' ');
            out.push_str(f.value_or_raw());
        }
        out
    }
}

/// `****-****-1234`: only the last four digits show.
pub fn mask(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return String::new();
    }
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("****-****-{tail}")
}

fn large(c: char) -> char {
    match c {
        'ァ' => 'ア',
        'ィ' => 'イ',
        'ゥ' => 'ウ',
        'ェ' => 'エ',
        'ォ' => 'オ',
        'ッ' => 'ツ',
        'ャ' => 'ヤ',
        'ュ' => 'ユ',
        'ョ' => 'ヨ',
        'ヮ' => 'ワ',
        c => c,
    }
}

/// Handwriting blurs the size of kana, so a small kana is kept only where Japanese spelling
/// allows one: ャュョ after an i-row kana (キャ, リョ), ァィゥェォ after the kana that form
/// sounds with them (ウィ, フォ, ティ, シェ, …), ッ before a consonant. Anywhere else (first in a
/// word, ッ last or before a vowel, ィ after メ) it is the full-size kana.
fn plausible_small_kana(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let keep = match c {
            'ャ' | 'ュ' | 'ョ' => prev.is_some_and(|p| "キギシジチヂニヒビピミリ".contains(p)),
            'ァ' | 'ィ' | 'ゥ' | 'ェ' | 'ォ' => prev.is_some_and(|p| "ウヴフテデトドシジチツイ".contains(p)),
            'ッ' => {
                prev.is_some()
                    && next.is_some_and(|n| !"アイウエオナニヌネノマミムメモヤユヨラリルレロワヲンーッ".contains(n))
            }
            _ => true,
        };
        out.push(if keep { c } else { large(c) });
    }
    out
}

/// Normalises one reading for its type: `Ok(value)` or `Err(reason)`.
pub fn normalise(kind: FieldType, raw: &str) -> Result<String, String> {
    let s: String = raw.nfkc().collect::<String>().trim().to_owned();
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let only = |allowed: &dyn Fn(char) -> bool| s.chars().all(|c| c.is_whitespace() || allowed(c));
    match kind {
        FieldType::Text | FieldType::Choice | FieldType::Checkbox => {
            Ok(s.split_whitespace().collect::<Vec<_>>().join(" "))
        }
        FieldType::Kana => {
            if only(&|c| matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー')) {
                Ok(s.split_whitespace().map(plausible_small_kana).collect::<Vec<_>>().join(" "))
            } else {
                Err("カタカナ以外の文字があります".into())
            }
        }
        FieldType::Date => parse_date(&s).map(|d| d.to_string()).ok_or_else(|| format!("日付として読めません（{s}）")),
        FieldType::Number => {
            if only(&|c| c.is_ascii_digit()) {
                Ok(digits)
            } else {
                Err("数字以外の文字があります".into())
            }
        }
        FieldType::MyNumber => {
            if digits.len() == 12 && only(&|c| c.is_ascii_digit()) {
                Ok(digits)
            } else {
                Err(format!("個人番号は12桁です（{}桁）", digits.len()))
            }
        }
        FieldType::PostalCode => match digits.len() {
            7 if only(&|c| c.is_ascii_digit() || c == '-' || c == '〒') => {
                Ok(format!("{}-{}", &digits[..3], &digits[3..]))
            }
            n => Err(format!("郵便番号は7桁です（{n}桁）")),
        },
        FieldType::Phone => {
            if (10..=11).contains(&digits.len()) && only(&|c| c.is_ascii_digit() || c == '-' || c == '(' || c == ')') {
                Ok(format_phone(&digits, &s))
            } else {
                Err(format!("電話番号として読めません（{}桁）", digits.len()))
            }
        }
    }
}

/// A Japanese phone number grouped as the numbering plan groups it, however it was written (a
/// hyphen is thin and often unread): mobile and IP numbers (070/080/090/050/020) 3-4-4, 0120
/// and 0800 4-3-3 / 4-3-4, Tokyo and Osaka (03, 06) 2-4-4. Other area codes are 2 to 5 digits
/// long, which the digits alone do not tell: the writer's grouping is kept when it has three
/// groups of the right total, else the digits as written.
fn format_phone(digits: &str, written: &str) -> String {
    let group = |sizes: &[usize]| {
        let mut out = Vec::new();
        let mut at = 0;
        for n in sizes {
            out.push(&digits[at..at + n]);
            at += n;
        }
        out.join("-")
    };
    let prefix = |p: &str| digits.starts_with(p);
    match digits.len() {
        11 if ["070", "080", "090", "050", "020"].iter().any(|p| prefix(p)) => group(&[3, 4, 4]),
        11 if prefix("0800") => group(&[4, 3, 4]),
        10 if prefix("0120") => group(&[4, 3, 3]),
        10 if prefix("03") || prefix("06") => group(&[2, 4, 4]),
        _ => {
            let groups: Vec<usize> = written
                .split(|c: char| matches!(c, '-' | '(' | ')') || c.is_whitespace())
                .map(|g| g.chars().filter(char::is_ascii_digit).count())
                .filter(|n| *n > 0)
                .collect();
            if groups.len() == 3 && groups.iter().sum::<usize>() == digits.len() {
                group(&groups)
            } else {
                written.chars().filter(|c| !c.is_whitespace()).collect()
            }
        }
    }
}

/// `令和元年5月1日`, `2019年5月1日`, `2019-05-01`, `2019/5/1` → a date that exists.
pub fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    let s: String = s.nfkc().filter(|c| !c.is_whitespace()).collect();
    if let Some(d) = crate::jp::parse_era(&s) {
        return Some(d);
    }
    let parts: Vec<&str> = s.trim_end_matches('日').split(['年', '月', '-', '/', '.']).collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 => chrono::NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?),
        _ => None,
    }
}

/// One field of a draft from its reading: normalised, checked on its own.
fn draft_field(r: &FieldReading, required: bool) -> DraftField {
    let confidence = r.char_confidence.iter().copied().fold(1.0, f32::min);
    let mut flags = Vec::new();
    let value = if r.text.trim().is_empty() {
        if required {
            flags.push(Flag::Empty);
        }
        String::new()
    } else {
        match normalise(r.kind, &r.text) {
            Ok(v) => v,
            Err(reason) => {
                flags.push(Flag::Invalid { reason });
                String::new()
            }
        }
    };
    if r.kind == FieldType::MyNumber && value.len() == 12 && !crate::jp::my_number_valid(&value) {
        flags.push(Flag::CheckDigit);
    }
    if !r.text.trim().is_empty() && confidence < MIN_CONFIDENCE {
        flags.push(Flag::Unsure);
    }
    if r.struck {
        flags.push(Flag::Corrected);
    }
    if !r.variant_doubts.is_empty() {
        let mut pairs: Vec<String> =
            r.variant_doubts.iter().map(|(read, other)| format!("{read}（{other}の可能性）")).collect();
        pairs.dedup();
        flags.push(Flag::Variant { pairs });
    }
    DraftField {
        name: r.name.clone(),
        label: r.label.clone(),
        kind: r.kind,
        raw: r.text.clone(),
        value,
        confidence,
        flags,
        rect: [r.rect.x, r.rect.y, r.rect.w, r.rect.h],
    }
}

/// The draft of a read page: every field normalised and checked, then the cross-checks
/// between fields and against the reference lists.
pub fn from_reading(page: &PageReading, template: &crate::forms::template::Template) -> Draft {
    let fields = page
        .fields
        .iter()
        .map(|r| {
            let required = template.fields.iter().find(|f| f.name == r.name).is_some_and(|f| f.required);
            draft_field(r, required)
        })
        .collect();
    let mut draft = Draft {
        template: page.template.clone(),
        title: template.title.clone(),
        form: page.form.clone(),
        sheet: page.sheet,
        fields,
        pair: None,
        skew_deg: Some(page.skew_deg),
        frame: page.frame,
        review: None,
        case: None,
        returned: None,
    };
    checks::cross_check(&mut draft, template);
    draft
}

/// Reconciles the two sheets of a carbon-copy form, field by field: agreeing readings confirm
/// each other (confidence raised to the better of the two), disagreeing ones are flagged on
/// both sheets with the other reading.
pub fn reconcile(original: &mut Draft, copy: &mut Draft) {
    for f in &mut original.fields {
        let Some(c) = copy.fields.iter_mut().find(|c| c.name == f.name) else {
            continue;
        };
        let (a, b) = (comparable(f), comparable(c));
        if a == b {
            let best = f.confidence.max(c.confidence);
            for x in [&mut *f, &mut *c] {
                x.confidence = best;
                if best >= MIN_CONFIDENCE {
                    x.flags.retain(|fl| *fl != Flag::Unsure);
                }
            }
        } else {
            f.flags.push(Flag::SheetsDisagree { other: c.raw.clone() });
            c.flags.push(Flag::SheetsDisagree { other: f.raw.clone() });
            // One application, one value: both sheets propose the better reading (valid
            // before invalid, then the surer one); the flag keeps the other in view.
            let rank = |x: &DraftField| {
                let broken = x.flags.iter().any(|fl| {
                    matches!(fl, Flag::Empty | Flag::Invalid { .. } | Flag::CheckDigit | Flag::CrossCheck { .. })
                });
                (!broken, x.confidence)
            };
            let (ra, rb) = (rank(f), rank(c));
            let copy_better = (rb.0 && !ra.0) || (rb.0 == ra.0 && rb.1 > ra.1);
            let better = if copy_better { &*c } else { &*f };
            let value = better.value.clone();
            f.value.clone_from(&value);
            c.value = value;
        }
    }
}

/// Do two sheets carry the same application? Sheet 2 is a carbon copy of sheet 1, so most of
/// their readings agree; two different applicants agree on almost nothing. At least half of
/// the fields both read must agree.
pub fn same_application(a: &Draft, b: &Draft) -> bool {
    if a.form != b.form || a.sheet == b.sheet {
        return false;
    }
    let (mut both, mut agree) = (0, 0);
    for f in &a.fields {
        if let Some(g) = b.field(&f.name)
            && !comparable(f).is_empty()
            && !comparable(g).is_empty()
        {
            both += 1;
            agree += usize::from(comparable(f) == comparable(g));
        }
    }
    both > 0 && agree * 2 >= both
}

/// Reconciles every sheet 1 with the sheet 2 of the same form that directly follows it (the
/// order a carbon-copy set is scanned in), if `same_set(i, i + 1)` says the two pages belong
/// together.
pub fn reconcile_pairs(drafts: &mut [Option<Draft>], same_set: impl Fn(usize, usize) -> bool) {
    for i in 1..drafts.len() {
        let (head, tail) = drafts.split_at_mut(i);
        if let (Some(a), Some(b)) = (&mut head[i - 1], &mut tail[0])
            && a.form == b.form
            && a.sheet == Some(1)
            && b.sheet == Some(2)
            && same_set(i - 1, i)
        {
            reconcile(a, b);
        }
    }
}

pub(crate) fn comparable(f: &DraftField) -> String {
    f.value_or_raw().nfkc().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::register::Rect;

    #[test]
    fn dates_across_eras() {
        let iso = |s: &str| normalise(FieldType::Date, s);
        assert_eq!(iso("令和元年5月1日").unwrap(), "2019-05-01");
        assert_eq!(iso("平成31年4月30日").unwrap(), "2019-04-30");
        assert!(iso("平成31年5月1日").is_err(), "Heisei ended on 30 April 2019");
        assert!(iso("令和元年4月30日").is_err(), "Reiwa began on 1 May 2019");
        assert_eq!(iso("昭和６４年１月７日").unwrap(), "1989-01-07");
        assert!(iso("昭和64年1月8日").is_err());
        assert_eq!(iso("2024年2月29日").unwrap(), "2024-02-29");
        assert!(iso("2023年2月29日").is_err());
        assert_eq!(iso("2024/4/1").unwrap(), "2024-04-01");
        assert!(iso("令和6年13月1日").is_err());
        assert!(iso("昨日").is_err());
    }

    #[test]
    fn numbers_kana_postal_phone() {
        assert_eq!(normalise(FieldType::Kana, "ヤマダ　タロウ").unwrap(), "ヤマダ タロウ");
        assert_eq!(normalise(FieldType::Kana, "ﾔﾏﾀﾞ").unwrap(), "ヤマダ");
        assert!(normalise(FieldType::Kana, "山田").is_err());
        assert_eq!(normalise(FieldType::Kana, "オオシマ ュカ").unwrap(), "オオシマ ユカ");
        assert_eq!(normalise(FieldType::Kana, "ハットリ").unwrap(), "ハットリ", "small kana inside a word stay");
        for (read, meant) in [
            ("カッノリ", "カツノリ"),
            ("コマッ", "コマツ"),
            ("ケンィチ", "ケンイチ"),
            ("アォゾラ", "アオゾラ"),
            ("カメィ", "カメイ"),
            ("リョウ", "リョウ"),
            ("シェリー", "シェリー"),
            ("ウェダ", "ウェダ"),
        ] {
            assert_eq!(normalise(FieldType::Kana, read).unwrap(), meant, "{read}");
        }
        assert_eq!(normalise(FieldType::PostalCode, "〒1600023").unwrap(), "160-0023");
        assert_eq!(normalise(FieldType::PostalCode, "160-0023").unwrap(), "160-0023");
        assert!(normalise(FieldType::PostalCode, "160-002").is_err());
        assert_eq!(normalise(FieldType::Phone, "03-5320-4472").unwrap(), "03-5320-4472");
        assert!(normalise(FieldType::Phone, "03-5320").is_err());
        // Grouped by the numbering plan whatever hyphens were read.
        for (read, want) in [
            ("0353204472", "03-5320-4472"),
            ("035320-4472", "03-5320-4472"),
            ("09012345678", "090-1234-5678"),
            ("0120-123456", "0120-123-456"),
            ("0422-51-1234", "0422-51-1234"),
            ("0425281234", "0425281234"),
            ("0422 51 1234", "0422-51-1234"),
        ] {
            assert_eq!(normalise(FieldType::Phone, read).unwrap(), want, "{read}");
        }
        assert_eq!(normalise(FieldType::Number, "０１２３").unwrap(), "0123");
        assert!(normalise(FieldType::Number, "12a").is_err());
        assert_eq!(normalise(FieldType::MyNumber, "1234 5678 9018").unwrap(), "123456789018");
        assert!(normalise(FieldType::MyNumber, "12345678901").is_err());
    }

    fn reading(name: &str, kind: FieldType, text: &str, conf: f32) -> FieldReading {
        FieldReading {
            name: name.into(),
            label: name.into(),
            kind,
            text: text.into(),
            char_confidence: vec![conf; text.chars().count()],
            rect: Rect { x: 1, y: 2, w: 3, h: 4 },
            struck: false,
            variant_doubts: Vec::new(),
        }
    }

    #[test]
    fn my_number_is_never_silently_wrong() {
        let ok = draft_field(&reading("my_number", FieldType::MyNumber, "123456789018", 0.99), true);
        assert!(!ok.flagged(), "{:?}", ok.flags);
        let bad = draft_field(&reading("my_number", FieldType::MyNumber, "123456789012", 0.99), true);
        assert_eq!(bad.flags, vec![Flag::CheckDigit]);
        let unsure = draft_field(&reading("my_number", FieldType::MyNumber, "123456789018", 0.6), true);
        assert_eq!(unsure.flags, vec![Flag::Unsure], "right by chance is still unsure");
        let short = draft_field(&reading("my_number", FieldType::MyNumber, "1234567890", 0.99), true);
        assert!(matches!(short.flags[0], Flag::Invalid { .. }));
        let empty = draft_field(&reading("my_number", FieldType::MyNumber, "", 1.0), true);
        assert_eq!(empty.flags, vec![Flag::Empty]);
        assert!(Flag::CheckDigit.message_ja().contains("検査用数字"));
    }

    fn draft(fields: Vec<DraftField>) -> Draft {
        Draft {
            template: "application#1".into(),
            title: "個人番号に係る調書".into(),
            form: "application".into(),
            sheet: Some(1),
            fields,
            ..Default::default()
        }
    }

    #[test]
    fn masking_leaves_the_last_four_digits() {
        let mut d = draft(vec![draft_field(&reading("my_number", FieldType::MyNumber, "123456789018", 0.99), true)]);
        d.mask_my_numbers();
        assert_eq!((d.fields[0].raw.as_str(), d.fields[0].value.as_str()), ("****-****-9018", "****-****-9018"));
        assert_eq!(mask(""), "");
    }

    #[test]
    fn two_sheets_confirm_or_flag_each_other() {
        let mut a = draft(vec![
            draft_field(&reading("name", FieldType::Text, "山田 太郎", 0.8), true),
            draft_field(&reading("phone", FieldType::Phone, "03-5320-4472", 0.99), true),
        ]);
        let mut b = draft(vec![
            draft_field(&reading("name", FieldType::Text, "山田　太郎", 0.97), true),
            draft_field(&reading("phone", FieldType::Phone, "03-5320-4473", 0.99), true),
        ]);
        assert!(a.fields[0].flags.contains(&Flag::Unsure));
        reconcile(&mut a, &mut b);
        assert!(a.fields[0].flags.is_empty(), "agreement lifts the doubt: {:?}", a.fields[0].flags);
        assert!((a.fields[0].confidence - 0.97).abs() < 1e-6);
        assert_eq!(a.fields[1].flags, vec![Flag::SheetsDisagree { other: "03-5320-4473".into() }]);
        assert_eq!(b.fields[1].flags, vec![Flag::SheetsDisagree { other: "03-5320-4472".into() }]);
        // One application, one value: the surer reading (equal confidence: sheet 1's) on both.
        assert_eq!((a.fields[1].value.as_str(), b.fields[1].value.as_str()), ("03-5320-4472", "03-5320-4472"));
    }

    #[test]
    fn sheets_of_different_applicants_are_not_one_application() {
        let sheet = |sheet, name: &str, phone: &str| Draft {
            sheet: Some(sheet),
            ..draft(vec![
                draft_field(&reading("name", FieldType::Text, name, 0.9), true),
                draft_field(&reading("phone", FieldType::Phone, phone, 0.9), true),
            ])
        };
        assert!(same_application(&sheet(1, "山田 太郎", "03-5320-4472"), &sheet(2, "山田 太郎", "03-5320-4473")));
        assert!(!same_application(&sheet(1, "山田 太郎", "03-5320-4472"), &sheet(2, "佐藤 花子", "03-1111-2222")));
        assert!(!same_application(&sheet(1, "山田 太郎", "03-5320-4472"), &sheet(1, "山田 太郎", "03-5320-4472")));
    }

    #[test]
    fn index_text_is_labels_and_values_without_the_my_number() {
        let d = draft(vec![
            draft_field(&reading("name", FieldType::Text, "山田 太郎", 0.99), true),
            draft_field(&reading("birth_date", FieldType::Date, "昭和35年5月1日", 0.99), true),
            draft_field(&reading("my_number", FieldType::MyNumber, "123456789018", 0.99), true),
        ]);
        let t = d.index_text();
        assert_eq!(t, "個人番号に係る調書 name 山田 太郎 birth_date 1960-05-01");
    }
}
