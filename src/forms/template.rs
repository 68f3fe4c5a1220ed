//! Form templates: one TOML file per form and sheet in `ocr-models/forms/`. A template says
//! how big the page is, which printed words identify it, where its field table's outer rules
//! are (to register a scan to it) and, per field, its zone, type and validation. Adding a form
//! is writing a file; loading checks every file and names the file and field at fault.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("form templates: cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("form template {path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

/// A rectangle in template pixels (300 dpi page coordinates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Zone {
    fn fits(&self, width: u32, height: u32) -> bool {
        self.w > 0 && self.h > 0 && self.x + self.w <= width && self.y + self.h <= height
    }
}

/// What a field holds: decides the recognizer's character set, normalisation and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    /// Katakana reading (フリガナ).
    Kana,
    /// Japanese era or western date → ISO 8601.
    Date,
    Number,
    /// 12 digits, often one per comb box; check digit validated.
    MyNumber,
    Phone,
    PostalCode,
    /// Ticked or not, by ink density.
    Checkbox,
    /// One of several boxes.
    Choice,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Key in drafts and truth files (`name`, `birth_date`, …).
    pub name: String,
    /// The printed label (for the reviewer and the page's index text).
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub zone: Zone,
    /// Comb boxes the zone is divided into (one character each), if any.
    #[serde(default)]
    pub cells: Option<u32>,
    /// Options of a `choice` field, in box order left to right.
    #[serde(default)]
    pub options: Vec<String>,
    /// The tick box of each option of a `choice` field (a `checkbox`'s box is its zone).
    #[serde(default)]
    pub boxes: Vec<Zone>,
    #[serde(default)]
    pub required: bool,
    /// Checks the value goes through after reading (`checks = ["postal_jp"]`); a field's
    /// name implies none.
    #[serde(default)]
    pub checks: Vec<Check>,
}

/// A named check of a field's value against a reference list or another field of the page
/// (run by `drafts::checks`). A failed check flags the field with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Check {
    /// `postal_jp`: a postal code of Tokyo's list.
    PostalJp,
    /// `address_of:FIELD`: an address beginning with the place the postal code in FIELD names.
    AddressOf(String),
    /// `reading_of:FIELD`: katakana whose parts are readings of FIELD's name parts, where the
    /// name list knows them.
    ReadingOf(String),
    /// `designated_disease`: a disease of the designated intractable disease list.
    DesignatedDisease,
    /// `past_date`: a date neither in the future nor before 1900 (a birth date).
    PastDate,
    /// `recipient_no_for:FIELD`: present when the choice FIELD says 更新 or 変更, absent for 新規.
    RecipientNoFor(String),
}

impl TryFrom<String> for Check {
    type Error = String;
    fn try_from(s: String) -> Result<Check, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim().to_owned())),
            None => (s.trim(), None),
        };
        match (name, arg) {
            ("postal_jp", None) => Ok(Check::PostalJp),
            ("designated_disease", None) => Ok(Check::DesignatedDisease),
            ("past_date", None) => Ok(Check::PastDate),
            ("address_of", Some(f)) if !f.is_empty() => Ok(Check::AddressOf(f)),
            ("reading_of", Some(f)) if !f.is_empty() => Ok(Check::ReadingOf(f)),
            ("recipient_no_for", Some(f)) if !f.is_empty() => Ok(Check::RecipientNoFor(f)),
            _ => Err(format!(
                "unknown check {s:?} (known: postal_jp, designated_disease, past_date, address_of:FIELD, \
                 reading_of:FIELD, recipient_no_for:FIELD)"
            )),
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::PostalJp => f.write_str("postal_jp"),
            Check::DesignatedDisease => f.write_str("designated_disease"),
            Check::PastDate => f.write_str("past_date"),
            Check::AddressOf(x) => write!(f, "address_of:{x}"),
            Check::ReadingOf(x) => write!(f, "reading_of:{x}"),
            Check::RecipientNoFor(x) => write!(f, "recipient_no_for:{x}"),
        }
    }
}

impl Check {
    /// The other field the check compares with, if any.
    pub fn other_field(&self) -> Option<&str> {
        match self {
            Check::AddressOf(f) | Check::ReadingOf(f) | Check::RecipientNoFor(f) => Some(f),
            _ => None,
        }
    }

