//! Headless Chromium drives the search page against a real `hozon serve` (see
//! tests/browser/search.mjs). Needs `make setup` (Debian chromium, npm ci in tests/browser).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hozon::app::SearchOptions;
use hozon::auth::{Actor, Role};

use crate::util::{TestEnv, hozon_bin};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn browser_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "browser tests need `make setup` (Debian chromium and `npm ci` in tests/browser)"
    );
    dir
}

/// `hozon serve` on a free loopback port over `env`'s data directory, once it answers.
fn serve(env: &TestEnv) -> (Server, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Server(
        Command::new(hozon_bin())
            .args(["serve", "--addr", &addr])
            .arg("--data")
            .arg(env.data())
            .arg("--key-file")
            .arg(env.key_file())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, format!("http://{addr}"))
}

/// Runs a browser script; returns its last output line after checking it succeeded.
fn node(script: &str, args: &[&str]) -> String {
    let out = Command::new("node").current_dir(browser_dir()).arg(script).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    stdout
}

#[test]
fn reviewer_searches_filters_and_opens_with_the_keyboard() {
    browser_dir();
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let password = env.add_user(&h, "rev01", Role::Reviewer);
    let actor = Actor::with_role("probe", Role::Reviewer);
    let query = ["東京都", "申請書", "生年月日", "氏名"]
        .into_iter()
        .find(|q| h.search(&actor, &SearchOptions::new(q, 10)).unwrap().total >= 2)
        .expect("a word the OCR'd pages share");
    drop(h);
    let (server, base) = serve(&env);
    node("search.mjs", &[&base, "rev01", &password, query]);
    drop(server);
}

#[test]
fn reviewer_verifies_a_form_with_the_keyboard_only() {
    browser_dir();
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let password = env.add_user(&h, "rev02", Role::Reviewer);
    // The My Number form of the first applicant; the paper says a different number than
    // the one read (so the reviewer retypes it, twice).
    let (id, truth) = crate::util::synth_page(&h, 2);
    let actor = Actor::with_role("probe", Role::Reviewer);
    let draft = h.review_view(&actor, &id).unwrap().draft;
    let read = draft.field("my_number").unwrap().value.clone();
    let paper = (0..100u32)
        .map(|c| format!("{}{c:02}", &read[..10]))
        .find(|n| hozon::jp::my_number_valid(n) && *n != read)
        .unwrap();
    let mut want = serde_json::Map::new();
    for f in &draft.fields {
        let shown = hozon::drafts::normalise(f.kind, &truth[&f.name]).unwrap();
        want.insert(f.name.clone(), serde_json::Value::String(shown));
    }
    want.insert("my_number".into(), serde_json::Value::String(paper.clone()));
    drop(h);
    let (server, base) = serve(&env);
    let out =
        node("review.mjs", &[&base, "rev02", &password, id.as_str(), &serde_json::Value::Object(want).to_string()]);
    drop(server);
    let h = env.open();
    let d = h.review_view(&actor, &id).unwrap().draft;
    let review = d.review.as_ref().expect("reviewed");
    assert_eq!(review.status, hozon::drafts::review::ReviewStatus::Verified, "{out}");
    assert_eq!(review.by, "rev02");
    assert_eq!(d.field("my_number").unwrap().value, paper);
    let c = review.corrections.iter().find(|c| c.field == "my_number").unwrap();
    assert_eq!((c.old.as_str(), c.new.as_str()), (read.as_str(), paper.as_str()));
}

/// The session expiry warning (issue: sessions): shown before the idle timeout, it keeps the
/// review screen's input and 延長 renews the session.
#[test]
fn the_expiry_warning_keeps_the_review_input_and_extends_the_session() {
    browser_dir();
    let env = TestEnv::new();
    env.configure("[security]\nsession_idle_minutes = 1\nsecure_cookies = false\n");
    let h = env.open();
    env.ingest_first(&h, 1);
    let password = env.add_user(&h, "rev03", Role::Reviewer);
    let (id, _) = crate::util::synth_page(&h, 0);
    drop(h);
    let (server, base) = serve(&env);
    node("session.mjs", &[&base, "rev03", &password, id.as_str()]);
    drop(server);
}
