use std::process::ExitCode;

use super::Cli;
use crate::app::SearchOptions;
use crate::auth::Actor;
use crate::index::Sort;

#[derive(clap::Args)]
pub struct Args {
    /// Words to find (all must occur; a word of several characters is matched as a phrase;
    /// `A OR B`, (groups), -word or NOT word; `field:value` searches one field, e.g. 氏名:山田
    /// 受付日:2024-04..2024-06). Near spellings follow the exact hits, marked 〔近い表記〕.
    #[arg(allow_hyphen_values = true)]
    query: String,
    /// One JSON object (total, near, hits with `near` marked) instead of lines
    #[arg(long)]
    json: bool,
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
    let when = |r: &crate::index::Hit| r.received.with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M").to_string();
    if args.json {
        let hits: Vec<serde_json::Value> = found
            .results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "record_id": r.record_id,
                    "received_jst": when(r),
                    "form": r.form,
                    "near": r.near,
                    "snippet": plain(&r.snippet_html),
                })
            })
            .collect();
        outln!("{}", serde_json::json!({ "total": found.total, "near": found.near, "hits": hits }));
    } else {
        outln!(
            "{} 件{}",
            found.total,
            if found.near > 0 {
                format!("（ほかに表記の近い文書 {} 件）", found.near)
            } else {
                String::new()
            }
        );
        for r in &found.results {
            let form = crate::index::vocab::form_label(&r.form);
            let mark = if r.near { "〔近い表記〕" } else { "" };
            outln!("{}  {} JST  {form}  {mark}{}", r.record_id, when(r), plain(&r.snippet_html));
        }
    }
    Ok(if found.results.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
