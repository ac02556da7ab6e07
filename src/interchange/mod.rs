//! Import and export: templates from Compliance Manager Excel workbooks, a flat CSV layout and
//! OSCAL catalogs/profiles; assessment reports to Excel, CSV, JSON and OSCAL
//! `assessment-results`. User documentation: `docs/interchange.md`.
//!
//! - [`excel`]: Compliance Manager workbook import/export, report workbook;
//! - [`csv`]: flat template CSV import/export, report CSV;
//! - [`json`]: report JSON;
//! - [`oscal`]: catalogs (JSON, XML) and profiles in, `assessment-results` out;
//! - [`formats`]: the one import body (format -> importer, overrides, validation) and the
//!   exporter dispatch, shared by the CLI and the API;
//!
//! Every importer is pure (text or bytes in, [`Template`] out) and collects **every** problem
//! it finds as an [`ImportError`] located in the source (`Actions!5:actionScore: ...` for a
//! workbook, `template.csv!3:actionScore: ...` for CSV, a JSON path or `line:column` for
//! OSCAL). An import that found any error returns no template at all, so nothing
//! half-imported is ever persisted.
//!
//! Must not: touch the store, the metrics or the clock (exporters stamp documents with the
//! report's `generated_at`; OSCAL UUIDs are random v4). The file and store IO of `postured
//! template import|list` and `postured export` is `crate::cli::interchange`.
//!
//! ## Limits
//!
//! A file to import comes from a person and may be hostile: every importer bounds what it
//! allocates, and past a bound the import fails with a located [`ImportError`] (the CLI's exit
//! code 65), never with an abort. The bounds (constants, not configurable; documented in
//! `docs/interchange.md`):
//!
//! | limit | default | where |
//! |---|---|---|
//! | file size | [`MAX_IMPORT_FILE_BYTES`] (32 MiB) | read by the CLI |
//! | cells of a sheet or CSV file (used range, rows × columns) | [`MAX_TABLE_CELLS`] (1,000,000) | [`excel`], [`csv`] |
//! | workbook: zip entries, declared uncompressed bytes | [`excel::MAX_ZIP_ENTRIES`] (10,000), [`excel::MAX_UNCOMPRESSED_BYTES`] (64 MiB) | [`excel`] |
//! | fields of one CSV record (counted before the record is stored) | [`MAX_TABLE_CELLS`] | [`csv`] |
//! | JSON values of a catalog or profile (counted before any is built) | [`oscal::MAX_JSON_VALUES`] (2,000,000) | [`oscal`] |
//! | XML nodes of a catalog | [`oscal::MAX_XML_NODES`] (2,000,000) | [`oscal`] |
//! | XML element nesting | [`oscal::MAX_XML_DEPTH`] (128; JSON: `serde_json`'s 128) | [`oscal`] |
//! | text inserted by OSCAL parameter `insert`s | [`oscal::MAX_INSERT_EXPANSION_BYTES`] (4 MiB per catalog) | [`oscal`] |
//!
//! Exports never fail on long text: a workbook cell is cut to Excel's
//! [`excel::MAX_CELL_CHARS`] with [`excel::TRUNCATION_MARKER`]; CSV cells that a spreadsheet
//! would read as a formula are neutralised ([`csv::neutralise`]).

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::evaluation::Catalog;
use crate::model::report::{AssessmentReport, ControlReport};
use crate::model::template::{ImplementationType, Responsibility, Template};

pub mod csv;
pub mod excel;
pub mod formats;
pub mod json;
pub mod oscal;
#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod testutil;

