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
    #[error("status {0}")]
    Status(StatusCode),
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error("too many requests")]
    TooMany,
    #[error("internal: {0}")]
    Internal(String),
}

impl From<crate::error::Error> for WebError {
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::NotFound(_) => WebError::NotFound,
            crate::error::Error::Invalid(m) => WebError::BadRequest(m),
            crate::error::Error::Batch(b) => WebError::BadRequest(b.to_string()),
            crate::error::Error::Cases(e) => WebError::BadRequest(e.to_string()),
            crate::error::Error::Review(e) => WebError::BadRequest(e.to_string()),
            crate::error::Error::Export(crate::export::ExportError::NoRun(_)) => WebError::NotFound,
            crate::error::Error::Export(e) => WebError::BadRequest(e.to_string()),
            crate::error::Error::Index(crate::index::Error::Query(p)) => WebError::BadRequest(p.message_ja()),
            crate::error::Error::Auth(a) => a.into(),
            crate::error::Error::Run(r) => {
                use crate::retention::run::RunError as R;
                match r {
                    R::NoRun(_) | R::NoItem(..) => WebError::NotFound,
                    R::SamePerson(_) => {
                        WebError::BadRequest("同じ担当者は準備と承認を兼ねられません（二人による確認）。".into())
                    }
                    R::WrongState { .. } => WebError::BadRequest("この状態ではその操作はできません。".into()),
                    R::NoReason => WebError::BadRequest("理由を入力してください。".into()),
                }
            }
            other => WebError::Internal(crate::error::chain(&other)),
        }
    }
}

impl From<crate::auth::Error> for WebError {
    fn from(e: crate::auth::Error) -> Self {
        use crate::auth::Error as A;
        match e {
            A::Forbidden(_) | A::SecondFactorRequired => WebError::Status(StatusCode::FORBIDDEN),
            A::NoUser(_) => WebError::NotFound,
            A::Exists(n) => WebError::BadRequest(format!("ユーザーID {n} は既に存在します。")),
            A::BadName(n) => {
                WebError::BadRequest(format!("ユーザーID {n:?} は使用できません（英数字と . _ - の3〜32文字）。"))
            }
            A::WeakPassword(n) => {
                WebError::BadRequest(format!("パスワードは{n}文字以上で、ユーザーIDを含まないものにしてください。"))
            }
            A::SamePassword => WebError::BadRequest("新しいパスワードは現在のものと別にしてください。".into()),
            A::BadCode => WebError::BadRequest("確認コードが正しくないか、期限切れか、既に使用されたものです。".into()),
            A::TooManyCodes(until) => WebError::BadRequest(format!(
                "確認コードの誤りが続いたため、{} まで入力を受け付けません。",
                until.with_timezone(&crate::jp::jst()).format("%H:%M")
            )),
            other => WebError::Internal(crate::error::chain(&other)),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Option<super::Nav>,
    title: &'a str,
    message: &'a str,
    request_id: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let request_id = super::session::random_token()[..12].to_owned();
        let (status, title, message) = match &self {
            WebError::NotFound => (StatusCode::NOT_FOUND, "見つかりません", "指定されたものはありません。"),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "入力に誤りがあります", m.as_str()),
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "送信を受け付けられません",
                "画面を開き直してから、もう一度操作してください（CSRF 確認に失敗しました）。",
            ),
            WebError::TooMany => (
                StatusCode::TOO_MANY_REQUESTS,
                "試行回数が多すぎます",
                "しばらく待ってから、もう一度ログインしてください。",
            ),
            WebError::Status(StatusCode::FORBIDDEN) => (
                StatusCode::FORBIDDEN,
                "権限がありません",
                "この操作を行う権限がありません。必要な場合は情報セキュリティ責任者に相談してください。",
            ),
            WebError::Status(StatusCode::UNAUTHORIZED) => {
                (StatusCode::UNAUTHORIZED, "ログインが必要です", "ログインしてから操作してください。")
            }
            WebError::Status(s) => (*s, "エラー", "要求を処理できませんでした。"),
            WebError::Internal(cause) => {
                eprintln!("hozon: request {request_id}: {cause}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "システムエラー",
                    "処理中にエラーが発生しました。管理者に問い合わせ番号をお知らせください。",
                )
            }
        };
        let page = ErrorPage { nav: None, title, message, request_id };
        let body = page.render().unwrap_or_else(|_| "error".into());
        (status, Html(body)).into_response()
    }
}
