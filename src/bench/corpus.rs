//! A synthetic archive for the search benchmark: documents that read like OCR text of the
//! real forms (labels, an applicant drawn like `synth`, ~1,500 characters of clinical
//! narrative), regenerated from their number so several engines index the same corpus
//! without holding it in memory; and a fixed mix of queries over the same vocabulary.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::index::Doc;
use crate::synth::people::{Reference, person};

const SYMPTOMS: &[&str] = &[
    "腹痛",
    "下痢",
    "血便",
    "発熱",
    "倦怠感",
    "体重減少",
    "関節痛",
    "筋力低下",
    "振戦",
    "歩行障害",
    "嚥下障害",
    "構音障害",
    "視力低下",
    "複視",
    "眼瞼下垂",
    "呼吸困難",
    "咳嗽",
    "皮疹",
    "口内炎",
    "浮腫",
    "しびれ",
    "めまい",
    "頭痛",
    "便秘",
    "貧血",
    "黄疸",
    "腹部膨満",
    "易疲労感",
    "筋強剛",
    "無動",
];
const DRUGS: &[&str] = &[
    "メサラジン",
    "プレドニゾロン",
    "アザチオプリン",
    "インフリキシマブ",
    "アダリムマブ",
    "ウステキヌマブ",
    "ベドリズマブ",
    "トファシチニブ",
    "レボドパ",
    "カルビドパ",
    "プラミペキソール",
    "ロピニロール",
    "エンタカポン",
    "セレギリン",
    "アマンタジン",
    "ピリドスチグミン",
    "タクロリムス",
    "シクロスポリン",
    "メトトレキサート",
    "ヒドロキシクロロキン",
    "リツキシマブ",
    "トシリズマブ",
    "エクリズマブ",
    "免疫グロブリン",
];
const TESTS: &[&str] = &[
    "大腸内視鏡検査",
    "頭部MRI",
    "胸部CT",
    "血液検査",
    "尿検査",
    "筋電図",
    "髄液検査",
    "心電図",
    "腹部超音波",
    "DaTスキャン",
    "MIBG心筋シンチグラフィ",
    "骨密度検査",
    "呼吸機能検査",
    "眼底検査",
    "生検",
];
const SENTENCES: &[&str] = &[
    "{date}頃より{symptom}を自覚し、近医を受診した。",
    "{test}にて異常所見を認め、当院紹介となった。",
    "{drug}を{n}mg/日で開始し、{symptom}は改善傾向である。",
    "経過中に{symptom}の増悪を認めたため、{drug}を追加した。",
    "{test}の結果、炎症所見は軽度であった。",
    "CRP {n}.{m}mg/dL、白血球数{n}00/μL、ヘモグロビン{m}.{n}g/dLであった。",
    "日常生活動作は概ね自立しているが、{symptom}のため外出は困難である。",
    "重症度分類では中等症に該当し、医療費助成の対象と判断する。",
    "前回更新時と比較して{symptom}の頻度は減少している。",
    "{drug}による副作用として{symptom}が出現したため減量した。",
    "家族歴に特記すべき事項はない。既往歴として高血圧症がある。",
    "入院加療を要し、{date}に退院した。",
    "外来にて月{m}回の通院を継続している。",
    "{test}を{date}に施行し、前回と比較して著変はない。",
    "修正ランキンスケールは{m}、バーセル指数は{n}点であった。",
    "発症は{date}で、診断確定は{date}である。",
    "{symptom}及び{symptom}が持続しており、継続的な治療が必要である。",
    "指定難病の診断基準を満たしており、臨床調査個人票のとおり申請する。",
    "高額な医療費が継続しており、軽症高額該当の基準を満たす。",
    "人工呼吸器等装着者には該当しない。",
    "主治医意見として、今後も{drug}の投与継続が望ましい。",
    "通院先は{hospital}で、主治医は{doctor}医師である。",
];

/// What a document holds beyond its text, for queries drawn from the same corpus.
pub struct Corpus {
    reference: Reference,
    seed: u64,
    /// The receipt dates span five years ending here.
    until: NaiveDate,
}

impl Corpus {
    pub fn new(seed: u64) -> Corpus {
        Corpus { reference: Reference::load(), seed, until: NaiveDate::from_ymd_opt(2026, 10, 31).expect("date") }
    }

