//! Search and page views.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::app::SearchOptions;
use crate::index::Sort;
use crate::store::RecordId;

/// One result as the page shows it.
struct ResultRow {
    record_id: String,
    received: String,
    form: String,
    case_href: Option<String>,
    /// The case page (`/cases/<key>`), for users who may see cases.
    case_page: Option<String>,
    status: Option<String>,
    snippet_html: String,
    /// Found as a near spelling (the fuzzy tier), not as written.
    near: bool,
}

/// A group of rows: one case, or one loose document.
struct GroupView {
    case_no: Option<String>,
    name: Option<String>,
    rows: Vec<ResultRow>,
}

/// A facet value as a link that narrows the query.
struct FacetLink {
    label: String,
    count: u64,
    href: String,
}

struct FacetView {
    title: &'static str,
    links: Vec<FacetLink>,
}

/// Everything the results area shows; rendered inside the full page and alone as the fragment
/// the search box fetches while the reviewer types.
#[derive(Default)]
struct ResultsView {
    query: String,
    sort: String,
    group: String,
    searched: bool,
    total: usize,
    /// Near spellings listed after the exact hits.
    near: usize,
    groups: Vec<GroupView>,
    facets: Vec<FacetView>,
    error: Option<String>,
    prev_href: Option<String>,
    next_href: Option<String>,
    first: usize,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    nav: Option<Nav>,
    v: ResultsView,
    total_pages: usize,
    /// The field names a query can use, for the help.
    fields_help: String,
}

#[derive(Template)]
#[template(path = "search_results.html")]
struct SearchFragment {
    v: ResultsView,
}

#[derive(serde::Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    page: usize,
}

const PER_PAGE: usize = 20;

fn jst(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST")).format("%Y-%m-%d %H:%M").to_string()
}

/// `/search?…` with the query string encoded.
fn search_href(q: &str, sort: &str, group: &str, page: usize) -> String {
    let mut u = url::form_urlencoded::Serializer::new(String::new());
    u.append_pair("q", q);
    if !sort.is_empty() && sort != "relevance" {
        u.append_pair("sort", sort);
    }
    if group == "case" {
        u.append_pair("group", "case");
    }
    if page > 0 {
        u.append_pair("page", &page.to_string());
    }
    format!("/search?{}", u.finish())
}

/// The field a facet dimension narrows, and the value to type for a facet value.
fn facet_clause(dimension: &str, value: &str) -> (&'static str, String) {
    use crate::index::vocab::{STATUSES, form_label, label_of};
    match dimension {
        "form" => ("様式", format!("様式:{}", form_label(value))),
        "status" => ("状態", format!("状態:{}", label_of(STATUSES, value))),
        "city" => ("市区町村", format!("市区町村:\"{value}\"")),
        "disease" => ("病名", format!("病名:\"{value}\"")),
        _ => ("受付年", format!("受付日:{value}")),
    }
}

fn facet_label(dimension: &str, value: &str) -> String {
    use crate::index::vocab::{STATUSES, form_label, label_of};
    match dimension {
        "form" => form_label(value),
        "status" => label_of(STATUSES, value).to_owned(),
        "year" => format!("{value}年"),
        _ => value.to_owned(),
    }
}

