//! `/api/uploads` (files people bring, checked by decoding them) and `/api/assets/{id}`
//! (downloads of anything stored, with range requests).

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::runs::AssetLink;
use crate::pipeline::request;
use crate::store::StoredUpload;
use axum::Json;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::ToSchema;

/// An upload, checked and stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    /// Its id: name it in `audio` or `images` of a new run.
    pub id: String,
    /// `audio` or `image`.
    pub kind: String,
    /// The file's name as uploaded.
    pub name: String,
    /// The stored bytes.
    pub asset: AssetLink,
}

impl From<&StoredUpload> for UploadView {
    fn from(upload: &StoredUpload) -> UploadView {
        UploadView {
            id: upload.id.clone(),
            kind: upload.kind.clone(),
            name: upload.name.clone(),
            asset: AssetLink::from(&upload.object),
        }
    }
}

fn multipart_error(rejection: MultipartRejection) -> ApiError {
    ApiError::new(rejection.status(), "bad_request", rejection.body_text())
}

/// A form that stopped arriving (the client sent less than it announced, or went away) or
/// is not multipart: the client's doing, so a 400 and an info line, not a server error.
fn form_failed(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            error.body_text(),
        );
    }
    tracing::info!(%error, "an upload did not arrive whole");
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "the upload did not arrive whole (the connection ended early, or the form is not \
         multipart/form-data): send it again",
    )
}

/// Streams one field to a temporary file, refusing it past `limit` bytes.
async fn receive(
    field: &mut Field<'_>,
    scratch: &std::path::Path,
    limit: u64,
) -> Result<tempfile::NamedTempFile, ApiError> {
    std::fs::create_dir_all(scratch).map_err(|e| ApiError::internal(&e))?;
    let file = tempfile::NamedTempFile::new_in(scratch).map_err(|e| ApiError::internal(&e))?;
    let mut out = tokio::fs::File::from_std(file.reopen().map_err(|e| ApiError::internal(&e))?);
    let mut size: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(form_failed)? {
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(limit));
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    out.flush().await.map_err(|e| ApiError::internal(&e))?;
    Ok(file)
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the file is larger than the {} MB allowed", limit >> 20),
    )
}

/// Upload audio (WAV, MP3, FLAC, OGG/Vorbis, M4A) or images (PNG, JPEG) as multipart
/// form fields named `file`. Each is decoded before it is kept; nothing is kept unless
/// every file is good.
#[utoipa::path(post, path = "/api/uploads", tag = "uploads",
    request_body(content_type = "multipart/form-data", description = "One or more `file` fields"),
    responses(
        (status = 201, description = "Stored", body = Vec<UploadView>),
        (status = 400, description = "Not a multipart form, or one cut short", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 415, description = "Not audio or an image Montage reads", body = ErrorBody),
        (status = 422, description = "No `file` field, or a field of another name", body = ErrorBody),
    ))]
