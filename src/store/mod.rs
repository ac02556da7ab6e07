//! Persistence: the only module with SQL.
//!
//! One [`Store`] trait (with its supertraits [`AlertStore`] and [`ModelStore`]), implemented
//! once for both databases by [`SqlStore`]: SQLite ([`sqlite::SqliteStore`], the default: a
//! file in WAL mode) and PostgreSQL ([`postgres::PostgresStore`]). Per-backend migrations under
//! `migrations/<backend>/` are embedded at build time and applied by [`Store::migrate`]. Each
//! poll is written in one transaction, and writes only what changed: the changed signals, gaps,
//! action states, status transitions and snapshots, and a full `polls` row only for a poll worth
//! one (see [`Store::record_poll`]); every poll is counted in its connector's daily roll-up
//! (`poll_days`, [`Store::poll_days`]) and is its connector's latest poll
//! ([`Store::last_polls`]).
//!
//! A steady poll (nothing changed) reads two rows and writes two: the connector's row of
//! `connector_state` (its latest poll; the digest of its stored signal set, whose freshness it
//! carries for the rows of that set, so unchanged signals are not rewritten) and the tenant's
//! `tenant_digest` (of the action states and scores it stored: when the evaluation's digest is
//! the same, the action rows and latest snapshots are not read), then the two upserts
//! (`connector_state`, `poll_days`). Only `record_poll` writes `signal_current`, `action_state`,
//! the snapshots and these digests, always together in one transaction under the tenant's
//! ordering (SQLite's one writer, PostgreSQL's tenant lock), so a digest always describes what
//! is stored, whichever process wrote last.
//!
//! Layout: the SQL both backends run is written once, with `$n` placeholders (which sqlx's
//! SQLite driver accepts too), in the file of what it stores: `polls.rs` (polls, signals, gaps,
//! action states, transitions, score snapshots), `alerts.rs` (alert ledger, outbox, category
//! and assessment snapshots, retention), `model.rs` (templates, manual statuses), `audit.rs`
//! (the append-only audit log), `evidence.rs` (evidence rows and content-addressed blobs) and
//! `tokens.rs` (API tokens: metadata and the digest of their secret). What truly
//! differs per backend is the `SqlBackend` trait (`backend.rs`), implemented in `sqlite.rs` and
//! `postgres.rs`: how transactions begin, PostgreSQL's per-tenant lock, and the migrations.
//! Row decoding (`rows.rs`), the "what changed" computation of a poll (`plan.rs`) and the
//! multi-row statements that write a poll's rows, each table's in chunks bounded by the
//! bind-parameter limit (`batch.rs`), are shared. The
//! conformance suite every backend must pass (`conformance/`) is compiled for tests only and
//! run by the unit tests of `sqlite.rs` and `postgres.rs`.
//!
//! Storage conventions (both backends): instants are epoch milliseconds (UTC) in integer
//! columns, so sub-millisecond precision is dropped; signal values are JSON text.
//!
//! Failure handling (both backends): a pooled connection left inside a failed transaction is
//! closed, not reused (`backend::pool_options`); [`Store::check_health`] is a write probe (the
//! one row of `store_health`) and, for a SQLite file, checks that the path still names the file
//! opened, whose removal or replacement also makes every write fail with
//! [`StoreError::FileReplaced`] rather than land in a file that is gone. PostgreSQL sessions
//! have a `statement_timeout` (`[store]`) and speak TLS when the URL's `sslmode` asks for it.
//!
//! Must not: evaluate rules, compute transitions (the caller passes them in), or log secrets
//! (database URLs never appear in errors).

