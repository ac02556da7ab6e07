//! PLACEHOLDER (points): evaluation work item.