    fn rng(&self, salt: u64, n: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(
            self.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xBF58_476D_1CE4_E5B9),
        )
    }

    /// Whether document `n` holds its applicant's name misread (one in [`MISREAD_EVERY`]), as
    /// OCR misreads: a character dropped, a look-alike or variant read instead, or another
    /// character altogether. Returns the true name (family and given name, no space) and the
    /// name as the document holds it.
    pub fn misread(&self, n: u64) -> Option<(String, String)> {
        if n % MISREAD_EVERY != 7 {
            return None;
        }
        let mut rng = self.rng(1, n);
        let p = person(&self.reference, &mut rng);
        let truth: String = p.name.chars().filter(|c| !c.is_whitespace()).collect();
        let mut rng = self.rng(3, n);
        Some((truth, misread_name(&p.name, &mut rng)))
    }

    /// Document `n` (always the same for the same seed).
    pub fn doc(&self, n: u64) -> Doc {
        let mut rng = self.rng(1, n);
        let mut p = person(&self.reference, &mut rng);
        if let Some((_, read)) = self.misread(n) {
            p.name = read;
        }
        let case_no = format!("{:08}", 10_000_000 + (n / 4) % 90_000_000);
        let form = ["application", "clinical_survey", "my_number_form", "proof"][(n % 4) as usize];
        let received: DateTime<Utc> =
            (self.until - Duration::days(rng.gen_range(0..5 * 365))).and_hms_opt(1, 0, 0).expect("time").and_utc();
        let title = match form {
            "application" => "特定医療費（指定難病）支給認定申請書",
            "clinical_survey" => "臨床調査個人票（更新）",
            "my_number_form" => "個人番号に係る調書",
            _ => "添付書類 健康保険証の写し",
        };
        let mut text = format!(
            "{title} 受給者番号 {case_no} 氏名 {} フリガナ {} 生年月日 {} 性別 {} 住所 〒{} {} 電話番号 {} \
             保険者番号 {} 記号・番号 {} 病名 {} 医療機関 {} 主治医 {} 申請日 {} ",
            p.name,
            p.kana,
            p.birth_date,
            p.sex,
            p.postal_code,
            p.address,
            p.phone,
            p.insurer_number,
            p.insured_symbol,
            p.disease,
            p.hospital,
            p.doctor,
            p.application_date
        );
        while text.chars().count() < 1500 {
            let s = SENTENCES.choose(&mut rng).expect("sentences");
            let mut out = String::with_capacity(s.len() + 32);
            let mut rest = *s;
            while let Some(i) = rest.find('{') {
                out.push_str(&rest[..i]);
                let j = rest[i..].find('}').map_or(rest.len(), |j| i + j);
                match &rest[i + 1..j] {
                    "symptom" => out.push_str(SYMPTOMS.choose(&mut rng).expect("x")),
                    "drug" => out.push_str(DRUGS.choose(&mut rng).expect("x")),
                    "test" => out.push_str(TESTS.choose(&mut rng).expect("x")),
                    "hospital" => out.push_str(&p.hospital),
                    "doctor" => out.push_str(&p.doctor),
                    "date" => out.push_str(&format!("{}年{}月", rng.gen_range(2005..2026), rng.gen_range(1..13))),
                    "n" => out.push_str(&rng.gen_range(1..400).to_string()),
                    _ => out.push_str(&rng.gen_range(1..10).to_string()),
                }
                rest = &rest[(j + 1).min(rest.len())..];
            }
            out.push_str(rest);
            text.push_str(&out);
        }
        Doc {
            case_no: Some(case_no),
            name: Some(p.name),
            kana: Some(p.kana),
            birth: Some(p.birth_date_iso),
            city: Some(p.city),
            disease: Some(p.disease),
            status: Some(["received", "reviewing", "approved", "notified"][(n % 4) as usize].to_owned()),
            ..Doc { form: form.to_owned(), ..Doc::page(&format!("{n:032x}"), &text, received) }
        }
    }

    /// The fixed query mix: 30% one word, 25% two words, 15% phrase, 15% field filter, 15%
    /// date range.
    pub fn queries(&self, count: usize) -> Vec<BenchQuery> {
        let mut rng = self.rng(2, 0);
        (0..count)
            .map(|i| {
                let sample = self.doc(rng.gen_range(0..1_000_000));
                let city = sample.city.clone().unwrap_or_default();
                let disease = sample.disease.clone().unwrap_or_default();
                let surname =
                    sample.name.as_deref().and_then(|n| n.split('\u{3000}').next()).unwrap_or("山田").to_owned();
                let word = |rng: &mut ChaCha8Rng| -> String {
                    match rng.gen_range(0..4) {
                        0 => surname.clone(),
                        1 => disease.clone(),
                        2 => SYMPTOMS.choose(rng).expect("x").to_string(),
                        _ => DRUGS.choose(rng).expect("x").to_string(),
                    }
                };
                let kind = match i % 20 {
                    0..=5 => QueryKind::Word,
                    6..=10 => QueryKind::TwoWords,
                    11..=13 => QueryKind::Phrase,
                    14..=16 => QueryKind::Field,
                    _ => QueryKind::DateRange,
                };
                let mut q = BenchQuery { kind, words: vec![], phrase: None, city: None, range: None };
                match kind {
                    QueryKind::Word => q.words.push(word(&mut rng)),
                    QueryKind::TwoWords => {
                        q.words.push(word(&mut rng));
                        q.words.push(city.clone());
                    }
                    QueryKind::Phrase => {
                        q.phrase = Some(if rng.gen_bool(0.5) {
                            format!("{}を追加", DRUGS.choose(&mut rng).expect("x"))
                        } else {
                            format!("{}の結果", TESTS.choose(&mut rng).expect("x"))
                        })
                    }
                    QueryKind::Field => {
                        q.words.push(word(&mut rng));
                        q.city = Some(city.clone());
                    }
                    QueryKind::DateRange => {
                        q.words.push(word(&mut rng));
                        let from = self.until - Duration::days(rng.gen_range(60..5 * 365));
                        q.range = Some((from, from + Duration::days(rng.gen_range(30..180))));
                    }
                }
                q
            })
            .collect()
    }
}

