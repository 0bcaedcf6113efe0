//! The API's errors: a status and a JSON body `{code, message}`. Internal failures are
//! logged in full and answered with a fixed message, so nothing internal leaks.

use crate::worker::WorkerError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code (`not_found`, `invalid_request`, …).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds after which the request can succeed (`Retry-After`).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code,
                message: message.into(),
            },
            retry_after: None,
        }
    }

    /// The same error, saying when to try again.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// 404: nothing with that id (or path).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422: well-formed, but not something Montage can do.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    /// 500: logged with its cause; the client only learns that it happened.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; it is logged",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

impl From<crate::quota::QuotaError> for ApiError {
    fn from(error: crate::quota::QuotaError) -> ApiError {
        use crate::quota::QuotaError;
        let seconds = error.retry_after_secs();
        match error {
            QuotaError::Exceeded { message, .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
                    .retry_after(seconds)
            }
            QuotaError::QueueFull(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                error.to_string(),
            )
            .retry_after(seconds),
            QuotaError::Store(store) => ApiError::internal(&store),
        }
    }
}

impl From<crate::providers::ProviderError> for ApiError {
    fn from(error: crate::providers::ProviderError) -> ApiError {
        match &error {
            crate::providers::ProviderError::Remote { source, .. } if source.is_transient() => {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "model_unavailable",
                    error.to_string(),
                )
            }
            _ => ApiError::invalid(error.to_string()),
        }
    }
}

impl From<WorkerError> for ApiError {
    fn from(error: WorkerError) -> ApiError {
        match error {
            WorkerError::NotFound(id) => ApiError::not_found(format!("no run {id}")),
            error @ WorkerError::NoUpload(_) => ApiError::not_found(error.to_string()),
            WorkerError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            WorkerError::Invalid(message) => ApiError::invalid(message),
            WorkerError::Quota(limit) => limit.into(),
            other => ApiError::internal(&other),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> ApiError {
        ApiError::internal(&error)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let code = match rejection {
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            JsonRejection::JsonDataError(_) => "invalid_request",
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ => "bad_request",
        };
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            code
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(rejection.status(), "bad_request", rejection.body_text())
    }
}

/// A JSON request body whose rejections are [`ApiError`]s.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    /// Every body is a JSON object (serde would also read a struct from an array).
    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<serde_json::Value>::from_request(request, state).await?;
        if !value.is_object() {
            return Err(ApiError::invalid(format!(
                "the body must be a JSON object, not {}",
                super::schema::kind_of(&value)
            )));
        }
        serde_json::from_value(value)
            .map(Body)
            .map_err(|e| ApiError::invalid(format!("the body does not fit: {e}")))
    }
}

/// Query parameters whose rejections are [`ApiError`]s.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}
