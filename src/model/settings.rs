//! Configuration of the model: `[model]`, `[templates]`, `[[groups]]` and `[[assessments]]`
//! (decoded by `crate::config`, validated here), and the active assessment list they give.
//!
//! Pure: no IO. Template ids are checked against the ids the caller knows (built-in, plus those
//! of `[templates] dirs` when `crate::config` could read them).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use serde::Deserialize;

use super::assessment::{Assessment, DEFAULT_GROUP, DEFAULT_TEMPLATE, Group};

/// `[model]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    /// Give every tenant a Data Protection Baseline assessment in group `default` (unless the
    /// configuration already has that exact assessment). Default `true`.
    pub default_assessment: bool,
    /// How often `postured run` re-reads the manual statuses from the store, to pick up those
    /// written by another process (`postured action set`); the API's own writes show at once.
    /// Default `1m`; `0s` never re-reads.
    #[serde(with = "humantime_serde")]
    pub manual_refresh: std::time::Duration,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            default_assessment: true,
            manual_refresh: std::time::Duration::from_secs(60),
        }
    }
}

/// `[templates]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    /// Directories of extra template files (`*.toml`, the format of `config/templates/`);
    /// relative paths are relative to the configuration file.
    pub dirs: Vec<PathBuf>,
}

/// `[[groups]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Stable id (a-z, 0-9, `_`, `.`, `-`).
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
}

/// `[[assessments]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssessmentConfig {
    /// Stable id (a-z, 0-9, `_`, `.`, `-`); the `assessment` metric label.
    pub id: String,
    /// Tenant id (a configured tenant).
    pub tenant: String,
    /// Template id (built-in or from `[templates] dirs`).
    pub template: String,
    /// Group id (`default`, or a `[[groups]]` id). Default `default`.
    #[serde(default = "default_group")]
    pub group: String,
}

fn default_group() -> String {
    DEFAULT_GROUP.to_string()
}

/// Whether an id is made of a-z, 0-9, `_`, `.`, `-` and is 1..=64 characters long.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
}

/// Every problem of the model configuration as `(key path, message)`: ids, unknown tenants,
/// groups and templates, duplicate group ids, assessment ids and (group, tenant, template).
/// `templates` is `None` when the set of template ids is not known yet (extra dirs not read):
/// template existence is then not checked.
pub fn validate(
    tenants: &[&str],
    groups: &[GroupConfig],
    assessments: &[AssessmentConfig],
    templates: Option<&BTreeSet<String>>,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut group_ids = BTreeSet::from([DEFAULT_GROUP.to_string()]);
    for (i, g) in groups.iter().enumerate() {
        if !valid_id(&g.id) {
            problems.push((
                format!("groups[{i}].id"),
                format!("{:?} must be 1-64 of a-z, 0-9, '_', '.', '-'", g.id),
            ));
        } else if g.id != DEFAULT_GROUP && !group_ids.insert(g.id.clone()) {
            problems.push((
                format!("groups[{i}].id"),
                format!("duplicate group id {:?}", g.id),
            ));
        }
    }
    // Indexes built once: a lookup per assessment, not a scan of the tenants.
    let tenants: HashSet<&str> = tenants.iter().copied().collect();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut triples: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (i, a) in assessments.iter().enumerate() {
        let at = |field: &str| format!("assessments[{i}].{field}");
        if !valid_id(&a.id) {
            problems.push((
                at("id"),
                format!("{:?} must be 1-64 of a-z, 0-9, '_', '.', '-'", a.id),
            ));
        } else if let Some(first) = ids.insert(&a.id, i) {
            problems.push((
                at("id"),
                format!(
                    "duplicate assessment id {:?} (first at assessments[{first}])",
                    a.id
                ),
            ));
        }
        if !tenants.contains(&a.tenant.as_str()) {
            problems.push((at("tenant"), format!("unknown tenant {:?}", a.tenant)));
        }
        if !group_ids.contains(&a.group) {
            problems.push((
                at("group"),
                format!("unknown group {:?} (define it under [[groups]])", a.group),
            ));
        }
        if let Some(known) = templates
            && !known.contains(&a.template)
        {
            let list: Vec<&str> = known.iter().map(String::as_str).collect();
            problems.push((
                at("template"),
                format!(
                    "unknown template {:?} (known: {})",
                    a.template,
                    list.join(", ")
                ),
            ));
        }
        let key = (a.group.as_str(), a.tenant.as_str(), a.template.as_str());
        if let Some(first) = triples.insert(key, i) {
            problems.push((
                at("template"),
                format!(
                    "group {:?} already assesses tenant {:?} against {:?} (assessments[{first}]); a group holds at most one assessment per (tenant, template)",
                    a.group, a.tenant, a.template
                ),
            ));
        }
    }
    problems
}

/// The active assessments: the configured ones, then (when `default_assessment`) a Data
/// Protection Baseline assessment in group `default` for each tenant that has none there.
pub fn assessments(
    settings: &ModelSettings,
    tenants: &[&str],
    configured: &[AssessmentConfig],
) -> Vec<Assessment> {
    let mut out: Vec<Assessment> = configured
        .iter()
        .map(|a| Assessment {
            id: a.id.clone(),
            tenant: a.tenant.clone(),
            template: a.template.clone(),
            group: a.group.clone(),
        })
        .collect();
    if settings.default_assessment {
        // Indexes of `out` built once and kept up to date as defaults are added: the tenants
        // with a default-template assessment in the default group, and the assessment ids.
        let mut has_default: HashSet<String> = out
            .iter()
            .filter(|a| a.template == DEFAULT_TEMPLATE && a.group == DEFAULT_GROUP)
            .map(|a| a.tenant.clone())
            .collect();
        let mut ids: HashSet<String> = out.iter().map(|a| a.id.clone()).collect();
        for t in tenants {
            let default = Assessment::default_for(t);
            if !has_default.contains(*t) && !ids.contains(&default.id) {
                has_default.insert(default.tenant.clone());
                ids.insert(default.id.clone());
                out.push(default);
            }
        }
    }
    out
}

