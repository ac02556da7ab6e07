//! RFC 9457 problem details: the body of the API's error answers
//! (`Content-Type: application/problem+json`).
//!
//! `type` is a relative URI naming the kind of problem (`/problems/unknown-action`, ...),
//! `title` its fixed summary, `status` the HTTP status, `detail` what was wrong with this
//! request (never a secret, never an echo of more than a short, sanitised excerpt of input).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem details body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// One problem details object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// URI reference identifying the problem type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short, fixed summary of the problem type.
    pub title: &'static str,
    /// HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt("abc", 5), "abc");
        assert_eq!(excerpt("a\nbcdef", 3), "a\u{fffd}b…");
    }
}
