//! Cross-checks that turn guesses into checked values: the postal code against the address
//! (the real Tokyo postal list), the disease against the designated-disease list, the reading
//! against the name where the name list knows it, and the birth date against the calendar.
//! Which fields go through which check is named in the template (`checks = [...]`), never
//! implied by a field's name. A failed check flags the field with the reason; where the
//! reference list makes one reading certain (one character off), the value is the list's,
//! flagged.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;

use super::{Draft, Flag};
use crate::forms::template::{Check, Template};

const NAMES: &str = include_str!("../../reference-data/japanese-names.tsv");
const POSTAL: &str = include_str!("../../reference-data/tokyo-postal-codes.tsv");
const DISEASES: &str = include_str!("../../reference-data/designated-intractable-diseases.tsv");

/// The designated disease's number (告示番号) for a name as the list spells it (after NFKC,
/// spaces aside: the list has stray trailing ones).
pub fn disease_number(name: &str) -> Option<u32> {
    let key = |s: &str| -> String { s.nfkc().filter(|c| !c.is_whitespace()).collect() };
    static NUMBERS: std::sync::OnceLock<HashMap<String, u32>> = std::sync::OnceLock::new();
    let numbers = NUMBERS.get_or_init(|| {
        DISEASES
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut c = l.split('\t');
                let no = c.next()?.parse().ok()?;
                Some((key(c.next()?), no))
            })
            .collect()
    });
    numbers.get(&key(name)).copied()
}

struct Lists {
    /// 7-digit postal code → (municipality, town).
    postal: HashMap<String, Vec<(String, String)>>,
    diseases: HashSet<String>,
    /// Kanji name part → its katakana readings.
    readings: HashMap<String, HashSet<String>>,
}

fn lists() -> &'static Lists {
    static LISTS: OnceLock<Lists> = OnceLock::new();
    LISTS.get_or_init(|| {
        let mut postal: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for l in POSTAL.lines().skip(1) {
            let c: Vec<&str> = l.split('\t').collect();
            if c.len() >= 4 {
                postal.entry(c[0].to_owned()).or_default().push((c[2].to_owned(), c[3].to_owned()));
            }
        }
        let diseases = DISEASES
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').nth(1))
            .map(|d| d.nfkc().filter(|c| !c.is_whitespace()).collect())
            .collect();
        let mut readings: HashMap<String, HashSet<String>> = HashMap::new();
        for l in NAMES.lines().skip(1) {
            let c: Vec<&str> = l.split('\t').collect();
            if c.len() >= 4 {
                readings.entry(c[1].to_owned()).or_default().insert(c[3].to_owned());
            }
        }
        Lists { postal, diseases, readings }
    })
}

fn flag(draft: &mut Draft, field: &str, reason: String) {
    if let Some(f) = draft.fields.iter_mut().find(|f| f.name == field) {
        f.flags.push(Flag::CrossCheck { reason });
    }
}

fn set(draft: &mut Draft, field: &str, value: &str) {
    if let Some(f) = draft.fields.iter_mut().find(|f| f.name == field) {
        value.clone_into(&mut f.value);
    }
}

