//! The input data screens (入力データ作成): the pool with its check list preview, making a
//! run (the password shown once, on the response that made it), the run's page with its
//! lists, the one download, hand-over, cancellation and the subsidy system's result.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use chrono::NaiveDate;

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::auth::{Function, Level};
use crate::export::{ExportRun, lists};

#[derive(serde::Deserialize, Default)]
pub struct Period {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn date(s: &str, what: &str) -> Result<Option<NaiveDate>, WebError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    crate::drafts::parse_date(s).map(Some).ok_or_else(|| {
        WebError::BadRequest(format!("{what}「{s}」を日付として読めません（例 2026-11-30、令和8年11月30日）。"))
    })
}

struct Summary {
    id: String,
    status: &'static str,
    rows: usize,
    corrections: usize,
    held: usize,
    created: String,
}

fn summary(r: &ExportRun) -> Summary {
    Summary {
        id: r.id.clone(),
        status: r.status.label_ja(),
        rows: r.rows.len(),
        corrections: r.rows.iter().filter(|x| x.correction).count(),
        held: r.held.len(),
        created: r.created.label_ja(),
    }
}

#[derive(Template)]
#[template(path = "export.html")]
struct OverviewPage {
    nav: Option<Nav>,
    from: String,
    to: String,
    pending: usize,
    corrections: usize,
    held: usize,
    counts: Vec<Vec<String>>,
    entries: Vec<lists::ListEntry>,
    runs: Vec<Summary>,
    can_update: bool,
}

pub async fn overview(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<Period>,
) -> Result<Response, WebError> {
    let (from, to) = (date(&p.from, "開始日")?, date(&p.to, "終了日")?);
    let actor = ctx.actor.clone();
    let (plan, entries, runs) = blocking(&state, move |h| {
        let plan = h.export_preview(&actor, from, to)?;
        let entries = h.export_error_list(&actor, &plan.run)?;
        Ok((plan.run, entries, h.export_runs(&actor)?))
    })
    .await?;
    let html = render(&OverviewPage {
        nav: Some(Nav::of(&ctx)),
        from: p.from,
        to: p.to,
        pending: plan.rows.len(),
        corrections: plan.rows.iter().filter(|r| r.correction).count(),
        held: plan.held.len(),
        counts: lists::count_table(&plan),
        entries,
        runs: runs.iter().map(summary).collect(),
        can_update: ctx.actor.rights().allows(Function::InputData, Level::Update),
    })?;
    Ok(([(header::CACHE_CONTROL, "no-store")], html).into_response())
}

#[derive(Template)]
#[template(path = "export_run.html")]
struct RunPage {
    nav: Option<Nav>,
    run: Summary,
    full: ExportRun,
    counts: Vec<Vec<String>>,
    entries: Vec<lists::ListEntry>,
    password: Option<String>,
    message: Option<String>,
    can_update: bool,
}

async fn run_page(
    state: &Arc<AppState>,
    ctx: &Ctx,
    id: String,
    password: Option<String>,
    message: Option<String>,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let (run, entries) = blocking(state, move |h| {
        let run = h.export_run(&actor, &id)?;
        let entries = h.export_error_list(&actor, &run)?;
        Ok((run, entries))
    })
    .await?;
    let html = render(&RunPage {
        nav: Some(Nav::of(ctx)),
        run: summary(&run),
        counts: lists::count_table(&run),
        full: run,
        entries,
        password,
        message,
        can_update: ctx.actor.rights().allows(Function::InputData, Level::Update),
    })?;
    // The page may carry the password: never kept by a cache.
    Ok(([(header::CACHE_CONTROL, "no-store")], html).into_response())
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    run_page(&state, &ctx, id, None, None).await
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Form(p): Form<Period>,
) -> Result<Response, WebError> {
    let (from, to) = (date(&p.from, "開始日")?, date(&p.to, "終了日")?);
    let actor = ctx.actor.clone();
    let created = blocking(&state, move |h| h.export_create(&actor, from, to)).await?;
    let msg = format!("書き出し {} を作成しました（{} 件）。", created.run.id, created.run.rows.len());
    run_page(&state, &ctx, created.run.id, Some(created.password), Some(msg)).await
}

