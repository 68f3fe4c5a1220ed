//! Archive search through `Hozon`: fields, the user's scope (My Number right, suspensions) in
//! hits and counts, My Numbers only by keyed hash, malformed queries, reindex equivalence,
//! and no planted term in the clear in the index files.

use std::collections::BTreeSet;

use hozon::Hozon;
use hozon::app::SearchOptions;
use hozon::auth::{Actor, Role};
use hozon::index::Doc;
use hozon::store::{Record, RecordKind, RecordState};

use crate::util::{TestEnv, hozon_bin, synth};

fn pages(h: &Hozon) -> Vec<Record> {
    let mut v: Vec<Record> = h
        .store()
        .records()
        .map(|r| r.unwrap())
        .filter(|r| r.state == RecordState::Stored && r.kind == RecordKind::Page)
        .collect();
    v.sort_by_key(|r| r.id.to_string());
    v
}

fn ids(h: &Hozon, actor: &Actor, q: &str) -> BTreeSet<String> {
    h.search(actor, &SearchOptions::new(q, 100)).unwrap().results.into_iter().map(|r| r.record_id).collect()
}

/// Indexes the first submission's pages as linked to case `case_no`, as case linkage will: the
/// recognised fields from ingest (drafts), plus the case number, person and status.
fn link_first_submission(h: &Hozon, case_no: &str) -> (Vec<Record>, String) {
    let truth = &synth().truth;
    let person = &truth[0]["fields"];
    let my_number = truth.iter().find(|t| t["fields"].get("my_number").is_some()).unwrap()["fields"]["my_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let recs = pages(h);
    assert_eq!(recs.len(), 4);
    for rec in &recs {
        let base = h.index_doc_of(rec).unwrap();
        h.index()
            .put(&Doc {
                case_no: Some(case_no.to_owned()),
                person: Some(h.person_key(case_no)),
                name: person["name"].as_str().map(str::to_owned),
                kana: person["kana"].as_str().map(str::to_owned),
                disease: Some("潰瘍性大腸炎".to_owned()),
                city: Some("新宿区".to_owned()),
                status: Some("reviewing".to_owned()),
                ..base
            })
            .unwrap();
    }
    (recs, my_number)
}

#[test]
fn scope_my_number_and_suspension_apply_to_hits_and_counts() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let (recs, my_number) = link_first_submission(&h, "1234567");
    let reviewer = Actor::with_role("rev", Role::Reviewer);
    let officer = Actor::with_role("rec", Role::RecordsOfficer);
    let security = Actor::with_role("sec", Role::SecurityOfficer);
    assert!(reviewer.rights().my_number && !officer.rights().my_number);

    let all: BTreeSet<String> = recs.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids(&h, &reviewer, "受給者番号:1234567"), all);
    assert_eq!(ids(&h, &reviewer, "病名:大腸炎 市区町村:新宿"), all);
    let kana = synth().truth[0]["fields"]["kana"].as_str().unwrap().split('\u{3000}').next().unwrap().to_owned();
    assert_eq!(ids(&h, &reviewer, &format!("かな:{kana}")), all, "kana field");

    // The page showing the My Number: hidden from a user without the right, in hits and count.
    let mn_page = recs.iter().find(|r| r.class == "my_number_form").expect("My Number form recognised").id.to_string();
    let seen = h.search(&officer, &SearchOptions::new("受給者番号:1234567", 100)).unwrap();
    assert_eq!(seen.total, 3);
    assert!(!seen.results.iter().any(|r| r.record_id == mn_page));
    assert_eq!(h.visible_pages(&officer).unwrap(), 3);
    assert_eq!(h.visible_pages(&reviewer).unwrap(), 4);

    // Found by exact My Number through the keyed hash only, and only with the right.
    assert_eq!(ids(&h, &reviewer, &format!("個人番号:{my_number}")), BTreeSet::from([mn_page.clone()]));
    assert!(ids(&h, &reviewer, &my_number).is_empty(), "the number is not in the text index");
    let err = h.search(&officer, &SearchOptions::new(&format!("個人番号:{my_number}"), 10)).unwrap_err();
    assert!(matches!(
        err,
        hozon::Error::Index(hozon::index::Error::Query(hozon::index::query::Problem::MyNumberNotAllowed))
    ));

    // Suspension: gone for everyone but the security officer, counts included.
    assert!(matches!(h.suspend(&officer, "1234567", "利用停止請求"), Err(hozon::Error::Auth(_))));
    h.suspend(&reviewer, "1234567", "本人からの利用停止請求（令和8年11月25日受付）").unwrap();
    let after = h.search(&reviewer, &SearchOptions::new("受給者番号:1234567", 100)).unwrap();
    assert_eq!((after.total, after.results.len()), (0, 0));
    assert!(ids(&h, &reviewer, &kana).is_empty());
    assert_eq!(h.visible_pages(&reviewer).unwrap(), 0);
    assert_eq!(ids(&h, &security, "受給者番号:1234567").len(), 3, "security officer sees them (no My Number right)");
    assert!(h.lift_suspension(&reviewer, "1234567").unwrap());
    assert!(!h.lift_suspension(&reviewer, "1234567").unwrap());
    assert_eq!(ids(&h, &reviewer, "受給者番号:1234567"), all);

    let actions: Vec<String> = h.store().audit_entries().unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.iter().any(|a| a == "person.suspend") && actions.iter().any(|a| a == "person.unsuspend"));
    let searches = actions.iter().filter(|a| *a == "search").count();
    assert!(searches >= 10, "every search is audited ({searches})");
}