/// After the place name an address is numbers (1丁目9番8号): a Latin letter there is a
/// handwritten digit misread (q for 9, O for 0, l for 1). Replaced, and flagged.
fn digits_in_block_number(draft: &mut Draft, field: &str, places: &[(String, String)]) {
    let Some(address) = value(draft, field).map(str::to_owned) else { return };
    let Some(head) =
        places.iter().map(|(city, town)| format!("{city}{town}")).find_map(|p| address.find(&p).map(|i| i + p.len()))
    else {
        return;
    };
    let rest = &address[head..];
    let chars: Vec<char> = rest.chars().collect();
    let mut fixed = String::with_capacity(rest.len());
    for (i, &c) in chars.iter().enumerate() {
        // 丁 written quickly reads as T (or 了, 十, 寸), or merged with a 1 before it as one
        // character (竹, 什, 汁): before 目, after a number, it is 丁.
        let numeral = |k: char| k.is_ascii_digit() || "一二三四五六七八九十".contains(k);
        let number_before = i.checked_sub(1).is_some_and(|j| numeral(chars[j]));
        if chars.get(i + 1) == Some(&'目') {
            if number_before && "T丅亍了十寸".contains(c) {
                fixed.push('丁');
                continue;
            }
            if !number_before && "竹什汁".contains(c) {
                fixed.push_str("1丁");
                continue;
            }
        }
        fixed.push(match c {
            'q' | 'g' | 'Q' => '9',
            'O' | 'o' | 'D' => '0',
            'l' | 'I' | '|' | 'i' => '1',
            'Z' | 'z' => '2',
            'S' | 's' => '5',
            'B' => '8',
            'b' => '6',
            c => c,
        });
    }
    if fixed != rest {
        let reason = format!("番地の「{rest}」を「{fixed}」として読みました");
        set(draft, field, &format!("{}{fixed}", &address[..head]));
        flag(draft, field, reason);
    }
}

/// The one entry of `list` exactly one character edit from `s`, if there is exactly one.
fn nearest<'a>(s: &str, list: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    nearest_within(s, list, 1)
}

/// The entry of `list` fewest edits (at most `most`) from `s`, if no other is as near.
fn nearest_within<'a>(s: &str, list: impl Iterator<Item = &'a str>, most: usize) -> Option<&'a str> {
    let mut best: Option<(usize, &str, bool)> = None;
    for e in list {
        let d = strsim::levenshtein(s, e);
        if d == 0 || d > most {
            continue;
        }
        best = match best {
            Some((b, _, _)) if d > b => best,
            Some((b, first, _)) if d == b => Some((b, first, true)),
            _ => Some((d, e, false)),
        };
    }
    best.and_then(|(_, e, tied)| (!tied).then_some(e))
}

fn value<'a>(draft: &'a Draft, field: &str) -> Option<&'a str> {
    draft.field(field).map(|f| f.value.as_str()).filter(|v| !v.is_empty())
}

/// Runs the checks the template names on each field, in the template's order.
pub fn cross_check(draft: &mut Draft, template: &Template) {
    for f in &template.fields {
        for check in &f.checks {
            let field = f.name.as_str();
            match check {
                Check::PostalJp => postal_code_listed(draft, field),
                Check::AddressOf(postal) => address_fits_postal_code(draft, field, postal),
                Check::ReadingOf(name) => reading_fits_name(draft, field, name),
                Check::DesignatedDisease => disease_listed(draft, field),
                Check::PastDate => past_date(draft, field),
                Check::RecipientNoFor(kind) => recipient_number_fits_application_type(draft, field, kind),
            }
        }
    }
}

fn digits(code: &str) -> String {
    code.replace('-', "")
}

fn postal_code_listed(draft: &mut Draft, field: &str) {
    if let Some(code) = value(draft, field).map(digits)
        && !lists().postal.contains_key(&code)
    {
        flag(draft, field, format!("{code} は東京都の郵便番号一覧にありません"));
    }
}

/// The address against the place its postal code names (a code not in the list is the postal
/// field's own check).
fn address_fits_postal_code(draft: &mut Draft, field: &str, postal: &str) {
    let Some(code) = value(draft, postal).map(digits) else { return };
    let Some(places) = lists().postal.get(&code) else { return };
    let Some(address) = value(draft, field) else { return };
    let address: String = address.nfkc().filter(|c| !c.is_whitespace()).collect();
    let fits = places.iter().any(|(city, town)| address.contains(&format!("{city}{town}")));
    if fits {
        digits_in_block_number(draft, field, places);
        return;
    }
    // The address begins a character off the place its postal code names: the place is taken
    // from the postal list (the number is read more reliably than kanji), flagged for
    // confirmation.
    let near = places.iter().find_map(|(city, town)| {
        let place = format!("東京都{city}{town}");
        let head: String = address.chars().take(place.chars().count()).collect();
        let rest: String = address.chars().skip(place.chars().count()).collect();
        (strsim::levenshtein(&head, &place) == 1).then(|| (format!("{place}{rest}"), head, place))
    });
    match near {
        Some((fixed, head, place)) => {
            set(draft, field, &fixed);
            flag(draft, field, format!("「{head}」を郵便番号の示す「{place}」として読みました"));
            digits_in_block_number(draft, field, places);
        }
        None => {
            let (city, town) = &places[0];
            let reason = format!("郵便番号 {code} は{city}{town}です");
            flag(draft, postal, reason.clone());
            flag(draft, field, reason);
        }
    }
}

