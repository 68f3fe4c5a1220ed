//! web/: the browser UI (Japanese) over HTTP. The only module that knows HTTP and HTML.
//! Handlers extract the request, call one `Hozon` function (on a blocking thread: sled,
//! tantivy, decryption and image work are all blocking) and render the result.
//!
//! Every route is declared once in [`routes`] with its [`Rule`]; the router is built from that
//! table and the gate (`guard::authorize`) enforces the rule, checks CSRF and writes the
//! request's audit entry. The authorization-matrix test walks the same table.

mod account;
mod admin;
mod api;
mod auditlog;
mod batches;
mod cases;
mod error;
mod export;
pub mod guard;
mod pages;
mod retention;
mod review;
mod session;
mod sorting;
pub mod stop;

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::http::{Method, header};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{MethodRouter, get, post};

use crate::app::Hozon;
use crate::auth::{Function, Level};
pub use error::WebError;
pub use guard::Rule;

pub struct AppState {
    pub hozon: Hozon,
    pub(crate) sessions: session::Sessions,
    limiter: session::LoginLimiter,
    /// The hot folder root the server watches, if any (see `capture::hotfolder`).
    pub hot_folder: Option<std::path::PathBuf>,
    /// Uploaded files per batch not yet stored (for the live progress).
    pub uploads: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// Set when the server is stopping: background threads end.
    pub stop: stop::Stop,
}

impl AppState {
    pub fn new(hozon: Hozon) -> Arc<AppState> {
        AppState::build(hozon, None, None)
    }

    /// For tests of the idle timeout: the same state with a shorter one.
    pub fn with_idle_timeout(hozon: Hozon, idle: Duration) -> Arc<AppState> {
        AppState::build(hozon, Some(idle), None)
    }

    /// The same state, watching `root` as the hot folder.
    pub fn with_hot_folder(hozon: Hozon, root: std::path::PathBuf) -> Arc<AppState> {
        AppState::build(hozon, None, Some(root))
    }

    fn build(hozon: Hozon, idle: Option<Duration>, hot_folder: Option<std::path::PathBuf>) -> Arc<AppState> {
        let sec = &hozon.config.security;
        let idle = idle.unwrap_or(Duration::from_secs(sec.session_idle_minutes * 60));
        let sessions = session::Sessions::new(idle, Duration::from_secs(sec.session_absolute_hours * 3600));
        let limiter = session::LoginLimiter::new(sec.login_attempts_per_minute);
        Arc::new(AppState {
            hozon,
            sessions,
            limiter,
            hot_folder,
            uploads: Default::default(),
            stop: Default::default(),
        })
    }
}

/// What the page header needs: who is logged in, which menu entries to show, the CSRF token
/// for the logout form.
pub struct Nav {
    pub user: String,
    pub csrf: String,
    pub can_users: bool,
    pub can_audit: bool,
    pub can_retention: bool,
    pub can_capture: bool,
    pub can_review: bool,
    pub can_cases: bool,
    pub can_export: bool,
    /// Seconds until the session ends if the user does nothing (for the expiry warning).
    pub session_left_s: u64,
}

impl Nav {
    fn of(ctx: &guard::Ctx) -> Nav {
        Nav {
            user: ctx.actor.name().to_owned(),
            csrf: ctx.csrf.clone(),
            can_users: ctx.actor.rights().allows(Function::Users, Level::View),
            can_audit: ctx.actor.rights().allows(Function::Audit, Level::View),
            can_retention: ctx.actor.rights().allows(Function::Retention, Level::View),
            can_capture: ctx.actor.rights().allows(Function::Capture, Level::View),
            can_review: ctx.actor.rights().allows(Function::Review, Level::View),
            can_cases: ctx.actor.rights().allows(Function::Cases, Level::View),
            can_export: ctx.actor.rights().allows(Function::InputData, Level::View),
            session_left_s: ctx.session_left_s,
        }
    }
}

pub(crate) fn render(t: &impl Template) -> Result<Html<String>, WebError> {
    t.render().map(Html).map_err(|e| WebError::Internal(e.to_string()))
}

