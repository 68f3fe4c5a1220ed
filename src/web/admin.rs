//! User administration for the security officer: account review, creation, rights matrix,
//! unlock, renewal, password and TOTP resets. Every route here needs a recent second factor
//! (see the route table), and `auth` refuses changes to one's own account.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};

use super::guard::Ctx;
use super::{AppState, Nav, WebError, blocking, render};
use crate::auth::{Function, Level, Rights, Role, UserRecord};

struct UserRow {
    name: String,
    role: String,
    rights: String,
    expires_on: String,
    locked: bool,
    totp: bool,
    last_login: String,
}

fn row(u: &UserRecord) -> UserRow {
    UserRow {
        name: u.name.clone(),
        role: u.role.label_ja().to_owned(),
        rights: u.rights.summary(),
        expires_on: u.expires_on.to_string(),
        locked: u.locked,
        totp: u.totp_enrolled(),
        last_login: u.last_login_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into()),
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Option<Nav>,
    users: Vec<UserRow>,
    roles: Vec<(&'static str, &'static str)>,
    created: Option<(String, String)>,
}

fn roles() -> Vec<(&'static str, &'static str)> {
    Role::ALL.iter().map(|r| (r.key(), r.label_ja())).collect()
}

async fn users_page(
    state: &Arc<AppState>,
    ctx: &Ctx,
    created: Option<(String, String)>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let users = blocking(state, move |h| Ok(h.accounts().list(&actor)?)).await?;
    render(&UsersPage { nav: Some(Nav::of(ctx)), users: users.iter().map(row).collect(), roles: roles(), created })
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Html<String>, WebError> {
    users_page(&state, &ctx, None).await
}

pub async fn csv(State(state): State<Arc<AppState>>, Extension(ctx): Extension<Ctx>) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let bytes = blocking(&state, move |h| h.users_csv(&actor)).await?;
    Ok(super::csv_download("accounts.csv", bytes))
}

#[derive(serde::Deserialize)]
pub struct CreateForm {
    name: String,
    role: String,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<CreateForm>,
) -> Result<Html<String>, WebError> {
    let role = Role::parse(&form.role).ok_or_else(|| WebError::BadRequest("役割を選んでください。".into()))?;
    let actor = ctx.actor.clone();
    let name = form.name.trim().to_owned();
    let n = name.clone();
    let password = blocking(&state, move |h| Ok(h.accounts().create(&actor, &n, role, chrono::Utc::now())?)).await?;
    users_page(&state, &ctx, Some((name, password))).await
}

struct MatrixRow {
    key: &'static str,
    label: &'static str,
    level: &'static str,
}

#[derive(Template)]
#[template(path = "user_edit.html")]
struct EditPage {
    nav: Option<Nav>,
    user: UserRow,
    role: &'static str,
    roles: Vec<(&'static str, &'static str)>,
    matrix: Vec<MatrixRow>,
    levels: Vec<(&'static str, &'static str)>,
    my_number: bool,
    message: Option<String>,
}

async fn edit_page(
    state: &Arc<AppState>,
    ctx: &Ctx,
    name: String,
    message: Option<String>,
) -> Result<Html<String>, WebError> {
    let actor = ctx.actor.clone();
    let users = blocking(state, move |h| Ok(h.accounts().list(&actor)?)).await?;
    let u = users.into_iter().find(|u| u.name == name).ok_or(WebError::NotFound)?;
    render(&EditPage {
        nav: Some(Nav::of(ctx)),
        role: u.role.key(),
        roles: roles(),
        matrix: Function::ALL
            .iter()
            .map(|f| MatrixRow { key: f.key(), label: f.label_ja(), level: u.rights.level(*f).key() })
            .collect(),
        levels: [Level::None, Level::View, Level::Update].iter().map(|l| (l.key(), l.label_ja())).collect(),
        my_number: u.rights.my_number,
        user: row(&u),
        message,
    })
}

pub async fn edit(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(name): Path<String>,
) -> Result<Html<String>, WebError> {
    edit_page(&state, &ctx, name, None).await
}

/// The rights form: `role`, one `f_<function>` field per function, `my_number=on`.
pub async fn set_rights(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path(name): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Html<String>, WebError> {
    let get = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let role = get("role").and_then(Role::parse).ok_or_else(|| WebError::BadRequest("役割が不正です。".into()))?;
    let mut rights = Rights::default();
    for f in Function::ALL {
        let v = get(&format!("f_{}", f.key())).unwrap_or("none");
        let level = Level::parse(v)
            .ok_or_else(|| WebError::BadRequest(format!("{} の権限 {v:?} が不正です。", f.label_ja())))?;
        rights.set(f, level);
    }
    rights.my_number = get("my_number") == Some("on");
    let actor = ctx.actor.clone();
    let n = name.clone();
    blocking(&state, move |h| Ok(h.accounts().set_rights(&actor, &n, role, rights)?)).await?;
    edit_page(&state, &ctx, name, Some("権限を更新しました。".into())).await
}

/// One of the account actions: unlock, renew, reset-password, reset-totp, recovery-codes.
pub async fn action(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<Ctx>,
    Path((name, what)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let actor = ctx.actor.clone();
    let n = name.clone();
    let w = what.clone();
    let message = blocking(&state, move |h| {
        let now = chrono::Utc::now();
        Ok(match w.as_str() {
            "unlock" => h.accounts().unlock(&actor, &n).map(|_| "ロックを解除しました。".to_owned())?,
            "renew" => h
                .accounts()
                .renew(&actor, &n, crate::jp::date_of(now))
                .map(|d| format!("利用期限を {d} まで延長しました。"))?,
            "reset-password" => h.accounts().reset_password(&actor, &n, now).map(|p| {
                format!("一時パスワード: {p}（本人に安全な方法で伝えてください。次回ログイン時に変更が必要です）")
            })?,
            "reset-totp" => {
                h.accounts().reset_totp(&actor, &n).map(|_| "二要素認証の登録を解除しました。".to_owned())?
            }
            "recovery-codes" => h.accounts().issue_recovery_codes(&actor, &n).map(|codes| {
                format!(
                    "回復コード（各1回限り。以前のコードは無効になりました。本人に安全な方法で渡してください）: {}",
                    codes.join(" ")
                )
            })?,
            _ => return Err(crate::error::Error::NotFound(w.clone())),
        })
    })
    .await?;
    Ok(edit_page(&state, &ctx, name, Some(message)).await?.into_response())
}
