//! Backups (issue: production operation): a backup taken before a disposal run restores
//! without the destroyed records; the drill names a corrupt object; incremental backups write
//! only what is new; pruning follows the policy; an S3 store started by the test works the same.

use std::process::Command;

use hozon::app::SearchOptions;
use hozon::auth::Actor;
use hozon::backup::{self, Destination};
use hozon::retention::run;

use crate::util::{TestEnv, backdate, hozon_bin, synth};

fn quiet(_: &str) {}

fn local(dir: &std::path::Path) -> Destination {
    Destination::open(dir.to_str().unwrap(), &Default::default()).unwrap()
}

/// Copies synth pages `from..to` into a fresh inbox and ingests them.
fn ingest_range(env: &TestEnv, h: &hozon::Hozon, from: usize, to: usize) {
    let inbox = env.tmp.path().join(format!("pages-{from}-{to}"));
    std::fs::create_dir_all(&inbox).unwrap();
    for t in &synth().truth[from..to] {
        let f = t["file"].as_str().unwrap();
        std::fs::copy(synth().path.join(f), inbox.join(f)).unwrap();
    }
    env.ingest(h, &inbox);
}

fn cli(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let out = Command::new(hozon_bin()).arg("--data").arg(env.data()).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn last_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.lines().rev().find(|l| l.starts_with('{')).expect("a JSON line")).unwrap()
}

/// The proof: ingest, back up, dispose, restore that backup into a new directory:
/// the destroyed names are found nowhere, each destroyed id is refused and shown as destroyed
/// with its tombstone, each kept one opens, and the audit chain verifies.
#[test]
fn a_backup_taken_before_a_disposal_restores_without_the_destroyed_records() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    backdate(&h, 6);
    ingest_range(&env, &h, 4, 6); // this year's pages: not due
    let op = Actor::operator("t");
    let dir = env.tmp.path().join("offsite");
    let dest = local(&dir);
    let taken = backup::create(&h, &op, &dest, false, &quiet).unwrap().manifest;
    assert_eq!(taken.records, 6);
    // No personal data leaves the machine: not in any object, not in the manifest.
    let leaks = crate::plaintext::scan_tree(&dir, &crate::plaintext::needles());
    assert!(leaks.is_empty(), "{leaks:#?}");

    // The disposal run: three of the four old pages destroyed, one excluded (kept).
    let (ro1, ro2) = (env.officer(&h, "ro01"), env.officer(&h, "ro02"));
    let plan = run::plan(&h, &ro1, hozon::jp::today()).unwrap();
    let due: Vec<String> = plan.items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(due.len(), 4);
    let kept = due[0].clone();
    run::exclude(&h, &ro1, &plan.id, &kept, "原本確認中").unwrap();
    run::submit(&h, &ro1, &plan.id).unwrap();
    run::approve(&h, &ro2, &plan.id).unwrap();
    assert_eq!(run::execute(&h, &ro2, &plan.id, |_, _| {}).unwrap().destroyed, 3);
    let destroyed: Vec<String> = due[1..].to_vec();
    let fresh: Vec<String> = h
        .store()
        .records()
        .map(Result::unwrap)
        .filter(|r| !due.contains(&r.id.to_string()))
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(fresh.len(), 2);
    drop(h);

    // Disaster: restore the backup from before the run into a new directory, with today's keys.
    let restored_dir = env.tmp.path().join("restored");
    let (r, h2) = backup::restore(&dest, &taken.id, &restored_dir, &env.key_file(), false, &quiet).unwrap();
    assert_eq!((r.records, r.destroyed_since), (6, 3), "{r:?}");
    let name = synth().truth[1]["fields"]["name"].as_str().unwrap().replace('　', "");
    let hits = h2.search(&op, &SearchOptions::new(&name, 20)).unwrap().results;
    assert!(hits.iter().all(|x| !destroyed.contains(&x.record_id)), "a destroyed page is findable");
    for id in &destroyed {
        let rid = hozon::store::RecordId::parse(id).unwrap();
        assert!(h2.page_text(&op, &rid).is_err(), "{id} opens after the restore");
        let t = h2.store().tombstone(id).unwrap().expect("a tombstone");
        assert_eq!(t.run_id, plan.id, "the tombstone names the run that destroyed it");
    }
    for id in fresh.iter().chain([&kept]) {
        let rid = hozon::store::RecordId::parse(id).unwrap();
        assert!(h2.page_text(&op, &rid).is_ok(), "{id} kept but unreadable after the restore");
    }
    assert_eq!(h2.index().num_docs(), 3, "the index holds the kept pages only");
    assert!(h2.audit_verify(&op, &[]).unwrap().is_ok(), "the restored audit chain verifies");
    // Nor does the restored directory hold the destroyed pages' text anywhere.
    drop(h2);
    let gone: Vec<(String, Vec<u8>)> =
        crate::plaintext::needles().into_iter().filter(|(what, _)| what.starts_with("name=")).collect();
    assert!(crate::plaintext::scan_tree(&restored_dir, &gone).is_empty());
}

