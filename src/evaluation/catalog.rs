//! PLACEHOLDER (catalog): evaluation work item.