/// Largest file `postured template import` reads (also the `--profile` file): 32 MiB. NIST's
/// whole SP 800-53 rev 5 catalog is about a third of it; a larger file is refused before it
/// is parsed.
pub const MAX_IMPORT_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Most cells a worksheet or a CSV file may span: its used range (from its first to its last
/// non-empty row, times its first to its last non-empty column), 1,000,000. A Compliance
/// Manager template has a few thousand; the bound keeps the table the importer builds (and its
/// count of non-empty cells) small whatever the file's cell positions say.
pub const MAX_TABLE_CELLS: usize = 1_000_000;

/// One problem found while importing, with where it was found.
///
/// `location` is `Sheet!Row:Column` for workbooks (1-based rows as Excel shows them, the
/// header being row 1; column by header name), `file!Row:column` for CSV and a JSON path
/// (`catalog.groups[0].controls[3]`) or `line:column` for OSCAL. Displayed as
/// `location: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// Where the problem is.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl ImportError {
    /// A problem at `location`.
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        ImportError {
            location: location.into(),
            message: message.into(),
        }
    }

    /// A problem in a table cell: `sheet!row:column`.
    pub fn cell(sheet: &str, row: usize, column: &str, message: impl Into<String>) -> Self {
        ImportError::new(format!("{sheet}!{row}:{column}"), message)
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for ImportError {}

/// Why an export failed (IO is the caller's: exporters return bytes or strings).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The Excel writer failed.
    #[error("cannot write the workbook: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// The CSV writer failed.
    #[error("cannot write CSV: {0}")]
    Csv(#[from] ::csv::Error),
    /// JSON serialisation failed.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A table read from a worksheet or a CSV file: a header row and data rows, every cell as
/// trimmed text, with the 1-based row numbers a spreadsheet shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    /// Sheet (or file) name used in error locations.
    pub sheet: String,
    /// Row number of the header.
    pub header_row: usize,
    /// Header names as written.
    pub headers: Vec<String>,
    /// (row number, cells); rows whose cells are all empty are dropped.
    pub rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    /// Index of the column named `name` (case-insensitive, surrounding spaces ignored).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    }

    /// Check that every `required` column exists: one error per missing column, located at
    /// the header row.
    pub fn require_columns(&self, required: &[&str], errors: &mut Vec<ImportError>) {
        for name in required {
            if self.column(name).is_none() {
                errors.push(ImportError::cell(
                    &self.sheet,
                    self.header_row,
                    name,
                    "missing required column",
                ));
            }
        }
    }

    /// The trimmed text of column `name` in `cells` ("" when the column or cell is absent).
    pub fn get<'a>(&self, cells: &'a [String], name: &str) -> &'a str {
        self.column(name)
            .and_then(|i| cells.get(i))
            .map(|s| s.trim())
            .unwrap_or("")
    }

    /// Like [`Table::get`], but an empty value is an error (`required value is empty`); `None`
    /// without an error when the column itself is missing (reported once by
    /// [`Table::require_columns`]).
    pub fn required<'a>(
        &self,
        row: usize,
        cells: &'a [String],
        name: &str,
        errors: &mut Vec<ImportError>,
    ) -> Option<&'a str> {
        self.column(name)?;
        let v = self.get(cells, name);
        if v.is_empty() {
            errors.push(ImportError::cell(
                &self.sheet,
                row,
                name,
                "required value is empty",
            ));
            None
        } else {
            Some(v)
        }
    }
}

/// The id of an action read from a table row: the explicit id when given; else, for a
/// technical action whose title matches a catalog action's id or title, that catalog id; else
/// the slug rule of [`derive_action_id`] (which never maps a non-technical action to the
/// catalog).
pub fn resolve_action_id(
    explicit: &str,
    title: &str,
    implementation_type: Option<ImplementationType>,
    catalog: &Catalog,
) -> String {
    let explicit = explicit.trim();
    if !explicit.is_empty() {
        return explicit.to_owned();
    }
    if implementation_type == Some(ImplementationType::Technical)
        && let Some(id) = catalog_match(title, catalog)
    {
        return id;
    }
    derive_action_id(title, &Catalog::default())
}

/// Parse `actionScore`: an integer (a whole-number float from a spreadsheet is accepted)
/// in 1..=99.
pub fn parse_points(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let n = t
        .parse::<i64>()
        .ok()
        .or_else(|| {
            t.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.is_finite() && f.abs() < 1e9)
                .map(|f| f as i64)
        })
        .ok_or_else(|| format!("`{t}` is not an integer in 1..=99"))?;
    if (1..=99).contains(&n) {
        Ok(n as u32)
    } else {
        Err(format!("`{t}` is not an integer in 1..=99"))
    }
}

/// Parse `responsibility` (`Customer` / `Provider`, also `Microsoft`; empty = customer).
pub fn parse_responsibility(text: &str) -> Option<Responsibility> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "customer" => Some(Responsibility::Customer),
        "provider" | "microsoft" | "microsoft managed" => Some(Responsibility::Provider),
        _ => None,
    }
}

/// Compliance Manager's spelling of an implementation type (`Technical` ...).
pub fn implementation_type_label(t: ImplementationType) -> &'static str {
    match t {
        ImplementationType::Technical => "Technical",
        ImplementationType::Operational => "Operational",
        ImplementationType::Documentation => "Documentation",
    }
}

/// Compliance Manager's spelling of a responsibility (`Customer`, `Provider`).
pub fn responsibility_label(r: Responsibility) -> &'static str {
    match r {
        Responsibility::Customer => "Customer",
        Responsibility::Provider => "Provider",
    }
}

/// A template id from a title: lower-cased, runs of other characters than ASCII letters and
/// digits become `-` (`"ACME Baseline v2"` → `acme-baseline-v2`; `template` when nothing is
/// left).
pub fn template_id_from_title(title: &str) -> String {
    let mut slug = String::new();
    for c in title.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        "template".to_owned()
    } else {
        slug.to_owned()
    }
}

/// Control ids per action id, in report order.
pub(crate) fn controls_by_action(report: &AssessmentReport) -> HashMap<&str, Vec<String>> {
    let mut out: HashMap<&str, Vec<String>> = HashMap::new();
    for c in &report.controls {
        for a in &c.actions {
            out.entry(a.as_str()).or_default().push(c.id.clone());
        }
    }
    out
}

/// Σ points achieved and possible over a control's actions.
pub(crate) fn control_points(report: &AssessmentReport, control: &ControlReport) -> (f64, f64) {
    report
        .actions
        .iter()
        .filter(|a| control.actions.contains(&a.id))
        .fold((0.0, 0.0), |(x, y), a| {
            (x + a.points_achieved, y + a.points_possible)
        })
}