async fn results_view(state: &Arc<AppState>, ctx: &Ctx, params: SearchParams) -> Result<ResultsView, WebError> {
    use crate::index::vocab::{STATUSES, form_label, label_of};
    let query = params.q.trim().to_owned();
    let sort = match params.sort.as_str() {
        "newest" => Sort::Newest,
        "oldest" => Sort::Oldest,
        _ => Sort::Relevance,
    };
    let group = if params.group == "case" { "case" } else { "doc" }.to_owned();
    let mut v =
        ResultsView { query: query.clone(), sort: params.sort.clone(), group: group.clone(), ..Default::default() };
    if query.is_empty() {
        return Ok(v);
    }
    let page = params.page.min(500);
    let opts = SearchOptions { sort, offset: page * PER_PAGE, facets: true, ..SearchOptions::new(&query, PER_PAGE) };
    let actor = ctx.actor.clone();
    let found = match blocking(state, move |h| h.search(&actor, &opts)).await {
        Ok(found) => found,
        Err(WebError::BadRequest(msg)) => {
            v.error = Some(msg);
            return Ok(v);
        }
        Err(e) => return Err(e),
    };
    v.searched = true;
    v.total = found.total;
    v.near = found.near;
    v.first = page * PER_PAGE + 1;
    if page > 0 {
        v.prev_href = Some(search_href(&query, &params.sort, &group, page - 1));
    }
    if (page + 1) * PER_PAGE < found.total + found.near {
        v.next_href = Some(search_href(&query, &params.sort, &group, page + 1));
    }
    let can_cases = ctx.actor.rights().allows(crate::auth::Function::Cases, crate::auth::Level::View);
    let row = |r: crate::index::Hit| ResultRow {
        case_page: r.case_no.as_deref().filter(|_| can_cases).map(|c| format!("/cases/{}", state.hozon.case_key_of(c))),
        record_id: r.record_id,
        received: jst(r.received),
        form: form_label(&r.form),
        case_href: r.case_no.as_deref().map(|c| search_href(&format!("受給者番号:{c}"), "", "case", 0)),
        status: r.status.map(|s| label_of(STATUSES, &s).to_owned()),
        snippet_html: r.snippet_html,
        near: r.near,
    };
    v.groups = if group == "case" {
        crate::app::group_by_case(found.results)
            .into_iter()
            .map(|g| GroupView { case_no: g.case_no, name: g.name, rows: g.results.into_iter().map(row).collect() })
            .collect()
    } else {
        found.results.into_iter().map(|r| GroupView { case_no: None, name: None, rows: vec![row(r)] }).collect()
    };
    v.facets = found
        .facets
        .iter()
        .map(|f| {
            let links = f
                .values
                .iter()
                .map(|(value, count)| {
                    let (_, clause) = facet_clause(f.dimension, value);
                    FacetLink {
                        label: facet_label(f.dimension, value),
                        count: *count,
                        href: search_href(&format!("{query} {clause}"), &params.sort, &group, 0),
                    }
                })
                .collect();
            FacetView { title: facet_clause(f.dimension, "").0, links }
        })
        .collect();
    Ok(v)
}

pub async fn search(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(params): Query<SearchParams>,
) -> Result<Html<String>, WebError> {
    let v = results_view(&state, &ctx, params).await?;
    let actor = ctx.actor.clone();
    let total_pages = blocking(&state, move |h| h.visible_pages(&actor)).await?;
    render(&SearchPage {
        nav: Some(Nav::of(&ctx)),
        v,
        total_pages,
        fields_help: crate::index::query::FieldName::help(),
    })
}

/// The results area alone, fetched by the search box as the reviewer types.
pub async fn search_results(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(params): Query<SearchParams>,
) -> Result<Html<String>, WebError> {
    let v = results_view(&state, &ctx, params).await?;
    render(&SearchFragment { v })
}

#[derive(Template)]
#[template(path = "page.html")]
struct PageView {
    nav: Option<Nav>,
    record_id: String,
    text: String,
    draft: Option<DraftView>,
}

/// A recognised page's draft as the page view shows it (the review screens come later).
struct DraftView {
    form: String,
    title: String,
    rows: Vec<DraftRow>,
}

struct DraftRow {
    label: String,
    value: String,
    confidence: String,
    /// Why the field is flagged (empty when it is not).
    flags: String,
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
    let show_draft = actor.rights().allows(crate::auth::Function::Drafts, crate::auth::Level::View);
    let (text, draft) = blocking(&state, move |h| {
        let text = h.page_text(&actor, &id)?;
        let draft = if show_draft { h.draft(&actor, &id)? } else { None };
        Ok((text, draft))
    })
    .await?;
    let draft = draft.map(|d| DraftView {
        form: crate::index::vocab::form_label(&d.form),
        title: d.title.clone(),
        rows: d
            .fields
            .iter()
            .map(|f| DraftRow {
                label: f.label.clone(),
                value: f.display_ja(),
                confidence: format!("{:.0}%", f.confidence * 100.0),
                flags: f.flags.iter().map(|fl| fl.message_ja()).collect::<Vec<_>>().join("／"),
            })
            .collect(),
    });
    render(&PageView { nav: Some(Nav::of(&ctx)), record_id: rid, text, draft })
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
