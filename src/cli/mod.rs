//! cli/: the command line. One file per subcommand; each turns its arguments into a call of
//! the library and prints the result. This list is the single place subcommands are named.

#[macro_use]
mod out;
mod admin;
mod backup;
mod batch;
mod bench;
mod case;
mod doctor;
mod draft;
mod export;
mod form;
mod ingest;
mod init;
mod remote;
mod retention;
mod search;
mod serve;
mod synth;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hozon", version, about = "保存: document capture and records retention")]
pub struct Cli {
    /// Data directory (sled metadata, sealed blobs, encrypted index)
    #[arg(long, global = true, default_value = "./data", env = "HOZON_DATA")]
    data: PathBuf,
    /// Master key file [default: $HOZON_KEY_FILE, else DATA/master.key]
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// hozon's resource directory (ocr-models/, retention-policies/) [default: $HOZON_HOME,
    /// else found beside the binary]
    #[arg(long, global = true)]
    resources: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

thread_local! {
    /// Set while a running server executes a command for a terminal (`remote`): `Cli::open`
    /// then hands out the server's own open store instead of opening the directory again.
    static SERVED: std::cell::RefCell<Option<std::sync::Arc<crate::web::AppState>>> =
        const { std::cell::RefCell::new(None) };
}

fn with_served<R>(state: std::sync::Arc<crate::web::AppState>, f: impl FnOnce() -> R) -> R {
    SERVED.with(|s| *s.borrow_mut() = Some(state));
    let r = f();
    SERVED.with(|s| *s.borrow_mut() = None);
    r
}

/// An open data directory: this process's own, or the running server's (see `remote`).
pub(crate) enum Opened {
    Own(Box<crate::Hozon>),
    Served(std::sync::Arc<crate::web::AppState>),
}

impl std::ops::Deref for Opened {
    type Target = crate::Hozon;
    fn deref(&self) -> &crate::Hozon {
        match self {
            Opened::Own(h) => h,
            Opened::Served(s) => &s.hozon,
        }
    }
}

impl Opened {
    /// The directory to itself (key rotation): not while a server holds it.
    fn exclusive(&mut self) -> anyhow::Result<&mut crate::Hozon> {
        match self {
            Opened::Own(h) => Ok(h),
            Opened::Served(_) => {
                anyhow::bail!("この操作はデータディレクトリを占有します。hozon serve を止めてから実行してください")
            }
        }
    }
}

/// The error and its causes on one line.
fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

/// A named person at the terminal (an officer, an exporting reviewer): their own password and,
/// when they have enrolled one, a one-time code from their authenticator (the two-person rule
/// needs real identities, not the operator, and not a password someone else just set).
pub(crate) fn person(h: &crate::Hozon, user: &str) -> anyhow::Result<crate::auth::Actor> {
    let password = out::secret_line("HOZON_PASSWORD", &format!("{user} のパスワード: "))?;
    match h.accounts().login(user, &password, "cli", chrono::Utc::now())? {
        crate::auth::Login::Ok { actor, must_change_password, totp_enrolled, .. } => {
            if must_change_password {
                anyhow::bail!(
                    "{user} のパスワードは仮パスワードです。本人が `hozon user passwd {user}` で変更してから操作してください"
                );
            }
            if totp_enrolled {
                let code = out::secret_line("HOZON_TOTP", &format!("{user} の確認コード（認証アプリの6桁）: "))?;
                let now = chrono::Utc::now().timestamp().max(0) as u64;
                let passed = h
                    .accounts()
                    .check_totp(&actor, &code, now)
                    .map_err(|e| anyhow::anyhow!("{user}: 確認コードを受け付けません ({e})"))?;
                return Ok(passed.actor);
            }
            Ok(actor)
        }
        _ => anyhow::bail!("{user}: ログインできません（利用者IDまたはパスワードが違うか、ロックされています）"),
    }
}

/// The person at the server's command line (see `Actor::operator`), named after the login.
pub(crate) fn operator() -> crate::auth::Actor {
    crate::auth::Actor::operator(&format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into())))
}

