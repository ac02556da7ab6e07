//! PostgreSQL SQL of regressions and alerts: the poll-transaction writes (events, outbox rows,
//! detector state, category snapshots) and the [`AlertStore`] implementation.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use super::StoreError;
use super::alerts::{
    AlertStore, AssessmentDbRow, AssessmentSnapshot, CategoryDbRow, CategorySnapshot,
    EncodedAlerts, EventDbRow, OutboxDbRow, OutboxEntry, OutboxState, PruneReport, StoredEvent,
    changed_categories, decode_state,
};
use super::postgres::PostgresStore;
use super::rows;
use crate::alerts::InstanceState;
use crate::evaluation::TenantEvaluation;

const INSERT_EVENT: &str = "INSERT INTO alert_events \
    (dedup_key, tenant, action_id, kind, severity, at, episode_started_at, event) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedup_key) DO NOTHING RETURNING id";
const INSERT_OUTBOX: &str = "INSERT INTO alert_outbox \
    (event_id, notifier, alert_key, resolves, created_at, state, attempts, next_attempt_at) \
    VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6) ON CONFLICT (event_id, notifier) DO NOTHING";
const UPSERT_STATE: &str = "INSERT INTO alert_state (tenant, action_id, state, updated_at) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, action_id) DO UPDATE SET state = excluded.state, \
    updated_at = excluded.updated_at";
const SELECT_STATES: &str = "SELECT action_id, state FROM alert_state WHERE tenant = $1";
const SELECT_LATEST_CATEGORIES: &str = "SELECT c.category, c.points_achieved, \
    c.points_possible FROM category_snapshots c WHERE c.tenant = $1 AND c.id = \
    (SELECT MAX(l.id) FROM category_snapshots l WHERE l.tenant = c.tenant \
    AND l.category = c.category)";
const SELECT_LATEST_ASSESSMENTS: &str = "SELECT a.assessment, a.points_achieved, \
    a.points_possible FROM assessment_snapshots a WHERE a.tenant = $1 AND a.id = \
    (SELECT MAX(l.id) FROM assessment_snapshots l WHERE l.tenant = a.tenant \
    AND l.assessment = a.assessment)";
const INSERT_ASSESSMENT: &str = "INSERT INTO assessment_snapshots \
    (tenant, assessment, at, points_achieved, points_possible, ratio) \
    VALUES ($1, $2, $3, $4, $5, $6)";
const SELECT_ASSESSMENTS: &str = "SELECT assessment, at, points_achieved, points_possible, \
    ratio FROM assessment_snapshots WHERE tenant = $1 AND at >= $2 \
    ORDER BY at, assessment, id";
const INSERT_CATEGORY: &str = "INSERT INTO category_snapshots \
    (tenant, category, at, points_achieved, points_possible, ratio) VALUES ($1, $2, $3, $4, $5, $6)";
const SELECT_DUE: &str = "SELECT o.id, o.notifier, o.attempts, o.created_at, e.event \
    FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id \
    WHERE o.state = 'pending' AND o.next_attempt_at <= $1 \
    AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.notifier = o.notifier \
    AND p.alert_key = o.alert_key AND p.state = 'pending' AND p.id < o.id) \
    ORDER BY o.id LIMIT $2";
const SELECT_FIRING: &str = "SELECT o.id, o.notifier, o.attempts, o.created_at, e.event \
    FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id \
    WHERE o.notifier = $1 AND o.resolves = 0 AND o.state = 'delivered' \
    AND o.id = (SELECT MAX(n.id) FROM alert_outbox n \
    WHERE n.notifier = o.notifier AND n.alert_key = o.alert_key) ORDER BY o.id";
const MARK_DELIVERED: &str = "UPDATE alert_outbox SET state = 'delivered', delivered_at = $1, \
    attempts = attempts + 1, last_error = NULL WHERE id = $2";
const MARK_FAILED: &str = "UPDATE alert_outbox SET attempts = $1, \
    next_attempt_at = COALESCE($2, next_attempt_at), last_error = $3, state = $4 WHERE id = $5";
