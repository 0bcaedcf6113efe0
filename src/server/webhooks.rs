//! Providers calling back: Replicate says a prediction finished, signed in the Standard
//! Webhooks scheme with the account's secret. A delivery is checked (signature, and a
//! timestamp within five minutes, against replays) and then only wakes the job waiting for
//! that prediction, which polls it at once: a repeated delivery, or one for a job this
//! process does not wait for, changes nothing, and nothing a delivery says is taken on
//! trust.

use super::AppState;
use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// The variable holding the account's signing secret (`whsec_…`), as
/// `GET https://api.replicate.com/v1/webhooks/default/secret` gives it.
pub const SECRET_VARIABLE: &str = "REPLICATE_WEBHOOK_SECRET";

/// The verifier of Replicate's deliveries, when webhooks are configured.
pub fn replicate_verifier(
    config: &crate::config::Config,
) -> Result<Option<standardwebhooks::Webhook>, String> {
    if config.models.replicate.webhook_url.is_none() {
        return Ok(None);
    }
    let secret = std::env::var(SECRET_VARIABLE)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            format!(
                "models.replicate.webhook_url is set, and {SECRET_VARIABLE} is not: put the account's signing secret there (GET /v1/webhooks/default/secret)"
            )
        })?;
    standardwebhooks::Webhook::new(secret.trim())
        .map(Some)
        .map_err(|_| format!("{SECRET_VARIABLE} is not a signing secret (whsec_…)"))
}

/// `POST /api/webhooks/replicate`: a prediction finished.
pub async fn replicate(
    State(shared): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Some(verifier) = &shared.replicate_webhook else {
        return Err(ApiError::not_found("webhooks are not configured"));
    };
    verifier.verify(&body, &headers).map_err(|error| {
        tracing::warn!(%error, "a Replicate webhook that does not verify");
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the delivery's signature does not verify",
        )
    })?;
    let prediction: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::invalid("the delivery is not a prediction"))?;
    let id = prediction["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::invalid("the delivery names no prediction"))?;
    let woken = shared.workers.app().wakeups.wake(id);
    tracing::debug!(prediction = id, woken, "a Replicate webhook");
    Ok(StatusCode::NO_CONTENT)
}
