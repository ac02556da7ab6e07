//! HTTP server (axum): `/healthz`, `/metrics` and the API.
//!
//! Every route but `/healthz` (and `/metrics` when `[server] metrics_public = true`) requires
//! `Authorization: Bearer <api_token>`; without a configured token those routes answer 401.
//! The API never polls: it reads the app's latest evaluations and the store; its one write is a
//! person's manual action status (`PUT /api/v1/actions/{action}/status`, into the store).
//!
//! Routes:
//! - `GET /healthz` -> `200 ok` (liveness; the store is checked by `/readyz`)
//! - `GET /readyz` -> `200 ready` when the store is healthy (the database file is the one
//!   opened, a write probe commits, within `[store] health_timeout`), else 503 with the reason
//! - `GET /metrics` -> Prometheus text exposition
//! - `GET /api/v1/report` -> the JSON report (see [`crate::report`])
//! - `GET /api/v1/tenants/{tenant}/transitions?action=ID&since=RFC3339` -> status history
//! - `GET /api/v1/assessments`, `GET /api/v1/scores?...`, `PUT /api/v1/actions/{action}/status`
//!   -> the model's reports, filtered scores and manual statuses (see [`crate::server::assessments`])

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::report;

pub mod assessments;

/// Build the router for `app`.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/api/v1/report", get(report_json))
        .route("/api/v1/tenants/{tenant}/transitions", get(transitions))
        .route("/api/v1/assessments", get(assessments::assessments))
        .route("/api/v1/scores", get(assessments::scores))
        .route(
            "/api/v1/actions/{action}/status",
            put(assessments::set_status),
        );
    let metrics = Router::new().route("/metrics", get(metrics));
    let (public, private) = if app.config.server.metrics_public {
        (metrics, api)
    } else {
        (Router::new(), api.merge(metrics))
    };
    let private = private.route_layer(middleware::from_fn_with_state(app.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(public)
        .merge(private)
        .with_state(app)
}

/// Bind `listen` (port 0 picks one) and return the bound address and the serving future, which
/// ends when `cancel` fires.
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
    let serve = axum::serve(listener, router(app))
        .with_graceful_shutdown(async move { cancel.cancelled().await });
    Ok((addr, async move { serve.await }))
}

async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // `subtle`'s slice `ct_eq`: constant time in the bytes compared; only a length mismatch
    // returns early, which reveals the token's length and nothing of its content.
    let ok = match (&app.config.api_token, presented) {
        (Some(expected), Some(given)) => bool::from(
            expected
                .expose_secret()
                .as_bytes()
                .ct_eq(given.trim().as_bytes()),
        ),
        _ => false,
    };
    if ok {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or invalid bearer token\n",
        )
            .into_response()
    }
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

async fn report_json(State(app): State<Arc<App>>) -> Response {
    let evaluations = app.evaluations().await;
    let r = report::with_assessments(
        report::build(Utc::now(), &evaluations, |t| {
            app.tenant(t).and_then(|t| t.name.clone())
        }),
        &app.assessment_reports().await,
    );
    let ledgers = crate::report::ledger::for_report(
        app.store.as_ref(),
        &evaluations
            .iter()
            .map(|e| e.tenant.clone())
            .collect::<Vec<_>>(),
        Utc::now(),
    )
    .await;
    let r = report::with_ledger(r, &ledgers);
    axum::Json(r).into_response()
}

#[derive(Deserialize)]
struct HistoryQuery {
    action: Option<String>,
    since: Option<DateTime<Utc>>,
}

async fn transitions(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    if app.tenant(&tenant).is_none() {
        return (StatusCode::NOT_FOUND, "unknown tenant\n").into_response();
    }
    match app
        .store
        .transitions(&tenant, q.action.as_deref(), q.since)
        .await
    {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => {
            app.metrics.observe_store_error(e.kind());
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store unavailable: {}\n", e.kind()),
            )
                .into_response()
        }
    }
}
