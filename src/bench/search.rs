//! `hozon bench search`: index build rate, index size and query latency of the archive search
//! at N documents, against the same index unencrypted and against SQLite FTS5 (trigram) on
//! the same corpus and queries, in one run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use super::corpus::{BenchQuery, Corpus};
use super::{peak_rss_mb, percentile, reset_peak_rss};
use crate::index::{Request, Scope, SearchIndex, Sort};

pub struct Options {
    pub docs: usize,
    pub queries: usize,
    pub seed: u64,
    /// Also build and query SQLite FTS5 (trigram).
    pub fts5: bool,
    /// Also build and query the same index without encryption.
    pub plain: bool,
    /// Where to build (default: a temporary directory, removed afterwards).
    pub dir: Option<PathBuf>,
    /// Writer threads and heap.
    pub threads: usize,
    pub heap_mb: usize,
}

#[derive(Debug, Serialize)]
pub struct Figures {
    pub docs: usize,
    pub queries: usize,
    pub docs_per_s: f64,
    pub build_seconds: f64,
    pub index_bytes: u64,
    pub raw_text_bytes: u64,
    pub index_to_raw: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// The search page's request: top 20 + total count + facets + snippets (no fuzzy tier).
    pub ui_p50_ms: f64,
    pub ui_p99_ms: f64,
    /// The search page's request as the page makes it: with the fuzzy tier.
    pub page_p99_ms: f64,
    /// Name queries (top 10) with the fuzzy tier, over documents whose name OCR misread and
    /// documents read right: p99, and the share found in the top 10 by the true name.
    pub fuzzy_p99_ms: f64,
    pub name_queries: usize,
    pub misread_found_top10: f64,
    pub read_right_found_top10: f64,
    pub mean_hits: f64,
    /// p99 by query kind (word, two words, phrase, field filter, date range).
    pub kind_p99_ms: std::collections::BTreeMap<String, f64>,
    pub peak_rss_mb: f64,
    pub plain_docs_per_s: Option<f64>,
    pub plain_index_bytes: Option<u64>,
    pub plain_p99_ms: Option<f64>,
    /// Encrypted p99 / unencrypted p99.
    pub encryption_p99_ratio: Option<f64>,
    pub fts5_docs_per_s: Option<f64>,
    pub fts5_index_bytes: Option<u64>,
    pub fts5_p50_ms: Option<f64>,
    pub fts5_p99_ms: Option<f64>,
    /// FTS5 p99 over the queries it can answer from its trigram index alone (every word ≥ 3
    /// characters); shorter words need a LIKE scan.
    pub fts5_indexed_p99_ms: Option<f64>,
    /// FTS5 p99 / hozon p99.
    pub fts5_p99_ratio: Option<f64>,
    pub fts5_peak_rss_mb: Option<f64>,
}

fn dir_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn bar(len: usize, show: bool, what: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len as u64);
    b.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    b.set_message(what.to_owned());
    b
}

/// Builds an index of the corpus in `dir`; returns seconds and raw text bytes.
fn build<D: tantivy::Directory>(
    dir: D,
    corpus: &Corpus,
    o: &Options,
    show: bool,
    what: &str,
) -> anyhow::Result<(f64, u64)> {
    let b = bar(o.docs, show, what);
    let mut raw = 0u64;
    let t = Instant::now();
    let docs = (0..o.docs as u64).map(|n| {
        let d = corpus.doc(n);
        raw += (d.text.len() + d.name.as_ref().map_or(0, String::len) + d.kana.as_ref().map_or(0, String::len)) as u64;
        d
    });
    SearchIndex::bulk_build(dir, docs, o.heap_mb << 20, o.threads, |n| {
        if n % 1000 == 0 {
            b.set_position(n as u64);
        }
    })?;
    b.finish_and_clear();
    Ok((t.elapsed().as_secs_f64(), raw))
}

struct Latency {
    ms: Vec<f64>,
    /// p99 per query kind.
    by_kind: std::collections::BTreeMap<String, f64>,
    hits: f64,
}

