//! The query language reviewers type: words (all must occur), "quoted phrases" (may span
//! spaces), `field:value` or `field:"a phrase"` to search one field, and `-` before any of
//! these to exclude. Field names are Japanese or English (`氏名:山田`, `name:山田`).
//!
//! Parsing is lenient about text (a stray quote runs to the end, a lone '-' is ignored) and
//! strict about fields: an unknown field name or a value a field cannot hold is a [`Problem`]
//! with a message that says how to write it, never a server error.

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;

/// The fields a clause can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldName {
    Text,
    Name,
    Form,
    Case,
    Birth,
    City,
    Received,
    Disease,
    Status,
    MyNumber,
}

impl FieldName {
    /// (field, accepted names). The first name is the one shown in messages.
    const NAMES: [(FieldName, &'static [&'static str]); 10] = [
        (FieldName::Text, &["本文", "text"]),
        (FieldName::Name, &["氏名", "かな", "カナ", "name", "kana"]),
        (FieldName::Form, &["様式", "form"]),
        (FieldName::Case, &["受給者番号", "case", "番号"]),
        (FieldName::Birth, &["生年月日", "birth"]),
        (FieldName::City, &["市区町村", "city"]),
        (FieldName::Received, &["受付日", "received"]),
        (FieldName::Disease, &["病名", "disease"]),
        (FieldName::Status, &["状態", "status"]),
        (FieldName::MyNumber, &["個人番号", "マイナンバー", "mynumber"]),
    ];

    fn parse(name: &str) -> Option<FieldName> {
        let lower = name.to_lowercase();
        FieldName::NAMES.iter().find(|(_, names)| names.contains(&lower.as_str())).map(|(f, _)| *f)
    }

    pub fn label(self) -> &'static str {
        FieldName::NAMES.iter().find(|(f, _)| *f == self).map_or("", |(_, n)| n[0])
    }

    /// Every field name a user can type, for help texts.
    pub fn help() -> String {
        FieldName::NAMES.iter().map(|(_, n)| n[0]).collect::<Vec<_>>().join("・")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub field: FieldName,
    pub text: String,
    pub negated: bool,
}