const COUNT_PENDING: &str = "SELECT COUNT(*) FROM alert_outbox WHERE state = 'pending'";
const SELECT_EVENTS: &str = "SELECT id, dedup_key, event FROM alert_events \
    WHERE tenant = $1 AND at >= $2 ORDER BY at, id";
const SELECT_EVENTS_FOR_ACTION: &str = "SELECT id, dedup_key, event FROM alert_events \
    WHERE tenant = $1 AND action_id = $2 AND at >= $3 ORDER BY at, id";
const SELECT_CATEGORIES: &str = "SELECT category, at, points_achieved, points_possible, ratio \
    FROM category_snapshots WHERE tenant = $1 AND at >= $2 ORDER BY at, category, id";
const PRUNE: [(&str, &str); 8] = [
    ("polls", "DELETE FROM polls WHERE started_at < $1"),
    (
        "signal_history",
        "DELETE FROM signal_history WHERE observed_at < $1",
    ),
    (
        "transitions",
        "DELETE FROM action_transitions WHERE at < $1",
    ),
    (
        "snapshots",
        "DELETE FROM score_snapshots WHERE at < $1 AND id NOT IN \
        (SELECT MAX(id) FROM score_snapshots GROUP BY tenant)",
    ),
    (
        "snapshots",
        "DELETE FROM category_snapshots WHERE at < $1 AND id NOT IN \
        (SELECT MAX(id) FROM category_snapshots GROUP BY tenant, category)",
    ),
    (
        "snapshots",
        "DELETE FROM assessment_snapshots WHERE at < $1 AND id NOT IN \
        (SELECT MAX(id) FROM assessment_snapshots GROUP BY tenant, assessment)",
    ),
    (
        "notifications",
        "DELETE FROM alert_outbox WHERE created_at < $1 AND state <> 'pending' AND id NOT IN \
        (SELECT MAX(id) FROM alert_outbox GROUP BY notifier, alert_key)",
    ),
    (
        "events",
        "DELETE FROM alert_events WHERE at < $1 AND NOT EXISTS \
        (SELECT 1 FROM alert_outbox o WHERE o.event_id = alert_events.id)",
    ),
];

impl PostgresStore {
    /// The alert writes of one poll, inside its transaction: events (skipping any already
    /// stored under the same dedup key, with their outbox rows), detector states, and the
    /// category snapshots that changed.
    pub(crate) async fn write_alerts(
        conn: &mut PgConnection,
        tenant: &str,
        written_at: i64,
        alerts: &EncodedAlerts<'_>,
        evaluation: &TenantEvaluation,
    ) -> Result<(), StoreError> {
        for e in &alerts.events {
            let id: Option<i64> = sqlx::query_scalar(INSERT_EVENT)
                .bind(&e.dedup_key)
                .bind(tenant)
                .bind(e.action_id)
                .bind(e.kind)
                .bind(e.severity)
                .bind(e.at)
                .bind(e.episode_started_at)
                .bind(&e.json)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(id) = id else { continue };
            for n in e.notifiers {
                sqlx::query(INSERT_OUTBOX)
                    .bind(id)
                    .bind(n)
                    .bind(&e.alert_key)
                    .bind(e.resolves)
                    .bind(written_at)
                    .bind(written_at)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        for s in &alerts.states {
            sqlx::query(UPSERT_STATE)
                .bind(tenant)
                .bind(s.action_id)
                .bind(&s.json)
                .bind(written_at)
                .execute(&mut *conn)
                .await?;
        }
        let latest: HashMap<String, (f64, f64)> =
            sqlx::query_as::<_, (String, f64, f64)>(SELECT_LATEST_CATEGORIES)
                .bind(tenant)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(c, a, p)| (c, (a, p)))
                .collect();
        let at = rows::to_millis(evaluation.evaluated_at);
        for (category, s) in changed_categories(&evaluation.categories, &latest) {
            sqlx::query(INSERT_CATEGORY)
                .bind(tenant)
                .bind(category)
                .bind(at)
                .bind(s.points_achieved)
                .bind(s.points_possible)
                .bind(s.ratio)
                .execute(&mut *conn)
                .await?;
        }
        let latest: HashMap<String, (f64, f64)> =
            sqlx::query_as::<_, (String, f64, f64)>(SELECT_LATEST_ASSESSMENTS)
                .bind(tenant)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(c, a, p)| (c, (a, p)))
                .collect();
        for (assessment, s) in changed_categories(alerts.assessments, &latest) {
            sqlx::query(INSERT_ASSESSMENT)
                .bind(tenant)
                .bind(assessment)
                .bind(at)
                .bind(s.points_achieved)
                .bind(s.points_possible)
                .bind(s.ratio)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl AlertStore for PostgresStore {
    async fn load_alert_state(
        &self,
        tenant: &str,
    ) -> Result<HashMap<String, InstanceState>, StoreError> {
        let rows = sqlx::query_as::<_, (String, String)>(SELECT_STATES)
            .bind(tenant)
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|(id, raw)| Ok((id, decode_state(&raw)?)))
            .collect()
    }

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query_as::<_, OutboxDbRow>(SELECT_DUE)
            .bind(rows::to_millis(now))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, OutboxDbRow::into_entry)
    }

