//! The lists staff work from after a run (or before it, as a preview): the error check list
//! (エラーチェックリスト: every row exported with a warning and every application held back,
//! with the reasons) and the count list (件数表: per municipality and 申請区分), each as CSV
//! and as a printable PDF. Names come from the caller (drawn from the sealed drafts when the
//! list is made), never from the run's record.

use std::collections::BTreeMap;

use super::ExportRun;
use crate::csvout::{Csv, Encoding};
use crate::error::{Error, Result};
use crate::pdf::{self, Flow};

/// One line of the error check list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// 整理番号, or empty for a row held back.
    pub key: String,
    pub application: String,
    pub held: bool,
    pub municipality: String,
    pub kind: String,
    /// The applicant's name as verified (（廃棄済み） when the page is gone, （利用停止中） for a
    /// suspended person).
    pub name: String,
    pub reasons: Vec<String>,
}

/// The error check list of a run: held rows first, then rows exported with warnings.
pub fn error_entries(run: &ExportRun, name_of: &dyn Fn(&str) -> String) -> Vec<ListEntry> {
    let held = run.held.iter().map(|h| ListEntry {
        key: String::new(),
        application: h.application.clone(),
        held: true,
        municipality: h.municipality.clone(),
        kind: h.kind.clone(),
        name: name_of(&h.application),
        reasons: h.reasons.clone(),
    });
    let warned = run.rows.iter().filter(|r| !r.warnings.is_empty()).map(|r| ListEntry {
        key: r.key.clone(),
        application: r.application.clone(),
        held: false,
        municipality: r.municipality.clone(),
        kind: if r.correction { format!("{}（訂正）", r.kind) } else { r.kind.clone() },
        name: name_of(&r.application),
        reasons: r.warnings.clone(),
    });
    held.chain(warned).collect()
}

/// Counts per municipality: by 申請区分 (新規/更新/変更), corrections, held back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Count {
    pub by_kind: BTreeMap<String, usize>,
    pub corrections: usize,
    pub held: usize,
}

pub const KINDS: [&str; 3] = ["新規", "更新", "変更"];

pub fn counts(run: &ExportRun) -> BTreeMap<String, Count> {
    let mut out: BTreeMap<String, Count> = BTreeMap::new();
    for r in &run.rows {
        let c = out.entry(r.municipality.clone()).or_default();
        if r.correction {
            c.corrections += 1;
        } else {
            *c.by_kind.entry(r.kind.clone()).or_default() += 1;
        }
    }
    for h in &run.held {
        out.entry(h.municipality.clone()).or_default().held += 1;
    }
    out
}

fn csv_error(e: crate::csvout::Error) -> Error {
    Error::Invalid(e.to_string())
}

pub fn errors_csv(entries: &[ListEntry], enc: Encoding) -> Result<Vec<u8>> {
    let mut c = Csv::new();
    c.row(["区分", "整理番号", "受付市区町村", "申請区分", "氏名", "内容", "記録ID"]).map_err(csv_error)?;
    for e in entries {
        let status = if e.held { "保留（未出力）" } else { "警告（出力済）" };
        c.row([status, &e.key, &e.municipality, &e.kind, &e.name, &e.reasons.join("／"), &e.application])
            .map_err(csv_error)?;
    }
    c.finish(enc).map_err(csv_error)
}

/// The count list as a table: a header line, one line per municipality, the total.
pub fn count_table(run: &ExportRun) -> Vec<Vec<String>> {
    let mut head = vec!["受付市区町村".to_owned()];
    head.extend(KINDS.iter().map(|k| (*k).to_owned()));
    head.extend(["訂正".to_owned(), "出力計".to_owned(), "保留".to_owned()]);
    let mut table = vec![head];
    let mut total = Count::default();
    for (m, n) in &counts(run) {
        table.push(count_cells(m, n));
        for (k, v) in &n.by_kind {
            *total.by_kind.entry(k.clone()).or_default() += v;
        }
        total.corrections += n.corrections;
        total.held += n.held;
    }
    table.push(count_cells("合計", &total));
    table
}

pub fn counts_csv(run: &ExportRun, enc: Encoding) -> Result<Vec<u8>> {
    let mut c = Csv::new();
    for line in count_table(run) {
        c.row(&line).map_err(csv_error)?;
    }
    c.finish(enc).map_err(csv_error)
}

