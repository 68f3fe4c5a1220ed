//! The review desk: the queue (oldest first, by batch and form) and the screen where a
//! reviewer checks one draft field by field beside each field's image. Keyboard flow in
//! `static/review.js` (Enter accepts and moves on, typing corrects, Tab moves, F2 marks for a
//! second look); without JavaScript the form still submits.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::app::{CaseChoice, QueueFilter};
use crate::drafts::review::{Submission, shown_value};
use crate::forms::template::FieldType;
use crate::index::vocab::form_label;
use crate::store::RecordId;

#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    batch: String,
    #[serde(default)]
    form: String,
    #[serde(default)]
    second_look: String,
}

impl QueueQuery {
    fn filter(&self) -> QueueFilter {
        QueueFilter {
            batch: Some(self.batch.trim().to_owned()).filter(|b| !b.is_empty()),
            form: Some(self.form.trim().to_owned()).filter(|f| !f.is_empty()),
            second_look: !self.second_look.is_empty(),
        }
    }

    fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("batch", self.batch.trim())
            .append_pair("form", self.form.trim())
            .append_pair("second_look", &self.second_look)
            .finish()
    }
}

struct QueueRow {
    id: String,
    received: String,
    form: String,
    batch: String,
    second_look: bool,
}

#[derive(Template)]
#[template(path = "review_queue.html")]
struct QueuePage {
    nav: Option<Nav>,
    total: usize,
    rows: Vec<QueueRow>,
    forms: Vec<(String, String)>,
    batch: String,
    form: String,
    second_look: bool,
    query: String,
}

pub async fn queue(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<QueueQuery>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let filter = q.filter();
    let (total, items) = blocking(&state, move |h| h.review_queue(&actor, &filter, 200)).await?;
    let rows = items
        .into_iter()
        .map(|i| QueueRow {
            id: i.id.to_string(),
            received: i
                .received_at
                .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap())
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            form: form_label(&i.form),
            batch: i.batch.unwrap_or_default(),
            second_look: i.second_look,
        })
        .collect();
    render(&QueuePage {
        nav: Some(Nav::of(&ctx)),
        total,
        rows,
        // The classes drafts are filed under: one per form, whatever its sheets.
        forms: {
            let mut classes: Vec<(String, String)> = Vec::new();
            for c in state.hozon.forms.iter().map(|t| t.class()) {
                if !classes.iter().any(|(k, _)| k == c) {
                    classes.push((c.to_owned(), form_label(c)));
                }
            }
            classes
        },
        batch: q.batch.clone(),
        form: q.form.clone(),
        second_look: !q.second_look.is_empty(),
        query: q.query_string(),
    })
}

struct FieldRow {
    name: String,
    label: String,
    value: String,
    confidence: String,
    flags: String,
    flagged: bool,
    my_number: bool,
    second_look: bool,
    hint: &'static str,
}

struct CandidateRow {
    recipient_no: String,
    name: String,
    score: String,
    reasons: String,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    nav: Option<Nav>,
    id: String,
    form: String,
    title: String,
    status: String,
    fields: Vec<FieldRow>,
    masked: bool,
    linked: Option<String>,
    automatic: Option<String>,
    candidates: Vec<CandidateRow>,
    corrections: Vec<(String, String, String, String, String)>,
    /// The subsidy system's refusal, while it is not verified again.
    returned: Option<String>,
    can_update: bool,
    verified: bool,
    query: String,
    q_batch: String,
    q_form: String,
    q_second: String,
    message: Option<String>,
}

fn parse_id(s: &str) -> Result<RecordId, WebError> {
    RecordId::parse(s).ok_or(WebError::NotFound)
}

