//! hozon (保存): document capture and records retention for the Tokyo designated intractable
//! disease medical-expense subsidy.
//!
//! Data flows capture → ocr → store (sealed blobs) → index → search; see ARCHITECTURE.md for
//! the map and the invariants (only `store` writes personal data, and only as ciphertext).

pub mod app;
pub mod archive;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bench;
pub mod capture;
pub mod cases;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod csvout;
pub mod doctor;
pub mod drafts;
pub mod error;
pub mod export;
pub mod forms;
pub mod index;
pub mod jp;
pub mod ocr;
pub mod pdf;
pub mod permits;
pub mod resources;
pub mod retention;
pub mod store;
pub mod synth;
pub mod web;

pub use app::Hozon;
pub use error::{Error, Result};

/// The layering rules the compiler cannot see inside one crate: the web and the command line
/// reach records only through `Hozon` (whose methods take an `Actor` and check it), never the
/// store or the index; and only `auth` mints an `Actor`.
#[cfg(test)]
mod layering {
    use std::path::Path;

    fn sources(dir: &str) -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
        walkdir::WalkDir::new(&root)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
            .map(|e| (e.path().display().to_string(), std::fs::read_to_string(e.path()).expect("source")))
            .collect()
    }

    /// Lines of code (comments dropped) matching any of `needles`.
    fn offending(dirs: &[&str], needles: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for dir in dirs {
            for (path, text) in sources(dir) {
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("").replace("-> Actor {", "").replace("::Actor {", "");
                    if needles.iter().any(|n| code.contains(n)) {
                        out.push(format!("{path}:{}: {}", i + 1, line.trim()));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn web_and_cli_never_touch_the_store_or_index() {
        let found = offending(&["web", "cli"], &[".store.", ".store,", ".store)", ".index.", "Store::", "SearchIndex"]);
        assert!(found.is_empty(), "go through Hozon's methods instead:\n{}", found.join("\n"));
    }

    #[test]
    fn only_auth_mints_actors() {
        let dirs = ["app", "capture", "cases", "cli", "drafts", "index", "retention", "store", "web", "bench"];
        let found = offending(&dirs, &["Actor {", "Actor{"]);
        assert!(found.is_empty(), "actors come from auth's constructors:\n{}", found.join("\n"));
    }

    /// The check itself sees what it is meant to see.
    #[test]
    fn the_scan_finds_a_planted_access() {
        assert!(!offending(&["app"], &[".store."]).is_empty());
    }
}
