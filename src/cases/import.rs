//! Case records from the subsidy system's CSV export: UTF-8 (with or without BOM) or
//! Shift_JIS (CP932), detected; columns found by header through a mapping
//! (`mapping.toml`, or `DATA/case-import.toml`). A malformed row is reported with its line
//! number and field; the other rows import.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use super::{CaseFields, CaseStatus};

/// Field → accepted header names, first present wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub recipient_no: Vec<String>,
    pub application_no: Vec<String>,
    pub name: Vec<String>,
    pub kana: Vec<String>,
    pub birth_date: Vec<String>,
    pub address: Vec<String>,
    pub disease: Vec<String>,
    pub valid_from: Vec<String>,
    pub valid_to: Vec<String>,
    pub status: Vec<String>,
    /// Optional: the export's My Number column (kept only as a keyed hash).
    #[serde(default)]
    pub my_number: Vec<String>,
}

pub const DEFAULT_MAPPING: &str = include_str!("mapping.toml");

impl Mapping {
    pub fn parse(text: &str) -> Result<Mapping, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// `DATA/case-import.toml` if the office has one, else the built-in mapping.
    pub fn load(data: &std::path::Path) -> Result<Mapping, String> {
        let path = data.join("case-import.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Mapping::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(_) => Ok(Mapping::parse(DEFAULT_MAPPING).expect("built-in mapping parses")),
        }
    }
}

/// A row that could not be imported, named for the person fixing the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line in the file (the header is line 1).
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}行目 {}: {}", self.line, self.field, self.message)
    }
}

/// The whole file is unusable (no header, a required column missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileError(pub String);

/// Decodes a CSV export: UTF-8 (a BOM is dropped), else Shift_JIS.
pub fn decode(bytes: &[u8]) -> Result<String, FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok(s.to_owned());
    }
    let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(bytes);
    if bad {
        return Err(FileError("文字コードを判別できません（UTF-8 でも Shift_JIS でもありません）".into()));
    }
    Ok(text.into_owned())
}

/// A date as exports write it: 2024-04-01, 2024/4/1, or a Japanese era date.
fn date(s: &str) -> Option<NaiveDate> {
    crate::drafts::parse_date(s)
}

/// A parsed export: the good rows (with their line) and the rows that were refused.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<(usize, CaseFields)>,
    pub errors: Vec<RowError>,
}

/// Parses every row; good rows and row errors both come back.
pub fn parse(text: &str, mapping: &Mapping) -> Result<Parsed, FileError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| FileError(format!("見出し行を読めません: {e}")))?
        .iter()
        .map(|h| h.trim().nfkc().collect())
        .collect();
    let column = |names: &[String]| -> Option<usize> {
        names.iter().find_map(|n| {
            let n: String = n.nfkc().collect();
            headers.iter().position(|h| *h == n)
        })
    };
    let mut cols: BTreeMap<&'static str, Option<usize>> = BTreeMap::new();
    for (field, names) in [
        ("recipient_no", &mapping.recipient_no),
        ("application_no", &mapping.application_no),
        ("name", &mapping.name),
        ("kana", &mapping.kana),
        ("birth_date", &mapping.birth_date),
        ("address", &mapping.address),
        ("disease", &mapping.disease),
        ("valid_from", &mapping.valid_from),
        ("valid_to", &mapping.valid_to),
        ("status", &mapping.status),
        ("my_number", &mapping.my_number),
    ] {
        cols.insert(field, column(names));
    }
    for required in ["recipient_no", "name", "birth_date"] {
        if cols[required].is_none() {
            let names = match required {
                "recipient_no" => &mapping.recipient_no,
                "name" => &mapping.name,
                _ => &mapping.birth_date,
            };
            return Err(FileError(format!("必須の列がありません: {}", names.join(" / "))));
        }
    }
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    line, field: "行".into(), message: format!("CSV として読めません: {e}")
                });
                continue;
            }
        };
        let get = |field: &str| -> String {
            cols[field].and_then(|c| record.get(c)).map(|v| v.trim().nfkc().collect()).unwrap_or_default()
        };
        let row = case_fields(&get, line);
        match row {
            Ok(r) => rows.push((line, r)),
            Err(e) => errors.push(e),
        }
    }
    Ok(Parsed { rows, errors })
}