    /// The field types the check applies to.
    fn applies_to(&self, kind: FieldType) -> bool {
        match self {
            Check::PostalJp => kind == FieldType::PostalCode,
            Check::AddressOf(_) | Check::DesignatedDisease => kind == FieldType::Text,
            Check::ReadingOf(_) => kind == FieldType::Kana,
            Check::PastDate => kind == FieldType::Date,
            Check::RecipientNoFor(_) => matches!(kind, FieldType::Number | FieldType::Text),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSize {
    pub width: u32,
    pub height: u32,
}

/// Printed words that identify the form, read in `zone`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classify {
    pub zone: Zone,
    pub keywords: Vec<String>,
}

/// The outer rules of the field table: registration maps these four lines of the scan onto
/// the template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Form key (see `index::vocab::FORMS`).
    pub form: String,
    /// 1 = original, 2 = carbon copy, for two-sheet forms.
    #[serde(default)]
    pub sheet: Option<u8>,
    pub title: String,
    /// Record class of its pages (the retention policy they take); the form key if not given
    /// (a new revision of a form names the class of the old one).
    #[serde(default)]
    pub class: Option<String>,
    pub page: PageSize,
    pub classify: Classify,
    pub table: Table,
    #[serde(rename = "field")]
    pub fields: Vec<Field>,
    /// The file it came from (set on load).
    #[serde(skip)]
    pub path: PathBuf,
}

impl Template {
    pub fn parse(path: &Path, text: &str) -> Result<Template, Error> {
        let invalid = |detail: String| Error::Invalid { path: path.to_owned(), detail };
        let mut t: Template = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        t.path = path.to_owned();
        if !super::doctypes::valid_key(t.class()) {
            return Err(invalid(format!("form/class {:?}: lower-case letters, digits and _ only", t.class())));
        }
        if crate::retention::policy::RESERVED.contains(&t.class()) {
            return Err(invalid(format!("class {:?} is hozon's own; name the form's class", t.class())));
        }
        let PageSize { width, height } = t.page;
        if !t.classify.zone.fits(width, height) {
            return Err(invalid("classify.zone lies outside the page".into()));
        }
        if t.classify.keywords.iter().all(|k| k.trim().is_empty()) {
            return Err(invalid("classify.keywords is empty".into()));
        }
        let tb = t.table;
        if tb.left >= tb.right || tb.top >= tb.bottom || tb.right > width || tb.bottom > height {
            return Err(invalid("table rules are not a rectangle on the page".into()));
        }
        let mut names = BTreeSet::new();
        for f in &t.fields {
            let field = |detail: &str| invalid(format!("field {:?}: {detail}", f.name));
            if !names.insert(f.name.as_str()) {
                return Err(field("defined twice"));
            }
            if !f.zone.fits(width, height) {
                return Err(field("zone lies outside the page"));
            }
            match (f.kind, f.cells) {
                (_, Some(0)) => return Err(field("cells must be at least 1")),
                (FieldType::MyNumber, Some(n)) if n != 12 => return Err(field("a My Number has 12 cells")),
                _ => {}
            }
            if f.kind == FieldType::Choice && f.options.len() < 2 {
                return Err(field("a choice needs at least two options"));
            }
            if f.kind == FieldType::Choice && f.boxes.len() != f.options.len() {
                return Err(field("a choice needs one box per option (boxes = [...])"));
            }
            if f.kind != FieldType::Choice && !(f.boxes.is_empty() && f.options.is_empty()) {
                return Err(field("options and boxes belong to choice fields"));
            }
            if f.boxes.iter().any(|b| !b.fits(width, height)) {
                return Err(field("a box lies outside the page"));
            }
            for c in &f.checks {
                if !c.applies_to(f.kind) {
                    return Err(field(&format!("check \"{c}\" does not apply to a {:?} field", f.kind)));
                }
                if let Some(other) = c.other_field()
                    && !t.fields.iter().any(|g| g.name == other && g.name != f.name)
                {
                    return Err(field(&format!("check \"{c}\" names field {other:?}, which the form does not have")));
                }
            }
        }
        if t.fields.is_empty() {
            return Err(invalid("no [[field]]".into()));
        }
        Ok(t)
    }

    /// The record class of its pages.
    pub fn class(&self) -> &str {
        self.class.as_deref().unwrap_or(&self.form)
    }

