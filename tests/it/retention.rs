//! Disposal end to end: holds, exclusions, the two-person rule, crypto-shredding execution, a
//! crash mid-execution and its resumption, a destroyed record unreadable through every path,
//! and certificates that pdftotext can read and `verify` can tell from forgeries.

use hozon::app::SearchOptions;
use std::process::Command;

use chrono::NaiveDate;
use hozon::Hozon;
use hozon::auth::{Actor, Role};
use hozon::retention::certificate::{self, Verdict};
use hozon::retention::run::{self, ItemStatus, RunState};
use hozon::store::{BlobRole, RecordState};

use crate::util::{TestEnv, hozon_bin, synth};

fn officer(name: &str) -> Actor {
    Actor::with_role(name, Role::RecordsOfficer)
}

fn far_future() -> NaiveDate {
    NaiveDate::from_ymd_opt(2040, 4, 1).unwrap()
}

/// One submission (4 pages) ingested.
fn env_with_pages() -> (TestEnv, Hozon) {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    (env, h)
}

fn pdftotext(path: &std::path::Path) -> String {
    let out = Command::new("pdftotext")
        .arg("-enc")
        .arg("UTF-8")
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) installed by setup");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn holds_exclusions_two_people_and_a_certificate() {
    let (_env, h) = env_with_pages();
    let ids: Vec<String> = h.store.records().map(|r| r.unwrap().id.to_string()).collect();
    assert_eq!(ids.len(), 4);
    // Nothing is due today (kept five years).
    let today = chrono::Utc::now().date_naive();
    assert!(run::plan(&h, &officer("ro01"), today).unwrap().items.is_empty());
    let hold = run::place_hold(&h, &officer("ro01"), "開示請求", "開示請求対応中", &ids[..1]).unwrap();
    let plan = run::plan(&h, &officer("ro01"), far_future()).unwrap();
    assert_eq!(plan.items.len(), 4);
    let held = plan.items.iter().find(|i| i.id == ids[0]).unwrap();
    assert!(matches!(&held.status, ItemStatus::Held { reason } if reason.contains("開示請求対応中")));
    run::exclude(&h, &officer("ro01"), &plan.id, &ids[1], "再審査中のため").unwrap();
    assert!(run::exclude(&h, &officer("ro01"), &plan.id, &ids[2], " ").is_err(), "a reason is required");
    // A reviewer has no retention rights.
    let reviewer = Actor::with_role("rev", Role::Reviewer);
    assert!(run::submit(&h, &reviewer, &plan.id).is_err());
    // Approval before submission, and by the preparer, are refused.
    assert!(run::approve(&h, &officer("ro02"), &plan.id).is_err());
    run::submit(&h, &officer("ro01"), &plan.id).unwrap();
    let same = run::approve(&h, &officer("ro01"), &plan.id).unwrap_err().to_string();
    assert!(same.contains("two-person rule"), "{same}");
    assert!(run::execute(&h, &officer("ro01"), &plan.id, |_, _| {}).is_err(), "not approved yet");
    run::approve(&h, &officer("ro02"), &plan.id).unwrap();

    let done = run::execute(&h, &officer("ro02"), &plan.id, |_, _| {}).unwrap();
    assert_eq!(done.destroyed, 2);
    assert!(matches!(done.run.state, RunState::Completed { .. }));
    for id in &ids[2..] {
        let rid = hozon::store::RecordId::parse(id).unwrap();
        assert!(h.store.record(&rid).unwrap().is_none(), "metadata gone");
        assert!(h.store.tombstone(id).unwrap().is_some(), "tombstone kept");
        assert_eq!(h.index.postings_for(id).unwrap(), 0, "merged out of the index");
        assert!(h.page_text(&Actor::operator("t"), &rid).is_err());
    }
    // Held and excluded records are untouched and readable.
    for id in &ids[..2] {
        let rec = h.store.record(&hozon::store::RecordId::parse(id).unwrap()).unwrap().unwrap();
        assert!(h.store.read_blob(&rec, BlobRole::Text).is_ok());
    }
    run::release_hold(&h, &officer("ro01"), &hold.id).unwrap();
    assert!(
        run::plan(&h, &officer("ro01"), far_future())
            .unwrap()
            .items
            .iter()
            .any(|i| i.id == ids[0] && i.status == ItemStatus::Due)
    );

    // The certificate: Japanese text extractable, font embedded, genuine; a changed byte and a
    // regenerated list are not.
    let text = pdftotext(&done.certificate);
    assert!(text.contains("廃棄証明書"), "{text}");
    assert!(text.contains(&plan.id) && text.contains("暗号消去") && text.contains("ro01") && text.contains("ro02"));
    for id in &ids[2..] {
        assert!(text.contains(id.as_str()), "tombstone {id} listed");
    }
    let fonts = Command::new("pdffonts").arg(&done.certificate).output().unwrap();
    let fonts = String::from_utf8_lossy(&fonts.stdout).into_owned();
    assert!(fonts.contains("IPAexGothic") && fonts.contains("CID TrueType") && fonts.contains("yes yes"), "{fonts}");
    let pdf = std::fs::read(&done.certificate).unwrap();
    assert!(matches!(certificate::verify(&h, &pdf).unwrap(), Verdict::Genuine { .. }));
    let mut changed = pdf.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x20;
    assert_eq!(certificate::verify(&h, &changed).unwrap(), Verdict::Altered { run_id: plan.id.clone() });
    let mut forged: certificate::Manifest =
        serde_json::from_slice(&h.store.get_doc("manifest", &plan.id).unwrap().unwrap()).unwrap();
    forged.ids = vec!["0".repeat(32)];
    let forged_pdf = certificate::render(&forged, "f00d").unwrap();
    assert_eq!(certificate::verify(&h, &forged_pdf).unwrap(), Verdict::Altered { run_id: plan.id.clone() });
    assert_eq!(certificate::verify(&h, b"%PDF-1.7 nothing").unwrap(), Verdict::Unknown);
}

