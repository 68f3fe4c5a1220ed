//! `hozon backup …` and `hozon key escrow`: backups to a local directory or an S3 store, the
//! restore drill, restore, and pruning by the backup policy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{Cli, operator};
use crate::backup::{self, Destination};

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Take a backup (incremental: only what the destination lacks is written)
    Create {
        /// A directory or s3://bucket/prefix [default: [backup] destination in DATA/config.toml]
        #[arg(long)]
        to: Option<String>,
        /// Check the destination itself for what it holds instead of the store's record of it
        #[arg(long)]
        full: bool,
    },
    /// One line per backup, its id first
    List {
        #[arg(long)]
        to: Option<String>,
    },
    /// Restore drill: restore into a scratch directory and check everything (last line: JSON)
    Verify {
        id: String,
        #[arg(long)]
        to: Option<String>,
    },
    /// Restore a backup into the (new, empty) data directory given by --data
    Restore {
        id: String,
        #[arg(long)]
        from: Option<String>,
    },
    /// Delete the backups the policy (retention-policies/backup.toml) says have expired
    Prune {
        #[arg(long)]
        to: Option<String>,
    },
}

fn config_of(cli: &Cli) -> crate::config::Backup {
    crate::config::Config::load(&cli.data).map(|c| c.backup).unwrap_or_default()
}

fn destination(cli: &Cli, to: &Option<String>) -> anyhow::Result<Destination> {
    let cfg = config_of(cli);
    let spec = to.clone().unwrap_or_else(|| cfg.destination.clone());
    Ok(Destination::open(&spec, &cfg)?)
}