/// Incremental backups write only what is new; the drill restores into a scratch directory
/// and passes, then names the one object a disk corrupted; `list` shows one line per backup.
#[test]
fn incremental_backups_and_a_drill_that_names_a_corrupt_object() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    drop(h);
    let dir = env.tmp.path().join("offsite");
    let to = dir.to_str().unwrap();
    let (ok, first) = cli(&env, &["backup", "create", "--to", to]);
    assert!(ok, "{first}");
    let h = env.open();
    ingest_range(&env, &h, 4, 5);
    drop(h);
    std::thread::sleep(std::time::Duration::from_millis(1100)); // ids are per second
    let (ok, second) = cli(&env, &["backup", "create", "--to", to]);
    assert!(ok, "{second}");
    let (ok, listing) = cli(&env, &["backup", "list", "--to", to]);
    assert!(ok, "{listing}");
    let ids: Vec<String> = listing.lines().map(|l| l.split_whitespace().next().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2, "{listing}");
    let ms: Vec<_> = backup::list(&local(&dir)).unwrap();
    assert!(
        ms[1].bytes_written * 2 < ms[0].bytes_written && ms[1].objects_written * 2 < ms[0].objects_written,
        "the second backup wrote {} bytes / {} objects, the first {} / {}",
        ms[1].bytes_written,
        ms[1].objects_written,
        ms[0].bytes_written,
        ms[0].objects_written
    );
    let (ok, drill) = cli(&env, &["backup", "verify", &ids[1], "--to", to]);
    assert!(ok, "{drill}");
    let j = last_json(&drill);
    assert_eq!(
        (j["ok"].as_bool(), j["records"].as_u64(), j["audit_ok"].as_bool()),
        (Some(true), Some(5), Some(true)),
        "{drill}"
    );

    // One blob object flipped on the backup disk: the drill fails and names it.
    let blob = walkdir::WalkDir::new(dir.join("blobs"))
        .into_iter()
        .map(Result::unwrap)
        .find(|e| e.file_type().is_file())
        .unwrap()
        .into_path();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&blob, bytes).unwrap();
    let (ok, drill) = cli(&env, &["backup", "verify", &ids[1], "--to", to]);
    assert!(!ok, "{drill}");
    let name = blob.file_name().unwrap().to_str().unwrap();
    assert!(drill.contains(name), "the drill names {name}: {drill}");
    assert_eq!(last_json(&drill)["ok"].as_bool(), Some(false));

    // The object lost at the destination (its records' chunk still there): `--full` checks
    // the destination itself and writes it again.
    std::fs::remove_file(&blob).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (ok, out) = cli(&env, &["backup", "create", "--to", to, "--full"]);
    assert!(ok, "{out}");
    assert!(blob.exists(), "--full did not write the lost blob again");
    let newest = backup::list(&local(&dir)).unwrap().pop().unwrap();
    let (ok, drill) = cli(&env, &["backup", "verify", &newest.id, "--to", to]);
    assert!(ok && last_json(&drill)["ok"].as_bool() == Some(true), "{drill}");
}

