//! The web UI through the router (no server): login with forced password change, search and
//! page views, CSRF, session timeout, rate limiting, security headers.

use std::time::Duration;

use axum::http::{StatusCode, header};
use hozon::auth::Role;
use hozon::web::{AppState, router};

use crate::util::{Browser, TestEnv, pct, synth};

const NEW_PW: &str = "a-long-new-passphrase-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewer_logs_in_changes_password_searches_and_views() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest(&h, &env.inbox());
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let mut b = Browser::new(router(AppState::new(h)));

    // Anonymous users are sent to the login page, which speaks Japanese.
    let p = b.get("/search?q=x").await;
    assert_eq!((p.status, p.location()), (StatusCode::SEE_OTHER, "/login"));
    let p = b.get("/login").await;
    assert!(p.body.contains("ログイン") && p.body.contains("パスワード"));
    assert!(p.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(p.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    // A wrong password: no session.
    let p = b.post("/login", &[("username", "rev01"), ("password", "wrong-password-000")]).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(!b.has_session());
    assert!(p.body.contains("正しくないか"));

    // First login with the temporary password: everything else waits for a new password.
    b.get("/login").await;
    let p = b.post("/login", &[("username", "rev01"), ("password", &temp)]).await;
    assert_eq!(p.location(), "/account/password");
    let set_cookie = p
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict") && set_cookie.contains("Secure"));
    let p = b.get("/search").await;
    assert_eq!(p.location(), "/account/password");
    b.get("/account/password").await;
    let p = b.post("/account/password", &[("current", &temp), ("new", NEW_PW), ("confirm", "different-one-123")]).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    let p = b.post("/account/password", &[("current", &temp), ("new", NEW_PW), ("confirm", NEW_PW)]).await;
    assert_eq!(p.location(), "/search");

    let name = synth().truth[0]["fields"]["name"].as_str().unwrap().replace('　', "");
    let p = b.get(&format!("/search?q={}", pct(&name))).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("件見つかりました"), "{}", p.body);
    let id_start = p.body.find("/pages/").expect("a result links to its page") + "/pages/".len();
    let id = p.body[id_start..id_start + 32].to_owned();
    let p = b.get(&format!("/pages/{id}")).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("OCR テキスト"));
    let p = b.get(&format!("/pages/{id}/thumb")).await;
    assert_eq!((p.status, p.headers[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, "image/png"));

    // Unknown and malformed ids are a Japanese 404; a query with nothing searchable a message.
    let p = b.get("/pages/0123456789abcdef0123456789abcdef").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.contains("見つかりません"));
    assert_eq!(b.get("/pages/..%2Fetc").await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.get("/no/such/route").await.status, StatusCode::NOT_FOUND);
    let p = b.get(&format!("/search?q={}", pct("、。"))).await;
    assert!(p.body.contains("検索できる語が含まれていません"));
    let p = b.get(&format!("/search?q={}", pct("-山田 \"未完"))).await;
    assert_eq!(p.status, StatusCode::OK, "a mistyped query is a message, never a 500");
    for (q, says) in [("受付日:2024-13", "日付として読めません"), ("foo:bar", "という項目はありません")]
    {
        let p = b.get(&format!("/search/results?q={}", pct(q))).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(p.body.contains(says), "{q}: {}", p.body);
    }

    // The fragment the search box fetches while typing: results and facets, no page around.
    let p = b.get(&format!("/search/results?q={}&sort=newest&group=case", pct("東京都"))).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.body.contains("<html") && p.body.contains("件見つかりました"), "{}", p.body);
    assert!(p.body.contains("class=\"facets\"") && p.body.contains("申請書"), "form facet: {}", p.body);
    assert!(p.body.contains("受給者未登録の文書"), "grouped by case: {}", p.body);
    let p = b.get("/search").await;
    assert!(p.body.contains("/static/search.js") && p.body.contains("閲覧できる登録ページ数"));
    let js = b.get("/static/search.js").await;
    assert!(js.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    // A reviewer is not a security officer.
    assert_eq!(b.get("/admin/users").await.status, StatusCode::FORBIDDEN);

    // Logging out ends the session.
    b.get("/search").await;
    b.post("/logout", &[]).await;
    assert_eq!(b.get("/search").await.location(), "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_is_required_on_every_form() {
    let env = TestEnv::new();
    let h = env.open();
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let mut b = Browser::new(router(AppState::new(h)));
    // Login without the pre-login token is refused before the password is even checked.
    b.get("/login").await;
    let p = b.post_raw("/login", &[("username", "rev01"), ("password", &temp)], "").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("CSRF"));
    let p = b.post_raw("/login", &[("username", "rev01"), ("password", &temp)], &"0".repeat(64)).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    b.login("rev01", &temp, NEW_PW).await;
    assert!(b.has_session());
    // Logged in: a form without the session's token is refused and changes nothing.
    let p = b.post_raw("/logout", &[], "").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/search").await.status, StatusCode::OK, "still logged in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_time_out() {
    let env = TestEnv::new();
    let h = env.open();
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let mut b = Browser::new(router(AppState::with_idle_timeout(h, Duration::from_millis(300))));
    b.login("rev01", &temp, NEW_PW).await;
    assert_eq!(b.get("/search").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(b.get("/search").await.location(), "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_rate_limited_and_accounts_lock_for_a_while_without_telling_names() {
    let env = TestEnv::new();
    env.configure("[security]\nlogin_attempts_per_minute = 8\nlockout_threshold = 3\n");
    let h = env.open();
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let mut b = Browser::new(router(AppState::new(h)));
    let mut answers = Vec::new();
    for _ in 0..3 {
        b.get("/login").await;
        answers.push(b.post("/login", &[("username", "rev01"), ("password", "bad-password-123")]).await);
    }
    // Locked now, even with the right password; the answer is the one a wrong password or an
    // unknown name gets, so the lock tells nobody the name exists.
    b.get("/login").await;
    answers.push(b.post("/login", &[("username", "rev01"), ("password", &temp)]).await);
    b.get("/login").await;
    let unknown = b.post("/login", &[("username", "nobody"), ("password", "x-password-123")]).await;
    for a in &answers {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(message_of(&a.body), message_of(&unknown.body));
    }
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(!b.has_session());
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        b.get("/login").await;
        last = b.post("/login", &[("username", "nobody"), ("password", "x-password-123")]).await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

/// The login page's error message (the page differs only in its one-time form token).
fn message_of(body: &str) -> String {
    let i = body.find("class=\"error\"").unwrap_or_else(|| panic!("no error on the page: {body}"));
    body[i..].split('<').next().unwrap().to_owned()
}

/// Finding 4: rights are re-read on every request; a reset password or removed rights end the
/// sessions opened before, and a sliding idle timer keeps an active user logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_the_account_changes() {
    let env = TestEnv::new();
    let h = env.open();
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let state = AppState::with_idle_timeout(h, Duration::from_millis(400));
    let mut b = Browser::new(router(state.clone()));
    b.login("rev01", &temp, NEW_PW).await;
    // Active every 150 ms for well over the idle time: still logged in.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(b.get("/search").await.status, StatusCode::OK);
    }
    let admin = hozon::auth::Actor::operator("sec");
    let mut rights = Role::Reviewer.preset();
    rights.set(hozon::auth::Function::Search, hozon::auth::Level::None);
    hozon::auth::set_rights(state.hozon.store(), &admin, "rev01", Role::Reviewer, rights).unwrap();
    assert_eq!(b.get("/search").await.location(), "/login", "rights changed: the old session ends");
    let mut b = Browser::new(router(state.clone()));
    b.login("rev01", NEW_PW, NEW_PW).await;
    assert_eq!(b.get("/search").await.status, StatusCode::FORBIDDEN, "the new session has the new rights");
    hozon::auth::reset_password(state.hozon.store(), &admin, "rev01", chrono::Utc::now()).unwrap();
    assert_eq!(b.get("/search").await.location(), "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_administration_needs_a_second_factor() {
    let env = TestEnv::new();
    let h = env.open();
    let mut b = Browser::new(router(AppState::new(h)));
    b.login("admin", &env.admin_password, NEW_PW).await;
    let p = b.get("/admin/users").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p.location().starts_with("/account/totp?next="));
    // A wrong code is refused; enrolment with a right one opens the page.
    b.get("/account/totp").await;
    assert_eq!(b.post("/account/totp", &[("code", "000000")]).await.status, StatusCode::BAD_REQUEST);
    b.second_factor(None).await;
    let p = b.get("/admin/users").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("アカウント棚卸し"));
    // Create a user; the one-time password is shown once.
    let p = b.post("/admin/users", &[("name", "mail01"), ("role", "mailroom")]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("mail01") && p.body.contains("一時パスワード"));
    // Edit the new user's rights; the security officer cannot edit their own.
    b.get("/admin/users/mail01").await;
    let p = b
        .post("/admin/users/mail01/rights", &[("role", "mailroom"), ("f_capture", "update"), ("f_search", "view")])
        .await;
    assert!(p.body.contains("権限を更新しました"), "{}", p.body);
    let p = b.post("/admin/users/admin/rights", &[("role", "security_officer"), ("f_users", "update")]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let csv = b.get("/admin/users.csv").await;
    assert!(csv.body.starts_with('\u{feff}') && csv.body.contains("mail01"));
    let p = b.post("/admin/users/mail01/renew", &[]).await;
    assert!(p.body.contains("利用期限を"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_at_login_when_configured() {
    let env = TestEnv::new();
    env.configure("[security]\ntotp_for_login = true\n");
    let h = env.open();
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let app = router(AppState::new(h));
    let mut b = Browser::new(app.clone());
    b.get("/login").await;
    let p = b.post("/login", &[("username", "rev01"), ("password", &temp)]).await;
    assert_eq!(p.location(), "/account/totp");
    // Nothing else opens until the code is given (enrolment on first use).
    assert_eq!(b.get("/search").await.location(), "/account/totp");
    let secret = b.second_factor(None).await;
    // Then the temporary password must still be changed.
    assert_eq!(b.get("/search").await.location(), "/account/password");
    b.get("/account/password").await;
    b.post("/account/password", &[("current", &temp), ("new", NEW_PW), ("confirm", NEW_PW)]).await;
    assert_eq!(b.get("/search").await.status, StatusCode::OK);
    // The next login asks for a code from the enrolled secret.
    let mut b2 = Browser::new(app);
    b2.get("/login").await;
    assert_eq!(b2.post("/login", &[("username", "rev01"), ("password", NEW_PW)]).await.location(), "/account/totp");
    b2.second_factor(Some(secret)).await;
    assert_eq!(b2.get("/search").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_records_officers_run_a_disposal_in_the_browser() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 1);
    // Received in 2015: long past its five years.
    let mut rec = h.store().records().next().unwrap().unwrap();
    rec.received_at = chrono::DateTime::parse_from_rfc3339("2015-05-01T09:00:00+09:00").unwrap().to_utc();
    h.store().update_records(&[rec.clone()], hozon::audit::Event::system("test.backdate", rec.id.as_str())).unwrap();
    let p1 = env.add_user(&h, "ro01", Role::RecordsOfficer);
    let p2 = env.add_user(&h, "ro02", Role::RecordsOfficer);
    let app = router(AppState::new(h));

    let mut a = Browser::new(app.clone());
    a.login("ro01", &p1, NEW_PW).await;
    let p = a.get("/retention").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("保存期間の方針"));
    assert!(!p.body.contains("期限到来済"), "the forecast follows the applied dates, not the files");
    // The back-dated record would become due earlier than its stored date: shown, and applied
    // only with the explicit confirmation.
    assert!(p.body.contains("早まる記録 1 件"), "{}", p.body);
    let p = a.post("/retention/policies/apply", &[]).await;
    assert!(p.body.contains("内容を確認し"), "{}", p.body);
    let p = a.post("/retention/policies/apply", &[("accept_earlier", "on")]).await;
    assert!(p.body.contains("方針を適用しました（早まる 1 件"), "{}", p.body);
    assert!(p.body.contains("期限到来済"), "applied: the forecast shows the due record");
    assert!(p.body.contains("一致しています"));
    let p = a.post("/retention/plan", &[]).await;
    let run_path = p.location().to_owned();
    assert!(run_path.starts_with("/retention/runs/D"), "{}", p.location());
    let p = a.get(&run_path).await;
    assert!(p.body.contains(rec.id.as_str()) && p.body.contains("確認中"));
    let p = a.post(&format!("{run_path}/submit"), &[]).await;
    assert!(p.body.contains("承認待ち"), "{}", p.body);
    let p = a.post(&format!("{run_path}/approve"), &[]).await;
    assert!(p.body.contains("兼ねられません"), "the preparer cannot approve");

    let mut b = Browser::new(app.clone());
    b.login("ro02", &p2, NEW_PW).await;
    b.get(&run_path).await;
    let p = b.post(&format!("{run_path}/approve"), &[]).await;
    assert!(p.body.contains("承認済み"), "{}", p.body);
    let p = b.post(&format!("{run_path}/execute"), &[]).await;
    assert!(
        p.body.contains("チェックを入れてください") && p.body.contains("承認済み"),
        "execution asks for confirmation"
    );
    // The list staff confirm against the paper: form name in Japanese, 和暦 dates, a link.
    let p = b.get(&run_path).await;
    assert!(p.body.contains("申請書") && p.body.contains("平成27年") && p.body.contains(&format!("/pages/{}", rec.id)));
    let p = b.post(&format!("{run_path}/execute"), &[("confirm", "on")]).await;
    assert!(p.body.contains("廃棄証明書を発行しました") && p.body.contains("完了"), "{}", p.body);
    let pdf = b.get(&format!("{run_path}/certificate.pdf")).await;
    assert_eq!(pdf.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(pdf.body.starts_with("%PDF"));
    // Records officers may search; the destroyed page is gone.
    let p = b.get(&format!("/pages/{}", rec.id)).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    drop(app);
}
