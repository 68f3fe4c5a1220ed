use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Concurrent users (login, search, record view) against a local server
    Serve {
        #[arg(long, default_value_t = 50)]
        users: usize,
        /// Seconds of load after everyone has logged in
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Synthetic submissions (4 pages each) to serve
        #[arg(long, default_value_t = 3)]
        submissions: usize,
        /// Also upload hostile files (a TIFF bomb, too many pages, a cut JPEG, a PNG with a ZIP,
        /// a 30000-px header) as a mailroom user during the load
        #[arg(long)]
        hostile: bool,
        /// Decoded megabytes allowed per file in the hostile run
        #[arg(long, default_value_t = 256)]
        hostile_budget_mb: u64,
    },
    /// Archive search at N synthetic documents: build rate, size, query latency; the same index
    /// unencrypted and SQLite FTS5 (trigram) on the same corpus and queries for comparison
    Search {
        #[arg(long, default_value_t = 100_000)]
        docs: usize,
        #[arg(long, default_value_t = 1000)]
        queries: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Skip the SQLite FTS5 baseline
        #[arg(long)]
        no_fts5: bool,
        /// Skip the unencrypted baseline
        #[arg(long)]
        no_plain: bool,
        /// Build in this directory (default: a temporary one)
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Index writer threads
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Index writer memory (MiB, shared by the threads)
        #[arg(long, default_value_t = 1024)]
        heap_mb: usize,
    },
    /// Pages per second of the draft pipeline against full-page `tesseract -l jpn` on the same
    /// scans (a `hozon synth` directory), one worker per core each
    Ocr {
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// Keystrokes and seconds per verified form at the review desk (a careful reviewer driven
    /// by the truth file of a `hozon synth` directory) against keying every field from scratch
    Review {
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
    /// Full backup of N pages, incremental after 1% new, restore (last line: JSON)
    Backup {
        #[arg(long, default_value_t = 10_000)]
        records: usize,
        /// Size of each page's image blob in KiB (a 300 dpi A4 scan is ~100–300 KiB)
        #[arg(long, default_value_t = 32)]
        page_kb: usize,
        /// Pages added before the incremental backup (default 1% of --records; a day's intake
        /// is ~3,400)
        #[arg(long)]
        new: Option<usize>,
        /// Image size of the added pages in KiB (default --page-kb)
        #[arg(long)]
        new_page_kb: Option<usize>,
    },
    /// Export a week's reviewed applications as the subsidy system's input data (last line: JSON)
    Export {
        #[arg(long, default_value_t = 17_000)]
        forms: usize,
        /// How many of them go through synthetic scans, OCR and review (the rest are stored
        /// as verified drafts)
        #[arg(long, default_value_t = 20)]
        ocr_sample: usize,
    },
    /// Plan, approve and execute a disposal run of N due records, with its certificate
    Dispose {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
    },
}

pub fn run(c: &BenchCommand) -> anyhow::Result<ExitCode> {
    match c {
        BenchCommand::Serve { users, seconds, submissions, hostile, hostile_budget_mb } => {
            let opts = crate::bench::serve::Options {
                users: *users,
                seconds: *seconds,
                submissions: *submissions,
                hostile: *hostile,
                hostile_budget_mb: *hostile_budget_mb,
            };
            let f = crate::bench::serve::run(&opts, std::io::stderr().is_terminal())?;
            println!("hozon bench serve — {} users, {} s of load on 127.0.0.1", f.users, f.seconds);
            println!("  requests           {:>10}", f.requests);
            println!("  errors             {:>10}", f.errors);
            println!("  requests/s         {:>10.1}", f.requests_per_s);
            println!("  latency p50        {:>10.2} ms", f.p50_ms);
            println!("  latency p95        {:>10.2} ms", f.p95_ms);
            println!("  latency p99        {:>10.2} ms", f.p99_ms);
            println!("  login step p99     {:>10.2} ms  (argon2id, first login with password change)", f.login_p99_ms);
            println!("  audited            {:>10}  (audit entries of kind http)", f.audited);
            println!("  peak RSS           {:>10.1} MiB  (serving phase)", f.peak_rss_mb);
            if *hostile {
                println!("  hostile files      {:>10}  (uploaded by a mailroom user during the load)", f.hostile_files);
                println!("  hostile refused    {:>10}  (pages refused or quarantined)", f.hostile_refused);
                println!("  after the uploads  {:>10}  requests, {} errors", f.after_requests, f.after_errors);
            }
            println!("{}", serde_json::to_string(&f)?);
            Ok(if f.errors == 0 && f.audited == f.requests { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        BenchCommand::Search { docs, queries, seed, no_fts5, no_plain, dir, threads, heap_mb } => {
            let o = crate::bench::search::Options {
                docs: *docs,
                queries: *queries,
                seed: *seed,
                fts5: !no_fts5,
                plain: !no_plain,
                dir: dir.clone(),
                threads: *threads,
                heap_mb: *heap_mb,
            };
            let f = crate::bench::search::run(&o, std::io::stderr().is_terminal())?;
            let opt = |v: Option<f64>, unit: &str| v.map_or("—".to_owned(), |v| format!("{v:.2}{unit}"));
            let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
            println!("hozon bench search — {} documents, {} queries (top 20 by relevance)", f.docs, f.queries);
            println!("                       hozon (encrypted)   unencrypted        SQLite FTS5 trigram");
            println!(
                "  build docs/s       {:>12.0}        {:>12}       {:>12}",
                f.docs_per_s,
                opt(f.plain_docs_per_s.map(f64::round), ""),
                opt(f.fts5_docs_per_s.map(f64::round), "")
            );
            println!(
                "  index size MiB     {:>12.1}        {:>12}       {:>12}",
                mib(f.index_bytes),
                opt(f.plain_index_bytes.map(mib), ""),
                opt(f.fts5_index_bytes.map(mib), "")
            );
            println!("  raw text MiB       {:>12.1}   (index/raw = {:.2})", mib(f.raw_text_bytes), f.index_to_raw);
            println!("  p50 ms             {:>12.2}        {:>12}       {:>12}", f.p50_ms, "", opt(f.fts5_p50_ms, ""));
            println!("  p95 ms             {:>12.2}", f.p95_ms);
            println!(
                "  p99 ms             {:>12.2}        {:>12}       {:>12}",
                f.p99_ms,
                opt(f.plain_p99_ms, ""),
                opt(f.fts5_p99_ms, "")
            );
            println!("  FTS5 p99, trigram-indexable queries only: {}", opt(f.fts5_indexed_p99_ms, " ms"));
            println!(
                "  ratios: FTS5 p99 / hozon p99 = {}, encrypted / unencrypted p99 = {}",
                opt(f.fts5_p99_ratio, "×"),
                opt(f.encryption_p99_ratio, "×")
            );
            println!(
                "  search page request (count + facets + snippets): p50 {:.2} ms, p99 {:.2} ms",
                f.ui_p50_ms, f.ui_p99_ms
            );
            println!("  search page request as the page makes it (with the fuzzy tier): p99 {:.2} ms", f.page_p99_ms);
            println!(
                "  name searches with the fuzzy tier ({} queries, top 10): p99 {:.2} ms; found by the true name: \
                 misread by OCR {:.1}%, read right {:.1}%",
                f.name_queries,
                f.fuzzy_p99_ms,
                f.misread_found_top10 * 100.0,
                f.read_right_found_top10 * 100.0
            );
            println!("  mean hits per query {:.1}", f.mean_hits);
            let kinds: Vec<String> = f.kind_p99_ms.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
            println!("  p99 ms by query kind: {}", kinds.join(", "));
            println!(
                "  peak RSS           {:>12.1} MiB (hozon phases); FTS5 phase {}",
                f.peak_rss_mb,
                opt(f.fts5_peak_rss_mb, " MiB")
            );
            println!("{}", serde_json::to_string(&f)?);
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Ocr { dir, workers } => {
            let f = crate::bench::ocr::run(dir, *workers)?;
            println!("hozon bench ocr — {} pages, {} workers", f.pages, f.workers);
            println!("  draft pipeline (PP-OCR fields)  {:>8.2} pages/s  ({} classified)", f.pages_per_s, f.classified);
            println!("  tesseract -l jpn (full page)    {:>8.2} pages/s", f.tesseract_pages_per_s);
            println!("  ratio                           {:>8.2}×", f.ratio);
            println!("  peak RSS                        {:>8.1} MiB", f.peak_rss_mb);
            println!("{}", serde_json::to_string(&f)?);
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Review { dir, jobs } => {
            let tmp = tempfile::tempdir()?;
            let data = tmp.path().join("data");
            let (h, _) = crate::app::Hozon::init(&data, &data.join("master.key"))?;
            let f = crate::bench::review::run(&h, dir, *jobs, std::io::stderr().is_terminal())?;
            crate::bench::review::print(&f);
            println!("{}", serde_json::to_string(&f)?);
            Ok(if f.wrong_after_review == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        BenchCommand::Export { forms, ocr_sample } => {
            let f = crate::bench::export::run(*forms, *ocr_sample, std::io::stderr().is_terminal())?;
            crate::bench::export::print(&f);
            println!("{}", serde_json::to_string(&f)?);
            Ok(if f.field_exact == 1.0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        BenchCommand::Backup { records, page_kb, new, new_page_kb } => {
            let (f, scratch) =
                crate::bench::backup::run(*records, *page_kb, *new, *new_page_kb, std::io::stderr().is_terminal())?;
            let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
            println!(
                "hozon bench backup — {} pages of {} KiB, then {} new of {} KiB",
                f.records, f.page_kb, f.new_records, f.new_page_kb
            );
            println!("  setup (not timed)   {:>10.1} s", f.setup_s);
            println!(
                "  full backup         {:>10.2} s  {:>8.1} MB written  {:>7.1} MB/s  (writes paused {} ms)",
                f.full_s,
                mb(f.full_bytes_written),
                f.full_mb_s,
                f.full_paused_ms
            );
            println!(
                "  incremental         {:>10.2} s  {:>8.1} MB written  {} objects  (writes paused {} ms)",
                f.incremental_s,
                mb(f.incremental_bytes_written),
                f.incremental_objects_written,
                f.incremental_paused_ms
            );
            for (step, s) in &f.incremental_steps {
                println!("    {s:>8.2} s  {step}");
            }
            println!(
                "  metadata entries read: full {}, incremental {} (of {})",
                f.full_entries_read, f.incremental_entries_read, f.entries
            );
            println!(
                "  restore             {:>10.2} s  {:>8.1} MB  {:>7.1} MB/s",
                f.restore_s,
                mb(f.bytes),
                f.restore_mb_s
            );
            println!("  incremental / full  {:>10.2}", f.incremental_s / f.full_s.max(1e-9));
            println!("{}", serde_json::to_string(&f)?);
            use std::io::Write;
            std::io::stdout().flush()?;
            drop(scratch);
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Dispose { records } => {
            let f = crate::bench::dispose::run(*records, std::io::stderr().is_terminal())?;
            println!("hozon bench dispose — {} due records", f.records);
            println!("  setup (not timed)  {:>10.1} s", f.setup_seconds);
            println!("  plan+submit+approve{:>10.2} s", f.plan_seconds);
            println!("  execute+certificate{:>10.2} s", f.execute_seconds);
            println!("  total              {:>10.2} s", f.seconds);
            println!("  records/s          {:>10.0}", f.records_per_s);
            println!("  epoch keys retired {:>10.2} s (inside execute)", f.epoch_key_seconds);
            println!(
                "  index re-sealed    {:>10.2} s ({} files, inside execute)",
                f.index_reencrypt_seconds, f.index_files_resealed
            );
            println!("  certificate        {} ({} bytes)", f.certificate, f.certificate_bytes);
            println!("  peak RSS           {:>10.1} MiB", f.peak_rss_mb);
            println!("{}", serde_json::to_string(&f)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A directory written by `hozon synth` (scans + truth.jsonl)
    dir: std::path::PathBuf,
    /// Field recognizer: ppocr, tesseract, or both (compared in one run)
    #[arg(long, default_value = "ppocr", value_parser = ["ppocr", "tesseract", "both"])]
    engine: String,
    /// Also list every field read wrong (synthetic values only: truth.jsonl is synthetic)
    #[arg(long)]
    misses: bool,
}

pub fn eval(a: &EvalArgs) -> anyhow::Result<ExitCode> {
    use crate::bench::eval;
    let templates = crate::forms::template::load_dir(&crate::forms::template::default_dir())?;
    let mut runs = Vec::new();
    if a.engine != "tesseract" {
        let mut ocr = crate::ocr::ppocr::PpOcr::load(&crate::ocr::ppocr::default_model())?;
        runs.push(eval::run(&a.dir, &templates, &mut ocr)?);
    }
    if a.engine != "ppocr" {
        let mut ocr = crate::ocr::TesseractEngine::new(&crate::ocr::default_tessdata(), "jpn")?;
        runs.push(eval::run(&a.dir, &templates, &mut ocr)?);
    }
    for f in &runs {
        eval::print(f);
        if a.misses {
            for m in &f.misses {
                let flag = if m.flagged { "flagged" } else { "SILENT" };
                println!("    miss {} {}: {:?} read {:?} ({flag})", m.file, m.field, m.want, m.got);
            }
        }
    }
    let mut json = serde_json::to_value(&runs[0])?;
    if let Some(second) = runs.get(1) {
        json["tesseract"] = serde_json::to_value(second)?;
    }
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}
