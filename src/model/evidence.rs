//! Evidence of an action instance, the pure part: the file types evidence may have and the
//! check of a file's content against its declared type (content sniffing), the rule for links,
//! content addressing (SHA-256), when evidence can no longer be removed, and the canonical
//! document of an automatic status change.
//!
//! File types ([`EvidenceType`]): `pdf`, `png`, `jpeg`, `txt`, `csv`, `xlsx`, `docx`, `json`.
//! A binary type must be recognised from its bytes (the `infer` crate's magic numbers; for
//! `xlsx` and `docx` the OOXML parts of the zip) as exactly that type; a text type must be
//! UTF-8 without NUL bytes that no binary signature matches (and `json` must parse as JSON).
//!
//! Must not: do IO or read the clock.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::evaluation::{ImplementationStatus, TestStatus};
use crate::signals::SignalValue;

/// Longest evidence link, in characters.
pub const MAX_LINK_CHARS: usize = 2_000;
/// Longest evidence file name kept, in characters (longer names are cut).
pub const MAX_NAME_CHARS: usize = 255;

/// A file type evidence may have.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceType {
    /// PDF document.
    Pdf,
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// Plain UTF-8 text.
    Txt,
    /// CSV (UTF-8 text).
    Csv,
    /// Excel workbook (Office Open XML).
    Xlsx,
    /// Word document (Office Open XML).
    Docx,
    /// JSON document.
    Json,
}

impl EvidenceType {
    /// Every type, in a stable order (the default of `[evidence] allowed_types`).
    pub const ALL: [EvidenceType; 8] = [
        EvidenceType::Pdf,
        EvidenceType::Png,
        EvidenceType::Jpeg,
        EvidenceType::Txt,
        EvidenceType::Csv,
        EvidenceType::Xlsx,
        EvidenceType::Docx,
        EvidenceType::Json,
    ];

    /// The short name used in configuration (`pdf`, ...).
    pub fn name(self) -> &'static str {
        match self {
            EvidenceType::Pdf => "pdf",
            EvidenceType::Png => "png",
            EvidenceType::Jpeg => "jpeg",
            EvidenceType::Txt => "txt",
            EvidenceType::Csv => "csv",
            EvidenceType::Xlsx => "xlsx",
            EvidenceType::Docx => "docx",
            EvidenceType::Json => "json",
        }
    }

    /// The media type stored and served.
    pub fn media_type(self) -> &'static str {
        match self {
            EvidenceType::Pdf => "application/pdf",
            EvidenceType::Png => "image/png",
            EvidenceType::Jpeg => "image/jpeg",
            EvidenceType::Txt => "text/plain",
            EvidenceType::Csv => "text/csv",
            EvidenceType::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            EvidenceType::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            EvidenceType::Json => "application/json",
        }
    }

    /// The type of a declared media type (parameters such as `; charset=utf-8` ignored, case
    /// insensitive; `image/jpg` and `application/csv` accepted as aliases).
    pub fn from_media_type(media_type: &str) -> Option<EvidenceType> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "image/jpg" => return Some(EvidenceType::Jpeg),
            "application/csv" => return Some(EvidenceType::Csv),
            _ => {}
        }
        Self::ALL.into_iter().find(|t| t.media_type() == essence)
    }

    /// The type a file name's extension names (`.jpg` is `jpeg`), case insensitive.
    pub fn from_file_name(name: &str) -> Option<EvidenceType> {
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "jpg" => Some(EvidenceType::Jpeg),
            e => Self::ALL.into_iter().find(|t| t.name() == e),
        }
    }

    /// The type of a short name (`pdf`, ...).
    pub fn parse(name: &str) -> Option<EvidenceType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    fn is_text(self) -> bool {
        matches!(
            self,
            EvidenceType::Txt | EvidenceType::Csv | EvidenceType::Json
        )
    }
}

