//! Alerts and their delivery: `GET /api/v1/alerts?tenant=&state=&limit=&cursor=`, the
//! notifications of the alert outbox (one per regression event and notifier, see
//! [`crate::store::alerts`]) with their delivery state (`pending`, `delivered`, `failed`),
//! attempts, last error and the event, newest first.
//!
//! Paging: `limit` items ([`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]); `next_cursor` continues
//! below the last row returned (rows are ordered by their id, which never changes, so a page
//! never repeats or skips a row; rows written between pages are newer and appear on a new
//! first page). A cursor of another listing (other tenant or state) is a 400. Rows of tenants
//! outside the caller's scope are left out; a tenant outside it is a 404.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::server::auth::{Principal, Role};
use crate::server::extract::ApiQuery;
use crate::server::problem::{INVALID_CURSOR, INVALID_QUERY, Problem, store_failed};
use crate::server::tenants::visible_tenant;
use crate::store::alerts::OutboxState;
use crate::store::{Notification, NotificationFilter};

/// Items a page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest `limit`.
pub const MAX_LIMIT: u32 = 500;

/// Query of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only this tenant's notifications.
    pub tenant: Option<String>,
    /// Only in this delivery state.
    #[param(value_type = Option<String>, pattern = "^(pending|delivered|failed)$")]
    pub state: Option<OutboxState>,
    /// Items a page: default 50, 1..=500.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of notifications.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertPage {
    /// Newest first.
    pub items: Vec<Notification>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The page size used.
    pub limit: u32,
}

/// The listing a cursor belongs to: its tenant and state.
fn listing(q: &AlertsQuery) -> String {
    format!(
        "{}|{}",
        q.tenant.as_deref().unwrap_or(""),
        q.state.map_or("", OutboxState::as_str)
    )
}

fn encode_cursor(q: &AlertsQuery, id: i64) -> String {
    hex::encode(format!("{}|{id}", listing(q)))
}

fn decode_cursor(q: &AlertsQuery, text: &str) -> Option<i64> {
    if text.len() > 1024 {
        return None;
    }
    let raw = String::from_utf8(hex::decode(text).ok()?).ok()?;
    let (prefix, id) = raw.rsplit_once('|')?;
    (prefix == listing(q)).then(|| id.parse().ok())?
}

/// `GET /api/v1/alerts`.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "list_alerts",
    tag = "alerts",
    security(("bearer" = ["reader"])),
    params(AlertsQuery),
    responses(
        (status = 200, description = "Notifications of the alert outbox with their delivery state, newest first", body = AlertPage),
        (status = 400, description = "Invalid query, limit out of range or a cursor of another listing", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown tenant, or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    match page(&app, &principal, &q).await {
        Ok(p) => Json(p).into_response(),
        Err(p) => p.into_response(),
    }
}

async fn page(app: &App, principal: &Principal, q: &AlertsQuery) -> Result<AlertPage, Problem> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(INVALID_QUERY.at(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_LIMIT} (default {DEFAULT_LIMIT})"),
        ));
    }
    if let Some(t) = &q.tenant {
        visible_tenant(app, principal, t)?;
    }
    let mut before_id = match &q.cursor {
        Some(c) => Some(decode_cursor(q, c).ok_or_else(|| {
            INVALID_CURSOR.at(
                StatusCode::BAD_REQUEST,
                "the cursor was not issued for this listing (same tenant and state)",
            )
        })?),
        None => None,
    };
    // One more than a page tells whether there is a next one; rows of tenants outside the
    // caller's scope are skipped, reading on until the page is full or the outbox ends.
    let mut items: Vec<Notification> = Vec::new();
    loop {
        let filter = NotificationFilter {
            tenant: q.tenant.as_deref(),
            state: q.state,
            before_id,
        };
        let rows = match app.store.notifications(filter, limit + 1).await {
            Ok(r) => r,
            Err(e) => return Err(store_failed(app, e.kind())),
        };
        let exhausted = rows.len() <= limit as usize;
        before_id = rows.last().map(|n| n.id);
        items.extend(
            rows.into_iter()
                .filter(|n| principal.scope.allows_tenant(&n.event.tenant)),
        );
        if items.len() > limit as usize || exhausted {
            break;
        }
    }
    let next_cursor = (items.len() > limit as usize).then(|| {
        items.truncate(limit as usize);
        encode_cursor(q, items.last().map_or(0, |n| n.id))
    });
    Ok(AlertPage {
        items,
        next_cursor,
        limit,
    })
}