/// What is wrong with a query, in words a reviewer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the query has no searchable words")]
    Empty,
    #[error("the query only excludes words")]
    OnlyExclusions,
    #[error("unknown field {0:?}")]
    UnknownField(String),
    #[error("field {0:?} has no value")]
    NoValue(&'static str),
    #[error("not a date or date range in {field:?}: {value:?}")]
    BadDate { field: &'static str, value: String },
    #[error("unknown value {value:?} for {field:?}")]
    BadValue { field: &'static str, value: String },
    #[error("a My Number is 12 digits with a valid check digit")]
    BadMyNumber,
    #[error("searching by My Number needs the My Number right")]
    MyNumberNotAllowed,
}

impl Problem {
    /// The message shown on the search page.
    pub fn message_ja(&self) -> String {
        match self {
            Problem::Empty => "検索できる語が含まれていません。".into(),
            Problem::OnlyExclusions => "除外（-語）だけでは検索できません。探す語も入力してください。".into(),
            Problem::UnknownField(f) => format!(
                "「{f}:」という項目はありません。使える項目：{}。コロンを含む語は \"…\" で囲んでください。",
                FieldName::help()
            ),
            Problem::NoValue(f) => format!("「{f}:」の後に検索する値を入力してください。"),
            Problem::BadDate { field, value } => format!(
                "{field}「{value}」を日付として読めません。例：2024-04-01、2024-04、2024、令和6年4月1日、2024-04-01..2024-06-30"
            ),
            Problem::BadValue { field, value } => format!("{field}「{value}」は使えない値です。"),
            Problem::BadMyNumber => "個人番号は12桁の数字で、検査用数字が正しいものを入力してください。".into(),
            Problem::MyNumberNotAllowed => "個人番号で検索する権限がありません。".into(),
        }
    }
}

/// Splits a query into clauses. Fails only on an unknown field name or a field without value.
pub fn parse(query: &str) -> Result<Vec<Clause>, Problem> {
    let q: String = query.nfkc().collect();
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let negated = chars[i] == '-' && chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
        if negated {
            i += 1;
        }
        let mut field = FieldName::Text;
        if chars[i] != '"'
            && let Some(colon) = field_colon(&chars[i..])
        {
            let name: String = chars[i..i + colon].iter().collect();
            field = FieldName::parse(&name).ok_or(Problem::UnknownField(name))?;
            i += colon + 1;
            if chars.get(i).is_none_or(|c| c.is_whitespace()) {
                return Err(Problem::NoValue(field.label()));
            }
        }
        let (text, next) = value(&chars, i);
        i = next;
        if !text.trim().is_empty() {
            out.push(Clause { field, text, negated });
        } else if field != FieldName::Text {
            return Err(Problem::NoValue(field.label()));
        }
    }
    Ok(out)
}

/// The position of the colon if the word at the start of `chars` is `name:…` with a name of
/// letters only (so `10:30` or a URL-like `a1:b` stays text).
fn field_colon(chars: &[char]) -> Option<usize> {
    let end = chars.iter().position(|c| c.is_whitespace()).unwrap_or(chars.len());
    let colon = chars[..end].iter().position(|c| *c == ':')?;
    (colon > 0 && chars[..colon].iter().all(|c| c.is_alphabetic())).then_some(colon)
}

/// A quoted phrase or a bare word starting at `i`; returns it and the index after it.
fn value(chars: &[char], i: usize) -> (String, usize) {
    if chars[i] == '"' {
        let end = chars[i + 1..].iter().position(|c| *c == '"').map_or(chars.len(), |p| i + 1 + p);
        (chars[i + 1..end].iter().collect(), end + 1)
    } else {
        let end = chars[i..].iter().position(|c| c.is_whitespace()).map_or(chars.len(), |p| i + p);
        (chars[i..end].iter().collect(), end)
    }
}

/// An inclusive range of days; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// Reads `2024-04-01`, `2024/4/1`, `2024-04`, `2024`, `令和6年4月1日`, and ranges of them
/// written `A..B`, `A〜B`, `A..` or `..B`. A single day, month or year is the range it spans.
pub fn parse_days(value: &str) -> Option<DayRange> {
    let v = value.trim().replace(['〜', '~'], "..");
    if let Some((a, b)) = v.split_once("..") {
        let from = if a.is_empty() { None } else { Some(period(a)?.0) };
        let to = if b.is_empty() { None } else { Some(period(b)?.1) };
        if from.is_none() && to.is_none() || from.zip(to).is_some_and(|(f, t)| f > t) {
            return None;
        }
        return Some(DayRange { from, to });
    }
    let (from, to) = period(&v)?;
    Some(DayRange { from: Some(from), to: Some(to) })
}

/// The first and last day of a written date, month or year.
fn period(s: &str) -> Option<(NaiveDate, NaiveDate)> {
    if let Some(d) = crate::jp::parse_era(s) {
        return Some((d, d));
    }
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    let num = |p: &str| -> Option<u32> { (!p.is_empty() && p.len() <= 4).then(|| p.parse().ok()).flatten() };
    match parts.as_slice() {
        [y] if y.len() == 4 => {
            let y = num(y)? as i32;
            Some((NaiveDate::from_ymd_opt(y, 1, 1)?, NaiveDate::from_ymd_opt(y, 12, 31)?))
        }
        [y, m] if y.len() == 4 => {
            let first = NaiveDate::from_ymd_opt(num(y)? as i32, num(m)?, 1)?;
            let last = first.checked_add_months(chrono::Months::new(1))?.pred_opt()?;
            Some((first, last))
        }
        [y, m, d] if y.len() == 4 => {
            let d = NaiveDate::from_ymd_opt(num(y)? as i32, num(m)?, num(d)?)?;
            Some((d, d))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(text: &str, negated: bool) -> Clause {
        Clause { field: FieldName::Text, text: text.into(), negated }
    }

    #[test]
    fn words_phrases_and_exclusions() {
        assert_eq!(parse("山田 大腸炎").unwrap(), vec![c("山田", false), c("大腸炎", false)]);
        assert_eq!(parse("\"東京都 新宿区\" -渋谷").unwrap(), vec![c("東京都 新宿区", false), c("渋谷", true)]);
        assert_eq!(parse("-\"潰瘍性 大腸炎\"").unwrap(), vec![c("潰瘍性 大腸炎", true)]);
        assert_eq!(parse("\"unclosed phrase").unwrap(), vec![c("unclosed phrase", false)]);
        assert_eq!(parse(" - 山田 \"\" ").unwrap(), vec![c("-", false), c("山田", false)]);
        assert_eq!(parse("０３－５３２０").unwrap(), vec![c("03-5320", false)]);
        assert_eq!(parse("10:30").unwrap(), vec![c("10:30", false)]);
        assert!(parse("   ").unwrap().is_empty());
    }

    #[test]
    fn fields_in_japanese_and_english() {
        let q = parse("氏名:山田 -様式:申請書 disease:\"潰瘍性 大腸炎\" ｍｙｎｕｍｂｅｒ：123").unwrap();
        assert_eq!(q[0], Clause { field: FieldName::Name, text: "山田".into(), negated: false });
        assert_eq!(q[1], Clause { field: FieldName::Form, text: "申請書".into(), negated: true });
        assert_eq!(q[2], Clause { field: FieldName::Disease, text: "潰瘍性 大腸炎".into(), negated: false });
        assert_eq!(q[3].field, FieldName::MyNumber);
        assert_eq!(parse("氏名:").unwrap_err(), Problem::NoValue("氏名"));
        assert_eq!(parse("氏名:\"\"").unwrap_err(), Problem::NoValue("氏名"));
        assert_eq!(parse("foo:bar").unwrap_err(), Problem::UnknownField("foo".into()));
        assert!(Problem::UnknownField("foo".into()).message_ja().contains("氏名"));
        assert_eq!(parse("\"foo:bar\"").unwrap(), vec![c("foo:bar", false)]);
    }

    #[test]
    fn dates_and_ranges() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(parse_days("2024-04-01"), Some(DayRange { from: d(2024, 4, 1), to: d(2024, 4, 1) }));
        assert_eq!(parse_days("2024/2"), Some(DayRange { from: d(2024, 2, 1), to: d(2024, 2, 29) }));
        assert_eq!(parse_days("2023"), Some(DayRange { from: d(2023, 1, 1), to: d(2023, 12, 31) }));
        assert_eq!(parse_days("令和元年5月1日"), Some(DayRange { from: d(2019, 5, 1), to: d(2019, 5, 1) }));
        assert_eq!(parse_days("2024-04..2024-06"), Some(DayRange { from: d(2024, 4, 1), to: d(2024, 6, 30) }));
        assert_eq!(parse_days("..2020"), Some(DayRange { from: None, to: d(2020, 12, 31) }));
        assert_eq!(parse_days("2020〜"), Some(DayRange { from: d(2020, 1, 1), to: None }));
        for bad in ["2024-13-01", "2024-02-30", "昨日", "..", "2025..2024", "20240401x", "平成31年5月1日"] {
            assert_eq!(parse_days(bad), None, "{bad}");
        }
    }
}
