//! The classification queue screen (未分類の仕分け): each page no template fitted, with its
//! thumbnail, the document type its text suggests, and a choice of every form and document
//! type to file it as.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::app::Filing;
use crate::index::vocab::form_label;
use crate::store::RecordId;

struct Row {
    id: String,
    received: String,
    batch: String,
    /// The suggested choice's value and label (empty: none).
    suggestion: String,
    suggestion_label: String,
    my_number: bool,
}

#[derive(Template)]
#[template(path = "sorting.html")]
struct SortingPage {
    nav: Option<Nav>,
    total: usize,
    rows: Vec<Row>,
    /// (value, label) of every choice: forms first, then document types.
    choices: Vec<(String, String)>,
    can_file: bool,
    can_see_my_number: bool,
}

pub async fn queue(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let (total, items) = blocking(&state, move |h| h.sorting_queue(&actor, 100)).await?;
    let h = &state.hozon;
    let mut choices: Vec<(String, String)> = h
        .forms
        .iter()
        .map(|t| {
            let sheet = t.sheet.map(|s| format!("（{s}枚目）")).unwrap_or_default();
            (format!("form:{}", t.id()), format!("様式：{}{sheet}", t.title))
        })
        .collect();
    choices.extend(h.doc_types.iter().map(|d| (format!("type:{}", d.key), format!("書類：{}", d.label))));
    let rows = items
        .into_iter()
        .map(|i| Row {
            id: i.id.to_string(),
            received: i.received_at.with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M").to_string(),
            batch: i.batch.unwrap_or_default(),
            suggestion_label: i.suggestion.as_deref().map(form_label).unwrap_or_default(),
            suggestion: i.suggestion.map(|k| format!("type:{k}")).unwrap_or_default(),
            my_number: i.my_number,
        })
        .collect();
    let rights = ctx.actor.rights();
    render(&SortingPage {
        nav: Some(Nav::of(&ctx)),
        total,
        rows,
        choices,
        can_file: rights.allows(crate::auth::Function::Review, crate::auth::Level::Update),
        can_see_my_number: rights.my_number,
    })
}

#[derive(serde::Deserialize)]
pub struct FileForm {
    filing: String,
}

pub async fn file(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<FileForm>,
) -> Result<Response, WebError> {
    let id = RecordId::parse(&id).ok_or(WebError::NotFound)?;
    let filing = Filing::parse(&f.filing).ok_or_else(|| WebError::BadRequest("仕分け先を選んでください。".into()))?;
    let actor = ctx.actor.clone();
    let rec = blocking(&state, move |h| h.file_page(&actor, &id, &filing)).await?;
    // A page filed as a form has a draft to check next; an attachment is done.
    Ok(match rec.doc_type {
        None => Redirect::to(&format!("/review/{}", rec.id)),
        Some(_) => Redirect::to("/sorting"),
    }
    .into_response())
}
