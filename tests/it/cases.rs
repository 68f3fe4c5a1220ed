//! Central case records: CSV import (UTF-8 and Shift_JIS), malformed rows, re-import with
//! history, lookup by number, rights, nothing in plaintext on disk.

use hozon::auth::{Actor, Role};

use crate::util::TestEnv;

const EXPORT: &str = "受給者番号,申請整理番号,氏名,フリガナ,生年月日,住所,病名,有効期間開始,有効期間終了,状態\n\
    1312345,R8-000123,蓮見　紗耶香,ハスミ　サヤカ,昭和45年3月3日,東京都練馬区豊玉北6丁目12番1号,重症筋無力症,2025-04-01,2026-03-31,認定\n\
    1312346,R8-000124,権藤　公平,ゴンドウ　コウヘイ,1999-13-01,東京都,クローン病,,,受付\n\
    1312347,R8-000125,東海林　実,ショウジ　ミノル,1950-01-09,東京都八王子市元本郷町3丁目24番1号,パーキンソン病,,,審査中\n";

#[test]
fn cases_import_from_both_encodings_keep_history_and_stay_sealed() {
    let env = TestEnv::new();
    let h = env.open();
    let op = Actor::operator("test");
    // Shift_JIS, as the subsidy system writes it: two rows in, one named by line and field.
    let sjis = encoding_rs::SHIFT_JIS.encode(EXPORT).0.into_owned();
    let r = h.import_cases(&op, &sjis, "export-1.csv").unwrap();
    assert_eq!((r.created, r.updated, r.errors.len()), (2, 0, 1));
    assert_eq!((r.errors[0].line, r.errors[0].field.as_str()), (3, "生年月日"));
    let c = h.case_by_recipient(&op, "1312345").unwrap().unwrap();
    assert_eq!((c.current.name.as_str(), c.current.birth_date.to_string()), ("蓮見 紗耶香", "1970-03-03".into()));
    assert_eq!(h.case_by_application(&op, "R8-000125").unwrap().unwrap().current.recipient_no, "1312347");
    // The same export again (UTF-8 with BOM this time): nothing changes.
    let bom = [b"\xEF\xBB\xBF".as_slice(), EXPORT.as_bytes()].concat();
    let r = h.import_cases(&op, &bom, "export-2.csv").unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 0, 2));
    // A later export changes a status: updated, the old version kept.
    let later = EXPORT.replace(",パーキンソン病,,,審査中", ",パーキンソン病,2026-04-01,2027-03-31,認定");
    let r = h.import_cases(&op, later.as_bytes(), "export-3.csv").unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 1, 1));
    let c = h.case_by_recipient(&op, "1312347").unwrap().unwrap();
    assert_eq!(c.current.status.label_ja(), "認定");
    assert_eq!(c.history.len(), 1);
    assert_eq!((c.history[0].fields.status.label_ja(), c.history[0].source.as_str()), ("審査中", "export-1.csv"));
    // Rights: the mailroom may not import (cases=update).
    let mailroom = Actor::with_role("mail", Role::Mailroom);
    assert!(h.import_cases(&mailroom, EXPORT.as_bytes(), "x.csv").is_err());
    // A file without the recipient column is refused as a whole, naming the column.
    let e = h.import_cases(&op, "氏名,生年月日\n山田,1960-01-01\n".as_bytes(), "bad.csv").unwrap_err().to_string();
    assert!(e.contains("受給者番号"), "{e}");
    let actions: Vec<String> = h.store().audit_entries().unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions.iter().filter(|a| *a == "case.import").count(), 3);
    drop(h);
    // No name, reading, address or number in plaintext anywhere in the data directory.
    let needles: Vec<Vec<u8>> = ["蓮見", "紗耶香", "ハスミ", "豊玉北", "東海林", "1312345", "R8-000123"]
        .iter()
        .flat_map(|s| [s.as_bytes().to_vec(), encoding_rs::SHIFT_JIS.encode(s).0.into_owned()])
        // Shorter byte strings could occur in ciphertext by chance.
        .filter(|n| n.len() >= 6)
        .collect();
    for entry in
        walkdir::WalkDir::new(env.data()).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file())
    {
        let bytes = std::fs::read(entry.path()).unwrap();
        for n in &needles {
            assert!(!bytes.windows(n.len()).any(|w| w == n.as_slice()), "{} holds plaintext", entry.path().display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_api_takes_a_bearer_token_and_is_idempotent() {
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let env = TestEnv::new();
    let h = env.open();
    let token = h.create_api_token(&Actor::operator("test"), "subsidy-system").unwrap();
    assert!(h.create_api_token(&Actor::with_role("rev", Role::Reviewer), "x").is_err(), "users=update needed");
    let app = hozon::web::router(hozon::web::AppState::new(h));
    let call = |auth: Option<String>, body: String| {
        let app = app.clone();
        async move {
            let mut req = Request::post("/api/cases").header(header::CONTENT_TYPE, "application/json");
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let res = app.oneshot(req.body(axum::body::Body::from(body)).unwrap()).await.unwrap();
            let status = res.status();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default())
        }
    };
    let body = serde_json::json!([
        { "recipient_no": "1399001", "application_no": "R8-9001", "name": "久保田　晴美", "kana": "クボタ　ハルミ",
          "birth_date": "1962-07-15", "address": "東京都調布市布田1丁目1番1号", "disease": "全身性エリテマトーデス",
          "status": "審査中" },
        { "recipient_no": "1399002", "name": "石井　誠", "birth_date": "昭和50年2月30日" }
    ])
    .to_string();
    let bearer = Some(format!("Bearer {token}"));
    let (status, r) = call(bearer.clone(), body.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert_eq!((r["created"].as_u64(), r["errors"][0]["item"].as_u64()), (Some(1), Some(2)));
    assert_eq!(r["errors"][0]["field"], "生年月日");
    // The same push again: idempotent by recipient number.
    let (_, r) = call(bearer.clone(), body).await;
    assert_eq!((r["created"].as_u64(), r["unchanged"].as_u64()), (Some(0), Some(1)));
    // No token, a wrong one, or a browser session: refused.
    assert_eq!(call(None, "{}".into()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(Some(format!("Bearer {}", "0".repeat(64))), "{}".into()).await.0, StatusCode::UNAUTHORIZED);
    let (status, r) = call(bearer, "not json".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{r}");
}

#[tokio::test]
async fn the_person_page_imports_an_export_in_either_encoding() {
    let env = TestEnv::new();
    let h = env.open();
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let temp_mail = env.add_user(&h, "mail01", Role::Mailroom);
    let app = hozon::web::router(hozon::web::AppState::new(h));
    let mut b = crate::util::Browser::new(app.clone());
    b.login("rev01", &temp, "reviewer-pass-2026-x").await;
    let page = b.get("/persons").await;
    assert!(page.body.contains("id=\"case-import\"") && page.body.contains("/static/cases.js"));
    let sjis = encoding_rs::SHIFT_JIS.encode(EXPORT).0.into_owned();
    let r = b.post_files("/cases/import", &[("export.csv", sjis)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!((j["created"].as_u64(), j["updated"].as_u64()), (Some(2), Some(0)), "{j}");
    assert_eq!(j["errors"][0].as_str().unwrap(), "3行目 生年月日: 「1999-13-01」は日付ではありません");
    // The same rows in UTF-8: nothing changes.
    let r = b.post_files("/cases/import", &[("export.csv", EXPORT.as_bytes().to_vec())]).await;
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(j["unchanged"].as_u64(), Some(2), "{j}");
    // No file, an empty one, and a user without cases=update.
    assert_eq!(b.post_files("/cases/import", &[("empty.csv", Vec::new())]).await.status, 400);
    let mut m = crate::util::Browser::new(app);
    m.login("mail01", &temp_mail, "mailroom-pass-2026-x").await;
    m.get("/search").await;
    assert_eq!(m.post_files("/cases/import", &[("export.csv", EXPORT.as_bytes().to_vec())]).await.status, 403);
}
