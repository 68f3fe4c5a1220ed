//! The user's own account: login (password, then TOTP when required), logout, password
//! change, TOTP enrolment and step-up checks.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use super::guard::Ctx;
use super::session::{self, PRE_COOKIE};
use super::{AppState, Nav, WebError, blocking, render};
use crate::auth::{self, Login, SecondFactor};

/// The client's address as the server saw it ("local" when served without one, as in tests).
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or("local".to_owned(), |c| c.0.ip().to_string()),
        ))
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    error: Option<String>,
    csrf: String,
}

fn login_page_with(state: &AppState, status: StatusCode, error: Option<String>) -> Result<Response, WebError> {
    let csrf = session::random_token();
    let cookie = session::set_cookie(PRE_COOKIE, &csrf, Some(3600), state.hozon.config.security.secure_cookies);
    let html = render(&LoginPage { nav: None, error, csrf })?;
    Ok((status, [(header::SET_COOKIE, cookie)], html).into_response())
}

pub async fn login_form(State(state): State<Arc<AppState>>) -> Result<Response, WebError> {
    login_page_with(&state, StatusCode::OK, None)
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    if !state.limiter.allow(&client) {
        return Err(WebError::TooMany);
    }
    let name = form.username.trim().to_owned();
    let from = client.clone();
    let outcome =
        blocking(&state, move |h| Ok(h.accounts().login(&name, &form.password, &from, chrono::Utc::now())?)).await?;
    let message = |m: &str| Some(m.to_owned());
    match outcome {
        Login::Ok { actor, must_change_password, totp_enrolled, generation } => {
            let pending = state.hozon.config.security.totp_for_login;
            let token = state.sessions.create(actor, must_change_password, pending, totp_enrolled, generation);
            let sec = &state.hozon.config.security;
            // The cookie lives as long as the session may (the server ends idle ones sooner).
            let cookie = session::set_cookie(
                session::COOKIE,
                &token,
                Some(sec.session_absolute_hours * 3600),
                sec.secure_cookies,
            );
            let to = if pending {
                "/account/totp"
            } else if must_change_password {
                "/account/password"
            } else {
                "/search"
            };
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(to)).into_response())
        }
        // A locked account gets the same answer as a wrong password or an unknown name: the
        // answer must not tell which names exist.
        Login::BadCredentials | Login::Locked => login_page_with(
            &state,
            StatusCode::UNAUTHORIZED,
            message(
                "ユーザーIDまたはパスワードが正しくないか、失敗が続いたため一時的にログインできません。しばらくしてからお試しください。",
            ),
        ),
        Login::AccountExpired => login_page_with(
            &state,
            StatusCode::FORBIDDEN,
            message(
                "このアカウントは利用期限（年度末）を過ぎています。情報セキュリティ責任者に更新を依頼してください。",
            ),
        ),
    }
}

/// Renews the session (any request does) and says how long it now has: the expiry warning's
/// 延長 button.
pub async fn ping(Extension(ctx): Extension<Ctx>) -> Response {
    axum::Json(serde_json::json!({ "left_s": ctx.session_left_s })).into_response()
}

pub async fn logout(State(state): State<Arc<AppState>>, Extension(ctx): Extension<Ctx>) -> Response {
    state.sessions.remove(&ctx.token);
    let clear = session::set_cookie(session::COOKIE, "", Some(0), state.hozon.config.security.secure_cookies);
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    nav: Option<Nav>,
    forced: bool,
    min_len: usize,
    error: Option<String>,
}

pub async fn password_form(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Html<String>, WebError> {
    render(&PasswordPage {
        nav: Some(Nav::of(&ctx)),
        forced: ctx.session.must_change_password,
        min_len: state.hozon.config.security.password_min_length,
        error: None,
    })
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

pub async fn change_password(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let page = |error: &str| {
        render(&PasswordPage {
            nav: Some(Nav::of(&ctx)),
            forced: ctx.session.must_change_password,
            min_len: state.hozon.config.security.password_min_length,
            error: Some(error.to_owned()),
        })
        .map(|h| (StatusCode::BAD_REQUEST, h).into_response())
    };
    // With the second factor owed at login, the password holder alone may not change it.
    if ctx.session.pending_second_factor {
        return Ok(Redirect::to("/account/totp").into_response());
    }
    if form.new != form.confirm {
        return page("新しいパスワードが確認欄と一致しません。");
    }
    let actor = ctx.actor.clone();
    let result = blocking(&state, move |h| {
        Ok(h.accounts().change_password(&actor, &form.current, &form.new, chrono::Utc::now())?)
    })
    .await;
    match result {
        Ok(generation) => {
            state.sessions.update(&ctx.token, |s| {
                s.must_change_password = false;
                s.generation = generation;
            });
            Ok(Redirect::to("/search").into_response())
        }
        Err(WebError::Status(StatusCode::FORBIDDEN)) => page("現在のパスワードが正しくありません。"),
        Err(WebError::BadRequest(m)) => page(&m),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    nav: Option<Nav>,
    enrol: Option<(String, String)>,
    next: String,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct NextParam {
    #[serde(default)]
    next: String,
}

/// Only local paths are followed after a check (no open redirect).
fn safe_next(next: &str) -> String {
    if next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() < 2048
        && !next.chars().any(char::is_control)
    {
        next.to_owned()
    } else {
        "/search".into()
    }
}

fn totp_page(state: &AppState, ctx: &Ctx, next: &str, error: Option<String>) -> Result<TotpPage, WebError> {
    let enrol = if ctx.session.totp_enrolled {
        None
    } else {
        let secret = match &ctx.session.enrolling_secret {
            Some(s) => s.clone(),
            None => {
                let (s, _) = auth::begin_totp(&ctx.actor);
                state.sessions.update(&ctx.token, |sess| sess.enrolling_secret = Some(s.clone()));
                s
            }
        };
        auth::totp::enrolment(&secret, ctx.actor.name())
    };
    Ok(TotpPage { nav: Some(Nav::of(ctx)), enrol, next: safe_next(next), error })
}

pub async fn totp_form(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<NextParam>,
) -> Result<Html<String>, WebError> {
    render(&totp_page(&state, &ctx, &q.next, None)?)
}

#[derive(serde::Deserialize)]
pub struct TotpForm {
    code: String,
    #[serde(default)]
    next: String,
}

pub async fn totp_check(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<TotpForm>,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let enrolling = ctx.session.enrolling_secret.clone().filter(|_| !ctx.session.totp_enrolled);
    let code = form.code.clone();
    let now = chrono::Utc::now().timestamp() as u64;
    let result = blocking(&state, move |h| {
        Ok(match &enrolling {
            Some(secret) => {
                let actor = h.accounts().confirm_totp(&actor, secret, &code, now)?;
                auth::Passed { how: SecondFactor::Code, actor }
            }
            None => h.accounts().check_totp(&actor, &code, now)?,
        })
    })
    .await;
    match result {
        Ok(auth::Passed { how, actor }) => {
            state.sessions.mark_second_factor(&ctx.token, actor);
            if how == SecondFactor::Recovery {
                // The lost authenticator is forgotten: enrol the new one next.
                state.sessions.update(&ctx.token, |s| s.totp_enrolled = false);
                return Ok(Redirect::to("/account/totp").into_response());
            }
            let to =
                if ctx.session.must_change_password { "/account/password".to_owned() } else { safe_next(&form.next) };
            Ok(Redirect::to(&to).into_response())
        }
        Err(WebError::BadRequest(m)) => {
            let page = totp_page(&state, &ctx, &form.next, Some(m))?;
            Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response())
        }
        Err(e) => Err(e),
    }
}