/// The change set behind incremental backups outlives a clean stop and not a crash: after a
/// SIGTERM (what systemd sends) the next backup reads only around the page ingested through the
/// running server; after a kill -9 it reads everything again; each restores complete.
#[test]
fn a_clean_stop_hands_the_changes_to_the_next_backup_and_a_crash_does_not() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 3);
    drop(h);
    let dir = env.tmp.path().join("offsite");
    let to = dir.to_str().unwrap();
    let backup_and_drill = |records: u64| -> backup::Manifest {
        std::thread::sleep(std::time::Duration::from_millis(1100)); // ids are per second
        let (ok, out) = cli(&env, &["backup", "create", "--to", to]);
        assert!(ok, "{out}");
        let m = backup::list(&local(&dir)).unwrap().pop().unwrap();
        let (ok, drill) = cli(&env, &["backup", "verify", &m.id, "--to", to]);
        assert!(ok, "{drill}");
        assert_eq!(last_json(&drill)["records"].as_u64(), Some(records), "{drill}");
        m
    };
    let first = backup_and_drill(3);
    assert_eq!(first.entries_read, first.entries, "no map yet: everything is read");
    let ingest_one = |i: usize| {
        let inbox = env.tmp.path().join(format!("one-{i}"));
        std::fs::create_dir_all(&inbox).unwrap();
        let f = synth().truth[i]["file"].as_str().unwrap();
        std::fs::copy(synth().path.join(f), inbox.join(f)).unwrap();
        let (ok, out) = cli(&env, &["ingest", inbox.to_str().unwrap()]);
        assert!(ok && out.contains("稼働中のサーバー"), "{out}");
    };

    let mut server = crate::ops::serve(&env);
    ingest_one(3);
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut stopped = None;
    for _ in 0..300 {
        if let Some(st) = server.0.try_wait().unwrap() {
            stopped = Some(st);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(stopped.is_some_and(|s| s.success()), "serve did not stop cleanly on SIGTERM: {stopped:?}");
    let second = backup_and_drill(4);
    assert!(
        second.entries_read < second.entries,
        "after a clean stop only the changes are read: {} of {}",
        second.entries_read,
        second.entries
    );

    let server = crate::ops::serve(&env);
    ingest_one(4);
    drop(server); // kill -9
    let third = backup_and_drill(5);
    assert_eq!(third.entries_read, third.entries, "after a crash everything is read again");
}

/// The policy keeps backups seven years (and the newest few whatever their age): eight years
/// on (faketime), `prune` deletes the expired ones oldest first, audits each, removes the
/// objects only they needed, and the newest still passes its drill.
#[test]
fn prune_expires_old_backups_by_the_policy_and_keeps_what_the_rest_need() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 3);
    drop(h);
    let dir = env.tmp.path().join("offsite");
    let to = dir.to_str().unwrap();
    let policies = env.tmp.path().join("policies");
    crate::util::copy_dir(&hozon::retention::policy::default_dir(), &policies);
    let text = std::fs::read_to_string(policies.join("backup.toml"))
        .unwrap()
        .replace("keep_at_least = 3", "keep_at_least = 1");
    std::fs::write(policies.join("backup.toml"), text).unwrap();
    let run_at = |when: &str, args: &[&str]| {
        let out = Command::new("faketime")
            .arg("-f")
            .arg(when)
            .arg(hozon_bin())
            .arg("--data")
            .arg(env.data())
            .args(args)
            .env("HOZON_POLICIES", &policies)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run_at("-1y", &["backup", "create", "--to", to]);
    let h = env.open();
    ingest_range(&env, &h, 3, 4);
    drop(h);
    run_at("+0d", &["backup", "create", "--to", to]);
    let before = walkdir::WalkDir::new(&dir).into_iter().filter(|e| e.as_ref().unwrap().file_type().is_file()).count();
    // Seven years after the second: only the first is past seven years.
    let out = run_at("+7y", &["backup", "prune", "--to", to]);
    assert!(out.contains("1 件を削除"), "{out}");
    let left = backup::list(&local(&dir)).unwrap();
    assert_eq!(left.len(), 1);
    let after = walkdir::WalkDir::new(&dir).into_iter().filter(|e| e.as_ref().unwrap().file_type().is_file()).count();
    assert!(after < before, "objects only the expired backup needed are gone ({before} → {after})");
    let (ok, drill) = cli(&env, &["backup", "verify", &left[0].id, "--to", to]);
    assert!(ok, "the remaining backup is whole: {drill}");
    let h = env.open();
    let expired = h.audit_search(&Actor::operator("t"), &Default::default(), 1000).unwrap();
    assert_eq!(expired.iter().filter(|e| e.action == "backup.expire").count(), 1);
}

