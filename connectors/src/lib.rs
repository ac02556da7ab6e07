//! Connectors: fetch a tenant's configuration from a source API and parse it into typed
//! observations.
//!
//! This crate only fetches and parses. It never touches the database, the metrics registry or
//! scheduling (its Cargo.toml has no sqlx, axum or prometheus); the daemon turns
//! [`Observations`] into signals and scores them.
//!
//! Every endpoint a connector reads succeeds or fails on its own: a 403 on one report (missing
//! licence or permission) does not hide the others. A failure is a classified
//! [`CollectionError`], never a failed control.

#![warn(missing_docs)]

pub mod backoff;
pub mod error;
pub mod http;
pub mod msgraph;
pub mod record;

pub use error::{CollectionError, ErrorKind};

use async_trait::async_trait;

/// What one poll of one connector returned for one tenant.
#[derive(Debug, Clone)]
pub enum Observations {
    /// Microsoft Graph: Secure Score, MFA registration, conditional access, security defaults,
    /// sensitivity labels.
    MsGraph(Box<msgraph::MsGraphSnapshot>),
}

impl Observations {
    /// Connector kind that produced these observations (`"msgraph"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Observations::MsGraph(_) => msgraph::KIND,
        }
    }

    /// Every collection error in this poll, one per failed endpoint.
    pub fn errors(&self) -> Vec<&CollectionError> {
        match self {
            Observations::MsGraph(s) => s.errors(),
        }
    }
}

/// A source adapter polled by the daemon's scheduler for one tenant.
///
/// `poll` must not panic and must not return early on the first failed endpoint: it returns
/// what it could collect and a [`CollectionError`] for each endpoint it could not. The caller
/// applies its own overall timeout.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Stable connector kind, used as a metric label and signal namespace (`"msgraph"`).
    fn kind(&self) -> &'static str;
    /// Collect one snapshot of the tenant's configuration.
    async fn poll(&self) -> Observations;
}
