//! Who is asking: every API request names its user with `Authorization: Bearer <token>`
//! (or, for the WebSocket, which browsers cannot give headers, `?token=<token>`). On its
//! loopback defaults the server lets requests without a token act as the local user.

use super::Shared;
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

/// The token a request carries, from its `Authorization` header or its `token` query.
fn token(parts: &Parts) -> Result<Option<String>, ApiError> {
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
    let query = parts.uri.query().unwrap_or("");
    Ok(query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "token")
        .map(|(_, value)| value.to_owned()))
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shared: &Shared) -> Result<Self, ApiError> {
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