/// Runs blocking domain work off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Hozon) -> crate::error::Result<T> + Send + 'static,
) -> Result<T, WebError> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || f(&st.hozon))
        .await
        .map_err(|e| WebError::Internal(format!("worker panicked: {e}")))?
        .map_err(WebError::from)
}

/// A CSV file download (the bytes already carry a UTF-8 BOM for Excel).
pub(crate) fn csv_download(file_name: &'static str, bytes: Vec<u8>) -> axum::response::Response {
    let disposition = format!("attachment; filename=\"{file_name}\"");
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response()
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../static/style.css"))
}

/// A script from `static/`, served as a file (the CSP allows no inline script).
fn script(body: &'static str) -> Handler {
    get(move || async move { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], body) })
}

/// Unknown paths: a Japanese 404, audited like every other request.
async fn not_found(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
) -> WebError {
    let target = format!("{} {} from {}", req.method(), req.uri().path(), guard::client_addr(&req));
    let who = session::cookie(req.headers(), session::COOKIE)
        .and_then(|t| state.sessions.touch(&t))
        .map_or("anonymous".to_owned(), |s| s.actor.name().to_owned());
    match state.hozon.audit_request(&who, &target, "404") {
        Ok(()) => WebError::NotFound,
        Err(e) => WebError::Internal(crate::error::chain(&e)),
    }
}

/// One row of the route table.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub rule: Rule,
}

type Handler = MethodRouter<Arc<AppState>>;

