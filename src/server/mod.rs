//! HTTP server (axum): `/healthz`, `/metrics` and the API.
//!
//! Every route but `/healthz`, `/readyz` (and `/metrics` when `[server] metrics_public =
//! true`) requires `Authorization: Bearer <token>`, resolved into a caller with a role and a
//! scope by [`auth`] (an API token of [`tokens`], a JWT of the identity provider verified by
//! [`oidc`], or the shared `[server] api_token`); each handler checks the role it needs.
//! Without valid credentials a route answers 401 (problem details, `WWW-Authenticate: Bearer`),
//! without the role 403.
//!
//! Connections are served by hyper's HTTP/1 server over a `TcpListener` loop ([`serve`]) with
//! the `[server]` limits: a request head must arrive within `header_read_timeout` (an idle
//! keep-alive connection included), a request must be answered within `request_timeout` (else
//! 408), and at most `max_connections` are open at once (one more is closed at once).
//! The API never polls: it reads the app's latest evaluations and the store; its writes are what a
//! person records for an action instance (the manual status, `PUT
//! /api/v1/actions/{action}/status`, and evidence, each change with its audit rows) and an
//! imported template (`POST /api/v1/templates`, into the store and the registry). Every
//! `/api/v1` route is declared with `#[utoipa::path]` (its parameters, bodies, answers and
//! least role) and collected by [`api::routes`]; errors are [`problem`] details.
//!
//! Routes:
//! - `GET /healthz` -> `200 ok` (liveness; the store is checked by `/readyz`)
//! - `GET /readyz` -> `200 ready` when the store is healthy (the database file is the one
//!   opened, a write probe commits, within `[store] health_timeout`), else 503 with the reason
//! - `GET /metrics` -> Prometheus text exposition
//! - `GET /api/v1/openapi.json` -> the OpenAPI 3.1 document of the API ([`api`])
//! - `GET /api/v1/tenants`, `GET /api/v1/tenants/{tenant}` -> tenants with their connectors'
//!   last poll and score ([`tenants`])
//! - `GET /api/v1/score` (and its earlier name `/api/v1/scores`), `GET /api/v1/assessments`,
//!   `GET /api/v1/assessments/{tenant}/{assessment}`,
//!   `GET /api/v1/assessments/{tenant}/{assessment}/controls/{control}`,
//!   `PUT /api/v1/actions/{action}/status` -> the model's scores, reports and manual statuses
//!   ([`assessments`])
//! - `GET /api/v1/actions`, `GET /api/v1/actions/{action}` -> action instances, filtered,
//!   sorted and paged, and one in detail ([`actions`])
//! - `GET|POST /api/v1/templates`, `GET /api/v1/templates/{id}`,
//!   `GET /api/v1/templates/{id}/export`, `GET /api/v1/assessments/{tenant}/{assessment}/export`
//!   -> templates and exports ([`templates`])
//! - `GET /api/v1/alerts` -> the alert outbox with delivery state ([`alerts`])
//! - `GET /api/v1/report`, `GET /api/v1/tenants/{tenant}/transitions?action=ID&since=RFC3339`
//!   -> the JSON report and status history ([`history`])
//! - `POST|GET /api/v1/actions/{action}/evidence`, `GET|DELETE /api/v1/evidence/{id}` ->
//!   evidence files and links ([`evidence`])
//! - `GET /api/v1/audit`, `GET /api/v1/audit/export` -> the append-only audit log ([`audit`])
//! - `GET /api/v1/tokens`, `POST /api/v1/tokens`, `DELETE /api/v1/tokens/{id}` -> API tokens,
//!   for an administrator without a scope ([`tokens`])
//! - `/`, `/assessments`, `/actions/...`, `/alerts`, `/sign-in`: the web dashboard for people
//!   (HTML; session cookie instead of a bearer token; not part of the API, see [`dashboard`])

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;
use crate::config::ServerConfig;

