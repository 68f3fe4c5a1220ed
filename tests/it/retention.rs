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

use crate::util::{TestEnv, backdate, hozon_bin, synth};

fn far_future() -> NaiveDate {
    NaiveDate::from_ymd_opt(2040, 4, 1).unwrap()
}

fn today() -> NaiveDate {
    hozon::jp::today()
}

/// One submission (4 pages) ingested, as if six years ago: every page is past its five years.
fn env_with_pages() -> (TestEnv, Hozon) {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    backdate(&h, 6);
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
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let (ro1, ro2) = (env.officer(&h, "ro01"), env.officer(&h, "ro02"));
    let officer = |n: &str| if n == "ro01" { ro1.clone() } else { ro2.clone() };
    let ids: Vec<String> = h.store().records().map(|r| r.unwrap().id.to_string()).collect();
    assert_eq!(ids.len(), 4);
    // Nothing is due today (kept five years), and a run for a day to come is refused.
    assert!(run::plan(&h, &officer("ro01"), today()).unwrap().items.is_empty());
    let future = run::plan(&h, &officer("ro01"), far_future()).unwrap_err().to_string();
    assert!(future.contains("未来"), "{future}");
    backdate(&h, 6);
    let hold_of = |records: &[String]| run::HoldRequest {
        kind: "開示請求".into(),
        reason: "開示請求対応中".into(),
        records: records.to_vec(),
        recipient_numbers: vec![],
    };
    assert!(run::place_hold(&h, &officer("ro01"), &hold_of(&["0".repeat(32)])).is_err(), "unknown ids refused");
    assert!(run::place_hold(&h, &officer("ro01"), &hold_of(&["not-an-id".into()])).is_err());
    let hold = run::place_hold(&h, &officer("ro01"), &hold_of(&ids[..1])).unwrap();
    assert_eq!(run::holds(&h, &officer("ro01")).unwrap().len(), 1);
    let plan = run::plan(&h, &officer("ro01"), today()).unwrap();
    assert_eq!(plan.items.len(), 4);
    let held = plan.items.iter().find(|i| i.id == ids[0]).unwrap();
    assert!(matches!(&held.status, ItemStatus::Held { reason } if reason.contains("開示請求対応中")));
    run::exclude(&h, &officer("ro01"), &plan.id, &ids[1], "再審査中のため").unwrap();
    assert!(run::exclude(&h, &officer("ro01"), &plan.id, &ids[2], " ").is_err(), "a reason is required");
    // A reviewer has no retention rights.
    let reviewer = Actor::with_role("rev", Role::Reviewer);
    let empty = run::plan(&h, &officer("ro01"), NaiveDate::from_ymd_opt(2001, 4, 1).unwrap()).unwrap();
    assert!(run::submit(&h, &officer("ro01"), &empty.id).is_err(), "an empty run cannot be submitted");
    assert!(run::submit(&h, &reviewer, &plan.id).is_err());
    // Approval before submission, and by the preparer, are refused.
    assert!(run::approve(&h, &officer("ro02"), &plan.id).is_err());
    run::submit(&h, &officer("ro01"), &plan.id).unwrap();
    let same = run::approve(&h, &officer("ro01"), &plan.id).unwrap_err().to_string();
    assert!(same.contains("two-person rule"), "{same}");
    assert!(run::execute(&h, &officer("ro01"), &plan.id, |_, _| {}).is_err(), "not approved yet");
    run::approve(&h, &officer("ro02"), &plan.id).unwrap();
    // The run document rewritten after approval (the excluded record put back in): refused.
    let approved = h.store().get_doc("run", &plan.id).unwrap().unwrap();
    let mut forged: serde_json::Value = serde_json::from_slice(&approved).unwrap();
    for item in forged["items"].as_array_mut().unwrap() {
        if item["id"] == ids[1].as_str() {
            item["status"] = "due".into();
        }
    }
    let ev = || hozon::audit::Event::system("test.forge", "");
    h.store().put_doc("run", &plan.id, &serde_json::to_vec(&forged).unwrap(), ev()).unwrap();
    let err = run::execute(&h, &officer("ro02"), &plan.id, |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("承認記録"), "{err}");
    h.store().put_doc("run", &plan.id, &approved, ev()).unwrap();

    let done = run::execute(&h, &officer("ro02"), &plan.id, |_, _| {}).unwrap();
    assert_eq!(done.destroyed, 2);
    assert!(matches!(done.run.state, RunState::Completed { .. }));
    for id in &ids[2..] {
        let rid = hozon::store::RecordId::parse(id).unwrap();
        assert!(h.store().record(&rid).unwrap().is_none(), "metadata gone");
        assert!(h.store().tombstone(id).unwrap().is_some(), "tombstone kept");
        assert_eq!(h.index().postings_for(id).unwrap(), 0, "merged out of the index");
        assert!(h.page_text(&Actor::operator("t"), &rid).is_err());
    }
    // Held and excluded records are untouched and readable.
    for id in &ids[..2] {
        let rec = h.store().record(&hozon::store::RecordId::parse(id).unwrap()).unwrap().unwrap();
        assert!(h.store().read_blob(&rec, BlobRole::Text).is_ok());
    }
    assert!(run::release_hold(&h, &officer("ro01"), &hold.id, " ").is_err(), "a release needs a reason");
    run::release_hold(&h, &officer("ro01"), &hold.id, "開示決定済み").unwrap();
    assert!(run::release_hold(&h, &officer("ro01"), &hold.id, "x").is_err(), "released once");
    assert!(
        run::plan(&h, &officer("ro01"), today())
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
    assert!(matches!(
        certificate::verify(&h, &hozon::auth::Actor::operator("t"), &pdf).unwrap(),
        Verdict::Genuine { .. }
    ));
    let mut changed = pdf.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x20;
    assert_eq!(
        certificate::verify(&h, &hozon::auth::Actor::operator("t"), &changed).unwrap(),
        Verdict::Altered { run_id: plan.id.clone() }
    );
    let mut forged: certificate::Manifest =
        serde_json::from_slice(&h.store().get_doc("manifest", &plan.id).unwrap().unwrap()).unwrap();
    forged.ids = vec!["0".repeat(32)];
    let forged_pdf = certificate::render(&forged, "f00d").unwrap();
    assert_eq!(
        certificate::verify(&h, &hozon::auth::Actor::operator("t"), &forged_pdf).unwrap(),
        Verdict::Altered { run_id: plan.id.clone() }
    );
    assert_eq!(
        certificate::verify(&h, &hozon::auth::Actor::operator("t"), b"%PDF-1.7 nothing").unwrap(),
        Verdict::Unknown
    );
    // The register is a chain of its own: an entry edited in the store is found, and the
    // certificate it vouched for no longer verifies.
    assert!(certificate::verify_register(&h, &hozon::auth::Actor::operator("t")).unwrap().is_ok());
    let raw = h.store().get_doc("certificate", &plan.id).unwrap().unwrap();
    let mut entry: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    entry["issued_at"] = "2020-01-01T00:00:00Z".into();
    h.store().put_doc("certificate", &plan.id, &serde_json::to_vec(&entry).unwrap(), ev()).unwrap();
    assert!(certificate::verify_register(&h, &hozon::auth::Actor::operator("t")).unwrap().is_err());
    assert_eq!(
        certificate::verify(&h, &hozon::auth::Actor::operator("t"), &pdf).unwrap(),
        Verdict::Altered { run_id: plan.id.clone() }
    );
}

#[test]
fn a_crash_mid_execution_resumes_and_leaves_nothing_half_destroyed() {
    let (env, h) = env_with_pages();
    let plan = run::plan(&h, &env.officer(&h, "ro01"), today()).unwrap();
    run::submit(&h, &env.officer(&h, "ro01"), &plan.id).unwrap();
    run::approve(&h, &env.officer(&h, "ro02"), &plan.id).unwrap();
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
        let recs: Vec<_> = h.store().records().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 4);
        for r in &recs {
            assert!(matches!(r.state, RecordState::Shredding { .. }), "{:?}", r.state);
            assert!(h.store().read_blob(r, BlobRole::Original).is_err(), "the key is gone: unreadable");
            assert!(h.page_text(&Actor::operator("t"), &r.id).is_err());
        }
    }
    // Killed between writing the index deletion file and committing it: the resumed run
    // must not trip over the file the killed one left. Then killed after the index purge.
    assert!(!execute(Some("index.del_written")).status.success());
    assert!(!execute(Some("dispose.after_purge")).status.success());
    // Killed in the key steps: re-wrapped but old keys not yet forgotten, and mid index
    // rotation.
    assert!(!execute(Some("dispose.after_rewrap")).status.success());
    assert!(!execute(Some("dispose.index_resealed")).status.success());
    // Resumed to the end.
    let out = execute(None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let h = env.open();
    assert_eq!(h.store().records().count(), 0);
    assert_eq!(h.store().tombstones().unwrap().len(), 4);
    assert_eq!(h.index().num_docs(), 0);
    assert!(h.search(&Actor::operator("t"), &SearchOptions::new(&name, 10)).unwrap().results.is_empty());
    let blobs = walkdir::WalkDir::new(env.data().join("blobs"))
        .min_depth(2)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(blobs, 0, "every blob deleted");
    let run = run::get(&h, &hozon::auth::Actor::operator("t"), &plan.id).unwrap();
    assert!(matches!(run.state, RunState::Completed { .. }));
    assert_eq!(certificate::register(&h, &hozon::auth::Actor::operator("t")).unwrap().len(), 1);
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
    let ro1 = env.officer(&h, "ro01");
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
    run::approve(&h, &env.officer(&h, "ro02"), &r.id).unwrap();
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
    assert_eq!(boxes::get(&h, &hozon::auth::Actor::operator("t"), "BX-2019-001").unwrap().status, BoxStatus::Destroyed);
    assert_eq!(
        boxes::get(&h, &hozon::auth::Actor::operator("t"), "BX-2019-002").unwrap().status,
        BoxStatus::AtContractor
    );
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
    assert!(matches!(
        certificate::verify(&h, &hozon::auth::Actor::operator("t"), &pdf).unwrap(),
        Verdict::Genuine { .. }
    ));
    // The contractor's scan is kept, sealed, as an attachment record.
    let attachments = h
        .store()
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
    let rec = h.store().records().next().unwrap().unwrap();
    assert_eq!(rec.retention.unwrap().policy_version, 2, "the record names the policy version that dated it");
    // A broken policy folder stops hozon at start-up with the file named.
    std::fs::write(dir.join("scan.toml"), "class = \"scan\"\nyears = 4\n").unwrap();
    let bad = cmd(&["policy", "check"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("scan.toml"), "{}", String::from_utf8_lossy(&bad.stderr));
}

/// Finding 1 and 2 of the disposal issue: the due date is re-checked at execution from what is
/// applied (an edited, unapplied file changes nothing), and a hold placed after approval, a
/// policy that became 移管 and a record changed since planning all stop destruction, each
/// listed with its reason in the run and on the certificate.
#[test]
fn never_early_and_re_checked_at_the_last_moment() {
    let env = TestEnv::new();
    let mut h = env.open();
    env.ingest_first(&h, 4);
    let (ro1, ro2) = (env.officer(&h, "ro01"), env.officer(&h, "ro02"));
    // Two years old: not due under the applied five years.
    backdate(&h, 2);
    let files = hozon::retention::policy::default_dir();
    let texts = |edit: &dyn Fn(&str, String) -> String| -> Vec<(String, String)> {
        std::fs::read_dir(&files)
            .unwrap()
            .map(|e| e.unwrap())
            // The backups' own policy is not a record policy.
            .filter(|e| e.file_name() != hozon::retention::policy::BACKUP_POLICY_FILE)
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(e.path()).unwrap();
                (name.clone(), edit(&name, text))
            })
            .collect()
    };
    // An edited file that cuts every class to one year, never applied: nothing becomes due.
    h.policies =
        hozon::retention::policy::PolicySet::from_texts(&texts(&|_, t| t.replace("years = 5", "years = 1"))).unwrap();
    assert!(run::plan(&h, &ro1, today()).unwrap().items.is_empty(), "plans use the applied policies only");
    h.policies = hozon::retention::policy::PolicySet::load_dir(&files).unwrap();

    backdate(&h, 4);
    let recs: Vec<_> = h.store().records().map(Result::unwrap).collect();
    let plan = run::plan(&h, &ro1, today()).unwrap();
    assert_eq!(plan.count(|s| *s == ItemStatus::Due), 4);
    run::submit(&h, &ro1, &plan.id).unwrap();
    run::approve(&h, &ro2, &plan.id).unwrap();

    // After approval: a litigation hold on one record, the class of another becomes 移管, a
    // third is changed (a review, say), and the fourth is destroyed.
    // One class becomes 移管; the held record is of another class, so each check shows alone.
    let transfer_class = recs[1].class.clone();
    let held_rec = recs.iter().find(|r| r.class != transfer_class).expect("two classes in a submission");
    let held = held_rec.id.to_string();
    run::place_hold(
        &h,
        &ro1,
        &run::HoldRequest {
            kind: "訴訟".into(),
            reason: "損害賠償請求事件".into(),
            records: vec![held.clone()],
            recipient_numbers: vec![],
        },
    )
    .unwrap();
    let others_of_class: Vec<String> =
        recs.iter().filter(|r| r.class == transfer_class).map(|r| r.id.to_string()).collect();
    h.policies = hozon::retention::policy::PolicySet::from_texts(&texts(&|name, t| {
        if name == format!("{transfer_class}.toml") {
            t.replace("action = \"destroy\"", "action = \"transfer\"")
        } else {
            t
        }
    }))
    .unwrap();
    run::apply_policies(&h, &ro1, false).unwrap();
    let done = run::execute(&h, &ro2, &plan.id, |_, _| {}).unwrap();
    let status = |id: &str| done.run.items.iter().find(|i| i.id == id).unwrap().status.clone();
    assert!(
        matches!(status(&held), ItemStatus::Skipped { reason } if reason.contains("損害賠償請求事件")),
        "{:?}",
        status(&held)
    );
    for id in &others_of_class {
        if *id != held {
            assert!(
                matches!(status(id), ItemStatus::Skipped { reason } if reason.contains("移管")),
                "{:?}",
                status(id)
            );
        }
    }
    let destroyed = done.run.count(|s| *s == ItemStatus::Destroyed);
    assert_eq!(destroyed + done.run.count(|s| matches!(s, ItemStatus::Skipped { .. })), 4);
    for r in &recs {
        let kept = h.store().record(&r.id).unwrap().is_some();
        assert_eq!(kept, !matches!(status(r.id.as_str()), ItemStatus::Destroyed), "{}", r.id);
    }
    // The held record is readable; the certificate names what was kept and why.
    let rec = h.store().record(&held_rec.id).unwrap().unwrap();
    assert!(h.store().read_blob(&rec, BlobRole::Original).is_ok());
    let text = pdftotext(&done.certificate);
    assert!(text.contains("実行時の再確認") && text.contains("損害賠償請求事件"), "{text}");
    assert!(text.contains("令和") && text.contains(&today().to_string()), "和暦 and ISO dates: {text}");
}

