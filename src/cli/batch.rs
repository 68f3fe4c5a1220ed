//! `hozon batch …` (the receipt ledger) and `hozon watch` (hot folders).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::Cli;
use crate::capture::batch::{CsvEncoding, Filter, NewBatch, Status};
use crate::capture::hotfolder;
use crate::capture::ingest::IngestOptions;

#[derive(Subcommand)]
pub enum BatchCommand {
    /// Log an incoming batch (進達); prints its 受付番号
    New {
        /// Sending municipality (区市町村), e.g. 新宿区
        #[arg(long)]
        municipality: String,
        /// Receipt date, YYYY-MM-DD (default: today)
        #[arg(long)]
        received_on: Option<String>,
        /// 交換便, 簡易書留, 郵送 or 窓口 (or exchange_bag, recorded_mail, post, counter)
        #[arg(long, default_value = "交換便")]
        channel: String,
        /// Pages the covering letter says are enclosed
        #[arg(long)]
        pages: String,
        #[arg(long, default_value = "")]
        note: String,
        /// Also create the batch's folder under this hot folder
        #[arg(long)]
        hot_folder: Option<PathBuf>,
    },
    /// The receipt ledger (収受簿), newest first
    List {
        #[arg(long)]
        municipality: Option<String>,
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// waiting, receiving, complete, mismatch, closed
        #[arg(long)]
        status: Option<String>,
        /// Write CSV to this file instead of a table
        #[arg(long)]
        csv: Option<PathBuf>,
        /// CSV encoding: utf8 (with BOM) or cp932 (Shift_JIS)
        #[arg(long, default_value = "utf8", value_parser = ["utf8", "cp932"])]
        encoding: String,
    },
    /// Close a batch (a note is required when the page count differs)
    Close {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

pub fn run(cli: &Cli, c: &BatchCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    let actor = super::operator();
    match c {
        BatchCommand::New { municipality, received_on, channel, pages, note, hot_folder } => {
            let new = NewBatch {
                municipality: municipality.clone(),
                received_on: received_on.clone().unwrap_or_else(|| crate::jp::today().to_string()),
                channel: channel.clone(),
                expected_pages: pages.clone(),
                note: note.clone(),
            };
            let b = h.create_batch(&actor, &new)?;
            outln!("{}", b.id);
            if let Some(root) = hot_folder {
                let dir = hotfolder::batch_folder(root, &b.id)?;
                errln!("スキャナの保存先: {}", dir.display());
            }
        }
        BatchCommand::List { municipality, from, to, status, csv, encoding } => {
            let filter = Filter { municipality: municipality.clone(), from: *from, to: *to, status: status.clone() };
            if let Some(path) = csv {
                let enc = if encoding == "cp932" { CsvEncoding::Cp932 } else { CsvEncoding::Utf8Bom };
                let bytes = h.ledger_csv(&actor, &filter, enc)?;
                std::fs::write(path, bytes)?;
                errln!("{} に書き出しました", path.display());
                return Ok(ExitCode::SUCCESS);
            }
            outln!("受付番号       受付日      送付元          方法      予定  受領  読取  失敗  状態");
            for (b, c) in h.batches(&actor, &filter)? {
                outln!(
                    "{}  {}  {:<12}  {:<6}  {:>4}  {:>4}  {:>4}  {:>4}  {}",
                    b.id,
                    b.received_on,
                    b.municipality,
                    b.channel.label_ja(),
                    b.expected_pages,
                    c.received(),
                    c.read(),
                    c.failed,
                    Status::of(&b, &c).label_ja()
                );
            }
        }
        BatchCommand::Close { id, note } => {
            let b = h.close_batch(&actor, id, note)?;
            outln!("{} を完了にしました", b.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct WatchArgs {
    /// Hot folder root: scans in <root>/<受付番号>/ go into that batch
    root: PathBuf,
    /// One pass, then exit (for cron or tests)
    #[arg(long)]
    once: bool,
    /// Seconds between passes
    #[arg(long, default_value_t = 2)]
    interval: u64,
    /// A scan must be unchanged this many seconds before it is taken
    #[arg(long, default_value_t = 2)]
    settle: u64,
    #[arg(long, default_value_t = 2)]
    jobs: usize,
}

pub fn watch(cli: &Cli, a: &WatchArgs) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    let opts = IngestOptions {
        jobs: a.jobs,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ..Default::default()
    };
    let mut warned = std::collections::HashSet::new();
    loop {
        let poll = hotfolder::poll(&h, &super::operator(), &a.root, Duration::from_secs(a.settle), &opts)?;
        for stray in poll.strays {
            if warned.insert(stray.clone()) {
                errln!("受付番号のないフォルダ・ファイルは取り込みません: {}", stray.display());
            }
        }
        for (batch, report) in &poll.ingested {
            super::ingest::print_report(report);
            super::ingest::print_batch(&h, batch)?;
        }
        if a.once {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(a.interval));
    }
}
