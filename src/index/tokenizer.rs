//! Japanese-aware tokenisers with real positions.
//!
//! [`BigramTokenizer`] splits text into runs: a run of CJK characters (kanji, kana, the long
//! vowel mark, 々) yields overlapping bigrams, one position each, so a phrase query over the
//! bigrams of `大腸炎` matches only where they stand next to each other (tantivy's own
//! `NgramTokenizer` puts every gram at position 0, which turns phrases into "all grams
//! somewhere"). A one-character run yields that character. A run of letters or digits yields
//! one lower-cased word. Everything else separates tokens.
//!
//! Each CJK run's last character is also indexed on its own (index side only), so that every
//! character begins some term: a one-character query (`田`) is a prefix search over terms.
//!
//! Both expect text that is already NFKC-normalised (done once at ingest and on each query), so
//! offsets point into the stored text and snippets highlight the right characters.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

pub const BIGRAM: &str = "ja_bigram";

pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3041}'..='\u{309F}' // hiragana
        | '\u{30A0}'..='\u{30FF}' // katakana (incl. ー)
        | '\u{3400}'..='\u{4DBF}' // CJK ext A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified
        | '\u{F900}'..='\u{FAFF}' // compatibility ideographs
        | '\u{3005}' | '\u{3006}' | '\u{3007}' // 々 〆 〇
        | '\u{20000}'..='\u{2FFFF}')
}

#[derive(Clone, Copy, PartialEq)]
enum Class {
    Cjk,
    Word,
    Sep,
}

fn class(c: char) -> Class {
    if is_cjk(c) {
        Class::Cjk
    } else if c.is_alphanumeric() {
        Class::Word
    } else {
        Class::Sep
    }
}

/// Katakana folded to hiragana, so ヤマダ and やまだ meet (ー and other marks unchanged).
pub fn fold(c: char) -> char {
    match c {
        '\u{30A1}'..='\u{30F6}' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
        _ => c,
    }
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2212}' | '\u{FF0D}')
}

/// Splits `text` into (class, byte start, chars with byte offsets) runs. A hyphen between two
/// digits does not split (03-5320-4472 is one number, the same token as 0353204472).
fn runs(text: &str) -> Vec<(Class, Vec<(usize, char)>)> {
    let mut out: Vec<(Class, Vec<(usize, char)>)> = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (n, &(i, c)) in chars.iter().enumerate() {
        let digit_before = n > 0 && chars[n - 1].1.is_ascii_digit();
        let digit_after = chars.get(n + 1).is_some_and(|(_, d)| d.is_ascii_digit());
        if is_hyphen(c) && digit_before && digit_after {
            continue;
        }
        let k = class(c);
        match out.last_mut() {
            Some((last, chars)) if *last == k && k != Class::Sep => chars.push((i, c)),
            _ if k == Class::Sep => out.push((k, Vec::new())),
            _ => out.push((k, vec![(i, c)])),
        }
    }
    out.retain(|(k, chars)| *k != Class::Sep && !chars.is_empty());
    out
}

fn token(from: usize, to: usize, position: usize, text: String) -> Token {
    Token { offset_from: from, offset_to: to, position, text, position_length: 1 }
}

/// Index-side tokens: bigrams of CJK runs, plus the last character of each run on its own, so
/// that every character starts some token and a one-character query is a prefix search over
/// the terms (no separate unigram field, which would double the index).
pub fn bigram_tokens(text: &str) -> Vec<Token> {
    tokens(text, true)
}

/// Query-side tokens: the same bigrams at the same positions, without the run tails (a
/// phrase must not demand that its last character ends a run in the document).
pub fn query_tokens(text: &str) -> Vec<Token> {
    tokens(text, false)
}

/// The fewest query tokens that still pin every character: within a CJK run, every other
/// bigram plus the last one (イン・フリ・キシ・マブ for インフリキシマブ instead of all seven),
/// at their own positions. Half the posting lists to intersect, same matches: the empty
/// position after each run (see `tokens`) stops a gapped phrase from bridging two runs.
pub fn cover_tokens(text: &str) -> Vec<Token> {
    let all = query_tokens(text);
    let bigram = |t: &Token| t.text.chars().count() == 2 && t.text.chars().all(is_cjk);
    let mut out: Vec<Token> = Vec::with_capacity(all.len());
    let mut i = 0;
    while i < all.len() {
        // A run of CJK bigrams: consecutive positions.
        let mut j = i;
        while bigram(&all[i]) && j + 1 < all.len() && all[j + 1].position == all[j].position + 1 && bigram(&all[j + 1])
        {
            j += 1;
        }
        if j > i {
            let mut k = i;
            while k < j {
                out.push(all[k].clone());
                k += 2;
            }
            out.push(all[j].clone());
        } else {
            out.extend(all[i..=j].iter().cloned());
        }
        i = j + 1;
    }
    out
}

