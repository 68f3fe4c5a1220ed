//! The review desk and case linkage: the queue, corrections and their history, verification
//! into the record, masking of the My Number for a reviewer without the right (value, image,
//! response bodies, audit), double entry, matching (My Number hash, unambiguous fuzzy,
//! ambiguous namesakes, provisional cases), and the data subject's requests (find, encrypted
//! export, correction with a reason, suspension).

use std::collections::BTreeMap;
use std::io::Read;

use hozon::app::{CaseChoice, PersonQuery, QueueFilter, SearchOptions};
use hozon::auth::{Actor, Role};
use hozon::cases::LinkMethod;
use hozon::drafts::review::{ReviewError, ReviewStatus, Submission};

use crate::util::{Browser, TestEnv, synth_page as page, truthful};

fn csv_row(no: &str, f: &BTreeMap<String, String>, address: &str, my_number: &str) -> String {
    format!(
        "{no},R8-{no},{},{},{},{address},{},,,審査中,{my_number}\n",
        f["name"], f["kana"], f["birth_date"], f["disease"]
    )
}

const HEADER: &str =
    "受給者番号,申請整理番号,氏名,フリガナ,生年月日,住所,病名,有効期間開始,有効期間終了,状態,個人番号\n";

fn without_my_number(name: &str) -> Actor {
    Actor::with_role(name, Role::Reviewer).without_my_number()
}