    /// "application sheet 1" etc., for messages.
    pub fn id(&self) -> String {
        match self.sheet {
            Some(s) => format!("{}#{s}", self.form),
            None => self.form.clone(),
        }
    }
}

/// Where templates are: `HOZON_FORMS`, else `ocr-models/forms`.
pub fn default_dir() -> PathBuf {
    crate::resources::path("HOZON_FORMS", "ocr-models/forms")
}

/// Every `*.toml` in `dir`, sorted by file name; form+sheet must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<Template>, Error> {
    let io = |e: std::io::Error| Error::Io { path: dir.to_owned(), source: e };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        // The document types live beside the templates (`forms::doctypes`).
        .filter(|p| p.file_name().is_none_or(|n| n != super::doctypes::FILE))
        .collect();
    paths.sort();
    let mut out: Vec<Template> = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| Error::Io { path: p.clone(), source: e })?;
        let t = Template::parse(&p, &text)?;
        if let Some(other) = out.iter().find(|o| o.id() == t.id()) {
            return Err(Error::Invalid {
                path: p.clone(),
                detail: format!("{} is already defined by {}", t.id(), other.path.display()),
            });
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_templates_load() {
        let all = load_dir(&default_dir()).unwrap();
        let ids: Vec<String> = all.iter().map(Template::id).collect();
        assert_eq!(ids, ["application#1", "application#2", "clinical_survey", "my_number_form"]);
        let mn = all.iter().find(|t| t.form == "my_number_form").unwrap();
        let f = mn.fields.iter().find(|f| f.kind == FieldType::MyNumber).unwrap();
        assert_eq!(f.cells, Some(12));
    }

    const GOOD: &str = r#"
form = "consent"
title = "同意書"
page = { width = 2480, height = 3508 }
classify = { zone = { x = 0, y = 0, w = 2480, h = 400 }, keywords = ["同意書"] }
table = { left = 200, top = 520, right = 2280, bottom = 1000 }
[[field]]
name = "name"
label = "氏名"
type = "text"
zone = { x = 763, y = 523, w = 1514, h = 154 }
"#;

    #[test]
    fn errors_name_the_file_and_field() {
        let p = Path::new("forms/consent.toml");
        assert_eq!(Template::parse(p, GOOD).unwrap().fields[0].kind, FieldType::Text);
        let cases = [
            (GOOD.replace("type = \"text\"", "type = \"txt\""), "unknown variant"),
            (GOOD.replace("w = 1514", "w = 9999"), "field \"name\": zone lies outside the page"),
            (GOOD.replace("right = 2280", "right = 100"), "table rules"),
            (GOOD.replace("title = ", "class = \"scan\"\ntitle = "), "hozon's own"),
            (
                format!(
                    "{GOOD}\n[[field]]\nname = \"name\"\nlabel = \"x\"\ntype = \"text\"\nzone = {{ x = 1, y = 1, w = 1, h = 1 }}\n"
                ),
                "defined twice",
            ),
            (GOOD.replace("zone = { x = 763", "colour = 1\nzone = { x = 763"), "unknown field"),
            (GOOD.replace("type = \"text\"", "type = \"text\"\nchecks = [\"postal\"]"), "unknown check \"postal\""),
            (GOOD.replace("type = \"text\"", "type = \"text\"\nchecks = [\"postal_jp\"]"), "does not apply"),
            (
                GOOD.replace("type = \"text\"", "type = \"text\"\nchecks = [\"address_of:postal_code\"]"),
                "names field \"postal_code\", which the form does not have",
            ),
        ];
        for (text, says) in cases {
            let e = Template::parse(p, &text).unwrap_err().to_string();
            assert!(e.contains("forms/consent.toml") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_new_form_is_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        for t in load_dir(&default_dir()).unwrap() {
            std::fs::copy(&t.path, dir.path().join(t.path.file_name().unwrap())).unwrap();
        }
        std::fs::write(dir.path().join("consent.toml"), GOOD).unwrap();
        let all = load_dir(dir.path()).unwrap();
        assert!(all.iter().any(|t| t.form == "consent"));
        std::fs::write(dir.path().join("zz-dup.toml"), GOOD).unwrap();
        let e = load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("zz-dup.toml") && e.contains("already defined"), "{e}");
    }
}