#[test]
fn malformed_queries_get_messages_not_failures() {
    let env = TestEnv::new();
    let h = env.open();
    let reviewer = Actor::with_role("rev", Role::Reviewer);
    for (q, says) in [
        ("受付日:2024-13", "日付として読めません"),
        ("foo:bar", "という項目はありません"),
        ("様式:手紙", "使えない値"),
        ("氏名:", "値を入力"),
        ("-山田", "除外"),
        ("、。", "検索できる語"),
        ("個人番号:1234", "12桁"),
    ] {
        match h.search(&reviewer, &SearchOptions::new(q, 10)) {
            Err(hozon::Error::Index(hozon::index::Error::Query(p))) => {
                assert!(p.message_ja().contains(says), "{q}: {}", p.message_ja())
            }
            other => panic!("{q}: {other:?}"),
        }
    }
}

#[test]
fn reindex_gives_the_same_results() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 8);
    let actor = Actor::operator("t");
    let mut queries: Vec<String> = vec!["申請書".into(), "東京都".into(), "個人番号".into(), "病".into()];
    for t in synth().truth.iter().take(8) {
        for key in ["name", "address", "disease"] {
            if let Some(v) = t["fields"].get(key).and_then(|v| v.as_str()) {
                queries.push(v.chars().filter(|c| !c.is_whitespace()).take(4).collect());
            }
        }
    }
    let before: Vec<BTreeSet<String>> = queries.iter().map(|q| ids(&h, &actor, q)).collect();
    assert!(before.iter().filter(|s| !s.is_empty()).count() >= queries.len() / 2, "the queries find something");
    let mut calls = 0;
    let n = h
        .reindex(&actor, |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
    assert_eq!(n, 8);
    assert!(calls >= 1);
    let after: Vec<BTreeSet<String>> = queries.iter().map(|q| ids(&h, &actor, q)).collect();
    assert_eq!(before, after);
    drop(h);
    // And after reopening (decrypting the rebuilt files from disk).
    let h = env.open();
    let reopened: Vec<BTreeSet<String>> = queries.iter().map(|q| ids(&h, &actor, q)).collect();
    assert_eq!(before, reopened);
}

