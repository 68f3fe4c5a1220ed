//! The case page (受給者台帳の記録: documents, history, inquiries log, status) and the data
//! subject's requests (find the person, export an encrypted package, suspend). URLs carry the
//! case's keyed-hash id, never the recipient number; lookups by name, birth date or My Number
//! are POSTed so the values never sit in an address or a browser's history.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::app::PersonQuery;
use crate::auth::{Function, Level, Role};
use crate::cases::CaseStatus;
use crate::index::vocab::form_label;

struct PageRow {
    id: String,
    form: String,
    received: String,
    review: String,
    link: String,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    nav: Option<Nav>,
    key: String,
    c: crate::cases::CaseFields,
    provisional: bool,
    /// A provisional case the subsidy system's result replaced: the number it moved to.
    merged_into: Option<String>,
    suspended: bool,
    source: String,
    updated: String,
    pages: Vec<PageRow>,
    history: Vec<(String, String, String, String)>,
    inquiries: Vec<crate::cases::Inquiry>,
    statuses: Vec<(&'static str, &'static str)>,
    steps: Vec<(&'static str, bool)>,
    can_update: bool,
    can_review: bool,
    /// May lift the suspension (cases=update or the security officer).
    can_lift: bool,
    can_export: bool,
    today: String,
    message: Option<String>,
}

fn key_ok(key: &str) -> Result<String, WebError> {
    (key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit())).then(|| key.to_owned()).ok_or(WebError::NotFound)
}

async fn case_page(
    state: &Arc<AppState>,
    ctx: &Ctx,
    key: String,
    message: Option<String>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let f = blocking(state, move |h| h.case_file(&actor, &key)).await?;
    let status = f.case.current.status;
    let steps = [CaseStatus::Received, CaseStatus::UnderReview, CaseStatus::Approved, CaseStatus::Notified]
        .into_iter()
        .map(|s| {
            let reached = match (s, status) {
                (CaseStatus::Approved, CaseStatus::Rejected) => true,
                _ => order(status) >= order(s),
            };
            (if s == CaseStatus::Approved && status == CaseStatus::Rejected { "非認定" } else { s.label_ja() }, reached)
        })
        .collect();
    let pages = f
        .pages
        .iter()
        .map(|p| PageRow {
            id: p.id.to_string(),
            form: form_label(&p.form),
            received: p.received_at.format("%Y-%m-%d").to_string(),
            review: p.review.map_or("未確認", |r| r.label_ja()).to_owned(),
            link: p.link.as_ref().map(|l| l.how.label_ja()).unwrap_or_default(),
        })
        .collect();
    let history = f
        .case
        .history
        .iter()
        .rev()
        .map(|v| {
            (
                v.valid_until.format("%Y-%m-%d %H:%M").to_string(),
                v.fields.status.label_ja().to_owned(),
                v.fields.application_no.clone(),
                v.source.clone(),
            )
        })
        .collect();
    render(&CasePage {
        nav: Some(Nav::of(ctx)),
        key: f.key.clone(),
        c: f.case.current.clone(),
        provisional: f.case.provisional,
        merged_into: f.case.merged_into.clone(),
        suspended: f.suspended,
        source: f.case.source.clone(),
        updated: f.case.updated_at.with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M").to_string(),
        pages,
        history,
        inquiries: f.case.inquiries.clone(),
        statuses: CaseStatus::ALL.iter().map(|s| (s.key(), s.label_ja())).collect(),
        steps,
        can_update: ctx.actor.rights().allows(Function::Cases, Level::Update),
        can_review: ctx.actor.rights().allows(Function::Review, Level::View),
        can_lift: ctx.actor.rights().allows(Function::Cases, Level::Update)
            || ctx.actor.role() == Some(Role::SecurityOfficer),
        can_export: ctx.actor.rights().allows(Function::Export, Level::Update),
        today: crate::jp::today().to_string(),
        message,
    })
}

fn order(s: CaseStatus) -> u8 {
    match s {
        CaseStatus::Received => 0,
        CaseStatus::UnderReview => 1,
        CaseStatus::Approved | CaseStatus::Rejected => 2,
        CaseStatus::Notified => 3,
    }
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(key): Path<String>,
) -> Result<Html<String>, WebError> {
    case_page(&state, &ctx, key_ok(&key)?, None).await
}

#[derive(serde::Deserialize)]
pub struct StatusForm {
    status: String,
}

/// Runs `f` on case `key` (checked to be a case id) off the executor.
async fn on_case<T: Send + 'static>(
    state: &Arc<AppState>,
    ctx: &Ctx,
    key: &str,
    f: impl FnOnce(&crate::app::Hozon, &crate::auth::Actor, &str) -> crate::error::Result<T> + Send + 'static,
) -> Result<(String, T), WebError> {
    let key = key_ok(key)?;
    let actor = ctx.actor.clone();
    let k = key.clone();
    let out = blocking(state, move |h| f(h, &actor, &k)).await?;
    Ok((key, out))
}

fn to_case(key: &str) -> Response {
    Redirect::to(&format!("/cases/{key}")).into_response()
}

pub async fn set_status(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(key): Path<String>,
    Form(f): Form<StatusForm>,
) -> Result<Response, WebError> {
    let status = CaseStatus::parse(&f.status)
        .ok_or_else(|| WebError::BadRequest(format!("状態「{}」はありません", f.status)))?;
    let (key, _) = on_case(&state, &ctx, &key, move |h, a, k| h.set_case_status(a, k, status)).await?;
    Ok(to_case(&key))
}

#[derive(serde::Deserialize)]
pub struct InquiryForm {
    on: String,
    channel: String,
    note: String,
}

