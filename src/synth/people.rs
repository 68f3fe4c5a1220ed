//! Plausible applicants drawn from real reference lists (reference-data/, see its README for
//! sources and licences): names with readings, Tokyo postal codes with towns, designated
//! intractable diseases.

use chrono::NaiveDate;
use rand::Rng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::jp;

const NAMES: &str = include_str!("../../reference-data/japanese-names.tsv");
const POSTAL: &str = include_str!("../../reference-data/tokyo-postal-codes.tsv");
const DISEASES: &str = include_str!("../../reference-data/designated-intractable-diseases.tsv");

pub(crate) struct Name {
    kanji: &'static str,
    katakana: &'static str,
}

pub(crate) struct Town {
    postal: &'static str,
    city: &'static str,
    town: &'static str,
}

/// The parsed reference lists, loaded once per synth run.
pub(crate) struct Reference {
    surnames: Vec<Name>,
    male: Vec<Name>,
    female: Vec<Name>,
    towns: Vec<Town>,
    diseases: Vec<&'static str>,
}

impl Reference {
    pub(crate) fn load() -> Reference {
        let (mut surnames, mut male, mut female) = (Vec::new(), Vec::new(), Vec::new());
        for line in NAMES.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 4 {
                continue;
            }
            let n = Name { kanji: cols[1], katakana: cols[3] };
            match cols[0] {
                "surname" => surnames.push(n),
                "given_male" => male.push(n),
                "given_female" => female.push(n),
                _ => {}
            }
        }
        let towns = POSTAL
            .lines()
            .skip(1)
            .filter_map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                // Rows whose note is set are catch-alls ("以下に掲載がない場合"), not addresses.
                (c.len() >= 7 && !c[3].is_empty() && c[6].is_empty() && !c[3].contains('（')).then(|| Town {
                    postal: c[0],
                    city: c[2],
                    town: c[3],
                })
            })
            .collect();
        let diseases = DISEASES.lines().skip(1).filter_map(|l| l.split('\t').nth(1)).collect();
        Reference { surnames, male, female, towns, diseases }
    }
}

/// Everything a set of forms says about one applicant, as written on paper.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub name: String,
    pub kana: String,
    pub sex: String,
    pub birth_date: String,
    pub birth_date_iso: NaiveDate,
    pub postal_code: String,
    pub address: String,
    /// Municipality (区市町村) of the address.
    pub city: String,
    pub phone: String,
    pub insurer_number: String,
    /// 記号 and 番号 of the health insurance card, written in two boxes of one row.
    pub insured_symbol: String,
    pub insured_number: String,
    /// 申請区分: 新規, 更新 or 変更 (a choice of three boxes).
    pub application_type: String,
    /// 受給者番号: a renewing or changing recipient writes theirs (7 digits); empty for 新規.
    pub recipient_no: String,
    /// Checkboxes: 高額かつ長期 and 人工呼吸器等装着者.
    pub high_cost: bool,
    pub ventilator: bool,
    pub my_number: String,
    pub disease: String,
    pub application_date: String,
    pub hospital: String,
    pub doctor: String,
}