impl Cli {
    fn key_file(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| crate::app::default_key_file(&self.data))
    }

    fn open(&self) -> anyhow::Result<Opened> {
        if let Some(s) = SERVED.with(|s| s.borrow().clone()) {
            return Ok(Opened::Served(s));
        }
        let hozon = crate::Hozon::open(&self.data, &self.key_file())?;
        if hozon.index_outdated() {
            // Built by an older version that cut text into terms differently: its answers
            // would be wrong, so it is rebuilt before anything searches it.
            let bar = ingest::progress_bar(0, "検索索引を新しい形式で再構築", "件");
            let n = hozon.reindex(&crate::auth::Actor::system(), |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            eprintln!("検索索引を新しい形式で再構築しました: {n} 件");
        }
        Ok(Opened::Own(Box::new(hozon)))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a data directory, its master key file and the first administrator
    Init(init::Args),
    /// Write synthetic scanned submissions and truth.jsonl
    Synth(synth::Args),
    /// Store, OCR and index every scan in a folder
    Ingest(ingest::Args),
    /// Incoming batches (進達) and the receipt ledger (収受簿)
    #[command(subcommand)]
    Batch(batch::BatchCommand),
    /// Watch a hot folder: scans in <root>/<受付番号>/ are ingested into that batch
    Watch(batch::WatchArgs),
    /// Central case records (受給者台帳): import, show
    #[command(subcommand)]
    Case(case::CaseCommand),
    /// Input data for the subsidy system: preview, create, download, hand-over, result
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Search stored pages
    Search(search::Args),
    /// Form recognition into drafts
    #[command(subcommand)]
    Draft(draft::DraftCommand),
    /// Form templates: check one against a scan (zones drawn into a PNG)
    #[command(subcommand)]
    Form(form::FormCommand),
    /// Serve the web UI
    Serve(serve::Args),
    /// Master key operations
    #[command(subcommand)]
    Key(admin::KeyCommand),
    /// Rebuild the search index from the stored text
    Reindex,
    /// Backups to a directory or an S3 store: create, list, verify (restore drill), restore, prune
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Check this installation: resources, fonts, key file, disk, last backup, audit chain
    Doctor,
    /// Check the audit log's hash chain
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// User accounts
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Remove blobs no record refers to (left by a crash)
    Gc,
    /// Disposal runs: plan, review, approve (two people), execute, forecast
    #[command(subcommand)]
    Dispose(retention::DisposeCommand),
    /// Holds that block disposal
    #[command(subcommand)]
    Hold(retention::HoldCommand),
    /// Destruction certificates
    #[command(subcommand)]
    Certificate(retention::CertificateCommand),
    /// Retention policies: validate, preview the effect of a change, apply
    #[command(subcommand)]
    Policy(retention::PolicyCommand),
    /// Paper document boxes (文書箱): registry, hand-over, retrieval
    #[command(subcommand, name = "box")]
    DocBox(retention::BoxCommand),
    /// Recognition quality on a synthetic set against its truth.jsonl (last line: JSON)
    Eval(bench::EvalArgs),
    /// Benchmarks (last line of output: one JSON object with the figures)
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(r) = &cli.resources {
        crate::resources::set_root(r);
    }
    match dispatch(&cli) {
        // A running server holds the directory: ask it to run the command.
        Err(e) if in_use(&e) => remote::forward(&cli.data, &cli.key_file()).unwrap_or(Err(e)),
        other => other,
    }
}

/// Whether the data directory is held by another process (sled's lock).
fn in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(c.downcast_ref::<crate::store::Error>(), Some(crate::store::Error::Locked(_)))
            || matches!(
                c.downcast_ref::<crate::error::Error>(),
                Some(crate::error::Error::Store(crate::store::Error::Locked(_)))
            )
    })
}

fn dispatch(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Backup(c) => backup::run(cli, c),
        Command::Doctor => doctor::run(cli),
        Command::Init(a) => init::run(cli, a),
        Command::Synth(a) => synth::run(a),
        Command::Ingest(a) => ingest::run(cli, a),
        Command::Batch(c) => batch::run(cli, c),
        Command::Watch(a) => batch::watch(cli, a),
        Command::Case(c) => case::run(cli, c),
        Command::Search(a) => search::run(cli, a),
        Command::Export(c) => export::run(cli, c),
        Command::Draft(c) => draft::run(cli, c),
        Command::Form(c) => form::run(c),
        Command::Serve(a) => serve::run(cli, a),
        Command::Key(c) => admin::key(cli, c),
        Command::Reindex => admin::reindex(cli),
        Command::Audit(c) => admin::audit(cli, c),
        Command::User(c) => admin::user(cli, c),
        Command::Gc => admin::gc(cli),
        Command::Bench(c) => bench::run(c),
        Command::Eval(a) => bench::eval(a),
        Command::Dispose(c) => retention::dispose(cli, c),
        Command::Hold(c) => retention::hold(cli, c),
        Command::Certificate(c) => retention::certificate(cli, c),
        Command::DocBox(c) => retention::doc_box(cli, c),
        Command::Policy(c) => retention::policy(cli, c),
    }
}
