//! HTTP handlers of the append-only audit log (mounted by `crate::server::api`):
//!
//! - `GET /api/v1/audit?tenant=&group=&action=&actor=&since=&until=&cursor=&limit=` -> `{
//!   "entries": [...], "next_cursor" }`: rows by increasing id, at most `limit` (default
//!   [`DEFAULT_AUDIT_LIMIT`], at most [`MAX_AUDIT_PAGE`]); pass `next_cursor` as `cursor` for
//!   the next page (`null` on the last one).
//! - `GET /api/v1/audit/export?format=csv|json&...` -> every matching row (the same filters),
//!   at most [`crate::report::audit::MAX_EXPORT_ROWS`] (else 422
//!   `/problems/export-too-large`), as an attachment.
//!
//! A caller limited to some tenants or groups sees only the rows of its tenants and groups
//! (rows of neither, such as token events, only callers without a limit see). Readers may read
//! the log; nobody may change it (there is no route that would).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::report::audit::{AuditFormat, ExportError, load, render};
use crate::server::auth::{Principal, Role, Scope};
use crate::server::extract::ApiQuery;
use crate::server::problem;
use crate::store::audit::MAX_AUDIT_PAGE;
use crate::store::{AuditEntry, AuditFilter};

/// Rows per page when `limit` is not given.
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;

/// Filters of `GET /api/v1/audit` and `GET /api/v1/audit/export`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only rows of this tenant.
    pub tenant: Option<String>,
    /// Only rows of this group.
    pub group: Option<String>,
    /// Only this verb (`action.update`, `evidence.add`, `evidence.withdraw`, `token.create`).
    pub action: Option<String>,
    /// Only this actor (`token:<id>`, `oidc:<sub>`, `api_token`, `cli:<user>`).
    pub actor: Option<String>,
    /// Only rows at or after this instant (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only rows before this instant (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Rows per page (1 to 1000; default 100). Ignored by the export.
    pub limit: Option<u32>,
    /// Export format (`csv` or `json`; default `json`). Only for the export.
    pub format: Option<AuditFormat>,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            tenant: self.tenant.clone(),
            group: self.group.clone(),
            action: self.action.clone(),
            actor: self.actor.clone(),
            since: self.since,
            until: self.until,
            after: self.cursor,
            ..AuditFilter::default()
        }
    }
}

/// One page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Rows by increasing id.
    pub entries: Vec<AuditEntry>,
    /// Cursor of the next page; `null` on the last page.
    pub next_cursor: Option<i64>,
}

/// Whether the caller's scope covers an audit row.
fn visible(scope: &Scope, entry: &AuditEntry) -> bool {
    if scope.is_unlimited() {
        return true;
    }
    match (&entry.record.tenant, &entry.record.group) {
        (Some(t), _) => scope.allows_tenant(t),
        (None, Some(g)) => scope.allows_group(g),
        (None, None) => false,
    }
}

/// `GET /api/v1/audit`: one page of the audit log.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    security(("bearer" = ["reader"])),
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of audit rows", body = AuditPage),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Invalid query (problem `/problems/invalid-query`)", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn audit(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let limit = q.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return problem::INVALID_QUERY
            .at(
                StatusCode::BAD_REQUEST,
                format!("limit must be between 1 and {MAX_AUDIT_PAGE}"),
            )
            .into_response();
    }
    match app.store.audit_entries(&q.filter(), limit).await {
        Ok(rows) => {
            let next_cursor = (rows.len() == limit as usize)
                .then(|| rows.last().map(|r| r.id))
                .flatten();
            let entries = rows
                .into_iter()
                .filter(|e| visible(&principal.scope, e))
                .collect();
            axum::Json(AuditPage {
                entries,
                next_cursor,
            })
            .into_response()
        }
        Err(e) => problem::store_failed(&app, e.kind()).into_response(),
    }
}

/// `GET /api/v1/audit/export`: every matching audit row as a CSV or JSON attachment.
#[utoipa::path(
    get,
    path = "/api/v1/audit/export",
    tag = "audit",
    security(("bearer" = ["reader"])),
    params(AuditQuery),
    responses(
        (status = 200, description = "The rows, oldest first (text/csv or application/json)", body = Vec<AuditEntry>),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Invalid query (problem `/problems/invalid-query`)", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Too many rows (problem `/problems/export-too-large`)", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn export(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let format = q.format.unwrap_or(AuditFormat::Json);
    let rows = match load(app.store.as_ref(), &q.filter()).await {
        Ok(rows) => rows,
        Err(ExportError::TooLarge) => {
            return problem::EXPORT_TOO_LARGE
                .at(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ExportError::TooLarge.to_string(),
                )
                .into_response();
        }
        Err(ExportError::Store(e)) => return problem::store_failed(&app, e.kind()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "audit export failed");
            return problem::INTERNAL
                .at(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the export could not be encoded",
                )
                .into_response();
        }
    };
    let rows: Vec<AuditEntry> = rows
        .into_iter()
        .filter(|e| visible(&principal.scope, e))
        .collect();
    let body = match render(&rows, format) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "audit export failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let name = match format {
        AuditFormat::Csv => "attachment; filename=\"postured-audit.csv\"",
        AuditFormat::Json => "attachment; filename=\"postured-audit.json\"",
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(name));
    response
}
