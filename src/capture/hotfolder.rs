//! Hot folders: each logged batch has a subfolder `<root>/<batch id>/` that a scanner (or a
//! person) saves into. A poll ingests every scan there that has settled (not modified for
//! `settle`, so a file the scanner is still writing is left for the next poll) into that
//! batch, and removes it once stored. Folders that name no logged batch are reported, never
//! ingested: a page must not land in the wrong batch.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::app::Hozon;
use crate::auth::{Actor, Function, Level};
use crate::capture::batch::looks_like_id;
use crate::capture::ingest::{IngestOptions, IngestReport, Source, ingest_sources};
use crate::capture::scan_files;
use crate::error::{Error, Result};

/// What one poll did.
#[derive(Debug, Default)]
pub struct Poll {
    /// Per batch with new pages: its id and what became of them.
    pub ingested: Vec<(String, IngestReport)>,
    /// Subfolders (or loose files) that belong to no logged batch.
    pub strays: Vec<PathBuf>,
    /// Scans still being written (seen, left for the next poll).
    pub unsettled: usize,
}

/// Creates `<root>/<batch id>/` (idempotent) and returns it.
pub fn batch_folder(root: &Path, batch: &str) -> Result<PathBuf> {
    let dir = root.join(batch);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
    Ok(dir)
}

/// Scans waiting in a batch's folder (settled or not).
pub fn waiting(root: &Path, batch: &str) -> usize {
    scan_files(&root.join(batch)).map_or(0, |f| f.len())
}

fn settled(path: &Path, settle: Duration, now: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= settle))
}

/// One pass over `root`.
/// Files are stored under `actor`'s name (the server's hot-folder job, or the operator).
pub fn poll(h: &Hozon, actor: &Actor, root: &Path, settle: Duration, opts: &IngestOptions) -> Result<Poll> {
    actor.require(Function::Capture, Level::Update)?;
    let mut out = Poll::default();
    let entries = std::fs::read_dir(root).map_err(|e| Error::Io { path: root.to_owned(), source: e })?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() && looks_like_id(&name) && h.batch_by_id(&name)?.is_some() {
            dirs.push(path);
        } else {
            out.strays.push(path);
        }
    }
    dirs.sort();
    let now = SystemTime::now();
    for dir in dirs {
        let batch = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let files = scan_files(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
        let (ready, busy): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|f| settled(f, settle, now));
        out.unsettled += busy.len();
        if ready.is_empty() {
            continue;
        }
        let opts = IngestOptions { batch: Some(batch.clone()), keep_files: false, ..opts.clone() };
        let report = ingest_sources(h, actor, ready.into_iter().map(Source::File).collect(), &opts)?;
        out.ingested.push((batch, report));
    }
    Ok(out)
}
