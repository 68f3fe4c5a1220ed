//! Rows written in a layout (fixed width or CSV, CP932 or UTF-8) and read back. A value that
//! does not fit (too wide, no code, a character CP932 lacks) is never cut or replaced: the row
//! is held back with the column named. Reading back is what the tests and the benchmark use to
//! compare the file with the truth, and what an office can use to check a file by hand.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use super::layout::{Column, DateFormat, Encoding, Format, Layout, LineEnding, Pad, ValueKind, source_kind};
use super::rows::Problem;

fn encoded_len(enc: Encoding, s: &str) -> Result<usize, char> {
    match enc {
        Encoding::Utf8 => Ok(s.len()),
        Encoding::Cp932 => crate::csvout::to_cp932(s).map(|b| b.len()).map_err(|e| match e {
            crate::csvout::Error::Unmappable { ch, .. } => ch,
            crate::csvout::Error::Write(_) => '\u{FFFD}',
        }),
    }
}

fn date_text(layout: &Layout, fmt: DateFormat, d: NaiveDate) -> Option<String> {
    Some(match fmt {
        DateFormat::Iso => d.to_string(),
        DateFormat::Yyyymmdd => d.format("%Y%m%d").to_string(),
        DateFormat::Wareki => crate::jp::format_era(d)?,
        DateFormat::WarekiCode => {
            let (era, year) = crate::jp::era_of(d)?;
            let code = layout.codes.get("era")?.get(era)?;
            format!("{code}{year:02}{:02}{:02}", d.month(), d.day())
        }
    })
}

/// One column's cell for a canonical value (see `rows::RowValues`).
fn cell(layout: &Layout, c: &Column, value: &str) -> Result<String, String> {
    let kind = source_kind(&c.source).unwrap_or(ValueKind::Text);
    let text = match kind {
        _ if value.is_empty() => String::new(),
        ValueKind::Date => {
            let d = NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map_err(|_| format!("「{}」が日付ではありません", c.name))?;
            date_text(layout, c.date_format.unwrap_or(layout.date_format), d)
                .ok_or_else(|| format!("「{}」を元号で表せません", c.name))?
        }
        ValueKind::Code | ValueKind::Flag => {
            let table = c.codes.as_deref().and_then(|t| layout.codes.get(t));
            table
                .and_then(|t| t.get(value))
                .cloned()
                .ok_or_else(|| format!("「{}」の値に対応する符号がコード表にありません", c.name))?
        }
        ValueKind::Text => value.to_owned(),
    };
    if c.required && text.is_empty() {
        return Err(format!("必須の「{}」が空です", c.name));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("「{}」に改行・タブなどの制御文字があります", c.name));
    }
    if c.pad == Pad::Zero && !text.chars().all(|ch| ch.is_ascii_digit()) {
        return Err(format!("「{}」は数字だけの列です", c.name));
    }
    // The character itself is not quoted: the reason is kept in the run's record.
    let len =
        encoded_len(layout.encoding, &text).map_err(|_| format!("「{}」に CP932 で表せない文字があります", c.name))?;
    if let Some(w) = c.width
        && len > w
    {
        return Err(format!("「{}」が {w} バイトを超えます（{len} バイト）", c.name));
    }
    Ok(match (layout.format, c.width, c.pad) {
        (Format::Fixed, Some(w), Pad::Space) => format!("{text}{}", " ".repeat(w - len)),
        (Format::Fixed, Some(w), Pad::Zero) => format!("{}{text}", "0".repeat(w - len)),
        _ => text,
    })
}

