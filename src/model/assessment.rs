//! Assessments, groups and manual status records: the configuration-side shapes of the
//! Compliance Manager model.
//!
//! An [`Assessment`] applies a template to a tenant inside a [`Group`]. A [`ManualStatus`] is
//! what a person recorded for one action instance (its [`InstanceScope`]): statuses, owner,
//! notes, evidence and the testing source. Pure data: no IO, no clock.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::report::TestingSource;
use crate::evaluation::{ImplementationStatus, TestStatus};

/// Id of the group assessments belong to when the configuration names none.
pub const DEFAULT_GROUP: &str = "default";

/// Id of the built-in template every tenant is assessed against by default.
pub const DEFAULT_TEMPLATE: &str = "data-protection-baseline";

/// A container of assessments; non-technical actions are scored once per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Stable id, e.g. `default`, `eu-subsidiaries`.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A template applied to a tenant inside a group. A group holds at most one assessment per
/// (tenant, template).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assessment {
    /// Stable id, e.g. `contoso-iso27001`; for the default assessment
    /// `<tenant>-data-protection-baseline`.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// Template id.
    pub template: String,
    /// Group id.
    pub group: String,
}

impl Assessment {
    /// The default assessment of a tenant: the Data Protection Baseline in group `default`.
    pub fn default_for(tenant: &str) -> Assessment {
        Assessment {
            id: format!("{tenant}-{DEFAULT_TEMPLATE}"),
            tenant: tenant.to_string(),
            template: DEFAULT_TEMPLATE.to_string(),
            group: DEFAULT_GROUP.to_string(),
        }
    }
}

/// Where one action instance lives: technical and provider-managed actions once per tenant,
/// non-technical (operational, documentation) actions once per group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum InstanceScope {
    /// Counted once per tenant (technical and provider-managed actions).
    Tenant(String),
    /// Counted once per group (customer-managed operational and documentation actions).
    Group(String),
}

impl InstanceScope {
    /// `tenant` or `group`.
    pub fn kind(&self) -> &'static str {
        match self {
            InstanceScope::Tenant(_) => "tenant",
            InstanceScope::Group(_) => "group",
        }
    }

    /// The tenant or group id.
    pub fn id(&self) -> &str {
        match self {
            InstanceScope::Tenant(id) | InstanceScope::Group(id) => id,
        }
    }

    /// Build from a stored `(kind, id)` pair; `None` for an unknown kind.
    pub fn from_parts(kind: &str, id: &str) -> Option<InstanceScope> {
        match kind {
            "tenant" => Some(InstanceScope::Tenant(id.to_string())),
            "group" => Some(InstanceScope::Group(id.to_string())),
            _ => None,
        }
    }
}

/// What a person recorded for one action instance.
///
/// While `testing_source` is [`TestingSource::Manual`], the recorded statuses decide the
/// instance and automation never overwrites them; switching it back to
/// [`TestingSource::Automatic`] hands the test status back to the rule (owner, notes and
/// evidence are kept). [`TestingSource::Parent`] copies the status of the action `parent` in
/// the same scope (or, for a group-scoped instance, of the tenant-scoped technical action of
/// that id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualStatus {
    /// The instance: `Tenant(t)` for technical and provider-managed actions, `Group(g)` for
    /// non-technical ones.
    pub scope: InstanceScope,
    /// Action id.
    pub action: String,
    /// Who sets the test status.
    pub testing_source: TestingSource,
    /// Implementation status set by a person; `None`: derived from the test status.
    #[serde(default)]
    pub implementation_status: Option<ImplementationStatus>,
    /// Test status set by a person; `None`: not set (`none` when the source is manual).
    #[serde(default)]
    pub test_status: Option<TestStatus>,
    /// Action id whose status is copied when `testing_source` is `parent`.
    #[serde(default)]
    pub parent: Option<String>,
    /// Owner (free text: a name or an address).
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// Implementation notes (free text; the JSON key `notes` is kept for them).
    #[serde(default)]
    pub notes: Option<String>,
    /// When the implementation status was last set (now by default when it changes).
    #[serde(default)]
    pub implementation_date: Option<DateTime<Utc>>,
    /// Test notes (free text; written by an assessor).
    #[serde(default)]
    pub test_notes: Option<String>,
    /// When the test status was last set (now by default when it changes).
    #[serde(default)]
    pub test_date: Option<DateTime<Utc>>,
    /// Evidence links (URLs or document references).
    #[serde(default)]
    pub evidence: Vec<String>,
    /// When the record was last changed.
    pub updated_at: DateTime<Utc>,
}

/// A partial change to a [`ManualStatus`] (what `postured action set` passes): every `Some`
/// field replaces the stored one; `evidence` is appended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManualUpdate {
    /// New testing source; setting a test or implementation status without it switches the
    /// source to `manual`.
    pub testing_source: Option<TestingSource>,
    /// New implementation status.
    pub implementation_status: Option<ImplementationStatus>,
    /// New test status.
    pub test_status: Option<TestStatus>,
    /// New parent action (for `testing_source = parent`).
    pub parent: Option<String>,
    /// New owner.
    pub assigned_to: Option<String>,
    /// New implementation notes.
    pub notes: Option<String>,
    /// New implementation date (default: now, when the implementation status changes).
    pub implementation_date: Option<DateTime<Utc>>,
    /// New test notes.
    pub test_notes: Option<String>,
    /// New test date (default: now, when the test status changes).
    pub test_date: Option<DateTime<Utc>>,
    /// Evidence links to add (duplicates are ignored).
    pub evidence: Vec<String>,
}

impl ManualUpdate {
    /// Whether the update touches what only an assessor may set: the test status, its date
    /// or its notes.
    pub fn sets_test(&self) -> bool {
        self.test_status.is_some() || self.test_date.is_some() || self.test_notes.is_some()
    }
}