/// A SeaweedFS server on loopback ports, stopped when dropped: the off-site S3 store.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl S3Server {
    fn start() -> S3Server {
        let weed = std::env::var("HOZON_WEED")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/weed"));
        assert!(weed.exists(), "{} missing: run scripts/setup.sh", weed.display());
        let dir = tempfile::tempdir().unwrap();
        // Ports from the process id, each below 55535 (SeaweedFS also uses port + 10000).
        let base = 20_000 + (std::process::id() % 300) as u16 * 100;
        let port = |n: u16| (base + n).to_string();
        let child = Command::new(weed)
            .args(["server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-volume.max=5", "-s3"])
            .arg(format!("-dir={}", dir.path().display()))
            .arg(format!("-master.port={}", port(1)))
            .arg(format!("-volume.port={}", port(2)))
            .arg(format!("-filer.port={}", port(3)))
            .arg(format!("-s3.port={}", port(4)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{}", port(4));
        let server = S3Server { child, endpoint, _dir: dir };
        // Ready when a bucket can be made.
        for _ in 0..240 {
            let made = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
                .arg(format!("{}/hozon", server.endpoint))
                .output()
                .ok()
                .is_some_and(|o| o.stdout == b"200");
            if made {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("SeaweedFS did not start at {}", server.endpoint);
    }

    fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The off-site copy on an S3 API (SeaweedFS started here on loopback): create, list, drill,
/// restore, and the store's files hold no personal data in the clear.
#[test]
fn backups_to_an_s3_store_restore_and_hold_only_ciphertext() {
    let s3 = S3Server::start();
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    drop(h);
    let run = |args: &[&str], data: &std::path::Path| {
        let out = Command::new(hozon_bin())
            .arg("--data")
            .arg(data)
            .arg("--key-file")
            .arg(env.key_file())
            .args(args)
            .env("AWS_ENDPOINT_URL", &s3.endpoint)
            .env("AWS_ACCESS_KEY_ID", "hozon-test")
            .env("AWS_SECRET_ACCESS_KEY", "hozon-test-secret")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{args:?}: {text}");
        text
    };
    let to = "s3://hozon/office-1";
    run(&["backup", "create", "--to", to], &env.data());
    let listing = run(&["backup", "list", "--to", to], &env.data());
    let id = listing.lines().next().unwrap().split_whitespace().next().unwrap().to_owned();
    let drill = run(&["backup", "verify", &id, "--to", to], &env.data());
    assert_eq!(last_json(&drill)["ok"].as_bool(), Some(true), "{drill}");
    let restored = env.tmp.path().join("restored");
    run(&["backup", "restore", &id, "--from", to], &restored);
    let found = run(&["search", synth().truth[0]["fields"]["disease"].as_str().unwrap()], &restored);
    assert!(!found.trim().is_empty(), "the restored store answers searches");
    let leaks = crate::plaintext::scan_tree(s3.data_dir(), &crate::plaintext::needles());
    assert!(leaks.is_empty(), "{leaks:#?}");
}
