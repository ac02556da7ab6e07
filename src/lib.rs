//! postured: continuous compliance assessment.
//!
//! Data flow (see ARCHITECTURE.md):
//! `config -> scheduler -> connector.poll() -> observations -> signals -> evaluation -> store`
//! `-> metrics / reports / API`.

// Wired in once the connector, evaluation and store APIs land:
// pub mod app; pub mod cli; pub mod scheduler; pub mod server; pub mod sources;
pub mod config;
pub mod evaluation;
pub mod metrics;
pub mod report;
pub mod signals;
pub mod store;
pub mod telemetry;
