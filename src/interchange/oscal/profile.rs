//! OSCAL profile selection (JSON, `{"profile": {...}}`): which control ids a profile takes
//! from its catalog, e.g. NIST's SP 800-53 rev 5 LOW baseline.
//!
//! Must not: resolve the profile against a catalog (the caller passes the ids to
//! [`super::template_from_catalog`]), fetch the imported catalog, or read files.

use serde_json::Value;

use super::{array, json_root, str_of};
use crate::interchange::ImportError;

/// What an OSCAL profile selects, with its title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSelection {
    /// `metadata.title` ("" when absent), e.g. `NIST Special Publication 800-53 Revision
    /// 5.1.1 LOW IMPACT BASELINE`.
    pub title: String,
    /// The selected control ids ([`profile_control_ids`]).
    pub ids: Vec<String>,
}

/// The control ids an OSCAL profile selects (as [`profile_control_ids`]) and its metadata
/// title.
///
/// # Errors
///
/// As [`profile_control_ids`].
pub fn profile_selection(text: &str) -> Result<ProfileSelection, Vec<ImportError>> {
    let root = json_root(text)?;
    let title = root
        .get("profile")
        .and_then(|p| p.get("metadata"))
        .map(|m| str_of(m, "title"))
        .unwrap_or_default();
    let ids = selected_ids(&root)?;
    Ok(ProfileSelection { title, ids })
}

/// The control ids an OSCAL profile (JSON, `{"profile": {...}}`) selects: every
/// `imports[].include-controls[].with-ids[]`, in order, without duplicates, minus every
/// `imports[].exclude-controls[].with-ids[]`. Ids are returned as written (`ac-2`, `ia-2.1`);
/// pass them as `select` to [`super::template_from_catalog`] with the imported catalog.
///
/// # Errors
///
/// Malformed JSON (`line:column`), no `profile` object, an import with `include-all` (select
/// nothing to take the whole catalog instead) or with `matching` patterns (not supported), or
/// a profile that selects no id.
pub fn profile_control_ids(text: &str) -> Result<Vec<String>, Vec<ImportError>> {
    profile_selection(text).map(|p| p.ids)
}

fn selected_ids(root: &Value) -> Result<Vec<String>, Vec<ImportError>> {
    let Some(profile) = root.get("profile").filter(|p| p.is_object()) else {
        return Err(vec![ImportError::new(
            "$",
            "not an OSCAL profile: no top-level `profile` object",
        )]);
    };
    let mut errors = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    for (i, import) in array(profile, "imports").iter().enumerate() {
        let ipath = format!("profile.imports[{i}]");
        if import.get("include-all").is_some() {
            errors.push(ImportError::new(
                format!("{ipath}.include-all"),
                "include-all is not supported: import the catalog without a profile",
            ));
        }
        for (key, into) in [
            ("include-controls", &mut ids),
            ("exclude-controls", &mut excluded),
        ] {
            for (j, sel) in array(import, key).iter().enumerate() {
                if sel.get("matching").is_some() {
                    errors.push(ImportError::new(
                        format!("{ipath}.{key}[{j}].matching"),
                        "`matching` patterns are not supported; list the ids in `with-ids`",
                    ));
                }
                for id in array(sel, "with-ids").iter().filter_map(Value::as_str) {
                    if !into.iter().any(|x| x == id) {
                        into.push(id.to_owned());
                    }
                }
            }
        }
    }
    ids.retain(|id| !excluded.contains(id));
    if errors.is_empty() && ids.is_empty() {
        errors.push(ImportError::new(
            "profile.imports",
            "the profile selects no control (no include-controls with-ids)",
        ));
    }
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(errors)
    }
}
