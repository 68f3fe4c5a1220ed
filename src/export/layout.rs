//! The subsidy system's import layout, as a file the office edits (`export-layouts/*.toml`):
//! column order and names, fixed width or CSV, code tables (sex, 申請区分, era…), the date
//! format, padding and the encoding. Checked in full on load, so a mistyped key or source is
//! refused with the file and the key named before any row is written.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// Where a column's value comes from: `row.*` (the export row itself), `application.*` (the
/// verified application form), `my_number.*` (the My Number form), `case.*` (the linked case).
pub const SOURCES: &[(&str, ValueKind)] = &[
    ("row.key", ValueKind::Text),
    ("row.seq", ValueKind::Text),
    ("row.kind", ValueKind::Code),
    ("row.correction_reason", ValueKind::Text),
    ("row.original_key", ValueKind::Text),
    ("row.received_on", ValueKind::Date),
    ("row.municipality", ValueKind::Text),
    ("application.kana", ValueKind::Text),
    ("application.name", ValueKind::Text),
    ("application.birth_date", ValueKind::Date),
    ("application.sex", ValueKind::Code),
    ("application.postal_code", ValueKind::Text),
    ("application.address", ValueKind::Text),
    ("application.phone", ValueKind::Text),
    ("application.insurer_number", ValueKind::Text),
    ("application.insured_symbol", ValueKind::Text),
    ("application.insured_number", ValueKind::Text),
    ("application.disease", ValueKind::Text),
    ("application.disease_no", ValueKind::Text),
    ("application.application_date", ValueKind::Date),
    ("application.application_type", ValueKind::Code),
    ("application.high_cost", ValueKind::Flag),
    ("application.ventilator", ValueKind::Flag),
    ("application.recipient_no", ValueKind::Text),
    ("my_number.my_number", ValueKind::Text),
    ("case.recipient_no", ValueKind::Text),
    ("case.application_no", ValueKind::Text),
];

/// The layout file in use: `[export] layout` in the config, else the shipped one.
pub fn path_for(config: &crate::config::Config) -> std::path::PathBuf {
    if config.export.layout.is_empty() {
        crate::resources::path("HOZON_EXPORT_LAYOUT", "export-layouts/subsidy-system.toml")
    } else {
        std::path::PathBuf::from(&config.export.layout)
    }
}

/// What a source yields, which decides how a column may format it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Date,
    /// One of a fixed set of words (男/女, 新規/更新/変更, 通常/訂正): mapped through a code table.
    Code,
    /// A tick box: `true` / `false`, mapped through a code table.
    Flag,
}

pub fn source_kind(source: &str) -> Option<ValueKind> {
    SOURCES.iter().find(|(s, _)| *s == source).map(|(_, k)| *k)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Fixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Cp932,
    #[serde(rename = "utf-8")]
    Utf8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineEnding {
    Crlf,
    Lf,
}

/// How a date is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateFormat {
    /// 2024-04-01
    Iso,
    /// 20240401
    Yyyymmdd,
    /// 令和6年4月1日
    Wareki,
    /// The era's code (from `[codes.era]`) and YYMMDD in the era: 5060401.
    WarekiCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pad {
    /// Half-width spaces after the value (left-aligned).
    #[default]
    Space,
    /// Zeros before the value (right-aligned), for numbers.
    Zero,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The column's name in the subsidy system (the CSV header).
    pub name: String,
    pub source: String,
    /// Bytes in the file's encoding (a full-width character is 2 in CP932). Required for a
    /// fixed-width layout; in a CSV the most a value may have.
    #[serde(default)]
    pub width: Option<usize>,
    #[serde(default)]
    pub pad: Pad,
    /// The code table a `Code` or `Flag` value is mapped through.
    #[serde(default)]
    pub codes: Option<String>,
    /// Overrides the layout's date format for this column.
    #[serde(default)]
    pub date_format: Option<DateFormat>,
    /// An empty value holds the row back.
    #[serde(default)]
    pub required: bool,
}

/// The subsidy system's result file (取込結果): which header holds what.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultLayout {
    /// The column holding the row key hozon wrote (`row.key`).
    pub key: String,
    pub outcome: String,
    /// Values of `outcome` meaning the row was taken in.
    pub accepted: Vec<String>,
    /// Values meaning it was refused.
    pub rejected: Vec<String>,
    pub recipient_no: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub name: String,
    pub format: Format,
    pub encoding: Encoding,
    pub line_ending: LineEnding,
    /// CSV only: a first line with the column names.
    #[serde(default)]
    pub header: bool,
    pub date_format: DateFormat,
    /// The data file's name inside the ZIP, without extension.
    pub file_stem: String,
    #[serde(default)]
    pub codes: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(rename = "column")]
    pub columns: Vec<Column>,
    pub result: ResultLayout,
}

/// A layout file that cannot be used, with the file and the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct LayoutError {
    pub file: String,
    pub message: String,
}

/// The values a `Code` source can take, so that every one has a code.
fn code_values(source: &str) -> &'static [&'static str] {
    match source {
        "application.sex" => &["男", "女"],
        "application.application_type" => &["新規", "更新", "変更"],
        "row.kind" => &["通常", "訂正"],
        _ => &["true", "false"],
    }
}

