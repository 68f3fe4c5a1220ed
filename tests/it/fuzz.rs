//! Bounded mutation fuzzing of every parser of outside input. cargo-fuzz needs a nightly
//! toolchain, which this machine image cannot install, so these run on stable: seeded random
//! mutations of valid inputs, a fixed number of iterations in `make test` (raise it with
//! HOZON_FUZZ_ITERS for a long run — the nightly-length run in README). Each parser must
//! return a value or an error, never panic, and the web layer must never answer 500.
//!
//! Seeds come from `tests/fuzz-corpus/<target>/` (kept in the repository: add any input that
//! once broke a parser there) plus inputs made on the spot.

use hozon::app::SearchOptions;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::{Rng, SeedableRng};

use crate::util::{Browser, TestEnv};

fn iterations(default: usize) -> usize {
    std::env::var("HOZON_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn mutate(rng: &mut impl Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.gen_range(1..8) {
        match rng.gen_range(0..4) {
            0 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] = rng.r#gen();
            }
            1 if !v.is_empty() => {
                let n = rng.gen_range(0..v.len());
                v.truncate(n);
            }
            2 => {
                let i = rng.gen_range(0..=v.len());
                v.insert(i, rng.r#gen());
            }
            _ if v.len() > 2 => {
                let i = rng.gen_range(0..v.len() - 1);
                v.swap(i, i + 1);
            }
            _ => v.push(rng.r#gen()),
        }
    }
    v
}

fn small_images() -> Vec<Vec<u8>> {
    let img = image::GrayImage::from_fn(37, 23, |x, y| image::Luma([(x * 7 + y * 3) as u8]));
    [image::ImageFormat::Png, image::ImageFormat::Tiff, image::ImageFormat::Jpeg]
        .into_iter()
        .map(|f| {
            let mut out = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut out), f).unwrap();
            out
        })
        .collect()
}

#[test]
fn upload_decoding_never_panics() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let seeds = small_images();
    for i in 0..iterations(3000) {
        let input = mutate(&mut rng, &seeds[i % seeds.len()]);
        let r = catch_unwind(AssertUnwindSafe(|| hozon::capture::decode_page(&input).map(|_| ())));
        assert!(r.is_ok(), "decode_page panicked on {}", hex::encode(&input));
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no seeds", dir.display());
    files.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Writes the generated seeds of the page reader's corpus (run by hand after changing them:
/// `cargo test --test it write_page_corpus -- --ignored`).
#[test]
#[ignore]
fn write_page_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus/pages");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in hozon::bench::hostile::files(3) {
        let bytes = if name == "bomb.tif" { hozon::bench::hostile::tiff_bomb(4, 64) } else { bytes };
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The multi-page reader (TIFF, PDF, single images) under small limits, every page asked for.
#[test]
fn page_reading_never_panics() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
    let mut seeds = corpus("pages");
    seeds.extend(small_images());
    let limits = hozon::config::Capture { max_pages_per_file: 8, max_decoded_mb_per_file: 4, ..Default::default() };
    for i in 0..iterations(3000) {
        let input = mutate(&mut rng, &seeds[i % seeds.len()]);
        let r = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(mut pages) = hozon::capture::Pages::open(&input, &limits) {
                while let Some(p) = pages.next_page() {
                    let _ = p.map(|p| p.gray.len());
                }
            }
        }));
        assert!(r.is_ok(), "the page reader panicked on {}", hex::encode(&input));
    }
}

/// Case register files (the CSV import shared with the API): decoding and parsing.
#[test]
fn case_csv_import_never_panics() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let seeds = corpus("cases");
    let mapping = hozon::cases::import::Mapping::parse(hozon::cases::import::DEFAULT_MAPPING).unwrap();
    for i in 0..iterations(3000) {
        let input = mutate(&mut rng, &seeds[i % seeds.len()]);
        let r = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(text) = hozon::cases::import::decode(&input) {
                let _ = hozon::cases::import::parse(&text, &mapping);
            }
        }));
        assert!(r.is_ok(), "the case import panicked on {}", hex::encode(&input));
    }
}

/// Upload bodies (multipart): never a 500, whatever arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_never_answer_500() {
    let env = TestEnv::new();
    let h = env.open();
    let batch = crate::util::log_batch(&h, 1);
    let temp = env.add_user(&h, "mail01", hozon::auth::Role::Mailroom);
    let mut b = Browser::new(hozon::web::router(hozon::web::AppState::new(h)));
    b.login("mail01", &temp, "a-long-new-passphrase-1").await;
    b.get(&format!("/batches/{batch}")).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let boundary = "fuzz-boundary";
    let seed = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--{boundary}--\r\n"
    );
    for _ in 0..iterations(300) {
        let body = mutate(&mut rng, seed.as_bytes());
        let p = b
            .post_body(
                &format!("/batches/{batch}/upload"),
                &format!("multipart/form-data; boundary={boundary}"),
                body.clone(),
            )
            .await;
        assert!(!p.status.is_server_error(), "{} on {}", p.status, String::from_utf8_lossy(&body));
    }
}

#[test]
fn config_parsing_never_panics() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let seed = hozon::config::Config::default_text();
    for _ in 0..iterations(3000) {
        let input = String::from_utf8_lossy(&mutate(&mut rng, seed.as_bytes())).into_owned();
        let r = catch_unwind(AssertUnwindSafe(|| hozon::config::Config::parse(&input, "fuzz").map(|_| ())));
        assert!(r.is_ok(), "config parse panicked on {input:?}");
    }
}

#[test]
fn query_parsing_never_panics() {
    let env = TestEnv::new();
    let h = env.open();
    let actor = hozon::auth::Actor::operator("fuzz");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let alphabet: Vec<char> =
        "大腸炎 潰瘍性ﾔﾏﾀﾞ山田\"'-+:*()[]{}~^\\/ 03-5320 ０３　ーabcXYZ\u{0}\u{301}\u{FEFF}🙂".chars().collect();
    for _ in 0..iterations(2000) {
        let n = rng.gen_range(0..24);
        let q: String = (0..n).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect();
        let r = catch_unwind(AssertUnwindSafe(|| h.search(&actor, &SearchOptions::new(&q, 10))));
        match r {
            Err(_) => panic!("search panicked on {q:?}"),
            Ok(Ok(_)) | Ok(Err(hozon::Error::Index(hozon::index::Error::Query(_)))) => {}
            Ok(Err(e)) => panic!("search failed on {q:?}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_decoding_never_answers_500() {
    let env = TestEnv::new();
    env.configure("[security]\nlogin_attempts_per_minute = 1000\n");
    let h = env.open();
    let mut b = Browser::new(hozon::web::router(hozon::web::AppState::new(h)));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let seed = b"username=admin&password=secret-password&csrf=";
    for _ in 0..iterations(300) {
        b.get("/login").await;
        let body = mutate(&mut rng, seed);
        let fields = [("x", String::from_utf8_lossy(&body).into_owned())];
        let p = b.post("/login", &[(fields[0].0, fields[0].1.as_str())]).await;
        assert!(!p.status.is_server_error(), "{} on {:?}", p.status, body);
    }
}
