use std::process::ExitCode;
use std::sync::Arc;

use super::{Cli, Opened};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Watch this hot folder: scans in <dir>/<受付番号>/ are ingested into that batch
    #[arg(long)]
    hot_folder: Option<std::path::PathBuf>,
}

/// The server: the web UI, the hot folder, the daily backup ([backup] daily_at), and the
/// admin socket through which commands at the terminal reach this open store.
pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    crate::web::tune_allocator();
    let Opened::Own(hozon) = cli.open()? else {
        anyhow::bail!("サーバーの中からサーバーは起動できません");
    };
    let state = match args.hot_folder.clone() {
        Some(root) => crate::web::AppState::with_hot_folder(*hozon, root),
        None => crate::web::AppState::new(*hozon),
    };
    crate::web::start_hot_folder(&state);
    super::remote::listen(state.clone(), &cli.data)?;
    let st = state.clone();
    std::thread::spawn(move || crate::backup::schedule::daily(&st.hozon, &st.stop));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(crate::web::serve(state.clone(), args.addr))?;
    let _ = std::fs::remove_file(super::remote::socket_path(&cli.data));
    // Let the background work end, then close the store as its last user (it then keeps the
    // backup's change set for the next start instead of re-reading everything).
    state.stop.stop();
    // Work handed to blocking threads (an upload being stored) gets a while to finish.
    rt.shutdown_timeout(std::time::Duration::from_secs(30));
    let mut state = state;
    for _ in 0..600 {
        match Arc::try_unwrap(state) {
            Ok(owned) => {
                drop(owned);
                eprintln!("hozon: 終了しました");
                return Ok(ExitCode::SUCCESS);
            }
            Err(shared) => state = shared,
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!("hozon: 実行中の処理が終わらないまま終了します（次回のバックアップはメタデータ全体を読み直します）");
    Ok(ExitCode::SUCCESS)
}