/// One document in this many has its applicant's name misread.
pub const MISREAD_EVERY: u64 = 50;

/// Characters OCR confuses with each other in names (look-alikes and old/new forms).
const CONFUSED: &[(char, char)] = &[
    ('田', '由'),
    ('日', '目'),
    ('木', '本'),
    ('未', '末'),
    ('土', '士'),
    ('大', '太'),
    ('人', '入'),
    ('千', '干'),
    ('王', '玉'),
    ('崎', '﨑'),
    ('沢', '澤'),
    ('辺', '邊'),
    ('高', '髙'),
    ('島', '嶋'),
    ('浜', '濱'),
    ('広', '廣'),
    ('斉', '斎'),
    ('藤', '籐'),
    ('子', '了'),
    ('郎', '朗'),
    ('美', '実'),
    ('恵', '惠'),
    ('川', '州'),
    ('井', '并'),
];

/// `name` (family and given name, a space between) as OCR might read it: one edit.
fn misread_name(name: &str, rng: &mut ChaCha8Rng) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (0..chars.len()).filter(|&i| !chars[i].is_whitespace()).collect();
    let confusable: Vec<(usize, char)> = letters
        .iter()
        .filter_map(|&i| {
            CONFUSED
                .iter()
                .find_map(|&(a, b)| (chars[i] == a).then_some((i, b)).or_else(|| (chars[i] == b).then_some((i, a))))
        })
        .collect();
    match rng.gen_range(0..10) {
        0..=3 if !confusable.is_empty() => {
            let (i, c) = *confusable.choose(rng).expect("non-empty");
            chars[i] = c;
        }
        0..=6 if letters.len() >= 4 => {
            chars.remove(*letters.choose(rng).expect("letters"));
        }
        _ => {
            let i = *letters.choose(rng).expect("letters");
            let others: Vec<char> = "川山野中村小原内石谷".chars().filter(|c| *c != chars[i]).collect();
            chars[i] = *others.choose(rng).expect("others");
        }
    }
    chars.into_iter().collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Word,
    TwoWords,
    Phrase,
    Field,
    DateRange,
}

/// One benchmark query, rendered for each engine.
#[derive(Debug, Clone)]
pub struct BenchQuery {
    pub kind: QueryKind,
    pub words: Vec<String>,
    pub phrase: Option<String>,
    pub city: Option<String>,
    pub range: Option<(NaiveDate, NaiveDate)>,
}

impl BenchQuery {
    /// In hozon's query language.
    pub fn hozon(&self) -> String {
        let mut parts: Vec<String> = self.words.clone();
        if let Some(p) = &self.phrase {
            parts.push(format!("\"{p}\""));
        }
        if let Some(c) = &self.city {
            parts.push(format!("市区町村:{c}"));
        }
        if let Some((a, b)) = &self.range {
            parts.push(format!("受付日:{a}..{b}"));
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_deterministic_and_long_enough() {
        let c = Corpus::new(1);
        let a = c.doc(42);
        let b = c.doc(42);
        assert_eq!(a.text, b.text);
        assert!(a.text.chars().count() >= 1500);
        assert!(a.text.contains(a.case_no.as_deref().unwrap()));
        assert_ne!(c.doc(43).text, a.text);
        let q = c.queries(40);
        assert_eq!(q.iter().filter(|q| q.kind == QueryKind::Word).count(), 12);
        assert!(q.iter().any(|q| q.hozon().contains("受付日:")));
    }
}