#[test]
fn a_crash_mid_execution_resumes_and_leaves_nothing_half_destroyed() {
    let (env, h) = env_with_pages();
    let plan = run::plan(&h, &officer("ro01"), far_future()).unwrap();
    run::submit(&h, &officer("ro01"), &plan.id).unwrap();
    run::approve(&h, &officer("ro02"), &plan.id).unwrap();
    let name = synth().truth[0]["fields"]["name"].as_str().unwrap().replace('　', "");
    assert!(!h.search(&Actor::operator("t"), &SearchOptions::new(&name, 10)).unwrap().results.is_empty());
    drop(h);
    let execute = |failpoint: Option<&str>| {
        let mut c = Command::new(hozon_bin());
        c.arg("--data").arg(env.data()).args(["dispose", "execute", &plan.id]);
        if let Some(f) = failpoint {
            c.env("HOZON_FAILPOINT", f);
        }
        c.output().unwrap()
    };
    // Killed right after the keys were destroyed: records are unreadable, not yet buried.
    let out = execute(Some("dispose.after_shred"));
    assert!(!out.status.success());
    {
        let h = env.open();
        let recs: Vec<_> = h.store.records().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 4);
        for r in &recs {
            assert!(matches!(r.state, RecordState::Shredding { .. }), "{:?}", r.state);
            assert!(h.store.read_blob(r, BlobRole::Original).is_err(), "the key is gone: unreadable");
            assert!(h.page_text(&Actor::operator("t"), &r.id).is_err());
        }
    }
    // Killed after the index purge.
    assert!(!execute(Some("dispose.after_purge")).status.success());
    // Resumed to the end.
    let out = execute(None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let h = env.open();
    assert_eq!(h.store.records().count(), 0);
    assert_eq!(h.store.tombstones().unwrap().len(), 4);
    assert_eq!(h.index.num_docs(), 0);
    assert!(h.search(&Actor::operator("t"), &SearchOptions::new(&name, 10)).unwrap().results.is_empty());
    let blobs = walkdir::WalkDir::new(env.data().join("blobs"))
        .min_depth(2)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(blobs, 0, "every blob deleted");
    let run = run::load(&h, &plan.id).unwrap();
    assert!(matches!(run.state, RunState::Completed { .. }));
    assert_eq!(certificate::register(&h).unwrap().len(), 1);
    // The index files on disk no longer hold the destroyed pages: after purge and merge the
    // remaining segment files are few and small.
    let index_bytes: u64 = walkdir::WalkDir::new(env.data().join("index"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(index_bytes < 20_000, "index still holds {index_bytes} bytes");
}

#[test]
fn paper_boxes_from_registry_to_certificate_with_missing_boxes_flagged() {
    use hozon::retention::boxes::{self, BoxStatus};
    let env = TestEnv::new();
    let h = env.open();
    let ro1 = officer("ro01");
    let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
    for (code, sealed) in [
        ("BX-2019-001", d(2019, 5, 10)),
        ("BX-2019-002", d(2019, 9, 1)),
        ("BX-2020-001", d(2020, 3, 31)),
        ("BX-2025-001", d(2025, 6, 1)),
    ] {
        boxes::register(&h, &ro1, code, "進達 2019-04 新宿区 第12便", sealed, "事務室").unwrap();
    }
    assert!(boxes::register(&h, &ro1, "BX-2019-001", "x", d(2019, 1, 1), "x").is_err(), "codes are unique");
    let all: Vec<String> = ["BX-2019-001", "BX-2019-002", "BX-2020-001", "BX-2025-001"].map(String::from).to_vec();
    boxes::hand_over(&h, &ro1, &all, d(2020, 6, 1), "KB-4471").unwrap();
    boxes::request_retrieval(&h, &ro1, "BX-2019-002", "開示請求の原本確認", d(2021, 1, 5)).unwrap();
    assert_eq!(boxes::mark_out(&h, &ro1, "BX-2019-002", d(2021, 1, 7)).unwrap().status, BoxStatus::Out);
    assert_eq!(boxes::mark_returned(&h, &ro1, "BX-2019-002", d(2021, 2, 1)).unwrap().status, BoxStatus::AtContractor);
    assert!(boxes::mark_returned(&h, &ro1, "BX-2019-002", d(2021, 2, 2)).is_err(), "not out");

    // On 1 April 2026: FY2019 boxes are due (kept to 31 March 2025/2026); the one sealed on
    // 31 March 2020 belongs to FY2019 too; FY2025's is not due.
    let r = boxes::plan(&h, &ro1, d(2026, 4, 1)).unwrap();
    let mut codes: Vec<_> = r.items.iter().map(|i| i.id.clone()).collect();
    codes.sort();
    assert_eq!(codes, vec!["BX-2019-001", "BX-2019-002", "BX-2020-001"]);
    run::submit(&h, &ro1, &r.id).unwrap();
    run::approve(&h, &officer("ro02"), &r.id).unwrap();
    assert!(run::execute(&h, &ro1, &r.id, |_, _| {}).is_err(), "paper runs end with the contractor's certificate");
    let scan = std::fs::read(synth().path.join(synth().truth[0]["file"].as_str().unwrap())).unwrap();
    let res = boxes::record_contractor_certificate(
        &h,
        &ro1,
        &r.id,
        &scan,
        &["BX-2019-001".into(), "BX-2020-001".into()],
        d(2026, 4, 20),
    )
    .unwrap();
    assert_eq!(res.destroyed.len(), 2);
    assert_eq!(res.missing, vec!["BX-2019-002".to_string()]);
    assert_eq!(boxes::load(&h, "BX-2019-001").unwrap().status, BoxStatus::Destroyed);
    assert_eq!(boxes::load(&h, "BX-2019-002").unwrap().status, BoxStatus::AtContractor);
    let text = pdftotext(&res.certificate);
    assert!(
        text.contains("紙文書")
            && text.contains("溶解")
            && text.contains("BX-2019-001")
            && text.contains("BX-2020-001"),
        "{text}"
    );
    assert!(text.contains("記載のない文書箱") && text.contains("BX-2019-002"), "{text}");
    let pdf = std::fs::read(&res.certificate).unwrap();
    assert!(matches!(certificate::verify(&h, &pdf).unwrap(), Verdict::Genuine { .. }));
    // The contractor's scan is kept, sealed, as an attachment record.
    let attachments = h
        .store
        .records()
        .map(Result::unwrap)
        .filter(|r| matches!(r.kind, hozon::store::RecordKind::Attachment { .. }))
        .count();
    assert_eq!(attachments, 1);
}

#[test]
fn a_shorter_policy_is_never_applied_silently() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 1);
    drop(h);
    // A copy of the shipped policies with the application class (the ingested page is a
    // recognised application form) cut from 5 years to 3.
    let dir = env.tmp.path().join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(hozon::retention::policy::default_dir()).unwrap() {
        let e = e.unwrap();
        let mut text = std::fs::read_to_string(e.path()).unwrap();
        if e.file_name() == "application.toml" {
            text = text.replace("years = 5", "years = 3").replace("version = 1", "version = 2");
        }
        std::fs::write(dir.join(e.file_name()), text).unwrap();
    }
    let cmd = |args: &[&str]| {
        Command::new(hozon_bin()).env("HOZON_POLICIES", &dir).arg("--data").arg(env.data()).args(args).output().unwrap()
    };
    let check = cmd(&["policy", "check"]);
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success() && out.contains("早まる 1 件"), "{out}");
    let apply = cmd(&["policy", "apply"]);
    assert!(!apply.status.success(), "refused without --accept-earlier");
    assert!(String::from_utf8_lossy(&apply.stderr).contains("earlier"));
    assert!(cmd(&["policy", "apply", "--accept-earlier"]).status.success());
    let h = env.open();
    let rec = h.store.records().next().unwrap().unwrap();
    assert_eq!(rec.retention.unwrap().policy_version, 2, "the record names the policy version that dated it");
    // A broken policy folder stops hozon at start-up with the file named.
    std::fs::write(dir.join("scan.toml"), "class = \"scan\"\nyears = 4\n").unwrap();
    let bad = cmd(&["policy", "check"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("scan.toml"), "{}", String::from_utf8_lossy(&bad.stderr));
}
