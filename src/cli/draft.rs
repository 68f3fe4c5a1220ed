use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::drafts::{self, Draft};
use crate::forms::{self, template};
use crate::ocr::ppocr::{PpOcr, default_model};

#[derive(Subcommand)]
pub enum DraftCommand {
    /// Recognise scan files against the form templates and print their drafts (nothing is
    /// stored); the two sheets of a carbon-copy form given together are reconciled
    Read {
        files: Vec<PathBuf>,
        /// Print JSON lines instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show the stored draft of a page (record id)
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// List the pages no form template fitted, waiting to be filed (oldest first), with the
    /// document type their text suggests
    Unfiled {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// File a page no template fitted: `--as form:TEMPLATE` (e.g. form:application#1) reads it
    /// as that form; `--as type:KEY` (e.g. type:resident_record) files it as a document type
    File {
        id: String,
        #[arg(long = "as")]
        filing: String,
    },
}

fn record_id(id: &str) -> anyhow::Result<crate::store::RecordId> {
    crate::store::RecordId::parse(id).ok_or_else(|| anyhow::anyhow!("{id:?} is not a record id"))
}

fn unfiled(cli: &super::Cli, limit: usize) -> anyhow::Result<ExitCode> {
    let hozon = cli.open()?;
    let (total, items) = hozon.sorting_queue(&super::operator(), limit)?;
    for i in &items {
        let suggestion = i.suggestion.as_deref().map(crate::index::vocab::form_label).unwrap_or_default();
        let mark = if i.my_number { " 個人番号あり" } else { "" };
        outln!(
            "{} {} {} {}{mark}",
            i.id,
            i.received_at.with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M"),
            i.batch.as_deref().unwrap_or("-"),
            if suggestion.is_empty() { "-".to_owned() } else { format!("候補:{suggestion}") }
        );
    }
    outln!("未分類 {total} 件");
    Ok(ExitCode::SUCCESS)
}

fn file(cli: &super::Cli, id: &str, filing: &str) -> anyhow::Result<ExitCode> {
    let hozon = cli.open()?;
    let filing = crate::app::Filing::parse(filing)
        .ok_or_else(|| anyhow::anyhow!("--as {filing:?}: give form:TEMPLATE (e.g. form:application#1) or type:KEY"))?;
    let rec = hozon.file_page(&super::operator(), &record_id(id)?, &filing)?;
    let what = rec.doc_type.as_deref().unwrap_or(&rec.class);
    outln!("{id}: {} として仕分けました（保存期間の分類 {}）", crate::index::vocab::form_label(what), rec.class);
    Ok(ExitCode::SUCCESS)
}

fn show(cli: &super::Cli, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let hozon = cli.open()?;
    let id = record_id(id)?;
    let actor = super::operator();
    match hozon.draft(&actor, &id)? {
        Some(d) if json => outln!("{}", serde_json::to_string(&d)?),
        Some(d) => print(std::path::Path::new(id.as_str()), &d),
        None => {
            outln!("{id}: 様式を判別できなかったページです（下書きなし）");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print(file: &std::path::Path, d: &Draft) {
    outln!("{} — {} ({})", file.display(), d.template, d.form);
    print_fields(d, |f| &f.label);
}

/// One line per field: flagged mark, `key` (label or name), value, confidence, flags.
pub(super) fn print_fields(d: &Draft, key: impl Fn(&drafts::DraftField) -> &str) {
    for f in &d.fields {
        let flags: Vec<String> = f.flags.iter().map(|fl| fl.message_ja()).collect();
        let mark = if f.flagged() { "⚠" } else { " " };
        outln!("  {mark} {:<16} {:<28} {:.2}  {}", key(f), f.display_ja(), f.confidence, flags.join("／"));
    }
}

pub fn run(cli: &super::Cli, c: &DraftCommand) -> anyhow::Result<ExitCode> {
    let (files, json) = match c {
        DraftCommand::Read { files, json } => (files, *json),
        DraftCommand::Show { id, json } => return show(cli, id, *json),
        DraftCommand::Unfiled { limit } => return unfiled(cli, *limit),
        DraftCommand::File { id, filing } => return file(cli, id, filing),
    };
    let templates = template::load_dir(&template::default_dir())?;
    let mut ocr = PpOcr::load(&default_model())?;
    let mut drafts: Vec<Option<Draft>> = Vec::with_capacity(files.len());
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let page = crate::capture::decode_page(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let scan = forms::read_scan(&page.gray, page.dpi, &templates, &mut ocr)?;
        drafts.push(scan.reading.map(|r| {
            let t = templates.iter().find(|t| t.id() == r.template).expect("template of a reading");
            drafts::from_reading(&r, t)
        }));
    }
    // Sheet 1 followed by its sheet 2: one application, two readings.
    drafts::reconcile_pairs(&mut drafts, |_, _| true);
    let mut unclassified = 0;
    for (file, d) in files.iter().zip(&drafts) {
        match (d, json) {
            (Some(d), true) => outln!("{}", serde_json::json!({ "file": file, "draft": d })),
            (Some(d), false) => print(file, d),
            (None, true) => outln!("{}", serde_json::json!({ "file": file, "draft": null })),
            (None, false) => outln!("{} — 様式を判別できませんでした（未分類）", file.display()),
        }
        unclassified += usize::from(d.is_none());
    }
    Ok(if unclassified == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
