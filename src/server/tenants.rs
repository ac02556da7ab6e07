//! Tenants: `GET /api/v1/tenants` (every tenant in the caller's scope) and
//! `GET /api/v1/tenants/{tenant}` (one), each with its connectors' last poll (time, outcome,
//! the namespaces it could not collect) and the compliance score of its latest evaluation.
//!
//! The score and evaluation come from the app's memory; the last polls from the store (each
//! connector's latest poll, [`Store::last_polls`](crate::store::Store::last_polls): also the
//! successful polls that changed nothing, which have no full poll row). A tenant outside the
//! caller's scope is left out of the list and answered 404 [`UNKNOWN_TENANT`] on its own, as an
//! unknown one is.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::{App, TenantRuntime};
use crate::evaluation::ScoreSummary;
use crate::server::auth::{Principal, Role};
use crate::server::problem::{Problem, UNKNOWN_TENANT, store_failed};
use crate::store::PollOutcome;

/// One tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantSummary {
    /// Tenant id.
    pub id: String,
    /// Display name, if configured.
    pub name: Option<String>,
    /// When the latest evaluation ran; `null` before the first poll.
    pub evaluated_at: Option<DateTime<Utc>>,
    /// The tenant's compliance score (over the de-duplicated instances of its assessments);
    /// `null` before the first poll.
    pub score: Option<ScoreSummary>,
    /// Its connectors in configuration order.
    pub connectors: Vec<ConnectorSummary>,
}

/// One connector of a tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectorSummary {
    /// Connector id within the tenant (`msgraph`, `http_json.github_org`).
    pub id: String,
    /// Connector kind.
    pub kind: String,
    /// Cron schedule as configured (seconds first).
    pub schedule: String,
    /// Its last stored poll; `null` when it has none.
    pub last_poll: Option<LastPoll>,
}

/// A connector's last stored poll.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LastPoll {
    /// When the poll started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: PollOutcome,
    /// Key prefixes it could not collect (empty on success).
    pub gaps: Vec<String>,
    /// When the connector's latest successful poll ended; `null` when none is stored.
    pub last_success_at: Option<DateTime<Utc>>,
}

/// The summary of `tenant`: connectors with their last poll (from the store) and its score.
async fn summary(app: &App, tenant: &TenantRuntime) -> Result<TenantSummary, Problem> {
    let polls = match app.store.last_polls(&tenant.id).await {
        Ok(p) => p,
        Err(e) => return Err(store_failed(app, e.kind())),
    };
    let evaluation = app.last_score(&tenant.id).await;
    let connectors = tenant
        .connectors
        .iter()
        .map(|slot| ConnectorSummary {
            id: slot.config.id.clone(),
            kind: slot.config.kind.to_owned(),
            schedule: slot.config.schedule_text.clone(),
            last_poll: polls
                .iter()
                .find(|p| p.connector == slot.config.id)
                .map(|p| LastPoll {
                    started_at: p.started_at,
                    finished_at: p.finished_at,
                    outcome: p.outcome,
                    gaps: p.gaps.iter().map(|g| g.prefix.clone()).collect(),
                    last_success_at: p.last_success_at,
                }),
        })
        .collect();
    Ok(TenantSummary {
        id: tenant.id.clone(),
        name: tenant.name.clone(),
        evaluated_at: evaluation.map(|(at, _)| at),
        score: evaluation.map(|(_, score)| score),
        connectors,
    })
}

/// The tenant `id` if it exists and is in the caller's scope, else a 404 problem.
pub fn visible_tenant<'a>(
    app: &'a App,
    principal: &Principal,
    id: &str,
) -> Result<&'a Arc<TenantRuntime>, Problem> {
    app.tenant(id)
        .filter(|_| principal.scope.allows_tenant(id))
        .ok_or_else(|| {
            UNKNOWN_TENANT.at(
                StatusCode::NOT_FOUND,
                format!(
                    "no tenant {:?} (or not in the caller's scope)",
                    crate::server::problem::excerpt(id, 128)
                ),
            )
        })
}

/// `GET /api/v1/tenants`.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    operation_id = "list_tenants",
    tag = "tenants",
    security(("bearer" = ["reader"])),
    responses(
        (status = 200, description = "Every tenant in the caller's scope, in configuration order", body = Vec<TenantSummary>),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(State(app): State<Arc<App>>, principal: Principal) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let mut out = Vec::new();
    for t in app.tenants() {
        if !principal.scope.allows_tenant(&t.id) {
            continue;
        }
        match summary(&app, t).await {
            Ok(s) => out.push(s),
            Err(p) => return p.into_response(),
        }
    }
    Json(out).into_response()
}

/// `GET /api/v1/tenants/{tenant}`.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}",
    operation_id = "get_tenant",
    tag = "tenants",
    security(("bearer" = ["reader"])),
    params(("tenant" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant", body = TenantSummary),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown tenant, or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(tenant): Path<String>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let t = match visible_tenant(&app, &principal, &tenant) {
        Ok(t) => t,
        Err(p) => return p.into_response(),
    };
    match summary(&app, t).await {
        Ok(s) => Json(s).into_response(),
        Err(p) => p.into_response(),
    }
}
