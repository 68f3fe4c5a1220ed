//! The query language reviewers type: words (all must occur), "quoted phrases" (may span
//! spaces), and -word or -"phrase" to exclude. Anything else is text: a stray quote runs to the
//! end, a lone '-' is ignored. Parsing never fails; what cannot be searched is reported by
//! the caller (no words, or only exclusions).

use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub text: String,
    pub negated: bool,
}

pub fn parse(query: &str) -> Vec<Clause> {
    let q: String = query.nfkc().collect();
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let negated = chars[i] == '-' && chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
        if negated {
            i += 1;
        }
        let text: String = if chars[i] == '"' {
            let end = chars[i + 1..].iter().position(|c| *c == '"').map_or(chars.len(), |p| i + 1 + p);
            let t = chars[i + 1..end].iter().collect();
            i = end + 1;
            t
        } else {
            let end = chars[i..].iter().position(|c| c.is_whitespace()).map_or(chars.len(), |p| i + p);
            let t = chars[i..end].iter().collect();
            i = end;
            t
        };
        if !text.trim().is_empty() {
            out.push(Clause { text, negated });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(text: &str, negated: bool) -> Clause {
        Clause { text: text.into(), negated }
    }

    #[test]
    fn words_phrases_and_exclusions() {
        assert_eq!(parse("山田 大腸炎"), vec![c("山田", false), c("大腸炎", false)]);
        assert_eq!(parse("\"東京都 新宿区\" -渋谷"), vec![c("東京都 新宿区", false), c("渋谷", true)]);
        assert_eq!(parse("-\"潰瘍性 大腸炎\""), vec![c("潰瘍性 大腸炎", true)]);
        assert_eq!(parse("\"unclosed phrase"), vec![c("unclosed phrase", false)]);
        assert_eq!(parse(" - 山田 \"\" "), vec![c("-", false), c("山田", false)]);
        assert_eq!(parse("０３－５３２０"), vec![c("03-5320", false)]);
        assert!(parse("   ").is_empty());
    }
}
