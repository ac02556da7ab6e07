//! HTTP handlers of the report and the status history: `GET /api/v1/report` (the JSON report,
//! [`crate::report`]) and `GET /api/v1/tenants/{tenant}/transitions` (stored test-status
//! transitions, oldest first).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::App;
use crate::server::auth::{Principal, Role};
use crate::server::extract::ApiQuery;
use crate::server::problem::{Problem, store_failed};
use crate::server::tenants::visible_tenant;

/// `GET /api/v1/report`: the JSON report of every tenant.
#[utoipa::path(
    get,
    path = "/api/v1/report",
    tag = "report",
    security(("bearer" = ["reader"])),
    responses(
        (status = 200, description = "The JSON report (tenants in the caller's scope)", body = crate::report::Report),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn report_json(State(app): State<Arc<App>>, principal: Principal) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let mut report = app.report(true).await;
    report
        .tenants
        .retain(|t| principal.scope.allows_tenant(&t.tenant));
    axum::Json(report).into_response()
}

/// Query of `GET /api/v1/tenants/{tenant}/transitions`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
        (status = 200, description = "Transitions, oldest first", body = Vec<crate::store::TransitionRow>),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown tenant, or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn transitions(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(tenant): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    if let Err(p) = visible_tenant(&app, &principal, &tenant) {
        return p.into_response();
    }
    match app
        .store
        .transitions(&tenant, q.action.as_deref(), q.since)
        .await
    {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => store_failed(&app, e.kind()).into_response(),
    }
}
