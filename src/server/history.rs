//! HTTP handlers of the report and the status history: `GET /api/v1/report` (the JSON report,
//! [`crate::report`]), `GET /api/v1/tenants/{tenant}/transitions` (stored test-status
//! transitions, oldest first) and `GET /api/v1/tenants/{tenant}/polls` (every poll counted per
//! connector and UTC day, and the full poll rows: failures, changes, first polls).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::server::auth::{Principal, Role};
use crate::server::extract::ApiQuery;
use crate::server::problem::{Problem, store_failed};
use crate::server::tenants::visible_tenant;
use crate::store::{PollDay, PollOutcome};

/// How many of a tenant's newest full poll rows `GET /api/v1/tenants/{tenant}/polls` answers.
pub const RECORDED_POLLS: u32 = 200;

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

/// Query of `GET /api/v1/tenants/{tenant}/polls`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollsQuery {
    /// Only the days whose last poll started at or after this instant, and the full rows that
    /// started at or after it (RFC 3339).
    since: Option<DateTime<Utc>>,
}

/// A tenant's polls: every poll is counted in its connector's day; a poll has a full row when
/// it was not a success, changed something (signals, gaps, statuses, scores, alerts,
/// evidence), or was its connector's first, the first after a failed one, or the tenant's
/// first since postured started.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollHistory {
    /// Per connector and UTC day, oldest day first: polls by outcome, how many have a full row,
    /// first and last poll times.
    pub days: Vec<PollDay>,
    /// The newest full poll rows (at most [`RECORDED_POLLS`]), newest first.
    pub recorded: Vec<RecordedPoll>,
}

/// One full poll row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedPoll {
    /// Connector that polled.
    pub connector: String,
    /// When the poll started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: PollOutcome,
    /// Key prefixes it could not collect (empty on success).
    pub gaps: Vec<String>,
}

/// `GET /api/v1/tenants/{tenant}/polls`: a tenant's poll counts per day and its full poll rows.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/polls",
    tag = "history",
    security(("bearer" = ["reader"])),
    params(("tenant" = String, Path, description = "Tenant id"), PollsQuery),
    responses(
        (status = 200, description = "Daily poll counts and full poll rows", body = PollHistory),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown tenant, or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn polls(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(tenant): Path<String>,
    ApiQuery(q): ApiQuery<PollsQuery>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    if let Err(p) = visible_tenant(&app, &principal, &tenant) {
        return p.into_response();
    }
    let read = async {
        let days = app.store.poll_days(&tenant, q.since).await?;
        let rows = app.store.recent_polls(&tenant, RECORDED_POLLS).await?;
        Ok::<_, crate::store::StoreError>((days, rows))
    };
    match read.await {
        Ok((days, rows)) => axum::Json(PollHistory {
            days,
            recorded: rows
                .into_iter()
                .filter(|p| q.since.is_none_or(|since| p.started_at >= since))
                .map(|p| RecordedPoll {
                    connector: p.connector,
                    started_at: p.started_at,
                    finished_at: p.finished_at,
                    outcome: p.outcome,
                    gaps: p.gaps.into_iter().map(|g| g.prefix).collect(),
                })
                .collect(),
        })
        .into_response(),
        Err(e) => store_failed(&app, e.kind()).into_response(),
    }
}