pub mod alerts;
pub mod audit;
mod backend;
mod batch;
#[cfg(test)]
mod conformance;
pub mod evidence;
pub mod model;
mod plan;
mod polls;
pub mod postgres;
mod rows;
pub mod sqlite;
pub mod tokens;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;
use crate::evaluation::{ActionState, ScoreSummary, TenantEvaluation, Transition};
use crate::signals::{Signal, SignalGap, SignalValue};
pub use alerts::{
    AlertStore, AlertWrites, AssessmentSnapshot, CategorySnapshot, Notification,
    NotificationFilter, OutboxEntry, PruneReport, RoutedEvent, StoredEvent,
};
pub use audit::{AuditEntry, AuditFilter, AuditRecord, AuditStore};
pub use backend::SqlStore;
pub use evidence::{
    AutomaticEvidence, BlobRef, Evidence, EvidenceKind, EvidenceStore, NewEvidence, StoredBlob,
};
pub use model::ModelStore;
pub use tokens::{ApiToken, StoredToken, TokenStore};

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
    Corrupt {
        /// Table the row came from.
        table: &'static str,
        /// What could not be decoded (never a secret: stored values only).
        detail: String,
    },
    /// The caller passed something the store cannot represent faithfully (a non-finite signal
    /// number, an evaluation of another tenant, an unsupported URL scheme ...). Nothing was
    /// written.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The SQLite database file (the path given) is no longer the file opened: removed, its
    /// directory removed, or replaced by another file. Writes are refused (they would land in
    /// a file nobody reads again and be lost at the next start) until postured is restarted.
    #[error(
        "the database file {0} was removed or replaced after it was opened; \
        writes are refused until postured is restarted"
    )]
    FileReplaced(String),
}

impl StoreError {
    /// Bounded label: `database`, `migration`, `corrupt`, `invalid` or `file_replaced`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Database(_) => "database",
            StoreError::Migration(_) => "migration",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::Invalid(_) => "invalid",
            StoreError::FileReplaced(_) => "file_replaced",
        }
    }
}

/// How a poll ended, as stored and exported (`postured_connector_polls_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

    /// Parse a stored name; `None` for an unknown name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            PollOutcome::Success,
            PollOutcome::Partial,
            PollOutcome::Failure,
            PollOutcome::Timeout,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// Everything one poll of one (tenant, connector) produced, written in one transaction.
///
/// Duplicate signal keys or gap prefixes inside one record are tolerated: the last one wins.
/// Signal numbers must be finite and action credits in [0, 1]; otherwise the whole record is
/// rejected and nothing is written.
#[derive(Debug, Clone, Copy)]
pub struct PollRecord<'a> {
    /// Tenant polled; must equal `evaluation.tenant`.
    pub tenant: &'a str,
    /// Connector that polled.
    pub connector: &'a str,
    /// When the poll started.
    pub started_at: DateTime<Utc>,
    /// When the poll ended.
    pub finished_at: DateTime<Utc>,
    /// How the poll ended.
    pub outcome: PollOutcome,
    /// Signals observed by this poll (upserted as the latest value per key; the value history
    /// gains a row only when a value changed).
    pub signals: &'a [Signal],
    /// Namespaces this connector could not collect in this poll; replaces the connector's
    /// previous gaps.
    pub gaps: &'a [SignalGap],
    /// The tenant's evaluation after this poll; only actions whose state changed are written.
    /// Actions absent from the evaluation keep their stored state.
    pub evaluation: &'a TenantEvaluation,
    /// Status transitions caused by this poll, stored as given (the store does not derive
    /// them). When a transition of an action changes its status, its `at` becomes the action's
    /// `since`.
    pub transitions: &'a [Transition],
    /// The tenant's assessment scores after the poll, by assessment id: a snapshot is stored
    /// for each one that changed (category snapshots are derived from `evaluation`).
    pub assessments: &'a [(String, ScoreSummary)],
    /// Regression events (with their outbox rows) and detector states, written in the same
    /// transaction.
    pub alerts: AlertWrites<'a>,
    /// The automatic evidence of this poll's status changes: each document's blob (once per
    /// content address), an evidence row of the tenant's instance, and its address on the
    /// poll's transition of that action. Bounded by the caller.
    pub evidence: &'a [AutomaticEvidence],
    /// The tenant's first poll since postured started (the one that loaded its stored state):
    /// it gets a full `polls` row even when nothing changed.
    pub after_start: bool,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransitionRow {
    /// Tenant the transition belongs to.
    pub tenant: String,
    /// The rule (testing logic) that decided the new status; `None` for rows written before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testing_logic: Option<String>,
    /// SHA-256 of the automatic evidence of this change (the signals that decided it), when
    /// it was stored (`GET /api/v1/evidence/...` of the instance lists it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_sha256: Option<String>,
    /// The transition as recorded.
    #[serde(flatten)]
    pub transition: Transition,
}

