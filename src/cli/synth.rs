use std::path::PathBuf;
use std::process::ExitCode;

use crate::synth::{HandStyle, Knobs, SynthOptions, generate};

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
    /// Largest skew either way, in degrees (default 2, or 3 with --hard)
    #[arg(long)]
    max_skew: Option<f32>,
    /// Every difficulty on: grain, blur, received stamps over the header, optional fields left
    /// empty, crossed-out corrections, a fainter carbon copy
    #[arg(long)]
    hard: bool,
    /// Scan each page as offices do: fed any way round, 200/300/400 dpi, grey, 1-bit or
    /// colour (blue ink, red stamp), resolution written in half the files; truth.jsonl says
    /// which
    #[arg(long)]
    conditions: bool,
    /// Two applicants in five fill in the Excel editions instead: application and My Number
    /// form typed on plain paper, no carbon copy (sheet 2)
    #[arg(long)]
    typed: bool,
    /// Add an attachment no form fits to each submission (住民票の写し, at times with the My
    /// Number printed, or 課税証明書), to exercise the classification queue
    #[arg(long)]
    attachments: bool,
    /// How applicants write by hand: handwriting fonts, a pen drawing KanjiVG strokes, or half
    /// and half (truth.jsonl says which)
    #[arg(long, value_enum, default_value_t = HandStyle::Font)]
    style: HandStyle,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let bar = super::ingest::progress_bar(args.count as u64, "生成中", "件");
    let knobs =
        if args.hard { Knobs::hard(args.max_skew.unwrap_or(3.0)) } else { Knobs::easy(args.max_skew.unwrap_or(2.0)) };
    let opts = SynthOptions {
        out: args.out.clone(),
        count: args.count,
        seed: args.seed,
        knobs,
        conditions: args.conditions,
        typed: args.typed,
        attachments: args.attachments,
        style: args.style,
    };
    let truths = generate(&opts, &bar)?;
    bar.finish_and_clear();
    println!("{} submissions, {} pages → {}", args.count, truths.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}