/// The groups: `default` first, then the configured ones.
pub fn groups(configured: &[GroupConfig]) -> Vec<Group> {
    let mut out = vec![Group {
        id: DEFAULT_GROUP.to_string(),
        name: "Default".to_string(),
    }];
    for g in configured {
        if g.id == DEFAULT_GROUP {
            if let Some(name) = &g.name {
                out[0].name = name.clone();
            }
        } else {
            out.push(Group {
                id: g.id.clone(),
                name: g.name.clone().unwrap_or_else(|| g.id.clone()),
            });
        }
    }
    out
}

/// The template ids of the built-in templates (read from their `id = "..."` line, without
/// resolving them).
pub fn builtin_template_ids() -> BTreeSet<String> {
    super::registry::BUILTIN_TEMPLATES
        .iter()
        .filter_map(|(_, text)| template_id_of(text))
        .collect()
}

/// The `id` of a template file's text, if it parses as TOML with a string `id`.
pub fn template_id_of(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    table.get("id")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(id: &str, tenant: &str, template: &str, group: &str) -> AssessmentConfig {
        AssessmentConfig {
            id: id.into(),
            tenant: tenant.into(),
            template: template.into(),
            group: group.into(),
        }
    }

    #[test]
    fn every_problem_has_its_path() {
        let groups = [
            GroupConfig {
                id: "eu".into(),
                name: None,
            },
            GroupConfig {
                id: "eu".into(),
                name: None,
            },
            GroupConfig {
                id: "Bad Id".into(),
                name: None,
            },
        ];
        let known = builtin_template_ids();
        let list = [
            a("x", "t1", "iso-27001-2022", "eu"),
            a("x", "t1", "iso-27001-2022", "eu"),
            a("y", "nobody", "nope", "nogroup"),
        ];
        let problems = validate(&["t1"], &groups, &list, Some(&known));
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "groups[1].id",
                "groups[2].id",
                "assessments[1].id",
                "assessments[1].template",
                "assessments[2].tenant",
                "assessments[2].group",
                "assessments[2].template",
            ],
            "{problems:#?}"
        );
        assert!(
            problems[3]
                .1
                .contains("at most one assessment per (tenant, template)")
        );
        // Unknown templates are not checked when the template set is not known yet.
        assert!(validate(&["t1"], &[], &[a("y", "t1", "nope", "default")], None).is_empty());
    }

    #[test]
    fn default_assessment_per_tenant_unless_configured_or_disabled() {
        let on = ModelSettings::default();
        let configured = [
            a("c-iso", "c", "iso-27001-2022", "default"),
            a("c-dpb", "c", DEFAULT_TEMPLATE, "default"),
        ];
        let got = assessments(&on, &["c", "f"], &configured);
        let ids: Vec<&str> = got.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["c-iso", "c-dpb", "f-data-protection-baseline"]);
        let off = ModelSettings {
            default_assessment: false,
            ..ModelSettings::default()
        };
        assert_eq!(assessments(&off, &["c", "f"], &configured).len(), 2);
        assert_eq!(
            builtin_template_ids().len(),
            super::super::registry::BUILTIN_TEMPLATES.len()
        );
    }

    /// The indexes `assessments` builds once give what a scan of the list so far gave: a
    /// default-template assessment in another group does not count as the tenant's default; a
    /// configured assessment holding the default's id suppresses the default; a tenant listed
    /// twice gets one default.
    #[test]
    fn default_assessments_are_checked_against_the_list_so_far() {
        let configured = [
            a("g-dpb", "g", DEFAULT_TEMPLATE, "eu"),
            a("h-data-protection-baseline", "other", "gdpr", "default"),
        ];
        let got = assessments(
            &ModelSettings::default(),
            &["g", "h", "k", "k"],
            &configured,
        );
        let ids: Vec<(&str, &str)> = got
            .iter()
            .map(|a| (a.id.as_str(), a.tenant.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                ("g-dpb", "g"),
                ("h-data-protection-baseline", "other"),
                ("g-data-protection-baseline", "g"),
                ("k-data-protection-baseline", "k"),
            ]
        );
    }

    /// Every assessment naming an unknown tenant is reported, each at its own path, however
    /// many tenants there are (the tenants are looked up in a set built once).
    #[test]
    fn unknown_tenants_are_each_reported() {
        let tenants: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
        let tenants: Vec<&str> = tenants.iter().map(String::as_str).collect();
        let list = [
            a("a0", "t999", "gdpr", "default"),
            a("a1", "t1000", "gdpr", "default"),
            a("a2", "t0", "gdpr", "default"),
            a("a3", "T0", "gdpr", "default"),
        ];
        let problems = validate(&tenants, &[], &list, None);
        assert_eq!(
            problems,
            [
                (
                    "assessments[1].tenant".to_string(),
                    "unknown tenant \"t1000\"".to_string()
                ),
                (
                    "assessments[3].tenant".to_string(),
                    "unknown tenant \"T0\"".to_string()
                ),
            ]
        );
    }
}
