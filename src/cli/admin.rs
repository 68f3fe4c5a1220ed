//! Small administrative commands: key rotation, reindex, audit verification, users, gc.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::{Cli, operator};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Re-wrap every data key under a new master key (blobs are not re-encrypted)
    Rotate,
    /// Copy the master key file and the key store into a dated folder of DIR (kept apart from
    /// the data backups, on its own short retention)
    Escrow {
        #[arg(long)]
        to: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain and name the first bad entry
    Verify {
        /// Checkpoints exported earlier (`hozon audit checkpoints`), to detect truncation
        #[arg(long)]
        checkpoints: Option<std::path::PathBuf>,
    },
    /// Print the checkpoints recorded in the log (JSON lines) for safekeeping elsewhere
    Checkpoints,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Set a new one-time password for a user (also unlocks) and print it
    ResetPassword { name: String },
    /// Change your own password at a terminal: current and new password on standard input
    /// (one per line), or HOZON_PASSWORD and HOZON_NEW_PASSWORD
    Passwd { name: String },
    /// Issue ten recovery codes for a user who lost their authenticator (old codes stop
    /// working); each code replaces one TOTP check once, then the user enrols a new device
    RecoveryCodes { name: String },
    /// Create a personal account with a role's preset rights; prints its one-time password
    Add {
        name: String,
        /// mailroom, reviewer, records_officer, security_officer or auditor
        #[arg(long)]
        role: String,
    },
}

pub fn key(cli: &Cli, c: &KeyCommand) -> anyhow::Result<ExitCode> {
    match c {
        KeyCommand::Escrow { to } => return super::backup::escrow(cli, to),
        KeyCommand::Rotate => {
            // Case records kept from before epoch sealing move into their epochs first, then
            // the old master key (which opens every legacy wrapping in earlier copies) goes.
            let mut h = cli.open()?;
            let (fp, cases) = h.exclusive()?.rotate_master_key(&operator())?;
            outln!("マスター鍵を更新しました (new key fingerprint {fp}; 台帳記録 {cases} 件の鍵を移行)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reindex(cli: &Cli) -> anyhow::Result<ExitCode> {
    let hozon = cli.open()?;
    let bar = super::ingest::progress_bar(0, "再索引", "件");
    let n = hozon.reindex(&operator(), |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    outln!("索引を再構築しました: {n} 件");
    Ok(ExitCode::SUCCESS)
}

pub fn audit(cli: &Cli, c: &AuditCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    match c {
        AuditCommand::Verify { checkpoints } => {
            let cps: Vec<crate::audit::Checkpoint> = match checkpoints {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .enumerate()
                    .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}: line {}", p.display(), i + 1)))
                    .collect::<anyhow::Result<_>>()?,
                None => Vec::new(),
            };
            match h.audit_verify(&operator(), &cps)? {
                Ok(n) => {
                    outln!("監査ログは正常です: {n} entries, chain intact ({} checkpoints checked)", cps.len());
                    Ok(ExitCode::SUCCESS)
                }
                Err(broken) => {
                    outln!("監査ログの改ざんを検出しました (audit log tampered): {broken}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Checkpoints => {
            for cp in h.audit_checkpoints(&operator())? {
                outln!("{}", serde_json::to_string(&cp)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn user(cli: &Cli, c: &UserCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    let accounts = h.accounts();
    match c {
        UserCommand::ResetPassword { name } => {
            let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
            let pw = accounts.operator_reset_password(&user, name, chrono::Utc::now())?;
            outln!("ユーザー {name} の新しい一時パスワード: {pw} (次回ログイン時に変更が必要です)");
        }
        UserCommand::Passwd { name } => {
            let current = super::out::secret_line("HOZON_PASSWORD", &format!("{name} の現在のパスワード: "))?;
            let new = super::out::secret_line("HOZON_NEW_PASSWORD", "新しいパスワード: ")?;
            let now = chrono::Utc::now();
            match accounts.login(name, &current, "cli", now)? {
                crate::auth::Login::Ok { actor, .. } => {
                    accounts.change_password(&actor, &current, &new, now)?;
                    outln!("{name} のパスワードを変更しました");
                }
                _ => {
                    anyhow::bail!("{name}: ログインできません（利用者IDまたはパスワードが違うか、ロックされています）")
                }
            }
        }
        UserCommand::RecoveryCodes { name } => {
            let codes = accounts.issue_recovery_codes(&operator(), name)?;
            outln!("ユーザー {name} の回復コード（各1回限り。以前のコードは無効です）:");
            codes.iter().for_each(|c| outln!("{c}"));
        }
        UserCommand::Add { name, role } => {
            let role = crate::auth::Role::parse(role).with_context(|| format!("unknown role {role:?}"))?;
            let pw = accounts.create(&operator(), name, role, chrono::Utc::now())?;
            outln!("ユーザー {name} ({}) を作成しました。一時パスワード: {pw}", role.label_ja());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gc(cli: &Cli) -> anyhow::Result<ExitCode> {
    let n = cli.open()?.gc_orphans(&operator())?;
    outln!("孤立したブロブを {n} 件削除しました");
    Ok(ExitCode::SUCCESS)
}
