//! Evidence at run time: adding files and links to an action instance, serving a file back
//! (its hash checked again), and withdrawing evidence while the instance is undecided.
//!
//! - A file's declared type (the upload's media type, or its name's extension when the media
//!   type is missing or `application/octet-stream`) must be in `[evidence] allowed_types`, and
//!   its content must be that type (`model::evidence::check_content`). Its bytes are kept under
//!   their SHA-256 in the database, or in `[evidence] path` (`store = "directory"`) as
//!   `<path>/<first two hex digits>/<sha256>`, written to a temporary file in the same
//!   directory, synced and renamed (atomic); a file already holding the bytes is kept.
//! - A download checks the bytes' SHA-256 and size against the row and refuses (with an error
//!   log) bytes that do not match: [`EvidenceError::Corrupt`]. A file of the evidence
//!   directory is never read whole: it is opened, hashed in a streaming pass (64 KiB at a time,
//!   stopping one byte past the recorded size), rewound and served from the same open handle
//!   ([`EvidenceBytes::File`]); bytes held in the database are read whole
//!   ([`EvidenceBytes::Memory`], see there why).
//! - Evidence of a decided instance (passed, failed or out of scope, as the model, the manual
//!   record or the tenant's latest evaluation says) is never withdrawn:
//!   [`EvidenceError::Locked`]. Otherwise a withdrawal marks the row; row and bytes stay.
//!
//! Every change appends its audit rows (`evidence.add`, `evidence.withdraw`) in the store
//! transaction that makes it.
//!
//! Must not: check roles (the API does); delete evidence.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::App;
use super::model::Actor;
use crate::config::{EvidenceConfig, EvidenceStorage};
use crate::evaluation::{ImplementationStatus, TestStatus};
use crate::model::evidence::{
    EvidenceType, check_content, check_link, clean_file_name, locks_evidence, sha256_hex,
};
use crate::model::{InstanceKey, InstanceScope};
use crate::store::{AuditRecord, BlobRef, Evidence, EvidenceKind, NewEvidence, StoreError};

/// Why an evidence call is refused.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The file is larger than `[evidence] max_file_bytes`.
    #[error("the file is larger than {max} bytes ([evidence] max_file_bytes)")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// The declared type is unknown or not in `[evidence] allowed_types`.
    #[error("{0}")]
    TypeNotAllowed(String),
    /// The content is not what its declared type says.
    #[error("{0}")]
    ContentMismatch(String),
    /// The link is not an http(s) URL within the limits.
    #[error("link: {0}")]
    InvalidLink(String),
    /// The instance has `[evidence] max_per_instance` files and links already.
    #[error("the instance has {max} files and links already ([evidence] max_per_instance)")]
    TooMany {
        /// The limit.
        max: u32,
    },
    /// `supersedes` names no undecided-yet row of this instance.
    #[error("{0}")]
    InvalidSupersedes(String),
    /// The instance is decided (passed, failed or out of scope): its evidence stays.
    #[error(
        "the instance is {0}: its evidence can no longer be withdrawn (add a correction instead)"
    )]
    Locked(String),
    /// The evidence was withdrawn already.
    #[error("the evidence was withdrawn already")]
    AlreadyWithdrawn,
    /// No such evidence.
    #[error("no such evidence")]
    NotFound,
    /// The stored bytes do not match their recorded hash or size (or are missing).
    #[error("the stored evidence does not match its SHA-256")]
    Corrupt,
    /// The evidence directory could not be written or read.
    #[error("evidence directory: {0}")]
    Io(String),
    /// The store failed.
    #[error("store unavailable: {}", .0.kind())]
    Store(#[from] StoreError),
}

/// An uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The file name given by the client (cleaned before it is stored).
    pub file_name: Option<String>,
    /// The media type given by the client.
    pub media_type: Option<String>,
    /// The bytes (at most `[evidence] max_file_bytes`, checked while reading).
    pub bytes: Vec<u8>,
}

