//! `/api/session`: the cookie that lets a browser show and download pictures and videos,
//! which `<img>`, `<video>` and download links fetch without an `Authorization` header.
//! It is sent back only to `/api/assets`, never readable by scripts, never cross-site.

use super::AppState;
use super::auth::{Caller, SESSION_COOKIE, token};
use super::error::ErrorBody;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// How long the cookie lasts, in seconds (30 days).
const SESSION_SECONDS: u32 = 30 * 24 * 3600;

fn cookie(value: &str, max_age: u32) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/api/assets; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    )
}

/// Let this browser fetch its assets: sets the cookie to the token the request carries.
#[utoipa::path(post, path = "/api/session", tag = "users",
    responses(
        (status = 204, description = "The cookie is set (nothing to set without a token)"),
        (status = 401, description = "No valid token", body = ErrorBody),
    ))]
pub async fn open_session(State(shared): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    if let Err(error) = Caller::from_request_parts(&mut parts, &shared).await {
        return error.into_response();
    }
    match token(&parts) {
        Ok(Some(token)) => (
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, cookie(&token, SESSION_SECONDS))],
        )
            .into_response(),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_response(),
    }
}

/// Forget this browser's session cookie.
#[utoipa::path(delete, path = "/api/session", tag = "users",
    responses((status = 204, description = "The cookie is cleared")))]
pub async fn close_session() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, cookie("", 0))],
    )
        .into_response()
}