#[test]
fn planted_terms_never_reach_the_index_files_in_the_clear() {
    let env = TestEnv::new();
    let h = env.open();
    let planted = ["鷲見澤", "ワシミザワ", "瑠璃子", "檜原村字植付", "090-1234-5678"];
    let docs: Vec<Doc> = (0..300)
        .map(|i| Doc {
            name: Some(format!("鷲見澤 瑠璃子 {i}")),
            kana: Some("ワシミザワ ルリコ".into()),
            city: Some("檜原村字植付".into()),
            ..Doc::page(&format!("{i:032x}"), "電話 090-1234-5678 鷲見澤瑠璃子 檜原村字植付 二丁目", chrono::Utc::now())
        })
        .collect();
    h.index().put_many(&docs).unwrap();
    assert_eq!(h.index().num_docs(), 300);
    drop(h);
    let mut needles: Vec<Vec<u8>> = planted.iter().map(|s| s.as_bytes().to_vec()).collect();
    // Index terms are bigrams: look for those too (6 bytes each).
    for s in ["鷲見", "見澤", "瑠璃", "璃子", "檜原", "植付"] {
        needles.push(s.as_bytes().to_vec());
    }
    needles.push(b"09012345678".to_vec());
    let mut files = 0;
    for e in walkdir::WalkDir::new(env.data()).into_iter().flatten().filter(|e| e.file_type().is_file()) {
        let bytes = std::fs::read(e.path()).unwrap();
        files += 1;
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_slice()),
                "{} holds {:?} in the clear",
                e.path().display(),
                String::from_utf8_lossy(n)
            );
        }
    }
    assert!(files > 5);
    // And the terms are there, readable through the key.
    let h = env.open();
    assert_eq!(h.index().num_docs(), 300);
    let found = h.index().search(&hozon::index::Request {
        query: "鷲見澤",
        scope: &hozon::index::Scope { my_number: true, hidden_persons: vec![] },
        sort: hozon::index::Sort::Relevance,
        limit: 5,
        offset: 0,
        facets: false,
        snippets: false,
        count: true,
        hash_my_number: &|s: &str| s.to_owned(),
        near: false,
    });
    assert_eq!(found.unwrap().total, 300);
}

/// An index written by an older version (no format mark, as before formats were recorded) is
/// rebuilt by the next command, once; the CLI takes OR and a leading `-` without `--`, says
/// what is wrong once and in Japanese, and lists near spellings after the exact hits, marked.
#[test]
fn an_older_index_is_rebuilt_on_open_and_the_cli_speaks_the_query_language() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    drop(h);
    let name: String =
        synth().truth[0]["fields"]["name"].as_str().unwrap().chars().filter(|c| !c.is_whitespace()).collect();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(hozon_bin()).arg("--data").arg(env.data()).args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    std::fs::remove_file(env.data().join("index").join("hozon-index-format")).unwrap();
    let (ok, stdout, stderr) = run(&["search", &name]);
    assert!(ok && stderr.contains("再構築しました: 4 件"), "{stdout}{stderr}");
    assert!(!stdout.contains("〔近い表記〕"), "the name written with its space is not a near spelling: {stdout}");
    let (ok, _, stderr) = run(&["search", &name]);
    assert!(ok && !stderr.contains("再構築"), "rebuilt once only: {stderr}");

    let (ok, stdout, stderr) = run(&["search", "-東京都"]);
    assert!(!ok, "{stdout}");
    assert_eq!(stderr.matches("除外").count(), 1, "one message, in Japanese: {stderr}");
    let family = synth().truth[0]["fields"]["name"].as_str().unwrap().split_whitespace().next().unwrap().to_owned();
    let (ok, stdout, _) = run(&["search", &format!("{family} OR 存在しない語句")]);
    assert!(ok && !stdout.starts_with("0 件"), "{stdout}");

    // The name with one character misread: no exact hit, the page as a near spelling.
    let mut chars: Vec<char> = name.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == '丸' { '角' } else { '丸' };
    let misread: String = chars.into_iter().collect();
    let (ok, stdout, stderr) = run(&["search", "--json", &misread]);
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(json["total"], 0, "{json}");
    assert!(json["near"].as_u64().unwrap() >= 1, "{json}");
    assert!(json["hits"].as_array().unwrap().iter().all(|h| h["near"] == true), "{json}");
}
