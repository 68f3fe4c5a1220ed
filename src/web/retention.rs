//! Records officers' screens: disposal runs (plan, review with filter and sample, exclude with
//! a reason, submit, approve by a second officer, execute), the forecast, policies, boxes and
//! certificates.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::retention::run::{self, ItemStatus, Run, RunState};

struct RunRow {
    id: String,
    kind: &'static str,
    as_of: String,
    state: &'static str,
    due: usize,
    held: usize,
    excluded: usize,
    destroyed: usize,
    skipped: usize,
}

fn state_ja(s: &RunState) -> &'static str {
    match s {
        RunState::Draft => "確認中（下書き）",
        RunState::Submitted { .. } => "承認待ち",
        RunState::Approved { .. } => "承認済み",
        RunState::Executing { .. } => "実行中（中断）",
        RunState::Completed { .. } => "完了",
    }
}

fn row(r: &Run) -> RunRow {
    RunRow {
        id: r.id.clone(),
        kind: match r.kind {
            run::RunKind::Electronic => "電子記録",
            run::RunKind::Paper => "紙文書",
            run::RunKind::AuditLog => "監査ログ",
        },
        as_of: crate::jp::era_and_iso(r.as_of),
        state: state_ja(&r.state),
        due: r.count(|s| *s == ItemStatus::Due),
        held: r.count(|s| matches!(s, ItemStatus::Held { .. })),
        excluded: r.count(|s| matches!(s, ItemStatus::Excluded { .. })),
        destroyed: r.count(|s| *s == ItemStatus::Destroyed),
        skipped: r.count(|s| matches!(s, ItemStatus::Skipped { .. })),
    }
}

struct Bar {
    month: String,
    total: usize,
    width: usize,
    detail: String,
}

struct PolicyRow {
    class: String,
    title: String,
    years: u32,
    fiscal: bool,
    action: String,
    basis: String,
}

#[derive(Template)]
#[template(path = "retention.html")]
struct RetentionPage {
    nav: Option<Nav>,
    runs: Vec<RunRow>,
    bars: Vec<Bar>,
    policies: Vec<PolicyRow>,
    can_update: bool,
    /// Records whose stored disposal date differs from what the policy files now say.
    impact_earlier: Vec<(String, String, String, String)>,
    impact_later: usize,
    message: Option<String>,
}

pub async fn overview(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Html<String>, WebError> {
    overview_with(&state, &ctx, None).await
}

async fn overview_with(state: &Arc<AppState>, ctx: &Ctx, message: Option<String>) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let (runs, forecast, impact) = blocking(state, move |h| {
        let today = crate::jp::today();
        let impact = run::policy_impact(h, &actor)?;
        Ok((run::list(h, &actor)?, run::forecast(h, &actor, today, 12)?, impact))
    })
    .await?;
    let show = |d: Option<chrono::NaiveDate>| d.map_or("未到来".to_owned(), |d| d.to_string());
    let impact_earlier =
        impact.earlier.iter().take(200).map(|(id, c, o, n)| (id.clone(), c.clone(), show(*o), show(*n))).collect();
    let max = forecast.values().map(|c| c.values().sum::<usize>()).max().unwrap_or(1).max(1);
    let bars = forecast
        .iter()
        .map(|(month, classes)| {
            let total: usize = classes.values().sum();
            Bar {
                month: month.clone(),
                total,
                width: (total * 100 / max).max(1),
                detail: classes.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join("、"),
            }
        })
        .collect();
    let policies = state
        .hozon
        .policies
        .all()
        .map(|p| PolicyRow {
            class: p.class.clone(),
            title: p.title.clone(),
            years: p.years,
            fiscal: p.from_fiscal_year_end,
            action: match p.action {
                crate::retention::policy::Action::Destroy => "廃棄",
                crate::retention::policy::Action::Review => "確認のうえ廃棄",
                crate::retention::policy::Action::Transfer => "移管",
            }
            .to_owned(),
            basis: p.legal_basis.clone(),
        })
        .collect();
    let can_update = ctx.actor.rights().allows(crate::auth::Function::Retention, crate::auth::Level::Update);
    let mut runs: Vec<RunRow> = runs.iter().map(row).collect();
    runs.reverse();
    render(&RetentionPage {
        nav: Some(Nav::of(ctx)),
        runs,
        bars,
        policies,
        can_update,
        impact_earlier,
        impact_later: impact.later,
        message,
    })
}

#[derive(serde::Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    accept_earlier: Option<String>,
}