fn digits(rng: &mut impl Rng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

pub fn my_number(rng: &mut impl Rng) -> String {
    let mut body = [0u8; 11];
    for d in &mut body {
        *d = rng.gen_range(0..10);
    }
    let check = jp::my_number_check_digit(&body);
    body.iter().chain(std::iter::once(&check)).map(|d| char::from(b'0' + d)).collect()
}

/// The most common designated diseases and their rough share of certified patients (MHLW
/// statistics: ulcerative colitis and Parkinson's disease lead by far); the rest share the
/// remainder uniformly. Keeps synthetic archives as skewed as real ones.
const COMMON_DISEASES: &[(&str, f64)] = &[
    ("潰瘍性大腸炎", 0.20),
    ("パーキンソン病", 0.12),
    ("全身性エリテマトーデス", 0.05),
    ("クローン病", 0.05),
    ("後縦靱帯骨化症", 0.03),
    ("重症筋無力症", 0.03),
];

fn disease(r: &Reference, rng: &mut impl Rng) -> String {
    let mut x = rng.gen_range(0.0..1.0);
    for (name, share) in COMMON_DISEASES {
        if x < *share {
            return (*name).to_string();
        }
        x -= share;
    }
    r.diseases.choose(rng).expect("diseases").to_string()
}

const HOSPITALS: &[&str] =
    &["都立駒込病院", "都立広尾病院", "都立墨東病院", "都立多摩総合医療センター", "都立大塚病院", "都立松沢病院"];

pub(crate) fn person(r: &Reference, rng: &mut impl Rng) -> Person {
    let male = rng.gen_bool(0.5);
    let sur = r.surnames.choose(rng).expect("surnames");
    let given = if male { &r.male } else { &r.female }.choose(rng).expect("given names");
    let birth =
        NaiveDate::from_ymd_opt(1935, 1, 1).expect("date") + chrono::Duration::days(rng.gen_range(0..(85 * 365)));
    let town = r.towns.choose(rng).expect("towns");
    let address = format!(
        "東京都{}{}{}丁目{}番{}号",
        town.city,
        town.town,
        rng.gen_range(1..6),
        rng.gen_range(1..30),
        rng.gen_range(1..20)
    );
    let applied = NaiveDate::from_ymd_opt(2026, 4, 1).expect("date") + chrono::Duration::days(rng.gen_range(0..200));
    let doctor_sur = r.surnames.choose(rng).expect("surnames");
    let doctor_given = r.male.choose(rng).expect("names");
    let mut p = Person {
        name: format!("{}　{}", sur.kanji, given.kanji),
        kana: format!("{}　{}", sur.katakana, given.katakana),
        sex: if male { "男" } else { "女" }.into(),
        birth_date: jp::format_era(birth).expect("after Meiji"),
        birth_date_iso: birth,
        postal_code: format!("{}-{}", &town.postal[..3], &town.postal[3..]),
        address,
        city: town.city.to_owned(),
        phone: format!("03-{}-{}", digits(rng, 4), digits(rng, 4)),
        insurer_number: format!("{}{}", ["01", "06", "31", "67"].choose(rng).expect("x"), digits(rng, 6)),
        insured_symbol: digits(rng, 8),
        insured_number: digits(rng, 3),
        recipient_no: String::new(),
        application_type: ["新規", "更新", "変更"][rng.gen_range(0..3)].into(),
        high_cost: rng.gen_bool(0.3),
        ventilator: rng.gen_bool(0.1),
        my_number: my_number(rng),
        disease: disease(r, rng),
        application_date: jp::format_era(applied).expect("Reiwa"),
        hospital: HOSPITALS.choose(rng).expect("x").to_string(),
        doctor: format!("{}　{}", doctor_sur.kanji, doctor_given.kanji),
    };
    // Derived, not drawn: the recipient number is a function of the person, so the random
    // stream (hence every other synthetic value of a seed) stays as it was.
    if p.application_type != "新規" {
        let h = blake3::hash(format!("{}{}", p.name, p.birth_date).as_bytes());
        p.recipient_no =
            format!("13{:05}", u32::from_le_bytes(h.as_bytes()[..4].try_into().expect("4 bytes")) % 100_000);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn people_are_plausible_and_my_numbers_valid() {
        let r = Reference::load();
        assert!(r.surnames.len() >= 400 && r.towns.len() > 1500 && r.diseases.len() > 300);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let p = person(&r, &mut rng);
            assert!(jp::my_number_valid(&p.my_number), "{}", p.my_number);
            assert!(p.address.starts_with("東京都"));
            assert_eq!(jp::parse_era(&p.birth_date), Some(p.birth_date_iso));
            assert!(r.diseases.contains(&p.disease.as_str()), "{} is a designated disease", p.disease);
        }
    }
}
