//! cli/: the command line. One file per subcommand; each turns its arguments into a call of
//! the library and prints the result. This list is the single place subcommands are named.

mod admin;
mod backup;
mod batch;
mod bench;
mod case;
mod draft;
mod ingest;
mod init;
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

/// The person at the server's command line (see `Actor::operator`), named after the login.
pub(crate) fn operator() -> crate::auth::Actor {
    crate::auth::Actor::operator(&format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into())))
}

impl Cli {
    fn key_file(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| crate::app::default_key_file(&self.data))
    }

    fn open(&self) -> anyhow::Result<crate::Hozon> {
        Ok(crate::Hozon::open(&self.data, &self.key_file())?)
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
    /// Search stored pages
    Search(search::Args),
    /// Form recognition into drafts
    #[command(subcommand)]
    Draft(draft::DraftCommand),
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
    match &cli.command {
        Command::Backup(c) => backup::run(&cli, c),
        Command::Init(a) => init::run(&cli, a),
        Command::Synth(a) => synth::run(a),
        Command::Ingest(a) => ingest::run(&cli, a),
        Command::Batch(c) => batch::run(&cli, c),
        Command::Watch(a) => batch::watch(&cli, a),
        Command::Case(c) => case::run(&cli, c),
        Command::Search(a) => search::run(&cli, a),
        Command::Draft(c) => draft::run(&cli, c),
        Command::Serve(a) => serve::run(&cli, a),
        Command::Key(c) => admin::key(&cli, c),
        Command::Reindex => admin::reindex(&cli),
        Command::Audit(c) => admin::audit(&cli, c),
        Command::User(c) => admin::user(&cli, c),
        Command::Gc => admin::gc(&cli),
        Command::Bench(c) => bench::run(c),
        Command::Eval(a) => bench::eval(a),
        Command::Dispose(c) => retention::dispose(&cli, c),
        Command::Hold(c) => retention::hold(&cli, c),
        Command::Certificate(c) => retention::certificate(&cli, c),
        Command::DocBox(c) => retention::doc_box(&cli, c),
        Command::Policy(c) => retention::policy(&cli, c),
    }
}
