//! The Compliance Manager model: templates, assessments, groups, controls, rollups and scores
//! with filters. Pure: no IO, no clock.

pub mod report;
pub mod template;
