//! Persistence: the only module with SQL.
//!
//! One [`Store`] trait, implemented for SQLite (default: a file in WAL mode) and, later,
//! PostgreSQL, with per-backend migrations under `migrations/<backend>/` embedded at build time
//! and applied at start. Each poll is written in one transaction: the poll row, the signals,
//! the changed action statuses and the status transitions.

pub mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::evaluation::{ActionState, TenantEvaluation, Transition};
use crate::signals::{Signal, SignalGap};

/// Store failures. `kind()` is a bounded metric label.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or a statement failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be decoded (unknown status name, bad JSON ...).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

impl StoreError {
    /// Bounded label: `database`, `migration` or `corrupt`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Database(_) => "database",
            StoreError::Migration(_) => "migration",
            StoreError::Corrupt { .. } => "corrupt",
        }
    }
}

/// How a poll ended, as stored and exported (`postured_connector_polls_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollOutcome {
    /// Every endpoint was collected.
    Success,
    /// Some endpoints failed; what was collected was used.
    Partial,
    /// Nothing was collected.
    Failure,
    /// The poll exceeded its deadline.
    Timeout,
}

impl PollOutcome {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PollOutcome::Success => "success",
            PollOutcome::Partial => "partial",
            PollOutcome::Failure => "failure",
            PollOutcome::Timeout => "timeout",
        }
    }
}

/// Everything one poll of one (tenant, connector) produced, written in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct PollRecord<'a> {
    pub tenant: &'a str,
    pub connector: &'a str,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: PollOutcome,
    /// Signals observed by this poll (upserted as the latest value per key; the value history
    /// gains a row only when a value changed).
    pub signals: &'a [Signal],
    /// Namespaces this connector could not collect in this poll; replaces the connector's
    /// previous gaps.
    pub gaps: &'a [SignalGap],
    /// The tenant's evaluation after this poll; only actions whose state changed are written.
    pub evaluation: &'a TenantEvaluation,
    /// Status transitions caused by this poll.
    pub transitions: &'a [Transition],
}

/// What a store needs to resume a tenant after a restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantState {
    /// Latest value per signal key (fresh or expired).
    pub signals: Vec<Signal>,
    /// Current gaps of every connector of the tenant.
    pub gaps: Vec<SignalGap>,
    /// Last state per action id.
    pub actions: HashMap<String, ActionState>,
}

/// One stored transition, for history listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionRow {
    pub tenant: String,
    #[serde(flatten)]
    pub transition: Transition,
}

/// Persistence of signals, action statuses and history. Implementations must make
/// [`Store::record_poll`] atomic.
#[async_trait]
pub trait Store: Send + Sync {
    /// Backend name: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Apply pending migrations (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Cheap liveness check (`SELECT 1`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Load what is needed to resume evaluating `tenant`.
    async fn load_tenant_state(&self, tenant: &str) -> Result<TenantState, StoreError>;
    /// Write one poll atomically: poll row, signals, gaps, changed action states, transitions,
    /// and a score snapshot when the tenant's score changed.
    async fn record_poll(&self, poll: &PollRecord<'_>) -> Result<(), StoreError>;
    /// Transitions of a tenant, oldest first, optionally for one action and since an instant.
    async fn transitions(
        &self,
        tenant: &str,
        action: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<TransitionRow>, StoreError>;
}
