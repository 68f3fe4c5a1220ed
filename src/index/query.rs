//! The query language reviewers type: words (all must occur), OR / `|` between alternatives,
//! (parentheses) to group, "quoted phrases" (may span spaces), `field:value` or
//! `field:"a phrase"` to search one field, and `-` or NOT before any of these to exclude.
//! Field names are Japanese or English (`氏名:山田`, `name:山田`).
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

/// One searched value: a word or phrase, in a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub field: FieldName,
    pub text: String,
}

/// A parsed query: clauses combined with AND (juxtaposition), OR and NOT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Clause(Clause),
    /// Every part must match (exclusions among them must not).
    All(Vec<Expr>),
    /// At least one part must match.
    Any(Vec<Expr>),
    Not(Box<Expr>),
}

impl Expr {
    /// Whether the expression can match on its own (not only exclude).
    pub fn positive(&self) -> bool {
        match self {
            Expr::Clause(_) => true,
            Expr::Not(_) => false,
            Expr::All(parts) => parts.iter().any(Expr::positive),
            Expr::Any(parts) => parts.iter().all(Expr::positive),
        }
    }

    /// Whether an OR appears anywhere.
    pub fn has_alternatives(&self) -> bool {
        match self {
            Expr::Clause(_) => false,
            Expr::Not(inner) => inner.has_alternatives(),
            Expr::Any(_) => true,
            Expr::All(parts) => parts.iter().any(Expr::has_alternatives),
        }
    }

    /// Every clause, with whether it is excluded (under an odd number of NOTs).
    pub fn clauses(&self) -> Vec<(&Clause, bool)> {
        fn walk<'a>(e: &'a Expr, negated: bool, out: &mut Vec<(&'a Clause, bool)>) {
            match e {
                Expr::Clause(c) => out.push((c, negated)),
                Expr::Not(inner) => walk(inner, !negated, out),
                Expr::All(parts) | Expr::Any(parts) => parts.iter().for_each(|p| walk(p, negated, out)),
            }
        }
        let mut out = Vec::new();
        walk(self, false, &mut out);
        out
    }
}

