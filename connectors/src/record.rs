//! Record/replay of source responses: one human-editable JSON file per request.
//!
//! Role: decide *where* a response comes from ([`Mode`]) and read/write recordings. It does no
//! retries and no parsing into typed models (that is [`crate::http`]'s job) and it must never
//! write credentials: only the request line (method, path, query), the status and the body are
//! stored. The `Authorization` header, access tokens and the token-endpoint exchange are never
//! recorded (token requests do not go through this module at all).
//!
//! # File format
//!
//! ```json
//! {
//!   "request": "GET /v1.0/security/secureScores?$top=1",
//!   "status": 200,
//!   "body": { "value": [ ... ] }
//! }
//! ```
//!
//! # File naming rule
//!
//! The name is derived from the request path and query only (scheme and host are ignored, so
//! recorded `@odata.nextLink`s replay against any base URL):
//!
//! 1. take `path` plus `?query` when there is a query, exactly as they appear in the URL
//!    (percent-encoding kept), and drop the leading `/`;
//! 2. replace every character that is not an ASCII letter, digit, `.`, `-` or `=` with `_`;
//! 3. if the result is longer than [`MAX_STEM_LEN`] characters, keep the first
//!    [`MAX_STEM_LEN`] and append `-` plus the first 16 hex digits of the SHA-256 of the
//!    request line (`GET /path?query`);
//! 4. append `.json`.
//!
//! Example: `GET /v1.0/security/secureScores?$top=1` → `v1.0_security_secureScores__top=1.json`.
//! On replay the file's `request` field must equal the request line, otherwise the recording is
//! treated as missing (guards against two requests sanitising to the same name).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::{CollectionError, ErrorKind};

/// Longest file stem (before the hash suffix and `.json`) a recording may have.
pub const MAX_STEM_LEN: usize = 120;

/// Where responses come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mode {
    /// Talk to the real source over HTTP.
    #[default]
    Live,
    /// Talk to the real source and write each successful (2xx) response into this directory.
    Record(PathBuf),
    /// Never touch the network (no token request either): serve every request from the
    /// recordings in this directory. A missing file is [`ErrorKind::ReplayMissing`].
    Replay(PathBuf),
}

/// One recorded exchange, as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    /// Request line without scheme and host, e.g. `GET /v1.0/security/secureScores?$top=1`.
    pub request: String,
    /// HTTP status of the response (replay honours it, so a file may be edited to say 403).
    pub status: u16,
    /// The JSON response body.
    pub body: serde_json::Value,
}

/// Request line used in recordings: `GET /path?query` (no scheme, host or fragment).
pub fn request_line(method: &str, url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{method} {}?{q}", url.path()),
        None => format!("{method} {}", url.path()),
    }
}

/// File name of the recording for `url` (see the module docs for the rule).
pub fn file_name(method: &str, url: &Url) -> String {
    let raw = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut stem: String = raw
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '=') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.len() > MAX_STEM_LEN {
        stem.truncate(MAX_STEM_LEN);
        let digest = Sha256::digest(request_line(method, url).as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        stem.push('-');
        stem.push_str(&hex);
    }
    stem.push_str(".json");
    stem
}

/// Write a recording of a successful response. The body must be JSON; a body that is not
/// JSON is stored as a JSON string so the file stays valid.
///
/// Errors: the directory cannot be created or the file cannot be written (returned as
/// [`ErrorKind::Other`]; the caller logs it and still returns the live response).
pub fn write(
    dir: &Path,
    method: &str,
    url: &Url,
    status: u16,
    body: &[u8],
) -> Result<PathBuf, CollectionError> {
    let body = serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()));
    let rec = Recording {
        request: request_line(method, url),
        status,
        body,
    };
    let path = dir.join(file_name(method, url));
    let io_err = |e: std::io::Error| {
        CollectionError::new(
            ErrorKind::Other,
            url.path(),
            format!("cannot write recording {}: {e}", path.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let mut text = serde_json::to_string_pretty(&rec).map_err(|e| {
        CollectionError::new(
            ErrorKind::Other,
            url.path(),
            format!("encode recording: {e}"),
        )
    })?;
    text.push('\n');
    std::fs::write(&path, text).map_err(io_err)?;
    Ok(path)
}

/// Read the recording for `url` from `dir`.
///
/// Errors: no file, or its `request` does not match → [`ErrorKind::ReplayMissing`]; the file
/// is not a valid recording → [`ErrorKind::Malformed`]. `endpoint` labels the error.
pub fn read(
    dir: &Path,
    method: &str,
    url: &Url,
    endpoint: &str,
) -> Result<Recording, CollectionError> {
    let line = request_line(method, url);
    let path = dir.join(file_name(method, url));
    let text = std::fs::read(&path).map_err(|e| {
        CollectionError::new(
            ErrorKind::ReplayMissing,
            endpoint,
            format!("no recording for `{line}` at {}: {e}", path.display()),
        )
    })?;
    let rec: Recording = serde_json::from_slice(&text).map_err(|e| {
        CollectionError::new(
            ErrorKind::Malformed,
            endpoint,
            format!("recording {} is not valid: {e}", path.display()),
        )
    })?;
    if rec.request != line {
        return Err(CollectionError::new(
            ErrorKind::ReplayMissing,
            endpoint,
            format!(
                "recording {} is for `{}`, not `{line}`",
                path.display(),
                rec.request
            ),
        ));
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_rule() {
        let u =
            Url::parse("https://graph.microsoft.com/v1.0/security/secureScores?$top=1").unwrap();
        assert_eq!(
            file_name("GET", &u),
            "v1.0_security_secureScores__top=1.json"
        );
        let u = Url::parse("http://127.0.0.1:9/v1.0/identity/conditionalAccess/policies").unwrap();
        assert_eq!(
            file_name("GET", &u),
            "v1.0_identity_conditionalAccess_policies.json"
        );
        assert_eq!(
            request_line("GET", &u),
            "GET /v1.0/identity/conditionalAccess/policies"
        );
    }

    #[test]
    fn long_names_are_truncated_with_a_hash() {
        let long = format!("https://h/v1.0/users?$skiptoken={}", "X".repeat(400));
        let u = Url::parse(&long).unwrap();
        let name = file_name("GET", &u);
        assert_eq!(name.len(), MAX_STEM_LEN + 1 + 16 + ".json".len());
        let other = Url::parse(&format!("{long}Y")).unwrap();
        assert_ne!(name, file_name("GET", &other));
    }

    #[test]
    fn write_then_read_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let u = Url::parse("https://h/v1.0/a?x=1").unwrap();
        write(dir.path(), "GET", &u, 200, br#"{"value":[1]}"#).unwrap();
        let rec = read(dir.path(), "GET", &u, "/a").unwrap();
        assert_eq!(rec.status, 200);
        assert_eq!(rec.body["value"][0], 1);
        let missing = Url::parse("https://h/v1.0/b").unwrap();
        let err = read(dir.path(), "GET", &missing, "/b").unwrap_err();
        assert_eq!(err.kind, ErrorKind::ReplayMissing);
        // `/v1.0/a_x=1` sanitises to the same name but is a different request
        let clash = Url::parse("https://h/v1.0/a_x=1").unwrap();
        assert_eq!(file_name("GET", &clash), file_name("GET", &u));
        let err = read(dir.path(), "GET", &clash, "/a").unwrap_err();
        assert_eq!(err.kind, ErrorKind::ReplayMissing);
    }
}
