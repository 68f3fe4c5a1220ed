//! Running it like a production system: commands at the terminal reach a running server
//! through its admin socket (authenticated by the key file, audited); an installed binary
//! works away from the source tree; `doctor` says what is wrong.

use std::path::Path;
use std::process::{Child, Command};

use crate::util::{TestEnv, hozon_bin, synth};

/// `hozon serve` on an ephemeral port, killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn serve(env: &TestEnv) -> Server {
    let child = Command::new(hozon_bin())
        .arg("--data")
        .arg(env.data())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let sock = env.data().join("admin.sock");
    for _ in 0..300 {
        if sock.exists() {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the server did not open its admin socket");
}

fn hozon(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let out = Command::new(hozon_bin()).arg("--data").arg(env.data()).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn commands_at_the_terminal_reach_a_running_server() {
    let env = TestEnv::new();
    let h = env.open();
    drop(h);
    let server = serve(&env);
    // Routine work while the server runs: a batch, ingest of a folder, audit check, backup.
    let (ok, out) = hozon(&env, &["batch", "new", "--municipality", "新宿区", "--channel", "交換便", "--pages", "2"]);
    assert!(ok, "{out}");
    let batch =
        out.lines().map(str::trim).find(|l| hozon::capture::batch::looks_like_id(l)).expect("a batch id").to_owned();
    let inbox = env.tmp.path().join("folder");
    std::fs::create_dir_all(&inbox).unwrap();
    for t in &synth().truth[..2] {
        let f = t["file"].as_str().unwrap();
        std::fs::copy(synth().path.join(f), inbox.join(f)).unwrap();
    }
    let (ok, out) = hozon(&env, &["ingest", inbox.to_str().unwrap(), "--batch", &batch]);
    assert!(ok && out.contains("稼働中のサーバー"), "{out}");
    let (ok, out) = hozon(&env, &["audit", "verify"]);
    assert!(ok && out.contains("監査ログは正常です"), "{out}");
    let offsite = env.tmp.path().join("offsite");
    let (ok, out) = hozon(&env, &["backup", "create", "--to", offsite.to_str().unwrap()]);
    assert!(ok, "a backup while the server runs: {out}");
    let (_, out) = hozon(&env, &["search", synth().truth[0]["fields"]["disease"].as_str().unwrap()]);
    assert!(!out.trim().is_empty());
    // Not everything: rotating the key, reindexing, changing policies need the directory to
    // themselves, and say so (refusals audited).
    for cmd in [&["key", "rotate"][..], &["reindex"], &["policy", "check"]] {
        let (ok, out) = hozon(&env, cmd);
        assert!(!ok && out.contains("hozon serve を止めて"), "{cmd:?}: {out}");
    }
    // A relative folder is the terminal's, not the server's.
    let (ok, out) = Command::new(hozon_bin())
        .current_dir(env.tmp.path())
        .args(["--data", "data", "ingest", "folder"])
        .output()
        .map(|o| {
            (
                o.status.success(),
                format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
            )
        })
        .unwrap();
    assert!(ok, "relative paths reach the server absolute: {out}");
    // A key file that is not this server's: the terminal refuses to talk to it.
    let other = env.tmp.path().join("other.key");
    std::fs::write(&other, "07".repeat(32)).unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (ok, out) = hozon(&env, &["--key-file", other.to_str().unwrap(), "audit", "verify"]);
    assert!(!ok && out.contains("鍵ファイルの持ち主ではありません"), "{out}");
    drop(server);
    let h = env.open();
    let entries = h.audit_search(&hozon::auth::Actor::operator("t"), &Default::default(), 10_000).unwrap();
    let commands: Vec<&str> =
        entries.iter().filter(|e| e.action == "admin.command").map(|e| e.target.as_str()).collect();
    assert!(
        commands.iter().any(|c| c.starts_with("ingest by"))
            && commands.iter().any(|c| c.starts_with("backup create by")),
        "{commands:?}"
    );
    assert_eq!(entries.iter().filter(|e| e.action == "admin.denied").count(), 3);
    assert!(entries.iter().any(|e| e.action == "admin.done" && e.outcome == "exit 0"));
    assert_eq!(h.index().num_docs(), 2, "both pages ingested through the server");
}

/// `make install PREFIX=…` (scripts/install.sh) lays the binary and its resources out; the
/// installed binary, run from elsewhere with no HOZON_* variables, finds them and works.
#[test]
fn an_installed_binary_runs_away_from_the_source_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("opt/hozon");
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"))
        .arg(&prefix)
        .arg(hozon_bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let unit = std::fs::read_to_string(prefix.join("lib/systemd/system/hozon.service")).unwrap();
    assert!(unit.contains(&format!("{}/bin/hozon", prefix.display())) && !unit.contains("@PREFIX@"));
    let bin = prefix.join("bin/hozon");
    let data = tmp.path().join("var/hozon");
    let run = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.current_dir(tmp.path()).arg("--data").arg(&data).args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HOZON_")) {
            c.env_remove(k);
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, out) = run(&["init"]);
    assert!(ok, "{out}");
    let (_, out) = run(&["doctor"]);
    let share = prefix.join("share/hozon");
    assert!(out.contains(&format!("[OK] 保存期間ポリシー: {}", share.join("retention-policies").display())), "{out}");
    assert!(out.contains("[OK] PP-OCR モデル") && out.contains("[OK] Tesseract モデル"), "{out}");
    // The key file inside the data directory is flagged, with the fix.
    assert!(out.contains("[NG] 鍵ファイルの置き場所"), "{out}");
    let inbox = tmp.path().join("scans");
    std::fs::create_dir_all(&inbox).unwrap();
    let f = synth().truth[0]["file"].as_str().unwrap();
    std::fs::copy(synth().path.join(f), inbox.join(f)).unwrap();
    let (ok, out) = run(&["ingest", inbox.to_str().unwrap()]);
    assert!(ok && out.contains("1"), "{out}");
    // --resources pointing at nothing: doctor names the directory and the fix.
    let (ok, out) = run(&["--resources", "/nonexistent", "doctor"]);
    assert!(!ok && out.contains("/nonexistent") && out.contains("--resources"), "{out}");
}