fn count_cells(municipality: &str, n: &Count) -> Vec<String> {
    let mut cells = vec![if municipality.is_empty() { "（不明）".to_owned() } else { municipality.to_owned() }];
    let mut sum = n.corrections;
    for k in KINDS {
        let v = n.by_kind.get(k).copied().unwrap_or(0);
        sum += v;
        cells.push(v.to_string());
    }
    cells.extend([n.corrections.to_string(), sum.to_string(), n.held.to_string()]);
    cells
}

fn heading(f: &mut Flow, title: &str, run: &ExportRun) {
    f.line(16.0, 50.0, title);
    f.line(9.5, 50.0, format!("書き出し番号：{}　レイアウト：{}", run.id, run.layout));
    let period = match (run.from, run.to) {
        (None, None) => "全期間".to_owned(),
        (a, b) => format!(
            "{} 〜 {}",
            a.map(crate::jp::era_and_iso).unwrap_or_default(),
            b.map(crate::jp::era_and_iso).unwrap_or_default()
        ),
    };
    f.line(9.5, 50.0, format!("受付日の範囲：{period}　作成：{}（日本時間）", run.created.label_ja()));
    f.line(
        9.5,
        50.0,
        format!("出力 {} 件　保留 {} 件　状態：{}", run.rows.len(), run.held.len(), run.status.label_ja()),
    );
    f.gap(6.0);
}

pub fn errors_pdf(run: &ExportRun, entries: &[ListEntry]) -> Result<Vec<u8>> {
    let mut f = Flow::new();
    heading(&mut f, "エラーチェックリスト", run);
    let cols = |a: &str, b: &str, c: &str, d: &str, e: &str| -> Vec<(f32, usize, String)> {
        vec![
            (40.0, 7, a.to_owned()),
            (90.0, 20, b.to_owned()),
            (195.0, 8, c.to_owned()),
            (250.0, 8, d.to_owned()),
            (300.0, 12, e.to_owned()),
        ]
    };
    let header = cols("区分", "整理番号", "市区町村", "申請区分", "氏名");
    f.row(8.5, &header.iter().map(|(x, n, t)| (*x, *n, t.as_str())).collect::<Vec<_>>());
    if entries.is_empty() {
        f.line(9.0, 50.0, "該当はありません。");
    }
    for e in entries {
        let status = if e.held { "保留" } else { "警告" };
        let cells = cols(status, &e.key, &e.municipality, &e.kind, &e.name);
        f.row(8.0, &cells.iter().map(|(x, n, t)| (*x, *n, t.as_str())).collect::<Vec<_>>());
        for r in &e.reasons {
            for chunk in r.chars().collect::<Vec<_>>().chunks(48) {
                f.line(7.5, 100.0, format!("・{}", chunk.iter().collect::<String>()));
            }
        }
    }
    let (lines, pages) = f.finish(&format!("エラーチェックリスト {}", run.id));
    pdf::render(
        &lines,
        pages,
        &pdf::Info { title: "エラーチェックリスト".into(), subject: run.id.clone(), ..Default::default() },
    )
}

pub fn counts_pdf(run: &ExportRun) -> Result<Vec<u8>> {
    let mut f = Flow::new();
    heading(&mut f, "件数表", run);
    let xs = [50.0, 170.0, 230.0, 290.0, 350.0, 410.0, 470.0];
    let row = |f: &mut Flow, cells: &[String]| {
        let c: Vec<(f32, usize, &str)> = cells.iter().zip(xs).map(|(t, x)| (x, 14, t.as_str())).collect();
        f.row(9.0, &c);
    };
    for line in count_table(run) {
        row(&mut f, &line);
    }
    f.gap(12.0);
    f.line(9.0, 50.0, "確認者印　　　　　　　　照合者印");
    f.line(9.0, 50.0, "［　　　　　　］　　　　［　　　　　　］");
    let (lines, pages) = f.finish(&format!("件数表 {}", run.id));
    pdf::render(&lines, pages, &pdf::Info { title: "件数表".into(), subject: run.id.clone(), ..Default::default() })
}