#[test]
fn reviewers_verify_correct_and_link_pages_to_cases() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 16);
    let rev = Actor::with_role("rev", Role::Reviewer);
    let (app1, t1) = page(&h, 0); // submission 1: application sheet 1
    let (mn1, tmn1) = page(&h, 2); // submission 1: My Number form
    let (app2, t2) = page(&h, 4); // submission 2: application sheet 1
    let (app3, t3) = page(&h, 8); // submission 3: application sheet 1
    let (app3b, _) = page(&h, 9); // submission 3: sheet 2
    // The register: applicant 1 with their My Number; applicant 2 twice (namesakes born the
    // same day, at different addresses); applicant 3 unknown.
    let (app4, t4) = page(&h, 12); // submission 4: application sheet 1
    let csv = format!(
        "{HEADER}{}{}{}{}",
        csv_row("1300001", &t1, &t1["address"], &tmn1["my_number"]),
        csv_row("1300002", &t2, &t2["address"], ""),
        csv_row("1300003", &t2, "東京都八王子市元本郷町3丁目24番1号", ""),
        // Applicant 4 is registered under another address: only the number can tell.
        csv_row("1300004", &t4, "東京都町田市森野2丁目2番22号", ""),
    );
    let r = h.import_cases(&rev, csv.as_bytes(), "export.csv").unwrap();
    assert_eq!((r.created, r.errors.len()), (4, 0), "{:?}", r.errors);

    // The queue: every recognised page, oldest first; filters by form and batch.
    let (total, items) = h.review_queue(&rev, &QueueFilter::default(), 100).unwrap();
    assert_eq!(total, 16);
    assert!(items.windows(2).all(|w| w[0].received_at <= w[1].received_at));
    let only_mn = QueueFilter { form: Some("my_number_form".into()), ..Default::default() };
    assert_eq!(h.review_queue(&rev, &only_mn, 100).unwrap().0, 4);
    let other_batch = QueueFilter { batch: Some("B20990101-001".into()), ..Default::default() };
    assert_eq!(h.review_queue(&rev, &other_batch, 100).unwrap().0, 0);
    let mailroom = Actor::with_role("mail", Role::Mailroom);
    assert!(h.review_queue(&mailroom, &QueueFilter::default(), 10).is_err(), "review=view needed");

    // Exact link through the My Number's keyed hash.
    let view = h.review_view(&rev, &mn1).unwrap();
    assert_eq!(view.case_match.automatic(), Some(("1300001".into(), LinkMethod::MyNumber)));
    // Invalid and unsure fields come first.
    let first = &view.draft.fields[view.order[0]];
    assert!(view.draft.fields.iter().all(|f| f.flagged() <= first.flagged()));

    // A correction, then a second look, then the second reviewer verifies.
    let mut sub = truthful(&t1);
    sub.values.insert("name".into(), "誤記 太郎".into());
    sub.second_look.insert("kana".into());
    let a = h.submit_review(&rev, &app1, &sub, &CaseChoice::Automatic).unwrap();
    assert_eq!(a.status, ReviewStatus::SecondLook);
    let (_, items) = h.review_queue(&rev, &QueueFilter { second_look: true, ..Default::default() }, 10).unwrap();
    assert_eq!(items.iter().map(|i| &i.id).collect::<Vec<_>>(), [&app1]);
    let rev2 = Actor::with_role("rev2", Role::Reviewer);
    let a = h.submit_review(&rev2, &app1, &truthful(&t1), &CaseChoice::Automatic).unwrap();
    assert_eq!(a.status, ReviewStatus::Verified);
    let d = h.review_view(&rev, &app1).unwrap().draft;
    let review = d.review.as_ref().unwrap();
    let name_changes: Vec<(&str, &str, &str)> = review
        .corrections
        .iter()
        .filter(|c| c.field == "name")
        .map(|c| (c.by.as_str(), c.old.as_str(), c.new.as_str()))
        .collect();
    assert_eq!(name_changes.len(), 2, "{name_changes:?}");
    assert_eq!((name_changes[0].0, name_changes[0].2), ("rev", "誤記 太郎"));
    assert_eq!((name_changes[1].0, name_changes[1].1), ("rev2", "誤記 太郎"));
    // Verified: out of the queue, flags settled, linked by name/reading/birth date/address.
    assert!(d.fields.iter().all(|f| f.flags.is_empty()));
    let link = d.case.as_ref().expect("linked");
    assert_eq!(link.recipient_no, "1300001");
    assert!(matches!(link.how, LinkMethod::Matched { .. }), "{:?}", link.how);
    assert!(!h.review_queue(&rev, &QueueFilter::default(), 100).unwrap().1.iter().any(|i| i.id == app1));
    assert!(matches!(
        h.submit_review(&rev, &app1, &truthful(&t1), &CaseChoice::Automatic),
        Err(hozon::error::Error::Review(ReviewError::AlreadyVerified))
    ));
    // The record says the corrected value: search finds the page under its recipient number.
    let found = h.search(&rev, &SearchOptions::new("受給者番号:1300001", 10)).unwrap();
    assert!(found.results.iter().any(|r| r.record_id == app1.as_str()), "linked page indexed under its case");
    let rec = h.store().record(&app1).unwrap().unwrap();
    assert!(rec.last_changed_at.is_some(), "verification is the record's last change");
    // The audit says who did what, never the values.
    let audit: Vec<String> = h
        .store()
        .audit_entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("draft.") || e.action.starts_with("case."))
        .map(|e| format!("{} {} {}", e.action, e.target, e.outcome))
        .collect();
    assert!(audit.iter().any(|a| a.starts_with("draft.review ") && a.ends_with("verified corrections 1")), "{audit:?}");
    assert!(audit.iter().all(|a| !a.contains("誤記") && !a.contains(&t1["name"])), "{audit:?}");

    // Namesakes: two candidates, ranked with reasons, nothing automatic; the reviewer picks.
    h.submit_review(&rev, &app2, &truthful(&t2), &CaseChoice::Automatic).unwrap();
    let m = h.case_match(&rev, &app2).unwrap();
    assert!(m.automatic().is_none(), "{m:?}");
    assert_eq!(m.candidates.iter().map(|c| c.recipient_no.as_str()).collect::<Vec<_>>(), ["1300002", "1300003"]);
    assert!(m.candidates[0].reasons.contains(&"生年月日一致".to_owned()));
    // A suspended namesake is in no reviewer's list.
    h.suspend(&rev, "1300003", "利用停止請求").unwrap();
    let shown = h.case_match(&rev, &app2).unwrap().candidates;
    assert_eq!(shown.iter().map(|c| c.recipient_no.as_str()).collect::<Vec<_>>(), ["1300002"]);
    h.lift_suspension(&rev, "1300003").unwrap();
    h.link_page(&rev, &app2, "1300002").unwrap();
    let file = h.case_file(&rev, &h.case_key_of("1300002")).unwrap();
    assert_eq!(file.pages.len(), 1);
    assert_eq!(file.pages[0].link.as_ref().unwrap().how, LinkMethod::Reviewer);

    // A new applicant: a provisional case; their other sheet follows it.
    let a = h.submit_review(&rev, &app3, &truthful(&t3), &CaseChoice::Provisional).unwrap();
    assert_eq!(a.status, ReviewStatus::Verified);
    let prov = h.review_view(&rev, &app3).unwrap().draft.case.unwrap();
    assert_eq!(prov.how, LinkMethod::Provisional);
    assert!(prov.recipient_no.starts_with('9'));
    let follow = h.case_match(&rev, &app3b).unwrap().automatic().expect("the other sheet follows");
    assert_eq!(follow.0, prov.recipient_no);
    assert!(h.case_file(&rev, &h.case_key_of(&prov.recipient_no)).unwrap().case.provisional);
    // A renewal: the recipient number on the form links exactly (and a different number is
    // not overruled by a matching name).
    let mut renewal = truthful(&t4);
    renewal.values.insert("application_type".into(), "更新".into());
    renewal.values.insert("recipient_no".into(), "1300004".into());
    h.submit_review(&rev, &app4, &renewal, &CaseChoice::Automatic).unwrap();
    let link = h.review_view(&rev, &app4).unwrap().draft.case.unwrap();
    assert_eq!((link.recipient_no.as_str(), link.how), ("1300004", LinkMethod::RecipientNumber));
    // Linking to a case that does not exist is refused.
    assert!(h.link_page(&rev, &app3b, "1399999").is_err());
}

