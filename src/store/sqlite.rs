//! SQLite store. PLACEHOLDER: store work item.
