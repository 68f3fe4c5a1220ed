//! `hozon export …`: the subsidy system's input data (入力データ作成) at the terminal: the
//! pool and its check list, a run (the password shown once), the download, hand-over,
//! cancellation and the result file. `--user` acts as that person (password and, once
//! enrolled, their one-time code: a run needs a recent second factor); without it, the
//! operator holding the key file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Subcommand;

use super::Cli;
use crate::auth::Actor;
use crate::csvout::Encoding;
use crate::export::{ExportRun, lists};

#[derive(Subcommand)]
pub enum ExportCommand {
    /// What a run would take now: rows, held applications and why (nothing is written)
    Preview {
        /// First receipt date taken (Japan date) [default: no limit]
        #[arg(long)]
        since: Option<NaiveDate>,
        /// Last receipt date taken [default: no limit]
        #[arg(long)]
        until: Option<NaiveDate>,
        /// Also write the check lists (CSV and PDF) into this new AES-256 ZIP (password shown once)
        #[arg(long)]
        lists: Option<PathBuf>,
        #[arg(long)]
        user: Option<String>,
    },
    /// Make an export run: the protected ZIP is sealed in the store; its password is shown once
    Create {
        #[arg(long)]
        since: Option<NaiveDate>,
        #[arg(long)]
        until: Option<NaiveDate>,
        #[arg(long)]
        user: Option<String>,
    },
    /// Export runs, newest first
    List,
    /// One run: state, counts, manifest, the rows held back
    Show { run: String },
    /// Write a run's check lists (エラーチェックリスト, 件数表) as CSV and PDF into a new
    /// AES-256 ZIP (they carry names; the password is shown once)
    Lists {
        run: String,
        #[arg(long)]
        out: PathBuf,
        /// CSV encoding: utf8 (with BOM) or cp932
        #[arg(long, default_value = "utf8", value_parser = ["utf8", "cp932"])]
        encoding: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Take the run's ZIP (once)
    Download {
        run: String,
        /// File to write (must not exist)
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        user: Option<String>,
    },
    /// Confirm the hand-over to the subsidy system; the file is erased from the store
    Handover {
        run: String,
        /// To whom / which terminal imported it
        #[arg(long)]
        recipient: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Withdraw a run before hand-over: its rows return to the pool
    Cancel {
        run: String,
        #[arg(long)]
        reason: String,
        /// After a download: the copy taken was destroyed and not imported
        #[arg(long)]
        copy_destroyed: bool,
        #[arg(long)]
        user: Option<String>,
    },
    /// Import the subsidy system's result file (accepted rows linked, refused rows back to review)
    Result {
        run: String,
        file: PathBuf,
        #[arg(long)]
        user: Option<String>,
    },
}

fn actor(h: &crate::Hozon, user: &Option<String>) -> anyhow::Result<Actor> {
    match user {
        Some(u) => super::person(h, u),
        None => Ok(super::operator()),
    }
}

fn print_run(r: &ExportRun) {
    outln!("書き出し {}  {}", r.id, r.status.label_ja());
    outln!("  作成 {}（日本時間）  レイアウト {}", r.created.label_ja(), r.layout);
    outln!(
        "  出力 {} 件（うち訂正 {} 件）  保留 {} 件",
        r.rows.len(),
        r.rows.iter().filter(|x| x.correction).count(),
        r.held.len()
    );
    if !r.file.name.is_empty() {
        outln!("  ファイル {}  {} バイト  SHA-256 {}", r.file.name, r.file.bytes, r.file.sha256);
        outln!("  中身 {}  SHA-256 {}", r.file.data_name, r.file.data_sha256);
    }
    if let Some(d) = &r.downloaded {
        outln!("  ダウンロード {}", d.label_ja());
    }
    if let Some(h) = &r.handed_over {
        outln!("  引渡し {}  引渡し先 {}", h.stamp.label_ja(), h.to);
    }
    if let Some((s, why)) = &r.cancelled {
        outln!("  取消 {}  理由 {why}", s.label_ja());
    }
    if let Some((s, why)) = &r.erased {
        outln!("  消去 {}  {why}", s.label_ja());
    }
    for res in &r.results {
        outln!(
            "  取込結果 {}  受理 {} 不受理 {} 変更なし {} エラー {}",
            res.stamp.label_ja(),
            res.accepted,
            res.rejected,
            res.unchanged,
            res.errors.len()
        );
    }
    for line in lists::count_table(r) {
        outln!("  {}", line.join("\t"));
    }
}

/// The check lists in a new AES-256 ZIP (they carry applicants' names): never plain files.
fn write_lists(
    h: &crate::Hozon,
    actor: &Actor,
    run: &ExportRun,
    out: &std::path::Path,
    enc: Encoding,
) -> anyhow::Result<()> {
    let entries = h.export_error_list(actor, run)?;
    let password = crate::export::new_password();
    let mut zip = crate::archive::AesZip::new(&password);
    zip.put("errors.csv", &lists::errors_csv(&entries, enc)?)?;
    zip.put("errors.pdf", &lists::errors_pdf(run, &entries)?)?;
    zip.put("counts.csv", &lists::counts_csv(run, enc)?)?;
    zip.put("counts.pdf", &lists::counts_pdf(run)?)?;
    let bytes = zip.finish()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("{} に書けません（既にあるファイルには書きません）", out.display()))?;
    std::io::Write::write_all(&mut f, &bytes).with_context(|| format!("{}", out.display()))?;
    outln!("チェックリストを {} に書きました（errors.csv/pdf, counts.csv/pdf、AES-256 ZIP）", out.display());
    outln!("ZIP のパスワード（この一度だけ表示します）: {password}");
    Ok(())
}

pub fn run(cli: &Cli, c: &ExportCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    match c {
        ExportCommand::Preview { since, until, lists: dir, user } => {
            let a = actor(&h, user)?;
            let plan = h.export_preview(&a, *since, *until)?;
            let r = &plan.run;
            outln!("プレビュー（まだ作成していません）  レイアウト {}", r.layout);
            outln!(
                "  出力対象 {} 件（うち訂正 {} 件）  保留 {} 件",
                r.rows.len(),
                r.rows.iter().filter(|x| x.correction).count(),
                r.held.len()
            );
            for line in lists::count_table(r) {
                outln!("  {}", line.join("\t"));
            }
            for held in &plan.run.held {
                outln!("  保留 {}  {}", held.application, held.reasons.join("／"));
            }
            if let Some(dir) = dir {
                write_lists(&h, &a, &plan.run, dir, Encoding::Utf8Bom)?;
            }
        }
        ExportCommand::Create { since, until, user } => {
            let created = h.export_create(&actor(&h, user)?, *since, *until)?;
            print_run(&created.run);
            outln!("ZIP のパスワード（この一度だけ表示します。控えて別経路で伝えてください）:");
            outln!("  {}", created.password);
        }
        ExportCommand::List => {
            for r in h.export_runs(&super::operator())? {
                outln!(
                    "{}  {}  出力 {} 件  保留 {} 件  作成 {}",
                    r.id,
                    r.status.label_ja(),
                    r.rows.len(),
                    r.held.len(),
                    r.created.label_ja()
                );
            }
        }
        ExportCommand::Show { run } => {
            let r = h.export_run(&super::operator(), run)?;
            print_run(&r);
            for held in &r.held {
                outln!("  保留 {}  {}", held.application, held.reasons.join("／"));
            }
        }
        ExportCommand::Lists { run, out, encoding, user } => {
            let a = actor(&h, user)?;
            let r = h.export_run(&a, run)?;
            let enc = if encoding == "cp932" { Encoding::Cp932 } else { Encoding::Utf8Bom };
            write_lists(&h, &a, &r, out, enc)?;
        }
        ExportCommand::Download { run, out, user } => {
            let a = actor(&h, user)?;
            // Refuse before the one download is spent.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(out)
                .with_context(|| format!("{} に書けません（既にあるファイルには書きません）", out.display()))?;
            let (info, bytes) = match h.export_download(&a, run) {
                Ok(x) => x,
                Err(e) => {
                    drop(f);
                    let _ = std::fs::remove_file(out);
                    return Err(e.into());
                }
            };
            std::io::Write::write_all(&mut f, &bytes).with_context(|| format!("{}", out.display()))?;
            f.sync_all()?;
            outln!("{} を書きました（{} バイト、SHA-256 {}）", out.display(), info.bytes, info.sha256);
        }
        ExportCommand::Handover { run, recipient, user } => {
            let r = h.export_hand_over(&actor(&h, user)?, run, recipient)?;
            outln!("{} の引渡しを記録し、ファイルを消去しました。", r.id);
        }
        ExportCommand::Cancel { run, reason, copy_destroyed, user } => {
            let r = h.export_cancel(&actor(&h, user)?, run, reason, *copy_destroyed)?;
            outln!("{} を取り消しました。{} 件の申請は次の書き出しに戻りました。", r.id, r.rows.len());
        }
        ExportCommand::Result { run, file, user } => {
            let bytes = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
            let r = h.export_result(&actor(&h, user)?, run, &bytes)?;
            outln!(
                "取込結果: 受理 {} 件、不受理 {} 件（審査に差し戻し）、登録済み {} 件",
                r.accepted,
                r.rejected,
                r.unchanged
            );
            for e in &r.errors {
                errln!("  {e}");
            }
            if !r.errors.is_empty() {
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
