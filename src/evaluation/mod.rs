//! Evaluation: signals -> rule outcomes -> test statuses -> points -> compliance score.
//!
//! Pure: no IO, not async, no clock (`now` is passed in), cannot fail at evaluation time
//! (a rule that errors yields `could_not_be_detected` with a reason). The contract is
//! `../shared/design/SCORING.md`, restated in `docs/scoring.md`.

#![warn(missing_docs)]

pub mod catalog;
pub mod points;
pub mod rules;
pub mod score;
pub mod status;
#[cfg(test)]
mod testutil;

pub use catalog::{ActionDef, Catalog, CatalogError, ControlRefs};
pub use points::{Enforcement, Purpose};
pub use rules::Outcome;
pub use score::{
    ActionResult, ActionState, EvaluationInput, Evaluator, ScoreSummary, TenantEvaluation,
    Transition, transitions,
};
pub use status::{ImplementationStatus, Risk, TestStatus};
