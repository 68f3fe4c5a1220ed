//! `hozon bench backup --records N`: a full backup of a store of N pages to a local
//! destination, an incremental one after 1% new pages (a day's intake is ~3,400 pages), and a
//! restore of the latter into a new directory. Timed apart from the setup.

use std::time::Instant;

use chrono::Utc;
use serde::Serialize;

use crate::app::Hozon;
use crate::auth::Actor;
use crate::backup::{self, Destination};

#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub records: usize,
    pub new_records: usize,
    pub page_kb: usize,
    pub new_page_kb: usize,
    pub setup_s: f64,
    pub full_s: f64,
    pub incremental_s: f64,
    pub restore_s: f64,
    /// Bytes the backups consist of (after the incremental one).
    pub bytes: u64,
    pub full_bytes_written: u64,
    pub incremental_bytes_written: u64,
    pub incremental_objects_written: u64,
    /// Metadata entries the full and the incremental backup read (of `entries`).
    pub entries: u64,
    pub full_entries_read: u64,
    pub incremental_entries_read: u64,
    /// How long audited writes waited for the metadata copy, full and incremental.
    pub full_paused_ms: u64,
    pub incremental_paused_ms: u64,
    pub full_mb_s: f64,
    pub restore_mb_s: f64,
    /// Seconds in each step of the incremental backup (its progress messages).
    pub incremental_steps: Vec<(String, f64)>,
}

/// Records when each progress message came, to time the steps of a backup.
#[derive(Default)]
struct Steps(std::sync::Mutex<Vec<(String, Instant)>>);

impl Steps {
    fn mark(&self, what: &str) {
        self.0.lock().expect("lock").push((what.to_owned(), Instant::now()));
    }

    /// Each step with the seconds until the next one (the last until `end`).
    fn durations(self, end: Instant) -> Vec<(String, f64)> {
        let marks = self.0.into_inner().expect("lock");
        let ends = marks.iter().skip(1).map(|(_, t)| *t).chain(std::iter::once(end));
        marks.iter().zip(ends).map(|((what, t), e)| (what.clone(), (e - *t).as_secs_f64())).collect()
    }
}

/// Runs the benchmark; the figures come back with the scratch directory, so the caller can
/// print them before its removal (minutes at a million pages).
pub fn run(
    n: usize,
    page_kb: usize,
    new: Option<usize>,
    new_page_kb: Option<usize>,
    show_progress: bool,
) -> anyhow::Result<(Figures, tempfile::TempDir)> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let (h, _) = Hozon::init(&data, &tmp.path().join("master.key"))?;
    let bar = if show_progress { indicatif::ProgressBar::new(n as u64) } else { indicatif::ProgressBar::hidden() };
    let t0 = Instant::now();
    super::dispose::populate_pages(&h, n, 11, Utc::now(), page_kb * 1024, &bar)?;
    bar.finish_and_clear();
    let setup_s = t0.elapsed().as_secs_f64();
    let dest = Destination::open(tmp.path().join("offsite").to_str().unwrap_or("offsite"), &Default::default())?;
    let op = Actor::job("bench");
    let quiet = |_: &str| {};
    let t = Instant::now();
    let full = backup::create(&h, &op, &dest, false, &quiet)?.manifest;
    let full_s = t.elapsed().as_secs_f64();
    let new_records = new.unwrap_or((n / 100).max(1));
    let new_page_kb = new_page_kb.unwrap_or(page_kb);
    super::dispose::populate_pages(
        &h,
        new_records,
        12,
        Utc::now(),
        new_page_kb * 1024,
        &indicatif::ProgressBar::hidden(),
    )?;
    // Backup ids are per second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let steps = Steps::default();
    let t = Instant::now();
    let incr = backup::create(&h, &op, &dest, false, &|what: &str| steps.mark(what))?.manifest;
    let incremental_s = t.elapsed().as_secs_f64();
    let incremental_steps = steps.durations(Instant::now());
    // On stderr at once: the restore after it takes the longest at a million pages.
    eprintln!(
        "full {full_s:.1} s, incremental {incremental_s:.1} s (metadata entries read {} of {}); restoring…",
        incr.entries_read, incr.entries
    );
    drop(h);
    let restored = tmp.path().join("restored");
    let key_copy = tmp.path().join("restore-keys/master.key");
    std::fs::create_dir_all(key_copy.parent().unwrap_or(tmp.path()))?;
    std::fs::copy(tmp.path().join("master.key"), &key_copy)?;
    std::fs::copy(crate::store::keystore_path(&tmp.path().join("master.key")), crate::store::keystore_path(&key_copy))?;
    let t = Instant::now();
    let (r, _) = backup::restore(&dest, &incr.id, &restored, &key_copy, false, &quiet)?;
    let restore_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(r.records as usize == n + new_records, "restored {} of {} records", r.records, n + new_records);
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let figures = Figures {
        records: n,
        new_records,
        page_kb,
        new_page_kb,
        setup_s,
        full_s,
        incremental_s,
        restore_s,
        bytes: incr.bytes_total,
        full_bytes_written: full.bytes_written,
        incremental_bytes_written: incr.bytes_written,
        incremental_objects_written: incr.objects_written,
        entries: incr.entries,
        full_entries_read: full.entries_read,
        incremental_entries_read: incr.entries_read,
        full_paused_ms: full.paused_ms,
        incremental_paused_ms: incr.paused_ms,
        full_mb_s: mb(full.bytes_written) / full_s.max(1e-9),
        restore_mb_s: mb(incr.bytes_total) / restore_s.max(1e-9),
        incremental_steps,
    };
    Ok((figures, tmp))
}
