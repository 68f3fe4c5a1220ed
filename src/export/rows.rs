//! One application's export row (pure): the verified sheets and My Number form become the
//! values of the layout's sources, with what holds the row back and what only warns. The
//! reasons never quote a value (they are kept in the run's record, which holds no personal
//! data); the check lists add the applicant's name when they are drawn.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::drafts::{Draft, Flag};
use crate::forms::template::FieldType;

/// What one application brings: its sheets (either may be missing), its My Number form, the
/// case it is linked to (only a case the subsidy system knows: never a provisional one).
#[derive(Debug, Clone, Copy)]
pub struct Application<'a> {
    pub first: Option<&'a Draft>,
    pub second: Option<&'a Draft>,
    pub my_number: Option<&'a Draft>,
    pub recipient_no: Option<&'a str>,
    pub application_no: Option<&'a str>,
    pub received_on: NaiveDate,
    pub municipality: &'a str,
}

/// Why a row is held back (not exported) or exported with a warning.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub hold: bool,
    pub message: String,
}

impl Problem {
    pub fn hold(message: impl Into<String>) -> Problem {
        Problem { hold: true, message: message.into() }
    }
    pub fn warn(message: impl Into<String>) -> Problem {
        Problem { hold: false, message: message.into() }
    }
}

/// The values of one row by source name (`application.name`, …): dates ISO, choices as the
/// word on the form (男, 新規), tick boxes `true`/`false`; plus what was found wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowValues {
    pub values: BTreeMap<String, String>,
    pub problems: Vec<Problem>,
}

impl RowValues {
    pub fn held(&self) -> bool {
        self.problems.iter().any(|p| p.hold)
    }
    pub fn get(&self, source: &str) -> &str {
        self.values.get(source).map_or("", String::as_str)
    }
}

