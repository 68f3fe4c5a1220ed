use std::process::ExitCode;

use super::Cli;
use crate::auth::Actor;

#[derive(clap::Args)]
pub struct Args {
    /// Words to find (all must occur; a word of several characters is matched as a phrase)
    query: String,
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

/// Strips the `<b>` highlighting for a terminal, marking matches with 【】 instead.
fn plain(snippet_html: &str) -> String {
    snippet_html
        .replace("<b>", "【")
        .replace("</b>", "】")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
        .replace('\n', " ")
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let hozon = cli.open()?;
    let actor = Actor::operator(&format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into())));
    let results = hozon.search(&actor, &args.query, args.limit)?;
    println!("{} 件", results.len());
    for r in &results {
        println!("{}  {}  {}", r.record_id, r.received_at.format("%Y-%m-%d %H:%M"), plain(&r.snippet_html));
    }
    Ok(if results.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
