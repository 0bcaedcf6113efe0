//! `montage serve`: the REST API under `/api` (described by `/api/openapi.json`), the
//! WebSocket at `/api/ws`, `/healthz` and `/metrics`, over the run workers.
//!
//! - [`runs`]: `/api/runs` and its actions.
//! - [`uploads`]: `/api/uploads` and `/api/assets/{id}`.
//! - [`ws`]: the WebSocket session; [`protocol`]: its messages.
//! - [`chats`]: `/api/chats`, conversations with the agent; [`chat_hub`]: each chat's live
//!   stream, which runs announce themselves on too.
//! - `bodies`: what the run and chat bodies share (formats and intent choices, parsed).
//! - [`error`]: the `{code, message}` error answers.
//! - [`web`]: the web UI at `/`.
//! - [`auth`]: who is asking; [`session`]: the browser's cookie for assets; [`guard`]: which
//!   sites may ask.
//! - [`webhooks`]: providers saying a job finished (`/api/webhooks/replicate`).

pub mod auth;
mod bodies;
pub mod chat_hub;
pub mod chats;
pub mod error;
pub mod guard;
pub mod protocol;
pub mod runs;
pub mod schema;
pub mod session;
pub mod uploads;
pub mod web;
pub mod webhooks;
pub mod ws;

use crate::app::{App, OpenError};
use crate::config::{AuthMode, Config};
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::worker::Workers;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use error::ApiError;
use schema::Contract;
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::OpenApi;

/// What every handler is given: the workers, the agent, the chats' streams and the server's settings.
#[derive(Clone)]
pub struct AppState {
    /// The queue, its workers, and through them the services.
    pub workers: Workers,
    /// The user requests without a token act as, when the server allows that.
    pub local: Option<crate::store::User>,
    /// The chat agent.
    pub agent: crate::agent::Agent,
    /// The live stream of each chat.
    pub chats: Arc<chat_hub::ChatHub>,
    /// Cancelled when the server is asked to stop: WebSocket sessions close with 1001.
    pub stopping: tokio_util::sync::CancellationToken,
    /// The hosts and sites the server answers.
    pub hosts: Arc<guard::Hosts>,
    /// Checks Replicate's webhook deliveries, when they are configured.
    pub replicate_webhook: Option<Arc<standardwebhooks::Webhook>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The services could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The workers could not start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped on an error.
    #[error("the server stopped: {0}")]
    Stopped(std::io::Error),
    /// Asked to serve beyond this machine without authentication.
    #[error(
        "refusing to serve on {0} without authentication: set server.auth = \"tokens\" \
         (MONTAGE_SERVER__AUTH=tokens) and give each person a token with `montage user add NAME`, \
         or listen on 127.0.0.1"
    )]
    Unprotected(SocketAddr),
    /// Webhooks are configured without what verifies them.
    #[error("{0}")]
    Webhooks(String),
}

/// The OpenAPI document of the REST API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Montage",
        description = "Turns a chat into a finished, beat-cut video. Events stream over the WebSocket at /api/ws (docs/protocol.md)."
    ),
    paths(
        runs::create_run,
        runs::list_runs,
        runs::get_run,
        runs::answer_run,
        runs::cancel_run,
        runs::revise_run,
        runs::delete_run,
        uploads::upload,
        uploads::asset,
        chats::create_chat,
        chats::list_chats,
        chats::get_chat,
        chats::post_message,
        session::open_session,
        session::close_session,
        models,
        healthz,
        metrics
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Contract)
)]
pub struct ApiDoc;

/// The routes over `shared`.
pub fn router(shared: AppState) -> Router {
    let upload_limit = usize::try_from(shared.workers.app().config.server.max_upload_bytes())
        .unwrap_or(usize::MAX)
        // Room for the multipart framing around a file of the largest size.
        .saturating_add(1 << 20);
    Router::new()
        .route("/api/runs", post(runs::create_run).get(runs::list_runs))
        .route("/api/runs/{id}", get(runs::get_run).delete(runs::delete_run))
        .route("/api/runs/{id}/feedback", post(runs::answer_run))
        .route("/api/runs/{id}/cancel", post(runs::cancel_run))
        .route("/api/runs/{id}/revise", post(runs::revise_run))
        .route(
            "/api/uploads",
            post(uploads::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/assets/{id}", get(uploads::asset))
        .route(
            "/api/chats",
            post(chats::create_chat).get(chats::list_chats),
        )
        .route("/api/chats/{id}", get(chats::get_chat))
        .route("/api/chats/{id}/messages", post(chats::post_message))
        .route("/api/ws", get(ws::upgrade))
        .route("/api/webhooks/replicate", post(webhooks::replicate))
        .route(
            "/api/session",
            post(session::open_session).delete(session::close_session),
        )
        .route("/api/openapi.json", get(openapi))
        .route("/api/models", get(models))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(web::file)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take that method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::same_site,
        ))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                // The path only: a query may hold a WebSocket token.
                |request: &axum::http::Request<_>| {
                    tracing::debug_span!("request", method = %request.method(), path = request.uri().path())
                },
            ),
        )
        .with_state(shared)
}

