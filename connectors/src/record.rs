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
//!
//! # Personal data and permissions
//!
//! A [`Recorder`] pseudonymises the personal fields of every body by default (user principal
//! names, display names, e-mail addresses, user ids: [`crate::pseudonym`]) with one random key
//! per recording run that is never stored, so a recording can be shared and still replays to
//! the same signals; [`Recorder::keeping_personal_data`] (`postured record
//! --keep-personal-data`) opts out. Files are written atomically (a temporary file renamed
//! over the name) with mode `0600`, and a directory the recorder creates gets `0700`.
//!
//! # Hostile recordings
//!
//! Replay reads at most `max_bytes` of a file ([`crate::http::HttpSettings::max_recording_bytes`],
//! by default 32 MiB) and parses it with `serde_json` (nesting limited to 128 levels): an
//! empty, truncated, oversized, too deep, wrongly typed or non-UTF-8 file is a classified
//! [`ErrorKind::Malformed`] or [`ErrorKind::TooLarge`] for its endpoint, never a panic.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::pseudonym::Pseudonymiser;
use crate::{CollectionError, ErrorKind};

/// Longest file stem (before the hash suffix and `.json`) a recording may have.
pub const MAX_STEM_LEN: usize = 120;

/// Where responses come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mode {
    /// Talk to the real source over HTTP.
    #[default]
    Live,
    /// Talk to the real source and write each successful (2xx) response with this recorder.
    Record(Recorder),
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

/// What `postured record` does with personal data in the bodies it writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PersonalData {
    /// Replace personal fields by keyed pseudonyms ([`crate::pseudonym`]); the default.
    #[default]
    Pseudonymise,
    /// Write bodies as received (`--keep-personal-data`).
    Keep,
}

/// Writes the recordings of one recording run into a directory: every file of the run shares
/// one pseudonymisation key, so pseudonyms are consistent across endpoints and pages.
#[derive(Clone)]
pub struct Recorder {
    dir: PathBuf,
    pseudonymiser: Option<Arc<Pseudonymiser>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.dir)
            .field("pseudonymise", &self.pseudonymiser.is_some())
            .finish()
    }
}

impl PartialEq for Recorder {
    fn eq(&self, other: &Self) -> bool {
        self.dir == other.dir && self.pseudonymiser.is_some() == other.pseudonymiser.is_some()
    }
}

impl Eq for Recorder {}

impl Recorder {
    /// A recorder into `dir` with the given personal-data policy; pseudonymisation uses a
    /// fresh random key ([`Pseudonymiser::random`]) that is never stored.
    pub fn new(dir: impl Into<PathBuf>, personal: PersonalData) -> Self {
        let pseudonymiser = match personal {
            PersonalData::Pseudonymise => Some(Arc::new(Pseudonymiser::random())),
            PersonalData::Keep => None,
        };
        Self {
            dir: dir.into(),
            pseudonymiser,
        }
    }

    /// A recorder that writes bodies as received.
    pub fn keeping_personal_data(dir: impl Into<PathBuf>) -> Self {
        Self::new(dir, PersonalData::Keep)
    }

    /// A recorder pseudonymising with the given pseudonymiser (a known key).
    pub fn with_pseudonymiser(dir: impl Into<PathBuf>, pseudonymiser: Pseudonymiser) -> Self {
        Self {
            dir: dir.into(),
            pseudonymiser: Some(Arc::new(pseudonymiser)),
        }
    }

    /// The directory recordings are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether personal fields are pseudonymised.
    pub fn pseudonymises(&self) -> bool {
        self.pseudonymiser.is_some()
    }

