//! What a person may record for one action instance, checked before anything is saved: the
//! API's `PUT /api/v1/actions/{action}/status` and `postured action set` accept exactly the
//! same (the command calls [`check_action_set`] too).
//!
//! Limits (fixed; every exported format holds them, e.g. an Excel cell takes 32,767
//! characters):
//! - action id (and `parent`): [`MAX_ACTION_ID_LEN`] characters of ASCII letters, digits,
//!   `.`, `_`, `-`, `:`, and known: an action of a template (built in, `[templates] dirs`,
//!   imported) or of the catalog, or a generated action (a catalog family's `id_prefix`, e.g.
//!   `securescore.`) that the tenant's polls have evaluated;
//! - `notes` (implementation notes) and `test_notes`: [`MAX_NOTES_CHARS`] characters each, no
//!   control characters but tab and line breaks;
//! - `implementation_date`, `test_date`: RFC 3339 instants (parsed by the caller);
//! - `assigned_to`: [`MAX_ASSIGNED_TO_CHARS`] characters, no control characters;
//! - `evidence`: each link [`MAX_EVIDENCE_LINK_CHARS`] characters, not blank, no control
//!   characters; at most [`MAX_EVIDENCE_LINKS`] links per instance, those already saved
//!   included (so even the CSV export, which joins them into one cell, stays under Excel's
//!   limit).
//!
//! Must not: save anything (the model runtime does).

use crate::app::model::{ActionSet, ModelRuntime, scope_for};
use crate::config::Config;
use crate::evaluation::Evaluator;
use crate::model::{InstanceScope, ManualUpdate};
use crate::store::{Store, StoreError};

/// Longest action id, in characters.
pub const MAX_ACTION_ID_LEN: usize = 128;
/// Longest `notes`, in characters.
pub const MAX_NOTES_CHARS: usize = 10_000;
/// Longest `assigned_to`, in characters.
pub const MAX_ASSIGNED_TO_CHARS: usize = 256;
/// Longest evidence link, in characters.
pub const MAX_EVIDENCE_LINK_CHARS: usize = 2_000;
/// Most evidence links of one action instance (16 links of 2,000 characters joined by `;;`
/// stay under Excel's 32,767-character cell).
pub const MAX_EVIDENCE_LINKS: usize = 16;

/// Why an action set is refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionSetError {
    /// The action id (or `parent`) is not made of the allowed characters, or is too long.
    #[error(
        "{field} is not an action id (1-{MAX_ACTION_ID_LEN} characters of letters, digits, '.', '_', '-', ':')"
    )]
    BadActionId {
        /// `action` or `parent`.
        field: &'static str,
    },
    /// No template, catalog or evaluated family knows the action.
    #[error("no template or catalog knows the action {id:?}")]
    UnknownAction {
        /// `action` or `parent`.
        field: &'static str,
        /// The (well-formed) id.
        id: String,
    },
    /// A field breaks a limit.
    #[error("{field}: {message}")]
    Invalid {
        /// The field (`notes`, `assigned_to`, `evidence`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Unknown tenant or group, or the wrong one of the two for the action.
    #[error("{0}")]
    Scope(String),
    /// The store could not be read.
    #[error("store unavailable: {}", .0.kind())]
    Store(#[from] StoreError),
}

/// Whether `id` is a well-formed action id (see the module docs).
pub fn valid_action_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ACTION_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
}

/// The limits of the free-text fields of `update` (no store, no lookup).
///
/// # Errors
///
/// The first field that breaks a limit.
pub fn check_update(update: &ManualUpdate) -> Result<(), ActionSetError> {
    let invalid = |field, message: String| Err(ActionSetError::Invalid { field, message });
    for (field, notes) in [("notes", &update.notes), ("test_notes", &update.test_notes)] {
        let Some(n) = notes else { continue };
        if n.chars().count() > MAX_NOTES_CHARS {
            return invalid(field, format!("longer than {MAX_NOTES_CHARS} characters"));
        }
        if n.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return invalid(
                field,
                "contains control characters (only tab and line breaks are allowed)".into(),
            );
        }
    }
    if let Some(a) = &update.assigned_to {
        if a.chars().count() > MAX_ASSIGNED_TO_CHARS {
            return invalid(
                "assigned_to",
                format!("longer than {MAX_ASSIGNED_TO_CHARS} characters"),
            );
        }
        if a.chars().any(char::is_control) {
            return invalid("assigned_to", "contains control characters".into());
        }
    }
    if update.evidence.len() > MAX_EVIDENCE_LINKS {
        return invalid("evidence", format!("more than {MAX_EVIDENCE_LINKS} links"));
    }
    for (i, e) in update.evidence.iter().enumerate() {
        if e.trim().is_empty() {
            return invalid("evidence", format!("link {i} is blank"));
        }
        if e.chars().count() > MAX_EVIDENCE_LINK_CHARS {
            return invalid(
                "evidence",
                format!("link {i} is longer than {MAX_EVIDENCE_LINK_CHARS} characters"),
            );
        }
        if e.chars().any(char::is_control) {
            return invalid("evidence", format!("link {i} contains control characters"));
        }
    }
    if let Some(p) = &update.parent
        && !valid_action_id(p)
    {
        return Err(ActionSetError::BadActionId { field: "parent" });
    }
    Ok(())
}

