//! The template registry: built-in templates (`config/templates/*.toml`, embedded at build
//! time), templates from extra directories (`[templates] dirs`) and imported ones.
//!
//! A template file is TOML:
//!
//! ```toml
//! id = "iso-27001-2022"
//! title = "ISO/IEC 27001:2022 Annex A"
//! certification = "ISO/IEC 27001:2022"
//! product = "Microsoft 365"                 # optional
//! in_scope_services = ["Microsoft Entra ID"] # optional
//! catalog_refs = "iso27001"   # optional: map every catalog action to the controls its
//!                             # `controls.<field>` names (iso27001 | nist_800_53 | gdpr)
//! oscal_catalog = "../frameworks/NIST_SP-800-53_rev5_catalog-min.json"  # optional
//! exclude_controls = ["ID.BE", "PR.DS-03"]  # optional: OSCAL controls to leave out (an id
//!                                           # also drops `<id>-*`, e.g. a CSF category's
//!                                           # subcategories)
//!
//! [[controls]]
//! id = "A.5.1"
//! family = "Organizational controls"
//! title = "..."
//! actions = ["doc.isms.policy", "msgraph.mfa.all_users", "securescore.*"]
//!
//! [[actions]]                 # the non-technical (and provider-managed) actions
//! id = "doc.isms.policy"
//! title = "Maintain an information security policy"
//! implementation_type = "documentation"
//! purpose = "preventative"    # with enforcement: the contract's default points (here 27);
//! enforcement = "mandatory"   # or `points = N` (1..=99); both given must agree
//! description = "..."
//! guidance = "..."            # how to carry it out
//! evidence = "..."            # what an auditor expects to see
//! ```
//!
//! Shared non-technical actions live in action libraries (`config/templates/actions/*.toml`,
//! [`BUILTIN_ACTION_LIBRARIES`]): files of `[[actions]]` only, declared once and named by id from
//! every template they serve. A built-in template may not redeclare a library action.
//!
//! A control may name catalog actions by id without listing them under `[[actions]]`: they are
//! completed from the catalog (title, points, description; technical). It may likewise name an
//! action declared under `[[actions]]` by another built-in template (for a template of a
//! `[templates] dirs` directory: by any template loaded before it), which is completed from that
//! declaration: a non-technical action shared by several frameworks is declared once and keeps
//! one id, so it is one instance per group (see docs/scoring.md). An id ending in `*` is a
//! wildcard kept as is and expanded per tenant (see `scoring`). When `oscal_catalog` is set,
//! the OSCAL catalog's controls come first (id, family, title, description, through
//! `crate::interchange::oscal`); controls listed in the file are merged into them by id (their
//! non-empty fields win, their actions are added) or appended.
//!
//! Loading reports every problem at once with its path (`iso-27001-2022.toml: controls[3].id:
//! duplicate id "A.5.1"`). IO only in [`TemplateRegistry::load_dir`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::template::{
    ImplementationType, Responsibility, Template, TemplateAction, TemplateControl, is_pattern,
};
use crate::evaluation::ActionDef;
use crate::evaluation::points::{Enforcement, Purpose, default_points};

/// Built-in template files: (file name, TOML text).
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    (
        "data-protection-baseline.toml",
        include_str!("../../config/templates/data-protection-baseline.toml"),
    ),
    (
        "nist-800-53-r5.toml",
        include_str!("../../config/templates/nist-800-53-r5.toml"),
    ),
    (
        "nist-csf-2.0.toml",
        include_str!("../../config/templates/nist-csf-2.0.toml"),
    ),
    (
        "iso-27001-2022.toml",
        include_str!("../../config/templates/iso-27001-2022.toml"),
    ),
    (
        "gdpr.toml",
        include_str!("../../config/templates/gdpr.toml"),
    ),
    (
        "hipaa-security-rule.toml",
        include_str!("../../config/templates/hipaa-security-rule.toml"),
    ),
    (
        "cisa-scuba-entra-id.toml",
        include_str!("../../config/templates/cisa-scuba-entra-id.toml"),
    ),
    (
        "cis-aws-foundations-3.0.toml",
        include_str!("../../config/templates/cis-aws-foundations-3.0.toml"),
    ),
    (
        "soc2-tsc-2017.toml",
        include_str!("../../config/templates/soc2-tsc-2017.toml"),
    ),
];

/// Built-in action libraries (`config/templates/actions/*.toml`): (file name, TOML text). Each
/// holds `[[actions]]` only: non-technical actions shared by several templates, declared once
/// and named by id from every template they serve (so they are one instance per group).
pub const BUILTIN_ACTION_LIBRARIES: &[(&str, &str)] = &[(
    "actions/operational.toml",
    include_str!("../../config/templates/actions/operational.toml"),
)];