/// One stored poll, for status listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollRow {
    /// Store-assigned id, increasing with insertion order.
    pub id: i64,
    /// Tenant polled.
    pub tenant: String,
    /// Connector that polled.
    pub connector: String,
    /// When the poll started.
    pub started_at: DateTime<Utc>,
    /// When the poll ended.
    pub finished_at: DateTime<Utc>,
    /// How the poll ended.
    pub outcome: PollOutcome,
    /// The namespaces the poll could not collect (its error summary).
    pub gaps: Vec<SignalGap>,
}

/// The latest poll of one connector of a tenant, whether it has a full `polls` row or was only
/// counted (`connector_state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorLastPoll {
    /// Connector that polled.
    pub connector: String,
    /// When the poll started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: PollOutcome,
    /// The namespaces it could not collect.
    pub gaps: Vec<SignalGap>,
    /// When the connector's latest successful poll ended; `None` when it never succeeded (since
    /// the store has kept it).
    pub last_success_at: Option<DateTime<Utc>>,
}

/// The polls of one connector of a tenant on one UTC day (`poll_days`): every poll is counted,
/// whether or not it has a full `polls` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PollDay {
    /// Connector that polled.
    pub connector: String,
    /// The UTC day of the polls' start.
    #[schema(value_type = String, format = Date)]
    pub day: chrono::NaiveDate,
    /// Polls that day.
    pub polls: u64,
    /// ... that succeeded.
    pub successes: u64,
    /// ... that collected part of their endpoints.
    pub partials: u64,
    /// ... that collected nothing.
    pub failures: u64,
    /// ... that exceeded their deadline.
    pub timeouts: u64,
    /// How many of them have a full `polls` row (a change, a failure ...); the others were
    /// successful polls that changed nothing.
    pub recorded: u64,
    /// When the day's first poll started.
    pub first_started_at: DateTime<Utc>,
    /// When the day's last poll started.
    pub last_started_at: DateTime<Utc>,
    /// When the day's last poll ended.
    pub last_finished_at: DateTime<Utc>,
}

/// A recorded change of one signal's value (its first observation included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalChange {
    /// Signal key.
    pub key: String,
    /// The new value.
    pub value: SignalValue,
    /// When the new value was first observed.
    pub observed_at: DateTime<Utc>,
}

/// The tenant's overall score from one instant on (stored only when it changed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreSnapshot {
    /// Evaluation instant at which the score took this value.
    pub at: DateTime<Utc>,
    /// Points and ratio.
    pub score: ScoreSummary,
}

