//! postured: continuous compliance assessment.
//!
//! Data flow (see ARCHITECTURE.md):
//! `config -> scheduler -> connector.poll() -> observations -> signals -> evaluation -> store`
//! `-> metrics / reports`.

pub mod evaluation;
pub mod signals;
pub mod store;
