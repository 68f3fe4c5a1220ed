//! Mailroom screens: the receipt ledger (log a batch, filter, CSV for Excel) and a batch's
//! page with upload and live progress (pages received / read / failed, polled every 2 s).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::auth::{Function, Level};
use crate::capture::batch::{Batch, Channel, CsvEncoding, Filter, NewBatch, Status, municipalities};
use crate::capture::ingest::{Source, ingest_upload};
use crate::store::BatchCounts;

/// Largest upload in one request (a few hundred 300 dpi pages).
pub const MAX_UPLOAD_BYTES: usize = 512 * 1024 * 1024;

struct Row {
    id: String,
    received_on: String,
    municipality: String,
    channel: &'static str,
    expected: u32,
    received: usize,
    read: usize,
    forms: usize,
    attachments: usize,
    unclassified: usize,
    failed: usize,
    status: &'static str,
    mismatch: bool,
}

fn row(b: &Batch, c: &BatchCounts) -> Row {
    let status = Status::of(b, c);
    Row {
        id: b.id.clone(),
        received_on: b.received_on.to_string(),
        municipality: b.municipality.clone(),
        channel: b.channel.label_ja(),
        expected: b.expected_pages,
        received: c.received(),
        read: c.read(),
        forms: c.forms,
        attachments: c.attachments,
        unclassified: c.unclassified,
        failed: c.failed,
        status: status.label_ja(),
        mismatch: status == Status::Mismatch,
    }
}

#[derive(Template)]
#[template(path = "batches.html")]
struct LedgerPage {
    nav: Option<Nav>,
    rows: Vec<Row>,
    can_update: bool,
    municipalities: &'static [String],
    channels: Vec<(&'static str, &'static str)>,
    statuses: Vec<(&'static str, &'static str)>,
    today: String,
    filter_municipality: String,
    filter_from: String,
    filter_to: String,
    filter_status: String,
    query: String,
    message: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct LedgerQuery {
    #[serde(default)]
    municipality: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    encoding: String,
}

impl LedgerQuery {
    fn filter(&self) -> Result<Filter, WebError> {
        let date = |s: &str, field: &str| -> Result<Option<chrono::NaiveDate>, WebError> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            s.trim()
                .parse()
                .map(Some)
                .map_err(|_| WebError::BadRequest(format!("{field}: 「{s}」は日付ではありません（例: 2026-11-25）")))
        };
        Ok(Filter {
            municipality: Some(self.municipality.clone()).filter(|m| !m.is_empty()),
            from: date(&self.from, "期間（開始）")?,
            to: date(&self.to, "期間（終了）")?,
            status: Some(self.status.clone()).filter(|s| !s.is_empty()),
        })
    }

    fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("municipality", &self.municipality)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .append_pair("status", &self.status)
            .finish()
    }
}

const STATUSES: [Status; 5] = [Status::Waiting, Status::Receiving, Status::Complete, Status::Mismatch, Status::Closed];

async fn ledger_page(
    state: &Arc<AppState>,
    ctx: &Ctx,
    q: &LedgerQuery,
    message: Option<String>,
) -> Result<Html<String>, WebError> {
    let filter = q.filter()?;
    let actor = ctx.actor.clone();
    let rows = blocking(state, move |h| h.batches(&actor, &filter)).await?;
    render(&LedgerPage {
        nav: Some(Nav::of(ctx)),
        rows: rows.iter().map(|(b, c)| row(b, c)).collect(),
        can_update: ctx.actor.rights().allows(Function::Capture, Level::Update),
        municipalities: municipalities(),
        channels: Channel::ALL.iter().map(|c| (c.key(), c.label_ja())).collect(),
        statuses: STATUSES.iter().map(|s| (s.key(), s.label_ja())).collect(),
        today: crate::jp::today().to_string(),
        filter_municipality: q.municipality.clone(),
        filter_from: q.from.clone(),
        filter_to: q.to.clone(),
        filter_status: q.status.clone(),
        query: q.query_string(),
        message,
    })
}

pub async fn ledger(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LedgerQuery>,
) -> Result<Html<String>, WebError> {
    ledger_page(&state, &ctx, &q, None).await
}

pub async fn ledger_csv(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LedgerQuery>,
) -> Result<Response, WebError> {
    let filter = q.filter()?;
    let enc = if q.encoding == "cp932" { CsvEncoding::Cp932 } else { CsvEncoding::Utf8Bom };
    let actor = ctx.actor.clone();
    let bytes = blocking(&state, move |h| h.ledger_csv(&actor, &filter, enc)).await?;
    let charset = if enc == CsvEncoding::Cp932 { "Shift_JIS" } else { "utf-8" };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, format!("text/csv; charset={charset}")),
            (axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"ledger.csv\"".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Form(new): Form<NewBatch>,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let b = blocking(&state, move |h| h.create_batch(&actor, &new)).await?;
    if let Some(root) = &state.hot_folder {
        let (root, id) = (root.clone(), b.id.clone());
        blocking(&state, move |_| crate::capture::hotfolder::batch_folder(&root, &id).map(|_| ())).await?;
    }
    Ok(Redirect::to(&format!("/batches/{}", b.id)).into_response())
}