    async fn mark_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(MARK_DELIVERED)
            .bind(rows::to_millis(at))
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn mark_attempt_failed(
        &self,
        id: i64,
        attempts: u32,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), StoreError> {
        let state = if retry_at.is_some() {
            OutboxState::Pending
        } else {
            OutboxState::Failed
        };
        sqlx::query(MARK_FAILED)
            .bind(i64::from(attempts))
            .bind(retry_at.map(rows::to_millis))
            .bind(error)
            .bind(state.as_str())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn pending_notifications(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_PENDING)
            .fetch_one(self.pool())
            .await?)
    }

    async fn firing_alerts(&self, notifier: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query_as::<_, OutboxDbRow>(SELECT_FIRING)
            .bind(notifier)
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, OutboxDbRow::into_entry)
    }

    async fn alert_events(
        &self,
        tenant: &str,
        action: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let query = match action {
            Some(a) => sqlx::query_as::<_, EventDbRow>(SELECT_EVENTS_FOR_ACTION)
                .bind(tenant)
                .bind(a),
            None => sqlx::query_as::<_, EventDbRow>(SELECT_EVENTS).bind(tenant),
        };
        let rows = query
            .bind(rows::since_millis(since))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, EventDbRow::into_event)
    }

    async fn category_history(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<CategorySnapshot>, StoreError> {
        let rows = sqlx::query_as::<_, CategoryDbRow>(SELECT_CATEGORIES)
            .bind(tenant)
            .bind(rows::since_millis(since))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, CategoryDbRow::into_snapshot)
    }

    async fn assessment_history(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AssessmentSnapshot>, StoreError> {
        let rows = sqlx::query_as::<_, AssessmentDbRow>(SELECT_ASSESSMENTS)
            .bind(tenant)
            .bind(rows::since_millis(since))
            .fetch_all(self.pool())
            .await?;
        rows::decode_all(rows, AssessmentDbRow::into_snapshot)
    }

    async fn prune_history(&self, before: DateTime<Utc>) -> Result<PruneReport, StoreError> {
        let before = rows::to_millis(before);
        let mut report = PruneReport::default();
        let mut tx = self.pool().begin().await?;
        for (what, sql) in PRUNE {
            let n = sqlx::query(sql)
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            match what {
                "polls" => report.polls += n,
                "signal_history" => report.signal_history += n,
                "transitions" => report.transitions += n,
                "snapshots" => report.snapshots += n,
                "notifications" => report.notifications += n,
                _ => report.events += n,
            }
        }
        tx.commit().await?;
        Ok(report)
    }
}
