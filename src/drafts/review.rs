//! Review: a person checks each field of a draft against its image and accepts or corrects
//! it. What they submit is applied here (pure: no storage, no clock of its own): every value is
//! normalised and checked like a reading, a changed My Number must be typed twice and pass its
//! check digit, each change is kept as a correction (who, when, old → new, why), and a field
//! the reviewer marks for a second look keeps the draft out of the verified state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Draft, DraftField, Flag, mask, normalise};
use crate::forms::template::{Field, FieldType, Template};

/// Where a draft stands after a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Some field was marked for a second look (要再確認): it stays in the queue.
    SecondLook,
    /// Every field was checked against the paper: the draft is the record.
    Verified,
}

impl ReviewStatus {
    pub fn label_ja(self) -> &'static str {
        match self {
            ReviewStatus::SecondLook => "要再確認",
            ReviewStatus::Verified => "確認済",
        }
    }
}

/// One change to a field's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub field: String,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub old: String,
    pub new: String,
    /// Why (a data subject's correction request, …); empty for a review correction.
    #[serde(default)]
    pub reason: String,
}

/// The review state a draft carries (inside its sealed blob: crypto-shredding takes it along).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub status: ReviewStatus,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
    /// Fields marked for a second look.
    #[serde(default)]
    pub second_look: Vec<String>,
    /// Every correction, oldest first.
    #[serde(default)]
    pub corrections: Vec<Correction>,
}

/// What a reviewer sends for one draft: a value per field they looked at (fields left out
/// keep theirs), the fields marked for a second look, and the My Number typed again when it
/// was changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub second_look: BTreeSet<String>,
    #[serde(default)]
    pub my_number_confirm: String,
}

/// Why a submission was refused (nothing is applied then).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("{label}: {reason}")]
    Invalid { label: String, reason: String },
    #[error("{label}: 必須項目です")]
    Required { label: String },
    #[error("{label}: 確認のための再入力が一致しません")]
    ConfirmMismatch { label: String },
    #[error("{label}: 検査用数字が一致しません")]
    CheckDigit { label: String },
    #[error("{0}: この様式にない項目です")]
    UnknownField(String),
    #[error("この下書きは確認済みです")]
    AlreadyVerified,
    #[error("この用紙は既に受給者に紐付いています")]
    AlreadyLinked,
    #[error("{0}")]
    Refused(String),
}

/// What applying a submission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub status: ReviewStatus,
    pub corrections: usize,
}

/// The order a reviewer meets the fields in: invalid, empty and check-digit failures first,
/// then other flagged fields, least sure first, then the rest in the form's own order.
pub fn review_order(draft: &Draft) -> Vec<usize> {
    let rank = |f: &DraftField| -> u8 {
        if f.flags.iter().any(|x| matches!(x, Flag::Invalid { .. } | Flag::CheckDigit | Flag::Empty)) {
            0
        } else if f.flagged() {
            1
        } else {
            2
        }
    };
    let mut order: Vec<usize> = (0..draft.fields.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (&draft.fields[a], &draft.fields[b]);
        let key = |f: &DraftField, i: usize| (rank(f), if rank(f) < 2 { f.confidence } else { 0.0 }, i);
        key(fa, a).partial_cmp(&key(fb, b)).unwrap_or(std::cmp::Ordering::Equal)
    });
    order
}

/// The value the reviewer's input box starts with: the draft's value as the reviewer may see
/// it (`masked`: a My Number as `****-****-1234`).
pub fn shown_value(f: &DraftField, masked: bool) -> String {
    if f.kind == FieldType::MyNumber && masked { mask(f.value_or_raw()) } else { f.value_or_raw().to_owned() }
}

/// A submitted value in the field's stored form (`Err` names the field). `spec`: the field as
/// the form's template defines it (required, the options of a choice), if known.
fn checked_value(f: &DraftField, typed: &str, spec: Option<&Field>) -> Result<String, ReviewError> {
    let label = || f.label.clone();
    let typed = typed.trim();
    if typed.is_empty() {
        return if spec.is_some_and(|s| s.required) {
            Err(ReviewError::Required { label: label() })
        } else {
            Ok(String::new())
        };
    }
    let options = spec.map(|s| s.options.as_slice()).unwrap_or_default();
    match f.kind {
        FieldType::Choice if !options.is_empty() && !options.iter().any(|o| o == typed) => Err(ReviewError::Invalid {
            label: label(),
            reason: format!("「{typed}」は選択肢（{}）にありません", options.join("・")),
        }),
        FieldType::Checkbox => match typed {
            "true" | "1" | "あり" | "☑" | "☑ あり" => Ok("true".into()),
            "false" | "0" | "なし" | "☐" | "☐ なし" => Ok("false".into()),
            _ => Err(ReviewError::Invalid {
                label: label(), reason: "「あり」か「なし」で入力してください".into()
            }),
        },
        _ => normalise(f.kind, typed).map_err(|reason| ReviewError::Invalid { label: label(), reason }),
    }
}

