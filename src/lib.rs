//! postured: continuous compliance assessment.
//!
//! Data flow (see ARCHITECTURE.md):
//! `config -> scheduler -> connector.poll() -> observations -> signals -> evaluation -> store`
//! `-> metrics / reports / API`.

pub mod access;
pub mod alerts;
pub mod app;
pub mod assembly;
pub mod cli;
pub mod config;
pub mod evaluation;
pub mod http;
pub mod interchange;
pub mod metrics;
pub mod model;
pub mod registry;
pub mod report;
pub mod scheduler;
pub mod server;
pub mod service;
pub mod signals;
pub mod store;
pub mod telemetry;
