//! Character folding for search: what indexing and querying both treat as the same character.
//!
//! One character in, one character out (offsets into the stored text stay valid, so snippets
//! highlight the right characters):
//! - katakana to hiragana (ヤマダ meets やまだ);
//! - kanji variants to one member of their class (澤/沢, 濱/浜, 嶋/島, 峯/峰 …), from
//!   `reference-data/search-variants.tsv` (KANJIDIC2 ∪ Unihan, closed transitively, generated
//!   by `scripts/search-variants.py`; see that script for what it leaves apart and why);
//! - the small ヶ of place names and its stand-ins (ケ ヵ が ガ) between two kanji to ヶ, so
//!   市ヶ谷, 市ケ谷 and 市が谷 meet.
//!
//! The name list keeps names as written; only the index folds, on both sides equally.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The classes, compiled in: data about characters, not about an installation.
const TABLE: &str = include_str!("../../reference-data/search-variants.tsv");

/// Variant → canonical member of its class.
fn variants() -> &'static HashMap<char, char> {
    static MAP: OnceLock<HashMap<char, char>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = HashMap::new();
        for line in TABLE.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let mut members = line.split('\t').filter_map(|m| m.chars().next());
            let Some(canonical) = members.next() else { continue };
            for m in members {
                map.insert(m, canonical);
            }
        }
        map
    })
}

pub fn is_kanji(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FFFF}' | '々')
}

/// Folds one character (no context): katakana to hiragana, a kanji to its class's member.
pub fn fold(c: char) -> char {
    match c {
        '\u{30A1}'..='\u{30F6}' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
        _ if is_kanji(c) => variants().get(&c).copied().unwrap_or(c),
        _ => c,
    }
}

/// Folds `chars[i]` seen with its neighbours: the place-name ヶ and its stand-ins between two
/// kanji become ヶ (before [`fold`] would make ケ a hiragana け), everything else as [`fold`].
pub fn fold_at(chars: &[char], i: usize) -> char {
    let c = chars[i];
    if matches!(c, 'ヶ' | 'ケ' | 'ヵ' | 'が' | 'ガ' | 'け')
        && i > 0
        && is_kanji(chars[i - 1])
        && chars.get(i + 1).is_some_and(|n| is_kanji(*n))
    {
        return 'ヶ';
    }
    fold(c)
}

/// Every character of `s` folded in context.
pub fn fold_str(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    (0..chars.len()).map(|i| fold_at(&chars, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_old_and_new_forms_meet_and_chinese_forms_stay_apart() {
        for (a, b) in [("澤", "沢"), ("濱", "浜"), ("廣", "広"), ("舘", "館"), ("冨", "富"), ("惠", "恵"), ("峯", "峰")]
        {
            assert_eq!(fold_str(a), fold_str(b), "{a}/{b}");
        }
        for (a, b) in [("眞", "真"), ("嶋", "島"), ("髙", "高"), ("邊", "辺"), ("邉", "辺"), ("齋", "斎")] {
            assert_eq!(fold_str(a), fold_str(b), "{a}/{b}");
        }
        // kSimplifiedVariant is never used: 澤 and the Chinese 泽 stay apart.
        assert_ne!(fold_str("澤"), fold_str("泽"));
        // The guard: distinct common characters chained by Unihan's semantic links stay apart.
        for (a, b) in [("予", "余"), ("歴", "暦"), ("着", "著"), ("一", "壱"), ("機", "机")] {
            assert_ne!(fold_str(a), fold_str(b), "{a}/{b}");
        }
    }

    #[test]
    fn place_name_ke_between_kanji_only() {
        let want = fold_str("市ヶ谷");
        for v in ["市ケ谷", "市が谷", "市ガ谷", "市ヵ谷"] {
            assert_eq!(fold_str(v), want, "{v}");
        }
        assert_eq!(fold_str("がん"), "がん");
        assert_eq!(fold_str("ケース"), "けーす");
    }
}