pub async fn add_inquiry(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(key): Path<String>,
    Form(f): Form<InquiryForm>,
) -> Result<Response, WebError> {
    let on =
        f.on.trim().parse().map_err(|_| WebError::BadRequest(format!("日付: 「{}」は日付ではありません", f.on)))?;
    let (key, ()) = on_case(&state, &ctx, &key, move |h, a, k| h.add_inquiry(a, k, on, &f.channel, &f.note)).await?;
    Ok(to_case(&key))
}

#[derive(serde::Deserialize)]
pub struct SuspendForm {
    #[serde(default)]
    reason: String,
}

/// 閲覧停止 with a reason. The person is then hidden from the officer who did it too (unless
/// they are the security officer), so they land on the person search with a message.
pub async fn suspend(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(key): Path<String>,
    Form(f): Form<SuspendForm>,
) -> Result<Response, WebError> {
    let (key, ()) = on_case(&state, &ctx, &key, move |h, a, k| h.suspend_case(a, k, &f.reason)).await?;
    if ctx.actor.role() == Some(Role::SecurityOfficer) {
        return Ok(to_case(&key));
    }
    Ok(Redirect::to("/persons?suspended=1").into_response())
}

/// Lifts a suspension (cases=update, or the security officer).
pub async fn unsuspend(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let (key, _) = on_case(&state, &ctx, &key, |h, a, k| h.lift_case_suspension(a, k)).await?;
    Ok(to_case(&key))
}

#[derive(serde::Deserialize)]
pub struct ExportForm {
    password: String,
}

/// The data subject's package: an AES-256 encrypted ZIP (needs a recent second factor).
pub async fn export(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(key): Path<String>,
    Form(f): Form<ExportForm>,
) -> Result<Response, WebError> {
    let (key, bytes) = on_case(&state, &ctx, &key, move |h, a, k| h.export_person(a, k, &f.password)).await?;
    let disposition = format!("attachment; filename=\"kaiji-{}.zip\"", &key[..8]);
    Ok(([(header::CONTENT_TYPE, "application/zip".to_owned()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response())
}

#[derive(Template)]
#[template(path = "persons.html")]
struct PersonsPage {
    nav: Option<Nav>,
    can_import: bool,
    found: Option<Vec<(String, String, String)>>,
    can_my_number: bool,
    message: Option<String>,
}

impl PersonsPage {
    fn new(ctx: &Ctx, found: Option<Vec<(String, String, String)>>, message: Option<String>) -> PersonsPage {
        PersonsPage {
            nav: Some(Nav::of(ctx)),
            can_import: ctx.actor.rights().allows(Function::Cases, Level::Update),
            found,
            can_my_number: ctx.actor.rights().my_number,
            message,
        }
    }
}

#[derive(serde::Deserialize, Default)]
pub struct PersonsQuery {
    #[serde(default)]
    suspended: String,
}

pub async fn persons(
    Extension(ctx): Extension<Ctx>,
    axum::extract::Query(q): axum::extract::Query<PersonsQuery>,
) -> Result<Html<String>, WebError> {
    let message = (!q.suspended.is_empty())
        .then(|| "閲覧停止にしました。以後この方の記録は情報セキュリティ責任者のみが参照できます。".to_owned());
    render(&PersonsPage::new(&ctx, None, message))
}

#[derive(serde::Deserialize)]
pub struct FindForm {
    #[serde(default)]
    recipient_no: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    my_number: String,
}

pub async fn find(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<FindForm>,
) -> Result<Html<String>, WebError> {
    let q = if !f.recipient_no.trim().is_empty() {
        PersonQuery::Recipient(f.recipient_no.trim().to_owned())
    } else if !f.my_number.trim().is_empty() {
        PersonQuery::MyNumber(f.my_number.trim().to_owned())
    } else if !f.name.trim().is_empty() {
        let birth = crate::drafts::parse_date(&f.birth_date)
            .ok_or_else(|| WebError::BadRequest(format!("生年月日: 「{}」は日付ではありません", f.birth_date)))?;
        PersonQuery::NameBirth { name: f.name.trim().to_owned(), birth }
    } else {
        return Err(WebError::BadRequest("受給者番号、氏名と生年月日、または個人番号を入力してください。".into()));
    };
    let actor = ctx.actor.clone();
    let found = blocking(&state, move |h| h.find_person(&actor, &q)).await?;
    render(&PersonsPage::new(&ctx, Some(found), None))
}

/// What an import did, for the page's script.
#[derive(serde::Serialize)]
pub struct ImportResult {
    file: String,
    created: usize,
    updated: usize,
    unchanged: usize,
    /// `N行目 field: reason` per refused row.
    errors: Vec<String>,
}

/// The subsidy system's CSV export uploaded on the person page (cases=update): UTF-8 or
/// Shift_JIS; good rows import, refused rows come back by line and field.
pub async fn import(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    mut multipart: Multipart,
) -> Result<Json<ImportResult>, WebError> {
    let field = multipart
        .next_field()
        .await
        .map_err(|e| WebError::BadRequest(format!("アップロードを読めません: {e}")))?
        .ok_or_else(|| WebError::BadRequest("ファイルが選ばれていません。".into()))?;
    let file = field.file_name().unwrap_or("upload.csv").to_owned();
    let bytes = field.bytes().await.map_err(|e| WebError::BadRequest(format!("{file}: 読み込めません: {e}")))?;
    if bytes.is_empty() {
        return Err(WebError::BadRequest(format!("{file}: 空のファイルです。")));
    }
    let actor = ctx.actor.clone();
    let name = file.clone();
    let r = blocking(&state, move |h| h.import_cases(&actor, &bytes, &name)).await?;
    Ok(Json(ImportResult {
        file,
        created: r.created,
        updated: r.updated,
        unchanged: r.unchanged,
        errors: r.errors.iter().map(ToString::to_string).collect(),
    }))
}
