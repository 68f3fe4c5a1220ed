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

/// Katakana folded to hiragana and kanji variants to one form (see [`super::fold`]).
pub fn fold(c: char) -> char {
    super::fold::fold(c)
}

/// What a stretch of text is, for tokenising.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Cjk,
    /// ASCII digits only.
    Digits,
    /// Letters, or letters and digits (`TEL`, `R6`, `abc123`): one lower-cased word.
    Word,
}

/// A maximal stretch of one kind, chars `start..end`.
#[derive(Debug, Clone, Copy)]
struct Unit {
    kind: Kind,
    start: usize,
    end: usize,
}

fn units(chars: &[char]) -> Vec<Unit> {
    #[derive(PartialEq)]
    enum Coarse {
        Cjk,
        AlNum,
        Sep,
    }
    let coarse = |c: char| {
        if is_cjk(c) {
            Coarse::Cjk
        } else if c.is_alphanumeric() {
            Coarse::AlNum
        } else {
            Coarse::Sep
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let k = coarse(chars[i]);
        let mut j = i + 1;
        while j < chars.len() && coarse(chars[j]) == k {
            j += 1;
        }
        let kind = match k {
            Coarse::Cjk => Some(Kind::Cjk),
            Coarse::AlNum if chars[i..j].iter().all(char::is_ascii_digit) => Some(Kind::Digits),
            Coarse::AlNum => Some(Kind::Word),
            Coarse::Sep => None,
        };
        if let Some(kind) = kind {
            out.push(Unit { kind, start: i, end: j });
        }
        i = j;
    }
    out
}

/// Characters that may stand between the groups of one number: 03-5320-4472, (03)1234-5678,
/// 03 1234 5678, 〒160-0023.
fn joins_number(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2013}' | '\u{2212}' | '\u{FF0D}' | '(' | ')' | ' ')
}

/// Most groups of one number joined into a token (a phone number has three).
const CHAIN_WINDOW: usize = 4;

fn token(from: usize, to: usize, position: usize, text: String) -> Token {
    Token { offset_from: from, offset_to: to, position, text, position_length: 1 }
}

/// Index-side tokens: see [`tokens`].
pub fn bigram_tokens(text: &str) -> Vec<Token> {
    tokens(text, Side::Index)
}

/// Query-side tokens: the same bigrams at the same positions, without what only the index
/// needs (run tails, each group of a number on its own); a number written in groups is one
/// token, and a query that is a date is its date token.
pub fn query_tokens(text: &str) -> Vec<Token> {
    if let Some(d) = super::dates::whole(text) {
        return vec![token(0, text.len(), 0, super::dates::token(d))];
    }
    tokens(text, Side::Query)
}

/// A token of a run's bigrams (CJK, or CJK and digits).
fn is_bigram(t: &Token) -> bool {
    let mut cs = t.text.chars();
    match (cs.next(), cs.next(), cs.next(), cs.next()) {
        (Some(a), Some(b), None, _) => is_cjk(a) || is_cjk(b),
        (Some(DIGIT_PAIR), Some(_), Some(_), None) => true,
        _ => false,
    }
}

