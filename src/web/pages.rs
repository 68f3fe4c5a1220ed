//! Search and page views.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::store::RecordId;

struct ResultRow {
    record_id: String,
    received: String,
    snippet_html: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    nav: Option<Nav>,
    query: String,
    searched: bool,
    results: Vec<ResultRow>,
    total_pages: u64,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
}

pub async fn search(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(params): Query<SearchParams>,
) -> Result<Html<String>, WebError> {
    let query = params.q.trim().to_owned();
    let actor = ctx.actor.clone();
    let mut page = SearchPage {
        nav: Some(Nav::of(&ctx)),
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
    nav: Option<Nav>,
    record_id: String,
    text: String,
}

fn parse_id(s: &str) -> Result<RecordId, WebError> {
    RecordId::parse(s).ok_or(WebError::NotFound)
}

pub async fn page(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let id = parse_id(&id)?;
    let rid = id.to_string();
    let actor = ctx.actor.clone();
    let text = blocking(&state, move |h| h.page_text(&actor, &id)).await?;
    render(&PageView { nav: Some(Nav::of(&ctx)), record_id: rid, text })
}

fn png(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
}

async fn page_png(state: Arc<AppState>, ctx: Ctx, id: String, width: u32) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let actor = ctx.actor;
    Ok(png(blocking(&state, move |h| h.page_thumbnail(&actor, &id, width)).await?))
}

pub async fn thumb(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    page_png(state, ctx, id, 240).await
}

pub async fn image(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    page_png(state, ctx, id, 1240).await
}
