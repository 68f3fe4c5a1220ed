//! The web UI through the router (no server): login, search, page views, and the walls.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::util::{TestEnv, synth};

async fn send(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn login(user: &str, password: &str) -> Request<Body> {
    let form = format!("username={user}&password={password}");
    Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap()
}

fn pct(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_search_view_and_access_walls() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest(&h, &env.inbox());
    let app = hozon::web::router(hozon::web::AppState::new(h));

    // Anonymous users are sent to the login page, which speaks Japanese.
    let (status, headers, _) = send(&app, get("/search?q=x", None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
    let (status, headers, body) = send(&app, get("/login", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("ログイン") && body.contains("パスワード"));
    assert!(
        headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    // A wrong password is refused without a session.
    let (status, headers, body) = send(&app, login("admin", "wrong-password-000")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(body.contains("正しくありません"));

    let (status, headers, _) = send(&app, login("admin", &env.admin_password)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let name = synth().truth[0]["fields"]["name"]
        .as_str()
        .unwrap()
        .replace('　', "");
    let (status, _, body) = send(
        &app,
        get(&format!("/search?q={}", pct(&name)), Some(&cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("件見つかりました"), "{body}");
    let id_start = body.find("/pages/").expect("a result links to its page") + "/pages/".len();
    let id = &body[id_start..id_start + 32];

    let (status, _, body) = send(&app, get(&format!("/pages/{id}"), Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("OCR テキスト"));
    let (status, headers, body) =
        send(&app, get(&format!("/pages/{id}/thumb"), Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert!(!body.is_empty());
    // The image is behind the login too.
    let (status, _, _) = send(&app, get(&format!("/pages/{id}/thumb"), None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // Unknown and malformed ids are a Japanese 404, a query with nothing searchable a message.
    let (status, _, body) = send(
        &app,
        get("/pages/0123456789abcdef0123456789abcdef", Some(&cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("見つかりません"));
    let (status, _, _) = send(&app, get("/pages/..%2Fetc", Some(&cookie))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = send(
        &app,
        get(&format!("/search?q={}", pct("、。")), Some(&cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("検索できる語が含まれていません"));

    // Logging out ends the session.
    let req = Request::post("/logout")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    send(&app, req).await;
    let (status, _, _) = send(&app, get("/search", Some(&cookie))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