/// The fewest query tokens that still pin every character: within a run, every other bigram
/// plus the last one (イン・フリ・キシ・マブ for インフリキシマブ instead of all seven), at
/// their own positions. Half the posting lists to intersect, same matches: the empty
/// position after each run (see [`tokens`]) stops a gapped phrase from bridging two runs.
pub fn cover_tokens(text: &str) -> Vec<Token> {
    let all = query_tokens(text);
    let mut out: Vec<Token> = Vec::with_capacity(all.len());
    let mut i = 0;
    while i < all.len() {
        // A run of bigrams: consecutive positions.
        let mut j = i;
        while is_bigram(&all[i])
            && j + 1 < all.len()
            && all[j + 1].position == all[j].position + 1
            && is_bigram(&all[j + 1])
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

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Index,
    Query,
}

/// Marks a bigram of two digits (`#12` inside 2012年), so that it never meets a whole number:
/// `12` finds 12月 and 12, not 2012年.
const DIGIT_PAIR: char = '#';

/// Tokens with positions. A run of CJK characters, with the digits written against them
/// (令和5年12月分, 第5号, 約500万円), yields overlapping bigrams, one position each, so a phrase
/// matches only where its characters stand together; on the index side also its last
/// character on its own (every character then begins some term: a one-character query is a
/// prefix search) and every group of digits in it as a number (`12` finds 12月). A run is
/// followed by one empty position, so that bigrams of different runs are never adjacent (a
/// space is a word boundary). Letters make one lower-cased word. Digit groups joined by
/// hyphens, parentheses or spaces (03-5320-4472, (03)1234-5678) are one number: on the index
/// side every group and every stretch of up to [`CHAIN_WINDOW`] consecutive groups is a token
/// (the last four digits of a phone number find it), on the query side the whole. Dates in
/// any common form are also indexed as `yyyymmdd` ([`super::dates`]).
fn tokens(text: &str, side: Side) -> Vec<Token> {
    let indexed: Vec<(usize, char)> = text.char_indices().collect();
    let chars: Vec<char> = indexed.iter().map(|(_, c)| *c).collect();
    let folded: Vec<char> = (0..chars.len()).map(|i| super::fold::fold_at(&chars, i)).collect();
    let byte = |i: usize| indexed.get(i).map_or(text.len(), |(b, _)| *b);
    let units = units(&chars);
    let mut out: Vec<Token> = Vec::new();
    // Per unit: its position, if it is a group of digits.
    let mut group_at: Vec<Option<usize>> = vec![None; units.len()];
    // Tokens of digit groups standing alone (the query side drops them for their number).
    let mut alone: Vec<Option<usize>> = vec![None; units.len()];
    let mut pos = 0;
    let mut k = 0;
    while k < units.len() {
        // A run: adjacent CJK and digit units, at least one of them CJK.
        let mut e = k;
        while units[e].kind != Kind::Word
            && e + 1 < units.len()
            && units[e + 1].kind != Kind::Word
            && units[e + 1].start == units[e].end
        {
            e += 1;
        }
        if !(k..=e).any(|u| units[u].kind == Kind::Cjk) {
            let u = units[k];
            let s: String = chars[u.start..u.end].iter().collect::<String>().to_lowercase();
            if u.kind == Kind::Digits {
                group_at[k] = Some(pos);
                alone[k] = Some(out.len());
            }
            out.push(token(byte(u.start), byte(u.end), pos, s));
            pos += 1;
            k += 1;
            continue;
        }
        let (s, t) = (units[k].start, units[e].end);
        if t - s == 1 {
            out.push(token(byte(s), byte(t), pos, folded[s].to_string()));
            pos += 1;
            k = e + 1;
            continue;
        }
        for j in s..t - 1 {
            let (a, b) = (folded[j], folded[j + 1]);
            let text = if a.is_ascii_digit() && b.is_ascii_digit() {
                format!("{DIGIT_PAIR}{a}{b}")
            } else {
                format!("{a}{b}")
            };
            out.push(token(byte(j), byte(j + 2), pos + j - s, text));
        }
        if side == Side::Index {
            out.push(token(byte(t - 1), byte(t), pos + t - 1 - s, folded[t - 1].to_string()));
        }
        for u in k..=e {
            if units[u].kind == Kind::Digits {
                let at = pos + units[u].start - s;
                group_at[u] = Some(at);
                if side == Side::Index {
                    let digits: String = chars[units[u].start..units[u].end].iter().collect();
                    out.push(token(byte(units[u].start), byte(units[u].end), at, digits));
                }
            }
        }
        // The tail's position, then one left empty.
        pos += t - s + 1;
        k = e + 1;
    }
    numbers(&chars, &units, &group_at, &alone, side, &byte, &mut out);
    if side == Side::Index {
        for m in super::dates::find(&chars) {
            let (from, to) = (byte(m.start), byte(m.end));
            if let Some(at) = out.iter().filter(|t| (from..to).contains(&t.offset_from)).map(|t| t.position).min() {
                out.push(token(from, to, at, super::dates::token(m.date)));
            }
        }
    }
    out.sort_by(|a, b| a.position.cmp(&b.position).then_with(|| a.text.cmp(&b.text)));
    out.dedup_by(|a, b| a.position == b.position && a.text == b.text);
    out
}

/// Adds the tokens of numbers written in groups (see [`tokens`]).
fn numbers(
    chars: &[char],
    units: &[Unit],
    group_at: &[Option<usize>],
    alone: &[Option<usize>],
    side: Side,
    byte: &dyn Fn(usize) -> usize,
    out: &mut Vec<Token>,
) {
    let digits = |u: usize| chars[units[u].start..units[u].end].iter().collect::<String>();
    let mut drop: Vec<usize> = Vec::new();
    let mut u = 0;
    while u < units.len() {
        // A chain: digit units, each next one after one or two joining characters.
        let mut v = u;
        while units[v].kind == Kind::Digits
            && v + 1 < units.len()
            && units[v + 1].kind == Kind::Digits
            && (1..=2).contains(&(units[v + 1].start - units[v].end))
            && chars[units[v].end..units[v + 1].start].iter().all(|c| joins_number(*c))
        {
            v += 1;
        }
        if v > u {
            let span = |a: usize, b: usize| {
                let text: String = (a..=b).map(digits).collect();
                token(byte(units[a].start), byte(units[b].end), group_at[a].unwrap_or_default(), text)
            };
            match side {
                Side::Index => {
                    for a in u..v {
                        for b in a + 1..=(a + CHAIN_WINDOW - 1).min(v) {
                            out.push(span(a, b));
                        }
                    }
                }
                Side::Query => {
                    out.push(span(u, v));
                    drop.extend((u..=v).filter_map(|g| alone[g]));
                }
            }
        }
        u = v + 1;
    }
    drop.sort_unstable();
    for i in drop.into_iter().rev() {
        out.remove(i);
    }
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
        assert_eq!(
            positions,
            vec![0, 3, 6, 9, 10, 12],
            "a run tail and a gap follow each run; a number's groups keep theirs"
        );
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

    fn index_terms(text: &str) -> Vec<String> {
        bigram_tokens(text).into_iter().map(|t| t.text).collect()
    }

    /// Whether every query token of `q` is at the document's position with the same offset
    /// (what a phrase query asks).
    fn phrase_in(q: &str, doc: &str) -> bool {
        let d = bigram_tokens(doc);
        let qt = query_tokens(q);
        let Some(first) = qt.first() else { return false };
        d.iter().filter(|t| t.text == first.text).any(|start| {
            qt.iter().all(|t| {
                d.iter().any(|x| x.text == t.text && x.position + first.position == start.position + t.position)
            })
        })
    }

    #[test]
    fn numbers_inside_words_are_found_in_part_but_whole_numbers_stay_whole() {
        assert!(phrase_in("12月", "令和5年12月分"));
        assert!(phrase_in("第5号", "様式第5号"));
        assert!(phrase_in("30年", "昭和30年生まれ"));
        assert!(phrase_in("500万円", "約500万円"));
        assert!(phrase_in("12", "令和5年12月分"), "the number on its own");
        assert!(!phrase_in("12", "2012年"), "not a part of another number");
        assert!(!phrase_in("12月", "2月"));
    }

    #[test]
    fn phone_and_postal_numbers_in_any_grouping_and_by_their_last_digits() {
        for doc in ["電話 03-1234-5678", "TEL (03)1234-5678", "03 1234 5678", "電話03-1234-5678です"] {
            for q in ["03-1234-5678", "0312345678", "(03)1234-5678", "5678", "1234-5678"] {
                assert!(phrase_in(q, doc), "{q} in {doc}: {:?}", index_terms(doc));
            }
        }
        assert!(phrase_in("160-0023", "〒160-0023 東京都"));
        assert!(phrase_in("1600023", "〒160-0023 東京都"));
        assert!(!phrase_in("0312345679", "03-1234-5678"));
    }

    #[test]
    fn dates_in_any_form_meet() {
        for doc in ["受付 2024-04-01", "受付 2024/4/1", "令和6年4月1日受付", "R6.4.1", "2024年4月1日"] {
            for q in ["2024-04-01", "2024/4/1", "令和6年4月1日", "R6.4.1", "令6.4.1"] {
                assert!(phrase_in(q, doc), "{q} in {doc}");
            }
        }
        assert!(!phrase_in("2024-04-02", "令和6年4月1日"));
    }

    #[test]
    fn variants_and_place_name_ke_fold_on_both_sides() {
        assert!(phrase_in("渡辺", "渡邊 花子"));
        assert!(phrase_in("澤田", "沢田 一郎"));
        assert!(phrase_in("市ヶ谷", "市谷 市ケ谷駅"));
        assert!(phrase_in("霞が関", "霞ヶ関"));
    }
}
