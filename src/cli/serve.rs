use std::process::ExitCode;

use super::Cli;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Watch this hot folder: scans in <dir>/<受付番号>/ are ingested into that batch
    #[arg(long)]
    hot_folder: Option<std::path::PathBuf>,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    crate::web::tune_allocator();
    let hozon = cli.open()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(crate::web::serve(hozon, args.addr, args.hot_folder.clone()))?;
    Ok(ExitCode::SUCCESS)
}