fn disease_listed(draft: &mut Draft, field: &str) {
    let Some(d) = value(draft, field) else { return };
    let d: String = d.nfkc().filter(|c| !c.is_whitespace()).collect();
    let l = lists();
    if l.diseases.contains(&d) {
        return;
    }
    // Disease names are long and the list short: up to one character in three may be off
    // (a variant glyph, a misread stroke) and still point to one listed name.
    let most = (d.chars().count() / 3).max(1);
    match nearest_within(&d, l.diseases.iter().map(String::as_str), most) {
        // Nearest to one listed name: the list's spelling is the value, flagged so the
        // reviewer confirms it.
        Some(listed) => {
            let reason = format!("「{d}」を指定難病の一覧の「{listed}」として読みました");
            set(draft, field, listed);
            flag(draft, field, reason);
        }
        None => flag(draft, field, format!("「{d}」は指定難病の一覧にありません")),
    }
}

fn past_date(draft: &mut Draft, field: &str) {
    if let Some(b) = value(draft, field).and_then(|b| b.parse::<chrono::NaiveDate>().ok())
        && (b > crate::jp::today() || chrono::Datelike::year(&b) < 1900)
    {
        flag(draft, field, format!("生年月日 {b} はありえない日付です"));
    }
}

fn reading_fits_name(draft: &mut Draft, field: &str, name_field: &str) {
    let (Some(name), Some(kana)) = (value(draft, name_field), value(draft, field)) else { return };
    let names: Vec<&str> = name.split_whitespace().collect();
    let kanas: Vec<&str> = kana.split_whitespace().collect();
    if names.len() != kanas.len() {
        return;
    }
    let mut fixed: Vec<String> = Vec::new();
    let mut reasons: Vec<String> = Vec::new();
    for (n, k) in names.iter().zip(&kanas) {
        match lists().readings.get(*n) {
            Some(r) if !r.contains(*k) => match nearest(k, r.iter().map(String::as_str)) {
                // One kana off the one reading the list knows for this name (ユ read as エ):
                // the list's reading, flagged for confirmation.
                Some(reading) => {
                    reasons.push(format!("「{k}」を{n}の読み「{reading}」として読みました"));
                    fixed.push(reading.to_owned());
                }
                None => {
                    reasons.push(format!("{n}の読みは{k}ではありません"));
                    fixed.push((*k).to_owned());
                }
            },
            _ => fixed.push((*k).to_owned()),
        }
    }
    if !reasons.is_empty() {
        set(draft, field, &fixed.join(" "));
        flag(draft, field, reasons.join("、"));
    }
}

