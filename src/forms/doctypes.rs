//! Document types: what a page no template fits can be filed as by a reviewer (attachments
//! such as 住民票の写し, 保険証の写し, 課税証明書), each with the record class whose retention
//! policy it takes. They live beside the templates, in `document-types.toml` of the forms
//! folder: adding a type is editing that file (and, for a new class, adding its policy).
//!
//! A type's keywords, found in the page's full-page text, suggest it in the classification
//! queue; the reviewer decides.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use super::template::Error;

/// The file in the forms folder that lists the document types.
pub const FILE: &str = "document-types.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocType {
    /// Stable key kept on the record (`resident_record`, …).
    pub key: String,
    /// What staff call it (住民票の写し).
    pub label: String,
    /// Record class: picks the retention policy.
    pub class: String,
    /// Words of the printed document that suggest the type (any one found).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The document type carries a My Number (a copy of the My Number card): its pages are
    /// shown only to users with the My Number right, found or not in the text.
    #[serde(default)]
    pub my_number: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "type")]
    types: Vec<DocType>,
}

/// A record class key: lower-case ASCII letters, digits and `_`, starting with a letter (it
/// names a policy file and is stored on records).
pub fn valid_key(k: &str) -> bool {
    k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The document types of the forms folder `dir` (none if it has no [`FILE`]).
pub fn load(dir: &Path) -> Result<Vec<DocType>, Error> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    parse(&path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Vec<DocType>, Error> {
    let invalid = |detail: String| Error::Invalid { path: PathBuf::from(path), detail };
    let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut seen = std::collections::BTreeSet::new();
    for t in &file.types {
        let at = |d: &str| invalid(format!("type {:?}: {d}", t.key));
        if !valid_key(&t.key) || !valid_key(&t.class) {
            return Err(at("key and class are lower-case letters, digits and _"));
        }
        if crate::retention::policy::RESERVED.contains(&t.class.as_str()) {
            return Err(at(&format!("class {:?} is hozon's own; name the type's class", t.class)));
        }
        if t.label.trim().is_empty() {
            return Err(at("label is empty"));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(at("defined twice"));
        }
    }
    Ok(file.types)
}

/// Every record class the templates and document types of the forms folder `dir` file pages
/// as, with who names it (for the error when its policy is missing), in that order.
pub fn named_classes<'a>(
    templates: &'a [super::template::Template],
    types: &'a [DocType],
    dir: &Path,
) -> Vec<(&'a str, String)> {
    let file = dir.join(FILE);
    let by_template = templates.iter().map(|t| (t.class(), t.path.display().to_string()));
    let by_type = types.iter().map(|d| (d.class.as_str(), format!("{} (type {:?})", file.display(), d.key)));
    by_template.chain(by_type).collect()
}

/// The type whose keywords the page's text holds most of (ties: the first listed), if any.
pub fn suggest<'a>(types: &'a [DocType], text: &str) -> Option<&'a DocType> {
    let text: String = text.nfkc().filter(|c| !c.is_whitespace()).collect();
    types
        .iter()
        .map(|t| (t, t.keywords.iter().filter(|k| !k.is_empty() && text.contains(k.as_str())).count()))
        .filter(|(_, n)| *n > 0)
        .fold(None, |best: Option<(&DocType, usize)>, (t, n)| match best {
            Some((_, m)) if m >= n => best,
            _ => Some((t, n)),
        })
        .map(|(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_types_load_and_suggest_by_their_words() {
        let types = load(&super::super::template::default_dir()).unwrap();
        assert!(types.len() >= 4);
        let tax = suggest(&types, "令和６年度 　 特別区民税・都民税 課税（非課税）証明書").unwrap();
        assert_eq!(tax.key, "tax_certificate");
        assert_eq!(suggest(&types, "住 民 票 の 写 し 世帯全員").unwrap().key, "resident_record");
        assert!(suggest(&types, "お知らせ").is_none());
    }

    #[test]
    fn errors_name_the_file_and_type() {
        let p = Path::new("forms/document-types.toml");
        let good = "[[type]]\nkey = \"a\"\nlabel = \"A\"\nclass = \"proof\"\n";
        assert_eq!(parse(p, good).unwrap().len(), 1);
        for (text, says) in [
            (good.replace("class = \"proof\"", "class = \"Proof\""), "lower-case"),
            (format!("{good}{good}"), "defined twice"),
            (good.replace("label = \"A\"", "label = \" \""), "label is empty"),
            (good.replace("key = \"a\"", "kye = \"a\""), "unknown field"),
            (good.replace("class = \"proof\"", "class = \"scan\""), "hozon's own"),
        ] {
            let e = parse(p, &text).unwrap_err().to_string();
            assert!(e.contains("document-types.toml") && e.contains(says), "{e}");
        }
    }
}
