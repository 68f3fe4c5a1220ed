//! web/: the browser UI (Japanese) over HTTP. The only module that knows HTTP and HTML.
//! Handlers extract the request, call one `Hozon` function (on a blocking thread: sled,
//! tantivy, decryption and image work are all blocking) and render the result.

mod error;
mod pages;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::Hozon;
pub use error::WebError;
use session::Sessions;

pub struct AppState {
    pub hozon: Hozon,
    sessions: Sessions,
}

impl AppState {
    pub fn new(hozon: Hozon) -> Arc<AppState> {
        Arc::new(AppState {
            hozon,
            sessions: Sessions::default(),
        })
    }
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

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/style.css"),
    )
}

async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The whole application; tests drive it with `tower::ServiceExt::oneshot`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/search") }),
        )
        .route("/static/style.css", get(style))
        .merge(session::router())
        .merge(pages::router())
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

pub async fn serve(hozon: Hozon, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let app = router(AppState::new(hozon));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "hozon: http://{}/ で待ち受けています (Ctrl-C で終了)",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