/// The route table: every route, its method and its rule. The router is built from it, so a
/// route without a rule cannot exist.
fn routes() -> Vec<(RouteSpec, Handler)> {
    use Function::*;
    use Level::*;
    use Rule::*;
    let r = |method: Method, path: &'static str, rule: Rule, h: Handler| (RouteSpec { method, path, rule }, h);
    vec![
        r(Method::GET, "/", LoggedIn, get(|| async { Redirect::to("/search") })),
        r(Method::GET, "/static/style.css", Public, get(style)),
        r(Method::GET, "/static/search.js", Public, script(include_str!("../../static/search.js"))),
        r(Method::GET, "/static/session.js", Public, script(include_str!("../../static/session.js"))),
        r(Method::GET, "/account/ping", Account, get(account::ping)),
        r(Method::GET, "/login", Public, get(account::login_form)),
        r(Method::POST, "/login", Public, post(account::login)),
        r(Method::POST, "/logout", Account, post(account::logout)),
        r(Method::GET, "/account/password", Account, get(account::password_form)),
        r(Method::POST, "/account/password", Account, post(account::change_password)),
        r(Method::GET, "/account/totp", Account, get(account::totp_form)),
        r(Method::POST, "/account/totp", Account, post(account::totp_check)),
        r(Method::GET, "/search", Need(Search, View), get(pages::search)),
        r(Method::GET, "/search/results", Need(Search, View), get(pages::search_results)),
        r(Method::GET, "/pages/{id}", Need(Search, View), get(pages::page)),
        r(Method::GET, "/pages/{id}/thumb", Need(Search, View), get(pages::thumb)),
        r(Method::GET, "/pages/{id}/image", Need(Search, View), get(pages::image)),
        r(Method::GET, "/batches", Need(Capture, View), get(batches::ledger)),
        r(Method::POST, "/batches", Need(Capture, Update), post(batches::create)),
        r(Method::GET, "/batches.csv", Need2fa(Capture, View), get(batches::ledger_csv)),
        r(Method::GET, "/batches/{id}", Need(Capture, View), get(batches::show)),
        r(Method::GET, "/batches/{id}/progress", Need(Capture, View), get(batches::progress)),
        r(
            Method::POST,
            "/batches/{id}/upload",
            Need(Capture, Update),
            post(batches::upload).layer(axum::extract::DefaultBodyLimit::max(batches::MAX_UPLOAD_BYTES)),
        ),
        r(Method::POST, "/batches/{id}/close", Need(Capture, Update), post(batches::close)),
        r(Method::POST, "/api/cases", Api(Cases, Update), post(api::post_cases)),
        r(Method::GET, "/static/review.js", Public, script(include_str!("../../static/review.js"))),
        r(Method::GET, "/static/batch.js", Public, script(include_str!("../../static/batch.js"))),
        r(Method::GET, "/review", Need(Review, View), get(review::queue)),
        r(Method::GET, "/review/{id}", Need(Review, View), get(review::show)),
        r(Method::POST, "/review/{id}", Need(Review, Update), post(review::submit)),
        r(Method::GET, "/review/{id}/field/{field}", Need(Review, View), get(review::field_image)),
        r(Method::POST, "/review/{id}/correct", Need(Review, Update), post(review::correct)),
        r(Method::GET, "/sorting", Need(Review, View), get(sorting::queue)),
        r(Method::POST, "/sorting/{id}", Need(Review, Update), post(sorting::file)),
        r(Method::GET, "/persons", Need(Cases, View), get(cases::persons)),
        r(Method::POST, "/persons", Need(Cases, View), post(cases::find)),
        r(Method::POST, "/cases/import", Need(Cases, Update), post(cases::import)),
        r(Method::GET, "/static/cases.js", Public, script(include_str!("../../static/cases.js"))),
        r(Method::GET, "/cases/{key}", Need(Cases, View), get(cases::show)),
        r(Method::POST, "/cases/{key}/status", Need(Cases, Update), post(cases::set_status)),
        r(Method::POST, "/cases/{key}/inquiries", Need(Cases, Update), post(cases::add_inquiry)),
        r(Method::POST, "/cases/{key}/export", Need2fa(Export, Update), post(cases::export)),
        r(Method::POST, "/cases/{key}/suspend", Need(Cases, Update), post(cases::suspend)),
        // The security officer lifts suspensions too (checked again in `lift_suspension`).
        r(Method::POST, "/cases/{key}/unsuspend", Need(Cases, View), post(cases::unsuspend)),
        r(Method::GET, "/admin/users", Need2fa(Users, View), get(admin::list)),
        r(Method::GET, "/admin/users.csv", Need2fa(Users, View), get(admin::csv)),
        r(Method::POST, "/admin/users", Need2fa(Users, Update), post(admin::create)),
        r(Method::GET, "/admin/users/{name}", Need2fa(Users, View), get(admin::edit)),
        r(Method::POST, "/admin/users/{name}/rights", Need2fa(Users, Update), post(admin::set_rights)),
        r(Method::POST, "/admin/users/{name}/{action}", Need2fa(Users, Update), post(admin::action)),
        r(Method::GET, "/retention", Need(Retention, View), get(retention::overview)),
        r(Method::POST, "/retention/plan", Need(Retention, Update), post(retention::plan)),
        r(Method::POST, "/retention/policies/apply", Need(Retention, Update), post(retention::apply_policies)),
        r(Method::GET, "/retention/runs/{id}", Need(Retention, View), get(retention::show)),
        r(Method::GET, "/retention/runs/{id}/items.csv", Need2fa(Retention, View), get(retention::items_csv)),
        r(Method::GET, "/retention/holds", Need(Retention, View), get(retention::holds)),
        r(Method::POST, "/retention/holds", Need(Retention, Update), post(retention::place_hold)),
        r(Method::POST, "/retention/holds/{id}/release", Need(Retention, Update), post(retention::release_hold)),
        r(Method::POST, "/retention/runs/{id}/exclude", Need(Retention, Update), post(retention::exclude)),
        r(Method::POST, "/retention/runs/{id}/decide", Need(Retention, Update), post(retention::decide)),
        r(Method::POST, "/retention/runs/{id}/{step}", Need(Retention, Update), post(retention::step)),
        r(Method::GET, "/retention/runs/{id}/certificate.pdf", Need(Retention, View), get(retention::certificate)),
        r(Method::GET, "/retention/boxes", Need(Boxes, View), get(retention::boxes)),
        // Every export screen shows applicants' names: a recent second factor first.
        r(Method::GET, "/export", Need2fa(InputData, View), get(export::overview)),
        r(Method::GET, "/static/export.js", Public, script(include_str!("../../static/export.js"))),
        r(Method::POST, "/export/runs", Need2fa(InputData, Update), post(export::create)),
        r(Method::GET, "/export/runs/{id}", Need2fa(InputData, View), get(export::show)),
        r(Method::POST, "/export/runs/{id}/download", Need2fa(InputData, Update), post(export::download)),
        r(Method::POST, "/export/runs/{id}/result", Need2fa(InputData, Update), post(export::result)),
        r(Method::POST, "/export/runs/{id}/{step}", Need2fa(InputData, Update), post(export::step)),
        r(Method::GET, "/export/runs/{id}/errors/{fmt}", Need2fa(InputData, View), get(export::errors_list)),
        r(Method::GET, "/export/runs/{id}/counts/{fmt}", Need(InputData, View), get(export::counts_list)),
        r(Method::GET, "/audit", Need(Audit, View), get(auditlog::list)),
        r(Method::GET, "/audit/report", Need(Audit, View), get(auditlog::report)),
        r(Method::GET, "/audit/export.csv", Need2fa(Audit, View), get(auditlog::export)),
    ]
}