/// Check that `bytes` are what `declared` says, by their content. `Err` says what the content
/// is instead (for a problem's detail).
///
/// # Errors
///
/// The content is another type, not valid UTF-8 text, or (for `json`) not JSON.
pub fn check_content(declared: EvidenceType, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("the file is empty".to_string());
    }
    let sniffed = infer::get(bytes).map(|t| t.mime_type());
    if declared.is_text() {
        if let Some(found) = sniffed {
            return Err(format!(
                "declared {}, but the content is {found}",
                declared.media_type()
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| {
            format!(
                "declared {}, but the content is not UTF-8 text",
                declared.media_type()
            )
        })?;
        if text.contains('\0') {
            return Err(format!(
                "declared {}, but the content holds NUL bytes",
                declared.media_type()
            ));
        }
        if declared == EvidenceType::Json
            && serde_json::from_str::<serde::de::IgnoredAny>(text).is_err()
        {
            return Err("declared application/json, but the content is not JSON".to_string());
        }
        return Ok(());
    }
    match sniffed {
        Some(found) if found == declared.media_type() => Ok(()),
        Some(found) => Err(format!(
            "declared {}, but the content is {found}",
            declared.media_type()
        )),
        None => Err(format!(
            "declared {}, but the content is not recognised as one",
            declared.media_type()
        )),
    }
}

/// Check an evidence link: an absolute `http` or `https` URL with a host, at most
/// [`MAX_LINK_CHARS`] characters, no whitespace or control characters.
///
/// # Errors
///
/// What is wrong with it.
pub fn check_link(link: &str) -> Result<(), String> {
    if link.chars().count() > MAX_LINK_CHARS {
        return Err(format!("longer than {MAX_LINK_CHARS} characters"));
    }
    if link.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("contains whitespace or control characters".to_string());
    }
    let url = url::Url::parse(link).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https links are accepted".to_string());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the link has no host".to_string());
    }
    Ok(())
}

/// A file name fit to store and to send back in `Content-Disposition`: its last path
/// component, control characters and quotes replaced by `_`, at most [`MAX_NAME_CHARS`]
/// characters; `evidence` when nothing is left.
pub fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() || c == '"' { '_' } else { c })
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "evidence".to_string()
    } else {
        cleaned
    }
}

/// The SHA-256 of `bytes`, lower-case hex (the content address).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` looks like a content address (64 lower-case hex digits).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether an instance with these statuses is decided (passed, failed or out of scope): its
/// evidence can then no longer be withdrawn, only added to.
pub fn locks_evidence(test: TestStatus, implementation: ImplementationStatus) -> bool {
    test == TestStatus::Passed
        || test.is_failed()
        || test == TestStatus::OutOfScope
        || implementation == ImplementationStatus::OutOfScope
}

