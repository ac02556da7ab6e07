//! The Compliance Manager model: templates, assessments, groups, controls, rollups and scores
//! with filters. Pure: no IO, no clock (`now` is passed in); the one exception is
//! [`registry::TemplateRegistry::load_dir`], which reads template files.
//!
//! - [`template`]: a framework's controls and the actions mapped to them (shared with the
//!   importers and exporters of `crate::interchange`).
//! - [`registry`]: built-in templates (`config/templates/`) and extra ones.
//! - [`coverage`]: how much of a template automation covers.
//! - [`assessment`]: assessments, groups, manual status records.
//! - [`scoring`]: the de-duplicated instance set, scores with filters, assessment reports.
//! - [`plan`]: the scores a poll needs of one tenant, from a plan of its assessments shared
//!   by every tenant with the same templates and groups.
//! - [`rollup`]: control and assessment rollups.
//! - [`report`]: the point-in-time report shapes.

pub mod assessment;
pub mod coverage;
pub mod evidence;
pub mod plan;
pub mod registry;
pub mod report;
pub mod rollup;
pub mod scoring;
pub mod settings;
pub mod template;

pub use assessment::{
    Assessment, DEFAULT_GROUP, DEFAULT_TEMPLATE, FieldChange, Group, InstanceScope, ManualStatus,
    ManualUpdate,
};
pub use registry::{FrameworkReader, TemplateError, TemplateRegistry};
pub use scoring::{ComplianceModel, Dimension, Instance, InstanceKey, ModelInput, ScoreFilter};