/// Applies `sub` to `draft` as `by` at `now`. `masked`: the reviewer saw the My Number masked
/// (a masked value sent back unchanged is no change). `template`: the draft's form (which
/// fields are required, the options of a choice).
/// All or nothing: on error the draft is untouched.
pub fn apply(
    draft: &mut Draft,
    sub: &Submission,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
    masked: bool,
    template: Option<&Template>,
) -> Result<Applied, ReviewError> {
    if draft.review.as_ref().is_some_and(|r| r.status == ReviewStatus::Verified) {
        return Err(ReviewError::AlreadyVerified);
    }
    for name in sub.values.keys().chain(sub.second_look.iter()) {
        if draft.field(name).is_none() {
            return Err(ReviewError::UnknownField(name.clone()));
        }
    }
    // Check everything first, then change.
    let mut changes: Vec<(usize, String)> = Vec::new();
    for (i, f) in draft.fields.iter().enumerate() {
        let Some(typed) = sub.values.get(&f.name) else { continue };
        if f.kind == FieldType::MyNumber && masked && typed.trim() == shown_value(f, true) {
            continue;
        }
        if sub.second_look.contains(&f.name) && typed.trim().is_empty() {
            continue;
        }
        let spec = template.and_then(|t| t.fields.iter().find(|x| x.name == f.name));
        let value = checked_value(f, typed, spec)?;
        if f.kind == FieldType::MyNumber && value != f.value {
            if !value.is_empty() && !crate::jp::my_number_valid(&value) {
                return Err(ReviewError::CheckDigit { label: f.label.clone() });
            }
            let confirm: String = sub.my_number_confirm.chars().filter(char::is_ascii_digit).collect();
            if confirm != value {
                return Err(ReviewError::ConfirmMismatch { label: f.label.clone() });
            }
        }
        if value != f.value {
            changes.push((i, value));
        }
    }
    let mut review = draft.review.take().unwrap_or(Review {
        status: ReviewStatus::SecondLook,
        by: by.to_owned(),
        at: now,
        second_look: Vec::new(),
        corrections: Vec::new(),
    });
    let corrections = changes.len();
    for (i, value) in changes {
        let f = &mut draft.fields[i];
        review.corrections.push(Correction {
            field: f.name.clone(),
            by: by.to_owned(),
            at: now,
            old: f.value_or_raw().to_owned(),
            new: value.clone(),
            reason: String::new(),
        });
        f.value = value;
    }
    review.second_look = sub.second_look.iter().cloned().collect();
    review.status = if review.second_look.is_empty() { ReviewStatus::Verified } else { ReviewStatus::SecondLook };
    review.by = by.to_owned();
    review.at = now;
    if review.status == ReviewStatus::Verified {
        // A person has checked every value against the paper: the reader's doubts are settled.
        for f in &mut draft.fields {
            f.flags.clear();
            f.confidence = 1.0;
        }
    }
    let status = review.status;
    draft.review = Some(review);
    Ok(Applied { status, corrections })
}

