//! `postured audit export`: the append-only audit log on standard output, as CSV or JSON.
//!
//! Must not: write to the store.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::config::Config;
pub use crate::report::audit::AuditFormat;
use crate::report::audit::{ExportError, load, render};
use crate::store::AuditFilter;

/// Run `postured audit export`: every audit row at or after `since` (of `tenant`, when
/// given), oldest first, in `format`. Exit code 1 when more than
/// [`crate::report::audit::MAX_EXPORT_ROWS`] rows match (narrow with `--since`).
///
/// # Errors
///
/// Store and output errors.
pub async fn export(
    cfg: Config,
    since: Option<DateTime<Utc>>,
    tenant: Option<String>,
    format: AuditFormat,
) -> anyhow::Result<ExitCode> {
    let store = crate::assembly::open_store(&cfg).await?;
    let filter = AuditFilter {
        since,
        tenant,
        ..AuditFilter::default()
    };
    let rows = match load(store.as_ref(), &filter).await {
        Ok(rows) => rows,
        Err(ExportError::TooLarge) => {
            eprintln!("postured audit export: {}", ExportError::TooLarge);
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let bytes = render(&rows, format)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