/// Finding 3: an earlier copy of the data directory, opened with every key the key store and
/// the master key file hold after the run, yields none of the destroyed records (neither
/// their pages nor their index text), while the records kept still open from it.
#[test]
fn destroyed_records_stay_unreadable_in_an_earlier_copy_with_todays_keys() {
    let (env, h) = env_with_pages();
    let (ro1, ro2) = (env.officer(&h, "ro01"), env.officer(&h, "ro02"));
    let recs: Vec<_> = h.store().records().map(Result::unwrap).collect();
    let plan = run::plan(&h, &ro1, today()).unwrap();
    let kept = recs[0].id.to_string();
    run::exclude(&h, &ro1, &plan.id, &kept, "原本確認中").unwrap();
    run::submit(&h, &ro1, &plan.id).unwrap();
    run::approve(&h, &ro2, &plan.id).unwrap();
    let name = synth().truth[0]["fields"]["name"].as_str().unwrap().replace('　', "");
    drop(h);
    // The backup an attacker kept: the whole data directory before the run.
    let before = env.tmp.path().join("before");
    crate::util::copy_dir(&env.data(), &before);
    let h = env.open();
    let done = run::execute(&h, &ro2, &plan.id, |_, _| {}).unwrap();
    assert_eq!(done.destroyed, 3);
    assert!(done.resealed > 0, "the index was re-sealed under a new key");
    let keys = h.store().key_material_for_audit().unwrap();
    drop(h);
    // Open the earlier copy with today's key file (and so today's key store).
    std::fs::remove_file(before.join("master.key.keystore")).unwrap();
    let old = hozon::store::Store::open(&before, &env.key_file()).unwrap();
    for r in old.records().map(Result::unwrap) {
        let readable = old.read_blob(&r, BlobRole::Original).is_ok();
        if r.id.as_str() == kept {
            assert!(readable, "a kept record restores readable from the earlier copy");
        } else {
            assert!(!readable, "destroyed record {} opened from the earlier copy", r.id);
            // Every key that remains, tried directly against the old wrapping.
            for k in &keys {
                assert!(k.unwrap_key(format!("record-key:{}", r.id).as_bytes(), r.wrapped_key()).is_err());
            }
        }
    }
    // The earlier copy's index does not open with today's index key.
    let dir = old.index_directory().unwrap();
    assert!(hozon::index::SearchIndex::open(dir).is_err(), "the old index is sealed under a retired key");
    drop(old);
    // Today's store: of the applicant's pages only the kept one is found.
    let h = env.open();
    let found = h.search(&Actor::operator("t"), &SearchOptions::new(&name, 10)).unwrap().results;
    assert!(found.iter().all(|r| r.record_id == kept), "{:?}", found.iter().map(|r| &r.record_id).collect::<Vec<_>>());
}

