//! Templates: a framework's controls and the improvement actions mapped to them.
//!
//! The in-memory shape shared by the built-in templates (`config/templates/*.toml`), the
//! importers (Compliance Manager Excel layout, CSV, OSCAL catalog/profile JSON) and the
//! exporters. Pure data plus validation: no IO here.

use serde::{Deserialize, Serialize};

/// How an improvement action is carried out (Compliance Manager `implementationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImplementationType {
    /// A configuration a connector can test; counted once per tenant.
    Technical,
    /// A process people run; counted once per group, status set manually.
    Operational,
    /// A written policy or record; counted once per group, status set manually.
    Documentation,
}

impl ImplementationType {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImplementationType::Technical => "technical",
            ImplementationType::Operational => "operational",
            ImplementationType::Documentation => "documentation",
        }
    }

    /// Parse Compliance Manager's spelling (`Technical`, `Operational`, `Documentation`),
    /// case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "technical" => Some(ImplementationType::Technical),
            "operational" => Some(ImplementationType::Operational),
            "documentation" => Some(ImplementationType::Documentation),
            _ => None,
        }
    }
}

/// Who is responsible for an action.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Responsibility {
    /// The customer implements and tests it (the default).
    #[default]
    Customer,
    /// The provider (e.g. Microsoft-managed) implements and tests it; counted once per tenant.
    Provider,
}

/// One improvement action as a template lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateAction {
    /// Stable id. A technical action whose id matches a catalog action (e.g.
    /// `msgraph.mfa.all_users`) or a generated Secure Score action (`securescore.X`) is tested
    /// automatically; any other action is tested manually.
    pub id: String,
    /// Short title (Compliance Manager `actionTitle`).
    pub title: String,
    /// Technical, operational or documentation.
    pub implementation_type: ImplementationType,
    /// Points (Compliance Manager `actionScore`, 1..=99).
    pub points: u32,
    /// Customer or provider managed.
    #[serde(default)]
    pub responsibility: Responsibility,
    /// Heading of the description (`actionDescriptionTitle`).
    #[serde(default)]
    pub description_title: String,
    /// What to do (`actionDescription`).
    #[serde(default)]
    pub description: String,
    /// How to carry it out: a few concrete sentences (workbook column `actionGuidance`); empty
    /// when the source gives none.
    #[serde(default)]
    pub guidance: String,
    /// What an auditor would expect to see as evidence that it is done (workbook column
    /// `actionEvidence`); empty when the source gives none.
    #[serde(default)]
    pub evidence: String,
}

/// Whether an action id a control names is a wildcard (`securescore.*`): it stands for every
/// action of the tenant's evaluation whose id starts with the text before the `*`.
pub fn is_pattern(id: &str) -> bool {
    id.ends_with('*')
}

/// One control of a framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateControl {
    /// Control id (`controlName`), e.g. `IA-2`, `A.8.5`, `Art. 32`, `PR.AA-03`.
    pub id: String,
    /// Control family (`controlFamily`), e.g. `Identification and Authentication`.
    pub family: String,
    /// Control title (`controlTitle`); in the project's own words where the standard's text is
    /// copyrighted (ISO).
    pub title: String,
    /// Control description (`controlDescription`).
    #[serde(default)]
    pub description: String,
    /// Ids of the template's actions that satisfy this control.
    #[serde(default)]
    pub actions: Vec<String>,
}

/// A framework's controls and the actions mapped to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Template {
    /// Stable id, e.g. `nist-800-53-r5`, `data-protection-baseline`.
    pub id: String,
    /// Display title (`title`).
    pub title: String,
    /// Product the template covers (`product`), e.g. `Microsoft 365`.
    #[serde(default)]
    pub product: String,
    /// Regulation or standard (`certification`), e.g. `NIST SP 800-53 Rev. 5`; the value the
    /// "regulation" score filter matches.
    pub certification: String,
    /// Services in scope (`inScopeServices`).
    #[serde(default)]
    pub in_scope_services: Vec<String>,
    /// Controls, in template order.
    pub controls: Vec<TemplateControl>,
    /// Every action the controls reference, each once.
    pub actions: Vec<TemplateAction>,
}

/// A template of one control `C-1` with one documentation action `custom.a` (3 points), for
/// tests of the code that stores and loads templates.
#[cfg(test)]
pub(crate) fn one_control_template(id: &str, title: &str, certification: &str) -> Template {
    Template {
        id: id.into(),
        title: title.into(),
        product: String::new(),
        certification: certification.into(),
        in_scope_services: Vec::new(),
        controls: vec![TemplateControl {
            id: "C-1".into(),
            family: "F".into(),
            title: "T".into(),
            description: String::new(),
            actions: vec!["custom.a".into()],
        }],
        actions: vec![TemplateAction {
            id: "custom.a".into(),
            title: "A".into(),
            implementation_type: ImplementationType::Documentation,
            points: 3,
            responsibility: Responsibility::Customer,
            description_title: String::new(),
            description: String::new(),
            guidance: String::new(),
            evidence: String::new(),
        }],
    }
}