pub mod actions;
pub mod alerts;
pub mod api;
pub mod assessments;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod evidence;
pub mod extract;
pub mod history;
pub mod input;
pub mod oidc;
pub mod problem;
pub mod templates;
pub mod tenants;
pub mod token_cache;
pub mod tokens;

/// Build the router for `app`.
pub fn router(app: Arc<App>) -> Router {
    let (api, _doc) = api::routes();
    let metrics = Router::new().route("/metrics", get(metrics));
    let (public, private) = if app.config.server.metrics_public {
        (metrics, api)
    } else {
        (Router::new(), api.merge(metrics))
    };
    let auth_state = auth::AuthState::new(app.clone());
    let private = private.route_layer(middleware::from_fn_with_state(
        auth_state.clone(),
        auth::authenticate,
    ));
    let request_timeout = app.config.server.request_timeout;
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(public)
        .merge(private)
        .merge(dashboard::routes(&app, auth_state))
        .fallback(no_such_route)
        .with_state(app)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
}

/// Bind `listen` (port 0 picks one) and return the bound address and the serving future
/// ([`serve`]), which ends when `cancel` fires.
pub async fn bind(
    app: Arc<App>,
    listen: &str,
    cancel: CancellationToken,
) -> std::io::Result<(
    SocketAddr,
    impl Future<Output = std::io::Result<()>> + use<>,
)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    Ok((addr, serve(app, listener, cancel)))
}

/// Serve the API on `listener` until `cancel` fires, with the `[server]` limits: each
/// connection holds one of `max_connections` permits (a connection accepted without one is
/// closed at once), must deliver each request head within `header_read_timeout`, and each
/// request is answered within `request_timeout`. On cancellation the listener closes,
/// connections finish their request in flight and close, and the future ends when all have.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let limits: ServerConfig = app.config.server.clone();
    let service = TowerToHyperService::new(router(app));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors (or a connection reset before it was accepted): wait
                // a little rather than spin, as hyper's and axum's servers do.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, limit = limits.max_connections, "connection limit reached: closing the new connection");
            drop(stream);
            continue;
        };
        let (service, cancel) = (service.clone(), cancel.clone());
        let header_read_timeout = limits.header_read_timeout;
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// The answer of a path no route has: a 404 problem.
async fn no_such_route(uri: axum::http::Uri) -> Response {
    problem::NO_SUCH_ROUTE
        .at(
            StatusCode::NOT_FOUND,
            format!(
                "no route has the path {:?}",
                problem::excerpt(uri.path(), 200)
            ),
        )
        .into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.check_store().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => {
            let why = match reason {
                "file_replaced" => {
                    "the database file was removed or replaced after it was opened; \
                    restart postured"
                }
                "timeout" => "the health check took longer than [store] health_timeout",
                _ => "the write probe failed; see the logs",
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store unhealthy: {reason}: {why}\n"),
            )
                .into_response()
        }
    }
}

/// Bytes of `/metrics` text handed to the response at a time.
const METRICS_CHUNK: usize = 256 * 1024;
/// Chunks rendered ahead of what the client has read.
const METRICS_CHUNKS_AHEAD: usize = 4;

/// `/metrics`: rendered on a blocking thread (tens of milliseconds for a large fleet), so the
/// async workers keep serving and the rendering never waits for a poll; streamed in chunks of
/// [`METRICS_CHUNK`] bytes with at most [`METRICS_CHUNKS_AHEAD`] rendered ahead of the client,
/// so a scrape of 1 M series does not hold its ~100 MB text. When the client goes away the
/// rendering runs to its end without sending (a bounded cost: one rendering).
async fn metrics(State(app): State<Arc<App>>) -> Response {
    let metrics = app.metrics.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(METRICS_CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut open = true;
        metrics.render_chunks(METRICS_CHUNK, &mut |chunk| {
            open = open && tx.blocking_send(chunk).is_ok();
        });
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}
