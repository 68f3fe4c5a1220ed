//! The audit review pages: a filtered list, the monthly report and the CSV export.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{Html, Response};
use chrono::{Datelike, NaiveDate};

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::audit::report::{Filter, Monthly};

#[derive(serde::Deserialize, Default)]
pub struct FilterParams {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn date(s: &str, field: &str) -> Result<Option<NaiveDate>, WebError> {
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| WebError::BadRequest(format!("{field} は YYYY-MM-DD の形で入力してください。")))
}

impl FilterParams {
    fn filter(&self) -> Result<Filter, WebError> {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        Ok(Filter {
            user: opt(&self.user),
            action: opt(&self.action),
            target: opt(&self.target),
            from: date(&self.from, "開始日")?,
            to: date(&self.to, "終了日")?,
        })
    }

    fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("user", &self.user)
            .append_pair("action", &self.action)
            .append_pair("target", &self.target)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .finish()
    }
}

struct Row {
    seq: u64,
    at: String,
    actor: String,
    action: String,
    target: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    p: FilterParams,
    rows: Vec<Row>,
    export_query: String,
    limit: usize,
}

const LIMIT: usize = 500;

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<FilterParams>,
) -> Result<Html<String>, WebError> {
    let filter = p.filter()?;
    let actor = ctx.actor.clone();
    let entries = blocking(&state, move |h| h.audit_search(&actor, &filter, LIMIT)).await?;
    let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("JST");
    let rows = entries
        .into_iter()
        .map(|e| Row {
            seq: e.seq,
            at: e.at.with_timezone(&jst).format("%Y-%m-%d %H:%M:%S").to_string(),
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
        })
        .collect();
    let export_query = p.query_string();
    render(&AuditPage { nav: Some(Nav::of(&ctx)), p, rows, export_query, limit: LIMIT })
}

pub async fn export(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<FilterParams>,
) -> Result<Response, WebError> {
    let filter = p.filter()?;
    let actor = ctx.actor.clone();
    let bytes = blocking(&state, move |h| h.audit_csv(&actor, &filter)).await?;
    Ok(super::csv_download("audit.csv", bytes))
}

#[derive(serde::Deserialize)]
pub struct MonthParam {
    #[serde(default)]
    month: String,
}

#[derive(Template)]
#[template(path = "audit_report.html")]
struct ReportPage {
    nav: Option<Nav>,
    month: String,
    r: Monthly,
}

pub async fn report(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<MonthParam>,
) -> Result<Html<String>, WebError> {
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"));
    let (y, m) = if q.month.is_empty() {
        (today.year(), today.month())
    } else {
        let d = NaiveDate::parse_from_str(&format!("{}-01", q.month), "%Y-%m-%d")
            .map_err(|_| WebError::BadRequest("月は YYYY-MM の形で入力してください。".into()))?;
        (d.year(), d.month())
    };
    let actor = ctx.actor.clone();
    let r = blocking(&state, move |h| h.audit_report(&actor, y, m)).await?;
    render(&ReportPage { nav: Some(Nav::of(&ctx)), month: format!("{y:04}-{m:02}"), r })
}
