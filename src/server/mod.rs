//! HTTP server (axum): `/healthz`, `/metrics` and the API.
//!
//! Every route but `/healthz`, `/readyz` (and `/metrics` when `[server] metrics_public =
//! true`) requires `Authorization: Bearer <token>`, resolved into a caller with a role and a
//! scope by [`auth`]; each handler checks the role it needs. Without valid credentials a route
//! answers 401 (problem details, `WWW-Authenticate: Bearer`), without the role 403.
//!
//! Connections are served by hyper's HTTP/1 server over a `TcpListener` loop ([`serve`]) with
//! the `[server]` limits: a request head must arrive within `header_read_timeout` (an idle
//! keep-alive connection included), a request must be answered within `request_timeout` (else
//! 408), and at most `max_connections` are open at once (one more is closed at once).
//! The API never polls: it reads the app's latest evaluations and the store; it writes what a
//! person records for an action instance: the manual status (`PUT
//! /api/v1/actions/{action}/status`) and evidence, each change with its audit rows.
//!
//! Routes:
//! - `GET /healthz` -> `200 ok` (liveness; the store is checked by `/readyz`)
//! - `GET /readyz` -> `200 ready` when the store is healthy (the database file is the one
//!   opened, a write probe commits, within `[store] health_timeout`), else 503 with the reason
//! - `GET /metrics` -> Prometheus text exposition
//! - `GET /api/v1/openapi.json` -> the OpenAPI 3.1 document of the API ([`api`])
//! - `GET /api/v1/report`, `GET /api/v1/tenants/{tenant}/transitions?action=ID&since=RFC3339`
//!   -> the JSON report and status history ([`history`])
//! - `GET /api/v1/assessments`, `GET /api/v1/scores?...`, `PUT /api/v1/actions/{action}/status`
//!   -> the model's reports, filtered scores and manual statuses (see [`crate::server::assessments`])
//! - `POST|GET /api/v1/actions/{action}/evidence`, `GET|DELETE /api/v1/evidence/{id}` ->
//!   evidence files and links ([`evidence`])
//! - `GET /api/v1/audit`, `GET /api/v1/audit/export` -> the append-only audit log ([`audit`])
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

pub mod api;
pub mod assessments;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod evidence;
pub mod history;
pub mod input;
pub mod problem;

/// Build the router for `app`.
pub fn router(app: Arc<App>) -> Router {
    let (api, _doc) = api::routes();
    let metrics = Router::new().route("/metrics", get(metrics));
    let (public, private) = if app.config.server.metrics_public {
        (metrics, api)
    } else {
        (Router::new(), api.merge(metrics))
    };
    let private = private.route_layer(middleware::from_fn_with_state(
        app.clone(),
        auth::authenticate,
    ));
    let request_timeout = app.config.server.request_timeout;
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(public)
        .merge(private)
        .merge(dashboard::routes(&app))
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

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}
