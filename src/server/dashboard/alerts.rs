//! `GET /alerts`: the recent alert events of the tenants in the principal's scope (regressions,
//! recoveries, stale signals, collection errors; the last [`ALERT_DAYS`] days, newest first,
//! at most [`MAX_ALERT_ROWS`]) and the state of delivery: notifications waiting in the outbox
//! and, per configured notifier, the alerts it holds firing. Read from the store; a store that
//! fails is said on the page.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, Utc};
use maud::html;

use crate::app::App;
use crate::model::InstanceScope;
use crate::server::dashboard::html_response;
use crate::server::dashboard::layout::{self, Nav, percent, points, status_badge, time};
use crate::server::dashboard::overview::action_href;
use crate::server::dashboard::session::SignedIn;
use crate::store::StoredEvent;

/// Days of events listed.
pub const ALERT_DAYS: i64 = 30;
/// Most events listed.
pub const MAX_ALERT_ROWS: usize = 200;

/// `GET /alerts`.
pub async fn page(State(app): State<Arc<App>>, signed: SignedIn) -> Response {
    let session = &signed.session;
    let since = Utc::now() - Duration::days(ALERT_DAYS);
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut failed = false;
    for t in app.tenants() {
        if !session.principal.scope.allows_tenant(&t.id) {
            continue;
        }
        match app.store.alert_events(&t.id, None, Some(since)).await {
            Ok(rows) => events.extend(rows),
            Err(e) => {
                app.metrics.observe_store_error(e.kind());
                failed = true;
            }
        }
    }
    events.sort_by(|a, b| b.event.at.cmp(&a.event.at).then(b.id.cmp(&a.id)));
    let total = events.len();
    events.truncate(MAX_ALERT_ROWS);
    let pending = match app.store.pending_notifications().await {
        Ok(n) => Some(n),
        Err(e) => {
            app.metrics.observe_store_error(e.kind());
            failed = true;
            None
        }
    };
    let mut notifiers = Vec::new();
    for n in &app.config.alerts.notifiers {
        match app.store.firing_alerts(&n.name).await {
            Ok(rows) => notifiers.push((n.name.as_str(), n.kind.as_str(), Some(rows.len()))),
            Err(e) => {
                app.metrics.observe_store_error(e.kind());
                failed = true;
                notifiers.push((n.name.as_str(), n.kind.as_str(), None));
            }
        }
    }
    let content = html! {
        h1 { "Alerts" }
        @if failed { p.error-summary role="status" { "Part of this page could not be read from the store." } }
        h2 { "Delivery" }
        p { "Notifications waiting in the outbox: "
            strong { @match pending { Some(n) => (n), None => "unknown" } } }
        @if notifiers.is_empty() {
            p.muted { "No notifier is configured ([[alerts.notifiers]]): events are kept in the ledger only." }
        } @else {
            table {
                thead { tr { th scope="col" { "Notifier" } th scope="col" { "Kind" } th scope="col" class="num" { "Alerts firing" } } }
                tbody { @for (name, kind, firing) in &notifiers {
                    tr { th scope="row" { (name) } td { (kind) } td.num { @match firing { Some(n) => (n), None => "unknown" } } }
                } }
            }
        }
        h2 { "Recent events" }
        p.muted { (total) " events in the last " (ALERT_DAYS) " days"
            @if total > events.len() { "; the newest " (events.len()) " are listed" } "." }
        table {
            thead { tr {
                th scope="col" { "When" }
                th scope="col" { "Tenant" }
                th scope="col" { "Improvement action" }
                th scope="col" { "Event" }
                th scope="col" { "Severity" }
                th scope="col" { "Status" }
                th scope="col" class="num" { "Points" }
                th scope="col" class="num" { "Score change" }
            } }
            tbody {
                @for e in &events {
                    @let ev = &e.event;
                    tr {
                        th scope="row" { (time(ev.at)) }
                        td { (ev.tenant) }
                        td { a href=(action_href(&InstanceScope::Tenant(ev.tenant.clone()), &ev.action_id)) { (ev.title) } }
                        td { (ev.kind.as_str().replace('_', " ")) }
                        td { (ev.severity.as_str()) }
                        td { @if let Some(o) = ev.old_status { (status_badge(o)) " → " } (status_badge(ev.new_status)) }
                        td.num { (points(ev.points_lost)) }
                        td.num { (if ev.score_delta > 0.0 { "+" } else { "" }) (percent(ev.score_delta)) }
                    }
                }
                @if events.is_empty() { tr { td colspan="8" { "No alert events." } } }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout::page("Alerts", Nav::Alerts, Some(session), content),
    )
}
