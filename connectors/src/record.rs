//! Record/replay of source responses. PLACEHOLDER.
