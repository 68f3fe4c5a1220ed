use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::Cli;
use crate::capture::ingest::{IngestOptions, Outcome, ingest_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Folder of scans (searched recursively for .png .tif .tiff .jpg .jpeg)
    dir: PathBuf,
    /// Parallel OCR workers
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Leave the scans in the folder after storing them (default: remove each once stored)
    #[arg(long)]
    keep: bool,
    /// The logged batch (受付番号, e.g. B20261125-001) the scans belong to
    #[arg(long)]
    batch: Option<String>,
}

pub(crate) fn progress_bar(len: u64, verb: &str, unit: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len);
    let template = format!("{verb} [{{bar:40}}] {{pos}}/{{len}} {unit} 残り {{eta}}");
    b.set_style(indicatif::ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    b
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let hozon = cli.open()?;
    let opts = IngestOptions {
        jobs: args.jobs,
        keep_files: args.keep,
        progress: std::io::stderr().is_terminal(),
        batch: args.batch.clone(),
    };
    let report = ingest_dir(&hozon, &super::operator(), &args.dir, &opts)?;
    print_report(&report);
    if let Some(b) = &args.batch {
        print_batch(&hozon, b)?;
    }
    // Like ripgrep: the batch finishes, and the exit status says whether anything went wrong.
    Ok(if report.quarantined() + report.failed() + report.refused() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One line per batch: its counts against the expected pages, a mismatch flagged.
pub(crate) fn print_batch(hozon: &crate::app::Hozon, id: &str) -> anyhow::Result<()> {
    use crate::capture::batch::Status;
    let (b, c) = hozon.batch(&super::operator(), id)?;
    let status = Status::of(&b, &c);
    let mark = if status == Status::Mismatch { " ⚠" } else { "" };
    outln!(
        "{id} {}: 予定 {} / 受領 {} (様式 {}, 添付書類 {}, 未分類 {}, 失敗 {}) {}{mark}",
        b.municipality,
        b.expected_pages,
        c.received(),
        c.forms,
        c.attachments,
        c.unclassified,
        c.failed,
        status.label_ja()
    );
    Ok(())
}

pub(crate) fn print_report(report: &crate::capture::ingest::IngestReport) {
    for (path, o) in &report.files {
        match o {
            Outcome::Quarantined(id, why) => {
                outln!("隔離 {}: {why} (record {id})", path.display())
            }
            Outcome::Failed(why) => outln!("失敗 {}: {why}", path.display()),
            Outcome::Refused(why) => outln!("受付不可 {}: {why}", path.display()),
            _ => {}
        }
    }
    let pages = report.stored() as f64;
    outln!(
        "取込完了: 保存 {} / 重複 {} / 隔離 {} / 受付不可 {} / 失敗 {} ({:.1} s, {:.2} pages/s)",
        report.stored(),
        report.duplicates(),
        report.quarantined(),
        report.refused(),
        report.failed(),
        report.seconds,
        if report.seconds > 0.0 { pages / report.seconds } else { 0.0 }
    );
    if report.unfiled > 0 {
        outln!(
            "未分類 {} ページ: 様式を判別できませんでした。仕分け画面（/sorting）または `hozon draft unfiled` で様式か書類の種類を選んでください",
            report.unfiled
        );
    }
}