pub async fn upload(
    State(shared): State<AppState>,
    Caller(user): Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Vec<UploadView>>), ApiError> {
    let mut multipart = multipart.map_err(multipart_error)?;
    let app = shared.workers.app();
    let limit = app.config.server.max_upload_bytes();
    let scratch = app.config.storage.data_dir.join("incoming");
    let limits = &app.config.server.limits;
    crate::quota::check_upload(&app.database, limits, &user.id, 0).await?;
    let mut checked = Vec::new();
    let mut received: u64 = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(form_failed)? {
        if field.name() != Some("file") {
            return Err(ApiError::invalid(format!(
                "unexpected form field {:?}: send files as `file`",
                field.name().unwrap_or("")
            )));
        }
        let name = field
            .file_name()
            .map(|n| n.chars().filter(|c| !c.is_control()).take(255).collect())
            .filter(|n: &String| !n.is_empty())
            .unwrap_or_else(|| "file".to_owned());
        let file = receive(&mut field, &scratch, limit).await?;
        let unsupported = |reason: String| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("{name}: {reason}"),
            )
        };
        let size = file
            .as_file()
            .metadata()
            .map_err(|e| ApiError::internal(&e))?
            .len();
        received += size;
        crate::quota::check_upload(&app.database, limits, &user.id, received).await?;
        if size == 0 {
            return Err(unsupported("the file is empty".into()));
        }
        let mut head = Vec::with_capacity(16);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file.reopen().map_err(|e| ApiError::internal(&e))?, 16),
            &mut head,
        )
        .map_err(|e| ApiError::internal(&e))?;
        let (kind, media_type) = if image::guess_format(&head).is_ok() {
            if size > request::MAX_IMAGE_BYTES {
                return Err(too_large(request::MAX_IMAGE_BYTES));
            }
            let bytes = tokio::fs::read(file.path())
                .await
                .map_err(|e| ApiError::internal(&e))?;
            let media_type = request::check_image(bytes).await.map_err(unsupported)?;
            ("image", media_type)
        } else {
            let media_type = request::check_audio(file.path())
                .await
                .map_err(unsupported)?;
            ("audio", media_type)
        };
        checked.push((name, kind, media_type, file));
    }
    if checked.is_empty() {
        return Err(ApiError::invalid(
            "no file: send them as form fields named `file`",
        ));
    }
    let mut stored = Vec::with_capacity(checked.len());
    for (name, kind, media_type, file) in checked {
        let object = app
            .objects
            .put_file("uploads", media_type, file.path())
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let upload = StoredUpload {
            id: uuid::Uuid::now_v7().to_string(),
            name,
            kind: kind.to_owned(),
            object,
            created_at_ms: crate::store::runs::now_ms(),
            owner: user.id.clone(),
        };
        app.database.record_upload(&upload).await?;
        stored.push(UploadView::from(&upload));
    }
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Download a stored object (a video, picture, caption file, upload) by id; videos
/// support range requests for seeking.
#[utoipa::path(get, path = "/api/assets/{id}", tag = "assets",
    params(("id" = String, Path, description = "The object's id (SHA-256 of its bytes)")),
    responses(
        (status = 200, description = "The bytes"),
        (status = 206, description = "The range asked for"),
        (status = 404, description = "No such object", body = ErrorBody),
        (status = 304, description = "The copy the client has (If-None-Match) is current"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 416, description = "The range is outside the object", body = ErrorBody),
    ))]
pub async fn asset(
    State(shared): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no asset {id}"));
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let app = shared.workers.app();
    let object = app
        .database
        .object_by_sha(&user.id, &id.to_ascii_lowercase())
        .await?
        .ok_or_else(not_found)?;
    let path = app.objects.local_path(&object);
    if !path.is_file() {
        return Err(ApiError::internal(&format!(
            "object {} is in the database but not on disk",
            object.key
        )));
    }
    let mime: mime::Mime = object
        .media_type
        .parse()
        .unwrap_or(mime::APPLICATION_OCTET_STREAM);
    // The object's id is the SHA-256 of its bytes: a strong validator that never goes stale.
    let etag = format!("\"{}\"", object.sha256);
    let (mut parts, body) = request.into_parts();
    if let Some(tags) = parts.headers.get(header::IF_NONE_MATCH)
        && tags
            .to_str()
            .is_ok_and(|t| t.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    // RFC 9110 §13.1.5: a range is served only for the representation the client already
    // has part of; for anything else, the whole of it.
    if let Some(validator) = parts.headers.get(header::IF_RANGE) {
        let current = validator.to_str().is_ok_and(|v| v.trim() == etag);
        if !current {
            parts.headers.remove(header::RANGE);
        }
    }
    let response = ServeFile::new_with_mime(path, &mime)
        .oneshot(Request::from_parts(parts, body))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
        let mut refused = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!(
                "the range asked for is outside the {} bytes of {id}",
                object.size
            ),
        )
        .into_response();
        refused.headers_mut().insert(
            header::CONTENT_RANGE,
            header::HeaderValue::from_str(&format!("bytes */{}", object.size))
                .map_err(|e| ApiError::internal(&e))?,
        );
        return Ok(refused);
    }
    let mut response = response.into_response();
    if let Ok(value) = header::HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}
