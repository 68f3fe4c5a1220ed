//! Retention on the command line: disposal runs (for cron and for officers at a terminal),
//! holds, the forecast, and certificate verification.

use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Subcommand;

use super::Cli;
use crate::retention::{boxes, certificate, run};

#[derive(Subcommand)]
pub enum DisposeCommand {
    /// List the records due on a date in a new draft run (what a scheduled job does)
    Plan {
        /// Date the run is planned for [default: today]
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
    /// Disposal runs and their state
    List,
    /// One run: counts, and each item with its status
    Show { run: String },
    /// Take a record out of a draft run
    Exclude {
        run: String,
        record: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        user: String,
    },
    /// Decide a case record whose policy asks for a decision: destroy, extend or transfer
    Decide {
        run: String,
        /// The item (`case:<key>` as `dispose show` lists it)
        item: String,
        /// destroy (廃棄), extend (延長) or transfer (移管)
        #[arg(value_parser = ["destroy", "extend", "transfer"])]
        decision: String,
        /// New retention end for an extension
        #[arg(long)]
        until: Option<NaiveDate>,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        user: String,
    },
    /// Confirm a draft run (the preparer); password from HOZON_PASSWORD or standard input
    Submit {
        run: String,
        #[arg(long)]
        user: String,
    },
    /// Approve a submitted run (a second officer); password from HOZON_PASSWORD or standard input
    Approve {
        run: String,
        #[arg(long)]
        user: String,
    },
    /// Destroy the records of an approved run (resumes an interrupted one), issue the certificate
    Execute { run: String },
    /// List the audit log entries past their 7-year retention in a new run
    PlanAudit {
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
    /// List the document boxes due on a date in a new paper run
    PlanPaper {
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
    /// Record the contractor's destruction certificate for an approved paper run
    Contractor {
        run: String,
        /// Scan of the contractor's certificate (kept sealed)
        #[arg(long)]
        scan: std::path::PathBuf,
        /// Box codes the contractor's certificate lists, comma-separated
        #[arg(long, value_delimiter = ',')]
        boxes: Vec<String>,
        /// Processing date on the contractor's certificate
        #[arg(long)]
        date: NaiveDate,
    },
    /// What becomes due when, per class
    Forecast {
        #[arg(long, default_value_t = 12)]
        months: u32,
    },
}

#[derive(Subcommand)]
pub enum HoldCommand {
    /// Hold records or whole cases (litigation 訴訟, audit 監査, disclosure request 開示請求):
    /// disposal skips them, also when the hold comes after approval
    Place {
        /// 訴訟, 監査, 開示請求, 審査中 …
        #[arg(long)]
        kind: String,
        #[arg(long)]
        reason: String,
        /// Recipient numbers (受給者番号): every page of the case, present and future
        #[arg(long = "case", value_name = "受給者番号")]
        cases: Vec<String>,
        /// Record ids
        records: Vec<String>,
    },
    /// Release a hold, with a reason (audited); records of a run approved while held stay
    Release {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Every hold: active first, with kind, reason, who and when
    List,
}

#[derive(Subcommand)]
pub enum CertificateCommand {
    /// Check a certificate PDF against the register and the audit log
    Verify { file: std::path::PathBuf },
    /// The certificate register
    List,
}

pub fn dispose(cli: &Cli, c: &DisposeCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    match c {
        DisposeCommand::Plan { as_of } => {
            let as_of = as_of.unwrap_or_else(crate::jp::today);
            let r = run::plan(&h, &super::operator(), as_of)?;
            outln!(
                "廃棄実行 {} を作成しました（基準日 {as_of}）: 対象 {} 件 / 保留 {} 件",
                r.id,
                r.count(|s| *s == run::ItemStatus::Due),
                r.count(|s| matches!(s, run::ItemStatus::Held { .. }))
            );
        }
        DisposeCommand::List => {
            for r in run::list(&h, &super::operator())? {
                let state = serde_json::to_value(&r.state)?;
                outln!(
                    "{}  {:?}  基準日 {}  {}  {} items",
                    r.id,
                    r.kind,
                    r.as_of,
                    state["state"].as_str().unwrap_or("?"),
                    r.items.len()
                );
            }
        }
        DisposeCommand::Show { run: id } => {
            let r = run::get(&h, &super::operator(), id)?;
            outln!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "id": r.id, "kind": r.kind, "as_of": r.as_of, "state": r.state })
                )?
            );
            for i in &r.items {
                outln!("{}  {}  {:?}  {:?}", i.id, i.class, i.due_on, i.status);
            }
        }
        DisposeCommand::Exclude { run: id, record, reason, user } => {
            run::exclude(&h, &super::person(&h, user)?, id, record, reason)?;
            outln!("{record} を除外しました");
        }
        DisposeCommand::Decide { run: id, item, decision, until, reason, user } => {
            let d = match decision.as_str() {
                "destroy" => run::Decision::Destroy,
                "extend" => run::Decision::Extend {
                    until: until.ok_or_else(|| anyhow::anyhow!("延長には --until（新しい保存期限）が必要です"))?,
                    reason: reason.clone(),
                },
                _ => run::Decision::Transfer { reason: reason.clone() },
            };
            run::decide(&h, &super::person(&h, user)?, id, item, &d)?;
            outln!("{item}: {decision} と決定しました");
        }
        DisposeCommand::Submit { run: id, user } => {
            run::submit(&h, &super::person(&h, user)?, id)?;
            outln!("{id} を確認済みとして提出しました。別の担当者の承認が必要です。");
        }
        DisposeCommand::Approve { run: id, user } => {
            run::approve(&h, &super::person(&h, user)?, id)?;
            outln!("{id} を承認しました。");
        }
        DisposeCommand::Execute { run: id } => {
            let bar = super::ingest::progress_bar(0, "廃棄中", "件");
            let done = run::execute(&h, &super::operator(), id, |d, t| {
                bar.set_length(t as u64);
                bar.set_position(d as u64);
            })?;
            bar.finish_and_clear();
            let skipped = done.run.count(|s| matches!(s, run::ItemStatus::Skipped { .. }));
            outln!("{} 件を廃棄しました。廃棄証明書: {}", done.destroyed, done.certificate.display());
            if skipped > 0 {
                outln!("実行時の再確認で {skipped} 件を廃棄しませんでした（理由は証明書と `dispose show` に記載）");
            }
        }
        DisposeCommand::PlanAudit { as_of } => {
            let as_of = as_of.unwrap_or_else(crate::jp::today);
            let r = run::plan_audit(&h, &super::operator(), as_of)?;
            outln!("監査ログの廃棄実行 {} を作成しました（基準日 {as_of}）: 記録番号 {:?} まで", r.id, r.audit_upto);
        }
        DisposeCommand::PlanPaper { as_of } => {
            let as_of = as_of.unwrap_or_else(crate::jp::today);
            let r = boxes::plan(&h, &super::operator(), as_of)?;
            outln!("紙文書の廃棄実行 {} を作成しました（基準日 {as_of}）: 対象 {} 箱", r.id, r.items.len());
        }
        DisposeCommand::Contractor { run: id, scan, boxes: codes, date } => {
            let bytes = std::fs::read(scan).with_context(|| format!("reading {}", scan.display()))?;
            let r = boxes::record_contractor_certificate(&h, &super::operator(), id, &bytes, codes, *date)?;
            outln!("廃棄済 {} 箱。廃棄証明書: {}", r.destroyed.len(), r.certificate.display());
            if !r.missing.is_empty() {
                outln!("注意: 期限到来済で承認されたが業者の証明書に記載のない文書箱: {}", r.missing.join(", "));
                return Ok(ExitCode::from(1));
            }
        }
        DisposeCommand::Forecast { months } => {
            let f = run::forecast(&h, &super::operator(), crate::jp::today(), *months)?;
            outln!("廃棄予定（今後 {months} か月）");
            for (month, classes) in &f {
                let total: usize = classes.values().sum();
                let detail: Vec<String> = classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
                outln!("{month}  {total:>7}  {}  {}", "█".repeat(total.min(60)), detail.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn hold(cli: &Cli, c: &HoldCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    match c {
        HoldCommand::Place { kind, reason, cases, records } => {
            let req = run::HoldRequest {
                kind: kind.clone(),
                reason: reason.clone(),
                records: records.clone(),
                recipient_numbers: cases.clone(),
            };
            let hold = run::place_hold(&h, &super::operator(), &req)?;
            outln!("保留 {} を設定しました（対象 {} 件）", hold.id, hold.targets.len());
        }
        HoldCommand::Release { id, reason } => {
            run::release_hold(&h, &super::operator(), id, reason)?;
            outln!("保留 {id} を解除しました");
        }
        HoldCommand::List => {
            let all = run::holds(&h, &super::operator())?;
            if all.is_empty() {
                outln!("保留はありません");
            }
            for hold in all {
                let state = match (&hold.released_at, &hold.released_by) {
                    (Some(at), by) => format!("解除済 {} {}", crate::jp::date_of(*at), by.as_deref().unwrap_or("")),
                    (None, _) => "有効".to_owned(),
                };
                let targets: Vec<String> = hold
                    .all_targets()
                    .iter()
                    .map(|t| match t {
                        run::HoldTarget::Record(id) => format!("記録 {id}"),
                        run::HoldTarget::Case(key) => format!("台帳 {key}"),
                    })
                    .collect();
                outln!(
                    "{}  {}  {}  {}  設定 {} {}  {}",
                    hold.id,
                    state,
                    hold.kind,
                    hold.reason,
                    hold.created_by,
                    crate::jp::date_of(hold.created_at),
                    targets.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn certificate(cli: &Cli, c: &CertificateCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    match c {
        CertificateCommand::Verify { file } => {
            let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            match certificate::verify(&h, &super::operator(), &bytes)? {
                certificate::Verdict::Genuine { run_id, issued_at } => {
                    outln!("真正な廃棄証明書です (genuine): run {run_id}, issued {issued_at}");
                    Ok(ExitCode::SUCCESS)
                }
                certificate::Verdict::Altered { run_id } => {
                    outln!(
                        "改ざんされています (NOT genuine): this file claims run {run_id} but differs from the certificate issued for it"
                    );
                    Ok(ExitCode::from(1))
                }
                certificate::Verdict::Unknown => {
                    outln!("登録簿にない証明書です (NOT genuine): no certificate with this content was issued");
                    Ok(ExitCode::from(1))
                }
            }
        }
        CertificateCommand::List => {
            for e in certificate::register(&h, &super::operator())? {
                outln!("{}  {}  sha256 {}  {}", e.run_id, e.issued_at, e.pdf_sha256, e.file);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Subcommand)]
pub enum BoxCommand {
    /// Register a sealed document box
    Add {
        code: String,
        /// Batch or application numbers in the box (no names)
        #[arg(long)]
        contents: String,
        #[arg(long)]
        sealed: NaiveDate,
        #[arg(long, default_value = "事務室")]
        location: String,
    },
    /// Hand boxes to the storage contractor
    Handover {
        codes: Vec<String>,
        #[arg(long)]
        date: NaiveDate,
        /// The contractor's confirmation number
        #[arg(long)]
        confirmation: String,
    },
    /// Request a box back from storage
    Request {
        code: String,
        #[arg(long)]
        reason: String,
    },
    /// The requested box has come out of storage
    Out { code: String },
    /// The box has gone back into storage
    Return { code: String },
    /// Every box with its status
    List,
}

pub fn doc_box(cli: &Cli, c: &BoxCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    let op = super::operator();
    let today = crate::jp::today();
    match c {
        BoxCommand::Add { code, contents, sealed, location } => {
            boxes::register(&h, &op, code, contents, *sealed, location)?;
            outln!("文書箱 {code} を登録しました");
        }
        BoxCommand::Handover { codes, date, confirmation } => {
            boxes::hand_over(&h, &op, codes, *date, confirmation)?;
            outln!("{} 箱を保管業者に引き渡しました（確認番号 {confirmation}）", codes.len());
        }
        BoxCommand::Request { code, reason } => {
            boxes::request_retrieval(&h, &op, code, reason, today)?;
            outln!("{code} の出庫を依頼しました");
        }
        BoxCommand::Out { code } => {
            boxes::mark_out(&h, &op, code, today)?;
            outln!("{code} を出庫しました");
        }
        BoxCommand::Return { code } => {
            boxes::mark_returned(&h, &op, code, today)?;
            outln!("{code} を入庫しました");
        }
        BoxCommand::List => {
            for b in boxes::list(&h, &op)? {
                outln!("{}  {:?}  封緘 {}  {}  {}", b.code, b.status, b.sealed_on, b.location, b.contents);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate the policy files and show how they would move existing records' dates
    Check,
    /// Re-date every record under the current policy files
    Apply {
        /// Also apply when some records would become due earlier (after `policy check`)
        #[arg(long)]
        accept_earlier: bool,
    },
}

pub fn policy(cli: &Cli, c: &PolicyCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    match c {
        PolicyCommand::Check => {
            for p in h.policies.all() {
                outln!(
                    "{:<16} v{}  {} 年{}  {:?}  {}",
                    p.class,
                    p.version,
                    p.years,
                    if p.from_fiscal_year_end { "（年度末起算）" } else { "" },
                    p.action,
                    p.title
                );
            }
            let impact = run::policy_impact(&h, &super::operator())?;
            outln!(
                "既存の記録への影響: 早まる {} 件 / 遅くなる {} 件 / 変わらない {} 件",
                impact.earlier.len(),
                impact.later,
                impact.unchanged
            );
            for (id, class, old, new) in impact.earlier.iter().take(50) {
                outln!("  早まる: {id} {class} {old:?} → {new:?}");
            }
            Ok(if impact.earlier.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        PolicyCommand::Apply { accept_earlier } => {
            let impact = run::apply_policies(&h, &super::operator(), *accept_earlier)?;
            outln!(
                "適用しました: 早まる {} 件 / 遅くなる {} 件 / 変わらない {} 件",
                impact.earlier.len(),
                impact.later,
                impact.unchanged
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
