//! Which case is this page about, when no number on it says so? The page's name, reading,
//! birth date and address are compared with each candidate case (found through keyed-hash
//! blocks on birth date and reading, see `app::linking`); each candidate gets a score and the
//! reasons for it, in words a reviewer weighs. Pure: no storage.

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;

use super::CaseFields;

/// What a page says about its person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub name: String,
    pub kana: String,
    pub birth_date: Option<NaiveDate>,
    pub address: String,
}

/// A case that may be the page's, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub recipient_no: String,
    pub name: String,
    /// 0..=1: the share of the page's evidence that agrees.
    pub score: f32,
    pub reasons: Vec<String>,
    /// Birth date and a name or reading equal, and nothing the page says disagrees.
    pub strong: bool,
}

/// A top candidate at or above this, with the runner-up below [`RUNNER_UP_MAX`], links
/// without a person (all of its evidence agrees and no other case comes close).
pub const AUTO_MIN: f32 = 0.95;
pub const RUNNER_UP_MAX: f32 = 0.6;
/// Below this a case is not shown as a candidate at all.
pub const SHOW_MIN: f32 = 0.35;

/// Names and readings compare without spaces and in NFKC (全角/半角, 　 vs space).
pub fn fold(s: &str) -> String {
    s.nfkc().filter(|c| !c.is_whitespace()).collect()
}

fn similarity(a: &str, b: &str) -> f64 {
    strsim::normalized_levenshtein(&fold(a), &fold(b))
}

/// Scores `case` against `probe`. Weights: reading 0.35, name 0.25, birth date 0.25, address
/// 0.15, counted only for what the page has (a clinical survey has no reading).
pub fn score(probe: &Probe, case: &CaseFields) -> Candidate {
    let mut got = 0.0f64;
    let mut possible = 0.0f64;
    let mut reasons = Vec::new();
    let mut exact_identity = false;
    let mut disagrees = false;
    let mut text = |label: &str, page: &str, known: &str, weight: f64, identity: bool| {
        if page.trim().is_empty() {
            return;
        }
        possible += weight;
        if known.trim().is_empty() {
            return;
        }
        let sim = similarity(page, known);
        if sim >= 0.999 {
            got += weight;
            reasons.push(format!("{label}一致"));
            exact_identity |= identity;
        } else if sim >= 0.7 {
            got += weight * sim;
            reasons.push(format!("{label}類似（{:.0}%）", sim * 100.0));
            disagrees |= identity;
        } else {
            disagrees = true;
        }
    };
    text("フリガナ", &probe.kana, &case.kana, 0.35, true);
    text("氏名", &probe.name, &case.name, 0.25, true);
    text("住所", &probe.address, &case.address, 0.15, false);
    let mut birth_equal = false;
    if let Some(b) = probe.birth_date {
        possible += 0.25;
        if b == case.birth_date {
            got += 0.25;
            birth_equal = true;
            reasons.push("生年月日一致".into());
        } else {
            disagrees = true;
            reasons.push(format!("生年月日不一致（台帳 {}）", case.birth_date));
        }
    }
    let score = if possible > 0.0 { (got / possible) as f32 } else { 0.0 };
    Candidate {
        recipient_no: case.recipient_no.clone(),
        name: case.name.clone(),
        score,
        reasons,
        strong: birth_equal && exact_identity && !disagrees,
    }
}

/// Ranks candidates best first, dropping the ones below [`SHOW_MIN`].
pub fn rank(mut cands: Vec<Candidate>) -> Vec<Candidate> {
    cands.retain(|c| c.score >= SHOW_MIN);
    cands.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.recipient_no.cmp(&b.recipient_no)));
    cands
}

/// The one candidate to link without asking, if the ranking is unambiguous.
pub fn unambiguous(ranked: &[Candidate]) -> Option<&Candidate> {
    let top = ranked.first()?;
    let runner_up = ranked.get(1).map_or(0.0, |c| c.score);
    (top.strong && top.score >= AUTO_MIN && runner_up < RUNNER_UP_MAX).then_some(top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::CaseStatus;

    fn case(no: &str, name: &str, kana: &str, birth: &str, address: &str) -> CaseFields {
        CaseFields {
            recipient_no: no.into(),
            application_no: String::new(),
            name: name.into(),
            kana: kana.into(),
            birth_date: birth.parse().unwrap(),
            address: address.into(),
            disease: String::new(),
            valid_from: None,
            valid_to: None,
            status: CaseStatus::Received,
            my_number: None,
        }
    }

    fn probe() -> Probe {
        Probe {
            name: "山田 太郎".into(),
            kana: "ヤマダ タロウ".into(),
            birth_date: Some("1960-05-01".parse().unwrap()),
            address: "東京都新宿区西新宿2丁目8番1号".into(),
        }
    }

    #[test]
    fn one_agreeing_case_links_by_itself() {
        let c = case("1", "山田　太郎", "ヤマダタロウ", "1960-05-01", "東京都新宿区西新宿2丁目8番1号");
        let ranked = rank(vec![score(&probe(), &c)]);
        let top = unambiguous(&ranked).expect("unambiguous");
        assert!(top.score > 0.99 && top.strong, "{top:?}");
        assert_eq!(top.reasons, ["フリガナ一致", "氏名一致", "住所一致", "生年月日一致"]);
    }

    #[test]
    fn namesakes_with_one_birth_date_are_ambiguous() {
        // Same name, same birth date, different address: both strong, a person decides.
        let a = case("1", "山田 太郎", "ヤマダ タロウ", "1960-05-01", "東京都新宿区西新宿2丁目8番1号");
        let b = case("2", "山田 太郎", "ヤマダ タロウ", "1960-05-01", "東京都八王子市元本郷町3丁目24番1号");
        let ranked = rank(vec![score(&probe(), &b), score(&probe(), &a)]);
        assert_eq!(ranked[0].recipient_no, "1", "the better address first");
        assert!(ranked[1].score >= RUNNER_UP_MAX);
        assert!(unambiguous(&ranked).is_none());
    }

    #[test]
    fn a_different_birth_date_is_shown_but_never_automatic() {
        let c = case("1", "山田 太郎", "ヤマダ タロウ", "1961-05-01", "東京都新宿区西新宿2丁目8番1号");
        let ranked = rank(vec![score(&probe(), &c)]);
        assert_eq!(ranked.len(), 1);
        assert!(ranked[0].reasons.iter().any(|r| r.starts_with("生年月日不一致")));
        assert!(unambiguous(&ranked).is_none());
        // A stranger is not a candidate.
        let stranger = case("9", "佐藤 花子", "サトウ ハナコ", "1990-01-01", "東京都町田市");
        assert!(rank(vec![score(&probe(), &stranger)]).is_empty());
    }

    #[test]
    fn a_page_without_a_reading_is_scored_on_what_it_has() {
        let p = Probe { kana: String::new(), address: String::new(), ..probe() };
        let c = case("1", "山田 太郎", "ヤマダ タロウ", "1960-05-01", "");
        let s = score(&p, &c);
        assert!(s.score > 0.99 && s.strong, "{s:?}");
    }
}