/// A renewal or change (更新・変更) names the recipient's number; a first application (新規)
/// has none yet. Either way round is worth a look (a tick in the wrong box, a number missed).
fn recipient_number_fits_application_type(draft: &mut Draft, field: &str, kind_field: &str) {
    let Some(kind) = draft.field(kind_field).map(|f| f.value.clone()) else { return };
    if draft.field(field).is_none() {
        return;
    }
    let has_number = value(draft, field).is_some();
    match (kind.as_str(), has_number) {
        ("更新" | "変更", false) => flag(draft, field, format!("{kind}の申請ですが受給者番号がありません")),
        ("新規", true) => flag(draft, field, "新規の申請ですが受給者番号が記入されています".into()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drafts::DraftField;
    use crate::forms::template::FieldType;

    fn f(name: &str, value: &str) -> DraftField {
        DraftField {
            name: name.into(),
            label: name.into(),
            kind: FieldType::Text,
            raw: value.into(),
            value: value.into(),
            confidence: 1.0,
            flags: vec![],
            rect: [0; 4],
        }
    }

    fn draft(fields: Vec<DraftField>) -> Draft {
        Draft { template: "t".into(), title: "t".into(), form: "application".into(), fields, ..Default::default() }
    }

    /// The checks of the application's sheet 1, which has every checked field.
    fn check(d: &mut Draft) {
        let all = crate::forms::template::load_dir(&crate::forms::template::default_dir()).unwrap();
        cross_check(d, all.iter().find(|t| t.id() == "application#1").unwrap());
    }

    #[test]
    fn a_field_name_implies_no_check() {
        let mut t = crate::forms::template::load_dir(&crate::forms::template::default_dir())
            .unwrap()
            .into_iter()
            .find(|t| t.id() == "application#1")
            .unwrap();
        let wrong = || draft(vec![f("postal_code", "999-9999"), f("disease", "かぜ"), f("birth_date", "2999-01-01")]);
        let mut d = wrong();
        cross_check(&mut d, &t);
        assert_eq!((flags(&d, "postal_code"), flags(&d, "disease"), flags(&d, "birth_date")), (1, 1, 1));
        for f in &mut t.fields {
            f.checks.clear();
        }
        let mut d = wrong();
        cross_check(&mut d, &t);
        assert!(d.fields.iter().all(|f| f.flags.is_empty()), "{d:?}");
    }

    fn flags(d: &Draft, name: &str) -> usize {
        d.field(name).unwrap().flags.len()
    }

    #[test]
    fn a_renewal_names_its_recipient_number_and_a_first_application_does_not() {
        for (kind, number, flagged) in
            [("更新", "1312345", 0), ("変更", "", 1), ("新規", "", 0), ("新規", "1312345", 1)]
        {
            let mut d = draft(vec![f("application_type", kind), f("recipient_no", number)]);
            check(&mut d);
            assert_eq!(flags(&d, "recipient_no"), flagged, "{kind} {number:?}");
        }
    }

    #[test]
    fn postal_code_against_address() {
        let (city, town, code) = POSTAL
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .find(|c| c.len() >= 7 && !c[3].is_empty() && c[6].is_empty())
            .map(|c| (c[2].to_owned(), c[3].to_owned(), c[0].to_owned()))
            .unwrap();
        let postal = format!("{}-{}", &code[..3], &code[3..]);
        let mut ok = draft(vec![f("postal_code", &postal), f("address", &format!("東京都{city}{town}1丁目2番3号"))]);
        check(&mut ok);
        assert_eq!((flags(&ok, "postal_code"), flags(&ok, "address")), (0, 0));
        let mut wrong = draft(vec![f("postal_code", &postal), f("address", "東京都八丈町大賀郷1番")]);
        check(&mut wrong);
        assert_eq!((flags(&wrong, "postal_code"), flags(&wrong, "address")), (1, 1));
        let mut unknown = draft(vec![f("postal_code", "999-9999")]);
        check(&mut unknown);
        assert_eq!(flags(&unknown, "postal_code"), 1);
    }

    #[test]
    fn disease_numbers_ignore_width_and_stray_spaces() {
        assert_eq!(disease_number("潰瘍性大腸炎"), Some(97));
        assert_eq!(disease_number("グルタル酸血症2型"), Some(250), "the list has a trailing space");
        assert_eq!(disease_number("ＩｇＡ腎症"), disease_number("IgA 腎症"));
        assert!(disease_number("IgA 腎症").is_some());
        assert_eq!(disease_number("かぜ"), None);
    }

    #[test]
    fn disease_birth_date_and_reading() {
        let mut d = draft(vec![
            f("disease", "潰瘍性大腸炎"),
            f("birth_date", "1960-05-01"),
            f("name", "佐藤 花子"),
            f("kana", "サトウ ハナコ"),
        ]);
        check(&mut d);
        assert!(d.fields.iter().all(|f| f.flags.is_empty()), "{d:?}");
        let mut bad = draft(vec![
            f("disease", "潰瘍性大腸災"),
            f("birth_date", "2999-01-01"),
            f("name", "佐藤 花子"),
            f("kana", "サイトウ ハナコ"),
        ]);
        check(&mut bad);
        assert_eq!((flags(&bad, "disease"), flags(&bad, "birth_date"), flags(&bad, "kana")), (1, 1, 1));
        // One character off a listed disease: the list's spelling, flagged; further off: kept.
        assert_eq!(bad.field("disease").unwrap().value, "潰瘍性大腸炎");
        assert_eq!(bad.field("kana").unwrap().value, "サトウ ハナコ", "one kana off the listed reading");
        let mut far = draft(vec![f("disease", "原因不明の腹痛")]);
        check(&mut far);
        assert_eq!((far.field("disease").unwrap().value.as_str(), flags(&far, "disease")), ("原因不明の腹痛", 1));
    }

    #[test]
    fn letters_in_a_block_number_are_digits() {
        let mut d = draft(vec![f("postal_code", "180-0022"), f("address", "東京都武蔵野市境1丁目q番O号")]);
        check(&mut d);
        let a = d.field("address").unwrap();
        assert_eq!((a.value.as_str(), a.flags.len()), ("東京都武蔵野市境1丁目9番0号", 1));
        // 丁 read as T, or merged with the 1 before it.
        for (read, meant) in
            [("境3T目8番16号", "境3丁目8番16号"), ("境竹目28番9号", "境1丁目28番9号"), ("境二了目5番", "境二丁目5番")]
        {
            let mut d = draft(vec![f("postal_code", "180-0022"), f("address", &format!("東京都武蔵野市{read}"))]);
            check(&mut d);
            let a = d.field("address").unwrap();
            assert_eq!((a.value.as_str(), a.flags.len()), (format!("東京都武蔵野市{meant}").as_str(), 1));
        }
    }

    #[test]
    fn a_disease_name_two_strokes_off_is_the_listed_one_when_no_other_is_as_near() {
        let mut d = draft(vec![f("disease", "後絲勒帯骨化症")]);
        check(&mut d);
        assert_eq!((d.field("disease").unwrap().value.as_str(), flags(&d, "disease")), ("後縦靱帯骨化症", 1));
        assert_eq!(nearest_within("ab", ["ax", "ay"].into_iter(), 1), None, "a tie is no answer");
        // A listed name read right is taken as it is (the list's own spacing does not count).
        let mut right = draft(vec![f("disease", "グルタル酸血症2型")]);
        check(&mut right);
        assert_eq!(flags(&right, "disease"), 0);
        // A word before 目 that is no block number is left alone.
        let mut d = draft(vec![f("postal_code", "180-0022"), f("address", "東京都武蔵野市境1丁目2番3号メゾン目白")]);
        check(&mut d);
        assert_eq!(d.field("address").unwrap().value, "東京都武蔵野市境1丁目2番3号メゾン目白");
        assert_eq!(nearest_within("ab", ["ax", "xy"].into_iter(), 2), Some("ax"));
    }

    #[test]
    fn address_a_character_off_its_postal_place_is_taken_from_the_list() {
        let mut d = draft(vec![f("postal_code", "180-0022"), f("address", "東京都武越野市境5T目9番17号")]);
        check(&mut d);
        let a = d.field("address").unwrap();
        assert_eq!(a.value, "東京都武蔵野市境5丁目9番17号", "the place from the list, then the block number");
        assert_eq!((a.flags.len(), flags(&d, "postal_code")), (2, 0));
    }
}