/// A correction after verification (a data subject's 訂正請求): one field, with a reason.
pub fn correct(
    draft: &mut Draft,
    field: &str,
    typed: &str,
    reason: &str,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ReviewError> {
    let i = draft.fields.iter().position(|f| f.name == field).ok_or_else(|| ReviewError::UnknownField(field.into()))?;
    let value = checked_value(&draft.fields[i], typed, None)?;
    if draft.fields[i].kind == FieldType::MyNumber && !value.is_empty() && !crate::jp::my_number_valid(&value) {
        return Err(ReviewError::CheckDigit { label: draft.fields[i].label.clone() });
    }
    let f = &mut draft.fields[i];
    let c = Correction {
        field: f.name.clone(),
        by: by.to_owned(),
        at: now,
        old: f.value_or_raw().to_owned(),
        new: value.clone(),
        reason: reason.to_owned(),
    };
    f.value = value;
    let review = draft.review.get_or_insert_with(|| Review {
        status: ReviewStatus::SecondLook,
        by: by.to_owned(),
        at: now,
        second_look: Vec::new(),
        corrections: Vec::new(),
    });
    review.corrections.push(c);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: FieldType, value: &str, flags: Vec<Flag>, confidence: f32) -> DraftField {
        DraftField {
            name: name.into(),
            label: name.into(),
            kind,
            raw: value.into(),
            value: value.into(),
            confidence,
            flags,
            rect: [0, 0, 10, 10],
        }
    }

    fn draft() -> Draft {
        Draft {
            template: "t".into(),
            title: "t".into(),
            form: "my_number_form".into(),
            sheet: None,
            fields: vec![
                field("name", FieldType::Text, "山田太郎", vec![], 0.99),
                field("birth_date", FieldType::Date, "", vec![Flag::Invalid { reason: "x".into() }], 0.5),
                field("kana", FieldType::Kana, "ヤマダ", vec![Flag::Unsure], 0.7),
                field("my_number", FieldType::MyNumber, "123456789018", vec![], 0.99),
                field("ventilator", FieldType::Checkbox, "false", vec![], 1.0),
                field("application_type", FieldType::Choice, "新規", vec![], 1.0),
            ],
            ..Default::default()
        }
    }

    const NOW: fn() -> chrono::DateTime<chrono::Utc> = chrono::Utc::now;

    /// The test draft's form: every field required but the tick box; a choice of three.
    fn template() -> Template {
        let field = |name: &str, kind: &str, extra: &str| {
            format!(
                "[[field]]\nname = \"{name}\"\nlabel = \"{name}\"\ntype = \"{kind}\"\nzone = {{ x = 10, y = 10, w = 100, h = 50 }}\n{extra}\n"
            )
        };
        let mut text = String::from(
            "form = \"my_number_form\"\ntitle = \"t\"\npage = { width = 2480, height = 3508 }\n\
             classify = { zone = { x = 0, y = 0, w = 100, h = 100 }, keywords = [\"t\"] }\n\
             table = { left = 0, top = 0, right = 2000, bottom = 3000 }\n",
        );
        for (name, kind) in [("name", "text"), ("birth_date", "date"), ("kana", "kana"), ("my_number", "my_number")] {
            text.push_str(&field(name, kind, "required = true"));
        }
        text.push_str(&field("ventilator", "checkbox", ""));
        text.push_str(&field(
            "application_type",
            "choice",
            "options = [\"新規\", \"更新\", \"変更\"]\nboxes = [{ x = 10, y = 10, w = 20, h = 20 }, { x = 40, y = 10, w = 20, h = 20 }, { x = 70, y = 10, w = 20, h = 20 }]",
        ));
        Template::parse(std::path::Path::new("test.toml"), &text).unwrap()
    }

    #[test]
    fn invalid_then_unsure_then_form_order() {
        let d = draft();
        let names: Vec<&str> = review_order(&d).into_iter().map(|i| d.fields[i].name.as_str()).collect();
        assert_eq!(names, ["birth_date", "kana", "name", "my_number", "ventilator", "application_type"]);
    }

    #[test]
    fn corrections_are_kept_and_the_draft_is_verified() {
        let mut d = draft();
        let mut sub = Submission::default();
        sub.values.insert("birth_date".into(), "昭和45年3月2日".into());
        sub.values.insert("kana".into(), "ヤマダ タロウ".into());
        sub.values.insert("name".into(), "山田太郎".into());
        sub.values.insert("ventilator".into(), "あり".into());
        let a = apply(&mut d, &sub, "rev", NOW(), false, Some(&template())).unwrap();
        assert_eq!(a, Applied { status: ReviewStatus::Verified, corrections: 3 });
        assert_eq!(d.field("birth_date").unwrap().value, "1970-03-02");
        assert_eq!(d.field("ventilator").unwrap().value, "true");
        let r = d.review.as_ref().unwrap();
        assert_eq!(r.corrections[0].field, "birth_date");
        assert_eq!((r.corrections[1].old.as_str(), r.corrections[1].new.as_str()), ("ヤマダ", "ヤマダ タロウ"));
        assert!(d.fields.iter().all(|f| f.flags.is_empty()));
        assert_eq!(apply(&mut d, &sub, "rev", NOW(), false, Some(&template())), Err(ReviewError::AlreadyVerified));
    }

    #[test]
    fn a_bad_value_names_its_field_and_changes_nothing() {
        let mut d = draft();
        let before = d.clone();
        let mut sub = Submission::default();
        sub.values.insert("kana".into(), "ヤマダ".into());
        sub.values.insert("birth_date".into(), "昭和99年13月1日".into());
        let e = apply(&mut d, &sub, "rev", NOW(), false, Some(&template())).unwrap_err();
        assert!(e.to_string().starts_with("birth_date: "), "{e}");
        assert_eq!(d, before);
        sub.values.insert("birth_date".into(), "  ".into());
        assert_eq!(
            apply(&mut d, &sub, "rev", NOW(), false, Some(&template())),
            Err(ReviewError::Required { label: "birth_date".into() })
        );
    }

    #[test]
    fn a_choice_takes_one_of_its_options_only() {
        let mut d = draft();
        let mut sub = Submission::default();
        sub.values.insert("birth_date".into(), "1970-03-02".into());
        sub.values.insert("application_type".into(), "継続".into());
        let e = apply(&mut d, &sub, "rev", NOW(), false, Some(&template())).unwrap_err();
        assert_eq!(e.to_string(), "application_type: 「継続」は選択肢（新規・更新・変更）にありません");
        sub.values.insert("application_type".into(), "更新".into());
        apply(&mut d, &sub, "rev", NOW(), false, Some(&template())).unwrap();
        assert_eq!(d.field("application_type").unwrap().value, "更新");
    }

    #[test]
    fn a_changed_my_number_is_typed_twice_and_checked() {
        let mut d = draft();
        let mut sub = Submission::default();
        sub.values.insert("birth_date".into(), "1970-03-02".into());
        sub.values.insert("my_number".into(), "1234 5678 9012".into());
        // Wrong check digit.
        assert!(matches!(
            apply(&mut d, &sub, "rev", NOW(), false, Some(&template())),
            Err(ReviewError::CheckDigit { .. })
        ));
        let valid = (0..10).map(|c| format!("12345678901{c}")).find(|n| crate::jp::my_number_valid(n)).unwrap();
        let other = (0..100)
            .map(|c| format!("1111111111{c:02}"))
            .find(|n| crate::jp::my_number_valid(n) && n != "123456789018")
            .unwrap();
        sub.values.insert("my_number".into(), other.clone());
        sub.my_number_confirm = valid.clone();
        assert!(matches!(
            apply(&mut d, &sub, "rev", NOW(), false, Some(&template())),
            Err(ReviewError::ConfirmMismatch { .. })
        ));
        sub.my_number_confirm = other.clone();
        apply(&mut d, &sub, "rev", NOW(), false, Some(&template())).unwrap();
        assert_eq!(d.field("my_number").unwrap().value, other);
    }

    #[test]
    fn a_masked_number_sent_back_is_no_change_and_second_look_keeps_it_open() {
        let mut d = draft();
        let mut sub = Submission::default();
        sub.values.insert("birth_date".into(), "1970-03-02".into());
        sub.values.insert("my_number".into(), "****-****-9018".into());
        sub.second_look.insert("kana".into());
        let a = apply(&mut d, &sub, "rev", NOW(), true, Some(&template())).unwrap();
        assert_eq!(a, Applied { status: ReviewStatus::SecondLook, corrections: 1 });
        assert_eq!(d.field("my_number").unwrap().value, "123456789018");
        assert!(d.field("kana").unwrap().flagged(), "flags stay until verified");
        // The second reviewer clears it.
        let a = apply(&mut d, &Submission::default(), "rev2", NOW(), true, Some(&template())).unwrap();
        assert_eq!(a.status, ReviewStatus::Verified);
        assert_eq!(d.review.as_ref().unwrap().by, "rev2");
    }

    #[test]
    fn a_later_correction_needs_a_valid_value_and_keeps_its_reason() {
        let mut d = draft();
        correct(&mut d, "name", "山田 太郎", "本人からの訂正請求", "officer", NOW()).unwrap();
        let c = &d.review.as_ref().unwrap().corrections[0];
        assert_eq!(
            (c.old.as_str(), c.new.as_str(), c.reason.as_str()),
            ("山田太郎", "山田 太郎", "本人からの訂正請求")
        );
        assert!(correct(&mut d, "birth_date", "昨日", "x", "o", NOW()).is_err());
        assert!(matches!(correct(&mut d, "nope", "x", "x", "o", NOW()), Err(ReviewError::UnknownField(_))));
    }
}
