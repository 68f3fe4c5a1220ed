//! Search and page views.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::session::CurrentUser;
use super::{AppState, WebError, blocking};
use crate::store::RecordId;

struct ResultRow {
    record_id: String,
    received: String,
    snippet_html: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    user: String,
    query: String,
    searched: bool,
    results: Vec<ResultRow>,
    total_pages: u64,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct SearchParams {
    #[serde(default)]
    q: String,
}

fn render(t: &impl Template) -> Result<Html<String>, WebError> {
    t.render()
        .map(Html)
        .map_err(|e| WebError::Internal(e.to_string()))
}

async fn search(
    State(state): State<Arc<AppState>>,
    CurrentUser(actor): CurrentUser,
    Query(params): Query<SearchParams>,
) -> Result<Html<String>, WebError> {
    let query = params.q.trim().to_owned();
    let mut page = SearchPage {
        user: actor.name.clone(),
        query: query.clone(),
        searched: !query.is_empty(),
        results: Vec::new(),
        total_pages: state.hozon.index.num_docs(),
        error: None,
    };
    if !query.is_empty() {
        match blocking(&state, move |h| h.search(&actor, &query, 50)).await {
            Ok(results) => {
                page.results = results
                    .into_iter()
                    .map(|r| ResultRow {
                        record_id: r.record_id.to_string(),
                        received: r
                            .received_at
                            .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"))
                            .format("%Y-%m-%d %H:%M")
                            .to_string(),
                        snippet_html: r.snippet_html,
                    })
                    .collect();
            }
            Err(WebError::BadRequest(msg)) => {
                page.searched = false;
                page.error = Some(msg);
            }
            Err(e) => return Err(e),
        }
    }
    render(&page)
}

#[derive(Template)]
#[template(path = "page.html")]
struct PageView {
    user: String,
    record_id: String,
    text: String,
}

fn parse_id(s: &str) -> Result<RecordId, WebError> {
    RecordId::parse(s).ok_or(WebError::NotFound)
}

async fn page(
    State(state): State<Arc<AppState>>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let id = parse_id(&id)?;
    let user = actor.name.clone();
    let rid = id.to_string();
    let text = blocking(&state, move |h| h.page_text(&actor, &id)).await?;
    render(&PageView {
        user,
        record_id: rid,
        text,
    })
}

fn png(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
}

async fn thumb(
    State(state): State<Arc<AppState>>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    Ok(png(blocking(&state, move |h| {
        h.page_thumbnail(&actor, &id, 240)
    })
    .await?))
}

async fn image(
    State(state): State<Arc<AppState>>,
    CurrentUser(actor): CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    Ok(png(blocking(&state, move |h| {
        h.page_thumbnail(&actor, &id, 1240)
    })
    .await?))
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/search", get(search))
        .route("/pages/{id}", get(page))
        .route("/pages/{id}/thumb", get(thumb))
        .route("/pages/{id}/image", get(image))
}