/// One field of a [`ManualStatus`] that an update changed, with its old and new value as JSON
/// (`null` for none): what the audit log records, one row per field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The field's name as in the JSON of [`ManualStatus`] (`test_status`, `notes`, ...).
    pub field: &'static str,
    /// The value before.
    pub old: serde_json::Value,
    /// The value after.
    pub new: serde_json::Value,
}

impl ManualStatus {
    /// An empty record for an instance, testing source `source`.
    pub fn new(
        scope: InstanceScope,
        action: &str,
        source: TestingSource,
        now: DateTime<Utc>,
    ) -> Self {
        ManualStatus {
            scope,
            action: action.to_string(),
            testing_source: source,
            implementation_status: None,
            test_status: None,
            parent: None,
            assigned_to: None,
            notes: None,
            implementation_date: None,
            test_notes: None,
            test_date: None,
            evidence: Vec::new(),
            updated_at: now,
        }
    }

    /// The fields whose value differs between `self` (before) and `after`, in a fixed order;
    /// `updated_at` is not a field of its own.
    pub fn changes(&self, after: &ManualStatus) -> Vec<FieldChange> {
        fn json<T: Serialize>(v: &T) -> serde_json::Value {
            serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
        }
        let pairs = [
            (
                "testing_source",
                json(&self.testing_source),
                json(&after.testing_source),
            ),
            (
                "implementation_status",
                json(&self.implementation_status),
                json(&after.implementation_status),
            ),
            (
                "implementation_date",
                json(&self.implementation_date),
                json(&after.implementation_date),
            ),
            ("notes", json(&self.notes), json(&after.notes)),
            (
                "test_status",
                json(&self.test_status),
                json(&after.test_status),
            ),
            ("test_date", json(&self.test_date), json(&after.test_date)),
            (
                "test_notes",
                json(&self.test_notes),
                json(&after.test_notes),
            ),
            ("parent", json(&self.parent), json(&after.parent)),
            (
                "assigned_to",
                json(&self.assigned_to),
                json(&after.assigned_to),
            ),
            ("evidence", json(&self.evidence), json(&after.evidence)),
        ];
        pairs
            .into_iter()
            .filter(|(_, old, new)| old != new)
            .map(|(field, old, new)| FieldChange { field, old, new })
            .collect()
    }

    /// Apply an update at `now`. Setting a status without naming a testing source switches the
    /// source to `manual` (a manual override); naming `automatic` hands the status back to the
    /// rule while keeping the recorded values for when it is switched to manual again. A
    /// status that changes stamps its date with `now` unless the update gives the date.
    pub fn apply(&mut self, update: ManualUpdate, now: DateTime<Utc>) {
        let sets_status = update.test_status.is_some() || update.implementation_status.is_some();
        match update.testing_source {
            Some(source) => self.testing_source = source,
            None if sets_status => self.testing_source = TestingSource::Manual,
            None => {}
        }
        if let Some(s) = update.implementation_status {
            if self.implementation_status != Some(s) && update.implementation_date.is_none() {
                self.implementation_date = Some(now);
            }
            self.implementation_status = Some(s);
        }
        if let Some(d) = update.implementation_date {
            self.implementation_date = Some(d);
        }
        if let Some(s) = update.test_status {
            if self.test_status != Some(s) && update.test_date.is_none() {
                self.test_date = Some(now);
            }
            self.test_status = Some(s);
        }
        if let Some(d) = update.test_date {
            self.test_date = Some(d);
        }
        if let Some(n) = update.test_notes {
            self.test_notes = Some(n);
        }
        if let Some(p) = update.parent {
            self.parent = Some(p);
        }
        if let Some(a) = update.assigned_to {
            self.assigned_to = Some(a);
        }
        if let Some(n) = update.notes {
            self.notes = Some(n);
        }
        for e in update.evidence {
            if !self.evidence.contains(&e) {
                self.evidence.push(e);
            }
        }
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn setting_a_status_switches_to_manual_and_back() {
        let scope = InstanceScope::Tenant("t".into());
        let mut m = ManualStatus::new(scope, "a", TestingSource::Automatic, at(1));
        m.apply(
            ManualUpdate {
                test_status: Some(TestStatus::Passed),
                evidence: vec!["https://e/1".into()],
                ..Default::default()
            },
            at(2),
        );
        assert_eq!(m.testing_source, TestingSource::Manual);
        assert_eq!(m.test_status, Some(TestStatus::Passed));
        assert_eq!(m.updated_at, at(2));
        m.apply(
            ManualUpdate {
                testing_source: Some(TestingSource::Automatic),
                evidence: vec!["https://e/1".into(), "https://e/2".into()],
                ..Default::default()
            },
            at(3),
        );
        assert_eq!(m.testing_source, TestingSource::Automatic);
        // The recorded status is kept for when it is switched back to manual.
        assert_eq!(m.test_status, Some(TestStatus::Passed));
        assert_eq!(m.evidence, vec!["https://e/1", "https://e/2"]);
        // Notes alone do not change the source.
        m.apply(
            ManualUpdate {
                notes: Some("n".into()),
                ..Default::default()
            },
            at(4),
        );
        assert_eq!(m.testing_source, TestingSource::Automatic);
    }

    #[test]
    fn scope_parts_round_trip() {
        for s in [
            InstanceScope::Tenant("t".into()),
            InstanceScope::Group("g".into()),
        ] {
            assert_eq!(InstanceScope::from_parts(s.kind(), s.id()), Some(s.clone()));
        }
        assert_eq!(InstanceScope::from_parts("x", "y"), None);
    }
}
