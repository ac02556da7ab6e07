//! Import and export: templates from Compliance Manager Excel workbooks, a flat CSV layout and
//! OSCAL catalogs/profiles; assessment reports to Excel, CSV, JSON and OSCAL
//! `assessment-results`.
//!
//! Every importer is pure (text or bytes in, [`Template`] out) and collects **every** problem
//! it finds as an [`ImportError`] located in the source (`Actions!5:actionScore: ...` for a
//! workbook, `actions.csv!3:points: ...` for CSV, a JSON path for OSCAL). An import that found
//! any error returns no template at all, so nothing half-imported is ever persisted.
//!
//! Must not: touch the store, the metrics or the clock (exporters take the report's
//! `generated_at`); file IO lives only in the CLI handlers ([`cli`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use crate::evaluation::Catalog;
use crate::model::template::{Template, TemplateAction};

pub mod oscal;

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

/// Checks shared by every template importer that cannot be tied to one cell: duplicate action
/// ids. Returns the located errors (`location` names the source of the second occurrence).
#[allow(dead_code)] // used by the Excel and CSV importers
pub(crate) fn duplicate_action_ids(actions: &[(String, TemplateAction)]) -> Vec<ImportError> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut errors = Vec::new();
    for (location, a) in actions {
        if let Some(first) = seen.get(a.id.as_str()) {
            errors.push(ImportError::new(
                location.clone(),
                format!("action id `{}` is already used at {first}", a.id),
            ));
        } else {
            seen.insert(&a.id, location);
        }
    }
    errors
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
