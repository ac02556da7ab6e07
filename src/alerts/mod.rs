//! Regressions and alerts, the domain part: detect status regressions, the notifiers, and the
//! `[alerts]` settings.
//!
//! Data flow: `evaluation -> regression::detect -> events (+ detector state)`; the poll's plan
//! stage (`crate::app::plan`) routes them, the store writes them in the same transaction as the
//! poll (the **outbox**), and the delivery task (`crate::app::delivery`) sends them to the
//! notifiers. The ledger of stored history is `crate::report::ledger`. See `docs/alerts.md`.
//!
//! - [`regression`]: the pure debounce state machine (no IO, no clock).
//! - [`notifiers`]: Alertmanager, webhook (HMAC-signed), Slack and Teams payloads and delivery.
//! - [`settings`]: `[alerts]` configuration.
//!
//! Must not: read or write the store, the metrics or the app's state (those layers sit above).

pub mod notifiers;
pub mod regression;
pub mod settings;

pub use regression::{
    ActionMeta, AlertEvent, Condition, Debounce, Detection, EventKind, InstanceState, Severity,
    detect,
};
