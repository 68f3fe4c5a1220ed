//! The subsidy system's input data, end to end: synthetic scans ingested and reviewed as a
//! careful reviewer does (`bench review`), an export run, the ZIP opened with 7-Zip and its
//! password, every field read back with the layout and compared with the truth; hand-over
//! erases the file; the result file links accepted rows and sends refused ones back to
//! review; corrections go out once as 訂正 rows; a cancelled run returns its rows.

use std::collections::BTreeMap;

use hozon::auth::{Actor, Role};
use hozon::export::{RowOutcome, RunStatus, format};

use crate::util::{TestEnv, synth, synth_page};

/// An exporting reviewer who has just passed their second factor.
fn exporter() -> Actor {
    Actor::with_role("exp01", Role::Reviewer).stepped_up()
}

fn seven_zip(zip: &[u8], password: &str, dir: &std::path::Path) -> std::process::Output {
    let path = dir.join("handover.zip");
    std::fs::write(&path, zip).unwrap();
    std::process::Command::new("7zz")
        .args(["x", "-y", "-bd"])
        .arg(format!("-o{}", dir.join("out").display()))
        .arg(format!("-p{password}"))
        .arg(&path)
        .output()
        .expect("7zz (Debian 7zip, installed by setup)")
}

#[test]
fn verified_drafts_become_the_input_data_and_the_result_comes_back() {
    let env = TestEnv::new();
    let h = env.open();
    let inbox = env.inbox();
    let review = hozon::bench::review::run(&h, &inbox, 2, false).unwrap();
    assert_eq!(review.wrong_after_review, 0);
    let n = crate::util::SUBMISSIONS;

    // Who may: a mailroom clerk not at all, a reviewer only after a second factor.
    let clerk = crate::util::mailroom();
    assert!(h.export_preview(&clerk, None, None).is_err());
    let no_totp = Actor::with_role("exp01", Role::Reviewer);
    let e = h.export_create(&no_totp, None, None).err().expect("second factor needed");
    assert!(format!("{e}").to_lowercase().contains("second") || format!("{e:?}").contains("SecondFactor"), "{e:?}");

    let preview = h.export_preview(&exporter(), None, None).unwrap();
    assert_eq!(preview.run.rows.len(), n, "one row per application: {:?}", preview.run.held);
    let created = h.export_create(&exporter(), None, None).unwrap();
    assert_eq!(created.run.rows.len(), n);
    assert_eq!(created.run.status, RunStatus::Created);
    // Exactly once: nothing is left for a second run.
    assert!(h.export_create(&exporter(), None, None).is_err(), "exported twice");

    let (info, zip) = h.export_download(&exporter(), &created.run.id).unwrap();
    assert!(h.export_download(&exporter(), &created.run.id).is_err(), "downloaded twice");
    assert_eq!(info.sha256, hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&zip)));

    // 7-Zip opens it with the password, and not without.
    let work = tempfile::tempdir().unwrap();
    let bad = seven_zip(&zip, "not-the-password", work.path());
    assert!(!bad.status.success(), "opened with a wrong password");
    let good = seven_zip(&zip, &created.password, work.path());
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let data = std::fs::read(work.path().join("out").join(&info.data_name)).unwrap();
    let manifest = std::fs::read_to_string(work.path().join("out/MANIFEST.txt")).unwrap();
    assert!(manifest.contains(&hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data))), "{manifest}");

    // Every field read back equals the truth.
    let layout = h.export_layout().unwrap();
    let parsed = format::parse(&layout, &data).unwrap();
    assert_eq!(parsed.len(), n);
    let mut truth_by_record = BTreeMap::new();
    let mut submission_of = BTreeMap::new();
    for i in 0..synth().truth.len() {
        let (id, fields) = synth_page(&h, i);
        submission_of.insert(id.to_string(), synth().truth[i]["submission"].as_u64().unwrap());
        truth_by_record.insert(id, fields);
    }
    for (row, line) in created.run.rows.iter().zip(&parsed) {
        let sub = submission_of[&row.application];
        let t = synth().truth.iter().find(|t| t["submission"] == sub && t["sheet"] == 1).unwrap();
        let name: String = t["fields"]["name"].as_str().unwrap().replace('\u{3000}', " ");
        assert_eq!(line["氏名"], name);
        let birth = hozon::drafts::parse_date(t["fields"]["birth_date"].as_str().unwrap()).unwrap();
        let col = layout.columns.iter().find(|c| c.name == "生年月日").unwrap();
        assert_eq!(format::canonical(&layout, col, &line["生年月日"]), birth.to_string());
        let mn = synth().truth.iter().find(|t| t["submission"] == sub && t["form"] == "my_number").unwrap();
        assert_eq!(line["個人番号"], mn["fields"]["my_number"].as_str().unwrap());
        assert_eq!(line["整理番号"], row.key);
    }
    let (fields, exact, diffs) =
        hozon::bench::export::compare(&h, &layout, &created.run, &data, &truth_by_record).unwrap();
    assert!(fields >= n * 16, "{fields} fields compared");
    assert_eq!(exact, fields, "{diffs:?}");

    // The My Numbers never sit in the store as plaintext (the ZIP is sealed, and AES inside).
    let needles: Vec<(String, Vec<u8>)> = synth()
        .truth
        .iter()
        .filter_map(|t| t["fields"]["my_number"].as_str())
        .map(|m| (m.to_owned(), m.as_bytes().to_vec()))
        .collect();
    let leaks = crate::plaintext::scan_tree(&env.data(), &needles);
    assert!(leaks.is_empty(), "{leaks:?}");

    // Hand-over erases the file and logs who and when; cancelling is then refused.
    assert!(h.export_hand_over(&exporter(), &created.run.id, "").is_err(), "to whom");
    let handed = h.export_hand_over(&exporter(), &created.run.id, "医療費助成事務システム 端末2").unwrap();
    assert_eq!(handed.status, RunStatus::HandedOver);
    assert!(h.store().get_doc("export_file", &created.run.id).unwrap().is_none(), "file still stored");
    assert!(handed.erased.is_some());
    assert!(h.export_cancel(&exporter(), &created.run.id, "誤り", true).is_err(), "cancelled after hand-over");
    let audit = h.store().audit_entries().unwrap();
    assert!(audit.iter().any(|e| e.action == "export.erase" && e.actor == "exp01"));

    // The result: two refused, the rest accepted with the numbers the system assigned.
    let mut csv = String::from("整理番号,結果,受給者番号,エラー内容\n");
    let mut assigned = BTreeMap::new();
    for (i, row) in created.run.rows.iter().enumerate() {
        if i < 2 {
            csv.push_str(&format!("{},2,,保険者番号が資格情報と一致しません\n", row.key));
        } else {
            let no = format!("{:08}", 70_000_000 + i);
            csv.push_str(&format!("{},1,{no},\n", row.key));
            assigned.insert(row.application.clone(), no);
        }
    }
    csv.push_str("EX20000101-01-00001,1,12345678,\n");
    // Which accepted applications sit on a reviewer's provisional case now.
    let reviewer0 = Actor::with_role("rev00", Role::Reviewer);
    let provisional: Vec<(String, String)> = created.run.rows[2..]
        .iter()
        .filter_map(|r| {
            let id = hozon::store::RecordId::parse(&r.application).unwrap();
            let link = h.review_view(&reviewer0, &id).unwrap().draft.case?;
            link.recipient_no.starts_with('9').then(|| (link.recipient_no, assigned[&r.application].clone()))
        })
        .collect();
    assert!(!provisional.is_empty(), "bench review makes provisional cases for new applicants");
    let imported = h.export_result(&exporter(), &created.run.id, csv.as_bytes()).unwrap();
    assert_eq!((imported.accepted, imported.rejected), (n - 2, 2));
    assert_eq!(imported.errors.len(), 1, "the unknown key is named: {:?}", imported.errors);
    assert!(imported.errors[0].contains("EX20000101-01-00001"));
    let again = h.export_result(&exporter(), &created.run.id, csv.as_bytes()).unwrap();
    assert_eq!((again.accepted, again.rejected, again.unchanged), (0, 0, n));

    let run = h.export_run(&exporter(), &created.run.id).unwrap();
    let reviewer = Actor::with_role("rev01", Role::Reviewer);
    for row in &run.rows {
        for page in &row.pages {
            let id = hozon::store::RecordId::parse(page).unwrap();
            let view = h.review_view(&reviewer, &id).unwrap();
            match row.outcome {
                RowOutcome::Accepted => {
                    let link = view.draft.case.clone().expect("linked");
                    assert_eq!(link.recipient_no, assigned[&row.application], "{page}");
                    let case = h.case_by_recipient(&reviewer, &link.recipient_no).unwrap().expect("case");
                    assert!(!case.provisional);
                }
                RowOutcome::Rejected => {
                    let r = view.draft.returned.clone().expect("returned");
                    assert!(r.reason.contains("保険者番号"), "{r:?}");
                    assert_ne!(view.draft.review.unwrap().status, hozon::drafts::review::ReviewStatus::Verified);
                }
                RowOutcome::Pending => panic!("row {} has no outcome", row.key),
            }
        }
    }
    // No provisional case is left for an accepted new applicant.
    assert!(run.rows.iter().filter(|r| r.outcome == RowOutcome::Accepted).all(|r| {
        let id = hozon::store::RecordId::parse(&r.application).unwrap();
        let d = h.review_view(&reviewer, &id).unwrap().draft;
        !d.case.unwrap().recipient_no.starts_with('9')
    }));
    // Each provisional case is kept, marked as merged into the assigned number.
    for (prov, no) in &provisional {
        let case = h.case_by_recipient(&reviewer, prov).unwrap().expect("provisional case kept");
        assert_eq!(case.merged_into.as_deref(), Some(no.as_str()));
    }
    // Nothing links to a merged provisional case any more (its pages moved with it).
    let some_page = hozon::store::RecordId::parse(&created.run.rows[2].application).unwrap();
    let e = h.link_page(&reviewer, &some_page, &provisional[0].0).unwrap_err().to_string();
    assert!(e.contains("統合済み"), "{e}");
    let (queued, items) = h.review_queue(&reviewer, &Default::default(), 100).unwrap();
    let returned: Vec<String> =
        run.rows.iter().filter(|r| r.outcome == RowOutcome::Rejected).flat_map(|r| r.pages.clone()).collect();
    assert_eq!(queued, returned.len(), "{items:?}");

    // The refused ones, verified again, go out as ordinary rows; a correction of an accepted
    // one with a reason goes out once as a 訂正 row.
    for page in &returned {
        let id = hozon::store::RecordId::parse(page).unwrap();
        h.submit_review(&reviewer, &id, &Default::default(), &hozon::app::CaseChoice::Automatic).unwrap();
    }
    let accepted = run.rows.iter().find(|r| r.outcome == RowOutcome::Accepted).unwrap();
    let sheets: Vec<hozon::store::RecordId> = accepted
        .pages
        .iter()
        .map(|p| hozon::store::RecordId::parse(p).unwrap())
        .filter(|id| h.review_view(&reviewer, id).unwrap().draft.form == "application")
        .collect();
    assert_eq!(sheets.len(), 2);
    // One sheet corrected only: the sheets disagree, the row is held back and says why.
    h.correct_value(&reviewer, &sheets[0], "phone", "03-9999-0000", "本人からの電話番号変更の申出").unwrap();
    let p = h.export_preview(&exporter(), None, None).unwrap();
    let held = p.run.held.iter().find(|x| x.application == accepted.application).expect("held");
    assert!(held.reasons.iter().any(|r| r.contains("原本と入力票で「電話番号」が異なります")), "{:?}", held.reasons);
    h.correct_value(&reviewer, &sheets[1], "phone", "03-9999-0000", "本人からの電話番号変更の申出").unwrap();
    let second = h.export_create(&exporter(), None, None).unwrap();
    assert_eq!(second.run.rows.len(), 3, "{:?} / {:?}", second.run.rows, second.run.held);
    let corr = second.run.rows.iter().find(|r| r.application == accepted.application).unwrap();
    assert!(corr.correction);
    assert_eq!(second.run.rows.iter().filter(|r| r.correction).count(), 1);
    // Cancelled before hand-over: the same rows are in the pool again.
    h.export_cancel(&exporter(), &second.run.id, "作成期間の誤り", false).unwrap();
    assert!(h.store().get_doc("export_file", &second.run.id).unwrap().is_none());
    let back = h.export_preview(&exporter(), None, None).unwrap();
    assert_eq!(back.run.rows.len(), 3);
    assert!(back.run.rows.iter().any(|r| r.correction));
    assert!(h.export_hand_over(&exporter(), &second.run.id, "端末").is_err(), "handed over after cancel");

    // The check lists.
    let entries = h.export_error_list(&exporter(), &back.run).unwrap();
    let csv = hozon::export::lists::errors_csv(&entries, hozon::csvout::Encoding::Utf8Bom).unwrap();
    assert!(String::from_utf8(csv).unwrap().contains("区分,整理番号"));
    let counts =
        String::from_utf8(hozon::export::lists::counts_csv(&run, hozon::csvout::Encoding::Utf8Bom).unwrap()).unwrap();
    assert!(counts.lines().last().unwrap().contains(&format!(",{n},")), "{counts}");
    assert!(hozon::export::lists::errors_pdf(&run, &entries).unwrap().starts_with(b"%PDF"));
    assert!(hozon::export::lists::counts_pdf(&run).unwrap().starts_with(b"%PDF"));
}

