//! HTTP handlers of the report and the status history: `GET /api/v1/report` (the JSON report,
//! [`crate::report`]) and `GET /api/v1/tenants/{tenant}/transitions` (stored test-status
//! transitions, oldest first).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::App;
use crate::server::auth::{Principal, Role};

/// `GET /api/v1/report`: the JSON report of every tenant.
#[utoipa::path(
    get,
    path = "/api/v1/report",
    tag = "report",
    security(("bearer" = ["reader"])),
    responses((status = 200, description = "The JSON report", body = serde_json::Value)),
)]
pub async fn report_json(State(app): State<Arc<App>>, principal: Principal) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    axum::Json(app.report(true).await).into_response()
}

/// Query of `GET /api/v1/tenants/{tenant}/transitions`.
#[derive(Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Only this improvement action.
    action: Option<String>,
    /// Only transitions at or after this instant (RFC 3339).
    since: Option<DateTime<Utc>>,
}

/// `GET /api/v1/tenants/{tenant}/transitions`: a tenant's test-status transitions.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/transitions",
    tag = "history",
    security(("bearer" = ["reader"])),
    params(("tenant" = String, Path, description = "Tenant id"), HistoryQuery),
    responses(
        (status = 200, description = "Transitions, oldest first", body = serde_json::Value),
        (status = 404, description = "Unknown tenant"),
        (status = 503, description = "Store unavailable"),
    ),
)]
pub async fn transitions(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(tenant): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    if let Err(p) = principal.require_tenant(Role::Reader, &tenant) {
        return p.into_response();
    }
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