/// Runs every query twice (a warm-up pass, then the measured pass). `ui`: as the search page
/// asks (count, facets, snippets); `near`: with the fuzzy tier.
fn measure(idx: &SearchIndex, bench: &[BenchQuery], ui: bool, near: bool) -> anyhow::Result<Latency> {
    let queries: Vec<String> = bench.iter().map(BenchQuery::hozon).collect();
    let scope = Scope { my_number: true, hidden_persons: vec![] };
    let hash = |s: &str| s.to_owned();
    let req = |q: &'_ str| -> anyhow::Result<usize> {
        let r = idx.search(&Request {
            query: q,
            scope: &scope,
            sort: Sort::Relevance,
            limit: 20,
            offset: 0,
            facets: ui,
            snippets: ui,
            count: ui,
            hash_my_number: &hash,
            near,
        });
        Ok(r.with_context(|| format!("query {q:?}"))?.hits.len())
    };
    for q in &queries {
        req(q)?;
    }
    let mut ms = Vec::with_capacity(queries.len());
    let mut kinds: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut hits = 0usize;
    for (q, b) in queries.iter().zip(bench) {
        let t = Instant::now();
        hits += req(q)?;
        let elapsed = t.elapsed().as_secs_f64() * 1000.0;
        ms.push(elapsed);
        kinds.entry(format!("{:?}", b.kind)).or_default().push(elapsed);
    }
    ms.sort_by(f64::total_cmp);
    let by_kind = kinds
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (k, percentile(&v, 99.0))
        })
        .collect();
    Ok(Latency { ms, by_kind, hits: hits as f64 / queries.len().max(1) as f64 })
}

struct NameSearch {
    /// Latencies, sorted.
    ms: Vec<f64>,
    misread_found: f64,
    right_found: f64,
}

/// Searches `count` applicants by their true name (half whose name OCR misread, half read
/// right) with the fuzzy tier, top 10, as a reviewer looking for one person would.
fn names(idx: &SearchIndex, corpus: &Corpus, docs: u64, count: usize) -> anyhow::Result<NameSearch> {
    let scope = Scope { my_number: true, hidden_persons: vec![] };
    let hash = |s: &str| s.to_owned();
    let every = super::corpus::MISREAD_EVERY;
    let half = (count / 2).max(1) as u64;
    let step = (docs / every / half).max(1);
    let misread: Vec<u64> = (0..half).map(|i| 7 + i * step * every).filter(|n| *n < docs).collect();
    let right: Vec<u64> = (0..half).map(|i| 13 + i * step * every).filter(|n| *n < docs).collect();
    let mut ms = Vec::new();
    let found = |ns: &[u64], ms: &mut Vec<f64>| -> anyhow::Result<f64> {
        let mut hits = 0;
        for &n in ns {
            let truth = match corpus.misread(n) {
                Some((truth, _)) => truth,
                None => corpus.doc(n).name.unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect(),
            };
            let t = Instant::now();
            let r = idx.search(&Request {
                query: &truth,
                scope: &scope,
                sort: Sort::Relevance,
                limit: 10,
                offset: 0,
                facets: false,
                snippets: false,
                count: false,
                hash_my_number: &hash,
                near: true,
            })?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            hits += usize::from(r.hits.iter().any(|h| h.record_id == format!("{n:032x}")));
        }
        Ok(hits as f64 / ns.len().max(1) as f64)
    };
    let misread_found = found(&misread, &mut ms)?;
    let right_found = found(&right, &mut ms)?;
    ms.sort_by(f64::total_cmp);
    Ok(NameSearch { ms, misread_found, right_found })
}