/// A row's cells in column order, or every reason it cannot be written.
pub fn cells(layout: &Layout, values: &BTreeMap<String, String>) -> Result<Vec<String>, Vec<Problem>> {
    let mut out = Vec::with_capacity(layout.columns.len());
    let mut problems = Vec::new();
    for c in &layout.columns {
        match cell(layout, c, values.get(&c.source).map_or("", String::as_str)) {
            Ok(v) => out.push(v),
            Err(e) => problems.push(Problem::hold(e)),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

fn eol(layout: &Layout) -> &'static str {
    match layout.line_ending {
        LineEnding::Crlf => "\r\n",
        LineEnding::Lf => "\n",
    }
}

/// The data file: every row (already checked by [`cells`]) in the layout's encoding.
pub fn render(layout: &Layout, rows: &[Vec<String>]) -> Result<Vec<u8>, String> {
    let eol = eol(layout);
    let mut text = String::new();
    match layout.format {
        Format::Fixed => {
            for r in rows {
                text.push_str(&r.concat());
                text.push_str(eol);
            }
        }
        Format::Csv => {
            let term = if eol == "\r\n" { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') };
            let mut w = csv::WriterBuilder::new().terminator(term).from_writer(Vec::new());
            if layout.header {
                w.write_record(layout.columns.iter().map(|c| &c.name)).map_err(|e| e.to_string())?;
            }
            for r in rows {
                w.write_record(r).map_err(|e| e.to_string())?;
            }
            text = String::from_utf8(w.into_inner().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
    }
    match layout.encoding {
        Encoding::Utf8 => Ok(text.into_bytes()),
        Encoding::Cp932 => crate::csvout::to_cp932(&text).map_err(|e| e.to_string()),
    }
}

fn decode(layout: &Layout, bytes: &[u8]) -> Result<String, String> {
    match layout.encoding {
        Encoding::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|e| format!("UTF-8 ではありません: {e}")),
        Encoding::Cp932 => {
            let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(bytes);
            if bad { Err("CP932 として読めないバイトがあります".into()) } else { Ok(text.into_owned()) }
        }
    }
}

/// Reads a data file back into cells by column name (padding removed).
pub fn parse(layout: &Layout, bytes: &[u8]) -> Result<Vec<BTreeMap<String, String>>, String> {
    let mut out = Vec::new();
    match layout.format {
        Format::Fixed => {
            let eol = eol(layout).as_bytes();
            let width: usize = layout.columns.iter().filter_map(|c| c.width).sum();
            for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").filter(|_| eol.len() == 2).unwrap_or(line);
                if line.is_empty() {
                    continue;
                }
                if line.len() != width {
                    return Err(format!(
                        "{} 行目の長さが {} バイトです（レイアウトは {width} バイト）",
                        n + 1,
                        line.len()
                    ));
                }
                let mut row = BTreeMap::new();
                let mut at = 0;
                for c in &layout.columns {
                    let w = c.width.unwrap_or(0);
                    let s = decode(layout, &line[at..at + w])?;
                    let s = match c.pad {
                        Pad::Space => s.trim_end_matches(' ').to_owned(),
                        Pad::Zero => s,
                    };
                    row.insert(c.name.clone(), s);
                    at += w;
                }
                out.push(row);
            }
        }
        Format::Csv => {
            let text = decode(layout, bytes)?;
            let mut r = csv::ReaderBuilder::new().has_headers(layout.header).from_reader(text.as_bytes());
            for rec in r.records() {
                let rec = rec.map_err(|e| e.to_string())?;
                out.push(layout.columns.iter().zip(rec.iter()).map(|(c, v)| (c.name.clone(), v.to_owned())).collect());
            }
        }
    }
    Ok(out)
}

/// A cell read back as the canonical value it was written from (dates ISO, codes as words):
/// the inverse of the writer, for comparing a file with the drafts or the truth.
pub fn canonical(layout: &Layout, c: &Column, cell: &str) -> String {
    if cell.is_empty() {
        return String::new();
    }
    match source_kind(&c.source).unwrap_or(ValueKind::Text) {
        ValueKind::Date => {
            let fmt = c.date_format.unwrap_or(layout.date_format);
            let d = match fmt {
                DateFormat::Iso => NaiveDate::parse_from_str(cell, "%Y-%m-%d").ok(),
                DateFormat::Yyyymmdd => NaiveDate::parse_from_str(cell, "%Y%m%d").ok(),
                DateFormat::Wareki => crate::jp::parse_era(cell),
                DateFormat::WarekiCode => layout.codes.get("era").and_then(|eras| {
                    let (era, _) = eras.iter().find(|(_, code)| cell.starts_with(code.as_str()))?;
                    let rest = &cell[eras[era].len()..];
                    let (y, m, d) = (rest.get(..2)?, rest.get(2..4)?, rest.get(4..6)?);
                    crate::jp::parse_era(&format!("{era}{}年{}月{}日", y.parse::<u32>().ok()?, m, d))
                }),
            };
            d.map_or_else(|| format!("?{cell}"), |d| d.to_string())
        }
        ValueKind::Code | ValueKind::Flag => c
            .codes
            .as_deref()
            .and_then(|t| layout.codes.get(t))
            .and_then(|t| t.iter().find(|(_, code)| code.as_str() == cell))
            .map_or_else(|| format!("?{cell}"), |(word, _)| word.clone()),
        ValueKind::Text => match c.pad {
            Pad::Zero => match cell.trim_start_matches('0') {
                "" => "0".to_owned(),
                v => v.to_owned(),
            },
            Pad::Space => cell.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        let text =
            std::fs::read_to_string(crate::resources::root().join("export-layouts/subsidy-system.toml")).unwrap();
        Layout::parse(&text, "subsidy-system.toml").unwrap()
    }

    fn values() -> BTreeMap<String, String> {
        [
            ("row.key", "EX20261130-01-00001"),
            ("row.kind", "通常"),
            ("row.received_on", "2026-11-30"),
            ("application.application_type", "新規"),
            ("application.application_date", "2026-11-20"),
            ("application.name", "髙橋 太郎"),
            ("application.kana", "タカハシ タロウ"),
            ("application.sex", "男"),
            ("application.birth_date", "1955-01-08"),
            ("application.address", "東京都新宿区西新宿二丁目8番1号"),
            ("application.insurer_number", "138024"),
            ("application.disease_no", "97"),
            ("application.disease", "潰瘍性大腸炎"),
            ("application.high_cost", "true"),
            ("my_number.my_number", "123456789018"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn fixed_width_cp932_round_trips() {
        let l = layout();
        let row = cells(&l, &values()).unwrap_or_else(|e| panic!("{e:?}"));
        let bytes = render(&l, &[row.clone(), row]).unwrap();
        let width: usize = l.columns.iter().filter_map(|c| c.width).sum();
        assert_eq!(bytes.len(), 2 * (width + 2));
        let back = parse(&l, &bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0]["生年月日"], "3300108", "昭和30年1月8日 as era code + YYMMDD");
        assert_eq!(back[0]["疾病番号"], "097");
        for c in &l.columns {
            let want = values().get(&c.source).cloned().unwrap_or_default();
            assert_eq!(canonical(&l, c, &back[0][&c.name]), want, "{}", c.name);
        }
    }

    #[test]
    fn what_does_not_fit_is_refused_by_column() {
        let l = layout();
        let mut v = values();
        v.insert("application.name".into(), "山".repeat(21));
        v.insert("application.sex".into(), "不明".into());
        v.insert("application.kana".into(), "タロウ😀".into());
        v.remove("application.address");
        let e = cells(&l, &v).unwrap_err();
        let m: Vec<&str> = e.iter().map(|p| p.message.as_str()).collect();
        assert!(m.iter().any(|m| m.contains("「氏名」が 40 バイトを超えます（42 バイト）")), "{m:?}");
        assert!(m.iter().any(|m| m.contains("「性別」の値に対応する符号")), "{m:?}");
        assert!(m.iter().any(|m| m.contains("「フリガナ」に CP932 で表せない文字")), "{m:?}");
        assert!(m.iter().all(|m| !m.contains('😀')), "a reason never quotes the value");
        assert!(m.iter().any(|m| m.contains("必須の「住所」が空です")), "{m:?}");
    }

    #[test]
    fn csv_utf8_with_iso_dates() {
        let mut l = layout();
        l.format = Format::Csv;
        l.encoding = Encoding::Utf8;
        l.header = true;
        l.date_format = DateFormat::Iso;
        for c in &mut l.columns {
            c.pad = Pad::Space;
            c.width = None;
        }
        let bytes = render(&l, &[cells(&l, &values()).unwrap()]).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("整理番号,データ区分,"), "{text}");
        assert!(text.contains(",1955-01-08,"));
        let back = parse(&l, &bytes).unwrap();
        assert_eq!(back[0]["氏名"], "髙橋 太郎");
    }
}