impl Layout {
    pub fn load(path: &Path) -> Result<Layout, LayoutError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| LayoutError { file: file.clone(), message: format!("読み込めません: {e}") })?;
        Layout::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<Layout, LayoutError> {
        let err = |message: String| LayoutError { file: file.to_owned(), message };
        let layout: Layout = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!("{} 行目: ", text[..s.start.min(text.len())].matches('\n').count() + 1))
                .unwrap_or_default();
            err(format!("{at}{}", e.message()))
        })?;
        layout.check().map_err(err)?;
        Ok(layout)
    }

    fn check(&self) -> Result<(), String> {
        if self.columns.is_empty() {
            return Err("column が一つもありません".into());
        }
        if self.file_stem.is_empty() || !self.file_stem.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) {
            return Err(format!("file_stem「{}」は英数字・_・- で書いてください", self.file_stem));
        }
        let needs_era = self.date_format == DateFormat::WarekiCode
            || self.columns.iter().any(|c| c.date_format == Some(DateFormat::WarekiCode));
        if needs_era {
            let era = self.codes.get("era").ok_or("date_format wareki_code には [codes.era] が要ります")?;
            if let Some(missing) = crate::jp::era_names().find(|n| !era.contains_key(*n)) {
                return Err(format!("[codes.era] に「{missing}」の符号がありません"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            let at = format!("column {}（{}）", i + 1, c.name);
            if c.name.trim().is_empty() {
                return Err(format!("column {}: name が空です", i + 1));
            }
            if !names.insert(c.name.as_str()) {
                return Err(format!("{at}: 同じ name の列がもう一つあります"));
            }
            let Some(kind) = source_kind(&c.source) else {
                let known: Vec<&str> = SOURCES.iter().map(|(s, _)| *s).collect();
                return Err(format!("{at}: source「{}」は使えません（使えるもの: {}）", c.source, known.join(", ")));
            };
            match (self.format, c.width) {
                (Format::Fixed, None) => {
                    return Err(format!("{at}: 固定長（format = \"fixed\"）には width が要ります"));
                }
                (_, Some(0)) => return Err(format!("{at}: width は 1 以上です")),
                _ => {}
            }
            if c.pad == Pad::Zero && self.format == Format::Csv {
                return Err(format!("{at}: pad = \"zero\" は固定長だけで使えます"));
            }
            if c.date_format.is_some() && kind != ValueKind::Date {
                return Err(format!("{at}: date_format は日付の列だけに書けます"));
            }
            match (kind, &c.codes) {
                (ValueKind::Code | ValueKind::Flag, None) => {
                    return Err(format!("{at}: source「{}」には codes（コード表の名前）が要ります", c.source));
                }
                (ValueKind::Code | ValueKind::Flag, Some(t)) => {
                    let table = self.codes.get(t).ok_or_else(|| format!("{at}: コード表 [codes.{t}] がありません"))?;
                    if let Some(v) = code_values(&c.source).iter().find(|v| !table.contains_key(**v)) {
                        return Err(format!("{at}: コード表 [codes.{t}] に「{v}」の符号がありません"));
                    }
                }
                (_, Some(_)) => return Err(format!("{at}: codes は区分・チェック欄の列だけに書けます")),
                (_, None) => {}
            }
        }
        if !self.columns.iter().any(|c| c.source == "row.key") {
            return Err("row.key（整理番号）の列がありません。取込結果を行に戻すのに使います".into());
        }
        let r = &self.result;
        if r.accepted.is_empty() || r.rejected.is_empty() || r.accepted.iter().any(|a| r.rejected.contains(a)) {
            return Err("[result] accepted と rejected は空でなく、重ならない値にしてください".into());
        }
        Ok(())
    }

    /// The column a source is written to, if any.
    pub fn column_of(&self, source: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.source == source)
    }

    pub fn extension(&self) -> &'static str {
        match self.format {
            Format::Csv => "csv",
            Format::Fixed => "txt",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> String {
        std::fs::read_to_string(crate::resources::root().join("export-layouts/subsidy-system.toml")).unwrap()
    }

    #[test]
    fn the_shipped_layout_loads() {
        let l = Layout::parse(&shipped(), "subsidy-system.toml").unwrap_or_else(|e| panic!("{e}"));
        assert!(l.column_of("row.key").is_some());
        assert!(l.column_of("my_number.my_number").is_some());
    }

    #[test]
    fn mistakes_are_named_with_file_and_key() {
        let base = shipped();
        let cases = [
            (
                base.replace("source = \"application.birth_date\"", "source = \"application.birthdate\""),
                "application.birthdate",
            ),
            (base.replace("format = \"fixed\"", "format = \"fixd\""), "fixd"),
            (base.replacen("width = ", "widht = ", 1), "widht"),
            (base.replace("[codes.sex]", "[codes.gender]"), "codes.sex"),
            (base.replace("\"令和\" = \"5\"", ""), "令和"),
        ];
        for (text, needle) in cases {
            let e = Layout::parse(&text, "x.toml").expect_err(needle).to_string();
            assert!(e.starts_with("x.toml: ") && e.contains(needle), "{needle}: {e}");
        }
    }
}