/// Re-dates records under the policy files; dates moving earlier need the explicit tick.
pub async fn apply_policies(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<ApplyForm>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let accept = form.accept_earlier.as_deref() == Some("on");
    let msg = match blocking(&state, move |h| run::apply_policies(h, &actor, accept)).await {
        Ok(i) => format!("方針を適用しました（早まる {} 件、遅くなる {} 件）。", i.earlier.len(), i.later),
        Err(WebError::BadRequest(_)) => {
            "廃棄可能日が早まる記録があります。内容を確認し、「早まることを承認する」を選んでから適用してください。"
                .into()
        }
        Err(e) => return Err(e),
    };
    overview_with(&state, &ctx, Some(msg)).await
}

pub async fn plan(State(state): State<Arc<AppState>>, Extension(ctx): Extension<Ctx>) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let r = blocking(&state, move |h| run::plan(h, &actor, crate::jp::today())).await?;
    Ok(Redirect::to(&format!("/retention/runs/{}", r.id)).into_response())
}

#[derive(serde::Deserialize, Default)]
pub struct ItemFilter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    class: String,
    /// Show every n-th item only (a sample for spot checks).
    #[serde(default)]
    sample: usize,
}

struct ItemRow {
    id: String,
    form: String,
    recipient_no: String,
    name: String,
    received: String,
    due: String,
    policy: String,
    status: String,
    note: String,
    openable: bool,
    excludable: bool,
    decidable: bool,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    nav: Option<Nav>,
    run: RunRow,
    f: ItemFilter,
    items: Vec<ItemRow>,
    shown_of: usize,
    people: String,
    can_submit: bool,
    can_approve: bool,
    can_execute: bool,
    has_certificate: bool,
    message: Option<String>,
}

async fn run_page(
    state: &Arc<AppState>,
    ctx: &Ctx,
    id: String,
    f: ItemFilter,
    message: Option<String>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let (status_f, class_f, sample) = (f.status.clone(), f.class.clone(), f.sample.max(1));
    let (r, views, shown_of) = blocking(state, move |h| {
        let r = run::get(h, &actor, &id)?;
        let matches = |i: &run::Item| {
            (status_f.is_empty() || status_f == run::status_ja(&i.status).0)
                && (class_f.is_empty() || class_f == i.class)
        };
        let filtered: Vec<&run::Item> = r.items.iter().filter(|i| matches(i)).collect();
        let shown_of = filtered.len();
        let page: Vec<&run::Item> = filtered.into_iter().step_by(sample).take(1000).collect();
        let views = run::item_views(h, &actor, &page)?;
        Ok((r, views, shown_of))
    })
    .await?;
    let draft = r.state == RunState::Draft;
    let items = views
        .into_iter()
        .map(|v| {
            let (_, status, note) = run::status_ja(&v.item.status);
            ItemRow {
                excludable: draft && v.item.status == ItemStatus::Due,
                decidable: draft && v.item.status == ItemStatus::AwaitingDecision,
                id: v.item.id,
                form: v.form,
                recipient_no: v.recipient_no,
                name: v.name,
                received: v.received,
                due: v.due,
                policy: v.policy,
                status: status.into(),
                note,
                openable: v.openable,
            }
        })
        .collect();
    let people = match &r.state {
        RunState::Submitted { by, .. } => format!("準備者 {by}"),
        RunState::Approved { preparer, approver, .. } | RunState::Executing { preparer, approver, .. } => {
            format!("準備者 {preparer} ／ 承認者 {approver}")
        }
        RunState::Completed { preparer, approver, .. } => format!("準備者 {preparer} ／ 承認者 {approver}"),
        RunState::Draft => format!("作成 {}", r.created_by),
    };
    let me = ctx.actor.name();
    let can_update = ctx.actor.rights().allows(crate::auth::Function::Retention, crate::auth::Level::Update);
    let electronic = r.kind != run::RunKind::Paper;
    render(&RunPage {
        nav: Some(Nav::of(ctx)),
        can_submit: can_update && draft && (r.kind == run::RunKind::AuditLog || r.count(|s| *s == ItemStatus::Due) > 0),
        can_approve: can_update && matches!(&r.state, RunState::Submitted { by, .. } if by != me),
        can_execute: can_update
            && electronic
            && matches!(r.state, RunState::Approved { .. } | RunState::Executing { .. }),
        has_certificate: matches!(r.state, RunState::Completed { .. }),
        run: row(&r),
        f,
        items,
        shown_of,
        people,
        message,
    })
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(f): Query<ItemFilter>,
) -> Result<Html<String>, WebError> {
    run_page(&state, &ctx, id, f, None).await
}

