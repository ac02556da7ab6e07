//! Regressions and alerts: detect status regressions, keep the ledger, deliver notifications.
//!
//! Data flow: `evaluation -> regression::detect -> events (+ detector state)`, written by the
//! store in the same transaction as the poll (the **outbox**), then delivered by
//! [`outbox`]'s task to the notifiers routing selects. See `docs/alerts.md`.
//!
//! - [`regression`]: the pure debounce state machine (no IO, no clock).
//! - [`pipeline`]: the alert step of a poll (detect, route, apply after the write).
//! - [`ledger`]: per-action statistics (first failed, time in state, regressions, time to
//!   recover) and the `postured history` tables.
//! - [`outbox`]: the delivery task (retries, backoff, at-least-once, Alertmanager re-posts).
//! - [`notifiers`]: Alertmanager, webhook (HMAC-signed), Slack and Teams payloads and delivery.
//! - [`tasks`]: the delivery and prune tasks `postured run` spawns.
//! - [`config`]: `[alerts]` and `[history]` configuration.

#![warn(missing_docs)]

pub mod config;
pub mod ledger;
pub mod notifiers;
pub mod outbox;
pub mod pipeline;
pub mod regression;
pub mod tasks;

pub use regression::{
    ActionMeta, AlertEvent, Condition, Debounce, Detection, EventKind, InstanceState, Severity,
    detect,
};
