//! Login, logout and the session cookie. Sessions live in memory (a restart logs everyone
//! out), expire after 30 idle minutes, and the cookie is HttpOnly and SameSite=Strict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use rand::RngCore;

use super::{AppState, WebError, blocking};
use crate::audit::Event;
use crate::auth::Actor;

const COOKIE: &str = "hozon_session";
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, (Actor, Instant)>>);

impl Sessions {
    fn create(&self, actor: Actor) -> String {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = hex::encode(raw);
        self.0
            .lock()
            .expect("sessions")
            .insert(token.clone(), (actor, Instant::now()));
        token
    }

    fn touch(&self, token: &str) -> Option<Actor> {
        let mut map = self.0.lock().expect("sessions");
        let now = Instant::now();
        map.retain(|_, (_, seen)| now.duration_since(*seen) < IDLE_TIMEOUT);
        let (actor, seen) = map.get_mut(token)?;
        *seen = now;
        Some(actor.clone())
    }

    fn remove(&self, token: &str) {
        self.0.lock().expect("sessions").remove(token);
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The logged-in user; requests without a live session are sent to the login page.
pub struct CurrentUser(pub Actor);

impl FromRequestParts<Arc<AppState>> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        cookie_token(&parts.headers)
            .and_then(|t| state.sessions.touch(&t))
            .map(CurrentUser)
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login_page() -> Result<Html<String>, WebError> {
    Ok(Html(
        LoginPage { error: None }
            .render()
            .map_err(|e| WebError::Internal(e.to_string()))?,
    ))
}

async fn login(
    State(state): State<Arc<AppState>>,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let username = form.username.trim().to_owned();
    let actor = blocking(&state, move |h| {
        let actor = crate::auth::authenticate(&h.store, &username, &form.password)?;
        let (who, outcome) = match &actor {
            Some(a) => (a.name.as_str(), "ok"),
            None => ("anonymous", "denied"),
        };
        h.store.audit(Event::new(who, "login", "-", outcome))?;
        Ok(actor)
    })
    .await?;
    match actor {
        Some(actor) => {
            let token = state.sessions.create(actor);
            let cookie = format!(
                "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                IDLE_TIMEOUT.as_secs()
            );
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/search")).into_response())
        }
        None => {
            let page = LoginPage {
                error: Some("ユーザーIDまたはパスワードが正しくありません。".into()),
            };
            let html = page
                .render()
                .map_err(|e| WebError::Internal(e.to_string()))?;
            Ok((axum::http::StatusCode::UNAUTHORIZED, Html(html)).into_response())
        }
    }
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(t) = cookie_token(&headers) {
        state.sessions.remove(&t);
    }
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}