#[derive(serde::Deserialize)]
pub struct ExcludeForm {
    item: String,
    reason: String,
}

pub async fn exclude(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<ExcludeForm>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let rid = id.clone();
    let item = form.item.clone();
    let result = blocking(&state, move |h| run::exclude(h, &actor, &rid, &form.item, &form.reason)).await;
    let msg = match result {
        Ok(()) => format!("{item} を除外しました。"),
        Err(WebError::BadRequest(m)) => m,
        Err(e) => return Err(e),
    };
    run_page(&state, &ctx, id, ItemFilter::default(), Some(msg)).await
}

#[derive(serde::Deserialize, Default)]
pub struct StepForm {
    /// Execution asks the officer to confirm (a ticked box), server-side too.
    #[serde(default)]
    confirm: Option<String>,
}

/// submit / approve / execute.
pub async fn step(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path((id, what)): Path<(String, String)>,
    Form(form): Form<StepForm>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let rid = id.clone();
    if what == "execute" && form.confirm.as_deref() != Some("on") {
        let msg = "廃棄を実行するには「取り消せないことを確認しました」にチェックを入れてください。".to_owned();
        return run_page(&state, &ctx, id, ItemFilter::default(), Some(msg)).await;
    }
    let result = blocking(&state, move |h| {
        Ok(match what.as_str() {
            "submit" => run::submit(h, &actor, &rid)
                .map(|_| "確認済みとして提出しました。別の担当者の承認を待ちます。".to_owned())?,
            "approve" => run::approve(h, &actor, &rid).map(|_| "承認しました。".to_owned())?,
            "execute" => run::execute(h, &actor, &rid, |_, _| {}).map(|d| {
                let skipped = d.run.count(|s| matches!(s, ItemStatus::Skipped { .. }));
                format!("{} 件を廃棄し、廃棄証明書を発行しました。実行時の再確認で見送り {skipped} 件。", d.destroyed)
            })?,
            _ => return Err(crate::error::Error::NotFound(what)),
        })
    })
    .await;
    let msg = match result {
        Ok(m) => m,
        Err(WebError::BadRequest(m)) => m,
        Err(e) => return Err(e),
    };
    run_page(&state, &ctx, id, ItemFilter::default(), Some(msg)).await
}

pub async fn certificate(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let bytes = blocking(&state, move |h| {
        let entry = crate::retention::certificate::register(h, &actor)?
            .into_iter()
            .find(|e| e.run_id == id)
            .ok_or_else(|| crate::error::Error::NotFound(id.clone()))?;
        std::fs::read(&entry.file).map_err(|e| crate::error::Error::Io { path: entry.file.clone().into(), source: e })
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], bytes).into_response())
}

struct BoxRow {
    code: String,
    status: &'static str,
    sealed_on: String,
    location: String,
    contents: String,
    retrievals: usize,
}

#[derive(Template)]
#[template(path = "boxes.html")]
struct BoxesPage {
    nav: Option<Nav>,
    boxes: Vec<BoxRow>,
}

