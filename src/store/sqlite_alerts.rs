//! SQLite SQL of regressions and alerts: the poll-transaction writes (events, outbox rows,
//! detector state, category snapshots) and the [`AlertStore`] implementation.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;

use super::StoreError;
use super::alerts::{
    AlertStore, AssessmentDbRow, AssessmentSnapshot, CategoryDbRow, CategorySnapshot,
    EncodedAlerts, EventDbRow, OutboxDbRow, OutboxEntry, OutboxState, PruneReport, StoredEvent,
    changed_categories, decode_state,
};
use super::rows;
use super::sqlite::SqliteStore;
use crate::alerts::InstanceState;
use crate::evaluation::TenantEvaluation;

const INSERT_EVENT: &str = "INSERT INTO alert_events \
    (dedup_key, tenant, action_id, kind, severity, at, episode_started_at, event) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING RETURNING id";
const INSERT_OUTBOX: &str = "INSERT INTO alert_outbox \
    (event_id, notifier, alert_key, resolves, created_at, state, attempts, next_attempt_at) \
    VALUES (?, ?, ?, ?, ?, 'pending', 0, ?) ON CONFLICT (event_id, notifier) DO NOTHING";
const UPSERT_STATE: &str = "INSERT INTO alert_state (tenant, action_id, state, updated_at) \
    VALUES (?, ?, ?, ?) ON CONFLICT (tenant, action_id) DO UPDATE SET state = excluded.state, \
    updated_at = excluded.updated_at";
const SELECT_STATES: &str = "SELECT action_id, state FROM alert_state WHERE tenant = ?";
const SELECT_LATEST_CATEGORIES: &str = "SELECT c.category, c.points_achieved, \
    c.points_possible FROM category_snapshots c WHERE c.tenant = ? AND c.id = \
    (SELECT MAX(l.id) FROM category_snapshots l WHERE l.tenant = c.tenant \
    AND l.category = c.category)";
const SELECT_LATEST_ASSESSMENTS: &str = "SELECT a.assessment, a.points_achieved, \
    a.points_possible FROM assessment_snapshots a WHERE a.tenant = ? AND a.id = \
    (SELECT MAX(l.id) FROM assessment_snapshots l WHERE l.tenant = a.tenant \
    AND l.assessment = a.assessment)";
const INSERT_ASSESSMENT: &str = "INSERT INTO assessment_snapshots \
    (tenant, assessment, at, points_achieved, points_possible, ratio) \
    VALUES (?, ?, ?, ?, ?, ?)";
const SELECT_ASSESSMENTS: &str = "SELECT assessment, at, points_achieved, points_possible, \
    ratio FROM assessment_snapshots WHERE tenant = ? AND at >= ? \
    ORDER BY at, assessment, id";
const INSERT_CATEGORY: &str = "INSERT INTO category_snapshots \
    (tenant, category, at, points_achieved, points_possible, ratio) VALUES (?, ?, ?, ?, ?, ?)";
const SELECT_DUE: &str = "SELECT o.id, o.notifier, o.attempts, o.created_at, e.event \
    FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id \
    WHERE o.state = 'pending' AND o.next_attempt_at <= ? \
    AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.notifier = o.notifier \
    AND p.alert_key = o.alert_key AND p.state = 'pending' AND p.id < o.id) \
    ORDER BY o.id LIMIT ?";
const SELECT_FIRING: &str = "SELECT o.id, o.notifier, o.attempts, o.created_at, e.event \
    FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id \
    WHERE o.notifier = ? AND o.resolves = 0 AND o.state = 'delivered' \
    AND o.id = (SELECT MAX(n.id) FROM alert_outbox n \
    WHERE n.notifier = o.notifier AND n.alert_key = o.alert_key) ORDER BY o.id";
const MARK_DELIVERED: &str = "UPDATE alert_outbox SET state = 'delivered', delivered_at = ?, \
    attempts = attempts + 1, last_error = NULL WHERE id = ?";
const MARK_FAILED: &str = "UPDATE alert_outbox SET attempts = ?, \
    next_attempt_at = COALESCE(?, next_attempt_at), last_error = ?, state = ? WHERE id = ?";
const COUNT_PENDING: &str = "SELECT COUNT(*) FROM alert_outbox WHERE state = 'pending'";
const SELECT_EVENTS: &str = "SELECT id, dedup_key, event FROM alert_events \
    WHERE tenant = ? AND at >= ? ORDER BY at, id";
const SELECT_EVENTS_FOR_ACTION: &str = "SELECT id, dedup_key, event FROM alert_events \
    WHERE tenant = ? AND action_id = ? AND at >= ? ORDER BY at, id";
const SELECT_CATEGORIES: &str = "SELECT category, at, points_achieved, points_possible, ratio \
    FROM category_snapshots WHERE tenant = ? AND at >= ? ORDER BY at, category, id";
const PRUNE: [(&str, &str); 8] = [
    ("polls", "DELETE FROM polls WHERE started_at < ?"),
    (
        "signal_history",
        "DELETE FROM signal_history WHERE observed_at < ?",
    ),
    ("transitions", "DELETE FROM action_transitions WHERE at < ?"),
    (
        "snapshots",
        "DELETE FROM score_snapshots WHERE at < ? AND id NOT IN \
        (SELECT MAX(id) FROM score_snapshots GROUP BY tenant)",
    ),
    (
        "snapshots",
        "DELETE FROM category_snapshots WHERE at < ? AND id NOT IN \
        (SELECT MAX(id) FROM category_snapshots GROUP BY tenant, category)",
    ),
    (
        "snapshots",
        "DELETE FROM assessment_snapshots WHERE at < ? AND id NOT IN \
        (SELECT MAX(id) FROM assessment_snapshots GROUP BY tenant, assessment)",
    ),
    (
        "notifications",
        "DELETE FROM alert_outbox WHERE created_at < ? AND state <> 'pending' AND id NOT IN \
        (SELECT MAX(id) FROM alert_outbox GROUP BY notifier, alert_key)",
    ),
    (
        "events",
        "DELETE FROM alert_events WHERE at < ? AND NOT EXISTS \
        (SELECT 1 FROM alert_outbox o WHERE o.event_id = alert_events.id)",
    ),
];

super::alerts::alert_store_impl! {
    store = SqliteStore,
    conn = SqliteConnection,
    begin = |store| store.pool().begin_with("BEGIN IMMEDIATE")
}