/// The type an upload declares: its media type, else (when missing or
/// `application/octet-stream`) its name's extension; it must be allowed by `cfg`.
///
/// # Errors
///
/// [`EvidenceError::TypeNotAllowed`].
pub fn declared_type(cfg: &EvidenceConfig, upload: &Upload) -> Result<EvidenceType, EvidenceError> {
    let generic = upload.media_type.as_deref().is_none_or(|m| {
        m.trim().is_empty()
            || m.split(';').next().unwrap_or_default().trim() == "application/octet-stream"
    });
    let declared = if generic {
        upload
            .file_name
            .as_deref()
            .and_then(EvidenceType::from_file_name)
    } else {
        upload
            .media_type
            .as_deref()
            .and_then(EvidenceType::from_media_type)
    };
    let allowed: Vec<&str> = cfg.allowed_types.iter().map(|t| t.name()).collect();
    match declared {
        Some(t) if cfg.allowed_types.contains(&t) => Ok(t),
        _ => Err(EvidenceError::TypeNotAllowed(format!(
            "the file's type is not accepted; accepted: {}",
            allowed.join(", ")
        ))),
    }
}

fn scope_parts(scope: &InstanceScope) -> (Option<String>, Option<String>) {
    match scope {
        InstanceScope::Tenant(t) => (Some(t.clone()), None),
        InstanceScope::Group(g) => (None, Some(g.clone())),
    }
}

/// The JSON of an evidence row as the audit log records it.
fn audit_value(e: &Evidence) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "kind": e.kind,
        "name": e.name,
        "media_type": e.media_type,
        "size": e.size,
        "sha256": e.sha256,
        "superseded_by": e.superseded_by,
        "withdrawn": e.withdrawn_at.is_some(),
    })
}

fn audit_row(
    e: &Evidence,
    action: &str,
    old: Option<serde_json::Value>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AuditRecord {
    let (tenant, group) = scope_parts(&e.scope);
    AuditRecord {
        at: now,
        actor: actor.subject.clone(),
        action: action.to_string(),
        tenant,
        group,
        object: e.action.clone(),
        field: Some("evidence".to_string()),
        old_value: old,
        new_value: Some(audit_value(e)),
        request_id: actor.request_id.clone(),
    }
}

/// The path of a content address under the evidence directory.
pub fn blob_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(&sha256[..2]).join(sha256)
}

