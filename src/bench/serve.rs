//! `hozon bench serve`: N concurrent reviewers against a real server on loopback. Each logs in
//! (and changes the one-time password, as a first login must), then for a bounded time runs a
//! mix of searches and record views. Prints requests/s, latency percentiles and errors, and
//! checks that every request reached the audit log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{Rng, SeedableRng};

use crate::app::Hozon;
use crate::auth::{Actor, Role};
use crate::capture::ingest::{IngestOptions, ingest_dir};

#[derive(Debug, Clone)]
pub struct Options {
    pub users: usize,
    pub seconds: u64,
    pub submissions: usize,
    /// A mailroom user uploads the hostile files (`bench::hostile`) while the others work.
    pub hostile: bool,
    /// The decoded budget per file in the hostile run (256 MB: seven pages of the bomb).
    pub hostile_budget_mb: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct Figures {
    pub users: usize,
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub login_p99_ms: f64,
    pub audited: usize,
    pub peak_rss_mb: f64,
    /// Hostile files uploaded, and their pages refused or quarantined (0 without --hostile).
    pub hostile_files: usize,
    pub hostile_refused: usize,
    /// Requests by the normal users after the hostile uploads were all processed, and how
    /// many of them failed.
    pub after_requests: usize,
    pub after_errors: usize,
}

struct Client {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
    csrf: String,
}

/// One timed request; `ok` decides whether the status counts as success.
struct Sample {
    ms: f64,
    ok: bool,
}

impl Client {
    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn absorb(&mut self, res: &reqwest::Response) {
        for c in res.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(c) = c.to_str() else { continue };
            let kv = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = kv.split_once('=') {
                self.cookies.retain(|(name, _)| name != k);
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
    }

    fn take_csrf(&mut self, body: &str) {
        if let Some(i) = body.find("name=\"csrf\" value=\"") {
            let s = i + "name=\"csrf\" value=\"".len();
            if let Some(t) = body.get(s..s + 64) {
                self.csrf = t.to_owned();
            }
        }
    }

    async fn get(&mut self, path: &str) -> (Sample, u16, String) {
        let t = Instant::now();
        let res = self.http.get(format!("{}{path}", self.base)).header("cookie", self.cookie_header()).send().await;
        match res {
            Ok(r) => {
                self.absorb(&r);
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                self.take_csrf(&body);
                (Sample { ms: t.elapsed().as_secs_f64() * 1000.0, ok: status < 400 }, status, body)
            }
            Err(_) => (Sample { ms: t.elapsed().as_secs_f64() * 1000.0, ok: false }, 0, String::new()),
        }
    }

    /// One file as `multipart/form-data` (the upload form), CSRF token in the header.
    async fn upload(&mut self, path: &str, name: &str, bytes: &[u8]) -> u16 {
        let boundary = "hozon-bench-boundary-7d1f";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("x-csrf-token", self.csrf.clone())
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await;
        res.map_or(0, |r| r.status().as_u16())
    }

    /// Logs in for the first time: password, then the forced change.
    async fn first_login(&mut self, name: &str, pw: &str, new_pw: &str) -> Vec<Sample> {
        vec![
            self.get("/login").await.0,
            self.post("/login", &[("username", name), ("password", pw)]).await.0,
            self.get("/account/password").await.0,
            self.post("/account/password", &[("current", pw), ("new", new_pw), ("confirm", new_pw)]).await.0,
        ]
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (Sample, u16) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        let csrf = self.csrf.clone();
        form.push(("csrf", &csrf));
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let t = Instant::now();
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        match res {
            Ok(r) => {
                self.absorb(&r);
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                (Sample { ms: t.elapsed().as_secs_f64() * 1000.0, ok: status < 400 }, status)
            }
            Err(_) => (Sample { ms: t.elapsed().as_secs_f64() * 1000.0, ok: false }, 0),
        }
    }
}

/// Sets up a data directory with pages and users, serves it, and runs the load.
pub fn run(opts: &Options, progress: bool) -> anyhow::Result<Figures> {
    crate::web::tune_allocator();
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let (hozon, _) = Hozon::init(&data, &data.join("master.key"))?;
    drop(hozon);
    // Loopback load from one address: the per-address login limit would stop the bench itself.
    // Page limit 20 for the hostile run (the default 1,000 would make the bench OCR a thousand pages).
    let limits = match opts.hostile {
        true => format!("[capture]\nmax_pages_per_file = 20\nmax_decoded_mb_per_file = {}\n", opts.hostile_budget_mb),
        false => String::new(),
    };
    std::fs::write(
        data.join("config.toml"),
        format!("[security]\nlogin_attempts_per_minute = 1000\nsecure_cookies = false\n{limits}"),
    )?;
    let hozon = Hozon::open(&data, &data.join("master.key"))?;
    let scans = tmp.path().join("scans");
    let truth = crate::synth::generate(
        &crate::synth::SynthOptions::easy(scans.clone(), opts.submissions, 99, 2.0),
        &indicatif::ProgressBar::hidden(),
    )?;
    ingest_dir(
        &hozon,
        &Actor::operator("bench"),
        &scans,
        &IngestOptions { jobs: 2, keep_files: false, progress, batch: None },
    )?;
    let ids: Vec<String> = hozon.store.records().filter_map(|r| r.ok()).map(|r| r.id.to_string()).collect();
    anyhow::ensure!(!ids.is_empty(), "no pages were stored for the bench");
    let mut queries: Vec<String> = truth
        .iter()
        .filter_map(|t| t.fields["name"].as_str())
        .map(|n| n.split('　').next().unwrap_or(n).to_owned())
        .collect();
    queries.extend(["大腸炎", "東京都", "パーキンソン", "申請書", "生年月日 昭和"].map(String::from));
    let op = Actor::operator("bench");
    let mut accounts = Vec::new();
    for i in 0..opts.users {
        let name = format!("bench{i:03}");
        let pw = hozon.accounts().create(&op, &name, Role::Reviewer, chrono::Utc::now())?;
        accounts.push((name, pw));
    }
    let hostile = if opts.hostile {
        let pw = hozon.accounts().create(&op, "benchmail", Role::Mailroom, chrono::Utc::now())?;
        let new = crate::capture::batch::NewBatch {
            municipality: "新宿区".into(),
            received_on: crate::jp::today().to_string(),
            channel: "交換便".into(),
            expected_pages: "1".into(),
            note: "bench serve --hostile".into(),
        };
        let batch = hozon.create_batch(&op, &new)?.id;
        Some((pw, batch, super::hostile::files(20)))
    } else {
        None
    };
    let hostile_files = hostile.as_ref().map_or(0, |(_, _, f)| f.len());
    let audited_before = hozon.store.audit_entries()?.iter().filter(|e| e.action == "http").count();
    let state = crate::web::AppState::new(hozon);
    super::reset_peak_rss();

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (samples, logins, after, hostile_batch, hostile_requests) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = crate::web::router(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(opts.users)
            // A request that never answers is an error, not a hung bench.
            .timeout(Duration::from_secs(120))
            .build()?;
        let duration = Duration::from_secs(opts.seconds);
        let base = format!("http://{addr}");
        let uploader = hostile.map(|(pw, batch, files)| {
            let mut c = Client { http: http.clone(), base: base.clone(), cookies: Vec::new(), csrf: String::new() };
            tokio::spawn(async move {
                // Counted in `requests` (each is audited like any other), not in the errors.
                let mut sent = c.first_login("benchmail", &pw, "bench-mailroom-passphrase").await.len();
                let page = format!("/batches/{batch}");
                for (name, bytes) in &files {
                    c.get(&page).await;
                    let status = c.upload(&format!("{page}/upload"), name, bytes).await;
                    eprintln!("hostile upload {name} ({} bytes): HTTP {status}", bytes.len());
                    sent += 2;
                }
                (batch, sent)
            })
        });
        let queries = Arc::new(queries);
        let ids = Arc::new(ids);
        let mut tasks = Vec::new();
        for (i, (name, pw)) in accounts.into_iter().enumerate() {
            let mut c =
                Client { http: http.clone(), base: format!("http://{addr}"), cookies: Vec::new(), csrf: String::new() };
            let (queries, ids) = (queries.clone(), ids.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i as u64);
                let mut work = Vec::new();
                let new_pw = format!("bench-passphrase-{i:04}");
                let login = c.first_login(&name, &pw, &new_pw).await;
                let start = Instant::now();
                while start.elapsed() < duration {
                    let sample = if rng.gen_bool(0.6) {
                        let q = &queries[rng.gen_range(0..queries.len())];
                        let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
                        c.get(&format!("/search?q={q}")).await.0
                    } else {
                        let id = &ids[rng.gen_range(0..ids.len())];
                        c.get(&format!("/pages/{id}")).await.0
                    };
                    work.push(sample);
                }
                (login, work, c)
            }));
        }
        let mut all = Vec::new();
        let mut logins = Vec::new();
        let mut clients = Vec::new();
        for t in tasks {
            let (l, w, c) = t.await?;
            logins.extend(l);
            all.extend(w);
            clients.push(c);
        }
        // Once every hostile upload has been processed, each user uses the server again.
        let mut after = Vec::new();
        let mut hostile_batch = None;
        let mut hostile_requests = 0;
        if let Some(u) = uploader {
            let (batch, sent) = u.await?;
            hostile_batch = Some(batch);
            hostile_requests = sent;
            let deadline = Instant::now() + Duration::from_secs(900);
            eprintln!("waiting for the hostile uploads to be processed");
            while state.uploads.lock().expect("lock").values().any(|n| *n > 0) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for c in &mut clients {
                after.push(c.get("/search?q=%E6%9D%B1%E4%BA%AC%E9%83%BD").await.0);
            }
        }
        server.abort();
        anyhow::Ok((all, logins, after, hostile_batch, hostile_requests))
    })?;
    // Give the last request's audit append (after its response) a moment to land.
    std::thread::sleep(Duration::from_millis(200));
    let audited = state.hozon.store.audit_entries()?.iter().filter(|e| e.action == "http").count() - audited_before;
    let requests = samples.len() + logins.len() + after.len() + hostile_requests;
    let errors = samples.iter().chain(&logins).chain(&after).filter(|s| !s.ok).count();
    let hostile_refused = match &hostile_batch {
        Some(b) => state.hozon.store.batch_counts(b)?.failed as usize,
        None => 0,
    };
    let mut lat: Vec<f64> = samples.iter().map(|s| s.ms).collect();
    lat.sort_by(f64::total_cmp);
    let mut login_lat: Vec<f64> = logins.iter().map(|s| s.ms).collect();
    login_lat.sort_by(f64::total_cmp);
    let seconds = opts.seconds as f64;
    Ok::<_, anyhow::Error>(Figures {
        users: opts.users,
        requests,
        errors,
        seconds,
        requests_per_s: samples.len() as f64 / seconds,
        p50_ms: super::percentile(&lat, 50.0),
        p95_ms: super::percentile(&lat, 95.0),
        p99_ms: super::percentile(&lat, 99.0),
        login_p99_ms: super::percentile(&login_lat, 99.0),
        audited,
        peak_rss_mb: super::peak_rss_mb(),
        hostile_files,
        hostile_refused,
        after_requests: after.len(),
        after_errors: after.iter().filter(|s| !s.ok).count(),
    })
    .context("bench serve")
}
