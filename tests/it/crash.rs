//! Kill the ingest process mid-batch, run it again: every page stored exactly once, and every
//! application's two sheets paired.

use std::process::Command;
use std::time::{Duration, Instant};

use hozon::store::RecordState;

use crate::util::{TestEnv, hozon_bin, synth};

fn blob_count(data: &std::path::Path) -> usize {
    walkdir::WalkDir::new(data.join("blobs"))
        .min_depth(2)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && !e.path().parent().unwrap().ends_with("tmp"))
        .count()
}

#[test]
fn sigkill_mid_batch_then_rerun_stores_every_page_once() {
    let env = TestEnv::new();
    let inbox = env.inbox();
    let pages = synth().truth.len();
    let ingest = || {
        let mut c = Command::new(hozon_bin());
        c.arg("--data").arg(env.data()).arg("ingest").arg(&inbox).arg("--keep");
        c
    };
    let mut child = ingest().spawn().unwrap();
    // Wait until some pages are durably stored (3 blobs per page), then kill without warning.
    let started = Instant::now();
    while blob_count(&env.data()) < 6 {
        assert!(started.elapsed() < Duration::from_secs(120), "ingest made no progress");
        assert!(child.try_wait().unwrap().is_none(), "ingest finished before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Something was left half-done or not started at all.
    {
        let h = env.open();
        let stored = h.store().records().map(Result::unwrap).filter(|r| r.state == RecordState::Stored).count();
        assert!(stored < pages, "the kill came too late to test anything");
    }

    let status = ingest().status().unwrap();
    assert!(status.success(), "second ingest failed: {status}");

    let h = env.open();
    let records: Vec<_> = h.store().records().map(Result::unwrap).collect();
    assert_eq!(records.len(), pages);
    assert!(records.iter().all(|r| r.state == RecordState::Stored));
    assert_eq!(h.index().num_docs(), pages as u64, "one index entry per page");
    for rec in &records {
        let text = h.page_text(&hozon::auth::Actor::system(), &rec.id).unwrap();
        assert!(!text.is_empty());
    }
    // Every application's two sheets end paired, whichever run stored each (finding 9: a
    // kill between the sheets used to leave them unpaired for good).
    let sheets_1 = synth().truth.iter().filter(|t| t["sheet"].as_u64() == Some(1)).count();
    let system = hozon::auth::Actor::system();
    let paired = records
        .iter()
        .filter_map(|r| h.draft(&system, &r.id).unwrap())
        .filter(|d| d.sheet == Some(1) && d.pair.is_some())
        .count();
    assert!(sheets_1 > 0);
    assert_eq!(paired, sheets_1, "every sheet 1 paired with its sheet 2");
    // Nothing orphaned remains after a gc (once the crash's leftovers are older than the
    // grace period that protects writers' fresh blobs), and a third run is a no-op.
    assert_eq!(h.store().gc_orphans().unwrap(), 0, "fresh blobs are never collected");
    let old = std::time::SystemTime::now() - hozon::store::GC_GRACE - Duration::from_secs(60);
    for e in walkdir::WalkDir::new(env.data().join("blobs")).into_iter().filter_map(Result::ok) {
        if e.file_type().is_file() {
            std::fs::File::options().write(true).open(e.path()).unwrap().set_modified(old).unwrap();
        }
    }
    h.store().gc_orphans().unwrap();
    // Original, text and info per page, and a draft per recognised page (all of them here).
    assert_eq!(blob_count(&env.data()), pages * 4);
    drop(h);
    let out = ingest().output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("保存 0 / 重複 {pages}")));
}