    /// Write a recording of a successful response, personal fields pseudonymised unless the
    /// recorder keeps them. A body that is not JSON is stored as a JSON string so the file
    /// stays valid; when pseudonymising, such a body (which cannot be searched for personal
    /// fields) is replaced by a note of its length. The file is written to a temporary file
    /// (mode `0600`) in the directory and renamed over the name; a missing directory is
    /// created with mode `0700`.
    ///
    /// Errors: the directory cannot be created or the file cannot be written (returned as
    /// [`ErrorKind::Other`]; the caller logs it and still returns the live response).
    pub fn write(
        &self,
        method: &str,
        url: &Url,
        status: u16,
        body: &[u8],
    ) -> Result<PathBuf, CollectionError> {
        let body = match (serde_json::from_slice(body), &self.pseudonymiser) {
            (Ok(mut v), Some(p)) => {
                p.pseudonymise(&mut v);
                v
            }
            (Ok(v), None) => v,
            (Err(_), None) => serde_json::Value::String(String::from_utf8_lossy(body).into_owned()),
            (Err(_), Some(_)) => serde_json::Value::String(format!(
                "[a non-JSON body of {} bytes, not recorded: it cannot be pseudonymised]",
                body.len()
            )),
        };
        let rec = Recording {
            request: request_line(method, url),
            status,
            body,
        };
        let path = self.dir.join(file_name(method, url));
        let io_err = |e: std::io::Error| {
            CollectionError::new(
                ErrorKind::Other,
                url.path(),
                format!("cannot write recording {}: {e}", path.display()),
            )
        };
        create_private_dir(&self.dir).map_err(io_err)?;
        let mut text = serde_json::to_string_pretty(&rec).map_err(|e| {
            CollectionError::new(
                ErrorKind::Other,
                url.path(),
                format!("encode recording: {e}"),
            )
        })?;
        text.push('\n');
        // NamedTempFile creates the file with mode 0600; renaming it over the name replaces
        // an older recording (whatever its mode, even a symlink) instead of writing through it.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io_err)?;
        tmp.write_all(text.as_bytes()).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist(&path).map_err(|e| io_err(e.error))?;
        Ok(path)
    }
}

/// Create `dir` and its missing parents, with mode `0700` on Unix (an existing directory is
/// left as it is).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Read the recording for `url` from `dir`, reading at most `max_bytes` of the file.
///
/// Errors: no file, or its `request` does not match → [`ErrorKind::ReplayMissing`]; a file
/// over `max_bytes` → [`ErrorKind::TooLarge`]; a file that cannot be read or is not a valid
/// recording (empty, truncated, not UTF-8, nested deeper than 128 levels, wrong types) →
/// [`ErrorKind::Malformed`]. `endpoint` labels the error.
pub fn read(
    dir: &Path,
    method: &str,
    url: &Url,
    endpoint: &str,
    max_bytes: u64,
) -> Result<Recording, CollectionError> {
    let line = request_line(method, url);
    let path = dir.join(file_name(method, url));
    let file = std::fs::File::open(&path).map_err(|e| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::ReplayMissing,
            _ => ErrorKind::Malformed,
        };
        CollectionError::new(
            kind,
            endpoint,
            format!(
                "no readable recording for `{line}` at {}: {e}",
                path.display()
            ),
        )
    })?;
    let too_large = || {
        CollectionError::new(
            ErrorKind::TooLarge,
            endpoint,
            format!(
                "recording {} is larger than {max_bytes} bytes; not read",
                path.display()
            ),
        )
    };
    if file.metadata().is_ok_and(|m| m.len() > max_bytes) {
        return Err(too_large());
    }
    // The size check above does not hold for special files (a FIFO, /dev/zero): the read is
    // bounded by itself.
    let mut text = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(|e| {
            CollectionError::new(
                ErrorKind::Malformed,
                endpoint,
                format!("cannot read recording {}: {e}", path.display()),
            )
        })?;
    if text.len() as u64 > max_bytes {
        return Err(too_large());
    }
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
        Recorder::keeping_personal_data(dir.path())
            .write("GET", &u, 200, br#"{"value":[1]}"#)
            .unwrap();
        let rec = read(dir.path(), "GET", &u, "/a", 1 << 20).unwrap();
        assert_eq!(rec.status, 200);
        assert_eq!(rec.body["value"][0], 1);
        let missing = Url::parse("https://h/v1.0/b").unwrap();
        let err = read(dir.path(), "GET", &missing, "/b", 1 << 20).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ReplayMissing);
        // `/v1.0/a_x=1` sanitises to the same name but is a different request
        let clash = Url::parse("https://h/v1.0/a_x=1").unwrap();
        assert_eq!(file_name("GET", &clash), file_name("GET", &u));
        let err = read(dir.path(), "GET", &clash, "/a", 1 << 20).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ReplayMissing);
    }
}
