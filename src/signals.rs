//! Observations -> signals: normalise what a connector saw into namespaced facts.
//!
//! Pure: no IO, no clock (the observation time is passed in), cannot fail. The key table is
//! `docs/signals.md`; every key produced here must be listed there.

use chrono::{DateTime, Utc};
use postured_connectors::msgraph::MsGraphSnapshot;
use postured_connectors::msgraph::model::{
    BuiltInControl, ClientAppType, ConditionalAccessPolicy, PolicyState, SecureScore,
    SecureScoreControlProfile, SecurityDefaultsPolicy, SensitivityLabel, UserRegistrationDetails,
    UserType,
};
use postured_connectors::{CollectionError, Observations};
use serde::{Deserialize, Serialize};

/// A signal's value. Serialised untagged: `true`, `0.8`, `"enabled"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalValue {
    /// A flag, e.g. `msgraph.security_defaults.enabled`.
    Bool(bool),
    /// A count, ratio or score (ratios are in [0, 1]).
    Number(f64),
    /// A label, e.g. a Secure Score control's title or state.
    Text(String),
}

/// One normalised fact about a tenant: `(key, value, observed_at, expires_at)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Namespaced key, e.g. `msgraph.mfa.registered_ratio` (see `docs/signals.md`).
    pub key: String,
    /// Observed value.
    pub value: SignalValue,
    /// When the connector observed it (poll start).
    pub observed_at: DateTime<Utc>,
    /// After this instant the value is stale and no longer decides a test status.
    pub expires_at: DateTime<Utc>,
}

/// A signal namespace that a poll could not collect, e.g. prefix `msgraph.mfa.` after a 403.
///
/// Rules whose signals are missing under this prefix become `could_not_be_detected` with this
/// reason; the previous good signals stay in force until they expire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalGap {
    /// Key prefix the failed endpoint would have produced, ending in `.`.
    pub prefix: String,
    /// Error kind (`forbidden`, `throttled`, ... from the connector's `ErrorKind::as_str`).
    pub kind: String,
    /// Secret-free detail, e.g. `403 Authorization_RequestDenied on /reports/...`.
    pub reason: String,
}

/// Everything one poll contributed: fresh signals plus the namespaces it could not collect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalBatch {
    /// Signals observed in this poll.
    pub signals: Vec<Signal>,
    /// Namespaces that failed in this poll.
    pub gaps: Vec<SignalGap>,
}

