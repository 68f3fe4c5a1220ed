//! One error type for every handler. Users get a Japanese message and a request id; the
//! server log gets the cause with the same id, never names or OCR text (causes carry ids only).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<crate::error::Error> for WebError {
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::NotFound(_) => WebError::NotFound,
            crate::error::Error::Index(crate::index::Error::EmptyQuery) => {
                WebError::BadRequest("検索できる語が含まれていません。".into())
            }
            other => WebError::Internal(crate::error::chain(&other)),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    request_id: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let request_id = crate::auth::generate_password().replace('-', "");
        let (status, title, message) = match &self {
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "見つかりません",
                "指定された文書はありません。",
            ),
            WebError::BadRequest(m) => {
                (StatusCode::BAD_REQUEST, "入力に誤りがあります", m.as_str())
            }
            WebError::Internal(cause) => {
                eprintln!("hozon: request {request_id}: {cause}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "システムエラー",
                    "処理中にエラーが発生しました。管理者に問い合わせ番号をお知らせください。",
                )
            }
        };
        let page = ErrorPage {
            title,
            message,
            request_id,
        };
        let body = page.render().unwrap_or_else(|_| "error".into());
        (status, Html(body)).into_response()
    }
}
