//! Shared fixtures: one synthetic set generated per test run (seed 1), copied per test, and a
//! `TestEnv` holding a fresh data directory.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hozon::Hozon;
use hozon::capture::ingest::{IngestOptions, IngestReport, ingest_dir};

pub const SEED: u64 = 1;
pub const SUBMISSIONS: usize = 5;

pub struct Synth {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub truth: Vec<serde_json::Value>,
}

/// Synthetic scans made once for the whole test binary.
pub fn synth() -> &'static Synth {
    static SYNTH: OnceLock<Synth> = OnceLock::new();
    SYNTH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scans");
        let opts = hozon::synth::SynthOptions::easy(path.clone(), SUBMISSIONS, SEED, 2.0);
        hozon::synth::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
        let truth = std::fs::read_to_string(path.join("truth.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        Synth { _dir: dir, path, truth }
    })
}

/// Copies a directory tree (files and folders).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    pub admin_password: String,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let tmp = tempfile::tempdir().unwrap();
        let (_h, admin_password) = Hozon::init(&tmp.path().join("data"), &tmp.path().join("data/master.key")).unwrap();
        TestEnv { tmp, admin_password }
    }

    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn key_file(&self) -> PathBuf {
        self.data().join("master.key")
    }

    pub fn open(&self) -> Hozon {
        Hozon::open(&self.data(), &self.key_file()).unwrap()
    }

    /// A private copy of the synthetic scans (ingest removes what it stores).
    pub fn inbox(&self) -> PathBuf {
        let inbox = self.tmp.path().join("inbox");
        copy_dir(&synth().path, &inbox);
        inbox
    }

    /// Ingests the first `n` synthetic pages only.
    pub fn ingest_first(&self, h: &Hozon, n: usize) -> IngestReport {
        let inbox = self.tmp.path().join(format!("first-{n}"));
        std::fs::create_dir_all(&inbox).unwrap();
        for t in synth().truth.iter().take(n) {
            let f = t["file"].as_str().unwrap();
            std::fs::copy(synth().path.join(f), inbox.join(f)).unwrap();
        }
        self.ingest(h, &inbox)
    }

    pub fn ingest(&self, h: &Hozon, dir: &Path) -> IngestReport {
        ingest_dir(
            h,
            &crate::util::mailroom(),
            dir,
            &IngestOptions { jobs: 2, keep_files: false, progress: false, batch: None },
        )
        .unwrap()
    }
}

pub fn hozon_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hozon")
}

/// A browser stand-in over the router: keeps cookies, fills in the CSRF token from the last
/// page it saw, follows nothing by itself.
pub struct Browser {
    pub app: axum::Router,
    cookies: std::collections::BTreeMap<String, String>,
    csrf: Option<String>,
}

