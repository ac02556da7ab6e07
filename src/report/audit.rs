//! The audit log export (`GET /api/v1/audit/export`, `postured audit export`): every row
//! matching a filter, oldest first, as CSV or as a JSON array.
//!
//! Bounded: at most [`MAX_EXPORT_ROWS`] rows (read from the store in pages of
//! [`MAX_AUDIT_PAGE`]); a larger export is refused with [`ExportError::TooLarge`] (narrow it
//! with a time range or a tenant). CSV columns: `id, at, actor, action, tenant, group,
//! object, field, old_value, new_value, request_id`, values as JSON text, instants RFC 3339.
//!
//! Must not: write to the store.

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use crate::store::audit::MAX_AUDIT_PAGE;
use crate::store::{AuditEntry, AuditFilter, AuditStore, StoreError};

/// Most rows one export holds.
pub const MAX_EXPORT_ROWS: usize = 100_000;

/// Export format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuditFormat {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// A JSON array of audit rows.
    Json,
}

impl AuditFormat {
    /// The media type of the format.
    pub fn media_type(self) -> &'static str {
        match self {
            AuditFormat::Csv => "text/csv; charset=utf-8",
            AuditFormat::Json => "application/json",
        }
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// More rows match than [`MAX_EXPORT_ROWS`].
    #[error(
        "more than {MAX_EXPORT_ROWS} audit rows match; narrow the export (since, until, tenant)"
    )]
    TooLarge,
    /// The store could not be read.
    #[error("store unavailable: {}", .0.kind())]
    Store(#[from] StoreError),
    /// Encoding failed.
    #[error("encoding the export failed: {0}")]
    Encode(String),
}

/// Every row matching `filter` (its `after` is the starting cursor), oldest first.
///
/// # Errors
///
/// [`ExportError::TooLarge`] past [`MAX_EXPORT_ROWS`]; store errors.
pub async fn load(
    store: &dyn AuditStore,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, ExportError> {
    let mut filter = filter.clone();
    let mut out = Vec::new();
    loop {
        let page = store.audit_entries(&filter, MAX_AUDIT_PAGE).await?;
        let full = page.len() == MAX_AUDIT_PAGE as usize;
        filter.after = page.last().map(|e| e.id).or(filter.after);
        out.extend(page);
        if out.len() > MAX_EXPORT_ROWS {
            return Err(ExportError::TooLarge);
        }
        if !full {
            return Ok(out);
        }
    }
}

/// `entries` in `format`.
///
/// # Errors
///
/// [`ExportError::Encode`] when the encoder fails (it does not for valid rows).
pub fn render(entries: &[AuditEntry], format: AuditFormat) -> Result<Vec<u8>, ExportError> {
    match format {
        AuditFormat::Json => {
            serde_json::to_vec_pretty(entries).map_err(|e| ExportError::Encode(e.to_string()))
        }
        AuditFormat::Csv => csv(entries).map_err(|e| ExportError::Encode(e.to_string())),
    }
}

fn csv(entries: &[AuditEntry]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "at",
        "actor",
        "action",
        "tenant",
        "group",
        "object",
        "field",
        "old_value",
        "new_value",
        "request_id",
    ])?;
    let json =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    for e in entries {
        let r = &e.record;
        w.write_record([
            e.id.to_string(),
            r.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            r.actor.clone(),
            r.action.clone(),
            r.tenant.clone().unwrap_or_default(),
            r.group.clone().unwrap_or_default(),
            r.object.clone(),
            r.field.clone().unwrap_or_default(),
            json(&r.old_value),
            json(&r.new_value),
            r.request_id.clone().unwrap_or_default(),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditRecord;

    #[test]
    fn csv_quotes_values_and_keeps_json() {
        let entry = AuditEntry {
            id: 7,
            record: AuditRecord {
                at: chrono::DateTime::from_timestamp_millis(1_800_000_000_000).expect("instant"),
                actor: "token:1".into(),
                action: "action.update".into(),
                tenant: Some("contoso".into()),
                group: None,
                object: "msgraph.mfa".into(),
                field: Some("notes".into()),
                old_value: Some(serde_json::Value::Null),
                new_value: Some(serde_json::json!("a, \"b\"\nc")),
                request_id: None,
            },
        };
        let text =
            String::from_utf8(render(&[entry], AuditFormat::Csv).expect("csv")).expect("utf8");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][0], "7");
        assert_eq!(&rows[0][1], "2027-01-15T08:00:00.000Z");
        assert_eq!(&rows[0][8], "null");
        assert_eq!(&rows[0][9], "\"a, \\\"b\\\"\\nc\"");
    }
}