#[test]
fn the_my_number_is_masked_without_the_right_and_typed_twice_when_changed() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let (mn, t) = page(&h, 2);
    let number = t["my_number"].clone();
    let masked_rev = without_my_number("rev-nomn");
    let v = h.review_view(&masked_rev, &mn).unwrap();
    let f = v.draft.field("my_number").unwrap();
    assert!(v.masked);
    assert_eq!(f.value_or_raw(), format!("****-****-{}", &number[8..]));
    assert!(!format!("{:?}", v.draft).contains(&number));
    // The image: the first eight comb boxes covered, the last four left.
    let png = h.field_image(&masked_rev, &mn, "my_number").unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let full =
        image::load_from_memory(&h.field_image(&Actor::with_role("r", Role::Reviewer), &mn, "my_number").unwrap())
            .unwrap()
            .to_luma8();
    assert_eq!(img.dimensions(), full.dimensions());
    let (w, hgt) = img.dimensions();
    let left = |im: &image::GrayImage| {
        (0..w * 6 / 10)
            .flat_map(|x| (0..hgt).map(move |y| (x, y)))
            .filter(|&(x, y)| im.get_pixel(x, y).0[0] < 90)
            .count()
    };
    assert!(left(&full) > 200, "the unmasked image shows ink on the left");
    assert_eq!(left(&img), 0, "the masked image shows none of the first eight digits");
    assert!((w * 8 / 10..w).any(|x| (0..hgt).any(|y| img.get_pixel(x, y).0[0] < 90)), "last digits still visible");
    // Sending the mask back is no change; the number stays.
    let mut sub = Submission::default();
    sub.values.insert("my_number".into(), f.value_or_raw().to_owned());
    h.submit_review(&masked_rev, &mn, &sub, &CaseChoice::Automatic).unwrap();
    let full_rev = Actor::with_role("rev-mn", Role::Reviewer);
    assert_eq!(h.review_view(&full_rev, &mn).unwrap().draft.field("my_number").unwrap().value, number);
    // Double entry: a changed number needs the same number again.
    let (mn2, _) = (mn.clone(), ());
    let other = (0..100u32)
        .map(|c| format!("{}{c:02}", &number[..10]))
        .find(|n| hozon::jp::my_number_valid(n) && *n != number)
        .unwrap();
    let mut sub = Submission::default();
    sub.values.insert("my_number".into(), other.clone());
    sub.my_number_confirm = number.clone();
    // (Verified already: a correction goes through the correction path.)
    assert!(h.submit_review(&full_rev, &mn2, &sub, &CaseChoice::Automatic).is_err());
    h.correct_value(&full_rev, &mn2, "my_number", &other, "本人からの訂正請求").unwrap();
    let d = h.review_view(&full_rev, &mn2).unwrap().draft;
    assert_eq!(d.field("my_number").unwrap().value, other);
    assert_eq!(d.review.unwrap().corrections.last().unwrap().reason, "本人からの訂正請求");
    // The audit never carries the number.
    for e in h.store().audit_entries().unwrap() {
        let line = format!("{} {} {} {}", e.actor, e.action, e.target, e.outcome);
        assert!(!line.contains(&number) && !line.contains(&other), "{line}");
    }
}

