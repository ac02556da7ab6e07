//! Actions for an imported framework: a template imported from an OSCAL catalog or profile
//! of a recognised framework ([`super::framework`]) takes its action references from the
//! built-in template of that framework, the one source of truth (nothing is tabled twice).
//!
//! Per imported control ([`map_actions`]):
//! 1. the built-in template has a control with the same id (`AC-2(1)` ~ `ac-2.1`): the
//!    control names the same actions, technical and non-technical, wildcards included;
//! 2. else, for SP 800-53, when it is an enhancement whose base control is in the built-in
//!    template (`AC-2(11)` → `AC-2`, as in NIST's HIGH baseline): it names the base control's
//!    actions that the shared action libraries declare (`config/templates/actions/`, organised
//!    by SP 800-53 family; their guidance covers a control and its enhancements), not its
//!    technical ones (a connector's evidence for a base control is no claim about an
//!    enhancement). CSF 2.0 has no such fallback: the built-in template holds every CSF 2.0
//!    category and subcategory, and what it leaves out of NIST's catalog are the CSF 1.1
//!    items 2.0 withdrew (the catalog does not mark them) and the six functions;
//! 3. else it names none and is counted as "no action" in the [`MappingSummary`].
//!
//! The template's `actions` become the built-in template's declarations of every action
//! named (so titles, points and guidance are those of the built-in actions, and a shared
//! action stays one instance per group).
//!
//! Must not: read files or parse OSCAL (the caller passes the imported template and the
//! built-in one).

use std::collections::{HashMap, HashSet};

use super::framework::Framework;
use crate::model::registry::normalise_control_id;
use crate::model::template::Template;

/// What [`map_actions`] did, for the import summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingSummary {
    /// The recognised framework.
    pub framework: Framework,
    /// The built-in template the mappings come from.
    pub builtin_template: String,
    /// Controls mapped like the same control of the built-in template.
    pub same_control: usize,
    /// Controls given their base control's shared (library) actions.
    pub base_control: usize,
    /// Ids of the controls left without any action, in template order.
    pub no_action: Vec<String>,
}

/// Name actions on every control of `imported` from `builtin` (the rule in the module
/// header); `library` holds the ids of the shared library actions. Controls that already
/// name actions keep them and get the mapped ones added.
pub fn map_actions(
    imported: &mut Template,
    framework: Framework,
    builtin: &Template,
    library: &HashSet<String>,
) -> MappingSummary {
    let by_id: HashMap<String, &Vec<String>> = builtin
        .controls
        .iter()
        .map(|c| (normalise_control_id(&c.id), &c.actions))
        .collect();
    let mut summary = MappingSummary {
        framework,
        builtin_template: builtin.id.clone(),
        same_control: 0,
        base_control: 0,
        no_action: Vec::new(),
    };
    for control in &mut imported.controls {
        let own = normalise_control_id(&control.id);
        let mapped: Vec<String> = if let Some(actions) = by_id.get(&own) {
            summary.same_control += 1;
            actions.to_vec()
        } else if let Some(actions) = base_id(framework, &own).and_then(|b| by_id.get(&b)) {
            let shared: Vec<String> = actions
                .iter()
                .filter(|a| library.contains(*a))
                .cloned()
                .collect();
            if !shared.is_empty() {
                summary.base_control += 1;
            }
            shared
        } else {
            Vec::new()
        };
        for a in mapped {
            if !control.actions.contains(&a) {
                control.actions.push(a);
            }
        }
        if control.actions.is_empty() {
            summary.no_action.push(control.id.clone());
        }
    }
    let named: HashSet<&str> = imported
        .controls
        .iter()
        .flat_map(|c| c.actions.iter().map(String::as_str))
        .collect();
    for a in &builtin.actions {
        if named.contains(a.id.as_str()) && !imported.actions.iter().any(|x| x.id == a.id) {
            imported.actions.push(a.clone());
        }
    }
    summary
}

/// The base control of a normalised SP 800-53 enhancement id: `ac-2.11` → `ac-2`; `None`
/// for a base control and for other frameworks.
fn base_id(framework: Framework, id: &str) -> Option<String> {
    if framework != Framework::Sp80053R5 {
        return None;
    }
    id.rsplit_once('.')
        .filter(|(base, enh)| base.contains('-') && enh.bytes().all(|b| b.is_ascii_digit()))
        .map(|(base, _)| base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_ids() {
        let sp = Framework::Sp80053R5;
        assert_eq!(base_id(sp, "ac-2.11").as_deref(), Some("ac-2"));
        assert_eq!(base_id(sp, "ac-2"), None);
        assert_eq!(base_id(Framework::Csf20, "gv.oc-01"), None);
    }
}
