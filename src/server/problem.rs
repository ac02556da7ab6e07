//! RFC 9457 problem details: the body of the API's error answers
//! (`Content-Type: application/problem+json`).
//!
//! `type` is a relative URI naming the kind of problem (`/problems/unknown-action`, ...),
//! `title` its fixed summary, `status` the HTTP status, `detail` what was wrong with this
//! request (never a secret, never an echo of more than a short, sanitised excerpt of input).
//! An import refused for its content also lists every located problem in `errors`.
//!
//! ## Problem types
//!
//! Every `type` the API answers is one of these constants ([`ALL`]); a client may branch on
//! `type`, which is stable, and show `detail`, which is not.
//!
//! | constant | `type` | status | when |
//! |---|---|---|---|
//! | [`UNAUTHORIZED`] | `/problems/unauthorized` | 401 | no valid bearer credentials (`WWW-Authenticate: Bearer`) |
//! | [`FORBIDDEN`] | `/problems/forbidden` | 403 | the caller's role is too low, or a write outside its scope |
//! | [`UNKNOWN_TENANT`] | `/problems/unknown-tenant` | 404 | no such tenant, or outside the caller's scope |
//! | [`UNKNOWN_ASSESSMENT`] | `/problems/unknown-assessment` | 404 | no such assessment of the tenant (or the tenant has not been evaluated yet) |
//! | [`UNKNOWN_CONTROL`] | `/problems/unknown-control` | 404 | no such control in the assessment |
//! | [`UNKNOWN_ACTION`] | `/problems/unknown-action` | 404 (400 for a body field) | no template or catalog knows the action, or no instance in the given tenant or group |
//! | [`UNKNOWN_TEMPLATE`] | `/problems/unknown-template` | 404 | no such template |
//! | [`INVALID_ACTION_ID`] | `/problems/invalid-action-id` | 404 (400 for a body field) | an action id that cannot exist |
//! | [`INVALID_QUERY`] | `/problems/invalid-query` | 400 | a query parameter that does not parse or is out of range |
//! | [`INVALID_CURSOR`] | `/problems/invalid-cursor` | 400 | a paging cursor this API did not issue for this listing |
//! | [`INVALID_BODY`] | `/problems/invalid-body` | 400, 415, 422 | a request body that does not parse |
//! | [`INVALID_FIELD`] | `/problems/invalid-field` | 400 | a body field past its limit |
//! | [`WRONG_SCOPE`] | `/problems/wrong-scope` | 400 | `tenant` given for a per-group action or the reverse, unknown tenant or group |
//! | [`BODY_TOO_LARGE`] | `/problems/body-too-large` | 413 | a request body over the route's limit |
//! | [`UNSUPPORTED_MEDIA_TYPE`] | `/problems/unsupported-media-type` | 415 | an import whose `Content-Type` is not a template format |
//! | [`INVALID_TEMPLATE`] | `/problems/invalid-template` | 422 | an imported template with problems (all listed in `errors`; nothing saved) |
//! | [`TEMPLATE_EXISTS`] | `/problems/template-exists` | 409 | an imported template whose id is taken |
//! | [`EXPORT_FAILED`] | `/problems/export-failed` | 500 | an exporter failed to render a report |
//! | [`STORE_UNAVAILABLE`] | `/problems/store-unavailable` | 503 | the store failed (its error kind in `detail`) |
//! | [`NO_SUCH_ROUTE`] | `/problems/no-such-route` | 404 | no route of the API has this path |
//! | [`AUTHENTICATION_UNAVAILABLE`] | `/problems/authentication-unavailable` | 503 | the store or the identity provider's keys could not be read to check credentials |
//! | [`UNKNOWN_TOKEN`] | `/problems/unknown-token` | 404 | no API token has this id |
//! | [`RANDOM_SOURCE`] | `/problems/random-source` | 500 | the operating system's random source failed while minting a token |
//! | [`EXPORT_TOO_LARGE`] | `/problems/export-too-large` | 422 | an audit export over its row limit |
//! | [`INTERNAL`] | `/problems/internal` | 500 | an answer could not be encoded (logged) |
//! | [`EVIDENCE_TOO_LARGE`] | `/problems/evidence-too-large` | 413 | a file over `[evidence] max_file_bytes` |
//! | [`EVIDENCE_TYPE_NOT_ALLOWED`] | `/problems/evidence-type-not-allowed` | 415 | a media type outside `[evidence] allowed_types` |
//! | [`EVIDENCE_CONTENT_MISMATCH`] | `/problems/evidence-content-mismatch` | 415 | content sniffing disagrees with the declared type |
//! | [`INVALID_LINK`] | `/problems/invalid-link` | 400 | an evidence link that is not an http(s) URL within its limit |
//! | [`EVIDENCE_LIMIT`] | `/problems/evidence-limit` | 422 | the instance already has `[evidence] max_per_instance` files and links |
//! | [`INVALID_SUPERSEDES`] | `/problems/invalid-supersedes` | 400 | `supersedes` names no evidence of this instance |
//! | [`EVIDENCE_LOCKED`] | `/problems/evidence-locked` | 409 | withdrawal once the instance is passed, failed or out of scope |
//! | [`EVIDENCE_WITHDRAWN`] | `/problems/evidence-withdrawn` | 409 | the evidence was withdrawn already |
//! | [`UNKNOWN_EVIDENCE`] | `/problems/unknown-evidence` | 404 | no such evidence, or outside the caller's scope |
//! | [`EVIDENCE_CORRUPT`] | `/problems/evidence-corrupt` | 500 | the stored bytes do not match their SHA-256 (nothing served) |
//! | [`EVIDENCE_STORAGE_UNAVAILABLE`] | `/problems/evidence-storage-unavailable` | 503 | the evidence directory could not be used |

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem details body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// A kind of problem: its stable `type` URI and fixed `title`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    /// The `type` URI reference.
    pub kind: &'static str,
    /// The fixed `title`.
    pub title: &'static str,
}