/// Normalise one poll's observations into signals (keys and gap prefixes exactly as in
/// `docs/signals.md`). Every signal gets `observed_at` / `expires_at`; a failed endpoint
/// becomes a gap on its prefix (a token failure: one gap on `msgraph.`); a ratio whose
/// denominator is 0 is omitted.
pub fn from_observations(
    obs: &Observations,
    observed_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> SignalBatch {
    let mut b = Builder {
        batch: SignalBatch::default(),
        observed_at,
        expires_at,
    };
    match obs {
        Observations::MsGraph(s) => msgraph(&mut b, s),
    }
    b.batch
}

/// Accumulates signals and gaps with the poll's timestamps.
struct Builder {
    batch: SignalBatch,
    observed_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Builder {
    fn push(&mut self, key: String, value: SignalValue) {
        self.batch.signals.push(Signal {
            key,
            value,
            observed_at: self.observed_at,
            expires_at: self.expires_at,
        });
    }

    fn num(&mut self, key: impl Into<String>, v: f64) {
        self.push(key.into(), SignalValue::Number(v));
    }

    fn count(&mut self, key: impl Into<String>, n: usize) {
        self.num(key, n as f64);
    }

    fn flag(&mut self, key: impl Into<String>, v: bool) {
        self.push(key.into(), SignalValue::Bool(v));
    }

    fn text(&mut self, key: impl Into<String>, v: impl Into<String>) {
        self.push(key.into(), SignalValue::Text(v.into()));
    }

    /// `num / den`, omitted when `den == 0`.
    fn ratio(&mut self, key: impl Into<String>, num: usize, den: usize) {
        if den > 0 {
            self.num(key, num as f64 / den as f64);
        }
    }

    /// Record a gap; one gap per prefix (reasons of several endpoints are joined).
    fn gap(&mut self, prefix: &str, e: &CollectionError) {
        let reason = gap_reason(e);
        if let Some(g) = self.batch.gaps.iter_mut().find(|g| g.prefix == prefix) {
            g.reason = format!("{}; {reason}", g.reason);
            return;
        }
        self.batch.gaps.push(SignalGap {
            prefix: prefix.to_owned(),
            kind: e.kind.as_str().to_owned(),
            reason,
        });
    }
}

/// `403 Authorization_RequestDenied on /reports/...: detail` (parts omitted when unknown).
fn gap_reason(e: &CollectionError) -> String {
    let mut head = Vec::new();
    if let Some(s) = e.status {
        head.push(s.to_string());
    }
    if let Some(c) = &e.code {
        head.push(c.clone());
    }
    if head.is_empty() {
        head.push(e.kind.as_str().to_owned());
    }
    format!("{} on {}: {}", head.join(" "), e.endpoint, e.message)
}

const SECURESCORE: &str = "msgraph.securescore.";
const MFA: &str = "msgraph.mfa.";
const CA: &str = "msgraph.ca.";
const SECURITY_DEFAULTS: &str = "msgraph.security_defaults.";
const LABELS: &str = "msgraph.labels.";

fn msgraph(b: &mut Builder, s: &MsGraphSnapshot) {
    if let Some(e) = s.token_error() {
        b.gap("msgraph.", e);
        return;
    }
    match &s.secure_score {
        Ok(Some(score)) => secure_score(b, score),
        Ok(None) => {}
        Err(e) => b.gap(SECURESCORE, e),
    }
    match &s.control_profiles {
        Ok(profiles) => control_profiles(b, profiles),
        Err(e) => b.gap(SECURESCORE, e),
    }
    match &s.registration_details {
        Ok(users) => mfa(b, users),
        Err(e) => b.gap(MFA, e),
    }
    match &s.conditional_access {
        Ok(policies) => conditional_access(b, policies),
        Err(e) => b.gap(CA, e),
    }
    match &s.security_defaults {
        Ok(p) => security_defaults(b, p),
        Err(e) => b.gap(SECURITY_DEFAULTS, e),
    }
    match &s.sensitivity_labels {
        Ok(labels) => sensitivity_labels(b, labels),
        Err(e) => b.gap(LABELS, e),
    }
}

fn secure_score(b: &mut Builder, s: &SecureScore) {
    b.num("msgraph.securescore.current_score", s.current_score);
    b.num("msgraph.securescore.max_score", s.max_score);
    if s.max_score > 0.0 {
        b.num("msgraph.securescore.ratio", s.current_score / s.max_score);
    }
    if let Some(n) = s.licensed_user_count {
        b.num("msgraph.securescore.licensed_user_count", n as f64);
    }
    if let Some(n) = s.active_user_count {
        b.num("msgraph.securescore.active_user_count", n as f64);
    }
    for c in &s.control_scores {
        if let Some(score) = c.score {
            b.num(
                format!("{SECURESCORE}controls.{}.score", c.control_name),
                score,
            );
        }
    }
}

fn control_profiles(b: &mut Builder, profiles: &[SecureScoreControlProfile]) {
    for p in profiles {
        let k = |f: &str| format!("{SECURESCORE}controls.{}.{f}", p.id);
        if let Some(m) = p.max_score {
            b.num(k("max_score"), m);
        }
        if let Some(t) = &p.title {
            b.text(k("title"), t.clone());
        }
        if let Some(c) = &p.control_category {
            b.text(k("category"), c.clone());
        }
        if let Some(state) = p.latest_state() {
            b.text(k("state"), state.as_str().to_ascii_lowercase());
        }
        if let Some(d) = p.deprecated {
            b.flag(k("deprecated"), d);
        }
    }
}

fn mfa(b: &mut Builder, users: &[UserRegistrationDetails]) {
    let total = users.len();
    let count =
        |f: &dyn Fn(&UserRegistrationDetails) -> bool| users.iter().filter(|u| f(u)).count();
    let registered = count(&|u| u.is_mfa_registered);
    b.count("msgraph.mfa.users_total", total);
    b.count("msgraph.mfa.registered_users", registered);
    b.ratio("msgraph.mfa.registered_ratio", registered, total);
    b.ratio(
        "msgraph.mfa.capable_ratio",
        count(&|u| u.is_mfa_capable),
        total,
    );

    let members: Vec<_> = users
        .iter()
        .filter(|u| u.user_type == UserType::Member)
        .collect();
    b.count("msgraph.mfa.members_total", members.len());
    b.ratio(
        "msgraph.mfa.members_registered_ratio",
        members.iter().filter(|u| u.is_mfa_registered).count(),
        members.len(),
    );

    let admins: Vec<_> = users.iter().filter(|u| u.is_admin == Some(true)).collect();
    b.count("msgraph.mfa.admins_total", admins.len());
    b.ratio(
        "msgraph.mfa.admins_registered_ratio",
        admins.iter().filter(|u| u.is_mfa_registered).count(),
        admins.len(),
    );
    b.ratio(
        "msgraph.mfa.sspr_registered_ratio",
        count(&|u| u.is_sspr_registered),
        total,
    );
    b.ratio(
        "msgraph.mfa.passwordless_capable_ratio",
        count(&|u| u.is_passwordless_capable),
        total,
    );
}

fn conditional_access(b: &mut Builder, policies: &[ConditionalAccessPolicy]) {
    let enabled: Vec<_> = policies.iter().filter(|p| p.is_enabled()).collect();
    let mfa: Vec<_> = enabled.iter().filter(|p| p.requires_mfa()).collect();
    b.count("msgraph.ca.policies_total", policies.len());
    b.count("msgraph.ca.enabled_total", enabled.len());
    b.count(
        "msgraph.ca.report_only_total",
        policies
            .iter()
            .filter(|p| p.state == PolicyState::ReportOnly)
            .count(),
    );
    b.count("msgraph.ca.mfa_policies_total", mfa.len());
    b.flag(
        "msgraph.ca.mfa_all_users",
        mfa.iter()
            .any(|p| p.users().all_users() && p.applications().all_apps()),
    );
    b.flag(
        "msgraph.ca.mfa_admins",
        mfa.iter().any(|p| {
            let u = p.users();
            u.all_users() || !u.include_roles.is_empty()
        }),
    );
    b.flag(
        "msgraph.ca.legacy_auth_blocked",
        enabled.iter().any(|p| {
            let apps = p
                .conditions
                .as_ref()
                .map(|c| c.client_app_types.as_slice())
                .unwrap_or_default();
            p.grants(&BuiltInControl::Block)
                && p.users().all_users()
                && apps.contains(&ClientAppType::ExchangeActiveSync)
                && apps.contains(&ClientAppType::OtherClients)
        }),
    );
    b.count(
        "msgraph.ca.risk_policies_total",
        enabled
            .iter()
            .filter(|p| {
                p.conditions.as_ref().is_some_and(|c| {
                    !c.sign_in_risk_levels.is_empty() || !c.user_risk_levels.is_empty()
                })
            })
            .count(),
    );
    b.flag(
        "msgraph.ca.compliant_device_required",
        enabled.iter().any(|p| {
            p.grants(&BuiltInControl::CompliantDevice)
                || p.grants(&BuiltInControl::DomainJoinedDevice)
        }),
    );
}

fn security_defaults(b: &mut Builder, p: &SecurityDefaultsPolicy) {
    b.flag("msgraph.security_defaults.enabled", p.is_enabled);
}

fn sensitivity_labels(b: &mut Builder, labels: &[SensitivityLabel]) {
    let all: Vec<_> = labels.iter().flat_map(|l| l.flatten()).collect();
    let protected = all
        .iter()
        .filter(|l| l.has_protection == Some(true))
        .count();
    b.count("msgraph.labels.total", all.len());
    b.count("msgraph.labels.protected_total", protected);
    b.flag("msgraph.labels.protection_enabled", protected > 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use postured_connectors::ErrorKind;
    use postured_connectors::http::{ODataPage, parse_body};
    use serde::de::DeserializeOwned;

    fn fixture(name: &str) -> Vec<u8> {
        let p = format!(
            "{}/connectors/fixtures/msgraph/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn list<T: DeserializeOwned>(name: &str) -> Vec<T> {
        parse_body::<ODataPage<T>>("/t", &fixture(name))
            .unwrap()
            .value
    }

    /// A snapshot built from the official Graph examples.
    fn official() -> MsGraphSnapshot {
        MsGraphSnapshot {
            secure_score: Ok(list("secureScores-list.json").into_iter().next()),
            control_profiles: Ok(list("secureScoreControlProfiles-list.json")),
            registration_details: Ok(list("userRegistrationDetails-list.json")),
            conditional_access: Ok(list("conditionalAccessPolicies-list.json")),
            security_defaults: Ok(parse_body(
                "/t",
                &fixture("identitySecurityDefaultsEnforcementPolicy-get.json"),
            )
            .unwrap()),
            sensitivity_labels: Ok(list("sensitivityLabels-list-v1.json")),
        }
    }

    fn times() -> (DateTime<Utc>, DateTime<Utc>) {
        let t = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        (t, t + chrono::Duration::hours(3))
    }

    fn run(s: MsGraphSnapshot) -> SignalBatch {
        let (o, e) = times();
        from_observations(&Observations::MsGraph(Box::new(s)), o, e)
    }

    fn get<'a>(b: &'a SignalBatch, key: &str) -> Option<&'a SignalValue> {
        let mut hits = b.signals.iter().filter(|s| s.key == key);
        let first = hits.next().map(|s| &s.value);
        assert!(hits.next().is_none(), "duplicate key {key}");
        first
    }

    fn num(b: &SignalBatch, key: &str) -> f64 {
        match get(b, key) {
            Some(SignalValue::Number(n)) => *n,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn flag(b: &SignalBatch, key: &str) -> bool {
        match get(b, key) {
            Some(SignalValue::Bool(v)) => *v,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn text<'a>(b: &'a SignalBatch, key: &str) -> &'a str {
        match get(b, key) {
            Some(SignalValue::Text(v)) => v,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn err(
        kind: ErrorKind,
        endpoint: &str,
        status: Option<u16>,
        code: Option<&str>,
    ) -> CollectionError {
        CollectionError {
            kind,
            endpoint: endpoint.into(),
            status,
            code: code.map(Into::into),
            message: "detail".into(),
            retry_after: None,
        }
    }

    #[test]
    fn official_examples_give_documented_values() {
        let b = run(official());
        assert!(b.gaps.is_empty(), "{:?}", b.gaps);
        let (o, e) = times();
        assert!(
            b.signals
                .iter()
                .all(|s| s.observed_at == o && s.expires_at == e)
        );

        assert_eq!(num(&b, "msgraph.securescore.current_score"), 387.0);
        assert_eq!(num(&b, "msgraph.securescore.max_score"), 697.0);
        assert!((num(&b, "msgraph.securescore.ratio") - 387.0 / 697.0).abs() < 1e-12);
        assert_eq!(num(&b, "msgraph.securescore.licensed_user_count"), 100.0);
        assert_eq!(num(&b, "msgraph.securescore.active_user_count"), 0.0);
        assert_eq!(
            num(&b, "msgraph.securescore.controls.DLPEnabled.score"),
            20.0
        );
        assert_eq!(
            num(&b, "msgraph.securescore.controls.DLPEnabled.max_score"),
            20.0
        );
        assert_eq!(num(&b, "msgraph.securescore.controls.AdminMFA.score"), 35.0);
        assert_eq!(
            text(&b, "msgraph.securescore.controls.DLPEnabled.title"),
            "Apply Data Loss Prevention policies"
        );
        assert_eq!(
            text(&b, "msgraph.securescore.controls.DLPEnabled.category"),
            "Data"
        );
        assert_eq!(
            text(&b, "msgraph.securescore.controls.DLPEnabled.state"),
            "default"
        );
        assert!(!flag(
            &b,
            "msgraph.securescore.controls.DLPEnabled.deprecated"
        ));

        // 2 of 3 users registered; Bianca (member) and Alex (member) registered, Allan (guest) not
        assert_eq!(num(&b, "msgraph.mfa.users_total"), 3.0);
        assert_eq!(num(&b, "msgraph.mfa.registered_users"), 2.0);
        assert!((num(&b, "msgraph.mfa.registered_ratio") - 2.0 / 3.0).abs() < 1e-12);
        assert!((num(&b, "msgraph.mfa.capable_ratio") - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(num(&b, "msgraph.mfa.members_total"), 2.0);
        assert_eq!(num(&b, "msgraph.mfa.members_registered_ratio"), 1.0);
        assert_eq!(num(&b, "msgraph.mfa.admins_total"), 0.0);
        assert_eq!(
            get(&b, "msgraph.mfa.admins_registered_ratio"),
            None,
            "0 admins: omitted"
        );
        assert!((num(&b, "msgraph.mfa.sspr_registered_ratio") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(num(&b, "msgraph.mfa.passwordless_capable_ratio"), 0.0);

        // both example policies are disabled
        assert_eq!(num(&b, "msgraph.ca.policies_total"), 2.0);
        assert_eq!(num(&b, "msgraph.ca.enabled_total"), 0.0);
        assert_eq!(num(&b, "msgraph.ca.report_only_total"), 0.0);
        assert_eq!(num(&b, "msgraph.ca.mfa_policies_total"), 0.0);
        assert!(!flag(&b, "msgraph.ca.mfa_all_users"));
        assert!(!flag(&b, "msgraph.ca.mfa_admins"));
        assert!(!flag(&b, "msgraph.ca.legacy_auth_blocked"));
        assert_eq!(num(&b, "msgraph.ca.risk_policies_total"), 0.0);
        assert!(!flag(&b, "msgraph.ca.compliant_device_required"));

        assert!(flag(&b, "msgraph.security_defaults.enabled"));
        assert_eq!(num(&b, "msgraph.labels.total"), 1.0);
        assert_eq!(num(&b, "msgraph.labels.protected_total"), 0.0);
        assert!(!flag(&b, "msgraph.labels.protection_enabled"));
    }

    #[test]
    fn enabled_policies_drive_ca_signals() {
        let mut policies: Vec<ConditionalAccessPolicy> =
            list("conditionalAccessPolicies-list.json");
        let mut get_one: ConditionalAccessPolicy =
            parse_body("/t", &fixture("conditionalAccessPolicy-get.json")).unwrap();
        get_one.state = PolicyState::Enabled; // mfa for 3 roles, sign-in risk, compliant device
        policies.push(get_one);
        let extra = br#"{"value": [
          {"id": "strength", "state": "enabled",
           "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
           "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "x"}}},
          {"id": "legacy", "state": "enabled",
           "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]},
                          "clientAppTypes": ["exchangeActiveSync", "other"]},
           "grantControls": {"operator": "OR", "builtInControls": ["block"]}},
          {"id": "ro", "state": "enabledForReportingButNotEnforced",
           "conditions": {"users": {"includeUsers": ["All"]}, "userRiskLevels": ["high"]},
           "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}]}"#;
        policies.extend(
            parse_body::<ODataPage<ConditionalAccessPolicy>>("/t", extra)
                .unwrap()
                .value,
        );
        let b = run(MsGraphSnapshot {
            conditional_access: Ok(policies),
            ..official()
        });
        assert_eq!(num(&b, "msgraph.ca.policies_total"), 6.0);
        assert_eq!(num(&b, "msgraph.ca.enabled_total"), 3.0);
        assert_eq!(num(&b, "msgraph.ca.report_only_total"), 1.0);
        assert_eq!(num(&b, "msgraph.ca.mfa_policies_total"), 2.0);
        assert!(
            flag(&b, "msgraph.ca.mfa_all_users"),
            "authenticationStrength counts as MFA"
        );
        assert!(flag(&b, "msgraph.ca.mfa_admins"));
        assert!(flag(&b, "msgraph.ca.legacy_auth_blocked"));
        assert_eq!(
            num(&b, "msgraph.ca.risk_policies_total"),
            1.0,
            "report-only not counted"
        );
        assert!(flag(&b, "msgraph.ca.compliant_device_required"));
    }

    #[test]
    fn endpoint_errors_become_gaps_and_other_signals_stay() {
        let s = MsGraphSnapshot {
            registration_details: Err(err(
                ErrorKind::Forbidden,
                "/reports/authenticationMethods/userRegistrationDetails",
                Some(403),
                Some("Authorization_RequestDenied"),
            )),
            sensitivity_labels: Err(err(
                ErrorKind::Throttled,
                "/security/dataSecurityAndGovernance/sensitivityLabels",
                Some(429),
                None,
            )),
            ..official()
        };
        let b = run(s);
        assert_eq!(b.gaps.len(), 2);
        assert_eq!(b.gaps[0].prefix, "msgraph.mfa.");
        assert_eq!(b.gaps[0].kind, "forbidden");
        assert_eq!(
            b.gaps[0].reason,
            "403 Authorization_RequestDenied on /reports/authenticationMethods/userRegistrationDetails: detail"
        );
        assert_eq!(b.gaps[1].prefix, "msgraph.labels.");
        assert_eq!(b.gaps[1].kind, "throttled");
        assert!(b.signals.iter().all(|s| !s.key.starts_with("msgraph.mfa.")));
        assert!(
            b.signals
                .iter()
                .all(|s| !s.key.starts_with("msgraph.labels."))
        );
        assert!(flag(&b, "msgraph.security_defaults.enabled"));
        assert_eq!(num(&b, "msgraph.securescore.current_score"), 387.0);
    }

    #[test]
    fn both_secure_score_endpoints_failing_is_one_gap() {
        let s = MsGraphSnapshot {
            secure_score: Err(err(
                ErrorKind::Forbidden,
                "/security/secureScores",
                Some(403),
                None,
            )),
            control_profiles: Err(err(
                ErrorKind::Timeout,
                "/security/secureScoreControlProfiles",
                None,
                None,
            )),
            ..official()
        };
        let b = run(s);
        assert_eq!(b.gaps.len(), 1);
        assert_eq!(b.gaps[0].prefix, "msgraph.securescore.");
        assert!(
            b.gaps[0].reason.contains("secureScores")
                && b.gaps[0]
                    .reason
                    .contains("timeout on /security/secureScoreControlProfiles")
        );
        assert!(
            b.signals
                .iter()
                .all(|s| !s.key.starts_with("msgraph.securescore."))
        );
    }

    #[test]
    fn token_failure_gaps_the_whole_namespace() {
        let e = CollectionError {
            kind: ErrorKind::Unauthorized,
            endpoint: postured_connectors::msgraph::auth::TOKEN_ENDPOINT.into(),
            status: Some(401),
            code: Some("invalid_client AADSTS7000222".into()),
            message: "client secret has expired".into(),
            retry_after: None,
        };
        let b = run(MsGraphSnapshot::all_failed(e));
        assert!(b.signals.is_empty());
        assert_eq!(b.gaps.len(), 1);
        assert_eq!(b.gaps[0].prefix, "msgraph.");
        assert_eq!(b.gaps[0].kind, "unauthorized");
        assert!(
            b.gaps[0]
                .reason
                .starts_with("401 invalid_client AADSTS7000222 on /oauth2/v2.0/token")
        );
    }

    #[test]
    fn zero_denominators_omit_ratios() {
        let s = MsGraphSnapshot {
            registration_details: Ok(Vec::new()),
            secure_score: Ok(Some(
                parse_body("/t", br#"{"currentScore": 0, "maxScore": 0}"#).unwrap(),
            )),
            ..official()
        };
        let b = run(s);
        assert_eq!(num(&b, "msgraph.mfa.users_total"), 0.0);
        for k in [
            "msgraph.mfa.registered_ratio",
            "msgraph.mfa.capable_ratio",
            "msgraph.mfa.members_registered_ratio",
            "msgraph.mfa.sspr_registered_ratio",
            "msgraph.mfa.passwordless_capable_ratio",
            "msgraph.securescore.ratio",
        ] {
            assert_eq!(get(&b, k), None, "{k}");
        }
    }

    #[test]
    fn nested_protected_labels_are_counted() {
        let labels = br#"{"value": [{"name": "Confidential", "hasProtection": false,
            "sublabels": [{"name": "Encrypted", "hasProtection": true}, {"name": "Open"}]}]}"#;
        let s = MsGraphSnapshot {
            sensitivity_labels: Ok(parse_body::<ODataPage<SensitivityLabel>>("/t", labels)
                .unwrap()
                .value),
            ..official()
        };
        let b = run(s);
        assert_eq!(num(&b, "msgraph.labels.total"), 3.0);
        assert_eq!(num(&b, "msgraph.labels.protected_total"), 1.0);
        assert!(flag(&b, "msgraph.labels.protection_enabled"));
    }

    /// Every key produced (with the official examples plus every CA/label branch) matches a
    /// row of `docs/signals.md`; every gap prefix is listed there too.
    #[test]
    fn every_emitted_key_is_documented() {
        let doc = include_str!("../docs/signals.md");
        let patterns: Vec<Vec<&str>> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|l| {
                l.split('|')
                    .nth(1)
                    .unwrap_or_default()
                    .split('`')
                    .skip(1)
                    .step_by(2)
            })
            .map(|k| k.split('.').collect())
            .collect();
        let documented = |key: &str| {
            let segs: Vec<&str> = key.split('.').collect();
            patterns.iter().any(|p| {
                p.len() == segs.len()
                    && p.iter()
                        .zip(&segs)
                        .all(|(p, s)| p.starts_with('<') || p == s)
            })
        };
        let b = run(official());
        assert!(b.signals.len() > 30);
        for s in &b.signals {
            assert!(documented(&s.key), "undocumented key {}", s.key);
        }
        for prefix in ["msgraph.", SECURESCORE, MFA, CA, SECURITY_DEFAULTS, LABELS] {
            assert!(
                doc.contains(&format!("`{prefix}`")),
                "gap prefix {prefix} not documented"
            );
        }
    }
}