/// Persistence of signals, action statuses and history. Implementations must make
/// [`Store::record_poll`] atomic. Alert persistence is the [`AlertStore`] supertrait;
/// templates and manual statuses are the [`ModelStore`] supertrait; the append-only audit log
/// is the [`AuditStore`] supertrait; evidence is the [`EvidenceStore`] supertrait; API tokens
/// the [`TokenStore`] supertrait.
#[async_trait]
pub trait Store:
    AlertStore + AuditStore + EvidenceStore + ModelStore + TokenStore + Send + Sync
{
    /// Backend name: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Apply pending migrations (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Cheap liveness check (`SELECT 1`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Whether the store can still keep what is written to it: the database file is still the
    /// one opened (SQLite; [`StoreError::FileReplaced`] otherwise), and a write probe (an upsert
    /// of the one row of `store_health`) commits. `/readyz` and `postured_store_healthy`
    /// report it.
    async fn check_health(&self) -> Result<(), StoreError>;
    /// Load what is needed to resume evaluating `tenant`.
    async fn load_tenant_state(&self, tenant: &str) -> Result<TenantState, StoreError>;
    /// Write one poll atomically, only what changed: the signals when they differ from the
    /// connector's stored set (a history row per changed value), the gaps when they or the
    /// previous ones are not empty, changed action states, transitions, a score snapshot when
    /// the tenant's score changed, a snapshot of every category and assessment whose score
    /// changed, alert events with their outbox rows, detector states and automatic evidence.
    ///
    /// The poll gets a full `polls` row when it was not a success, changed or wrote any of
    /// those (detector states aside), is its connector's first (or first after a poll that was
    /// not a success), or is the tenant's first since postured started
    /// ([`PollRecord::after_start`]). Every poll is counted in its connector's day of
    /// [`Store::poll_days`] and becomes its [`Store::last_polls`] entry.
    async fn record_poll(&self, poll: &PollRecord<'_>) -> Result<(), StoreError>;
    /// Transitions of a tenant, oldest first, optionally for one action and since an instant
    /// (inclusive).
    async fn transitions(
        &self,
        tenant: &str,
        action: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<TransitionRow>, StoreError>;
    /// Value changes of a tenant's signals, oldest first, optionally for one key and since an
    /// instant (inclusive).
    async fn signal_history(
        &self,
        tenant: &str,
        key: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<SignalChange>, StoreError>;
    /// Score snapshots of a tenant, oldest first, since an instant (inclusive).
    async fn score_history(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ScoreSnapshot>, StoreError>;
    /// The tenant's latest `limit` full poll rows, newest first: its failures, changes, first
    /// polls ([`Store::record_poll`] says which); the successful polls that changed nothing are
    /// only counted ([`Store::poll_days`], [`Store::last_polls`]).
    async fn recent_polls(&self, tenant: &str, limit: u32) -> Result<Vec<PollRow>, StoreError>;
    /// The latest poll of each connector of the tenant that has polled, by connector id.
    async fn last_polls(&self, tenant: &str) -> Result<Vec<ConnectorLastPoll>, StoreError>;
    /// The tenant's daily poll counts (every poll, full row or not), oldest day first (then by
    /// connector), the days whose last poll started at or after `since`.
    async fn poll_days(
        &self,
        tenant: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<PollDay>, StoreError>;
}

/// Open the store a URL names, without migrating (call [`Store::migrate`] next).
///
/// `postgres://` and `postgresql://` select PostgreSQL; `sqlite:` URLs and bare paths select
/// SQLite (the file is created when missing). Any other `scheme://` is rejected as
/// [`StoreError::Invalid`]. The URL never appears in errors (it may hold a password).
pub async fn open_store(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of_url(url)? {
        Backend::Postgres => Ok(Arc::new(
            postgres::PostgresStore::connect(url, max_connections).await?,
        )),
        Backend::Sqlite => Ok(Arc::new(
            sqlite::SqliteStore::open(url, max_connections).await?,
        )),
    }
}

/// Open the store `[store]` configures (URL, pool size, PostgreSQL's `statement_timeout`),
/// without migrating (call [`Store::migrate`] next). See [`open_store`] for the URLs.
pub async fn open_configured(cfg: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of_url(&cfg.url)? {
        Backend::Postgres => Ok(Arc::new(
            postgres::PostgresStore::connect_with(
                postgres::options(&cfg.url)?,
                cfg.max_connections,
                cfg.statement_timeout,
            )
            .await?,
        )),
        Backend::Sqlite => Ok(Arc::new(
            sqlite::SqliteStore::open(&cfg.url, cfg.max_connections).await?,
        )),
    }
}

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> Result<Self, StoreError> {
        let lower = url.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if lower.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if let Some((scheme, _)) = lower.split_once("://") {
            let scheme: String = scheme.chars().take(32).collect();
            Err(StoreError::Invalid(format!(
                "unsupported database URL scheme {scheme:?} (use sqlite: or postgres://)"
            )))
        } else {
            Ok(Backend::Sqlite)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_scheme_selects_backend() {
        assert_eq!(
            Backend::of_url("postgres://u:p@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("postgresql:///db?host=/tmp").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("sqlite:data.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::of_url("sqlite://data.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::of_url("/var/lib/postured/db.sqlite").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::of_url("data.db").ok(), Some(Backend::Sqlite));
        let err = Backend::of_url("mysql://u:secret@h/db").unwrap_err();
        assert_eq!(err.kind(), "invalid");
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn poll_outcome_names_round_trip() {
        for o in [
            PollOutcome::Success,
            PollOutcome::Partial,
            PollOutcome::Failure,
            PollOutcome::Timeout,
        ] {
            assert_eq!(PollOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(PollOutcome::parse("nope"), None);
    }
}
