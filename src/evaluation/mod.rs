//! Evaluation: signals -> rule outcomes -> test statuses -> points -> compliance score.
//!
//! Pure: no IO, not async, no clock (`now` is passed in), cannot fail at evaluation time
//! (a rule that errors yields `could_not_be_detected` with a typed cause, [`Undetected`]). The
//! contract is `../shared/design/SCORING.md`, restated in `docs/scoring.md`.
//!
//! Modules: [`catalog`] (improvement actions), [`family`] (generated action families: one
//! action per item a catalog's family finds in the signals), [`rules`] (CEL rules and the
//! result contract), [`signal_view`] (a tenant's fresh, expired and uncollected signals),
//! [`undetected`] (why an action could not be detected), [`evaluator`] (per-tenant evaluation,
//! score, transitions), [`points`] and [`status`].

pub mod catalog;
pub mod evaluator;
pub mod family;
pub mod points;
#[cfg(test)]
mod proptests;
pub mod rules;
pub mod signal_view;
pub mod status;
#[cfg(test)]
mod testutil;
pub mod undetected;

pub use catalog::{ActionDef, Catalog, CatalogError, ControlRefs};
pub use evaluator::{
    ActionResult, ActionState, EvaluationInput, Evaluator, ScoreSummary, TenantEvaluation,
    Transition, transitions,
};
pub use family::{FamilyDef, FamilyItemRef};
pub use points::{Enforcement, Purpose};
pub use rules::Outcome;
pub use status::{ImplementationStatus, Risk, TestStatus};
pub use undetected::{Expiry, Undetected};

/// One value per improvement action of a tenant, keyed by the shared action id
/// ([`crate::signals::intern`]): a vector sorted by id (`litemap`), looked up by binary search.
/// A tenant keeps two (its stored action states and its regression detector states) of about
/// 115 entries each, one block apiece, where a hash map needs 256 buckets for them (past the
/// 112 a 128-bucket table holds at its 7/8 load); inserting shifts the tail, which costs
/// nothing at this size.
pub type ActionMap<V> = litemap::LiteMap<std::sync::Arc<str>, V>;
