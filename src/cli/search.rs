use std::process::ExitCode;

use super::Cli;
use crate::app::SearchOptions;
use crate::auth::Actor;
use crate::index::Sort;

#[derive(clap::Args)]
pub struct Args {
    /// Words to find (all must occur; a word of several characters is matched as a phrase;
    /// `field:value` searches one field, e.g. 氏名:山田 受付日:2024-04..2024-06; -word excludes)
    query: String,
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Order: relevance, newest or oldest
    #[arg(long, default_value = "relevance", value_parser = ["relevance", "newest", "oldest"])]
    sort: String,
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
    let sort = match args.sort.as_str() {
        "newest" => Sort::Newest,
        "oldest" => Sort::Oldest,
        _ => Sort::Relevance,
    };
    let opts = SearchOptions { sort, ..SearchOptions::new(&args.query, args.limit) };
    let found = hozon.search(&actor, &opts)?;
    outln!("{} 件", found.total);
    for r in &found.results {
        let form = crate::index::vocab::form_label(&r.form);
        let when = r.received.format("%Y-%m-%d %H:%M");
        outln!("{}  {when}  {form}  {}", r.record_id, plain(&r.snippet_html));
    }
    Ok(if found.results.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
