//! Small administrative commands: key rotation, reindex, audit verification, users, gc.

use std::process::ExitCode;

use clap::Subcommand;

use super::Cli;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Re-wrap every data key under a new master key (blobs are not re-encrypted)
    Rotate,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain and name the first bad entry
    Verify,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Set a new random password for a user and print it
    ResetPassword { name: String },
}

pub fn key(cli: &Cli, c: &KeyCommand) -> anyhow::Result<ExitCode> {
    match c {
        KeyCommand::Rotate => {
            let mut store = crate::store::Store::open(&cli.data, &cli.key_file())?;
            let fp = store.rotate_master_key()?;
            println!("マスター鍵を更新しました (new key fingerprint {fp})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reindex(cli: &Cli) -> anyhow::Result<ExitCode> {
    let hozon = cli.open()?;
    let bar = super::ingest::progress_bar(0, "再索引", "件");
    let n = hozon.reindex(|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    println!("索引を再構築しました: {n} 件");
    Ok(ExitCode::SUCCESS)
}

pub fn audit(cli: &Cli, c: &AuditCommand) -> anyhow::Result<ExitCode> {
    match c {
        AuditCommand::Verify => {
            let store = crate::store::Store::open(&cli.data, &cli.key_file())?;
            match crate::audit::verify(&store.audit_entries()?) {
                Ok(n) => {
                    println!("監査ログは正常です: {n} entries, chain intact");
                    Ok(ExitCode::SUCCESS)
                }
                Err((seq, why)) => {
                    println!("監査ログの改ざんを検出しました: entry {seq}: {why}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

pub fn user(cli: &Cli, c: &UserCommand) -> anyhow::Result<ExitCode> {
    match c {
        UserCommand::ResetPassword { name } => {
            let store = crate::store::Store::open(&cli.data, &cli.key_file())?;
            let pw = crate::auth::generate_password();
            crate::auth::set_password(&store, name, &pw)?;
            store.audit(crate::audit::Event::system("user.reset_password", name))?;
            println!("ユーザー {name} の新しいパスワード: {pw}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gc(cli: &Cli) -> anyhow::Result<ExitCode> {
    let store = crate::store::Store::open(&cli.data, &cli.key_file())?;
    let n = store.gc_orphans()?;
    println!("孤立したブロブを {n} 件削除しました");
    Ok(ExitCode::SUCCESS)
}
