//! HTTP transport: retries, Retry-After, paging. PLACEHOLDER.
