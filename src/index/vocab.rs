//! The closed vocabularies of the index: form types and case statuses, each with the key stored
//! in the index and the Japanese label users see and may type.

/// (key, label). Form keys are the retention classes of the pages.
pub const FORMS: &[(&str, &str)] = &[
    ("application", "申請書"),
    ("my_number_form", "個人番号調書"),
    ("clinical_survey", "臨床調査個人票"),
    ("consent", "同意書"),
    ("proof", "添付書類"),
    ("case_record", "受給者台帳"),
    ("scan", "未分類"),
];

/// Labels of the record classes and document types that data files define (form templates'
/// titles, `document-types.toml`), registered when they are loaded: the index and the screens
/// show a new form by its name without a code change.
static DEFINED: std::sync::RwLock<Vec<(String, String)>> = std::sync::RwLock::new(Vec::new());

/// Registers `label` for the form key or document type `key` (the built-in labels win).
pub fn define(key: &str, label: &str) {
    let mut d = DEFINED.write().expect("labels lock");
    if !FORMS.iter().any(|(k, _)| *k == key) && !d.iter().any(|(k, _)| k == key) {
        d.push((key.to_owned(), label.to_owned()));
    }
}

/// The label of a form key or document type: built-in, else defined by a data file, else the
/// key itself.
pub fn form_label(key: &str) -> String {
    if let Some((_, l)) = FORMS.iter().find(|(k, _)| *k == key) {
        return (*l).to_owned();
    }
    DEFINED
        .read()
        .expect("labels lock")
        .iter()
        .find(|(k, _)| k == key)
        .map_or_else(|| key.to_owned(), |(_, l)| l.clone())
}

/// The form key for a typed key or label, built-in or defined.
pub fn form_key(typed: &str) -> Option<String> {
    if let Some(k) = key_of(FORMS, typed) {
        return Some(k.to_owned());
    }
    let t = typed.trim().to_lowercase();
    DEFINED.read().expect("labels lock").iter().find(|(k, l)| *k == t || *l == t).map(|(k, _)| k.clone())
}

/// Case status (受付 → 審査中 → 認定/非認定 → 通知済).
pub const STATUSES: &[(&str, &str)] = &[
    ("received", "受付"),
    ("reviewing", "審査中"),
    ("approved", "認定"),
    ("rejected", "非認定"),
    ("notified", "通知済"),
];

/// The key for a typed key or label (`申請書` or `application`).
pub fn key_of(table: &[(&'static str, &'static str)], typed: &str) -> Option<&'static str> {
    let t = typed.trim().to_lowercase();
    table.iter().find(|(k, l)| *k == t || *l == t).map(|(k, _)| *k)
}

/// The label of a key, or the key itself when the table does not know it.
pub fn label_of<'a>(table: &[(&'static str, &'static str)], key: &'a str) -> &'a str {
    table.iter().find(|(k, _)| *k == key).map_or(key, |(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_labels_both_work() {
        assert_eq!(key_of(FORMS, "申請書"), Some("application"));
        assert_eq!(key_of(FORMS, "Application"), Some("application"));
        assert_eq!(key_of(STATUSES, "認定"), Some("approved"));
        assert_eq!(key_of(STATUSES, "認"), None);
        assert_eq!(label_of(FORMS, "scan"), "未分類");
        assert_eq!(label_of(FORMS, "new_form"), "new_form");
    }
}
