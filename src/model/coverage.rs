//! Automation coverage of a template: how many of its controls have an improvement action a
//! connector tests automatically, by connector kind, and the share of its possible points
//! automation can decide (`postured template coverage`, `docs/frameworks.md`).
//!
//! Pure. An action of a template is **automated** when the catalog defines it (or a generated
//! family produces it: a pattern such as `securescore.*`) and its connector kind is in scope:
//! every kind, or, for a configuration, the kinds some tenant has a connector of. Points are
//! the template's points of each action it references, counted once (a family's generated
//! actions, whose points follow the source, count for the controls only).

use std::collections::BTreeMap;

use serde::Serialize;

use super::template::{Template, is_pattern};
use crate::evaluation::{ActionDef, Catalog};

/// One template's coverage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// Template id.
    pub template: String,
    /// Template title.
    pub title: String,
    /// Controls of the template.
    pub controls: usize,
    /// Controls with no action at all.
    pub controls_without_actions: usize,
    /// Controls with at least one automated action.
    pub automated_controls: usize,
    /// Per connector kind (a catalog file a connector names shows as `catalog file`): the
    /// controls with an automated action of that kind.
    pub automated_controls_by_kind: BTreeMap<String, usize>,
    /// Points of the template's automated actions.
    pub automated_points: u64,
    /// Points of all the template's actions.
    pub possible_points: u64,
}

impl Coverage {
    /// `automated_points / possible_points`, 0 when the template has no points.
    pub fn automated_points_ratio(&self) -> f64 {
        if self.possible_points == 0 {
            0.0
        } else {
            self.automated_points as f64 / self.possible_points as f64
        }
    }
}

/// The connector kind of a catalog action (`msgraph`; `catalog file` for a connector's own
/// catalog file; `catalog` for `[catalog] path`).
fn kind_label(def: &ActionDef) -> String {
    match def.kind.as_deref() {
        Some(k) if k.starts_with("catalog:") => "catalog file".to_owned(),
        Some(k) => k.to_owned(),
        None => "catalog".to_owned(),
    }
}

/// The kind of an automated action of the template, `None` when not automated (not in the
/// catalog, or of a kind out of scope).
fn automated_kind(
    id: &str,
    catalog: &Catalog,
    in_scope: &dyn Fn(Option<&str>) -> bool,
) -> Option<String> {
    if let Some(def) = catalog.get(id) {
        return in_scope(def.kind.as_deref()).then(|| kind_label(def));
    }
    if is_pattern(id) {
        // A generated family: its signals are in its connector's namespace.
        let prefix = id.trim_end_matches('*');
        let family = catalog.families.iter().find(|f| f.id_prefix == prefix)?;
        let kind = family.signal_prefix.split('.').next()?;
        return in_scope(Some(kind)).then(|| kind.to_owned());
    }
    None
}

/// The coverage of `template` by the actions of `catalog` whose kind `in_scope` accepts
/// (`None`: an action of `[catalog] path`, which applies to every tenant).
pub fn coverage(
    template: &Template,
    catalog: &Catalog,
    in_scope: &dyn Fn(Option<&str>) -> bool,
) -> Coverage {
    // Every id a control names: the template's actions and the generated families' patterns
    // (whose generated actions have no fixed points, so they count for controls only).
    let kinds: BTreeMap<&str, Option<String>> = template
        .actions
        .iter()
        .map(|a| a.id.as_str())
        .chain(
            template
                .controls
                .iter()
                .flat_map(|c| c.actions.iter().map(String::as_str)),
        )
        .map(|id| (id, automated_kind(id, catalog, in_scope)))
        .collect();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut automated_controls = 0;
    for control in &template.controls {
        let mut control_kinds: Vec<&String> = control
            .actions
            .iter()
            .filter_map(|a| kinds.get(a.as_str()).and_then(Option::as_ref))
            .collect();
        control_kinds.sort();
        control_kinds.dedup();
        if !control_kinds.is_empty() {
            automated_controls += 1;
        }
        for k in control_kinds {
            *by_kind.entry(k.clone()).or_default() += 1;
        }
    }
    let points = |automated: bool| -> u64 {
        template
            .actions
            .iter()
            .filter(|a| !automated || kinds.get(a.id.as_str()).is_some_and(Option::is_some))
            .map(|a| u64::from(a.points))
            .sum()
    };
    Coverage {
        template: template.id.clone(),
        title: template.title.clone(),
        controls: template.controls.len(),
        controls_without_actions: template
            .controls
            .iter()
            .filter(|c| c.actions.is_empty())
            .count(),
        automated_controls,
        automated_controls_by_kind: by_kind,
        automated_points: points(true),
        possible_points: points(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interchange::oscal::framework_controls;
    use crate::model::registry::TemplateRegistry;

    fn builtin() -> (Catalog, TemplateRegistry) {
        let catalog = Catalog::builtin();
        let registry = TemplateRegistry::builtin(&catalog.actions, framework_controls)
            .unwrap_or_else(|e| panic!("{e:?}"));
        (catalog, registry)
    }

    /// Every kind in scope: the CISA SCuBA template's automated controls are exactly those
    /// with a msgraph action, and the only points automation cannot decide are those of the
    /// four manual verification actions; with no kind in scope nothing is automated.
    #[test]
    fn coverage_counts_controls_by_kind_and_points() {
        let (catalog, registry) = builtin();
        let t = registry.get("cisa-scuba-entra-id").expect("template");
        let all = coverage(t, &catalog, &|_| true);
        assert_eq!(all.controls, 30);
        assert_eq!(all.automated_controls, 26);
        assert_eq!(all.controls_without_actions, 0);
        assert_eq!(all.automated_controls_by_kind.get("msgraph"), Some(&26));
        // scuba.manual.*: two detective and two preventative mandatory actions.
        assert_eq!(all.possible_points - all.automated_points, 3 + 3 + 27 + 27);
        let none = coverage(t, &catalog, &|_| false);
        assert_eq!(none.automated_controls, 0);
        assert_eq!(none.automated_points, 0);

        // HIPAA: the AWS actions count only when the aws_iam kind is in scope.
        let h = registry.get("hipaa-security-rule").expect("hipaa");
        let both = coverage(h, &catalog, &|_| true);
        let msgraph_only = coverage(h, &catalog, &|k| k == Some("msgraph"));
        assert!(both.automated_controls_by_kind.contains_key("aws_iam"));
        assert!(
            !msgraph_only
                .automated_controls_by_kind
                .contains_key("aws_iam")
        );
        assert!(both.automated_points > msgraph_only.automated_points);
        assert!(both.automated_points < both.possible_points);
    }

    /// A generated family's pattern (`securescore.*`) counts for its connector's kind.
    #[test]
    fn family_patterns_count_for_their_kind() {
        let (catalog, registry) = builtin();
        let t = registry.get("data-protection-baseline").expect("baseline");
        assert!(
            t.controls
                .iter()
                .any(|c| c.actions.contains(&"securescore.*".to_owned()))
        );
        let c = coverage(t, &catalog, &|k| k == Some("msgraph"));
        assert_eq!(c.automated_controls, c.controls);
    }
}