pub async fn boxes(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Html<String>, WebError> {
    use crate::retention::boxes::{self, BoxStatus};
    let actor = ctx.actor.clone();
    let list = blocking(&state, move |h| boxes::list(h, &actor)).await?;
    let boxes = list
        .into_iter()
        .map(|b| BoxRow {
            status: match b.status {
                BoxStatus::InOffice => "事務室",
                BoxStatus::AtContractor => "保管業者",
                BoxStatus::Out => "出庫中",
                BoxStatus::Destroyed => "廃棄済",
            },
            code: b.code,
            sealed_on: b.sealed_on.to_string(),
            location: b.location,
            contents: b.contents,
            retrievals: b.retrievals.len(),
        })
        .collect();
    render(&BoxesPage { nav: Some(Nav::of(&ctx)), boxes })
}

#[derive(serde::Deserialize)]
pub struct CsvQuery {
    #[serde(default)]
    encoding: String,
}

/// The run's list as CSV for the paper check (UTF-8 with BOM, or CP932).
pub async fn items_csv(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<CsvQuery>,
) -> Result<Response, WebError> {
    use crate::capture::batch::CsvEncoding;
    let enc = if q.encoding == "cp932" { CsvEncoding::Cp932 } else { CsvEncoding::Utf8Bom };
    let actor = ctx.actor.clone();
    let name =
        format!("attachment; filename=\"{}.csv\"", id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', ""));
    let bytes = blocking(&state, move |h| run::items_csv(h, &actor, &id, enc)).await?;
    let charset = if enc == CsvEncoding::Cp932 { "Shift_JIS" } else { "utf-8" };
    Ok(([(header::CONTENT_TYPE, format!("text/csv; charset={charset}")), (header::CONTENT_DISPOSITION, name)], bytes)
        .into_response())
}

struct HoldRow {
    id: String,
    kind: String,
    reason: String,
    targets: String,
    created: String,
    released: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "holds.html")]
struct HoldsPage {
    nav: Option<Nav>,
    holds: Vec<HoldRow>,
    can_update: bool,
    message: Option<String>,
}

async fn holds_page(state: &Arc<AppState>, ctx: &Ctx, message: Option<String>) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let list = blocking(state, move |h| run::holds(h, &actor)).await?;
    let at = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M（日本時間）").to_string()
    };
    let holds = list
        .into_iter()
        .map(|hd| HoldRow {
            targets: hd
                .all_targets()
                .iter()
                .map(|t| match t {
                    run::HoldTarget::Record(id) => format!("記録 {id}"),
                    run::HoldTarget::Case(_) => "受給者台帳（事案全体）".to_owned(),
                })
                .collect::<Vec<_>>()
                .join("、"),
            created: format!("{} {}", at(hd.created_at), hd.created_by),
            released: hd
                .released_at
                .map(|t| format!("{} {}", at(t), hd.released_by.clone().unwrap_or_default()))
                .unwrap_or_default(),
            active: hd.released_at.is_none(),
            id: hd.id,
            kind: hd.kind,
            reason: hd.reason,
        })
        .collect();
    let can_update = ctx.actor.rights().allows(crate::auth::Function::Retention, crate::auth::Level::Update);
    render(&HoldsPage { nav: Some(Nav::of(ctx)), holds, can_update, message })
}

pub async fn holds(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Html<String>, WebError> {
    holds_page(&state, &ctx, None).await
}

#[derive(serde::Deserialize)]
pub struct HoldForm {
    kind: String,
    reason: String,
    #[serde(default)]
    records: String,
    #[serde(default)]
    cases: String,
}

fn list_of(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',' || c == '、').filter(|x| !x.is_empty()).map(str::to_owned).collect()
}

pub async fn place_hold(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<HoldForm>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let req = run::HoldRequest {
        kind: form.kind,
        reason: form.reason,
        records: list_of(&form.records),
        recipient_numbers: list_of(&form.cases),
    };
    let msg = match blocking(&state, move |h| run::place_hold(h, &actor, &req)).await {
        Ok(hold) => format!("保留 {} を設定しました（対象 {} 件）。", hold.id, hold.targets.len()),
        Err(WebError::BadRequest(m)) => m,
        Err(e) => return Err(e),
    };
    holds_page(&state, &ctx, Some(msg)).await
}

#[derive(serde::Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    reason: String,
}

pub async fn release_hold(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let hid = id.clone();
    let msg = match blocking(&state, move |h| run::release_hold(h, &actor, &hid, &form.reason)).await {
        Ok(()) => format!("保留 {id} を解除しました。"),
        Err(WebError::BadRequest(m)) => m,
        Err(e) => return Err(e),
    };
    holds_page(&state, &ctx, Some(msg)).await
}

#[derive(serde::Deserialize)]
pub struct DecideForm {
    item: String,
    decision: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    reason: String,
}

/// A decision on a case record whose policy says `review` (廃棄・延長・移管).
pub async fn decide(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let rid = id.clone();
    let decision = match form.decision.as_str() {
        "destroy" => Ok(run::Decision::Destroy),
        "extend" => chrono::NaiveDate::parse_from_str(form.until.trim(), "%Y-%m-%d")
            .map(|until| run::Decision::Extend { until, reason: form.reason.clone() })
            .map_err(|_| "延長後の保存期限を日付で入力してください（例: 2031-03-31）。".to_owned()),
        "transfer" => Ok(run::Decision::Transfer { reason: form.reason.clone() }),
        _ => Err("判断を選んでください。".to_owned()),
    };
    let msg = match decision {
        Err(m) => m,
        Ok(d) => {
            let item = form.item.clone();
            match blocking(&state, move |h| run::decide(h, &actor, &rid, &item, &d)).await {
                Ok(()) => "判断を記録しました。".to_owned(),
                Err(WebError::BadRequest(m)) => m,
                Err(e) => return Err(e),
            }
        }
    };
    run_page(&state, &ctx, id, ItemFilter::default(), Some(msg)).await
}