/// The canonical JSON document of an automatic status change: what the source said (the
/// signals the rule read, with their values, sorted by key) and what the rule made of it.
/// Instants and the tenant are left out (the transition row holds them), so the same source
/// answer gives the same bytes, and the same content address, every time.
pub fn automatic_document(
    action: &str,
    testing_logic: &str,
    to_status: TestStatus,
    reason: Option<&str>,
    signals: &[(Arc<str>, SignalValue)],
) -> Vec<u8> {
    let mut sorted: Vec<&(Arc<str>, SignalValue)> = signals.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let signals: Vec<serde_json::Value> = sorted
        .into_iter()
        .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
        .collect();
    // serde_json's maps are sorted by key (no `preserve_order`), so the text is canonical.
    let doc = serde_json::json!({
        "kind": "postured.automatic_evidence.v1",
        "action": action,
        "testing_logic": testing_logic,
        "test_status": to_status.as_str(),
        "reason": reason,
        "signals": signals,
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52,
    ];

    #[test]
    fn types_round_trip_through_names_media_types_and_extensions() {
        for t in EvidenceType::ALL {
            assert_eq!(EvidenceType::parse(t.name()), Some(t));
            assert_eq!(EvidenceType::from_media_type(t.media_type()), Some(t));
            assert_eq!(
                EvidenceType::from_file_name(&format!("a.B.{}", t.name().to_uppercase())),
                Some(t)
            );
        }
        assert_eq!(
            EvidenceType::from_media_type("Text/CSV; charset=utf-8"),
            Some(EvidenceType::Csv)
        );
        assert_eq!(
            EvidenceType::from_file_name("x.jpg"),
            Some(EvidenceType::Jpeg)
        );
        assert_eq!(
            EvidenceType::from_media_type("application/x-msdownload"),
            None
        );
        assert_eq!(EvidenceType::from_file_name("noext"), None);
    }

    #[test]
    fn content_must_be_what_is_declared() {
        assert!(check_content(EvidenceType::Png, PNG).is_ok());
        assert!(check_content(EvidenceType::Pdf, b"%PDF-1.7\n%\xe2\xe3\n1 0 obj").is_ok());
        let err = check_content(EvidenceType::Pdf, PNG).unwrap_err();
        assert!(err.contains("image/png"), "{err}");
        assert!(check_content(EvidenceType::Txt, PNG).is_err());
        assert!(check_content(EvidenceType::Txt, "ünïcode\nlines".as_bytes()).is_ok());
        assert!(check_content(EvidenceType::Csv, b"a,b\n1,2\n").is_ok());
        assert!(check_content(EvidenceType::Txt, b"a\0b").is_err());
        assert!(check_content(EvidenceType::Txt, b"\xff\xfe").is_err());
        assert!(check_content(EvidenceType::Json, b"{\"a\": [1]}").is_ok());
        assert!(check_content(EvidenceType::Json, b"{\"a\": ").is_err());
        assert!(check_content(EvidenceType::Jpeg, b"plain text").is_err());
        assert!(check_content(EvidenceType::Txt, b"").is_err());
        let xlsx = {
            let mut wb = rust_xlsxwriter::Workbook::new();
            wb.add_worksheet()
                .write_string(0, 0, "evidence")
                .expect("cell");
            wb.save_to_buffer().expect("xlsx")
        };
        assert!(check_content(EvidenceType::Xlsx, &xlsx).is_ok());
        let err = check_content(EvidenceType::Docx, &xlsx).unwrap_err();
        assert!(err.contains("spreadsheetml"), "{err}");
    }

    #[test]
    fn links_are_bounded_http_urls() {
        assert!(check_link("https://intranet.example/policies/ropa.xlsx?v=2").is_ok());
        assert!(check_link("http://10.0.0.1/x").is_ok());
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "ftp://example.com/a",
            "https://",
            "not a url",
            "https://example.com/a b",
            "https://example.com/\u{7}",
        ] {
            assert!(check_link(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_LINK_CHARS));
        assert!(check_link(&long).is_err());
    }

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\tmp\\report.pdf"), "report.pdf");
        assert_eq!(clean_file_name("a\"b\nc.txt"), "a_b_c.txt");
        assert_eq!(clean_file_name(".."), "evidence");
        assert_eq!(clean_file_name(""), "evidence");
        assert_eq!(
            clean_file_name(&"x".repeat(400)).chars().count(),
            MAX_NAME_CHARS
        );
    }

    #[test]
    fn decided_instances_lock_their_evidence() {
        use ImplementationStatus as I;
        assert!(locks_evidence(TestStatus::Passed, I::Implemented));
        assert!(locks_evidence(TestStatus::FailedLowRisk, I::NotImplemented));
        assert!(locks_evidence(TestStatus::OutOfScope, I::NotImplemented));
        assert!(locks_evidence(TestStatus::None, I::OutOfScope));
        assert!(!locks_evidence(TestStatus::InProgress, I::Planned));
        assert!(!locks_evidence(TestStatus::PartiallyTested, I::Implemented));
        assert!(!locks_evidence(
            TestStatus::CouldNotBeDetected,
            I::NotImplemented
        ));
    }

    #[test]
    fn the_automatic_document_is_canonical() {
        let a = vec![
            ("b.x".into(), SignalValue::Number(1.0)),
            ("a.y".into(), SignalValue::Bool(true)),
        ];
        let mut b = a.clone();
        b.reverse();
        let doc = |s: &[(Arc<str>, SignalValue)]| {
            automatic_document("act", "a.y && b.x > 0", TestStatus::Passed, None, s)
        };
        assert_eq!(doc(&a), doc(&b));
        assert_eq!(sha256_hex(&doc(&a)), sha256_hex(&doc(&b)));
        assert!(is_sha256_hex(&sha256_hex(&doc(&a))));
        let text = String::from_utf8(doc(&a)).expect("utf8");
        assert!(
            text.find("a.y").unwrap() < text.find("b.x").unwrap(),
            "{text}"
        );
        assert_ne!(
            doc(&a),
            automatic_document(
                "act",
                "a.y && b.x > 0",
                TestStatus::FailedHighRisk,
                None,
                &a
            )
        );
    }
}
