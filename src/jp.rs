//! Japanese conventions shared by synth, OCR normalisation and validation: imperial eras and
//! the My Number check digit.

use chrono::{Datelike, NaiveDate};

/// Eras in order, with their first day.
const ERAS: &[(&str, i32, u32, u32)] =
    &[("明治", 1868, 1, 25), ("大正", 1912, 7, 30), ("昭和", 1926, 12, 25), ("平成", 1989, 1, 8), ("令和", 2019, 5, 1)];

/// Japan Standard Time (UTC+9, no daylight saving): every civil date in hozon is a Japan date.
pub fn jst() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(9 * 3600).expect("UTC+9 is a valid offset")
}

/// The Japan date of an instant.
pub fn date_of(t: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    t.with_timezone(&jst()).date_naive()
}

/// Today's Japan date.
pub fn today() -> NaiveDate {
    date_of(chrono::Utc::now())
}

/// The fiscal year (年度, April to March) a date falls in, by its starting calendar year.
pub fn fiscal_year(d: NaiveDate) -> i32 {
    if d.month() >= 4 { d.year() } else { d.year() - 1 }
}

/// A date as 和暦 with the ISO date beside it: `令和8年11月30日（2026-11-30）`.
pub fn era_and_iso(d: NaiveDate) -> String {
    match format_era(d) {
        Some(era) => format!("{era}（{d}）"),
        None => d.to_string(),
    }
}

/// Writes a date the way forms do: `昭和45年3月12日`, with `元年` for the first year.
pub fn format_era(date: NaiveDate) -> Option<String> {
    let (name, n) = era_of(date)?;
    let year = if n == 1 { "元".to_string() } else { n.to_string() };
    Some(format!("{name}{year}年{}月{}日", date.month(), date.day()))
}

/// The era a date falls in and its year in that era (2024-04-01 → 令和, 6).
pub fn era_of(date: NaiveDate) -> Option<(&'static str, i32)> {
    let (name, start_year, ..) =
        ERAS.iter().rev().find(|(_, y, m, d)| NaiveDate::from_ymd_opt(*y, *m, *d).is_some_and(|s| date >= s))?;
    Some((name, date.year() - start_year + 1))
}

/// The era names, oldest first.
pub fn era_names() -> impl Iterator<Item = &'static str> {
    ERAS.iter().map(|(n, ..)| *n)
}

/// Parses `昭和45年3月12日` (also `元年`, full-width digits after NFKC) into a date, checking that
/// the date exists and falls inside the era.
pub fn parse_era(s: &str) -> Option<NaiveDate> {
    let s: String = unicode_normalization::UnicodeNormalization::nfkc(s.trim()).collect();
    let idx = ERAS.iter().position(|(n, ..)| s.starts_with(n))?;
    let (name, start_year, sm, sd) = ERAS[idx];
    let rest = &s[name.len()..];
    let (y, rest) = rest.split_once('年')?;
    let (m, rest) = rest.split_once('月')?;
    let d = rest.strip_suffix('日')?;
    let n: i32 = if y == "元" { 1 } else { y.parse().ok()? };
    if n < 1 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(start_year + n - 1, m.parse().ok()?, d.parse().ok()?)?;
    let start = NaiveDate::from_ymd_opt(start_year, sm, sd)?;
    let next_start = ERAS.get(idx + 1).and_then(|(_, y, m, d)| NaiveDate::from_ymd_opt(*y, *m, *d));
    (date >= start && next_start.is_none_or(|ns| date < ns)).then_some(date)
}

/// The check digit of an 11-digit My Number body (平成26年総務省令第85号 第5条).
pub fn my_number_check_digit(body: &[u8; 11]) -> u8 {
    const WEIGHTS: [u32; 11] = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
    let sum: u32 = body.iter().zip(WEIGHTS).map(|(d, w)| u32::from(*d) * w).sum();
    let r = sum % 11;
    if r <= 1 { 0 } else { (11 - r) as u8 }
}

/// True when `s` is 12 ASCII digits with a correct check digit.
pub fn my_number_valid(s: &str) -> bool {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    if digits.len() != 12 || s.len() != 12 {
        return false;
    }
    let body: [u8; 11] = digits[..11].try_into().expect("11 digits");
    my_number_check_digit(&body) == digits[11]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn era_boundaries() {
        assert_eq!(format_era(d(2019, 4, 30)).unwrap(), "平成31年4月30日");
        assert_eq!(format_era(d(2019, 5, 1)).unwrap(), "令和元年5月1日");
        assert_eq!(format_era(d(1989, 1, 7)).unwrap(), "昭和64年1月7日");
        assert_eq!(format_era(d(1970, 3, 12)).unwrap(), "昭和45年3月12日");
        assert_eq!(parse_era("令和元年5月1日"), Some(d(2019, 5, 1)));
        assert_eq!(parse_era("平成31年4月30日"), Some(d(2019, 4, 30)));
        assert_eq!(parse_era("昭和４５年３月１２日"), Some(d(1970, 3, 12)));
        // Dates outside their era or that do not exist.
        assert_eq!(parse_era("平成31年5月1日"), None);
        assert_eq!(parse_era("令和元年4月30日"), None);
        assert_eq!(parse_era("令和5年2月30日"), None);
        assert_eq!(parse_era("昭和0年1月1日"), None);
    }

    #[test]
    fn my_number_published_examples() {
        for ok in ["123456789018", "621498320257", "983205673214"] {
            assert!(my_number_valid(ok), "{ok}");
        }
        assert!(!my_number_valid("621498320258"));
        assert!(!my_number_valid("12345678901"));
        assert!(!my_number_valid("12345678901a"));
    }

    #[test]
    fn japan_dates_and_fiscal_years() {
        use chrono::TimeZone;
        // 08:30 on 1 April in Tokyo is still 31 March in UTC: the Japan date counts.
        let t = chrono::Utc.with_ymd_and_hms(2027, 3, 31, 23, 30, 0).unwrap();
        assert_eq!(date_of(t), d(2027, 4, 1));
        assert_eq!(fiscal_year(date_of(t)), 2027);
        assert_eq!(fiscal_year(d(2027, 3, 31)), 2026);
        assert_eq!(era_and_iso(d(2026, 11, 30)), "令和8年11月30日（2026-11-30）");
    }
}
