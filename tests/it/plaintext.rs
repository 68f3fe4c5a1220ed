//! No personal data in plaintext at rest: after ingest, no planted name, kana, address, phone or
//! My Number appears in any file under the data directory, in UTF-8 or Shift_JIS.

use hozon::app::SearchOptions;
use std::path::Path;

use crate::util::{TestEnv, synth};

/// Needles shorter than this could occur by chance in megabytes of ciphertext.
const MIN_NEEDLE_BYTES: usize = 6;

fn needles() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for t in &synth().truth {
        for key in ["name", "kana", "address", "my_number", "phone", "insured_symbol", "doctor"] {
            let Some(v) = t["fields"][key].as_str() else {
                continue;
            };
            let mut variants = vec![v.to_owned(), v.replace('　', "")];
            // The surname and given name alone, as a search index would hold them.
            variants.extend(v.split('　').map(str::to_owned));
            for s in variants {
                let utf8 = s.as_bytes().to_vec();
                let (sjis, _, bad) = encoding_rs::SHIFT_JIS.encode(&s);
                for bytes in [utf8, if bad { Vec::new() } else { sjis.into_owned() }] {
                    if bytes.len() >= MIN_NEEDLE_BYTES {
                        out.push((format!("{key}={s}"), bytes));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn scan_tree(root: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut leaks = Vec::new();
    let mut files = 0;
    for e in walkdir::WalkDir::new(root).into_iter().map(Result::unwrap) {
        if !e.file_type().is_file() {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(e.path()).unwrap();
        for (what, n) in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                leaks.push(format!("{} contains {what}", e.path().display()));
            }
        }
    }
    assert!(files > 10, "expected a populated data directory, found {files} files");
    leaks
}

#[test]
fn nothing_personal_on_disk_after_ingest_search_and_reindex() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest(&h, &env.inbox());
    let actor = hozon::auth::Actor::operator("t");
    let name = synth().truth[0]["fields"]["name"].as_str().unwrap().replace('　', "");
    assert!(!h.search(&actor, &SearchOptions::new(&name, 10)).unwrap().results.is_empty());
    h.reindex(&actor, |_, _| {}).unwrap();
    drop(h);
    let needles = needles();
    assert!(needles.len() > 50);
    let leaks = scan_tree(&env.data(), &needles);
    assert!(leaks.is_empty(), "plaintext personal data at rest:\n{}", leaks.join("\n"));
}

/// The check itself must be able to fail: the synthetic scans are plaintext PNGs, but their
/// text is pixels; truth.jsonl holds the values and must be caught.
#[test]
fn the_leak_check_catches_a_planted_plaintext_file() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest(&h, &env.inbox());
    drop(h);
    std::fs::copy(synth().path.join("truth.jsonl"), env.data().join("blobs/leak.json")).unwrap();
    let leaks = scan_tree(&env.data(), &needles());
    assert!(!leaks.is_empty());
}