#[derive(Template)]
#[template(path = "batch.html")]
struct BatchPage {
    nav: Option<Nav>,
    b: Batch,
    row: Row,
    can_update: bool,
    hot_folder: Option<String>,
    closed_note: String,
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let (b, c) = blocking(&state, move |h| h.batch(&actor, &id)).await?;
    render(&BatchPage {
        nav: Some(Nav::of(&ctx)),
        row: row(&b, &c),
        hot_folder: state.hot_folder.as_ref().map(|r| r.join(&b.id).display().to_string()),
        closed_note: b
            .closed
            .as_ref()
            .map(|c| format!("{}（{}）{}", c.at.format("%Y-%m-%d %H:%M"), c.by, c.note))
            .unwrap_or_default(),
        can_update: ctx.actor.rights().allows(Function::Capture, Level::Update) && b.closed.is_none(),
        b,
    })
}

/// Live progress of a batch (the page polls it).
#[derive(serde::Serialize)]
pub struct Progress {
    expected: u32,
    received: usize,
    read: usize,
    forms: usize,
    unclassified: usize,
    attachments: usize,
    failed: usize,
    /// Files uploaded or in the hot folder, not yet stored.
    queued: usize,
    status: &'static str,
    status_label: &'static str,
}

pub async fn progress(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<Progress>, WebError> {
    let actor = ctx.actor.clone();
    let key = id.clone();
    let (b, c) = blocking(&state, move |h| h.batch(&actor, &key)).await?;
    let uploading = state.uploads.lock().expect("lock").get(&id).copied().unwrap_or(0);
    let waiting = state.hot_folder.as_ref().map_or(0, |r| crate::capture::hotfolder::waiting(r, &id));
    let status = Status::of(&b, &c);
    Ok(Json(Progress {
        expected: b.expected_pages,
        received: c.received(),
        read: c.read(),
        forms: c.forms,
        unclassified: c.unclassified,
        attachments: c.attachments,
        failed: c.failed,
        queued: uploading + waiting,
        status: status.key(),
        status_label: status.label_ja(),
    }))
}

/// Takes the uploaded scans into memory (never onto disk in plaintext), answers at once, and
/// ingests them into the batch in the background; the page's progress shows them arrive.
pub async fn upload(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let key = id.clone();
    let (b, _) = blocking(&state, move |h| h.batch(&actor, &key)).await?;
    ctx.actor.require(Function::Capture, Level::Update).map_err(WebError::from)?;
    if b.closed.is_some() {
        return Err(WebError::BadRequest(format!("{id} は完了済みです。取り込むには新しい受付を登録してください。")));
    }
    let mut files = Vec::new();
    while let Some(field) =
        multipart.next_field().await.map_err(|e| WebError::BadRequest(format!("アップロードを読めません: {e}")))?
    {
        let name = field.file_name().unwrap_or("upload").to_owned();
        let bytes = field.bytes().await.map_err(|e| WebError::BadRequest(format!("{name}: 読み込めません: {e}")))?;
        if !bytes.is_empty() || !name.is_empty() {
            files.push(Source::Upload { name, bytes: bytes.to_vec() });
        }
    }
    if files.is_empty() {
        return Err(WebError::BadRequest("ファイルが選ばれていません。".into()));
    }
    let n = files.len();
    *state.uploads.lock().expect("lock").entry(id.clone()).or_default() += n;
    let st = state.clone();
    let actor = ctx.actor.clone();
    tokio::task::spawn_blocking(move || {
        // The progress count comes down however the ingest ends (a panic included).
        struct Done(Arc<AppState>, String, usize);
        impl Drop for Done {
            fn drop(&mut self) {
                let mut uploads = self.0.uploads.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(q) = uploads.get_mut(&self.1) {
                    *q = q.saturating_sub(self.2);
                }
            }
        }
        let _done = Done(st.clone(), id.clone(), n);
        let result = ingest_upload(&st.hozon, &actor, &id, files);
        if let Err(e) = result {
            eprintln!("hozon: upload into {id} failed: {}", crate::error::chain(&e));
        }
    });
    Ok((axum::http::StatusCode::ACCEPTED, Json(serde_json::json!({ "accepted": n }))).into_response())
}

#[derive(serde::Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    note: String,
}

pub async fn close(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<CloseForm>,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let key = id.clone();
    blocking(&state, move |h| h.close_batch(&actor, &key, &form.note)).await?;
    Ok(Redirect::to(&format!("/batches/{id}")).into_response())
}
