//! The machine API. `POST /api/cases`: the subsidy system pushes case records as JSON (one
//! object or a list), idempotent by recipient number; the answer counts what was created,
//! updated or unchanged and names each refused item with its field.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use unicode_normalization::UnicodeNormalization;

use super::guard::ApiCtx;
use super::{AppState, WebError, blocking};
use crate::cases::import::{RowError, case_fields};

pub async fn post_cases(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<ApiCtx>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| WebError::BadRequest(format!("JSON として読めません: {e}")))?;
    let items = match value {
        serde_json::Value::Array(v) => v,
        serde_json::Value::Object(_) => vec![value],
        _ => return Err(WebError::BadRequest("症例はオブジェクトかその配列で送ってください".into())),
    };
    let (mut rows, mut errors) = (Vec::new(), Vec::<RowError>::new());
    for (i, item) in items.iter().enumerate() {
        let get = |field: &str| -> String {
            match item.get(field) {
                Some(serde_json::Value::String(s)) => s.trim().nfkc().collect(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => String::new(),
            }
        };
        match case_fields(&get, i + 1) {
            Ok(r) => rows.push(r),
            Err(e) => errors.push(e),
        }
    }
    let actor = ctx.actor.clone();
    let source = actor.name().to_owned();
    let report = blocking(&state, move |h| h.upsert_cases(&actor, rows, &source, errors)).await?;
    let errors: Vec<serde_json::Value> = report
        .errors
        .iter()
        .map(|e| serde_json::json!({ "item": e.line, "field": e.field, "message": e.message }))
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = serde_json::json!({
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "errors": errors,
    });
    Ok((status, Json(body)).into_response())
}