pub struct Page {
    pub status: axum::http::StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
    /// The body as sent (a ZIP or PDF is not text).
    pub bytes: Vec<u8>,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get(axum::http::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

pub fn pct(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Browser {
    pub fn new(app: axum::Router) -> Browser {
        Browser { app, cookies: Default::default(), csrf: None }
    }

    async fn send(&mut self, req: axum::http::request::Builder, body: axum::body::Body) -> Page {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = req.header(axum::http::header::COOKIE, cookie.join("; ")).body(body).unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        for c in headers.get_all(axum::http::header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(i) = body.find("name=\"csrf\" value=\"") {
            let start = i + "name=\"csrf\" value=\"".len();
            self.csrf = Some(body[start..start + 64].to_owned());
        }
        Page { status, headers, body, bytes: bytes.to_vec() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(axum::http::Request::get(path), axum::body::Body::empty()).await
    }

    /// Posts a form, adding the CSRF token of the last page seen.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_default();
        self.post_raw(path, fields, &csrf).await
    }

    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)], csrf: &str) -> Page {
        let mut form: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", pct(v))).collect();
        if !csrf.is_empty() {
            form.push(format!("csrf={csrf}"));
        }
        let req = axum::http::Request::post(path)
            .header(axum::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(req, axum::body::Body::from(form.join("&"))).await
    }

    /// Posts files as multipart/form-data with the CSRF token in the `x-csrf-token` header
    /// (as the upload page's script does).
    pub async fn post_files(&mut self, path: &str, files: &[(&str, Vec<u8>)]) -> Page {
        let boundary = "----hozon-test-boundary";
        let mut body = Vec::new();
        for (name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let req = axum::http::Request::post(path)
            .header(axum::http::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .header("x-csrf-token", self.csrf.clone().unwrap_or_default());
        self.send(req, axum::body::Body::from(body)).await
    }

    /// Posts a raw body with a content type, the CSRF token in the header.
    pub async fn post_body(&mut self, path: &str, content_type: &str, body: Vec<u8>) -> Page {
        let req = axum::http::Request::post(path)
            .header(axum::http::header::CONTENT_TYPE, content_type)
            .header("x-csrf-token", self.csrf.clone().unwrap_or_default());
        self.send(req, axum::body::Body::from(body)).await
    }

    pub fn has_session(&self) -> bool {
        self.cookies.contains_key("hozon_session")
    }

    /// Logs in; if the password is temporary, changes it to `new_password`.
    pub async fn login(&mut self, user: &str, password: &str, new_password: &str) -> Page {
        self.get("/login").await;
        let p = self.post("/login", &[("username", user), ("password", password)]).await;
        if p.location() == "/account/password" {
            self.get("/account/password").await;
            return self
                .post("/account/password", &[("current", password), ("new", new_password), ("confirm", new_password)])
                .await;
        }
        p
    }

    /// Passes the second-factor check (enrolling first if needed); returns the TOTP secret.
    pub async fn second_factor(&mut self, secret: Option<Vec<u8>>) -> Vec<u8> {
        let page = self.get("/account/totp").await;
        let secret = match secret {
            Some(s) => s,
            None => {
                let i = page.body.find("<code>").expect("enrolment page shows the key") + 6;
                let j = page.body[i..].find("</code>").unwrap() + i;
                totp_rs::Secret::try_from_base32(&page.body[i..j]).unwrap().as_bytes().to_vec()
            }
        };
        // Each code works once: a second check within the same 30 seconds takes the next
        // step's code (one step of skew is accepted), as a person would wait for it.
        let now = chrono::Utc::now().timestamp() as u64;
        for t in [now, now + 30] {
            let code = hozon::auth::totp::code_at(&secret, t);
            let p = self.post("/account/totp", &[("code", &code), ("next", "/search")]).await;
            if p.status == axum::http::StatusCode::SEE_OTHER {
                return secret;
            }
            assert!(p.body.contains("既に使用"), "TOTP check failed: {}", p.body);
        }
        panic!("TOTP check failed twice")
    }
}

impl TestEnv {
    /// Writes `config.toml` for this data directory (before `open`).
    pub fn configure(&self, toml: &str) {
        std::fs::write(self.data().join("config.toml"), toml).unwrap();
    }

    /// Creates a user with a role; returns the one-time password.
    pub fn add_user(&self, h: &Hozon, name: &str, role: hozon::auth::Role) -> String {
        hozon::auth::create_user(h.store(), &hozon::auth::Actor::operator("test"), name, role, chrono::Utc::now())
            .unwrap()
    }
}

/// The password [`TestEnv::person`] gives its users.
pub const OWN_PASSWORD: &str = "an-officers-own-passphrase-2026";

/// A mailroom clerk: who stores scans in these tests.
pub fn mailroom() -> hozon::auth::Actor {
    hozon::auth::Actor::with_role("mail01", hozon::auth::Role::Mailroom)
}

/// Logs an incoming batch from 新宿区 received today, expecting `pages` pages; returns its id.
pub fn log_batch(h: &Hozon, pages: u32) -> String {
    let new = hozon::capture::batch::NewBatch {
        municipality: "新宿区".into(),
        received_on: hozon::jp::today().to_string(),
        channel: "交換便".into(),
        expected_pages: pages.to_string(),
        note: String::new(),
    };
    h.create_batch(&hozon::auth::Actor::operator("test"), &new).unwrap().id
}

/// Record id and truth fields of synthetic page `i`.
pub fn synth_page(h: &Hozon, i: usize) -> (hozon::store::RecordId, std::collections::BTreeMap<String, String>) {
    let t = &synth().truth[i];
    let bytes = std::fs::read(synth().path.join(t["file"].as_str().unwrap())).unwrap();
    let id = h.store().dedupe_lookup(&h.store().scan_fingerprint(&bytes)).unwrap().expect("stored");
    let fields =
        t["fields"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
    (id, fields)
}

/// A submission that sets every field to the truth (My Number typed twice).
pub fn truthful(fields: &std::collections::BTreeMap<String, String>) -> hozon::drafts::review::Submission {
    let mut sub = hozon::drafts::review::Submission::default();
    for (k, v) in fields {
        sub.values.insert(k.clone(), v.clone());
        if k == "my_number" {
            sub.my_number_confirm = v.clone();
        }
    }
    sub
}

impl TestEnv {
    /// A records officer with their own password (the one-time password changed), as the
    /// two-person rule wants: an `Actor` from a real login.
    pub fn officer(&self, h: &Hozon, name: &str) -> hozon::auth::Actor {
        self.person(h, name, hozon::auth::Role::RecordsOfficer)
    }

    /// A user of `role` who has chosen their own password ([`OWN_PASSWORD`]), logged in.
    pub fn person(&self, h: &Hozon, name: &str, role: hozon::auth::Role) -> hozon::auth::Actor {
        let temp = match hozon::auth::load(h.store(), name).unwrap() {
            Some(_) => None,
            None => Some(self.add_user(h, name, role)),
        };
        let own = OWN_PASSWORD.to_owned();
        let sec = &h.config.security;
        let now = chrono::Utc::now();
        if let Some(temp) = temp {
            let hozon::auth::Login::Ok { actor, .. } =
                hozon::auth::login(h.store(), sec, name, &temp, "t", now).unwrap()
            else {
                panic!("login with the one-time password")
            };
            hozon::auth::change_password(h.store(), sec, &actor, &temp, &own, now).unwrap();
        }
        match hozon::auth::login(h.store(), sec, name, &own, "t", now).unwrap() {
            hozon::auth::Login::Ok { actor, .. } => actor,
            _ => panic!("login {name}"),
        }
    }
}

/// Moves every record's dates `years` back (receipt, last change) and re-dates it under the
/// applied policies: the records are as old as if they had come in then.
pub fn backdate(h: &Hozon, years: i64) {
    let d = chrono::Duration::days(365 * years + 2);
    let recs: Vec<hozon::store::Record> = h
        .store()
        .records()
        .map(Result::unwrap)
        .map(|mut r| {
            r.received_at -= d;
            r.last_changed_at = r.last_changed_at.map(|t| t - d);
            r.received_on = r.received_on.map(|x| x - d);
            r.retention = Some(h.retention_for(&r).unwrap());
            r
        })
        .collect();
    h.store().update_records(&recs, hozon::audit::Event::system("test.backdate", "")).unwrap();
}