pub fn run(o: &Options, show: bool) -> anyhow::Result<Figures> {
    let tmp;
    let root = match &o.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    let corpus = Corpus::new(o.seed);
    let bench_queries = corpus.queries(o.queries);

    // Encrypted, as hozon stores it.
    reset_peak_rss();
    let enc_path = root.join("encrypted");
    let key = crate::crypto::Key::generate();
    let enc_dir = || crate::store::index_dir::EncryptedDirectory::open(enc_path.clone(), vec![key.clone()]);
    let (build_seconds, raw_text_bytes) = build(enc_dir()?, &corpus, o, show, "encrypted")?;
    let index_bytes = dir_bytes(&enc_path);
    let idx = SearchIndex::open_in(enc_dir()?)?;
    let top = measure(&idx, &bench_queries, false, false)?;
    let ui = measure(&idx, &bench_queries, true, false)?;
    let page = measure(&idx, &bench_queries, true, true)?;
    let names = names(&idx, &corpus, o.docs as u64, o.queries.min(400))?;
    drop(idx);
    let peak = peak_rss_mb();

    let mut f = Figures {
        docs: o.docs,
        queries: bench_queries.len(),
        docs_per_s: o.docs as f64 / build_seconds,
        build_seconds,
        index_bytes,
        raw_text_bytes,
        index_to_raw: index_bytes as f64 / raw_text_bytes.max(1) as f64,
        p50_ms: percentile(&top.ms, 50.0),
        p95_ms: percentile(&top.ms, 95.0),
        p99_ms: percentile(&top.ms, 99.0),
        ui_p50_ms: percentile(&ui.ms, 50.0),
        ui_p99_ms: percentile(&ui.ms, 99.0),
        page_p99_ms: percentile(&page.ms, 99.0),
        fuzzy_p99_ms: percentile(&names.ms, 99.0),
        name_queries: names.ms.len(),
        misread_found_top10: names.misread_found,
        read_right_found_top10: names.right_found,
        mean_hits: top.hits,
        kind_p99_ms: top.by_kind.clone(),
        peak_rss_mb: peak,
        plain_docs_per_s: None,
        plain_index_bytes: None,
        plain_p99_ms: None,
        encryption_p99_ratio: None,
        fts5_docs_per_s: None,
        fts5_index_bytes: None,
        fts5_p50_ms: None,
        fts5_p99_ms: None,
        fts5_indexed_p99_ms: None,
        fts5_p99_ratio: None,
        fts5_peak_rss_mb: None,
    };
    std::fs::remove_dir_all(&enc_path).ok();

    if o.plain {
        let path = root.join("plain");
        std::fs::create_dir_all(&path)?;
        let mmap = || tantivy::directory::MmapDirectory::open(&path);
        let (secs, _) = build(mmap()?, &corpus, o, show, "plain")?;
        f.plain_index_bytes = Some(dir_bytes(&path));
        let idx = SearchIndex::open_in(mmap()?)?;
        let lat = measure(&idx, &bench_queries, false, false)?;
        drop(idx);
        f.plain_docs_per_s = Some(o.docs as f64 / secs);
        let p99 = percentile(&lat.ms, 99.0);
        f.plain_p99_ms = Some(p99);
        f.encryption_p99_ratio = Some(f.p99_ms / p99.max(1e-6));
        std::fs::remove_dir_all(&path).ok();
    }

    if o.fts5 {
        reset_peak_rss();
        let path = root.join("fts5.sqlite");
        let (secs, bytes) = fts5::build(&path, &corpus, o, show)?;
        let (all, indexed) = fts5::measure(&path, &bench_queries)?;
        f.fts5_docs_per_s = Some(o.docs as f64 / secs);
        f.fts5_index_bytes = Some(bytes);
        f.fts5_p50_ms = Some(percentile(&all, 50.0));
        let p99 = percentile(&all, 99.0);
        f.fts5_p99_ms = Some(p99);
        f.fts5_indexed_p99_ms = Some(percentile(&indexed, 99.0));
        f.fts5_p99_ratio = Some(p99 / f.p99_ms.max(1e-6));
        f.fts5_peak_rss_mb = Some(peak_rss_mb());
        std::fs::remove_file(&path).ok();
    }
    Ok(f)
}

/// The SQLite FTS5 baseline: one FTS5 table (trigram tokenizer) with the same text and fields.
mod fts5 {
    use std::path::Path;
    use std::time::Instant;

    use rusqlite::{Connection, params_from_iter, types::Value};

    use super::{BenchQuery, Corpus, Options, bar};