#[test]
fn a_data_subject_is_found_exported_encrypted_and_suspended() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let rev = Actor::with_role("rev", Role::Reviewer);
    let (app1, t1) = page(&h, 0);
    let (mn1, tmn) = page(&h, 2);
    let csv = format!("{HEADER}{}", csv_row("1300001", &t1, &t1["address"], &tmn["my_number"]));
    h.import_cases(&rev, csv.as_bytes(), "export.csv").unwrap();
    h.submit_review(&rev, &app1, &truthful(&t1), &CaseChoice::Automatic).unwrap();
    h.submit_review(&rev, &mn1, &truthful(&tmn), &CaseChoice::Automatic).unwrap();
    let key = h.case_key_of("1300001");
    // Found three ways; by My Number only with the right.
    let birth = hozon::drafts::parse_date(&t1["birth_date"]).unwrap();
    for q in [
        PersonQuery::Recipient("1300001".into()),
        PersonQuery::NameBirth { name: t1["name"].replace('　', ""), birth },
        PersonQuery::MyNumber(tmn["my_number"].clone()),
    ] {
        let found = h.find_person(&rev, &q).unwrap();
        assert_eq!(found.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), [key.as_str()], "{q:?}");
    }
    assert!(h.find_person(&without_my_number("x"), &PersonQuery::MyNumber(tmn["my_number"].clone())).is_err());
    // The case page: both pages, linked.
    let file = h.case_file(&rev, &key).unwrap();
    assert_eq!(file.pages.len(), 2);
    // Status and inquiries.
    assert!(h.set_case_status(&rev, &key, hozon::cases::CaseStatus::Approved).unwrap());
    h.add_inquiry(&rev, &key, "2026-11-25".parse().unwrap(), "電話", "更新手続きの問合せ").unwrap();
    let file = h.case_file(&rev, &key).unwrap();
    assert_eq!(file.case.current.status.label_ja(), "認定");
    assert_eq!(file.case.history.last().unwrap().fields.status.label_ja(), "審査中");
    assert_eq!(file.case.inquiries[0].note, "更新手続きの問合せ");
    // Export: a second factor, a password, an AES-encrypted ZIP a standard tool opens.
    assert!(h.export_person(&rev, &key, "correct-horse-battery").is_err(), "needs the second factor");
    let rev2 = rev.clone().stepped_up();
    assert!(h.export_person(&rev2, &key, "short").is_err());
    let no_right = rev2.clone().without_my_number();
    assert!(h.export_person(&no_right, &key, "correct-horse-battery").is_err(), "a My Number form inside");
    let zip_bytes = h.export_person(&rev2, &key, "correct-horse-battery").unwrap();
    let name_bytes = t1["name"].chars().take(2).collect::<String>().into_bytes();
    assert!(!zip_bytes.windows(name_bytes.len()).any(|w| w == name_bytes.as_slice()), "entries are encrypted");
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(&zip_bytes)).unwrap();
    let names: Vec<String> = z.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert!(
        names.contains(&"case.json".to_owned()) && names.iter().filter(|n| n.ends_with(".png")).count() == 2,
        "{names:?}"
    );
    assert!(z.by_name_decrypt("case.json", b"wrong-password-here").is_err());
    let mut json = String::new();
    z.by_name_decrypt("case.json", b"correct-horse-battery").unwrap().read_to_string(&mut json).unwrap();
    assert!(json.contains("1300001") && json.contains("更新手続きの問合せ"));
    // 7-Zip (Debian `7zip`, installed by setup) opens it with the password, and not without.
    let tmp = env.tmp.path().join("export.zip");
    std::fs::write(&tmp, &zip_bytes).unwrap();
    let seven = |cmd: &[&str], password: &str| {
        std::process::Command::new("7zz").args(cmd).arg(format!("-p{password}")).arg(&tmp).output().unwrap()
    };
    let out = seven(&["t"], "correct-horse-battery");
    assert!(out.status.success(), "7-Zip opens it: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!seven(&["t"], "wrong-password-here").status.success());
    let listing = String::from_utf8_lossy(&seven(&["l", "-slt"], "correct-horse-battery").stdout).into_owned();
    assert!(listing.contains("Method = AES-256"), "{listing}");
    // Suspension: gone from search and the case page for everyone but the security officer.
    let q = SearchOptions::new("受給者番号:1300001", 10);
    assert_eq!(h.search(&rev, &q).unwrap().total, 2);
    h.suspend(&rev, "1300001", "利用停止請求").unwrap();
    assert_eq!(h.search(&rev, &q).unwrap().total, 0);
    assert!(h.case_file(&rev, &key).is_err());
    assert!(h.find_person(&rev, &PersonQuery::Recipient("1300001".into())).unwrap().is_empty());
    let sec = Actor::with_role("sec", Role::SecurityOfficer);
    assert!(h.case_file(&sec, &key).unwrap().suspended);
    assert_eq!(h.search(&sec, &q).unwrap().total, 1, "the application (the My Number form needs that right)");
    let actions: Vec<String> = h.store().audit_entries().unwrap().into_iter().map(|e| e.action).collect();
    for a in ["person.find", "person.export", "person.suspend", "case.status", "case.inquiry", "case.link"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited");
    }
}

