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

#[test]
fn reviewer_searches_filters_and_opens_with_the_keyboard() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "browser tests need `make setup` (Debian chromium and `npm ci` in tests/browser)"
    );
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

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
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
    let out = Command::new("node")
        .current_dir(&dir)
        .args(["search.mjs", &format!("http://{addr}"), "rev01", &password, query])
        .output()
        .unwrap();
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
}
