//! The audit trail end to end: every request logged, and `hozon audit verify` naming the first
//! tampered entry after a byte is changed, an entry deleted, or two reordered.

use std::process::Command;

use hozon::audit::Event;
use hozon::web::{AppState, router};

use crate::util::{Browser, TestEnv, hozon_bin};

fn verify(env: &TestEnv, extra: &[&str]) -> (bool, String) {
    let out =
        Command::new(hozon_bin()).arg("--data").arg(env.data()).args(["audit", "verify"]).args(extra).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// A data directory with a few dozen entries, closed.
fn populated() -> TestEnv {
    let env = TestEnv::new();
    let h = env.open();
    for i in 0..30 {
        h.store().audit(Event::new("tester", "record.view", &format!("r{i}"), "ok")).unwrap();
    }
    env
}

fn audit_tree(env: &TestEnv) -> (sled::Db, sled::Tree) {
    let db = sled::open(env.data().join("meta")).unwrap();
    let t = db.open_tree("audit").unwrap();
    (db, t)
}

#[test]
fn intact_log_verifies() {
    let env = populated();
    let (ok, out) = verify(&env, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("chain intact"));
}

#[test]
fn a_changed_byte_is_found_and_named() {
    let env = populated();
    {
        let (db, t) = audit_tree(&env);
        let mut v = t.get(7u64.to_be_bytes()).unwrap().unwrap().to_vec();
        let mid = v.len() / 2;
        v[mid] ^= 0x01;
        t.insert(7u64.to_be_bytes(), v).unwrap();
        db.flush().unwrap();
    }
    let (ok, out) = verify(&env, &[]);
    assert!(!ok);
    assert!(out.contains("entry 7"), "{out}");
}

#[test]
fn a_deleted_entry_is_found_and_named() {
    let env = populated();
    {
        let (db, t) = audit_tree(&env);
        t.remove(12u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let (ok, out) = verify(&env, &[]);
    assert!(!ok);
    assert!(out.contains("entry 12") && out.contains("missing"), "{out}");
}

#[test]
fn two_reordered_entries_are_found_and_named() {
    let env = populated();
    {
        let (db, t) = audit_tree(&env);
        let a = t.get(5u64.to_be_bytes()).unwrap().unwrap();
        let b = t.get(9u64.to_be_bytes()).unwrap().unwrap();
        t.insert(5u64.to_be_bytes(), b).unwrap();
        t.insert(9u64.to_be_bytes(), a).unwrap();
        db.flush().unwrap();
    }
    let (ok, out) = verify(&env, &[]);
    assert!(!ok);
    assert!(out.contains("entry 5"), "{out}");
}

#[test]
fn exported_checkpoints_catch_a_truncated_log() {
    let env = TestEnv::new();
    {
        let h = env.open();
        for i in 0..1100 {
            h.store().audit_unflushed(Event::new("tester", "search", &i.to_string(), "ok")).unwrap();
        }
        h.store().flush().unwrap();
    }
    let out = Command::new(hozon_bin()).arg("--data").arg(env.data()).args(["audit", "checkpoints"]).output().unwrap();
    let cps = String::from_utf8(out.stdout).unwrap();
    assert!(cps.lines().count() >= 1, "{cps}");
    let file = env.tmp.path().join("checkpoints.jsonl");
    std::fs::write(&file, &cps).unwrap();
    assert!(verify(&env, &["--checkpoints", file.to_str().unwrap()]).0);
    let hash_500 = {
        let h = env.open();
        h.store().audit_entries().unwrap().into_iter().find(|e| e.seq == 500).unwrap().hash
    };
    // Cut the log back to 500 entries and rewrite the head carelessly: the head's hash betrays it.
    let cut_to = |hash: &str| {
        let (db, t) = audit_tree(&env);
        for k in 501..=t.len() as u64 + 10 {
            t.remove(k.to_be_bytes()).unwrap();
        }
        let meta = db.open_tree("meta").unwrap();
        let last: serde_json::Value = serde_json::json!({"seq": 500, "hash": hash});
        meta.insert("audit_head", serde_json::to_vec(&last).unwrap()).unwrap();
        db.flush().unwrap();
    };
    cut_to("x");
    let (ok, out) = verify(&env, &[]);
    assert!(!ok && out.contains("chain head"), "{out}");
    // Rewritten with care (the head is entry 500's own hash): only the exported copy can tell.
    cut_to(&hash_500);
    assert!(verify(&env, &[]).0, "without checkpoints the cut log looks whole");
    let (ok, out) = verify(&env, &["--checkpoints", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("truncated"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_audited_without_personal_data() {
    let env = TestEnv::new();
    let h = env.open();
    let temp = env.add_user(&h, "rev01", hozon::auth::Role::Reviewer);
    let state = AppState::new(h);
    let before = state.hozon.store().audit_entries().unwrap().iter().filter(|e| e.action == "http").count();
    let mut b = Browser::new(router(state.clone()));
    b.login("rev01", &temp, "a-long-new-passphrase-1").await;
    let name = "山田太郎";
    b.get(&format!("/search?q={}", crate::util::pct(name))).await;
    b.get("/nope").await;
    b.get("/admin/users").await;
    let requests = 4 + 3; // login: GET /login, POST /login, GET + POST /account/password; then 3 more
    let entries = state.hozon.store().audit_entries().unwrap();
    let http: Vec<_> = entries.iter().filter(|e| e.action == "http").collect();
    assert_eq!(http.len() - before, requests, "{http:#?}");
    assert!(http.iter().any(|e| e.actor == "rev01" && e.target == "GET /admin/users from local" && e.outcome == "403"));
    assert!(http.iter().any(|e| e.target == "GET /nope from local" && e.outcome == "404"));
    // The query string (a name) is never logged.
    assert!(entries.iter().all(|e| !e.target.contains(name) && !e.target.contains("%E5")));
}

/// Runs hozon on `env`'s data directory at the time `at` (faketime), asserting success;
/// returns its standard output.
fn cli_at(env: &TestEnv, at: &str, args: &[&str], vars: &[(&str, &str)]) -> String {
    let out = Command::new("faketime")
        .arg("-f")
        .arg(at)
        .arg(hozon_bin())
        .arg("--data")
        .arg(env.data())
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .expect("faketime (Debian) installed by setup");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// A hozon command line at a moved clock: arguments and environment in, standard output back.
type Cli<'a> = dyn Fn(&[&str], &[(&str, &str)]) -> String + 'a;

/// Two records officers of that day (accounts created, each setting their own password), then
/// an audit-log run planned; returns its id.
fn officers_plan_audit(cli: &Cli<'_>, names: [&str; 2], own: &str) -> String {
    for name in names {
        let text = cli(&["user", "add", name, "--role", "records_officer"], &[]);
        let temp = text.split("一時パスワード: ").nth(1).unwrap().trim().to_owned();
        cli(&["user", "passwd", name], &[("HOZON_PASSWORD", &temp), ("HOZON_NEW_PASSWORD", own)]);
    }
    let text = cli(&["dispose", "plan-audit"], &[]);
    text.split("監査ログの廃棄実行 ").nth(1).unwrap().split(' ').next().unwrap().to_owned()
}

#[test]
fn the_audit_log_is_disposed_only_by_its_policy_with_a_certificate() {
    use hozon::auth::{Actor, Role};
    use hozon::retention::run;
    let env = populated();
    let h = env.open();
    let officer = Actor::with_role("ro01", Role::RecordsOfficer);
    // Today nothing is past seven years, and a run for a day to come is refused.
    let now = hozon::jp::today();
    let r = run::plan_audit(&h, &officer, now).unwrap();
    assert!(r.items.is_empty() && r.audit_upto.is_none());
    let later = now + chrono::Duration::days(8 * 366);
    assert!(run::plan_audit(&h, &officer, later).is_err(), "planned for a future date");
    drop(h);

    // Eight years on (the clock moved with faketime), two officers of that year dispose of
    // every entry so far, at the terminal, each with their own password.
    let at = format!("@{later} 10:00:00");
    let cli = |args: &[&str], vars: &[(&str, &str)]| cli_at(&env, &at, args, vars);
    let own = "an-officers-own-passphrase-2034";
    let id = officers_plan_audit(&cli, ["ro01", "ro02"], own);
    cli(&["dispose", "submit", &id, "--user", "ro01"], &[("HOZON_PASSWORD", own)]);
    let same = Command::new("faketime")
        .arg("-f")
        .arg(&at)
        .arg(hozon_bin())
        .arg("--data")
        .arg(env.data())
        .args(["dispose", "approve", &id, "--user", "ro01"])
        .env("HOZON_PASSWORD", own)
        .output()
        .unwrap();
    assert!(!same.status.success(), "two people");
    cli(&["dispose", "approve", &id, "--user", "ro02"], &[("HOZON_PASSWORD", own)]);
    let text = cli(&["dispose", "execute", &id], &[]);
    let certificate = text.split("廃棄証明書: ").nth(1).unwrap().trim().to_owned();
    let h = env.open();
    let done = run::get(&h, &hozon::auth::Actor::operator("t"), &id).unwrap();
    let upto = done.audit_upto.unwrap();
    assert!(upto >= 30);
    let remaining = h.store().audit_entries().unwrap();
    assert!(remaining.iter().all(|e| e.seq > upto));
    assert!(remaining.iter().any(|e| e.action == "audit.dispose"));
    drop(h);
    // The shortened chain still verifies from its recorded base; the certificate is genuine
    // although the audit entries of its own issue are gone one day: the register vouches.
    let (ok, out) = verify(&env, &[]);
    assert!(ok, "{out}");
    let out = Command::new(hozon_bin())
        .arg("--data")
        .arg(env.data())
        .arg("certificate")
        .arg("verify")
        .arg(&certificate)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(std::fs::read(&certificate).unwrap().starts_with(b"%PDF"));

    // Eight more years: a second run disposes of the entries that recorded the first
    // certificate's issue. The first certificate still verifies as genuine.
    let at2 = format!("@{} 10:00:00", later + chrono::Duration::days(8 * 366));
    let cli2 = |args: &[&str], vars: &[(&str, &str)]| cli_at(&env, &at2, args, vars);
    let id2 = officers_plan_audit(&cli2, ["ro03", "ro04"], own);
    cli2(&["dispose", "submit", &id2, "--user", "ro03"], &[("HOZON_PASSWORD", own)]);
    cli2(&["dispose", "approve", &id2, "--user", "ro04"], &[("HOZON_PASSWORD", own)]);
    cli2(&["dispose", "execute", &id2], &[]);
    let h = env.open();
    let target = format!("{id} sha256");
    assert!(
        !h.store()
            .audit_entries()
            .unwrap()
            .iter()
            .any(|e| e.action == "dispose.certificate" && e.target.starts_with(&target)),
        "the audit entry of the first certificate's issue is gone"
    );
    let pdf = std::fs::read(&certificate).unwrap();
    assert!(matches!(
        hozon::retention::certificate::verify(&h, &hozon::auth::Actor::operator("t"), &pdf).unwrap(),
        hozon::retention::certificate::Verdict::Genuine { .. }
    ));
    assert!(hozon::retention::certificate::verify_register(&h, &hozon::auth::Actor::operator("t")).unwrap().is_ok());
}