/// The document, with the models this server offers runs as the patterns a choice must
/// match.
async fn openapi(State(shared): State<AppState>) -> impl IntoResponse {
    let mut document = schema::document(ApiDoc::openapi());
    schema::offer_models(&mut document, &shared.workers.app().config.models.offered());
    axum::Json(document)
}

/// What each capability resolves to, every remote model checked (its endpoint asked which
/// models it serves); keys are never shown, only the variable each comes from and whether
/// it is set.
#[utoipa::path(get, path = "/api/models", tag = "operations",
    responses((status = 200, description = "Each capability's models, in the order they are tried", body = Vec<crate::providers::ModelReport>)))]
pub async fn models(
    State(shared): State<AppState>,
    _caller: auth::Caller,
) -> axum::Json<Vec<crate::providers::ModelReport>> {
    axum::Json(shared.workers.app().providers.report().await)
}

/// Liveness and readiness: the database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up"), (status = 503, description = "The database does not answer")))]
pub async fn healthz(State(shared): State<AppState>) -> impl IntoResponse {
    match shared.workers.app().database.count_runs().await {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(
                serde_json::json!({ "status": "ok", "active_runs": shared.workers.active() }),
            ),
        ),
        Err(error) => {
            tracing::error!(%error, "health check: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "unavailable" })),
            )
        }
    }
}

/// Prometheus metrics: runs by status, queue depth, node durations, WebSocket clients. They
/// are everyone's figures, so only admins (`montage user add NAME --admin`, or the local
/// user) may read them.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "No valid token", body = error::ErrorBody),
        (status = 403, description = "Not an admin", body = error::ErrorBody),
    ))]
pub async fn metrics(
    State(shared): State<AppState>,
    auth::Caller(caller): auth::Caller,
) -> Result<impl IntoResponse, ApiError> {
    if !caller.admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the metrics are the whole server's: only admins may read them",
        ));
    }
    let text = shared
        .workers
        .metrics()
        .render(&shared.workers.app().database)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

/// Opens the services, resumes what a previous server left, and serves on `addr` until
/// `stop` resolves. `on_listen` learns the bound address (port 0 picks a free one).
pub async fn serve(
    config: Config,
    addr: SocketAddr,
    on_listen: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let local = match config.server.auth {
        AuthMode::Tokens => false,
        AuthMode::Local if addr.ip().is_loopback() => true,
        AuthMode::Local => return Err(ServeError::Unprotected(addr)),
    };
    let config_hosts = config.server.allowed_hosts.clone();
    let replicate_webhook = webhooks::replicate_verifier(&config).map_err(ServeError::Webhooks)?;
    let app = App::open(config).await?;
    let local = match local {
        true => Some(app.database.local_user().await?),
        false => None,
    };
    let text = Arc::clone(&app.text);
    let workers = Workers::start(app, Arc::new(Metrics::new())).await?;
    let agent = crate::agent::Agent::new(workers.clone(), text);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: addr.to_string(),
        source,
    })?;
    on_listen(bound);
    let stopping = tokio_util::sync::CancellationToken::new();
    let hosts = Arc::new(guard::Hosts::new(bound, &config_hosts, local.is_some()));
    let shared = AppState {
        workers,
        local,
        agent,
        chats: Arc::new(chat_hub::ChatHub::default()),
        stopping: stopping.clone(),
        hosts,
        replicate_webhook: replicate_webhook.map(Arc::new),
    };
    let metrics = Arc::clone(shared.workers.metrics());
    let server = axum::serve(listener, router(shared))
        .with_graceful_shutdown(stopping.clone().cancelled_owned());
    // Open WebSockets would hold a graceful shutdown forever: they get a moment, no more.
    let deadline = async {
        stop.await;
        stopping.cancel();
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let served = tokio::select! {
        served = server => served.map_err(ServeError::Stopped),
        () = deadline => Ok(()),
    };
    // Upgraded connections outlive the HTTP server: their sessions are closing with 1001,
    // and the process must not end before those frames are out.
    let closing = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while metrics.websocket_sessions() > 0 && tokio::time::Instant::now() < closing {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    served
}

/// How long requests in flight get to finish once the server is asked to stop.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