/// The application's values from its sheets: sheet 1 (the original) first, the input copy
/// where sheet 1 is missing; verified sheets that still disagree hold the row back.
pub fn build(app: &Application) -> RowValues {
    let mut out = RowValues::default();
    let sheets: Vec<&Draft> = [app.first, app.second].into_iter().flatten().collect();
    let Some(main) = sheets.first() else {
        out.problems.push(Problem::hold("申請書がありません"));
        return out;
    };
    if sheets.len() == 1 {
        let missing = if app.first.is_none() { "原本（1枚目）" } else { "入力票（2枚目）" };
        out.problems.push(Problem::warn(format!("複写の{missing}がありません（片方の用紙から作成）")));
    }
    if sheets.iter().any(|d| !d.verified()) {
        out.problems.push(Problem::hold("申請書の審査（確認）が終わっていません"));
    }
    if let [a, b] = sheets[..] {
        for f in &a.fields {
            if let Some(g) = b.field(&f.name)
                && crate::drafts::comparable(f) != crate::drafts::comparable(g)
            {
                out.problems.push(Problem::hold(format!("原本と入力票で「{}」が異なります", f.label)));
            }
        }
    }
    for f in &main.fields {
        let v = match f.kind {
            FieldType::Checkbox => (f.value_or_raw() == "true").to_string(),
            _ => f.value.clone(),
        };
        if f.kind != FieldType::Checkbox && f.value.is_empty() && !f.raw.trim().is_empty() {
            out.problems.push(Problem::hold(format!("「{}」が形式に合いません", f.label)));
        }
        for fl in &f.flags {
            if matches!(fl, Flag::CrossCheck { .. } | Flag::CheckDigit) {
                out.problems.push(Problem::warn(format!("「{}」が他の記載・参照表と一致しません（確認済）", f.label)));
            }
        }
        out.values.insert(format!("application.{}", f.name), v);
    }
    let disease = out.get("application.disease").to_owned();
    match crate::drafts::checks::disease_number(&disease) {
        Some(no) => {
            out.values.insert("application.disease_no".into(), no.to_string());
        }
        None if !disease.is_empty() => {
            out.problems.push(Problem::warn("病名が指定難病の一覧にありません（疾病番号なし）"))
        }
        None => {}
    }
    // The recipient number: as written on the form, else the linked case's.
    if out.get("application.recipient_no").is_empty()
        && let Some(no) = app.recipient_no
    {
        out.values.insert("application.recipient_no".into(), no.to_owned());
    }
    let kind = out.get("application.application_type").to_owned();
    if matches!(kind.as_str(), "更新" | "変更") && out.get("application.recipient_no").is_empty() {
        out.problems.push(Problem::hold(format!("{kind}の申請に受給者番号がありません")));
    }
    if kind.is_empty() {
        out.problems.push(Problem::hold("申請区分が選ばれていません"));
    }
    match app.my_number {
        Some(d) => {
            if !d.verified() {
                out.problems.push(Problem::hold("個人番号に係る調書の審査（確認）が終わっていません"));
            }
            let mn =
                d.fields.iter().find(|f| f.kind == FieldType::MyNumber).map(|f| f.value.clone()).unwrap_or_default();
            if !mn.is_empty() && !crate::jp::my_number_valid(&mn) {
                out.problems.push(Problem::hold("個人番号の検査用数字が一致しません"));
            }
            out.values.insert("my_number.my_number".into(), mn);
        }
        None => out.problems.push(Problem::warn("個人番号に係る調書がありません（個人番号なし）")),
    }
    if let Some(no) = app.recipient_no {
        out.values.insert("case.recipient_no".into(), no.to_owned());
    }
    if let Some(no) = app.application_no {
        out.values.insert("case.application_no".into(), no.to_owned());
    }
    if app.recipient_no.is_none() && kind == "新規" {
        // Normal for a first application: the result file brings its number.
    } else if app.recipient_no.is_none() {
        out.problems.push(Problem::warn("受給者台帳に未リンク（取込結果で連携します）"));
    }
    out.values.insert("row.received_on".into(), app.received_on.to_string());
    out.values.insert("row.municipality".into(), app.municipality.to_owned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drafts::DraftField;
    use crate::drafts::review::{Review, ReviewStatus};

    fn field(name: &str, label: &str, kind: FieldType, value: &str) -> DraftField {
        DraftField {
            name: name.into(),
            label: label.into(),
            kind,
            raw: value.into(),
            value: value.into(),
            confidence: 1.0,
            flags: Vec::new(),
            rect: [0; 4],
        }
    }

    fn sheet(n: u8, kind: &str, recipient: &str, verified: bool) -> Draft {
        Draft {
            template: format!("application-{n}"),
            form: "application".into(),
            sheet: Some(n),
            fields: vec![
                field("name", "受診者氏名", FieldType::Text, "山田 太郎"),
                field("birth_date", "生年月日", FieldType::Date, "1970-03-12"),
                field("disease", "病名", FieldType::Text, "潰瘍性大腸炎"),
                field("application_type", "申請区分", FieldType::Choice, kind),
                field("high_cost", "高額かつ長期", FieldType::Checkbox, "true"),
                field("recipient_no", "受給者番号", FieldType::Number, recipient),
            ],
            review: verified.then(|| Review {
                status: ReviewStatus::Verified,
                by: "r".into(),
                at: chrono::Utc::now(),
                second_look: Vec::new(),
                corrections: Vec::new(),
            }),
            ..Default::default()
        }
    }

    fn app<'a>(a: Option<&'a Draft>, b: Option<&'a Draft>) -> Application<'a> {
        Application {
            first: a,
            second: b,
            my_number: None,
            recipient_no: None,
            application_no: None,
            received_on: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            municipality: "新宿区",
        }
    }

    #[test]
    fn a_verified_pair_exports_with_the_disease_number() {
        let (a, b) = (sheet(1, "新規", "", true), sheet(2, "新規", "", true));
        let r = build(&app(Some(&a), Some(&b)));
        assert!(!r.held(), "{:?}", r.problems);
        assert_eq!(r.get("application.name"), "山田 太郎");
        assert_eq!(r.get("application.high_cost"), "true");
        assert_eq!(r.get("application.disease_no"), "97");
        // Only the missing My Number form warns.
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    }

    #[test]
    fn what_holds_a_row_back() {
        let (a, b) = (sheet(1, "更新", "", true), sheet(2, "更新", "", false));
        let r = build(&app(Some(&a), Some(&b)));
        let msgs: Vec<&str> = r.problems.iter().filter(|p| p.hold).map(|p| p.message.as_str()).collect();
        assert!(msgs.iter().any(|m| m.contains("審査")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("受給者番号がありません")), "{msgs:?}");
        let mut c = sheet(2, "更新", "12345678", true);
        c.fields[0].value = "山田 太朗".into();
        let r = build(&app(Some(&sheet(1, "更新", "12345678", true)), Some(&c)));
        assert!(r.problems.iter().any(|p| p.hold && p.message.contains("受診者氏名")), "{:?}", r.problems);
        // No value is quoted in a reason.
        assert!(r.problems.iter().all(|p| !p.message.contains("山田")));
    }
}
