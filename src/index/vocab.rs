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