/// One case from its fields by name (`get` returns "" for a missing one), checked; `line`
/// names the row in errors (a CSV line, or an API request's item number).
pub fn case_fields(get: &dyn Fn(&str) -> String, line: usize) -> Result<CaseFields, RowError> {
    let bad = |field: &str, message: String| RowError { line, field: field.into(), message };
    let recipient_no = get("recipient_no");
    if recipient_no.is_empty() || !recipient_no.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("受給者番号", format!("「{recipient_no}」は数字の受給者番号ではありません")));
    }
    let name = get("name");
    if name.is_empty() {
        return Err(bad("氏名", "空欄です".into()));
    }
    let b = get("birth_date");
    let birth_date = date(&b).ok_or_else(|| bad("生年月日", format!("「{b}」は日付ではありません")))?;
    let optional_date = |field: &str, label: &str| -> Result<Option<NaiveDate>, RowError> {
        let v = get(field);
        if v.is_empty() {
            return Ok(None);
        }
        date(&v).map(Some).ok_or_else(|| bad(label, format!("「{v}」は日付ではありません")))
    };
    let valid_from = optional_date("valid_from", "有効期間開始")?;
    let valid_to = optional_date("valid_to", "有効期間終了")?;
    if let (Some(a), Some(b)) = (valid_from, valid_to)
        && a > b
    {
        return Err(bad("有効期間", format!("開始 {a} が終了 {b} より後です")));
    }
    let s = get("status");
    let status = if s.is_empty() {
        CaseStatus::Received
    } else {
        CaseStatus::parse(&s)
            .ok_or_else(|| bad("状態", format!("「{s}」は状態ではありません（受付・審査中・認定・非認定・通知済）")))?
    };
    let n: String = get("my_number").chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let my_number = if n.is_empty() {
        None
    } else if n.len() == 12 && crate::jp::my_number_valid(&n) {
        Some(n)
    } else {
        // Never echo the number itself into a report.
        return Err(bad("個人番号", "12桁の個人番号ではないか、検査用数字が一致しません".into()));
    };
    Ok(CaseFields {
        my_number,
        recipient_no,
        application_no: get("application_no"),
        name,
        kana: get("kana"),
        birth_date,
        address: get("address"),
        disease: get("disease"),
        valid_from,
        valid_to,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "受給者番号,申請整理番号,氏名,フリガナ,生年月日,住所,病名,有効期間開始,有効期間終了,状態\n\
        1300001,R6-0001,山田　太郎,ヤマダ　タロウ,昭和35年5月1日,東京都新宿区西新宿2丁目8番1号,潰瘍性大腸炎,2024-04-01,2025-03-31,認定\n\
        13000X2,R6-0002,佐藤　花子,サトウ　ハナコ,1970/1/2,東京都,パーキンソン病,,,審査中\n\
        1300003,R6-0003,鈴木　一郎,スズキ　イチロウ,昭和99年1月1日,東京都,クローン病,,,受付\n\
        1300004,R6-0004,高橋　次郎,タカハシ　ジロウ,1980-02-03,東京都,クローン病,,,保留\n\
        1300005,R6-0005,田中　三郎,タナカ　サブロウ,1981-02-03,東京都,クローン病,2025-04-01,2024-03-31,\n";

    fn mapping() -> Mapping {
        Mapping::parse(DEFAULT_MAPPING).unwrap()
    }

    #[test]
    fn good_rows_import_and_bad_rows_are_named_by_line_and_field() {
        let Parsed { rows, errors } = parse(CSV, &mapping()).unwrap();
        assert_eq!(rows.len(), 1);
        let (line, r) = &rows[0];
        assert_eq!((*line, r.recipient_no.as_str(), r.status), (2, "1300001", CaseStatus::Approved));
        assert_eq!(r.birth_date.to_string(), "1960-05-01");
        assert_eq!(r.name, "山田 太郎", "NFKC: the ideographic space becomes a space");
        let named: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(named, [(3, "受給者番号"), (4, "生年月日"), (5, "状態"), (6, "有効期間")]);
        assert!(errors[0].to_string().starts_with("3行目 受給者番号"));
    }

    #[test]
    fn shift_jis_and_bom_are_read() {
        let sjis = encoding_rs::SHIFT_JIS.encode(CSV).0.into_owned();
        assert_eq!(decode(&sjis).unwrap(), CSV);
        let bom = [b"\xEF\xBB\xBF".as_slice(), CSV.as_bytes()].concat();
        assert_eq!(decode(&bom).unwrap(), CSV);
        assert!(decode(&[0x82, 0xFF, 0xFF, 0x80]).is_err());
    }

    #[test]
    fn a_missing_required_column_stops_the_file() {
        let e = parse("氏名,生年月日\n山田,1960-01-01\n", &mapping()).unwrap_err();
        assert!(e.0.contains("受給者番号"), "{e}");
        // An office mapping with its own header names.
        let m =
            Mapping::parse(&DEFAULT_MAPPING.replace("[\"受給者番号\", \"recipient_no\"]", "[\"受給者No\"]")).unwrap();
        let rows = parse("受給者No,氏名,生年月日\n42,山田,1960-01-01\n", &m).unwrap().rows;
        assert_eq!(rows[0].1.recipient_no, "42");
    }
}