/// The table without handlers, for tests and documentation.
pub fn route_table() -> Vec<RouteSpec> {
    routes().into_iter().map(|(spec, _)| spec).collect()
}

/// The whole application; tests drive it with `tower::ServiceExt::oneshot`.
pub fn router(state: Arc<AppState>) -> Router {
    let mut app: Router<Arc<AppState>> = Router::new();
    for (spec, handler) in routes() {
        let gate = axum::middleware::from_fn_with_state((state.clone(), spec.rule), guard::authorize);
        app = app.route(spec.path, handler.route_layer(gate));
    }
    app.fallback(not_found).layer(axum::middleware::from_fn(guard::security_headers)).with_state(state)
}

/// glibc keeps freed large blocks in per-thread arenas once its dynamic mmap threshold has
/// grown: after a burst of logins (argon2id takes 19 MiB per hash, on whichever blocking thread
/// runs it) the server held ~2 GiB it no longer used. A fixed threshold makes such blocks
/// mmap-backed and returned on free, and a cap on arenas bounds the rest. Measured with
/// `hozon bench serve --users 50`: peak RSS 2.0 GiB before, see the note for after.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; called before the server's threads
    // start allocating, with documented parameter values.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// Polls the state's hot folder, if it has one, on its own thread (ingest is blocking work).
pub fn start_hot_folder(state: &Arc<AppState>) {
    if let Some(root) = state.hot_folder.clone() {
        let st = state.clone();
        // The hot folder is polled on its own thread; ingest is blocking work.
        std::thread::spawn(move || {
            let opts = crate::capture::ingest::IngestOptions::default();
            let hotfolder_job = crate::auth::Actor::job("hotfolder");
            while !st.stop.is_stopping() {
                match crate::capture::hotfolder::poll(&st.hozon, &hotfolder_job, &root, Duration::from_secs(2), &opts) {
                    Ok(p) => {
                        for (batch, r) in p.ingested {
                            eprintln!(
                                "hozon: {batch}: {} pages stored, {} quarantined, {} refused",
                                r.stored(),
                                r.quarantined(),
                                r.refused()
                            );
                        }
                    }
                    Err(e) => eprintln!("hozon: hot folder {}: {}", root.display(), crate::error::chain(&e)),
                }
                if st.stop.wait(Duration::from_secs(2)) {
                    break;
                }
            }
        });
    }
}

/// Serves the UI for `state` on `addr` until Ctrl-C or SIGTERM (what systemd sends).
pub async fn serve(state: Arc<AppState>, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("hozon: http://{}/ で待ち受けています (Ctrl-C で終了)", listener.local_addr()?);
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
        })
        .await?;
    Ok(())
}
