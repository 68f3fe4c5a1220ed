use std::path::PathBuf;
use std::process::ExitCode;

use crate::synth::{SynthOptions, generate};

#[derive(clap::Args)]
pub struct Args {
    /// Output folder (created if missing)
    #[arg(long)]
    out: PathBuf,
    /// Number of submissions (4 pages each)
    #[arg(long, default_value_t = 5)]
    count: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Largest skew either way, in degrees
    #[arg(long, default_value_t = 2.0)]
    max_skew: f32,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let bar = super::ingest::progress_bar(args.count as u64, "生成中", "件");
    let opts = SynthOptions { out: args.out.clone(), count: args.count, seed: args.seed, max_skew_deg: args.max_skew };
    let truths = generate(&opts, &bar)?;
    bar.finish_and_clear();
    println!("{} submissions, {} pages → {}", args.count, truths.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}