/// Reads the controls of a framework catalog file a template names in `oscal_catalog`:
/// `(file name, bytes) -> controls` (id as templates write it, family, title, statement), or a
/// message. The model does not parse OSCAL itself; the caller passes the OSCAL importer
/// (`crate::interchange::oscal::framework_controls`).
pub type FrameworkReader = fn(&str, &[u8]) -> Result<Vec<TemplateControl>, String>;

/// One template problem, with the file and key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct TemplateError {
    /// Template file name (or template id for imported templates).
    pub file: String,
    /// Key path, e.g. `controls[3].actions[0]`; empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl TemplateError {
    fn new(file: &str, path: impl Into<String>, message: impl Into<String>) -> Self {
        TemplateError {
            file: file.to_string(),
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Which catalog control list a template maps technical actions by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogRefs {
    /// `controls.iso27001`.
    Iso27001,
    /// `controls.nist_800_53`.
    #[serde(rename = "nist_800_53")]
    Nist80053,
    /// `controls.gdpr`.
    Gdpr,
    /// `controls.scuba` (CISA SCuBA policy ids).
    Scuba,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileControl {
    id: String,
    #[serde(default)]
    family: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    actions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAction {
    id: String,
    title: String,
    implementation_type: ImplementationType,
    /// Explicit points; without them, `purpose` and `enforcement` give the default points of
    /// the scoring contract.
    #[serde(default)]
    points: Option<u32>,
    #[serde(default)]
    purpose: Option<Purpose>,
    #[serde(default)]
    enforcement: Option<Enforcement>,
    #[serde(default)]
    responsibility: Responsibility,
    #[serde(default)]
    description_title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    guidance: String,
    #[serde(default)]
    evidence: String,
}

impl FileAction {
    /// The action's points: `points` when given, else the default points of `purpose` and
    /// `enforcement`; a message when neither is given or the two disagree.
    fn resolved_points(&self) -> Result<u32, String> {
        let derived = match (self.purpose, self.enforcement) {
            (Some(p), Some(e)) => Some(default_points(p, e)),
            (None, None) => None,
            _ => return Err("purpose and enforcement go together".into()),
        };
        match (self.points, derived) {
            (Some(p), Some(d)) if p != d => Err(format!(
                "points = {p} but purpose and enforcement give {d}; give one or make them agree"
            )),
            (Some(p), _) | (None, Some(p)) => Ok(p),
            (None, None) => Err("neither points nor purpose and enforcement".into()),
        }
    }
}

/// An action library file (`config/templates/actions/*.toml`): `[[actions]]` only, declared once
/// and named by the templates they serve.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LibraryFile {
    #[serde(default)]
    actions: Vec<FileAction>,
}

/// One crosswalk a template's technical mappings rest on (`[[mapping_sources]]`): its name, as
/// `config/templates/SOURCES.md` names it, and either `catalog_refs = true` (the mappings made
/// by the template's `catalog_refs`) or the `"control = action"` pairs it supports among the
/// technical actions the template's controls name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingSource {
    crosswalk: String,
    #[serde(default)]
    catalog_refs: bool,
    #[serde(default)]
    pairs: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    id: String,
    title: String,
    certification: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    in_scope_services: Vec<String>,
    #[serde(default)]
    catalog_refs: Option<CatalogRefs>,
    #[serde(default)]
    oscal_catalog: Option<String>,
    #[serde(default)]
    exclude_controls: Vec<String>,
    #[serde(default)]
    mapping_sources: Vec<MappingSource>,
    #[serde(default)]
    controls: Vec<FileControl>,
    #[serde(default)]
    actions: Vec<FileAction>,
}

/// A `[[mapping_sources]]` pair `"control = action"` split into its control and action id.
pub fn mapping_pair(pair: &str) -> Option<(&str, &str)> {
    let (control, action) = pair.split_once(" = ")?;
    let (control, action) = (control.trim(), action.trim());
    (!control.is_empty() && !action.is_empty()).then_some((control, action))
}

/// The crosswalks a template file names in `[[mapping_sources]]`: its `catalog_refs` and, per
/// crosswalk, `(crosswalk, catalog_refs, pairs)`; or a message when the file does not parse.
/// For the template quality checks.
#[allow(clippy::type_complexity)]
pub fn mapping_sources(
    text: &str,
) -> Result<(Option<CatalogRefs>, Vec<(String, bool, Vec<String>)>), String> {
    let parsed: TemplateFile = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok((
        parsed.catalog_refs,
        parsed
            .mapping_sources
            .into_iter()
            .map(|m| (m.crosswalk, m.catalog_refs, m.pairs))
            .collect(),
    ))
}

/// Normalised control id for matching catalog references with template controls:
/// lower case, no spaces, enhancements `(n)` as `.n` (`IA-2(1)` ~ `ia-2.1`, `Art. 32` ~
/// `art.32`).
pub fn normalise_control_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for c in id.trim().chars() {
        match c {
            '(' => out.push('.'),
            ')' | ' ' => {}
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The parent of a control id (`IA-2(1)` -> `IA-2`, `Art. 5(1)(f)` -> `Art. 5(1)`), if any.
fn parent_control_id(id: &str) -> Option<&str> {
    let id = id.trim();
    if id.ends_with(')') {
        id.rfind('(').map(|i| &id[..i])
    } else {
        None
    }
}

/// Templates by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateRegistry {
    templates: BTreeMap<String, Template>,
}

impl TemplateRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in templates resolved against `catalog` (the catalog's actions). OSCAL files
    /// of built-in templates are the embedded `config/frameworks/` set ([`builtin_framework`]).
    pub fn builtin(
        catalog: &[ActionDef],
        frameworks: FrameworkReader,
    ) -> Result<Self, Vec<TemplateError>> {
        let mut registry = Self::new();
        let mut errors = Vec::new();
        let library = builtin_library_actions()?;
        let shared = builtin_declared_actions();
        for (file, text) in BUILTIN_TEMPLATES {
            if let Ok(parsed) = toml::from_str::<TemplateFile>(text) {
                for (i, a) in parsed.actions.iter().enumerate() {
                    if library.iter().any(|l| l.id == a.id) {
                        errors.push(TemplateError::new(
                            file,
                            format!("actions[{i}].id"),
                            format!(
                                "\"{}\" is declared by an action library; name it instead of declaring it",
                                a.id
                            ),
                        ));
                    }
                }
            }
            match parse_template(file, text, catalog, &shared, frameworks, &|name| {
                builtin_framework(name).map(|b| b.to_vec())
            }) {
                Ok(t) => registry.insert_checked(file, t, &mut errors),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(registry)
        } else {
            Err(errors)
        }
    }

    /// Add every `*.toml` template of a directory (sorted by file name); `oscal_catalog` paths
    /// are relative to the directory.
    pub fn load_dir(
        &mut self,
        dir: &Path,
        catalog: &[ActionDef],
        frameworks: FrameworkReader,
    ) -> Result<(), Vec<TemplateError>> {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| vec![TemplateError::new(&shown, "", format!("cannot read: {e}"))])?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut errors = Vec::new();
        let mut shared: HashMap<String, TemplateAction> = HashMap::new();
        for a in self.templates.values().flat_map(|t| &t.actions) {
            shared.entry(a.id.clone()).or_insert_with(|| a.clone());
        }
        for path in files {
            let file = path.display().to_string();
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(TemplateError::new(&file, "", format!("cannot read: {e}")));
                    continue;
                }
            };
            let read = |name: &str| std::fs::read(dir.join(name)).ok();
            match parse_template(&file, &text, catalog, &shared, frameworks, &read) {
                Ok(t) => self.insert_checked(&file, t, &mut errors),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn insert_checked(&mut self, file: &str, t: Template, errors: &mut Vec<TemplateError>) {
        if self.templates.contains_key(&t.id) {
            errors.push(TemplateError::new(
                file,
                "id",
                format!("duplicate template id \"{}\"", t.id),
            ));
        } else {
            self.templates.insert(t.id.clone(), t);
        }
    }

    /// Add or replace a template (e.g. an imported one) after validating it.
    pub fn insert(&mut self, template: Template) -> Result<(), Vec<TemplateError>> {
        let errors = validate(&template.id, &template);
        if !errors.is_empty() {
            return Err(errors);
        }
        self.templates.insert(template.id.clone(), template);
        Ok(())
    }

    /// A template by id.
    pub fn get(&self, id: &str) -> Option<&Template> {
        self.templates.get(id)
    }

    /// Every template, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    /// Template ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}

/// The embedded OSCAL source files of `config/frameworks/` by file name (as a template's
/// `oscal_catalog` names them, with or without a leading `../frameworks/`).
pub fn builtin_framework(name: &str) -> Option<&'static [u8]> {
    let name = name.rsplit('/').next().unwrap_or(name);
    match name {
        "NIST_SP-800-53_rev5_MODERATE-baseline-resolved-profile_catalog-min.json" => {
            Some(include_bytes!(
                "../../config/frameworks/NIST_SP-800-53_rev5_MODERATE-baseline-resolved-profile_catalog-min.json"
            ))
        }
        "NIST_CSF_v2.0_catalog.xml" => Some(include_bytes!(
            "../../config/frameworks/NIST_CSF_v2.0_catalog.xml"
        )),
        _ => None,
    }
}

/// The actions of the built-in action libraries ([`BUILTIN_ACTION_LIBRARIES`]), in file
/// order, or every problem (unreadable file, duplicate id, empty title, points that do not
/// resolve, points outside 1..=99).
pub fn builtin_library_actions() -> Result<Vec<TemplateAction>, Vec<TemplateError>> {
    let mut out: Vec<TemplateAction> = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in BUILTIN_ACTION_LIBRARIES {
        let parsed: LibraryFile = match toml::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                errors.push(TemplateError::new(
                    file,
                    "",
                    format!("invalid action library: {}", e.to_string().trim()),
                ));
                continue;
            }
        };
        for (i, a) in parsed.actions.into_iter().enumerate() {
            let path = format!("actions[{i}]");
            match a.resolved_points() {
                Ok(p) if !(1..=99).contains(&p) => errors.push(TemplateError::new(
                    file,
                    format!("{path}.points"),
                    format!("{p} is not in 1..=99"),
                )),
                Ok(_) => {}
                Err(m) => errors.push(TemplateError::new(file, format!("{path}.points"), m)),
            }
            if a.title.trim().is_empty() {
                errors.push(TemplateError::new(file, format!("{path}.title"), "empty"));
            }
            if out.iter().any(|o| o.id == a.id) {
                errors.push(TemplateError::new(
                    file,
                    format!("{path}.id"),
                    format!("duplicate id \"{}\"", a.id),
                ));
                continue;
            }
            out.push(a.into());
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The actions the built-in action libraries and every built-in template file declare under
/// `[[actions]]`, by id (libraries first; the first declaration of an id wins; files that do
/// not parse are skipped here and reported when loaded).
fn builtin_declared_actions() -> HashMap<String, TemplateAction> {
    let mut out = HashMap::new();
    for a in builtin_library_actions().unwrap_or_default() {
        out.entry(a.id.clone()).or_insert(a);
    }
    for (_, text) in BUILTIN_TEMPLATES {
        if let Ok(parsed) = toml::from_str::<TemplateFile>(text) {
            for a in parsed.actions {
                out.entry(a.id.clone()).or_insert_with(|| a.into());
            }
        }
    }
    out
}

impl From<FileAction> for TemplateAction {
    /// Points that cannot be resolved become 0, which [`validate`] reports; callers that read
    /// files report [`FileAction::resolved_points`]'s message first.
    fn from(a: FileAction) -> Self {
        let points = a.resolved_points().unwrap_or(0);
        TemplateAction {
            id: a.id,
            title: a.title,
            implementation_type: a.implementation_type,
            points,
            responsibility: a.responsibility,
            description_title: a.description_title,
            description: a.description,
            guidance: a.guidance,
            evidence: a.evidence,
        }
    }
}

/// Parse, complete and validate one template file. `shared` holds actions declared by other
/// templates, which a control may name without declaring them.
fn parse_template(
    file: &str,
    text: &str,
    catalog: &[ActionDef],
    shared: &HashMap<String, TemplateAction>,
    frameworks: FrameworkReader,
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Template, Vec<TemplateError>> {
    let parsed: TemplateFile = toml::from_str(text).map_err(|e| {
        vec![TemplateError::new(
            file,
            "",
            format!("invalid template: {}", e.to_string().trim()),
        )]
    })?;
    let mut errors = Vec::new();
    let mut controls: Vec<TemplateControl> = Vec::new();
    if let Some(source) = &parsed.oscal_catalog {
        match read(source) {
            None => errors.push(TemplateError::new(
                file,
                "oscal_catalog",
                format!("cannot read {source}"),
            )),
            Some(bytes) => match frameworks(source, &bytes) {
                Ok(list) => {
                    let excluded = |id: &str| {
                        parsed.exclude_controls.iter().any(|x| {
                            id == x
                                || id
                                    .strip_prefix(x.as_str())
                                    .is_some_and(|rest| rest.starts_with('-'))
                        })
                    };
                    controls = list.into_iter().filter(|c| !excluded(&c.id)).collect();
                }
                Err(m) => errors.push(TemplateError::new(file, "oscal_catalog", m)),
            },
        }
    }
    let mut index: HashMap<String, usize> = controls
        .iter()
        .enumerate()
        .map(|(i, c)| (normalise_control_id(&c.id), i))
        .collect();
    let mut in_file = HashSet::new();
    for (i, c) in parsed.controls.into_iter().enumerate() {
        if !in_file.insert(normalise_control_id(&c.id)) {
            errors.push(TemplateError::new(
                file,
                format!("controls[{i}].id"),
                format!("duplicate id \"{}\"", c.id),
            ));
            continue;
        }
        match index.get(&normalise_control_id(&c.id)) {
            Some(&at) => {
                let existing = &mut controls[at];
                if !c.family.is_empty() {
                    existing.family = c.family;
                }
                if !c.title.is_empty() {
                    existing.title = c.title;
                }
                if !c.description.is_empty() {
                    existing.description = c.description;
                }
                existing.actions.extend(c.actions);
            }
            None => {
                if c.title.trim().is_empty() {
                    errors.push(TemplateError::new(
                        file,
                        format!("controls[{i}].title"),
                        "empty",
                    ));
                }
                index.insert(normalise_control_id(&c.id), controls.len());
                controls.push(TemplateControl {
                    id: c.id,
                    family: c.family,
                    title: c.title,
                    description: c.description,
                    actions: c.actions,
                });
            }
        }
    }
    for (i, a) in parsed.actions.iter().enumerate() {
        if let Err(m) = a.resolved_points() {
            errors.push(TemplateError::new(file, format!("actions[{i}].points"), m));
        }
    }
    let mut actions: Vec<TemplateAction> = parsed.actions.into_iter().map(Into::into).collect();

    // Map catalog actions by their control references.
    if let Some(refs) = parsed.catalog_refs {
        for def in catalog {
            let list = match refs {
                CatalogRefs::Iso27001 => &def.controls.iso27001,
                CatalogRefs::Nist80053 => &def.controls.nist_800_53,
                CatalogRefs::Gdpr => &def.controls.gdpr,
                CatalogRefs::Scuba => &def.controls.scuba,
            };
            for r in list {
                let mut id = Some(r.as_str());
                let mut found = None;
                while let Some(candidate) = id {
                    if let Some(&at) = index.get(&normalise_control_id(candidate)) {
                        found = Some(at);
                        break;
                    }
                    id = parent_control_id(candidate);
                }
                match found {
                    Some(at) => {
                        if !controls[at].actions.contains(&def.id) {
                            controls[at].actions.push(def.id.clone());
                        }
                    }
                    None => errors.push(TemplateError::new(
                        file,
                        "catalog_refs",
                        format!(
                            "catalog action {} names control {r}, which the template does not have",
                            def.id
                        ),
                    )),
                }
            }
        }
    }

    // Complete catalog actions the controls name.
    let by_id: HashMap<&str, &ActionDef> = catalog.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut defined: HashSet<String> = actions.iter().map(|a| a.id.clone()).collect();
    for c in &controls {
        for id in &c.actions {
            if defined.contains(id) || is_pattern(id) {
                continue;
            }
            if let Some(def) = by_id.get(id.as_str()) {
                actions.push(TemplateAction {
                    id: def.id.clone(),
                    title: def.title.clone(),
                    implementation_type: ImplementationType::Technical,
                    points: def.points(),
                    responsibility: Responsibility::Customer,
                    description_title: def.title.clone(),
                    description: def.description.trim().to_string(),
                    guidance: String::new(),
                    evidence: String::new(),
                });
                defined.insert(id.clone());
            } else if let Some(action) = shared.get(id.as_str()) {
                actions.push(action.clone());
                defined.insert(id.clone());
            }
        }
    }
    for (i, source) in parsed.mapping_sources.iter().enumerate() {
        if source.crosswalk.trim().is_empty() {
            errors.push(TemplateError::new(
                file,
                format!("mapping_sources[{i}].crosswalk"),
                "empty",
            ));
        }
        for (j, pair) in source.pairs.iter().enumerate() {
            let named = mapping_pair(pair).is_some_and(|(control, action)| {
                index
                    .get(&normalise_control_id(control))
                    .is_some_and(|&at| controls[at].actions.iter().any(|a| a == action))
            });
            if !named {
                errors.push(TemplateError::new(
                    file,
                    format!("mapping_sources[{i}].pairs[{j}]"),
                    format!(
                        "\"{pair}\" is not \"control = action\" with a control of the template that names the action"
                    ),
                ));
            }
        }
    }
    let template = Template {
        id: parsed.id,
        title: parsed.title,
        product: parsed.product,
        certification: parsed.certification,
        in_scope_services: parsed.in_scope_services,
        controls,
        actions,
    };
    errors.extend(validate(file, &template));
    if errors.is_empty() {
        Ok(template)
    } else {
        Err(errors)
    }
}

/// Every structural problem of a template: empty id/title/certification, duplicate control or
/// action ids, points outside 1..=99, controls naming undefined actions (wildcards `x.*`
/// excepted), actions no control names.
pub fn validate(file: &str, t: &Template) -> Vec<TemplateError> {
    let mut errors = Vec::new();
    for (field, value) in [
        ("id", &t.id),
        ("title", &t.title),
        ("certification", &t.certification),
    ] {
        if value.trim().is_empty() {
            errors.push(TemplateError::new(file, field, "empty"));
        }
    }
    let mut controls = HashSet::new();
    for (i, c) in t.controls.iter().enumerate() {
        if !controls.insert(normalise_control_id(&c.id)) {
            errors.push(TemplateError::new(
                file,
                format!("controls[{i}].id"),
                format!("duplicate id \"{}\"", c.id),
            ));
        }
    }
    let mut actions = HashSet::new();
    for (i, a) in t.actions.iter().enumerate() {
        if !actions.insert(a.id.as_str()) {
            errors.push(TemplateError::new(
                file,
                format!("actions[{i}].id"),
                format!("duplicate id \"{}\"", a.id),
            ));
        }
        if !(1..=99).contains(&a.points) {
            errors.push(TemplateError::new(
                file,
                format!("actions[{i}].points"),
                format!("{} is not in 1..=99", a.points),
            ));
        }
        if a.title.trim().is_empty() {
            errors.push(TemplateError::new(
                file,
                format!("actions[{i}].title"),
                "empty",
            ));
        }
    }
    let mut used = HashSet::new();
    for (i, c) in t.controls.iter().enumerate() {
        for (j, id) in c.actions.iter().enumerate() {
            used.insert(id.as_str());
            if !actions.contains(id.as_str()) && !is_pattern(id) {
                errors.push(TemplateError::new(
                    file,
                    format!("controls[{i}].actions[{j}]"),
                    format!(
                        "unknown action \"{id}\" (neither a template action nor a catalog action)"
                    ),
                ));
            }
        }
    }
    for (i, a) in t.actions.iter().enumerate() {
        if !used.contains(a.id.as_str()) {
            errors.push(TemplateError::new(
                file,
                format!("actions[{i}]"),
                format!("action \"{}\" is not mapped to any control", a.id),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::Catalog;
    use crate::interchange::oscal::framework_controls;

    #[test]
    fn control_ids_normalise() {
        assert_eq!(normalise_control_id("IA-2(1)"), "ia-2.1");
        assert_eq!(normalise_control_id("ia-2.1"), "ia-2.1");
        assert_eq!(normalise_control_id("Art. 5(1)(f)"), "art.5.1.f");
        assert_eq!(parent_control_id("Art. 5(1)(f)"), Some("Art. 5(1)"));
        assert_eq!(parent_control_id("IA-2"), None);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
id = "t"
title = "T"
certification = "C"
[[controls]]
id = "C-1"
title = "one"
actions = ["a", "missing"]
[[controls]]
id = "c-1"
title = "dup"
[[actions]]
id = "a"
title = "A"
implementation_type = "documentation"
points = 120
[[actions]]
id = "b"
title = "B"
implementation_type = "operational"
points = 3
"#;
        let errors = parse_template(
            "t.toml",
            text,
            &[],
            &HashMap::new(),
            framework_controls,
            &|_| None,
        )
        .unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        for want in [
            "t.toml: controls[1].id: duplicate id \"c-1\"",
            "t.toml: actions[0].points: 120 is not in 1..=99",
            "t.toml: controls[0].actions[1]: unknown action \"missing\"",
            "t.toml: actions[1]: action \"b\" is not mapped to any control",
        ] {
            assert!(
                shown.iter().any(|s| s.starts_with(want)),
                "{want} not in {shown:#?}"
            );
        }
    }

    #[test]
    fn load_dir_adds_templates_and_reports_bad_files_and_clashes() {
        let catalog = Catalog::builtin();
        let dir = tempfile::tempdir().expect("tempdir");
        let good = r#"
id = "acme-policy"
title = "ACME internal policy"
certification = "ACME"
[[controls]]
id = "ACME-1"
title = "Strong sign-in"
actions = ["msgraph.mfa.all_users", "acme.review"]
[[actions]]
id = "acme.review"
title = "Review sign-in policy yearly"
implementation_type = "operational"
points = 3
"#;
        std::fs::write(dir.path().join("a.toml"), good).expect("write");
        std::fs::write(dir.path().join("ignored.txt"), "not a template").expect("write");
        let mut r =
            TemplateRegistry::builtin(&catalog.actions, framework_controls).expect("builtin");
        r.load_dir(dir.path(), &catalog.actions, framework_controls)
            .expect("loads");
        let t = r.get("acme-policy").expect("loaded");
        assert_eq!(t.actions.len(), 2, "the catalog action is completed");
        // A clash with a built-in id and a broken file are both reported, with the file.
        std::fs::write(
            dir.path().join("b.toml"),
            good.replace("acme-policy", "gdpr"),
        )
        .expect("write");
        std::fs::write(dir.path().join("c.toml"), "id = ").expect("write");
        let mut r =
            TemplateRegistry::builtin(&catalog.actions, framework_controls).expect("builtin");
        let errors = r
            .load_dir(dir.path(), &catalog.actions, framework_controls)
            .expect_err("problems");
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{shown:#?}");
        assert!(
            shown[0].contains("b.toml: id: duplicate template id \"gdpr\""),
            "{shown:#?}"
        );
        assert!(
            shown[1].contains("c.toml: : invalid template"),
            "{shown:#?}"
        );
        assert!(r.get("acme-policy").is_some(), "good files still load");
    }

    #[test]
    fn catalog_refs_map_technical_actions_to_controls_or_their_parent() {
        let catalog = Catalog::builtin();
        let text = r#"
id = "t"
title = "T"
certification = "C"
catalog_refs = "nist_800_53"
[[controls]]
id = "IA-2"
title = "Identification and authentication"
[[controls]]
id = "IA-5"
title = "Authenticator management"
[[controls]]
id = "AC-6"
title = "Least privilege"
[[controls]]
id = "AC-17"
title = "Remote access"
[[controls]]
id = "AC-3"
title = "Access enforcement"
[[controls]]
id = "AC-4"
title = "Information flow enforcement"
[[controls]]
id = "AC-2"
title = "Account management"
[[controls]]
id = "CM-6"
title = "Configuration settings"
[[controls]]
id = "CM-7"
title = "Least functionality"
[[controls]]
id = "CM-11"
title = "User-installed software"
[[controls]]
id = "SI-4"
title = "System monitoring"
[[controls]]
id = "IA-10"
title = "Adaptive authentication"
[[controls]]
id = "AC-19"
title = "Access control for mobile devices"
[[controls]]
id = "IA-3"
title = "Device identification and authentication"
[[controls]]
id = "AC-16"
title = "Security and privacy attributes"
[[controls]]
id = "MP-3"
title = "Media marking"
[[controls]]
id = "SC-28"
title = "Protection of information at rest"
[[controls]]
id = "SC-13"
title = "Cryptographic protection"
[[controls]]
id = "CA-7"
title = "Continuous monitoring"
[[controls]]
id = "RA-5"
title = "Vulnerability monitoring and scanning"
"#;
        let t = parse_template(
            "t.toml",
            text,
            &catalog.actions,
            &HashMap::new(),
            framework_controls,
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("{e:#?}"));
        let ia2 = t.controls.iter().find(|c| c.id == "IA-2").expect("IA-2");
        // `IA-2(1)` is not a control of the template: the action maps to its parent.
        assert!(ia2.actions.contains(&"msgraph.mfa.all_users".to_string()));
        let a = t
            .actions
            .iter()
            .find(|a| a.id == "msgraph.mfa.all_users")
            .expect("action");
        assert_eq!(a.points, 27);
        assert_eq!(a.implementation_type, ImplementationType::Technical);
        // Every catalog action is in the template once.
        assert_eq!(t.actions.len(), catalog.actions.len());
        // A reference to a control the template lacks is reported.
        let short = text.replace("id = \"RA-5\"", "id = \"RA-9\"");
        let errors = parse_template(
            "t.toml",
            &short,
            &catalog.actions,
            &HashMap::new(),
            framework_controls,
            &|_| None,
        )
        .expect_err("RA-5 missing");
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("names control RA-5")),
            "{errors:#?}"
        );
    }
}

#[cfg(test)]
mod builtin_tests {
    use super::*;
    use crate::evaluation::Catalog;
    use crate::interchange::oscal::framework_controls;

    fn builtin() -> TemplateRegistry {
        TemplateRegistry::builtin(&Catalog::builtin().actions, framework_controls).unwrap_or_else(
            |e| {
                panic!(
                    "{}",
                    e.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            },
        )
    }

    #[test]
    fn builtin_templates_load() {
        let r = builtin();
        let ids: Vec<&str> = r.ids().collect();
        assert_eq!(
            ids,
            [
                "cis-aws-foundations-3.0",
                "cisa-scuba-entra-id",
                "data-protection-baseline",
                "gdpr",
                "hipaa-security-rule",
                "iso-27001-2022",
                "nist-800-53-r5",
                "nist-csf-2.0",
                "soc2-tsc-2017"
            ]
        );
    }

    #[test]
    fn nist_800_53_structure_comes_from_oscal() {
        let r = builtin();
        let t = r.get("nist-800-53-r5").expect("template");
        // 287 controls and enhancements of the moderate baseline, plus IA-10 and AC-16.
        assert_eq!(t.controls.len(), 289);
        let control = |id: &str| {
            t.controls
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("{id}"))
        };
        assert_eq!(control("IA-2").family, "Identification and Authentication");
        assert!(!control("IA-2").description.is_empty());
        let ia28 = control("IA-2(8)");
        assert!(
            ia28.actions
                .contains(&"msgraph.mfa.passwordless".to_string())
        );
        // AC-2(12) is not in the moderate baseline: its action maps to AC-2.
        assert!(t.controls.iter().all(|c| c.id != "AC-2(12)"));
        assert!(
            control("AC-2")
                .actions
                .contains(&"msgraph.ca.high_risk_users_blocked".to_string())
        );
        assert!(
            control("AC-2")
                .actions
                .contains(&"nist.ac.account_reviews".to_string())
        );
        // The title written in the file wins.
        assert_eq!(control("IA-10").title, "Adaptive Authentication");
    }

    #[test]
    fn csf_structure_comes_from_the_oscal_xml() {
        let r = builtin();
        let t = r.get("nist-csf-2.0").expect("template");
        let control = |id: &str| {
            t.controls
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("{id}"))
        };
        // CSF 2.0: 22 categories and 106 subcategories (the withdrawn CSF 1.1 ids that NIST's
        // OSCAL catalog still carries are excluded by the template); functions are families.
        let categories = t.controls.iter().filter(|c| !c.id.contains('-')).count();
        assert_eq!((categories, t.controls.len() - categories), (22, 106));
        assert!(t.controls.iter().all(|c| !c.id.starts_with("PR.AC")));
        assert_eq!(control("PR.AA-03").family, "PROTECT");
        assert_eq!(control("GV.PO").title, "Policy");
        assert!(
            control("PR.AA-03")
                .actions
                .contains(&"msgraph.mfa.all_users".to_string())
        );
        assert!(!control("PR.AA-03").family.is_empty());
    }

    #[test]
    fn iso_has_all_93_annex_a_controls_and_others_map_the_catalog() {
        let r = builtin();
        let catalog = Catalog::builtin();
        let iso = r.get("iso-27001-2022").expect("iso");
        assert_eq!(iso.controls.len(), 93);
        let per_theme = |p: &str| iso.controls.iter().filter(|c| c.id.starts_with(p)).count();
        assert_eq!(
            [
                per_theme("A.5."),
                per_theme("A.6."),
                per_theme("A.7."),
                per_theme("A.8.")
            ],
            [37, 8, 14, 34]
        );
        // Every catalog action is mapped in ISO, NIST and GDPR (by its refs), every msgraph one
        // in the baseline.
        for id in [
            "iso-27001-2022",
            "data-protection-baseline",
            "nist-800-53-r5",
            "gdpr",
        ] {
            let t = r.get(id).expect("template");
            // The Data Protection Baseline is a Microsoft 365 template: it maps the msgraph
            // catalog (other kinds are out of scope for a Microsoft-only tenant anyway).
            let in_scope =
                |kind: Option<&str>| id != "data-protection-baseline" || kind == Some("msgraph");
            for def in catalog
                .actions
                .iter()
                .filter(|d| in_scope(d.kind.as_deref()))
            {
                assert!(
                    t.controls.iter().any(|c| c.actions.contains(&def.id)),
                    "{id}: {} not mapped",
                    def.id
                );
            }
        }
        let dpb = r.get("data-protection-baseline").expect("baseline");
        assert!(
            dpb.actions
                .iter()
                .all(|a| a.implementation_type == ImplementationType::Technical)
        );
        assert!(dpb.controls.iter().any(|c| c.actions == ["securescore.*"]));
        // Non-technical and provider-managed actions exist in the framework templates.
        let hipaa = r.get("hipaa-security-rule").expect("hipaa");
        assert!(
            hipaa
                .actions
                .iter()
                .any(|a| a.responsibility == Responsibility::Provider)
        );
        assert!(
            hipaa
                .actions
                .iter()
                .any(|a| a.implementation_type == ImplementationType::Technical)
        );
        let gdpr = r.get("gdpr").expect("gdpr");
        let art32 = gdpr
            .controls
            .iter()
            .find(|c| c.id == "Art. 32")
            .expect("Art. 32");
        assert!(art32.actions.contains(&"msgraph.mfa.all_users".to_string()));
    }
}

#[cfg(test)]
mod scuba_template_tests {
    use super::*;

    /// The SCuBA Entra ID template: one control per baseline policy id, and every catalog
    /// action that names a SCuBA policy is mapped to exactly that control.
    #[test]
    fn scuba_template_maps_every_scuba_action_to_its_policy() {
        let catalog = crate::evaluation::Catalog::builtin();
        let r = TemplateRegistry::builtin(
            &catalog.actions,
            crate::interchange::oscal::framework_controls,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let t = r.get("cisa-scuba-entra-id").expect("template");
        assert_eq!(t.controls.len(), 30);
        assert!(t.controls.iter().all(|c| c.id.starts_with("MS.AAD.")));
        let mut mapped = 0;
        for def in catalog
            .actions
            .iter()
            .filter(|d| !d.controls.scuba.is_empty())
        {
            for policy in &def.controls.scuba {
                let c = t
                    .controls
                    .iter()
                    .find(|c| &c.id == policy)
                    .unwrap_or_else(|| panic!("{policy}"));
                assert!(c.actions.contains(&def.id), "{policy}: {}", def.id);
                mapped += 1;
            }
        }
        // The eight conditional access policies, nine tenant-wide settings and nine
        // privileged-access policies.
        assert_eq!(mapped, 26);
    }
}

#[cfg(test)]
mod cis_soc2_tests;