/// The snake_case name of a unit enum, as serde writes it (`in_progress`).
pub(crate) fn snake<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Render a list of import errors one per line (what the CLI prints).
pub fn render_errors(errors: &[ImportError]) -> String {
    errors.iter().map(|e| format!("{e}\n")).collect()
}

/// The stable id derived from an action title when a source gives none.
///
/// Rule: if the title (trimmed, case-insensitively) equals the `title` or `id` of an action of
/// `catalog`, that catalog id (so the action is tested automatically); otherwise the title
/// lower-cased, every run of characters other than ASCII letters and digits replaced by one
/// `_`, leading and trailing `_` removed, prefixed with `custom.` — e.g.
/// `"Enable MFA for admins!"` → `custom.enable_mfa_for_admins`. A title with no ASCII letter
/// or digit becomes `custom.action`. Uniqueness inside a template is checked by the importer.
pub fn derive_action_id(title: &str, catalog: &Catalog) -> String {
    if let Some(id) = catalog_match(title, catalog) {
        return id;
    }
    let mut slug = String::with_capacity(title.len());
    for c in title.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let slug = slug.trim_matches('_');
    if slug.is_empty() {
        "custom.action".to_owned()
    } else {
        format!("custom.{slug}")
    }
}

/// The catalog action whose id or title equals `text` (trimmed, case-insensitive).
pub fn catalog_match(text: &str, catalog: &Catalog) -> Option<String> {
    let t = text.trim();
    catalog
        .actions
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(t) || a.title.trim().eq_ignore_ascii_case(t))
        .map(|a| a.id.clone())
}

/// Split a `;;`-separated list (Compliance Manager `controlActionTitle`), trimming each item
/// and dropping empty ones.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(";;")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The template's action ids that no control references (for warnings; not an error).
pub fn unreferenced_actions(template: &Template) -> Vec<String> {
    let used: HashSet<&str> = template
        .controls
        .iter()
        .flat_map(|c| c.actions.iter().map(String::as_str))
        .collect();
    template
        .actions
        .iter()
        .filter(|a| !used.contains(a.id.as_str()))
        .map(|a| a.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_follow_the_documented_rule() {
        let catalog = Catalog::builtin();
        assert_eq!(
            derive_action_id("Enable MFA for admins!", &catalog),
            "custom.enable_mfa_for_admins"
        );
        assert_eq!(derive_action_id("  --  ", &catalog), "custom.action");
        assert_eq!(
            derive_action_id(
                "register every user for multifactor authentication ",
                &catalog
            ),
            "msgraph.mfa.all_users"
        );
        assert_eq!(
            derive_action_id("MSGRAPH.MFA.ADMINS", &catalog),
            "msgraph.mfa.admins"
        );
    }

    #[test]
    fn only_technical_actions_map_to_the_catalog() {
        let catalog = Catalog::builtin();
        let title = "Register every user for multifactor authentication";
        let technical = Some(ImplementationType::Technical);
        let documentation = Some(ImplementationType::Documentation);
        assert_eq!(
            resolve_action_id("", title, technical, &catalog),
            "msgraph.mfa.all_users"
        );
        assert_eq!(
            resolve_action_id("", title, documentation, &catalog),
            "custom.register_every_user_for_multifactor_authentication"
        );
        assert_eq!(
            resolve_action_id(" my.id ", title, technical, &catalog),
            "my.id"
        );
        assert_eq!(
            resolve_action_id("", "msgraph.mfa.admins", technical, &catalog),
            "msgraph.mfa.admins"
        );
    }

    #[test]
    fn points_templates_ids_and_responsibilities_parse() {
        assert_eq!(parse_points("27"), Ok(27));
        assert_eq!(parse_points(" 27.0 "), Ok(27));
        for bad in ["0", "100", "2.5", "x", "", "-3"] {
            assert!(parse_points(bad).is_err(), "{bad}");
        }
        assert_eq!(
            template_id_from_title("ACME Baseline v2!"),
            "acme-baseline-v2"
        );
        assert_eq!(template_id_from_title("  ??  "), "template");
        assert_eq!(parse_responsibility(""), Some(Responsibility::Customer));
        assert_eq!(
            parse_responsibility("Microsoft"),
            Some(Responsibility::Provider)
        );
        assert_eq!(parse_responsibility("them"), None);
    }

    #[test]
    fn lists_split_on_double_semicolons_and_trim() {
        assert_eq!(
            split_list(" a ;; b;c ;;;; ;;d "),
            vec!["a".to_owned(), "b;c".to_owned(), "d".to_owned()]
        );
        assert!(split_list("  ").is_empty());
    }

    #[test]
    fn errors_display_location_then_message() {
        let e = ImportError::cell("Actions", 5, "actionScore", "must be 1..=99");
        assert_eq!(e.to_string(), "Actions!5:actionScore: must be 1..=99");
    }
}