#[tokio::test]
async fn the_review_screen_masks_and_saves_over_http() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let (mn, t) = page(&h, 2);
    let (app1, t1) = page(&h, 0);
    let number = t["my_number"].clone();
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let mut rights = Role::Reviewer.preset();
    rights.my_number = false;
    hozon::auth::set_rights(h.store(), &Actor::operator("test"), "rev01", Role::Reviewer, rights).unwrap();
    let app = hozon::web::router(hozon::web::AppState::new(h));
    let mut b = Browser::new(app);
    b.login("rev01", &temp, "reviewer-pass-2026-x").await;
    let q = b.get("/review").await;
    assert_eq!(q.status, 200);
    assert!(q.body.contains("確認待ち") && q.body.contains(mn.as_str()));
    let p = b.get(&format!("/review/{mn}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains(&format!("****-****-{}", &number[8..])));
    assert!(!p.body.contains(&number), "the full number is in no response body");
    assert!(p.body.contains("/static/review.js"));
    let img = b.get(&format!("/review/{mn}/field/my_number")).await;
    assert_eq!(img.headers.get("content-type").unwrap(), "image/png");
    // A bad value comes back named, with nothing changed.
    let page1 = b.get(&format!("/review/{app1}")).await;
    assert!(page1.body.contains("name=\"v.birth_date\""));
    let bad = b.post(&format!("/review/{app1}"), &[("v.birth_date", "昭和99年13月1日"), ("case", "auto")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("生年月日"), "{}", bad.body);
    // A good submission goes on to the next draft.
    let mut fields: Vec<(String, String)> = t1.iter().map(|(k, v)| (format!("v.{k}"), v.clone())).collect();
    fields.push(("case".into(), "auto".into()));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ok = b.post(&format!("/review/{app1}"), &refs).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(ok.location().starts_with("/review/"), "{}", ok.location());
    let done = b.get(&format!("/review/{app1}")).await;
    assert!(done.body.contains("確認済"));
}

#[tokio::test]
async fn the_case_page_and_a_data_subjects_requests_over_http() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let (app1, t1) = page(&h, 0);
    let (mn1, tmn) = page(&h, 2);
    let op = Actor::with_role("setup", Role::Reviewer);
    let csv = format!("{HEADER}{}", csv_row("1300001", &t1, &t1["address"], &tmn["my_number"]));
    h.import_cases(&op, csv.as_bytes(), "export.csv").unwrap();
    h.submit_review(&op, &app1, &truthful(&t1), &CaseChoice::Automatic).unwrap();
    let key = h.case_key_of("1300001");
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let temp_sec = env.add_user(&h, "sec01", Role::SecurityOfficer);
    let app = hozon::web::router(hozon::web::AppState::new(h));
    let mut b = Browser::new(app.clone());
    b.login("rev01", &temp, "reviewer-pass-2026-x").await;
    // Found by name and birth date (posted: the values are in no address).
    b.get("/persons").await;
    let found = b.post("/persons", &[("name", &t1["name"]), ("birth_date", &t1["birth_date"])]).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains(&format!("/cases/{key}")), "{}", found.body);
    let bad = b.post("/persons", &[("name", "山田"), ("birth_date", "昭和99年")]).await;
    assert_eq!(bad.status, 400);
    // The case page: the linked page with its thumbnail, status, history, inquiries.
    let p = b.get(&format!("/cases/{key}")).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("受給者番号 1300001") && p.body.contains(&format!("/pages/{app1}/thumb")));
    assert!(!p.body.contains(mn1.as_str()), "the My Number form was not reviewed, so not linked yet");
    let s = b.post(&format!("/cases/{key}/status"), &[("status", "approved")]).await;
    assert_eq!(s.status, 303);
    b.get(&format!("/cases/{key}")).await;
    b.post(
        &format!("/cases/{key}/inquiries"),
        &[("on", "2026-11-25"), ("channel", "電話"), ("note", "受給者証の再発行")],
    )
    .await;
    let p = b.get(&format!("/cases/{key}")).await;
    assert!(p.body.contains("<dd id=\"status\">認定</dd>") && p.body.contains("受給者証の再発行"), "{}", p.body);
    assert!(p.body.contains("状態変更 rev01"), "the status change is in the history");
    // The export needs a second factor, then comes as an encrypted ZIP.
    let no = b.post(&format!("/cases/{key}/export"), &[("password", "correct-horse-battery")]).await;
    assert_ne!(no.status, 200);
    b.second_factor(None).await;
    b.get(&format!("/cases/{key}")).await;
    let z = b.post(&format!("/cases/{key}/export"), &[("password", "correct-horse-battery")]).await;
    assert_eq!(z.status, 200, "{}", z.body);
    assert_eq!(z.headers.get("content-type").unwrap(), "application/zip");
    // Suspension: the case page is gone for the reviewer.
    b.get(&format!("/cases/{key}")).await;
    let s = b.post(&format!("/cases/{key}/suspend"), &[("reason", "利用停止請求")]).await;
    assert_eq!((s.status.as_u16(), s.location()), (303, "/persons?suspended=1"));
    assert_eq!(b.get(&format!("/cases/{key}")).await.status, 404);
    // The security officer still sees the case, and lifts the suspension.
    let mut sec = Browser::new(app);
    sec.login("sec01", &temp_sec, "security-pass-2026-x").await;
    let p = sec.get(&format!("/cases/{key}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("閲覧停止中") && p.body.contains("id=\"unsuspend\""));
    assert_eq!(sec.post(&format!("/cases/{key}/unsuspend"), &[]).await.status, 303);
    assert_eq!(b.get(&format!("/cases/{key}")).await.status, 200, "visible again");
}
