//! The fuzzy tier: pages that hold a searched word one or two characters off (OCR dropped
//! 式 from 株式会社, read 產 for 産 or リ for ソ), found after the exact hits and marked as
//! near spellings (「近い表記」).
//!
//! How: a word of three or more characters becomes "enough of its bigrams" (a disjunction
//! with a minimum number that must match, sized so that [`allowed`] edits can still pass:
//! one edit breaks at most two bigrams), ranked by BM25, the exact matches excluded. The best
//! [`POOL`] candidates are then checked on their stored text: the word must occur with at most
//! [`allowed`] edits (Levenshtein distance to the closest stretch of the text, spaces
//! ignored), and the survivors are ordered by that distance, then by score. Bigram overlap
//! finds candidates from posting lists alone; the edit distance on a few stored texts is what
//! makes the tier precise (bigram overlap alone would pass anagrams and scattered bigrams).

use tantivy::Term;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

use super::tokenizer;

/// Candidates checked on their stored text per search.
pub const POOL: usize = 64;

/// Shortest word (in characters, spaces aside) that gets a fuzzy tier: one edit in a
/// two-character word matches half the archive.
const SHORTEST: usize = 3;

/// Longest word that gets a fuzzy tier: the check is quadratic in the word's length (and no
/// name or term is this long; a pasted paragraph is searched exactly).
const LONGEST: usize = 32;

/// Edits a word of `len` characters may be off by: one up to four characters, two beyond.
pub fn allowed(len: usize) -> usize {
    if len <= 4 { 1 } else { 2 }
}

/// The word as the fuzzy tier compares it: normalised, folded, without spaces.
pub fn comparable(s: &str) -> Vec<char> {
    super::fold::fold_str(&super::normalise(s)).chars().filter(|c| !c.is_whitespace()).collect()
}

/// The candidate query for `value` in `fields`: documents holding enough of its distinct
/// bigrams. `None` for a word too short, or one with no bigrams (digits, letters).
pub fn candidates(fields: &[Field], value: &str) -> Option<Box<dyn Query>> {
    let word = comparable(value);
    if !(SHORTEST..=LONGEST).contains(&word.len()) {
        return None;
    }
    let text: String = word.iter().collect();
    let mut grams: Vec<String> = tokenizer::query_tokens(&text)
        .into_iter()
        .map(|t| t.text)
        .filter(|t| t.chars().count() == 2 && t.chars().any(tokenizer::is_cjk))
        .collect();
    grams.sort();
    grams.dedup();
    if grams.is_empty() {
        return None;
    }
    let need = grams.len().saturating_sub(2 * allowed(word.len())).max(1);
    let terms: Vec<(Occur, Box<dyn Query>)> = fields
        .iter()
        .flat_map(|f| {
            grams.iter().map(move |g| {
                let q = TermQuery::new(Term::from_field_text(*f, g), IndexRecordOption::WithFreqs);
                (Occur::Should, Box::new(q) as Box<dyn Query>)
            })
        })
        .collect();
    // Over several fields a bigram counts once per field it is in: the minimum stays that
    // of one field (a name field adds to the text's evidence, it does not replace it).
    Some(Box::new(BooleanQuery::with_minimum_required_clauses(terms, need)))
}

/// The fewest edits that turn `word` into some stretch of `text` (semi-global Levenshtein:
/// free to start and end anywhere in the text). Stops early once every cell exceeds `cap`
/// (returns `cap + 1`).
pub fn distance_in(word: &[char], text: &[char], cap: usize) -> usize {
    let m = word.len();
    if m == 0 {
        return 0;
    }
    // Column over the word: cost[i] = edits to match word[..i] ending at the current text char.
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut best = prev[m];
    let mut cur = vec![0; m + 1];
    for &t in text {
        cur[0] = 0;
        for i in 1..=m {
            let sub = prev[i - 1] + usize::from(word[i - 1] != t);
            cur[i] = sub.min(prev[i] + 1).min(cur[i - 1] + 1);
        }
        best = best.min(cur[m]);
        if best == 0 {
            return 0;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    best.min(cap + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(word: &str, text: &str) -> usize {
        distance_in(&comparable(word), &comparable(text), 3)
    }

    #[test]
    fn edit_distance_to_the_closest_stretch() {
        assert_eq!(d("株式会社", "申請者 山田株会社 様"), 1, "a dropped character");
        assert_eq!(d("東洋産業", "東洋產業株式会社"), 1, "產 for 産 (no table links them): one edit");
        assert_eq!(d("パーキンソン", "パーキンリン病"), 1, "リ for ソ");
        assert_eq!(d("山田太郎", "氏名 山田 太郎"), 0, "spaces ignored");
        assert_eq!(d("山田太郎", "氏名 田中 次郎"), 3);
        assert_eq!(d("澤田", "沢田"), 0, "variants folded");
        assert_eq!(distance_in(&comparable("abcdef"), &comparable("zzzzzz"), 2), 3, "capped");
    }

    #[test]
    fn short_words_get_no_fuzzy_tier_and_the_minimum_leaves_room_for_edits() {
        let f = tantivy::schema::Schema::builder().add_text_field("t", tantivy::schema::TEXT);
        assert!(candidates(&[f], "山田").is_none());
        assert!(candidates(&[f], "0312345678").is_none());
        assert!(candidates(&[f], "株式会社").is_some());
        assert!(candidates(&[f], &"株式会社".repeat(10)).is_none(), "too long to check");
        assert_eq!(allowed(4), 1);
        assert_eq!(allowed(8), 2);
    }
}