/// Whether the daemon knows action `id` (well-formed): in a template of `runtime`, in the
/// catalog of `evaluator`, or, for an id under a catalog family's `id_prefix`, among the
/// actions stored for `tenant` by its polls (generated actions exist only once evaluated).
///
/// # Errors
///
/// The store could not be read (only for generated ids).
pub async fn action_known(
    runtime: &ModelRuntime,
    evaluator: &Evaluator,
    store: &dyn Store,
    tenant: Option<&str>,
    id: &str,
) -> Result<bool, StoreError> {
    if evaluator.action(id).is_some()
        || runtime
            .registry()
            .iter()
            .any(|t| t.actions.iter().any(|a| a.id == id))
    {
        return Ok(true);
    }
    let generated = evaluator
        .families()
        .iter()
        .any(|f| !f.id_prefix.is_empty() && id.starts_with(f.id_prefix.as_str()));
    match tenant {
        Some(t) if generated => Ok(store.load_tenant_state(t).await?.actions.contains_key(id)),
        _ => Ok(false),
    }
}

/// Check an action set completely before it is saved: id syntax, field limits, that the
/// action (and `parent`) is known, its scope, and the evidence count with the links already
/// saved. Returns the instance scope to save under.
///
/// # Errors
///
/// What is refused (see [`ActionSetError`]).
pub async fn check_action_set(
    runtime: &ModelRuntime,
    evaluator: &Evaluator,
    store: &dyn Store,
    config: &Config,
    set: &ActionSet,
) -> Result<InstanceScope, ActionSetError> {
    if !valid_action_id(&set.action) {
        return Err(ActionSetError::BadActionId { field: "action" });
    }
    check_update(&set.update)?;
    let tenant = set.tenant.as_deref();
    if !action_known(runtime, evaluator, store, tenant, &set.action).await? {
        return Err(ActionSetError::UnknownAction {
            field: "action",
            id: set.action.clone(),
        });
    }
    if let Some(p) = &set.update.parent
        && !action_known(runtime, evaluator, store, tenant, p).await?
    {
        return Err(ActionSetError::UnknownAction {
            field: "parent",
            id: p.clone(),
        });
    }
    let scope = scope_for(runtime, config, set).map_err(ActionSetError::Scope)?;
    if !set.update.evidence.is_empty() {
        let saved = store
            .manual_status(&scope, &set.action)
            .await?
            .map(|m| m.evidence)
            .unwrap_or_default();
        let added = set
            .update
            .evidence
            .iter()
            .enumerate()
            .filter(|(i, e)| !saved.contains(e) && !set.update.evidence[..*i].contains(e))
            .count();
        if saved.len() + added > MAX_EVIDENCE_LINKS {
            return Err(ActionSetError::Invalid {
                field: "evidence",
                message: format!(
                    "the instance would have {} links; at most {MAX_EVIDENCE_LINKS} are kept",
                    saved.len() + added
                ),
            });
        }
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_ids_are_short_and_plain() {
        for ok in ["msgraph.mfa.all_users", "iso.isms.policy", "Custom-1:a_b"] {
            assert!(valid_action_id(ok), "{ok}");
        }
        let long = "a".repeat(MAX_ACTION_ID_LEN + 1);
        for bad in [
            "",
            "../../etc/passwd",
            "<script>",
            "a b",
            "a/b",
            "é",
            long.as_str(),
        ] {
            assert!(!valid_action_id(bad), "{bad}");
        }
    }

    #[test]
    fn free_text_limits() {
        let ok = ManualUpdate {
            notes: Some("line 1\n\tline 2".into()),
            assigned_to: Some("Ana <ana@example.com>".into()),
            evidence: vec!["https://intranet.example/a".into()],
            ..ManualUpdate::default()
        };
        assert!(check_update(&ok).is_ok());
        let field = |u: ManualUpdate| match check_update(&u) {
            Err(ActionSetError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let notes = |n: String| ManualUpdate {
            notes: Some(n),
            ..ManualUpdate::default()
        };
        assert!(check_update(&notes("é".repeat(MAX_NOTES_CHARS))).is_ok());
        assert_eq!(field(notes("é".repeat(MAX_NOTES_CHARS + 1))), "notes");
        assert_eq!(field(notes("a\u{0}b".into())), "notes");
        let who = ManualUpdate {
            assigned_to: Some("x".repeat(MAX_ASSIGNED_TO_CHARS + 1)),
            ..ManualUpdate::default()
        };
        assert_eq!(field(who), "assigned_to");
        let links = |links: Vec<String>| ManualUpdate {
            evidence: links,
            ..ManualUpdate::default()
        };
        assert_eq!(
            field(links(vec!["x".repeat(MAX_EVIDENCE_LINK_CHARS + 1)])),
            "evidence"
        );
        assert_eq!(field(links(vec![" ".into()])), "evidence");
        assert_eq!(
            field(links(
                (0..=MAX_EVIDENCE_LINKS).map(|i| format!("l{i}")).collect()
            )),
            "evidence"
        );
        let parent = ManualUpdate {
            parent: Some("../x".into()),
            ..ManualUpdate::default()
        };
        assert!(matches!(
            check_update(&parent),
            Err(ActionSetError::BadActionId { field: "parent" })
        ));
    }
}