#[test]
fn a_layout_with_a_bad_key_is_refused_naming_it() {
    let env = TestEnv::new();
    let shipped = std::fs::read_to_string(hozon::resources::root().join("export-layouts/subsidy-system.toml")).unwrap();
    let path = env.tmp.path().join("office-layout.toml");
    std::fs::write(&path, shipped.replace("source = \"application.kana\"", "source = \"application.furigana\""))
        .unwrap();
    env.configure(&format!("[export]\nlayout = \"{}\"\n", path.display()));
    let h = env.open();
    let e = h.export_preview(&exporter(), None, None).err().expect("refused").to_string();
    assert!(e.contains("office-layout.toml") && e.contains("application.furigana") && e.contains("フリガナ"), "{e}");
    // And at the command line, in Japanese, with the file named.
    drop(h);
    let out = std::process::Command::new(crate::util::hozon_bin())
        .args(["--data", env.data().to_str().unwrap(), "export", "preview"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("office-layout.toml") && err.contains("使えません"), "{err}");
}

/// A multipart body with one file field.
fn multipart(name: &str, file: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "hozon-test-boundary-7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_screens_walk_a_run_from_preview_to_result() {
    use axum::http::StatusCode;
    let env = TestEnv::new();
    let h = env.open();
    let pw = env.add_user(&h, "exp01", Role::Reviewer);
    let mail_pw = env.add_user(&h, "mail02", Role::Mailroom);
    let truth = hozon::bench::export::populate(&h, 12, &indicatif::ProgressBar::hidden()).unwrap();
    let state = hozon::web::AppState::new(h);
    let mut clerk = crate::util::Browser::new(hozon::web::router(state.clone()));
    clerk.login("mail02", &mail_pw, "mailroom-passphrase-2026").await;
    assert_eq!(clerk.get("/export").await.status, StatusCode::FORBIDDEN);

    let mut b = crate::util::Browser::new(hozon::web::router(state.clone()));
    b.login("exp01", &pw, "exporter-passphrase-2026").await;
    // The screens show applicants' names: the second factor first.
    let page = b.get("/export").await;
    assert!(page.location().starts_with("/account/totp"), "{} {}", page.status, page.location());
    b.second_factor(None).await;
    let page = b.get("/export").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers.get("cache-control").unwrap(), "no-store");
    assert!(page.body.contains("出力対象 12 件"), "{}", page.body);
    let p = b.post("/export/runs", &[("from", ""), ("to", "")]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(p.headers.get("cache-control").unwrap(), "no-store");
    let needle = "<code class=\"secret\">";
    let i = p.body.find(needle).expect("password shown once") + needle.len();
    let password = p.body[i..i + 23].to_owned();
    let id = {
        let i = p.body.find("書き出し EX").unwrap() + "書き出し ".len();
        p.body[i..i + 13].to_owned()
    };
    // Shown once: the run's page does not show it again.
    let again = b.get(&format!("/export/runs/{id}")).await;
    assert!(!again.body.contains(&password));
    let zip = b.post(&format!("/export/runs/{id}/download"), &[]).await;
    assert_eq!(zip.status, StatusCode::OK);
    assert_eq!(zip.headers.get("content-type").unwrap(), "application/zip");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.bytes.clone())).unwrap();
    assert!(archive.by_index_decrypt(0, password.as_bytes()).is_ok());
    b.get(&format!("/export/runs/{id}")).await;
    let twice = b.post(&format!("/export/runs/{id}/download"), &[]).await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    assert!(twice.body.contains("ダウンロード済み"), "{}", twice.body);
    let pdf = b.get(&format!("/export/runs/{id}/counts/pdf")).await;
    assert!(pdf.bytes.starts_with(b"%PDF"));
    let csv = b.get(&format!("/export/runs/{id}/errors/csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    b.get(&format!("/export/runs/{id}")).await;
    let handed = b.post(&format!("/export/runs/{id}/handover"), &[("to", "助成システム端末1")]).await;
    assert!(handed.body.contains("消去履歴"), "{}", handed.body);
    let run = state.hozon.export_run(&exporter(), &id).unwrap();
    // Renewals keep the number on their form; one result line contradicts it and is refused.
    let mut result = String::from("整理番号,結果,受給者番号,エラー内容\n");
    let mut contradicted = None;
    for (i, r) in run.rows.iter().enumerate() {
        let written = &truth[&hozon::store::RecordId::parse(&r.application).unwrap()]["recipient_no"];
        let no = match written.as_str() {
            "" => format!("{:08}", 80_000_000 + i),
            w if contradicted.is_none() => {
                contradicted = Some(r.key.clone());
                let last = if w.ends_with('9') { '8' } else { '9' };
                format!("{}{last}", &w[..w.len() - 1])
            }
            w => w.to_owned(),
        };
        result.push_str(&format!("{},1,{no},\n", r.key));
    }
    let contradicted = contradicted.expect("a renewal among the applicants");
    let (ct, body) = multipart("file", "result.csv", result.as_bytes());
    let p = b.post_body(&format!("/export/runs/{id}/result"), &ct, body).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("受理 11 件"), "{}", p.body);
    assert!(p.body.contains(&format!("{contradicted}: 受給者番号が申請書の記載と異なります")), "{}", p.body);
}