async fn review_page(
    state: &Arc<AppState>,
    ctx: &Ctx,
    id: RecordId,
    q: &QueueQuery,
    message: Option<String>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let v = blocking(state, move |h| h.review_view(&actor, &id)).await?;
    let second = v.draft.review.as_ref().map(|r| r.second_look.clone()).unwrap_or_default();
    let fields = v
        .order
        .iter()
        .map(|&i| {
            let f = &v.draft.fields[i];
            FieldRow {
                name: f.name.clone(),
                label: f.label.clone(),
                value: match f.kind {
                    FieldType::Checkbox => if f.value == "true" { "あり" } else { "なし" }.to_owned(),
                    _ => shown_value(f, false),
                },
                confidence: format!("{:.0}%", f.confidence * 100.0),
                flags: f.flags.iter().map(|x| x.message_ja()).collect::<Vec<_>>().join("／"),
                flagged: f.flagged(),
                my_number: f.kind == FieldType::MyNumber,
                second_look: second.contains(&f.name),
                hint: match f.kind {
                    FieldType::Date => "例: 昭和45年3月2日 / 1970-03-02",
                    FieldType::Checkbox => "あり / なし",
                    FieldType::MyNumber => "12桁",
                    _ => "",
                },
            }
        })
        .collect();
    let automatic = v.case_match.automatic().map(|(no, how)| match no.as_str() {
        "" => "閲覧停止中の受給者".to_owned(),
        no => format!("受給者番号 {no}（{}）", how.label_ja()),
    });
    let candidates = v
        .case_match
        .candidates
        .iter()
        .map(|c| CandidateRow {
            recipient_no: c.recipient_no.clone(),
            name: c.name.clone(),
            score: format!("{:.0}%", c.score * 100.0),
            reasons: c.reasons.join("・"),
        })
        .collect();
    let corrections = v
        .draft
        .review
        .iter()
        .flat_map(|r| r.corrections.iter())
        .map(|c| {
            let label = v.draft.field(&c.field).map_or(c.field.clone(), |f| f.label.clone());
            (
                c.at.with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M").to_string(),
                c.by.clone(),
                label,
                format!("{} → {}", c.old, c.new),
                c.reason.clone(),
            )
        })
        .collect();
    render(&ReviewPage {
        nav: Some(Nav::of(ctx)),
        id: v.id.to_string(),
        form: form_label(&v.draft.form),
        title: v.draft.title.clone(),
        status: v.draft.review.as_ref().map_or("未確認", |r| r.status.label_ja()).to_owned(),
        fields,
        masked: v.masked,
        linked: v.draft.case.as_ref().map(|c| format!("受給者番号 {}（{}）", c.recipient_no, c.how.label_ja())),
        automatic,
        candidates,
        corrections,
        returned: v.draft.returned.as_ref().filter(|_| !v.draft.verified()).map(|r| {
            format!(
                "医療費助成事務システムで不受理（{} {}、{}）：{}",
                r.run,
                r.key,
                r.at.with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M"),
                r.reason
            )
        }),
        can_update: ctx.actor.rights().allows(crate::auth::Function::Review, crate::auth::Level::Update),
        verified: v.draft.review.as_ref().is_some_and(|r| r.status == crate::drafts::review::ReviewStatus::Verified),
        query: q.query_string(),
        q_batch: q.batch.clone(),
        q_form: q.form.clone(),
        q_second: q.second_look.clone(),
        message,
    })
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<QueueQuery>,
) -> Result<Html<String>, WebError> {
    review_page(&state, &ctx, parse_id(&id)?, &q, None).await
}

pub async fn field_image(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path((id, field)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let actor = ctx.actor;
    let png = blocking(&state, move |h| h.field_image(&actor, &id, &field)).await?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, no-store")], png).into_response())
}

/// The posted form: `v.<field>` values, `look` for each field marked for a second look,
/// `my_number_confirm`, `case` (`auto`, `new` or a recipient number), the queue filter.
fn submission(pairs: &[(String, String)]) -> (Submission, CaseChoice, QueueQuery) {
    let mut sub = Submission::default();
    let mut choice = CaseChoice::Automatic;
    let mut q = QueueQuery::default();
    for (k, v) in pairs {
        match k.as_str() {
            "look" => {
                sub.second_look.insert(v.clone());
            }
            "my_number_confirm" => sub.my_number_confirm = v.clone(),
            "case" => {
                choice = match v.as_str() {
                    "" | "auto" => CaseChoice::Automatic,
                    "new" => CaseChoice::Provisional,
                    no => CaseChoice::Case(no.to_owned()),
                }
            }
            "batch" => q.batch = v.clone(),
            "form" => q.form = v.clone(),
            "second_look" => q.second_look = v.clone(),
            _ => {
                if let Some(name) = k.strip_prefix("v.") {
                    sub.values.insert(name.to_owned(), v.clone());
                }
            }
        }
    }
    (sub, choice, q)
}

/// Applies the reviewer's submission and goes on to the next draft in the queue (same
/// filter); a refused submission comes back with the reason and nothing changed.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let (sub, choice, q) = submission(&pairs);
    let actor = ctx.actor.clone();
    let filter = q.filter();
    let rid = id.clone();
    let result = blocking(&state, move |h| {
        h.submit_review(&actor, &rid, &sub, &choice)?;
        h.review_next(&actor, &filter, Some(&rid))
    })
    .await;
    match result {
        Ok(Some(next)) => Ok(Redirect::to(&format!("/review/{next}?{}", q.query_string())).into_response()),
        Ok(None) => Ok(Redirect::to(&format!("/review?{}&done=1", q.query_string())).into_response()),
        Err(WebError::BadRequest(m)) => {
            let page = review_page(&state, &ctx, id, &q, Some(m)).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(serde::Deserialize)]
pub struct CorrectForm {
    field: String,
    value: String,
    reason: String,
}

/// A correction after verification (訂正請求), with its reason.
pub async fn correct(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<CorrectForm>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let actor = ctx.actor.clone();
    let rid = id.clone();
    blocking(&state, move |h| h.correct_value(&actor, &rid, &f.field, &f.value, &f.reason)).await?;
    Ok(Redirect::to(&format!("/review/{id}")).into_response())
}
