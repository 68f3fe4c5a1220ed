//! Dates written in any common form, found in text so that each is also indexed as one
//! canonical token (`yyyymmdd`): `2024-04-01`, `2024/4/1`, `2024.4.1`, `2024年4月1日`,
//! `令和6年4月1日`, `R6.4.1`, `令6.4.1` all meet. A date written past its era's end
//! (平成31年5月1日, which forms still print) is read as the day it names.

use chrono::NaiveDate;

/// A date found at chars `start..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub start: usize,
    pub end: usize,
    pub date: NaiveDate,
}

/// The token a date is indexed as.
pub fn token(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// (names, one-letter and one-kanji abbreviations, first Gregorian year).
const ERAS: [(&str, char, char, i32); 5] = [
    ("明治", 'M', '明', 1868),
    ("大正", 'T', '大', 1912),
    ("昭和", 'S', '昭', 1926),
    ("平成", 'H', '平', 1989),
    ("令和", 'R', '令', 2019),
];

/// Every date in `chars` (NFKC text), left to right, not overlapping.
pub fn find(chars: &[char]) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        match boundary.then(|| at(chars, i)).flatten() {
            Some((end, date)) => {
                out.push(Mention { start: i, end, date });
                i = end;
            }
            None => i += 1,
        }
    }
    out
}

/// The date `s` is, if the whole of it is one (a query word).
pub fn whole(s: &str) -> Option<NaiveDate> {
    let chars: Vec<char> = s.trim().chars().collect();
    at(&chars, 0).filter(|(end, _)| *end == chars.len()).map(|(_, d)| d)
}

/// A date starting at `i`: its end and the day.
fn at(chars: &[char], i: usize) -> Option<(usize, NaiveDate)> {
    let (year, j) = year_at(chars, i)?;
    let (y, m, d, end) = if chars.get(j) == Some(&'年') {
        let (m, k) = number(chars, j + 1, 2)?;
        (chars.get(k) == Some(&'月')).then_some(())?;
        let (d, k) = number(chars, k + 1, 2)?;
        (chars.get(k) == Some(&'日')).then_some(())?;
        (year, m, d, k + 1)
    } else {
        let sep = *chars.get(j).filter(|c| matches!(c, '-' | '/' | '.'))?;
        let (m, k) = number(chars, j + 1, 2)?;
        (chars.get(k) == Some(&sep)).then_some(())?;
        let (d, k) = number(chars, k + 1, 2)?;
        (year, m, d, k)
    };
    if chars.get(end).is_some_and(char::is_ascii_digit) {
        return None;
    }
    Some((end, NaiveDate::from_ymd_opt(y, m, d)?))
}

/// A Gregorian year of four digits, or an era year (`令和6`, `令和元`, `R6`, `令6`): the year
/// and the index after it.
fn year_at(chars: &[char], i: usize) -> Option<(i32, usize)> {
    let c = *chars.get(i)?;
    if c.is_ascii_digit() {
        let (y, j) = number(chars, i, 4)?;
        return (j - i == 4 && (1868..=2200).contains(&y)).then_some((y as i32, j));
    }
    for (name, letter, kanji, first) in ERAS {
        let after = if chars[i..].starts_with(&name.chars().collect::<Vec<_>>()) {
            i + 2
        } else if c.eq_ignore_ascii_case(&letter) || c == kanji {
            i + 1
        } else {
            continue;
        };
        if chars.get(after) == Some(&'元') {
            return Some((first, after + 1));
        }
        let (n, j) = number(chars, after, 2)?;
        return (n >= 1).then_some((first + n as i32 - 1, j));
    }
    None
}

/// Up to `max` digits at `i` (at least one): the number and the index after them.
fn number(chars: &[char], i: usize, max: usize) -> Option<(u32, usize)> {
    let digits: String = chars[i.min(chars.len())..].iter().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() || digits.len() > max {
        return None;
    }
    Some((digits.parse().ok()?, i + digits.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_common_form_names_the_same_day() {
        let want = NaiveDate::from_ymd_opt(2024, 4, 1);
        for s in ["2024-04-01", "2024/4/1", "2024.4.1", "2024年4月1日", "令和6年4月1日", "R6.4.1", "r6/4/1", "令6.4.1"]
        {
            assert_eq!(whole(s), want, "{s}");
        }
        assert_eq!(whole("令和元年5月1日"), NaiveDate::from_ymd_opt(2019, 5, 1));
        assert_eq!(whole("平成31年5月1日"), NaiveDate::from_ymd_opt(2019, 5, 1), "past its era: the day it names");
        assert_eq!(whole("H31.4.30"), NaiveDate::from_ymd_opt(2019, 4, 30));
        for bad in
            ["2024-13-01", "2024-02-30", "12024-01-01", "2024-4/1", "令和6年", "R6.4", "昭和0年1月1日", "20240401"]
        {
            assert_eq!(whole(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_are_found_inside_text() {
        let text: Vec<char> = "受付 令和6年4月1日、生年月日S45.3.12 電話03-1234-5678 ABR6.1.1".chars().collect();
        let found: Vec<String> = find(&text).iter().map(|m| token(m.date)).collect();
        assert_eq!(found, vec!["20240401", "19700312"]);
        let m = &find(&text)[0];
        assert_eq!(text[m.start..m.end].iter().collect::<String>(), "令和6年4月1日");
    }
}