fn tokens(text: &str, tails: bool) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    for (k, chars) in runs(text) {
        let end_of = |j: usize| chars[j].0 + chars[j].1.len_utf8();
        match k {
            Class::Cjk if chars.len() == 1 => {
                tokens.push(token(chars[0].0, end_of(0), pos, fold(chars[0].1).to_string()));
                pos += 1;
            }
            Class::Cjk => {
                for j in 0..chars.len() - 1 {
                    let s: String = [fold(chars[j].1), fold(chars[j + 1].1)].iter().collect();
                    tokens.push(token(chars[j].0, end_of(j + 1), pos, s));
                    pos += 1;
                }
                let last = chars.len() - 1;
                if tails {
                    tokens.push(token(chars[last].0, end_of(last), pos, fold(chars[last].1).to_string()));
                }
                // The tail's position, then one left empty: bigrams of different runs are
                // never two positions apart, so a gapped phrase (see `cover_tokens`) cannot
                // bridge a run boundary.
                pos += 2;
            }
            Class::Word => {
                let s: String = chars.iter().map(|(_, c)| *c).collect::<String>().to_lowercase();
                tokens.push(token(chars[0].0, end_of(chars.len() - 1), pos, s));
                pos += 1;
            }
            Class::Sep => {}
        }
    }
    tokens
}

/// Yields pre-computed tokens.
pub struct VecTokenStream {
    tokens: Vec<Token>,
    idx: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.idx < self.tokens.len() {
            self.idx += 1;
            true
        } else {
            false
        }
    }
    fn token(&self) -> &Token {
        &self.tokens[self.idx - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.idx - 1]
    }
}

#[derive(Clone, Default)]
pub struct BigramTokenizer;

impl Tokenizer for BigramTokenizer {
    type TokenStream<'a> = VecTokenStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream { tokens: bigram_tokens(text), idx: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(tokens: &[Token]) -> Vec<(String, usize)> {
        tokens.iter().map(|t| (t.text.clone(), t.position)).collect()
    }

    #[test]
    fn bigrams_have_increasing_positions() {
        let t = query_tokens("潰瘍性大腸炎");
        assert_eq!(
            texts(&t),
            vec![("潰瘍".into(), 0), ("瘍性".into(), 1), ("性大".into(), 2), ("大腸".into(), 3), ("腸炎".into(), 4)]
        );
        assert_eq!(&"潰瘍性大腸炎"[t[3].offset_from..t[3].offset_to], "大腸");
    }

    #[test]
    fn mixed_runs_words_and_single_chars() {
        let t = query_tokens("氏名 山田 太郎 TEL 03-5320 田");
        let words: Vec<_> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(words, vec!["氏名", "山田", "太郎", "tel", "035320", "田"]);
        let positions: Vec<_> = t.iter().map(|t| t.position).collect();
        assert_eq!(positions, vec![0, 3, 6, 9, 10, 11], "a run tail and a gap follow each run");
    }

    #[test]
    fn kana_folds_and_hyphenated_numbers_join() {
        let a: Vec<_> = bigram_tokens("ヤマダ").into_iter().map(|t| t.text).collect();
        let b: Vec<_> = bigram_tokens("やまだ").into_iter().map(|t| t.text).collect();
        assert_eq!(a, b);
        let t = query_tokens("TEL 03-5320-4472 内線 12-3");
        let words: Vec<_> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(words, vec!["tel", "0353204472", "内線", "123"]);
        assert_eq!(&"TEL 03-5320-4472"[t[1].offset_from..t[1].offset_to], "03-5320-4472");
        let t = query_tokens("A-B 5-");
        assert_eq!(t.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), vec!["a", "b", "5"]);
    }

    #[test]
    fn run_tails_index_side_only() {
        let idx = texts(&bigram_tokens("山田 a 太"));
        assert_eq!(idx, vec![("山田".into(), 0), ("田".into(), 1), ("a".into(), 3), ("太".into(), 4)]);
        let q = texts(&query_tokens("山田 a 太"));
        assert_eq!(q, vec![("山田".into(), 0), ("a".into(), 3), ("太".into(), 4)], "same positions, no tail");
    }

    #[test]
    fn cover_pins_every_character_with_half_the_bigrams() {
        let c = texts(&cover_tokens("インフリキシマブ"));
        assert_eq!(c, vec![("いん".into(), 0), ("ふり".into(), 2), ("きし".into(), 4), ("まぶ".into(), 6)]);
        let c = texts(&cover_tokens("潰瘍性大腸炎"));
        assert_eq!(c, vec![("潰瘍".into(), 0), ("性大".into(), 2), ("腸炎".into(), 4)]);
        let c = texts(&cover_tokens("東京都 TEL 03 ab cd ef"));
        let want = [("東京", 0), ("京都", 1), ("tel", 4), ("03", 5), ("ab", 6), ("cd", 7), ("ef", 8)];
        assert_eq!(c, want.iter().map(|(t, p)| (t.to_string(), *p)).collect::<Vec<_>>());
        assert_eq!(texts(&cover_tokens("山田")), vec![("山田".into(), 0)]);
    }
}
