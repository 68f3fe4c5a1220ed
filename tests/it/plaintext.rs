//! No personal data in plaintext at rest: after ingest, no planted name, kana, address, phone or
//! My Number appears in any file under the data directory, in UTF-8 or Shift_JIS.

use hozon::app::SearchOptions;
use std::path::Path;

use hozon::app::CaseChoice;

use crate::util::{TestEnv, synth, synth_page, truthful};

/// Needles shorter than this could occur by chance in megabytes of ciphertext.
const MIN_NEEDLE_BYTES: usize = 6;

pub(crate) fn needles() -> Vec<(String, Vec<u8>)> {
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

pub(crate) fn scan_tree(root: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
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
    // Review, case linkage and the data subject's steps write drafts, corrections, cases,
    // links and logs: all sealed or keyed hashes.
    let rev = hozon::auth::Actor::with_role("rev", hozon::auth::Role::Reviewer);
    let (app1, t1) = synth_page(&h, 0);
    let (mn1, tmn) = synth_page(&h, 2);
    let csv = format!(
        "受給者番号,氏名,フリガナ,生年月日,住所,個人番号\n1300001,{},{},{},{},{}\n",
        t1["name"], t1["kana"], t1["birth_date"], t1["address"], tmn["my_number"]
    );
    h.import_cases(&rev, csv.as_bytes(), "export.csv").unwrap();
    let mut sub = truthful(&t1);
    sub.values.insert("address".into(), format!("{}（訂正前）", t1["address"]));
    sub.second_look.insert("name".into());
    h.submit_review(&rev, &app1, &sub, &CaseChoice::Automatic).unwrap();
    h.submit_review(&rev, &app1, &truthful(&t1), &CaseChoice::Automatic).unwrap();
    h.submit_review(&rev, &mn1, &truthful(&tmn), &CaseChoice::Automatic).unwrap();
    let (app2, t2) = synth_page(&h, 4);
    h.submit_review(&rev, &app2, &truthful(&t2), &CaseChoice::Provisional).unwrap();
    let key = h.case_key_of("1300001");
    assert_eq!(h.case_file(&rev, &key).unwrap().pages.len(), 2, "both pages linked");
    h.add_inquiry(&rev, &key, "2026-11-25".parse().unwrap(), "電話", &format!("{}様より電話", t1["name"])).unwrap();
    h.correct_value(&rev, &app1, "phone", "03-1234-5678", "訂正請求").unwrap();
    h.suspend(&rev, "1300001", "利用停止請求").unwrap();
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
    // A data directory with a few pages is enough to plant a leak in.
    env.ingest_first(&h, 2);
    drop(h);
    std::fs::copy(synth().path.join("truth.jsonl"), env.data().join("blobs/leak.json")).unwrap();
    let leaks = scan_tree(&env.data(), &needles());
    assert!(!leaks.is_empty());
}