/// Finding 4: submit and approve need the officer's own password, a recent second factor
/// when they have one, and the role the policy names.
#[test]
fn two_people_are_two_people() {
    let (env, h) = env_with_pages();
    let ro1 = env.officer(&h, "ro01");
    let plan = run::plan(&h, &ro1, today()).unwrap();
    // An administrator resets ro02's password and uses the one-time password: refused.
    let temp = hozon::auth::reset_password(h.store(), &Actor::operator("admin"), "ro01", chrono::Utc::now()).unwrap();
    let hozon::auth::Login::Ok { actor: as_ro1, .. } =
        hozon::auth::login(h.store(), &h.config.security, "ro01", &temp, "t", chrono::Utc::now()).unwrap()
    else {
        panic!("login")
    };
    let err = run::submit(&h, &as_ro1, &plan.id).unwrap_err().to_string();
    assert!(err.contains("仮パスワード"), "{err}");
    // ro01 changes it: now it is theirs.
    hozon::auth::change_password(
        h.store(),
        &h.config.security,
        &as_ro1,
        &temp,
        "a-second-own-passphrase",
        chrono::Utc::now(),
    )
    .unwrap();
    // Still refused for a week: whoever reset it may have chosen this password too.
    let err = run::submit(&h, &as_ro1, &plan.id).unwrap_err().to_string();
    assert!(err.contains("再設定"), "{err}");
    // (Renewed, so that eight days on never falls after the account's fiscal-year expiry.)
    hozon::auth::renew(h.store(), &Actor::operator("admin"), "ro01", today()).unwrap();
    drop(h);
    // Eight days later (faketime), at the terminal, ro01 submits with the own password.
    let out = Command::new("faketime")
        .arg("-f")
        .arg(format!("@{} 10:00:00", today() + chrono::Duration::days(8)))
        .arg(hozon_bin())
        .arg("--data")
        .arg(env.data())
        .args(["dispose", "submit", &plan.id, "--user", "ro01"])
        .env("HOZON_PASSWORD", "a-second-own-passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let h = env.open();
    // A reviewer account with retention rights granted is still not in the policy's roles.
    let rev = env.officer(&h, "ro02");
    let mut rights = rev.rights().clone();
    rights.set(hozon::auth::Function::Retention, hozon::auth::Level::Update);
    hozon::auth::set_rights(h.store(), &Actor::operator("admin"), "ro02", Role::Reviewer, rights).unwrap();
    let rev = env.officer(&h, "ro02");
    let err = run::approve(&h, &rev, &plan.id).unwrap_err().to_string();
    assert!(err.contains("records_officer"), "{err}");
    // An officer with TOTP enrolled needs the second factor.
    let ro3 = env.officer(&h, "ro03");
    let secret = hozon::auth::totp::new_secret();
    let now = chrono::Utc::now().timestamp() as u64;
    let code = hozon::auth::totp::code_at(&secret, now);
    hozon::auth::confirm_totp(h.store(), &h.config.security, &ro3, &secret, &code, now).unwrap();
    assert!(run::approve(&h, &ro3, &plan.id).is_err(), "no recent second factor");
    let ro3 = ro3.stepped_up();
    run::approve(&h, &ro3, &plan.id).unwrap();
}

/// Finding 5: central case records fall under the "no change for five years" rule. A case
/// imported six years ago (the import run under `faketime`) appears in today's plan awaiting
/// a decision; the run cannot be submitted undecided; a destroyed case leaves only a tombstone
/// and no version of it opens from an earlier copy of the data directory; an extended one
/// stays and is not planned again before its new date.
#[test]
fn case_records_unchanged_for_five_years_are_decided_then_destroyed() {
    let env = TestEnv::new();
    drop(env.open());
    let csv = env.tmp.path().join("export.csv");
    std::fs::write(
        &csv,
        "受給者番号,申請整理番号,氏名,フリガナ,生年月日,住所,病名,有効期間開始,有効期間終了,状態\n\
         1312345,R2-000123,蓮見　紗耶香,ハスミ　サヤカ,昭和45年3月3日,東京都練馬区豊玉北6丁目12番1号,重症筋無力症,2020-04-01,2021-03-31,認定\n\
         1312347,R2-000125,東海林　実,ショウジ　ミノル,1950-01-09,東京都八王子市元本郷町3丁目24番1号,パーキンソン病,,,審査中\n",
    )
    .unwrap();
    let out = Command::new("faketime")
        .arg("-f")
        .arg("@2020-06-01 10:00:00")
        .arg(hozon_bin())
        .arg("--data")
        .arg(env.data())
        .args(["case", "import"])
        .arg(&csv)
        .output()
        .expect("faketime (Debian) installed by setup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let h = env.open();
    let (ro1, ro2) = (env.officer(&h, "ro01"), env.officer(&h, "ro02"));
    let op = Actor::operator("t");
    let (a, b) = (h.case_key_of("1312345"), h.case_key_of("1312347"));
    let plan = run::plan(&h, &ro1, today()).unwrap();
    let case_items: Vec<_> = plan.items.iter().filter(|i| i.id.starts_with("case:")).collect();
    assert_eq!(case_items.len(), 2, "{:?}", plan.items);
    assert!(case_items.iter().all(|i| i.status == ItemStatus::AwaitingDecision));
    let err = run::submit(&h, &ro1, &plan.id).unwrap_err().to_string();
    assert!(err.contains("判断待ち"), "{err}");
    run::decide(&h, &ro1, &plan.id, &format!("case:{a}"), &run::Decision::Destroy).unwrap();
    assert_eq!(
        run::get(&h, &hozon::auth::Actor::operator("t"), &plan.id).unwrap().count(|s| *s == ItemStatus::Due),
        1,
        "decided: destroy"
    );
    let too_soon = run::Decision::Extend { until: today(), reason: "訴訟準備".into() };
    assert!(run::decide(&h, &ro1, &plan.id, &format!("case:{b}"), &too_soon).is_err(), "an extension ends after today");
    let until = today() + chrono::Duration::days(400);
    let extend = run::Decision::Extend { until, reason: "訴訟準備".into() };
    run::decide(&h, &ro1, &plan.id, &format!("case:{b}"), &extend).unwrap();
    run::submit(&h, &ro1, &plan.id).unwrap();
    run::approve(&h, &ro2, &plan.id).unwrap();
    drop(h);
    let before = env.tmp.path().join("before");
    crate::util::copy_dir(&env.data(), &before);
    let h = env.open();
    let done = run::execute(&h, &ro2, &plan.id, |_, _| {}).unwrap();
    let status = |id: &str| done.run.items.iter().find(|i| i.id == id).unwrap().status.clone();
    assert_eq!(status(&format!("case:{a}")), ItemStatus::Destroyed);
    assert!(h.case_by_recipient(&op, "1312345").unwrap().is_none(), "the case is gone");
    assert!(h.store().get_doc("case_tomb", &a).unwrap().is_some(), "a tombstone with ids only");
    assert!(h.store().doc_keys("case_dob/").unwrap().iter().all(|k| !k.ends_with(&a)), "lookups gone");
    let kept = h.case_by_recipient(&op, "1312347").unwrap().unwrap();
    assert_eq!(kept.extended.as_ref().map(|x| x.until), Some(until));
    let again = run::plan(&h, &ro1, today()).unwrap();
    assert!(again.items.iter().all(|i| !i.id.starts_with("case:")), "extended: not planned before its date");
    let text = pdftotext(&done.certificate);
    assert!(text.contains("延長"), "{text}");
    drop(h);
    // Nothing of either person in plaintext anywhere in the data directory (key store, run,
    // tombstone, certificate included), in UTF-8 or Shift_JIS.
    let needles: Vec<Vec<u8>> = ["蓮見", "紗耶香", "ハスミ", "豊玉北", "東海林", "元本郷", "1312345", "R2-000123"]
        .iter()
        .flat_map(|s| [s.as_bytes().to_vec(), encoding_rs::SHIFT_JIS.encode(s).0.into_owned()])
        .filter(|n| n.len() >= 6)
        .collect();
    for e in walkdir::WalkDir::new(env.data()).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file()) {
        let bytes = std::fs::read(e.path()).unwrap();
        for n in &needles {
            assert!(!bytes.windows(n.len()).any(|w| w == n.as_slice()), "{} holds plaintext", e.path().display());
        }
    }
    // The earlier copy with today's keys: the destroyed case does not open, the kept one does.
    std::fs::remove_file(before.join("master.key.keystore")).unwrap();
    let old = hozon::store::Store::open(&before, &env.key_file()).unwrap();
    assert!(old.open_doc("case", &a).is_err(), "a destroyed case opened from an earlier copy");
    assert!(old.open_doc("case", &b).unwrap().is_some());
}