pub async fn download(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let (info, bytes) = blocking(&state, move |h| h.export_download(&actor, &id)).await?;
    let disposition = format!("attachment; filename=\"{}\"", info.name);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

#[derive(serde::Deserialize)]
pub struct StepForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    reason: String,
    /// The downloaded copy was destroyed (a checkbox: `on`).
    #[serde(default)]
    copy_destroyed: Option<String>,
}

/// Hand-over or cancellation; a refusal is shown on the run's page.
pub async fn step(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path((id, what)): Path<(String, String)>,
    Form(f): Form<StepForm>,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let rid = id.clone();
    let done = blocking(&state, move |h| {
        Ok(match what.as_str() {
            "handover" => {
                h.export_hand_over(&actor, &rid, &f.to).map(|_| "引渡しを記録し、ファイルを消去しました。")?
            }
            "cancel" => h
                .export_cancel(&actor, &rid, &f.reason, f.copy_destroyed.as_deref() == Some("on"))
                .map(|_| "取り消しました。申請は次の書き出しに戻りました。")?,
            _ => return Err(crate::error::Error::NotFound(what)),
        })
    })
    .await;
    let msg = match done {
        Ok(m) => m.to_owned(),
        Err(WebError::BadRequest(m)) => m,
        Err(e) => return Err(e),
    };
    run_page(&state, &ctx, id, None, Some(msg)).await
}

/// The subsidy system's result file (posted by `static/export.js` with the CSRF header).
pub async fn result(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    // The form's other fields (the CSRF token, which travels in the header) are skipped.
    let field = loop {
        let f = multipart
            .next_field()
            .await
            .map_err(|e| WebError::BadRequest(format!("アップロードを読めません: {e}")))?
            .ok_or_else(|| WebError::BadRequest("ファイルが選ばれていません。".into()))?;
        if f.name() == Some("file") {
            break f;
        }
    };
    let file = field.file_name().unwrap_or("result.csv").to_owned();
    let bytes = field.bytes().await.map_err(|e| WebError::BadRequest(format!("{file}: 読み込めません: {e}")))?;
    if bytes.is_empty() {
        return Err(WebError::BadRequest(format!("{file}: 空のファイルです。")));
    }
    let actor = ctx.actor.clone();
    let rid = id.clone();
    let r = blocking(&state, move |h| h.export_result(&actor, &rid, &bytes)).await?;
    let msg = format!(
        "{file}: 受理 {} 件、不受理 {} 件（審査に差し戻し）、登録済み {} 件、エラー {} 件",
        r.accepted,
        r.rejected,
        r.unchanged,
        r.errors.len()
    );
    run_page(&state, &ctx, id, None, Some(msg)).await
}

/// The error check list (names: the route needs a recent second factor), `csv` or `pdf`.
pub async fn errors_list(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path((id, fmt)): Path<(String, String)>,
) -> Result<Response, WebError> {
    list(state, ctx, id, "errors", fmt).await
}

/// The count list, `csv` or `pdf`.
pub async fn counts_list(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path((id, fmt)): Path<(String, String)>,
) -> Result<Response, WebError> {
    list(state, ctx, id, "counts", fmt).await
}

async fn list(
    state: Arc<AppState>,
    ctx: Ctx,
    id: String,
    what: &'static str,
    fmt: String,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let f = fmt.clone();
    let bytes = blocking(&state, move |h| {
        let run = h.export_run(&actor, &id)?;
        let enc = crate::csvout::Encoding::Utf8Bom;
        match (what, f.as_str()) {
            ("errors", "csv") => lists::errors_csv(&h.export_error_list(&actor, &run)?, enc),
            ("errors", "pdf") => lists::errors_pdf(&run, &h.export_error_list(&actor, &run)?),
            ("counts", "csv") => lists::counts_csv(&run, enc),
            ("counts", "pdf") => lists::counts_pdf(&run),
            _ => Err(crate::error::Error::NotFound(f)),
        }
    })
    .await?;
    let kind = if fmt == "pdf" { "application/pdf" } else { "text/csv; charset=utf-8" };
    let disposition = format!("attachment; filename=\"{what}.{fmt}\"");
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
