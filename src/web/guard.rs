//! The gate every request passes: session lookup, the route's rule (rights, second factor,
//! forced password change), CSRF check on state-changing requests, and one audit entry per
//! request (who, method and path — never the query string, which may hold a name — and the
//! status). Rules live in the route table (`web::routes`), so a route cannot exist without one.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::session::{self, Session};
use super::{AppState, WebError};
use crate::auth::{Actor, Function, Level};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, logged in or not (login page, style sheet).
    Public,
    /// Any logged-in user, even one who still owes a password change or a second factor.
    Account,
    /// Any fully logged-in user.
    LoggedIn,
    /// A right at a level.
    Need(Function, Level),
    /// A right at a level and a recent second-factor check (exports, user administration).
    Need2fa(Function, Level),
    /// Machine clients: an API bearer token (`Authorization: Bearer …`) whose client holds the
    /// right; no session, no cookie, so no CSRF token either.
    Api(Function, Level),
}

/// What API handlers behind the gate receive.
#[derive(Clone)]
pub struct ApiCtx {
    pub actor: Actor,
}

/// What handlers behind the gate receive.
#[derive(Clone)]
pub struct Ctx {
    pub actor: Actor,
    pub csrf: String,
    pub token: String,
    pub session: Session,
    /// Seconds the session has left without activity (idle timeout or lifetime, the sooner).
    pub session_left_s: u64,
}

fn deny(req_method: &Method, to: &str, status: StatusCode) -> Response {
    if req_method == Method::GET { Redirect::to(to).into_response() } else { WebError::Status(status).into_response() }
}

const MAX_FORM_BYTES: usize = 1 << 20;

/// Reads the CSRF token of a request: the `x-csrf-token` header, else the `csrf` field of a
/// url-encoded form (the body is buffered and handed on unchanged).
async fn csrf_of(req: Request) -> Result<(Option<String>, Request), Response> {
    if let Some(h) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        let t = h.to_owned();
        return Ok((Some(t), req));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| WebError::BadRequest("送信データが大きすぎます。".into()).into_response())?;
    let token = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

pub async fn authorize(State((state, rule)): State<(Arc<AppState>, Rule)>, req: Request, next: Next) -> Response {
    if let Rule::Api(f, l) = rule {
        return authorize_api(&state, f, l, req, next).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let from = client_addr(&req);
    let token = session::cookie(req.headers(), session::COOKIE);
    let session = match (token.as_deref(), token.as_deref().and_then(|t| state.sessions.touch(t))) {
        (Some(t), Some(s)) => match current(&state, s) {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                state.sessions.remove(t);
                None
            }
            Err(e) => return e.into_response(),
        },
        _ => None,
    };
    let step_up = Duration::from_secs(state.hozon.config.security.step_up_minutes * 60);
    let actor = session.as_ref().map(|s| s.actor_now(step_up));
    let who = actor.as_ref().map_or("anonymous".to_owned(), |a| a.name().to_owned());

    let response = match check(rule, &path, session.as_ref(), actor.as_ref()) {
        Err(d) => d.respond(&method),
        Ok(()) => {
            let mut req = req;
            let mut csrf_ok = true;
            if method != Method::GET && method != Method::HEAD {
                match csrf_of(req).await {
                    Err(r) => return r,
                    Ok((sent, r)) => {
                        req = r;
                        let expected = match &session {
                            Some(s) => Some(s.csrf.clone()),
                            None => session::cookie(req.headers(), session::PRE_COOKIE),
                        };
                        csrf_ok = matches!((&sent, &expected), (Some(a), Some(b)) if constant_eq(a, b));
                    }
                }
            }
            if !csrf_ok {
                WebError::Csrf.into_response()
            } else {
                if let (Some(s), Some(a), Some(t)) = (session.clone(), actor.clone(), token.clone()) {
                    let session_left_s = s.remaining(state.sessions.idle, state.sessions.absolute);
                    let csrf = s.csrf.clone();
                    req.extensions_mut().insert(Ctx { actor: a, csrf, token: t, session: s, session_left_s });
                }
                next.run(req).await
            }
        }
    };
    let status = response.status().as_u16().to_string();
    let target = format!("{method} {path} from {from}");
    if let Err(e) = state.hozon.audit_request(&who, &target, &status) {
        eprintln!("hozon: audit append failed: {}", crate::error::chain(&e));
        return WebError::Internal("audit log unavailable".into()).into_response();
    }
    response
}

