//! Connectors: fetch a tenant's configuration from a source API, parse it and normalise it into
//! the daemon's one signal vocabulary.
//!
//! A connector kind is one folder (`msgraph/`, `aws_iam/`): it fetches, parses and normalises into a
//! connector-agnostic [`Snapshot`] of typed signals and gaps; it owns its typed settings
//! ([`settings::ConnectorKind`]), its signal vocabulary (documented in its module and in
//! `docs/signals.md`) and its catalog file `config/catalog/<kind>.toml`. [`builtin_kinds`] is
//! the one registry entry per kind.
//!
//! This crate never touches the database, the metrics registry or scheduling (its Cargo.toml
//! has no sqlx, axum or prometheus). Every endpoint a connector reads succeeds or fails on its
//! own: a 403 on one report (missing licence or permission) does not hide the others. A failure
//! is a classified [`CollectionError`] and a signal gap, never a failed control.

pub mod aws_iam;
pub mod backoff;
pub mod error;
pub mod exec;
pub mod http;
pub mod http_json;
pub mod msgraph;
pub mod pseudonym;
pub mod record;
pub mod settings;
pub mod signal;

use std::sync::Arc;

pub use error::{CollectionError, ErrorKind};
pub use settings::{ConnectorKind, ConnectorSettings};
pub use signal::{ObservedSignal, SignalGap, SignalValue, Snapshot, SnapshotBuilder};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What a poll is told by the daemon.
#[derive(Debug, Clone, Copy)]
pub struct PollContext {
    /// The poll's start: every signal of the poll is observed at this instant.
    pub observed_at: DateTime<Utc>,
}

/// A source adapter polled by the daemon's scheduler for one tenant.
///
/// `poll` must not panic and must not return early on the first failed endpoint: it returns
/// what it could collect, a gap for each namespace it could not, and every endpoint error. The
/// caller applies its own overall timeout.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Stable connector kind, used as a metric label and signal namespace (`"msgraph"`).
    fn kind(&self) -> &'static str;
    /// Collect and normalise one snapshot of the tenant's configuration.
    async fn poll(&self, cx: &PollContext) -> Snapshot;
}

/// Every connector kind built into postured: the one registry entry per kind.
pub fn builtin_kinds() -> Vec<Arc<dyn ConnectorKind>> {
    vec![
        Arc::new(msgraph::MSGRAPH),
        Arc::new(exec::EXEC),
        Arc::new(http_json::HTTP_JSON),
        Arc::new(aws_iam::AWS_IAM),
    ]
}
