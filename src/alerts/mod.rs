//! Regressions and alerts: detect status regressions, keep the ledger, deliver notifications.
//!
//! Data flow: `evaluation -> regression::detect -> events (+ detector state)`, written by the
//! store in the same transaction as the poll (the **outbox**), then delivered by
//! [`outbox`]'s task to the notifiers routing selects. See `docs/alerts.md`.
//!
//! - [`regression`]: the pure debounce state machine (no IO, no clock).
//! - [`pipeline`]: the alert step of a poll (detect, route, apply after the write).
//! - [`outbox`]: the delivery task (retries, backoff, at-least-once, Alertmanager re-posts).
//! - [`notifiers`]: Alertmanager, webhook (HMAC-signed), Slack and Teams payloads and delivery.
//! - [`config`]: `[alerts]` and `[history]` configuration.

#![warn(missing_docs)]

pub mod config;
pub mod notifiers;
pub mod outbox;
pub mod pipeline;
pub mod regression;

pub use regression::{
    ActionMeta, AlertEvent, Condition, Debounce, Detection, EventKind, InstanceState, Severity,
    detect,
};