/// The session with its account's rights as they are now; `None` when the account changed,
/// locked or expired since the session began (the session then ends).
fn current(state: &AppState, mut s: Session) -> Result<Option<Session>, WebError> {
    let name = s.actor.name().to_owned();
    match state.hozon.accounts().session_actor(&name, s.generation, chrono::Utc::now())? {
        Some(fresh) => {
            s.actor = s.actor.refreshed(&fresh);
            Ok(Some(s))
        }
        None => Ok(None),
    }
}

async fn authorize_api(state: &Arc<AppState>, f: Function, l: Level, mut req: Request, next: Next) -> Response {
    let target = format!("{} {} from {}", req.method(), req.uri().path(), client_addr(&req));
    let bearer = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let actor = match bearer.map(|t| state.hozon.api_actor(&t)).transpose() {
        Ok(a) => a.flatten(),
        Err(e) => return WebError::from(e).into_response(),
    };
    let who = actor.as_ref().map_or("anonymous".to_owned(), |a| a.name().to_owned());
    let response = match actor {
        None => api_error(
            StatusCode::UNAUTHORIZED,
            "APIトークンがないか、正しくありません (missing or unknown bearer token)",
        ),
        Some(a) if !a.rights().allows(f, l) => api_error(StatusCode::FORBIDDEN, "このトークンには権限がありません"),
        Some(a) => {
            req.extensions_mut().insert(ApiCtx { actor: a });
            next.run(req).await
        }
    };
    let status = response.status().as_u16().to_string();
    if let Err(e) = state.hozon.audit_request(&who, &target, &status) {
        eprintln!("hozon: audit append failed: {}", crate::error::chain(&e));
        return WebError::Internal("audit log unavailable".into()).into_response();
    }
    response
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Where a request came from, for the audit log ("local" when served without an address).
pub(crate) fn client_addr<B>(req: &axum::http::Request<B>) -> String {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or("local".to_owned(), |c| c.0.ip().to_string())
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why the gate turned a request away.
enum Denial {
    Login,
    Forbidden,
    /// Sent to the TOTP page first (carries the path to return to).
    SecondFactor(String),
    ChangePassword,
}

impl Denial {
    fn respond(self, method: &Method) -> Response {
        match self {
            Denial::Login => deny(method, "/login", StatusCode::UNAUTHORIZED),
            Denial::Forbidden => WebError::Status(StatusCode::FORBIDDEN).into_response(),
            Denial::SecondFactor(next) => deny(method, &next, StatusCode::FORBIDDEN),
            Denial::ChangePassword => deny(method, "/account/password", StatusCode::FORBIDDEN),
        }
    }
}

fn check(rule: Rule, path: &str, session: Option<&Session>, actor: Option<&Actor>) -> Result<(), Denial> {
    if rule == Rule::Public {
        return Ok(());
    }
    let (Some(session), Some(actor)) = (session, actor) else {
        return Err(Denial::Login);
    };
    if rule == Rule::Account {
        return Ok(());
    }
    if session.pending_second_factor {
        return Err(Denial::SecondFactor("/account/totp".into()));
    }
    if session.must_change_password {
        return Err(Denial::ChangePassword);
    }
    match rule {
        Rule::Public | Rule::Account | Rule::LoggedIn => Ok(()),
        Rule::Need(f, l) | Rule::Need2fa(f, l) if !actor.rights().allows(f, l) => Err(Denial::Forbidden),
        Rule::Need2fa(..) if !actor.second_factor() => {
            let next = url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
            Err(Denial::SecondFactor(format!("/account/totp?next={next}")))
        }
        Rule::Need(..) | Rule::Need2fa(..) => Ok(()),
        // Handled by `authorize_api` before any session is looked at.
        Rule::Api(..) => Err(Denial::Forbidden),
    }
}

/// Adds the security headers to every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    res
}
