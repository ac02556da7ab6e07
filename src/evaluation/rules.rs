//! PLACEHOLDER (rules): evaluation work item.