    pub fn build(path: &Path, corpus: &Corpus, o: &Options, show: bool) -> anyhow::Result<(f64, u64)> {
        let b = bar(o.docs, show, "fts5");
        let t = Instant::now();
        let mut db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;
             CREATE VIRTUAL TABLE docs USING fts5(text, name, city, disease, received UNINDEXED, tokenize='trigram');",
        )?;
        let tx = db.transaction()?;
        {
            let mut ins =
                tx.prepare("INSERT INTO docs(rowid, text, name, city, disease, received) VALUES (?,?,?,?,?,?)")?;
            for n in 0..o.docs as u64 {
                let d = corpus.doc(n);
                let name = format!("{} {}", d.name.unwrap_or_default(), d.kana.unwrap_or_default());
                ins.execute(rusqlite::params![
                    n as i64,
                    crate::index::normalise(&d.text),
                    name,
                    d.city.unwrap_or_default(),
                    d.disease.unwrap_or_default(),
                    d.received.timestamp()
                ])?;
                if n % 1000 == 0 {
                    b.set_position(n);
                }
            }
        }
        tx.commit()?;
        db.execute_batch("INSERT INTO docs(docs) VALUES('optimize');")?;
        drop(db);
        b.finish_and_clear();
        Ok((t.elapsed().as_secs_f64(), std::fs::metadata(path)?.len()))
    }

    /// SQL and parameters for one query: words of three or more characters go to MATCH
    /// (trigram), shorter ones need LIKE.
    fn sql(q: &BenchQuery) -> (String, Vec<Value>, bool) {
        let mut matches: Vec<String> = Vec::new();
        let mut conds: Vec<String> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        let mut indexed = true;
        let mut term = |col: Option<&str>, w: &str, matches: &mut Vec<String>, conds: &mut Vec<String>| {
            if w.chars().count() >= 3 {
                let quoted = format!("\"{}\"", w.replace('"', "\"\""));
                matches.push(col.map_or(quoted.clone(), |c| format!("{c} : {quoted}")));
            } else {
                indexed = false;
                conds.push(match col {
                    Some(c) => format!("{c} LIKE ?"),
                    None => "(text LIKE ? OR name LIKE ?)".to_owned(),
                });
                params.push(Value::Text(format!("%{w}%")));
                if col.is_none() {
                    params.push(Value::Text(format!("%{w}%")));
                }
            }
        };
        for w in &q.words {
            term(None, w, &mut matches, &mut conds);
        }
        if let Some(p) = &q.phrase {
            term(None, p, &mut matches, &mut conds);
        }
        if let Some(c) = &q.city {
            term(Some("city"), c, &mut matches, &mut conds);
        }
        if let Some((a, b)) = q.range {
            conds.push("received BETWEEN ? AND ?".to_owned());
            params.push(Value::Integer(a.and_hms_opt(0, 0, 0).expect("t").and_utc().timestamp() - 9 * 3600));
            params.push(Value::Integer(b.and_hms_opt(0, 0, 0).expect("t").and_utc().timestamp() + 15 * 3600));
        }
        let sql = if matches.is_empty() {
            format!("SELECT rowid FROM docs WHERE {} LIMIT 20", conds.join(" AND "))
        } else {
            let mut all = vec![Value::Text(matches.join(" AND "))];
            all.append(&mut params);
            params = all;
            let extra: String = conds.iter().map(|c| format!(" AND {c}")).collect();
            format!("SELECT rowid FROM docs WHERE docs MATCH ?{extra} ORDER BY rank LIMIT 20")
        };
        (sql, params, indexed)
    }

    /// Latencies (ms, sorted) of all queries and of those answered from the index alone.
    pub fn measure(path: &Path, queries: &[BenchQuery]) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
        let db = Connection::open(path)?;
        db.execute_batch("PRAGMA cache_size=-262144;")?;
        let run = |q: &BenchQuery| -> anyhow::Result<(f64, bool)> {
            let (sql, params, indexed) = sql(q);
            let t = Instant::now();
            let mut st = db.prepare_cached(&sql)?;
            let rows: Vec<i64> = st.query_map(params_from_iter(params), |r| r.get(0))?.collect::<Result<_, _>>()?;
            std::hint::black_box(rows);
            Ok((t.elapsed().as_secs_f64() * 1000.0, indexed))
        };
        // Warm-up on the first 100 only: the LIKE scans take seconds each at 1M documents, and
        // the build has just left the file in the page cache anyway.
        for q in queries.iter().take(100) {
            run(q)?;
        }
        let mut all = Vec::new();
        let mut indexed = Vec::new();
        for q in queries {
            let (ms, ix) = run(q)?;
            all.push(ms);
            if ix {
                indexed.push(ms);
            }
        }
        all.sort_by(f64::total_cmp);
        indexed.sort_by(f64::total_cmp);
        Ok((all, indexed))
    }
}
