//! Classified collection errors shared by every connector.
//!
//! A collection error is a fact about the *collection*, not about the tenant's posture: the
//! daemon maps it to the test status `could_not_be_detected`, never to a failed control.
//! Messages never contain secrets or tokens.

use std::time::Duration;

/// Bounded classification of a collection failure; [`ErrorKind::as_str`] is used as a metric
/// label and stored with the poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 401 from the source, or the token endpoint rejected the client (bad/expired secret).
    Unauthorized,
    /// 403: a permission is not granted or a licence is missing.
    Forbidden,
    /// 404 on an endpoint that should exist.
    NotFound,
    /// 429 (or 503 with Retry-After) still returned after the retry budget was spent.
    Throttled,
    /// The request or the whole poll exceeded its deadline.
    Timeout,
    /// 5xx from the source.
    Server,
    /// Connection refused, DNS, TLS or another transport failure.
    Network,
    /// The body could not be parsed into the documented shape.
    Malformed,
    /// Any other token-endpoint failure (invalid scope, tenant not found, ...).
    Auth,
    /// Replay mode: no recording exists for this request.
    ReplayMissing,
    /// The response body (or a recording file) is larger than the connector's byte cap
    /// (`max_response_bytes`); reading stopped at the cap.
    TooLarge,
    /// The source answered with a redirect that is not followed: to another origin (scheme,
    /// host or port) on a source request, any redirect on the token request, or a redirect
    /// chain that does not end.
    Redirect,
    /// Anything else (unexpected status code ...).
    Other,
}

impl ErrorKind {
    /// Stable snake_case name, e.g. `"forbidden"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Server => "server_error",
            ErrorKind::Network => "network",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Auth => "auth",
            ErrorKind::ReplayMissing => "replay_missing",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One endpoint's collection failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind} collecting {endpoint}: {message}")]
pub struct CollectionError {
    /// Classification.
    pub kind: ErrorKind,
    /// Endpoint path that failed, e.g. `/security/secureScores` (never a full URL with tokens).
    pub endpoint: String,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Source error code: Graph `error.code` (e.g. `Authorization_RequestDenied`), OAuth
    /// `error` plus AADSTS number (e.g. `invalid_client AADSTS7000222`).
    pub code: Option<String>,
    /// Human-readable detail, secret-free.
    pub message: String,
    /// Server-suggested wait before retrying, when the source sent `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl CollectionError {
    /// Build an error without status, code or retry hint.
    pub fn new(kind: ErrorKind, endpoint: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            endpoint: endpoint.into(),
            status: None,
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Whether retrying later may succeed (throttling, timeouts, 5xx, network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled | ErrorKind::Timeout | ErrorKind::Server | ErrorKind::Network
        )
    }
}
