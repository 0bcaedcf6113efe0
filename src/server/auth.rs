//! Who is asking: every API request names its user with `Authorization: Bearer <token>`.
//! Browsers cannot give headers everywhere: the WebSocket upgrade takes `?token=<token>`
//! (and only it: a token in any other address ends up in logs and histories), and pictures,
//! videos and downloads take the cookie `POST /api/session` sets (only on `/api/assets`).
//! On its loopback defaults the server lets requests without a token act as the local user.

use super::AppState;
use super::error::ApiError;
use crate::store::User;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

/// The user a request acts as.
pub struct Caller(pub User);

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The WebSocket's path, the one place a token may come in the address.
const SOCKET_PATH: &str = "/api/ws";
/// Downloads, where the session cookie counts.
const ASSETS_PATH: &str = "/api/assets/";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "montage_token";

/// The token a request carries: its `Authorization` header; on the WebSocket its `token`
/// query; on a download its session cookie.
pub fn token(parts: &Parts) -> Result<Option<String>, ApiError> {
    if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("use `Authorization: Bearer <token>`"))?;
        return Ok(Some(value.to_owned()));
    }
    let query = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "token")
        .map(|(_, value)| value.to_owned());
    if parts.uri.path() == SOCKET_PATH {
        return Ok(query);
    }
    if query.is_some() {
        return Err(unauthorized(
            "send the token as `Authorization: Bearer <token>`: `?token=` is taken only by \
             the WebSocket at /api/ws",
        ));
    }
    let reads = matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if reads && parts.uri.path().starts_with(ASSETS_PATH) {
        return Ok(session_cookie(parts));
    }
    Ok(None)
}

fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shared: &AppState) -> Result<Self, ApiError> {
        match token(parts)? {
            Some(token) => shared
                .workers
                .app()
                .database
                .user_by_token(&token)
                .await?
                .map(Caller)
                .ok_or_else(|| unauthorized("that token is not valid")),
            None => shared.local.clone().map(Caller).ok_or_else(|| {
                unauthorized("sign in: send `Authorization: Bearer <token>` (tokens come from `montage user add NAME`)")
            }),
        }
    }
}