/// What is wrong with a query, in words a reviewer can act on (Japanese: the one message the
/// search page and the CLI show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message_ja())]
pub enum Problem {
    Empty,
    OnlyExclusions,
    UnknownField(String),
    NoValue(&'static str),
    BadDate { field: &'static str, value: String },
    BadValue { field: &'static str, value: String },
    BadMyNumber,
    MyNumberNotAllowed,
}

impl Problem {
    /// The message shown on the search page.
    pub fn message_ja(&self) -> String {
        match self {
            Problem::Empty => "検索できる語が含まれていません。".into(),
            Problem::OnlyExclusions => {
                "除外（-語・NOT 語）だけでは検索できません。探す語も入力してください（OR の各候補にも）。".into()
            }
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

/// Parses a query. Words side by side must all match; `OR` (or `|`) between them offers
/// alternatives and binds tighter than side by side (`山田 佐藤 OR 鈴木` is 山田 and one of
/// the two); parentheses group; `-` or `NOT` before a word, phrase or group excludes it.
/// Lenient about text (a stray quote runs to the end, an unclosed parenthesis closes at the
/// end, a stray `)` or lone `-` is ignored), strict about fields. `Ok(None)`: nothing to
/// search (a blank query).
pub fn parse_expr(query: &str) -> Result<Option<Expr>, Problem> {
    let q: String = query.nfkc().collect();
    let chars: Vec<char> = q.chars().collect();
    let mut p = Parser { chars: &chars, i: 0 };
    let mut parts = Vec::new();
    loop {
        parts.extend(p.and_group(0)?);
        if p.i >= chars.len() {
            break;
        }
        // A stray `)` at the top level.
        p.i += 1;
    }
    Ok(simplify(Expr::All(parts)))
}

/// The clauses of a query without OR or grouping (as older callers read it): each with
/// whether it is excluded.
pub fn parse(query: &str) -> Result<Vec<(Clause, bool)>, Problem> {
    Ok(parse_expr(query)?.map(|e| e.clauses().into_iter().map(|(c, n)| (c.clone(), n)).collect()).unwrap_or_default())
}

/// Drops empty groups and unwraps groups of one.
fn simplify(e: Expr) -> Option<Expr> {
    match e {
        Expr::All(parts) | Expr::Any(parts) if parts.is_empty() => None,
        Expr::All(mut parts) if parts.len() == 1 => parts.pop(),
        Expr::Any(mut parts) if parts.len() == 1 => parts.pop(),
        other => Some(other),
    }
}

/// How deep parentheses nest before `(` is read as text.
const MAX_DEPTH: usize = 16;

struct Parser<'a> {
    chars: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.chars.get(self.i).is_some_and(|c| c.is_whitespace()) {
            self.i += 1;
        }
    }

    /// The bare keyword `word` at the cursor, followed by a space or the end.
    fn keyword(&self, word: &str) -> bool {
        let w: Vec<char> = word.chars().collect();
        self.chars[self.i..].starts_with(&w)
            && self.chars.get(self.i + w.len()).is_none_or(|c| c.is_whitespace() || *c == '(')
    }

    /// Parts side by side, until a `)` (when nested) or the end.
    fn and_group(&mut self, depth: usize) -> Result<Vec<Expr>, Problem> {
        let mut parts = Vec::new();
        loop {
            self.skip_space();
            match self.chars.get(self.i) {
                None | Some(')') => break,
                _ => {}
            }
            if self.keyword("AND") {
                self.i += 3;
                continue;
            }
            let Some(first) = self.unary(depth)? else { continue };
            let mut alternatives = vec![first];
            loop {
                let save = self.i;
                self.skip_space();
                let or = if self.keyword("OR") {
                    Some(2)
                } else if self.chars.get(self.i) == Some(&'|') {
                    Some(1)
                } else {
                    None
                };
                let Some(len) = or else {
                    self.i = save;
                    break;
                };
                self.i += len;
                self.skip_space();
                match self.unary(depth)? {
                    Some(next) => alternatives.push(next),
                    None => break,
                }
            }
            parts.extend(simplify(Expr::Any(alternatives)));
        }
        Ok(parts)
    }

    /// A negated part, a group or a clause. `None`: nothing there (a lone `-`, `""`).
    /// Negations are counted in a loop and groups nest at most [`MAX_DEPTH`] deep (deeper `(`
    /// are read as text), so no query, however hostile, recurses without bound.
    fn unary(&mut self, depth: usize) -> Result<Option<Expr>, Problem> {
        let mut negations = 0usize;
        loop {
            self.skip_space();
            if self.keyword("NOT") {
                self.i += 3;
            } else if self.chars.get(self.i) == Some(&'-')
                && self.chars.get(self.i + 1).is_some_and(|n| !n.is_whitespace())
            {
                self.i += 1;
            } else {
                break;
            }
            negations += 1;
        }
        let Some(&c) = self.chars.get(self.i) else { return Ok(None) };
        let inner = if c == '(' && depth < MAX_DEPTH {
            self.i += 1;
            let parts = self.and_group(depth + 1)?;
            if self.chars.get(self.i) == Some(&')') {
                self.i += 1;
            }
            simplify(Expr::All(parts))
        } else {
            self.clause(depth)?.map(Expr::Clause)
        };
        Ok(inner.map(|e| if negations % 2 == 1 { Expr::Not(Box::new(e)) } else { e }))
    }

    fn clause(&mut self, depth: usize) -> Result<Option<Clause>, Problem> {
        let chars = self.chars;
        let mut field = FieldName::Text;
        if chars[self.i] != '"'
            && let Some(colon) = field_colon(&chars[self.i..])
        {
            let name: String = chars[self.i..self.i + colon].iter().collect();
            field = FieldName::parse(&name).ok_or(Problem::UnknownField(name))?;
            self.i += colon + 1;
            if chars.get(self.i).is_none_or(|c| c.is_whitespace()) {
                return Err(Problem::NoValue(field.label()));
            }
        }
        let (text, next) = value(chars, self.i, depth);
        self.i = next.max(self.i + 1).min(chars.len());
        if !text.trim().is_empty() && text != "-" {
            Ok(Some(Clause { field, text }))
        } else if field != FieldName::Text {
            Err(Problem::NoValue(field.label()))
        } else {
            Ok(None)
        }
    }
}

/// The position of the colon if the word at the start of `chars` is `name:…` with a name of
/// letters only (so `10:30` or a URL-like `a1:b` stays text).
fn field_colon(chars: &[char]) -> Option<usize> {
    let end = chars.iter().position(|c| c.is_whitespace()).unwrap_or(chars.len());
    let colon = chars[..end].iter().position(|c| *c == ':')?;
    (colon > 0 && chars[..colon].iter().all(|c| c.is_alphabetic())).then_some(colon)
}

/// A quoted phrase or a bare word starting at `i`; returns it and the index after it. Inside
/// parentheses a bare word also ends at `)`.
fn value(chars: &[char], i: usize, depth: usize) -> (String, usize) {
    if chars[i] == '"' {
        let end = chars[i + 1..].iter().position(|c| *c == '"').map_or(chars.len(), |p| i + 1 + p);
        (chars[i + 1..end].iter().collect(), end + 1)
    } else {
        let stop = |c: &char| c.is_whitespace() || (depth > 0 && *c == ')');
        let end = chars[i..].iter().position(stop).map_or(chars.len(), |p| i + p);
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

    fn c(text: &str, negated: bool) -> (Clause, bool) {
        (Clause { field: FieldName::Text, text: text.into() }, negated)
    }

    fn word(text: &str) -> Expr {
        Expr::Clause(Clause { field: FieldName::Text, text: text.into() })
    }

    #[test]
    fn words_phrases_and_exclusions() {
        assert_eq!(parse("山田 大腸炎").unwrap(), vec![c("山田", false), c("大腸炎", false)]);
        assert_eq!(parse("\"東京都 新宿区\" -渋谷").unwrap(), vec![c("東京都 新宿区", false), c("渋谷", true)]);
        assert_eq!(parse("-\"潰瘍性 大腸炎\"").unwrap(), vec![c("潰瘍性 大腸炎", true)]);
        assert_eq!(parse("\"unclosed phrase").unwrap(), vec![c("unclosed phrase", false)]);
        assert_eq!(parse(" - 山田 \"\" ").unwrap(), vec![c("山田", false)]);
        assert_eq!(parse("０３－５３２０").unwrap(), vec![c("03-5320", false)]);
        assert_eq!(parse("10:30").unwrap(), vec![c("10:30", false)]);
        assert!(parse("   ").unwrap().is_empty());
    }

    #[test]
    fn or_parentheses_and_not() {
        let e = parse_expr("山田 佐藤 OR 鈴木").unwrap().unwrap();
        assert_eq!(e, Expr::All(vec![word("山田"), Expr::Any(vec![word("佐藤"), word("鈴木")])]));
        let e = parse_expr("(大腸炎 | クローン) NOT 新宿区").unwrap().unwrap();
        assert_eq!(
            e,
            Expr::All(vec![Expr::Any(vec![word("大腸炎"), word("クローン")]), Expr::Not(Box::new(word("新宿区")))])
        );
        let e = parse_expr("-(渋谷 OR 新宿) 山田").unwrap().unwrap();
        assert_eq!(e, Expr::All(vec![Expr::Not(Box::new(Expr::Any(vec![word("渋谷"), word("新宿")]))), word("山田")]));
        assert!(!e.clauses().is_empty() && e.positive());
        assert!(!parse_expr("-山田 NOT 佐藤").unwrap().unwrap().positive());
        assert!(!parse_expr("山田 OR -佐藤").unwrap().unwrap().positive(), "an alternative that only excludes");
        // Lenient: an unclosed group closes at the end, a stray `)` is skipped; a company's
        // (株) is a word beside the name.
        assert_eq!(parse_expr("(山田 OR 佐藤").unwrap().unwrap(), Expr::Any(vec![word("山田"), word("佐藤")]));
        assert_eq!(parse_expr("山田 ) 佐藤").unwrap().unwrap(), Expr::All(vec![word("山田"), word("佐藤")]));
        assert_eq!(parse_expr("(株)山田").unwrap().unwrap(), Expr::All(vec![word("株"), word("山田")]));
        assert_eq!(parse_expr("OREGON ANDES").unwrap().unwrap(), Expr::All(vec![word("OREGON"), word("ANDES")]));
        assert_eq!(parse_expr("()").unwrap(), None);
        assert_eq!(parse_expr("--山田").unwrap().unwrap(), word("山田"), "two negations cancel");
        // Hostile nesting neither overflows the stack nor fails.
        let deep = format!("{}山田{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse_expr(&deep).unwrap().is_some());
        let negated = format!("{}山田", "-".repeat(100_001));
        assert_eq!(parse_expr(&negated).unwrap().unwrap(), Expr::Not(Box::new(word("山田"))));
    }

    #[test]
    fn fields_in_japanese_and_english() {
        let q = parse("氏名:山田 -様式:申請書 disease:\"潰瘍性 大腸炎\" ｍｙｎｕｍｂｅｒ：123").unwrap();
        assert_eq!(q[0], (Clause { field: FieldName::Name, text: "山田".into() }, false));
        assert_eq!(q[1], (Clause { field: FieldName::Form, text: "申請書".into() }, true));
        assert_eq!(q[2], (Clause { field: FieldName::Disease, text: "潰瘍性 大腸炎".into() }, false));
        assert_eq!(q[3].0.field, FieldName::MyNumber);
        assert_eq!(parse("氏名:").unwrap_err(), Problem::NoValue("氏名"));
        assert_eq!(parse("氏名:\"\"").unwrap_err(), Problem::NoValue("氏名"));
        assert_eq!(parse("foo:bar").unwrap_err(), Problem::UnknownField("foo".into()));
        let shown = Problem::UnknownField("foo".into()).to_string();
        assert!(shown.contains("氏名") && shown.matches("foo").count() == 1, "Japanese, once: {shown}");
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