/// Write `bytes` under their address in `dir`, atomically (temporary file, sync, rename),
/// unless the file holds them already (a damaged file is replaced).
async fn write_blob(dir: &Path, sha256: &str, bytes: &[u8]) -> Result<(), EvidenceError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |e: std::io::Error| EvidenceError::Io(e.kind().to_string());
    let path = blob_path(dir, sha256);
    let parent = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.to_path_buf());
    let bytes = bytes.to_vec();
    let sha256 = sha256.to_string();
    tokio::task::spawn_blocking(move || {
        // A file already holding these bytes is kept; one that does not (damaged) is replaced.
        if open_checked(&path, &sha256, bytes.len() as u64).is_ok_and(|f| f.is_some()) {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(io)?;
        let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let written = (|| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(())
    })
    .await
    .map_err(|e| EvidenceError::Io(e.to_string()))?
}

/// Add an uploaded file to an instance: type and content checked, bytes stored under their
/// SHA-256, the row and its `evidence.add` audit row written together.
///
/// # Errors
///
/// [`EvidenceError::TooLarge`], [`EvidenceError::TypeNotAllowed`],
/// [`EvidenceError::ContentMismatch`], [`EvidenceError::TooMany`],
/// [`EvidenceError::InvalidSupersedes`],
/// [`EvidenceError::Io`], [`EvidenceError::Store`]; nothing is written then (a file written to
/// the directory before a store failure stays, unreferenced, and is reused by a retry).
pub async fn add_file(
    app: &App,
    scope: InstanceScope,
    action: &str,
    upload: Upload,
    supersedes: Option<i64>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Evidence, EvidenceError> {
    let cfg = &app.config.evidence;
    if upload.bytes.len() as u64 > cfg.max_file_bytes {
        return Err(EvidenceError::TooLarge {
            max: cfg.max_file_bytes,
        });
    }
    let kind = declared_type(cfg, &upload)?;
    check_content(kind, &upload.bytes).map_err(EvidenceError::ContentMismatch)?;
    let sha256 = sha256_hex(&upload.bytes);
    let name = clean_file_name(upload.file_name.as_deref().unwrap_or_default());
    let new = NewEvidence {
        scope,
        action: action.to_string(),
        kind: EvidenceKind::File,
        name,
        media_type: Some(kind.media_type().to_string()),
        blob: Some(BlobRef {
            sha256: sha256.clone(),
            size: upload.bytes.len() as i64,
        }),
        uploaded_by: actor.subject.clone(),
        uploaded_at: now,
        supersedes,
    };
    let content = match (cfg.store, &cfg.path) {
        (EvidenceStorage::Directory, Some(dir)) => {
            write_blob(dir, &sha256, &upload.bytes).await?;
            None
        }
        _ => Some(upload.bytes.as_slice()),
    };
    add(app, &new, content, actor, now).await
}

/// Add a link to an instance (`http`/`https`, at most 2,000 characters).
///
/// # Errors
///
/// [`EvidenceError::InvalidLink`], [`EvidenceError::TooMany`],
/// [`EvidenceError::InvalidSupersedes`], [`EvidenceError::Store`].
pub async fn add_link(
    app: &App,
    scope: InstanceScope,
    action: &str,
    url: &str,
    supersedes: Option<i64>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Evidence, EvidenceError> {
    check_link(url).map_err(EvidenceError::InvalidLink)?;
    let new = NewEvidence {
        scope,
        action: action.to_string(),
        kind: EvidenceKind::Link,
        name: url.to_string(),
        media_type: None,
        blob: None,
        uploaded_by: actor.subject.clone(),
        uploaded_at: now,
        supersedes,
    };
    add(app, &new, None, actor, now).await
}

async fn add(
    app: &App,
    new: &NewEvidence,
    content: Option<&[u8]>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Evidence, EvidenceError> {
    let max = app.config.evidence.max_per_instance;
    let held = app
        .store
        .evidence_of(&new.scope, &new.action)
        .await?
        .iter()
        .filter(|e| e.kind != EvidenceKind::Automatic)
        .count();
    if held >= max as usize {
        return Err(EvidenceError::TooMany { max });
    }
    if let Some(old) = new.supersedes {
        let found = app.store.evidence(old).await?;
        if !found.is_some_and(|o| {
            o.scope == new.scope && o.action == new.action && o.superseded_by.is_none()
        }) {
            return Err(EvidenceError::InvalidSupersedes(format!(
                "supersedes: evidence {old} is not evidence of this instance that is not \
                 superseded yet"
            )));
        }
    }
    let audit = |e: &Evidence| vec![audit_row(e, "evidence.add", None, actor, now)];
    Ok(app.store.add_evidence(new, content, &audit).await?)
}

/// Bytes read per step of a file's hashing pass and of its answer (64 KiB).
pub const STREAM_CHUNK_BYTES: usize = 64 * 1024;

/// The checked bytes of a file of evidence, to serve.
#[derive(Debug)]
pub enum EvidenceBytes {
    /// Bytes held in the database (`[evidence] store = "database"`), read whole: neither sqlx
    /// driver reads a column piecewise (no incremental BLOB or `bytea` I/O), so the value
    /// arrives whole with its row. The memory this takes is bounded by `[evidence]
    /// max_file_bytes` (default 25 MiB, at most 1 GiB), which every upload was held to; a
    /// deployment serving large files keeps them in the evidence directory instead.
    Memory(Vec<u8>),
    /// A file of the evidence directory (`[evidence] store = "directory"`): open, its SHA-256
    /// and size checked in a streaming pass, rewound to its start; to be served from this
    /// handle, `size` bytes (the file the daemon replaces only by renaming a new one over it,
    /// never by writing in place, so the checked handle keeps the checked bytes).
    File {
        /// The open file, at offset 0.
        file: tokio::fs::File,
        /// Its length in bytes (the recorded size).
        size: u64,
    },
}

/// Open `path` and check its length is `size` and its SHA-256 `sha256` in one streaming pass
/// ([`STREAM_CHUNK_BYTES`] at a time, reading at most `size + 1` bytes); the handle rewound to
/// its start, or `None` when the content differs.
fn open_checked(path: &Path, sha256: &str, size: u64) -> std::io::Result<Option<std::fs::File>> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; STREAM_CHUNK_BYTES];
    let mut read: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        read += n as u64;
        if read > size {
            return Ok(None);
        }
        hasher.update(&buf[..n]);
    }
    if read != size || hex::encode(hasher.finalize()) != sha256 {
        return Ok(None);
    }
    file.rewind()?;
    Ok(Some(file))
}

/// The evidence row `id` and its bytes, their SHA-256 and size checked against the row (a
/// file of the evidence directory in a streaming pass, then served from the same handle).
///
/// # Errors
///
/// [`EvidenceError::NotFound`] (also for a link, which has no bytes),
/// [`EvidenceError::Corrupt`] (logged as an error), [`EvidenceError::Io`],
/// [`EvidenceError::Store`].
pub async fn download(app: &App, id: i64) -> Result<(Evidence, EvidenceBytes), EvidenceError> {
    let Some(row) = app.store.evidence(id).await? else {
        return Err(EvidenceError::NotFound);
    };
    let Some(sha256) = row.sha256.clone() else {
        return Err(EvidenceError::NotFound);
    };
    let corrupt = |why: &str| {
        tracing::error!(evidence = id, sha256 = %sha256, "evidence is corrupt: {why}; not served");
        EvidenceError::Corrupt
    };
    let Some(blob) = app.store.evidence_blob(&sha256).await? else {
        return Err(corrupt("its blob row is missing"));
    };
    let mismatch = "the bytes' SHA-256 or size differs from the recorded one";
    let size = u64::try_from(blob.size).map_err(|_| corrupt("its recorded size is negative"))?;
    match blob.content {
        Some(bytes) => {
            if sha256_hex(&bytes) != sha256 || bytes.len() as u64 != size {
                return Err(corrupt(mismatch));
            }
            Ok((row, EvidenceBytes::Memory(bytes)))
        }
        None => {
            let Some(dir) = app.config.evidence.path.as_ref() else {
                return Err(corrupt(
                    "its bytes are in a directory, but [evidence] path is unset",
                ));
            };
            let path = blob_path(dir, &sha256);
            let address = sha256.clone();
            let checked = tokio::task::spawn_blocking(move || open_checked(&path, &address, size))
                .await
                .map_err(|e| EvidenceError::Io(e.to_string()))?;
            match checked {
                Ok(Some(file)) => Ok((
                    row,
                    EvidenceBytes::File {
                        file: tokio::fs::File::from_std(file),
                        size,
                    },
                )),
                Ok(None) => Err(corrupt(mismatch)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(corrupt("its file is missing"))
                }
                Err(e) => Err(EvidenceError::Io(e.kind().to_string())),
            }
        }
    }
}

/// The statuses that decide whether an instance's evidence is locked: the model's instance,
/// the person's record, and (tenant-scoped) the latest automatic result; `Some(name)` of the
/// first deciding status found.
async fn decided(
    app: &App,
    scope: &InstanceScope,
    action: &str,
) -> Result<Option<String>, StoreError> {
    let mut candidates: Vec<(TestStatus, ImplementationStatus)> = Vec::new();
    let model = app.compliance_model().await;
    let key = InstanceKey {
        scope: scope.clone(),
        action: action.to_string(),
    };
    if let Some(i) = model.instance(&key) {
        candidates.push((i.test_status, i.implementation_status));
    }
    if let Some(m) = app.store.manual_status(scope, action).await? {
        candidates.push((
            m.test_status.unwrap_or(TestStatus::None),
            m.implementation_status
                .unwrap_or(ImplementationStatus::NotImplemented),
        ));
    }
    if let InstanceScope::Tenant(t) = scope {
        for e in app.evaluations().await.iter().filter(|e| &e.tenant == t) {
            if let Some(r) = e.actions.iter().find(|r| r.action_id == action) {
                candidates.push((r.test_status, r.implementation_status));
            }
        }
    }
    Ok(candidates
        .into_iter()
        .find(|(t, i)| locks_evidence(*t, *i))
        .map(|(t, i)| {
            if i == ImplementationStatus::OutOfScope {
                "out_of_scope".to_string()
            } else {
                t.as_str().to_string()
            }
        }))
}

/// Withdraw evidence `id` (the row and bytes stay), unless its instance is decided.
///
/// # Errors
///
/// [`EvidenceError::NotFound`], [`EvidenceError::Locked`],
/// [`EvidenceError::AlreadyWithdrawn`], [`EvidenceError::Store`].
pub async fn withdraw(
    app: &App,
    id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Evidence, EvidenceError> {
    let Some(row) = app.store.evidence(id).await? else {
        return Err(EvidenceError::NotFound);
    };
    if row.withdrawn_at.is_some() {
        return Err(EvidenceError::AlreadyWithdrawn);
    }
    if let Some(status) = decided(app, &row.scope, &row.action).await? {
        return Err(EvidenceError::Locked(status));
    }
    let before = audit_value(&row);
    let audit = |e: &Evidence| {
        vec![audit_row(
            e,
            "evidence.withdraw",
            Some(before.clone()),
            actor,
            now,
        )]
    };
    if !app
        .store
        .withdraw_evidence(id, &actor.subject, now, &audit)
        .await?
    {
        return Err(EvidenceError::AlreadyWithdrawn);
    }
    app.store.evidence(id).await?.ok_or(EvidenceError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_type_comes_from_the_media_type_or_the_name() {
        let cfg = EvidenceConfig::default();
        let up = |name: Option<&str>, media: Option<&str>| Upload {
            file_name: name.map(str::to_string),
            media_type: media.map(str::to_string),
            bytes: Vec::new(),
        };
        let t = |u: Upload| declared_type(&cfg, &u).ok();
        assert_eq!(
            t(up(Some("a.pdf"), Some("image/png"))),
            Some(EvidenceType::Png)
        );
        assert_eq!(t(up(Some("a.pdf"), None)), Some(EvidenceType::Pdf));
        assert_eq!(
            t(up(Some("a.PDF"), Some("application/octet-stream"))),
            Some(EvidenceType::Pdf)
        );
        assert_eq!(t(up(Some("a.exe"), None)), None);
        assert_eq!(t(up(None, Some("application/x-msdownload"))), None);
        let only_pdf = EvidenceConfig {
            allowed_types: vec![EvidenceType::Pdf],
            ..EvidenceConfig::default()
        };
        let err = declared_type(&only_pdf, &up(Some("a.png"), None)).unwrap_err();
        assert!(err.to_string().contains("accepted: pdf"), "{err}");
    }

    /// The streaming check reads a file of many chunks, refuses one that differs in a byte,
    /// in length either way, and hands back a handle at offset 0 that keeps the checked bytes
    /// when a new file is renamed over the path (as the daemon replaces files).
    #[test]
    fn a_file_is_checked_in_one_streaming_pass_and_served_from_its_handle() {
        use std::io::Read;
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes: Vec<u8> = (0..(3 * STREAM_CHUNK_BYTES + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let sha = sha256_hex(&bytes);
        let path = dir.path().join("blob");
        let size = bytes.len() as u64;
        let check = |content: &[u8]| {
            std::fs::write(&path, content).expect("write");
            open_checked(&path, &sha, size).expect("read")
        };
        let mut flipped = bytes.clone();
        flipped[3 * STREAM_CHUNK_BYTES + 3] ^= 1;
        assert!(check(&flipped).is_none(), "a changed byte");
        assert!(check(&bytes[..bytes.len() - 1]).is_none(), "one byte short");
        assert!(
            check(&[&bytes[..], b"x"].concat()).is_none(),
            "one byte long"
        );
        let mut handle = check(&bytes).expect("the right bytes");
        let other = dir.path().join("other");
        std::fs::write(&other, b"replaced").expect("write");
        std::fs::rename(&other, &path).expect("rename over");
        let mut served = Vec::new();
        handle.read_to_end(&mut served).expect("read");
        assert!(served == bytes, "the handle serves the checked bytes");
        let missing = open_checked(&dir.path().join("none"), &sha, size).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn blobs_are_written_once_under_their_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sha = sha256_hex(b"abc");
        write_blob(dir.path(), &sha, b"abc").await.expect("write");
        let path = blob_path(dir.path(), &sha);
        assert_eq!(std::fs::read(&path).expect("read"), b"abc");
        // A damaged file is replaced by the next write of its bytes.
        std::fs::write(&path, b"tampered").expect("tamper");
        write_blob(dir.path(), &sha, b"abc").await.expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"abc");
        let leftovers = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .count();
        assert_eq!(leftovers, 1, "no temporary file is left");
    }
}