impl ProblemType {
    /// A problem of this type answered with `status`.
    pub fn at(self, status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem::new(status, self.kind, self.title, detail)
    }
}

macro_rules! problem_types {
    ($($(#[$doc:meta])* $name:ident = $kind:literal, $title:literal;)*) => {
        $($(#[$doc])* pub const $name: ProblemType = ProblemType { kind: $kind, title: $title };)*
        /// Every problem type of the API, in the order of the table above.
        pub const ALL: &[ProblemType] = &[$($name),*];
    };
}

problem_types! {
    /// No valid bearer credentials (401).
    UNAUTHORIZED = "/problems/unauthorized", "Unauthorized";
    /// Role too low or write outside the caller's scope (403).
    FORBIDDEN = "/problems/forbidden", "Forbidden";
    /// No such tenant in the caller's scope (404).
    UNKNOWN_TENANT = "/problems/unknown-tenant", "Unknown tenant";
    /// No such assessment (404).
    UNKNOWN_ASSESSMENT = "/problems/unknown-assessment", "Unknown assessment";
    /// No such control in the assessment (404).
    UNKNOWN_CONTROL = "/problems/unknown-control", "Unknown control";
    /// No such improvement action (404; 400 for a body field).
    UNKNOWN_ACTION = "/problems/unknown-action", "Unknown action";
    /// No such template (404).
    UNKNOWN_TEMPLATE = "/problems/unknown-template", "Unknown template";
    /// An action id that cannot exist (404; 400 for a body field).
    INVALID_ACTION_ID = "/problems/invalid-action-id", "Invalid action id";
    /// A query parameter that does not parse or is out of range (400).
    INVALID_QUERY = "/problems/invalid-query", "Invalid query parameter";
    /// A paging cursor not issued for this listing (400).
    INVALID_CURSOR = "/problems/invalid-cursor", "Invalid cursor";
    /// A body that does not parse (400, 415, 422).
    INVALID_BODY = "/problems/invalid-body", "Invalid request body";
    /// A body field past its limit (400).
    INVALID_FIELD = "/problems/invalid-field", "Invalid field";
    /// The wrong one of tenant and group for the action (400).
    WRONG_SCOPE = "/problems/wrong-scope", "Wrong scope";
    /// A body over the route's limit (413).
    BODY_TOO_LARGE = "/problems/body-too-large", "Request body too large";
    /// An import of an unknown content type (415).
    UNSUPPORTED_MEDIA_TYPE = "/problems/unsupported-media-type", "Unsupported media type";
    /// An imported template with problems (422).
    INVALID_TEMPLATE = "/problems/invalid-template", "Invalid template";
    /// An imported template whose id is taken (409).
    TEMPLATE_EXISTS = "/problems/template-exists", "Template exists";
    /// An exporter failed (500).
    EXPORT_FAILED = "/problems/export-failed", "Export failed";
    /// The store failed (503).
    STORE_UNAVAILABLE = "/problems/store-unavailable", "Store unavailable";
    /// No route has this path (404).
    NO_SUCH_ROUTE = "/problems/no-such-route", "No such route";
    /// Authentication unavailable (503).
    AUTHENTICATION_UNAVAILABLE = "/problems/authentication-unavailable", "Authentication unavailable";
    /// Unknown token (404).
    UNKNOWN_TOKEN = "/problems/unknown-token", "Unknown token";
    /// Random source failed (500).
    RANDOM_SOURCE = "/problems/random-source", "Random source failed";
    /// Export too large (422).
    EXPORT_TOO_LARGE = "/problems/export-too-large", "Export too large";
    /// Internal error (500).
    INTERNAL = "/problems/internal", "Internal error";
    /// Evidence too large (413).
    EVIDENCE_TOO_LARGE = "/problems/evidence-too-large", "Evidence too large";
    /// Evidence type not allowed (415).
    EVIDENCE_TYPE_NOT_ALLOWED = "/problems/evidence-type-not-allowed", "Evidence type not allowed";
    /// Evidence content does not match its type (415).
    EVIDENCE_CONTENT_MISMATCH = "/problems/evidence-content-mismatch", "Evidence content does not match its type";
    /// Invalid link (400).
    INVALID_LINK = "/problems/invalid-link", "Invalid link";
    /// Too much evidence (422).
    EVIDENCE_LIMIT = "/problems/evidence-limit", "Too much evidence";
    /// Invalid correction (400).
    INVALID_SUPERSEDES = "/problems/invalid-supersedes", "Invalid correction";
    /// Evidence locked (409).
    EVIDENCE_LOCKED = "/problems/evidence-locked", "Evidence locked";
    /// Evidence withdrawn (409).
    EVIDENCE_WITHDRAWN = "/problems/evidence-withdrawn", "Evidence withdrawn";
    /// Unknown evidence (404).
    UNKNOWN_EVIDENCE = "/problems/unknown-evidence", "Unknown evidence";
    /// Evidence corrupt (500).
    EVIDENCE_CORRUPT = "/problems/evidence-corrupt", "Evidence corrupt";
    /// Evidence storage unavailable (503).
    EVIDENCE_STORAGE_UNAVAILABLE = "/problems/evidence-storage-unavailable", "Evidence storage unavailable";
}

/// One located problem of a refused import (`errors` of an [`INVALID_TEMPLATE`] problem).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LocatedError {
    /// Where: `Sheet!Row:Column`, `file!Row:column`, a JSON path or `line:column`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

/// One problem details object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// URI reference identifying the problem type (one of the table in this module).
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// Short, fixed summary of the problem type.
    #[schema(value_type = String)]
    pub title: &'static str,
    /// HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// Every located problem of a refused import (omitted otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LocatedError>,
}

impl Problem {
    /// A problem of type `kind` answered with `status`.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, axum::Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

/// At most `max` characters of untrusted input, control characters replaced, for a `detail`.
pub fn excerpt(input: &str, max: usize) -> String {
    let mut out: String = input
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if input.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// The problem of a JSON body axum's `Json` extractor refused: 413 `body-too-large` past the
/// route's limit, else `invalid-body` with axum's status (400, 415, 422) and its detail, which
/// never echoes more than a field name and a position.
pub fn json_rejection(e: &axum::extract::rejection::JsonRejection) -> Problem {
    let status = e.status();
    let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
        BODY_TOO_LARGE
    } else {
        INVALID_BODY
    };
    kind.at(status, excerpt(&e.body_text(), 300))
}

/// [`store_unavailable`] for a failed store call of a handler, counted in the store error
/// metric (`postured_store_errors_total`) by its kind.
pub fn store_failed(app: &crate::app::App, kind: &str) -> Problem {
    app.metrics.observe_store_error(kind);
    store_unavailable(kind)
}

/// The 503 problem of a failed store call (its error kind, never its message, in `detail`);
/// handlers answer it through [`store_failed`], which counts it.
fn store_unavailable(kind: &str) -> Problem {
    STORE_UNAVAILABLE.at(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("store unavailable: {kind}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every type is unique, under `/problems/`, and the ones `auth` answers are in the table.
    #[test]
    fn problem_types_are_unique_and_tabled() {
        let kinds: std::collections::BTreeSet<&str> = ALL.iter().map(|t| t.kind).collect();
        assert_eq!(kinds.len(), ALL.len());
        assert!(ALL.iter().all(|t| t.kind.starts_with("/problems/")));
        let forbidden = crate::server::auth::forbidden("x");
        assert_eq!(
            (forbidden.kind, forbidden.title),
            (FORBIDDEN.kind, FORBIDDEN.title)
        );
        let unauthorized = crate::server::auth::unauthorized("x");
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        let doc = include_str!("problem.rs");
        for t in ALL {
            assert!(
                doc.contains(&format!("| `{}` |", t.kind)),
                "{} is not in the table",
                t.kind
            );
        }
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt("abc", 5), "abc");
        assert_eq!(excerpt("a\nbcdef", 3), "a\u{fffd}b…");
    }
}