fn say(m: &str) {
    errln!("{m}");
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn run(cli: &Cli, c: &BackupCommand) -> anyhow::Result<ExitCode> {
    match c {
        BackupCommand::Create { to, full } => {
            let h = cli.open()?;
            let dest = destination(cli, to)?;
            let m = backup::create(&h, &operator(), &dest, *full, &say)?.manifest;
            outln!(
                "バックアップ {} を {} に作成しました: 記録 {} 件, ページ {} 件, 書き込み {} オブジェクト / {:.1} MB（全体 {:.1} MB）, {:.1} 秒（書き込み停止 {} ms）",
                m.id,
                dest.label(),
                m.records,
                m.blobs,
                m.objects_written,
                mb(m.bytes_written),
                mb(m.bytes_total),
                m.seconds,
                m.paused_ms
            );
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::List { to } => {
            let dest = destination(cli, to)?;
            for m in backup::list(&dest)? {
                outln!(
                    "{}  {}  記録 {}  ページ {}  {:.1} MB  書き込み {:.1} MB",
                    m.id,
                    m.created_at.with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M:%S JST"),
                    m.records,
                    m.blobs,
                    mb(m.bytes_total),
                    mb(m.bytes_written)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Verify { id, to } => {
            let dest = destination(cli, to)?;
            let d = backup::drill(&dest, id, &cli.key_file(), &say)?;
            print_drill(&d);
            Ok(if d.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        BackupCommand::Restore { id, from } => {
            let dest = destination(cli, from)?;
            let (r, _) = backup::restore(&dest, id, &cli.data, &cli.key_file(), false, &say)?;
            outln!(
                "バックアップ {id} を {} に復元しました: 記録 {} 件, ページ {} 件, 索引ファイル {} 件。バックアップ後に廃棄された記録 {} 件・台帳 {} 件は廃棄済み（記録票のみ）として復元しました。索引: 削除 {} 件, 追加 {} 件。{:.1} 秒",
                cli.data.display(),
                r.records,
                r.blobs,
                r.index_files,
                r.destroyed_since,
                r.cases_destroyed_since,
                r.index_removed,
                r.index_added,
                r.seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Prune { to } => {
            let h = cli.open()?;
            let dest = destination(cli, to)?;
            let policy = backup::policy::BackupPolicy::load(&crate::retention::policy::default_dir())?;
            let p = backup::prune(&h, &operator(), &dest, &policy, crate::jp::today())?;
            outln!(
                "期限切れのバックアップ {} 件を削除しました（{}）。残り {} 件、不要になったオブジェクト {} 件を削除。",
                p.expired.len(),
                p.expired.join(", "),
                p.kept,
                p.objects_deleted
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_drill(d: &backup::Drill) {
    let r = &d.restored;
    let mark = |ok: bool| if ok { "正常" } else { "異常" };
    outln!("復元訓練: バックアップ {}", r.backup);
    outln!(
        "  オブジェクト        {}（壊れている・ないもの {} 件）",
        mark(r.bad_objects.is_empty()),
        r.bad_objects.len()
    );
    for b in &r.bad_objects {
        outln!("    - {b}");
    }
    outln!(
        "  記録の復号          {}（{} 件を検査、読めないもの {} 件）",
        mark(d.unreadable.is_empty()),
        d.records_checked,
        d.unreadable.len()
    );
    for u in &d.unreadable {
        outln!("    - {u}");
    }
    outln!("  バックアップ後の廃棄 {} 件（記録票のみ復元）", r.destroyed_since);
    outln!(
        "  検索索引            {}（文書 {} 件 / 保存ページ {} 件）",
        mark(d.search_answers),
        d.index_docs,
        d.stored_pages
    );
    outln!("  監査ログ            {}（{} 件）", mark(d.audit_ok), d.audit_entries);
    outln!("  所要時間            {:.1} 秒", r.seconds);
    outln!(
        "{}",
        serde_json::json!({
            "backup": r.backup,
            "ok": d.ok,
            "objects_bad": r.bad_objects,
            "records": r.records,
            "records_checked": d.records_checked,
            "unreadable": d.unreadable.len(),
            "destroyed_since": r.destroyed_since,
            "index_docs": d.index_docs,
            "stored_pages": d.stored_pages,
            "audit_ok": d.audit_ok,
            "audit_entries": d.audit_entries,
            "restore_s": r.seconds,
        })
    );
}

/// `hozon key escrow --to DIR`: a dated copy of the master key file and the key store, for
/// the disaster in which the server's disk is lost (a data backup never holds key material).
/// Copies older than the policy's `key_escrow_days` in DIR are deleted: an old key store
/// would open what disposal destroyed since.
pub fn escrow(cli: &Cli, to: &Path) -> anyhow::Result<ExitCode> {
    // The store first: it is the one that decides (and, beside a running server, the server
    // does all of it), so nothing is copied by a process that then cannot audit it.
    let h = cli.open()?;
    let policy = backup::policy::BackupPolicy::load(&crate::retention::policy::default_dir())?;
    let key_file = h.paths().1.to_owned();
    // Keys beside the data they open defeat both: never into the backup destination or the
    // data directory.
    let dest = config_of(cli).destination;
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    let target = canon(to);
    if target.starts_with(canon(h.paths().0))
        || (!dest.is_empty() && !dest.starts_with("s3://") && target.starts_with(canon(Path::new(&dest))))
    {
        anyhow::bail!(
            "{} はデータディレクトリかバックアップの保存先の中です。鍵は別の媒体・別の管理者のもとに預けてください",
            to.display()
        );
    }
    let today = crate::jp::today();
    let dir = to.join(format!("keys-{}", today.format("%Y%m%d")));
    std::fs::create_dir_all(&dir)?;
    let copies: [(PathBuf, PathBuf); 2] = [
        (key_file.clone(), dir.join("master.key")),
        (crate::store::keystore_path(&key_file), crate::store::keystore_path(&dir.join("master.key"))),
    ];
    for (from, to) in &copies {
        std::fs::copy(from, to).map_err(|e| anyhow::anyhow!("{}: {e}", from.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))?;
    }
    let mut removed = Vec::new();
    for e in std::fs::read_dir(to)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(day) = name.strip_prefix("keys-").and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        if (today - day).num_days() > i64::from(policy.key_escrow_days) {
            std::fs::remove_dir_all(e.path())?;
            removed.push(name);
        }
    }
    h.audit_event(
        &operator(),
        "key.escrow",
        &format!("{} (expired copies removed: {})", dir.display(), removed.len()),
        "ok",
    )?;
    outln!(
        "鍵ファイルと鍵ストアを {} に預託しました。{} 日を過ぎた預託 {} 件を削除しました。",
        dir.display(),
        policy.key_escrow_days,
        removed.len()
    );
    Ok(ExitCode::SUCCESS)
}
