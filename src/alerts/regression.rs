//! Regression detection: a per-instance debounce state machine over successive observations of
//! an action's test status and credit (SCORING.md "Regressions").
//!
//! Pure: no IO, no clock (every observation carries its instant), cannot fail. The state of every
//! instance ([`InstanceState`]) is persisted by the store in the same transaction as the poll, so
//! a restart neither forgets a pending drop nor repeats an alert.
//!
//! Rules, per (tenant, action) instance:
//!
//! - The first scored observation sets the **baseline** credit; no event.
//! - A credit below the baseline is a **pending drop**; it becomes one [`EventKind::Regression`]
//!   when it persists for the debounce window (`N` consecutive scored observations, default 2).
//!   A return to the baseline inside the window clears it: flapping produces nothing.
//! - While a regression is open, the first observation whose credit is back at the baseline is
//!   one [`EventKind::Recovery`] (recovery is not debounced; re-regressing is).
//! - A credit above the baseline (with no pending drop and no open regression) raises it.
//! - `could_not_be_detected` is never a regression and neither starts nor ends a regression
//!   window: the pending count and an open regression are frozen while it lasts. It opens a
//!   condition instead, chosen from the result's typed cause ([`Undetected`], never from the
//!   reason text): [`EventKind::Stale`] when a signal expired ([`Undetected::Stale`], or a
//!   [`Undetected::Gap`] whose last value expired), [`EventKind::CollectionError`] for a
//!   collection gap with no value. Other causes (a signal that was never produced, a rule
//!   error, an undecided result) raise nothing. The condition ends with
//!   [`EventKind::StaleCleared`] / [`EventKind::CollectionRecovered`] when the action is scored
//!   again.
//! - `out_of_scope` leaves the score: it clears a pending drop and the baseline, and ends an
//!   open regression with a recovery (no points are lost any more).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::evaluation::{ActionResult, Risk, TenantEvaluation, TestStatus, Undetected};
use crate::signals::SignalValue;

/// Default debounce window: consecutive observations a credit drop must persist.
pub const DEFAULT_DEBOUNCE_OBSERVATIONS: u32 = 2;

/// Credits closer than this are equal (summation noise).
const CREDIT_EPSILON: f64 = 1e-9;

/// What an event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A credit drop persisted for the debounce window.
    Regression,
    /// The credit of a regressed instance returned to its baseline.
    Recovery,
    /// The action became `could_not_be_detected` because a signal expired.
    Stale,
    /// A stale action is scored again.
    StaleCleared,
    /// The action became `could_not_be_detected` because its signals could not be collected
    /// (a collection gap, no value to fall back on).
    CollectionError,
    /// An action with a collection error is scored again.
    CollectionRecovered,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 6] = [
        EventKind::Regression,
        EventKind::Recovery,
        EventKind::Stale,
        EventKind::StaleCleared,
        EventKind::CollectionError,
        EventKind::CollectionRecovered,
    ];

    /// Stable snake_case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Regression => "regression",
            EventKind::Recovery => "recovery",
            EventKind::Stale => "stale",
            EventKind::StaleCleared => "stale_cleared",
            EventKind::CollectionError => "collection_error",
            EventKind::CollectionRecovered => "collection_recovered",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The episode (alert) this kind opens or closes: `regression`, `stale` or
    /// `collection_error`. A firing event and its resolution share it.
    pub fn family(self) -> &'static str {
        match self {
            EventKind::Regression | EventKind::Recovery => "regression",
            EventKind::Stale | EventKind::StaleCleared => "stale",
            EventKind::CollectionError | EventKind::CollectionRecovered => "collection_error",
        }
    }

    /// `true` for the kinds that end an episode (the alert resolves).
    pub fn is_resolution(self) -> bool {
        matches!(
            self,
            EventKind::Recovery | EventKind::StaleCleared | EventKind::CollectionRecovered
        )
    }

    /// Alert name shown by Alertmanager and the chat notifiers.
    pub fn alert_name(self) -> &'static str {
        match self.family() {
            "regression" => "PosturedActionRegression",
            "stale" => "PosturedSignalStale",
            _ => "PosturedCollectionError",
        }
    }
}

/// Alert severity, used for routing and as the `severity` label.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A low-risk failure.
    Info,
    /// A medium-risk failure, a stale signal or a collection error.
    Warning,
    /// A high-risk failure.
    Critical,
}

impl Severity {
    /// Stable name: `info`, `warning`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Parse a name.
    pub fn parse(s: &str) -> Option<Self> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// Severity of a regression into `status`: the risk of a failed status, else the action's
    /// catalog risk (high -> critical, medium -> warning, low -> info).
    pub fn of_regression(status: TestStatus, action_risk: Risk) -> Self {
        let risk = match status {
            TestStatus::FailedHighRisk => Risk::High,
            TestStatus::FailedMediumRisk => Risk::Medium,
            TestStatus::FailedLowRisk => Risk::Low,
            _ => action_risk,
        };
        match risk {
            Risk::High => Severity::Critical,
            Risk::Medium => Severity::Warning,
            Risk::Low => Severity::Info,
        }
    }
}

/// Which undetectable condition an instance is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// A signal the rule needs expired.
    Stale,
    /// Collection gap.
    CollectionError,
}

impl Condition {
    /// Classify the cause of a `could_not_be_detected` result: an expired value (stale, or a
    /// collection gap whose last value expired) is staleness; a collection gap with no value
    /// is a collection error; anything else (a signal that was never produced, a rule error,
    /// an undecided result, no cause at all) is neither and raises no event.
    pub fn classify(cause: Option<&Undetected>) -> Option<Condition> {
        match cause? {
            Undetected::Stale { .. }
            | Undetected::Gap {
                expired: Some(_), ..
            } => Some(Condition::Stale),
            Undetected::Gap { expired: None, .. } => Some(Condition::CollectionError),
            Undetected::Missing { .. }
            | Undetected::NotANumber { .. }
            | Undetected::RuleError { .. }
            | Undetected::Aborted
            | Undetected::Undecided { .. }
            | Undetected::NoRule => None,
        }
    }

    fn opened(self) -> EventKind {
        match self {
            Condition::Stale => EventKind::Stale,
            Condition::CollectionError => EventKind::CollectionError,
        }
    }

    fn closed(self) -> EventKind {
        match self {
            Condition::Stale => EventKind::StaleCleared,
            Condition::CollectionError => EventKind::CollectionRecovered,
        }
    }
}

/// An open regression episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenRegression {
    /// First observation of the drop (the episode start, part of the dedup key).
    pub started_at: DateTime<Utc>,
    /// When the window confirmed it.
    pub confirmed_at: DateTime<Utc>,
    /// Status before the drop.
    pub from_status: Option<TestStatus>,
    /// Credit before the drop (the baseline a recovery must reach).
    pub from_credit: f64,
    /// Severity the alert fired with (its resolution carries the same labels).
    pub severity: Severity,
    /// Points lost when it was confirmed.
    pub points_lost: f64,
}

/// An open staleness or collection-error condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenCondition {
    /// Which condition.
    pub condition: Condition,
    /// When it began (part of the dedup key).
    pub since: DateTime<Utc>,
    /// Status before it.
    pub from_status: Option<TestStatus>,
    /// Credit before it.
    pub from_credit: Option<f64>,
}

/// The detector's persisted state of one action instance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceState {
    /// Settled credit drops are measured against; `None` before the first scored observation
    /// (and after the action left the scope).
    pub baseline_credit: Option<f64>,
    /// Status at the baseline.
    pub baseline_status: Option<TestStatus>,
    /// Consecutive scored observations below the baseline (0 when none).
    pub pending: u32,
    /// First observation of the pending drop.
    pub pending_since: Option<DateTime<Utc>>,
    /// The open regression, if any.
    pub regression: Option<OpenRegression>,
    /// The open staleness / collection-error condition, if any.
    pub condition: Option<OpenCondition>,
    /// Last status observed (for `old_status` of condition events).
    pub last_status: Option<TestStatus>,
    /// Last credit observed.
    pub last_credit: Option<f64>,
}

/// One detected event of one action instance. Everything an alert needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertEvent {
    /// Tenant id.
    pub tenant: String,
    /// Action id.
    pub action_id: String,
    /// Action title.
    pub title: String,
    /// What happened.
    pub kind: EventKind,
    /// Severity (identical for an episode's firing and resolution).
    pub severity: Severity,
    /// The observation that produced the event.
    pub at: DateTime<Utc>,
    /// Start of the episode (first drop, or start of the condition).
    pub episode_started_at: DateTime<Utc>,
    /// Status before the episode.
    pub old_status: Option<TestStatus>,
    /// Status now.
    pub new_status: TestStatus,
    /// Credit before the episode.
    pub old_credit: Option<f64>,
    /// Credit now.
    pub new_credit: f64,
    /// Points the episode costs: for a regression the points lost, for a recovery the loss that
    /// ended, for a condition the points the undetectable status withholds.
    pub points_lost: f64,
    /// Change of the tenant's score ratio the event stands for (negative for a regression,
    /// positive for a recovery).
    pub score_delta: f64,
    /// The result's reason (failure detail, stale or collection error text).
    pub reason: Option<String>,
    /// Signals the rule read, with their values.
    #[schema(value_type = Vec<(String, serde_json::Value)>)]
    pub signals: Vec<(Arc<str>, SignalValue)>,
    /// Framework controls of the action (`iso27001:A.8.5`, `nist_800_53:IA-2(1)`, ...).
    pub controls: Vec<String>,
}

impl AlertEvent {
    /// The alert this event belongs to: `tenant/action/family` (firing and resolution share
    /// it).
    pub fn alert_key(&self) -> String {
        format!("{}/{}/{}", self.tenant, self.action_id, self.kind.family())
    }

    /// Stable de-duplication key: `tenant/action/kind/episode-start-millis`. The same event
    /// delivered twice carries the same key.
    pub fn dedup_key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.tenant,
            self.action_id,
            self.kind.as_str(),
            self.episode_started_at.timestamp_millis()
        )
    }

    /// One-line human summary.
    pub fn summary(&self) -> String {
        let name = if self.title.is_empty() {
            &self.action_id
        } else {
            &self.title
        };
        match self.kind {
            EventKind::Regression => format!(
                "{}: \"{name}\" regressed from {} to {} ({:.1} points lost)",
                self.tenant,
                self.old_status.map_or("unknown", |s| s.as_str()),
                self.new_status.as_str(),
                self.points_lost
            ),
            EventKind::Recovery => format!(
                "{}: \"{name}\" recovered ({})",
                self.tenant,
                self.new_status.as_str()
            ),
            EventKind::Stale => format!(
                "{}: \"{name}\" cannot be tested, its signals are stale",
                self.tenant
            ),
            EventKind::StaleCleared => {
                format!("{}: \"{name}\" has fresh signals again", self.tenant)
            }
            EventKind::CollectionError => format!(
                "{}: \"{name}\" cannot be tested, signals could not be collected",
                self.tenant
            ),
            EventKind::CollectionRecovered => {
                format!("{}: \"{name}\" is collected again", self.tenant)
            }
        }
    }
}

/// What the detector needs from the catalog about an action.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionMeta {
    /// Risk of a plain failure.
    pub risk: Risk,
    /// Framework controls (`framework:id`).
    pub controls: Vec<String>,
}

/// Debounce settings: a global window and per-action overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Debounce {
    /// Window of every action without an override (at least 1).
    pub observations: u32,
    /// Per-action windows.
    pub per_action: HashMap<String, u32>,
}

impl Default for Debounce {
    fn default() -> Self {
        Self {
            observations: DEFAULT_DEBOUNCE_OBSERVATIONS,
            per_action: HashMap::new(),
        }
    }
}

impl Debounce {
    /// The window of one action.
    pub fn window(&self, action: &str) -> u32 {
        self.per_action
            .get(action)
            .copied()
            .unwrap_or(self.observations)
            .max(1)
    }
}

/// Result of feeding one evaluation to the detector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detection {
    /// Events, in action order.
    pub events: Vec<AlertEvent>,
    /// New states of the instances whose state changed.
    pub states: Vec<(String, InstanceState)>,
}

/// Feed one tenant evaluation to the detector. `states` are the instances' current states
/// (missing = never observed); `meta` looks up catalog data of an action.
pub fn detect(
    states: &crate::evaluation::ActionMap<InstanceState>,
    evaluation: &TenantEvaluation,
    debounce: &Debounce,
    meta: &dyn Fn(&str) -> ActionMeta,
) -> Detection {
    let mut out = Detection::default();
    let possible = evaluation.score.points_possible;
    for a in &evaluation.actions {
        let before = states
            .get(a.action_id.as_str())
            .cloned()
            .unwrap_or_default();
        let m = meta(&a.action_id);
        let ctx = Ctx {
            tenant: &evaluation.tenant,
            action: a,
            meta: &m,
            tenant_points_possible: possible,
            at: evaluation.evaluated_at,
        };
        let (after, events) = observe(&before, &ctx, debounce.window(&a.action_id));
        out.events.extend(events);
        if after != before {
            out.states.push((a.action_id.clone(), after));
        }
    }
    out
}

struct Ctx<'a> {
    tenant: &'a str,
    action: &'a ActionResult,
    meta: &'a ActionMeta,
    tenant_points_possible: f64,
    at: DateTime<Utc>,
}

impl Ctx<'_> {
    /// Change of the tenant ratio worth `points`.
    fn ratio_of(&self, points: f64) -> f64 {
        if self.tenant_points_possible > 0.0 {
            points / self.tenant_points_possible
        } else {
            0.0
        }
    }

    /// Points lost going from `from_credit` to the current credit.
    fn points_lost(&self, from_credit: f64) -> f64 {
        ((from_credit - self.action.credit) * self.action.points_possible).max(0.0)
    }

    fn event(&self, kind: EventKind, severity: Severity, episode: Episode) -> AlertEvent {
        let a = self.action;
        AlertEvent {
            tenant: self.tenant.to_owned(),
            action_id: a.action_id.clone(),
            title: a.title.to_string(),
            kind,
            severity,
            at: self.at,
            episode_started_at: episode.started_at,
            old_status: episode.old_status,
            new_status: a.test_status,
            old_credit: episode.old_credit,
            new_credit: a.credit,
            points_lost: episode.points_lost,
            score_delta: episode.score_delta,
            reason: a.reason.clone(),
            signals: a.signals.clone(),
            controls: self.meta.controls.clone(),
        }
    }
}

/// The episode fields of an event.
struct Episode {
    started_at: DateTime<Utc>,
    old_status: Option<TestStatus>,
    old_credit: Option<f64>,
    points_lost: f64,
    score_delta: f64,
}

/// One observation of one instance: the new state and the events it produced.
fn observe(state: &InstanceState, ctx: &Ctx<'_>, window: u32) -> (InstanceState, Vec<AlertEvent>) {
    let a = ctx.action;
    let mut s = state.clone();
    let mut events = Vec::new();

    if a.test_status == TestStatus::CouldNotBeDetected {
        // Not a score observation: the debounce window and an open regression are frozen.
        let current = s.condition.as_ref().map(|c| c.condition);
        let Some(condition) = Condition::classify(a.cause.as_ref()) else {
            // Undetectable for another reason (missing signal, rule error): no event, the open
            // condition (if any) stands.
            return (s, events);
        };
        if current != Some(condition) {
            if let Some(open) = s.condition.take() {
                events.push(close_condition(ctx, &open));
            }
            let open = OpenCondition {
                condition,
                since: ctx.at,
                from_status: s.last_status,
                from_credit: s.last_credit,
            };
            let lost = open.from_credit.map_or(0.0, |c| ctx.points_lost(c));
            events.push(ctx.event(
                condition.opened(),
                Severity::Warning,
                Episode {
                    started_at: open.since,
                    old_status: open.from_status,
                    old_credit: open.from_credit,
                    points_lost: lost,
                    score_delta: -ctx.ratio_of(lost),
                },
            ));
            s.condition = Some(open);
        }
        // Keep the last *scored* status and credit for the next condition's `from`.
        return (s, events);
    }

    if let Some(open) = s.condition.take() {
        events.push(close_condition(ctx, &open));
    }
    s.last_status = Some(a.test_status);
    s.last_credit = Some(a.credit);

    if a.test_status == TestStatus::OutOfScope {
        if let Some(open) = s.regression.take() {
            events.push(recovery(ctx, &open));
        }
        s.baseline_credit = None;
        s.baseline_status = None;
        s.pending = 0;
        s.pending_since = None;
        return (s, events);
    }

    let Some(baseline) = s.baseline_credit else {
        s.baseline_credit = Some(a.credit);
        s.baseline_status = Some(a.test_status);
        return (s, events);
    };

    if let Some(open) = s.regression.clone() {
        if a.credit >= open.from_credit - CREDIT_EPSILON {
            events.push(recovery(ctx, &open));
            s.regression = None;
            s.baseline_credit = Some(a.credit.max(open.from_credit));
            s.baseline_status = Some(a.test_status);
        }
        return (s, events);
    }

    if a.credit < baseline - CREDIT_EPSILON {
        s.pending += 1;
        let since = *s.pending_since.get_or_insert(ctx.at);
        if s.pending >= window {
            let lost = ctx.points_lost(baseline);
            let severity = Severity::of_regression(a.test_status, ctx.meta.risk);
            events.push(ctx.event(
                EventKind::Regression,
                severity,
                Episode {
                    started_at: since,
                    old_status: s.baseline_status,
                    old_credit: Some(baseline),
                    points_lost: lost,
                    score_delta: -ctx.ratio_of(lost),
                },
            ));
            s.regression = Some(OpenRegression {
                started_at: since,
                confirmed_at: ctx.at,
                from_status: s.baseline_status,
                from_credit: baseline,
                severity,
                points_lost: lost,
            });
            s.pending = 0;
            s.pending_since = None;
        }
    } else {
        s.pending = 0;
        s.pending_since = None;
        if a.credit > baseline + CREDIT_EPSILON || s.baseline_status != Some(a.test_status) {
            s.baseline_credit = Some(a.credit.max(baseline));
            s.baseline_status = Some(a.test_status);
        }
    }
    (s, events)
}

fn recovery(ctx: &Ctx<'_>, open: &OpenRegression) -> AlertEvent {
    ctx.event(
        EventKind::Recovery,
        open.severity,
        Episode {
            started_at: open.started_at,
            old_status: open.from_status,
            old_credit: Some(open.from_credit),
            points_lost: open.points_lost,
            score_delta: ctx.ratio_of(open.points_lost),
        },
    )
}

fn close_condition(ctx: &Ctx<'_>, open: &OpenCondition) -> AlertEvent {
    ctx.event(
        open.condition.closed(),
        Severity::Warning,
        Episode {
            started_at: open.since,
            old_status: open.from_status,
            old_credit: open.from_credit,
            points_lost: 0.0,
            score_delta: 0.0,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::{ActionMap, Expiry, ImplementationStatus, ScoreSummary};
    use chrono::TimeZone;

    const P: TestStatus = TestStatus::Passed;
    const F: TestStatus = TestStatus::FailedHighRisk;
    const C: TestStatus = TestStatus::CouldNotBeDetected;
    const O: TestStatus = TestStatus::OutOfScope;

    fn at(i: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap() + chrono::Duration::minutes(i)
    }

    /// Why a result is what it is: a plain detail (the reason of a scored result), or the typed
    /// cause of an undetected one (its reason is the cause's text).
    #[derive(Debug, Clone, Copy)]
    enum Why {
        Detail(&'static str),
        Cause(fn() -> Undetected),
    }

    /// One observation: status, credit, reason (and cause).
    type Obs = (TestStatus, f64, Option<Why>);

    /// A table row: name, window, observations, expected event kinds per observation.
    type Case = (&'static str, u32, Vec<Obs>, Vec<Vec<EventKind>>);

    fn eval(i: i64, (status, credit, why): Obs) -> TenantEvaluation {
        let possible = if status == O { 0.0 } else { 27.0 };
        let (reason, cause) = match why {
            None => (None, None),
            Some(Why::Detail(d)) => (Some(d.to_owned()), None),
            Some(Why::Cause(cause)) => {
                let cause = cause();
                (Some(cause.to_string()), Some(cause))
            }
        };
        TenantEvaluation {
            tenant: "t1".into(),
            evaluated_at: at(i),
            actions: vec![ActionResult {
                action_id: "a".into(),
                title: "Action A".into(),
                category: "Identity".into(),
                solution: "Entra".into(),
                implementation_status: ImplementationStatus::Implemented,
                test_status: status,
                credit,
                points: 27,
                points_achieved: credit * possible,
                points_possible: possible,
                testing_logic: "x".into(),
                reason,
                cause,
                signals: vec![("msgraph.x".into(), SignalValue::Bool(credit > 0.5))],
            }],
            score: ScoreSummary {
                points_achieved: credit * possible,
                points_possible: 54.0,
                ratio: 0.0,
            },
            categories: vec![],
        }
    }

    /// Run a sequence; returns the event kinds per observation and the final state.
    fn run(window: u32, seq: &[Obs]) -> (Vec<Vec<AlertEvent>>, InstanceState) {
        let debounce = Debounce {
            observations: window,
            per_action: HashMap::new(),
        };
        let meta = |_: &str| ActionMeta {
            risk: Risk::High,
            controls: vec!["iso27001:A.8.5".into()],
        };
        let mut states = ActionMap::new();
        let mut out = Vec::new();
        for (i, obs) in seq.iter().enumerate() {
            let d = detect(&states, &eval(i as i64, *obs), &debounce, &meta);
            for (id, s) in d.states {
                states.insert(Arc::<str>::from(id), s);
            }
            out.push(d.events);
        }
        (out, states.remove("a").unwrap_or_default())
    }

    fn kinds(events: &[Vec<AlertEvent>]) -> Vec<Vec<EventKind>> {
        events
            .iter()
            .map(|e| e.iter().map(|e| e.kind).collect())
            .collect()
    }

    /// `stale: msgraph.x expired at 2026-03-01T11:00:00Z`
    fn stale() -> Undetected {
        Undetected::Stale {
            key: "msgraph.x".into(),
            expired_at: at(-60),
        }
    }

    /// `could not collect msgraph.*: forbidden (403)`
    fn gap() -> Undetected {
        Undetected::Gap {
            prefix: "msgraph.".into(),
            kind: "forbidden".into(),
            reason: "403".into(),
            expired: None,
        }
    }

    /// `could not collect msgraph.*: forbidden (x); last value of msgraph.x expired at
    /// 2026-03-01T11:00:00Z`
    fn gap_expired() -> Undetected {
        Undetected::Gap {
            prefix: "msgraph.".into(),
            kind: "forbidden".into(),
            reason: "x".into(),
            expired: Some(Expiry {
                key: "msgraph.x".into(),
                expired_at: at(-60),
            }),
        }
    }

    /// `signal msgraph.x not available`
    fn missing() -> Undetected {
        Undetected::Missing {
            key: "msgraph.x".into(),
        }
    }

    const STALE: Option<Why> = Some(Why::Cause(stale));
    const GAP: Option<Why> = Some(Why::Cause(gap));

    #[test]
    fn table() {
        use EventKind::*;
        let cases: Vec<Case> = vec![
            (
                "golden 6: flap inside the window produces nothing",
                2,
                vec![(P, 1.0, None), (F, 0.0, None), (P, 1.0, None)],
                vec![vec![], vec![], vec![]],
            ),
            (
                "pass fail fail: one regression; pass pass: one recovery",
                2,
                vec![
                    (P, 1.0, None),
                    (F, 0.0, None),
                    (F, 0.0, None),
                    (F, 0.0, None),
                    (P, 1.0, None),
                    (P, 1.0, None),
                ],
                vec![
                    vec![],
                    vec![],
                    vec![Regression],
                    vec![],
                    vec![Recovery],
                    vec![],
                ],
            ),
            (
                "window 1: the first drop is a regression",
                1,
                vec![(P, 1.0, None), (F, 0.0, None), (P, 1.0, None)],
                vec![vec![], vec![Regression], vec![Recovery]],
            ),
            (
                "window 3: two drops are a flap",
                3,
                vec![
                    (P, 1.0, None),
                    (F, 0.0, None),
                    (F, 0.0, None),
                    (P, 1.0, None),
                    (F, 0.0, None),
                    (F, 0.0, None),
                    (F, 0.0, None),
                ],
                vec![
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                    vec![],
                    vec![Regression],
                ],
            ),
            (
                "golden 5: a passed action whose signal expires: one stale event, no regression",
                2,
                vec![
                    (P, 1.0, None),
                    (C, 0.0, STALE),
                    (C, 0.0, STALE),
                    (C, 0.0, STALE),
                ],
                vec![vec![], vec![Stale], vec![], vec![]],
            ),
            (
                "stale then fresh pass: stale cleared, no regression",
                2,
                vec![(P, 1.0, None), (C, 0.0, STALE), (P, 1.0, None)],
                vec![vec![], vec![Stale], vec![StaleCleared]],
            ),
            (
                "collection errors are never regressions",
                1,
                vec![(P, 1.0, None), (C, 0.0, GAP), (C, 0.0, GAP), (P, 1.0, None)],
                vec![
                    vec![],
                    vec![CollectionError],
                    vec![],
                    vec![CollectionRecovered],
                ],
            ),
            (
                "a gap whose last value expired is staleness",
                2,
                vec![(P, 1.0, None), (C, 0.0, Some(Why::Cause(gap_expired)))],
                vec![vec![], vec![Stale]],
            ),
            (
                "could_not_be_detected neither starts nor ends a window",
                2,
                vec![
                    (P, 1.0, None),
                    (F, 0.0, None),
                    (C, 0.0, GAP),
                    (F, 0.0, None),
                    (C, 0.0, STALE),
                    (P, 1.0, None),
                ],
                vec![
                    vec![],
                    vec![],
                    vec![CollectionError],
                    vec![CollectionRecovered, Regression],
                    vec![Stale],
                    vec![StaleCleared, Recovery],
                ],
            ),
            (
                "condition kind change closes one and opens the other",
                2,
                vec![(P, 1.0, None), (C, 0.0, GAP), (C, 0.0, STALE)],
                vec![
                    vec![],
                    vec![CollectionError],
                    vec![CollectionRecovered, Stale],
                ],
            ),
            (
                "first observation failing is not a regression",
                2,
                vec![
                    (F, 0.0, None),
                    (F, 0.0, None),
                    (F, 0.0, None),
                    (P, 1.0, None),
                ],
                vec![vec![], vec![], vec![], vec![]],
            ),
            (
                "improvement raises the baseline; a later drop regresses",
                2,
                vec![
                    (F, 0.0, None),
                    (P, 1.0, None),
                    (F, 0.0, None),
                    (F, 0.0, None),
                ],
                vec![vec![], vec![], vec![], vec![Regression]],
            ),
            (
                "partial credit drop is a regression; partial return is not a recovery",
                2,
                vec![
                    (P, 1.0, None),
                    (TestStatus::PartiallyTested, 0.5, None),
                    (TestStatus::PartiallyTested, 0.5, None),
                    (TestStatus::PartiallyTested, 0.8, None),
                    (P, 1.0, None),
                ],
                vec![vec![], vec![], vec![Regression], vec![], vec![Recovery]],
            ),
            (
                "out of scope ends a regression and resets the baseline",
                1,
                vec![
                    (P, 1.0, None),
                    (F, 0.0, None),
                    (O, 0.0, None),
                    (F, 0.0, None),
                ],
                vec![vec![], vec![Regression], vec![Recovery], vec![]],
            ),
            (
                "a missing signal or rule error is undetectable but raises nothing",
                2,
                vec![
                    (P, 1.0, None),
                    (F, 0.0, None),
                    (C, 0.0, Some(Why::Cause(missing))),
                    (F, 0.0, None),
                ],
                vec![vec![], vec![], vec![], vec![Regression]],
            ),
            (
                "first observation undetectable opens a condition",
                2,
                vec![(C, 0.0, GAP), (P, 1.0, None)],
                vec![vec![CollectionError], vec![CollectionRecovered]],
            ),
        ];
        for (name, window, seq, expected) in cases {
            let (events, _) = run(window, &seq);
            assert_eq!(kinds(&events), expected, "{name}");
        }
    }

    #[test]
    fn regression_event_carries_points_statuses_signals_and_episode() {
        let (events, state) = run(
            2,
            &[
                (P, 1.0, None),
                (F, 0.0, Some(Why::Detail("not enforced"))),
                (F, 0.0, Some(Why::Detail("not enforced"))),
            ],
        );
        let r = &events[2][0];
        assert_eq!(r.kind, EventKind::Regression);
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.old_status, Some(P));
        assert_eq!(r.new_status, F);
        assert_eq!(r.points_lost, 27.0);
        assert!((r.score_delta + 0.5).abs() < 1e-12, "{}", r.score_delta);
        assert_eq!(
            r.episode_started_at,
            at(1),
            "the episode starts at the first drop"
        );
        assert_eq!(r.at, at(2));
        assert_eq!(r.reason.as_deref(), Some("not enforced"));
        assert_eq!(r.signals.len(), 1);
        assert_eq!(r.controls, ["iso27001:A.8.5"]);
        assert_eq!(
            r.dedup_key(),
            format!("t1/a/regression/{}", at(1).timestamp_millis())
        );
        assert_eq!(r.alert_key(), "t1/a/regression");
        assert!(r.summary().contains("27.0 points lost"), "{}", r.summary());
        assert!(state.regression.is_some());

        let (events, _) = run(
            2,
            &[
                (P, 1.0, None),
                (F, 0.0, None),
                (F, 0.0, None),
                (P, 1.0, None),
            ],
        );
        let rec = &events[3][0];
        assert_eq!(rec.kind, EventKind::Recovery);
        assert_eq!(
            rec.severity,
            Severity::Critical,
            "same labels as the firing alert"
        );
        assert_eq!(rec.alert_key(), "t1/a/regression");
        assert_eq!(rec.episode_started_at, at(1));
        assert!(rec.score_delta > 0.0);
    }

    #[test]
    fn state_round_trips_as_json_and_resumes() {
        let (_, state) = run(2, &[(P, 1.0, None), (F, 0.0, None)]);
        assert_eq!(state.pending, 1);
        let json = serde_json::to_string(&state).unwrap();
        let back: InstanceState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
        // A restart resumes the window: one more failing observation confirms the regression.
        let states = ActionMap::from_iter([(Arc::<str>::from("a"), back)]);
        let d = detect(
            &states,
            &eval(2, (F, 0.0, None)),
            &Debounce::default(),
            &|_| ActionMeta::default(),
        );
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].kind, EventKind::Regression);
        assert_eq!(d.events[0].episode_started_at, at(1));
    }

    #[test]
    fn unchanged_states_are_not_rewritten() {
        let debounce = Debounce::default();
        let meta = |_: &str| ActionMeta::default();
        let first = detect(
            &ActionMap::new(),
            &eval(0, (P, 1.0, None)),
            &debounce,
            &meta,
        );
        assert_eq!(first.states.len(), 1);
        let states: ActionMap<_> = first
            .states
            .into_iter()
            .map(|(id, s)| (Arc::from(id), s))
            .collect();
        let second = detect(&states, &eval(1, (P, 1.0, None)), &debounce, &meta);
        assert!(second.states.is_empty());
        assert!(second.events.is_empty());
    }

    #[test]
    fn per_action_window_overrides_the_global_one() {
        let d = Debounce {
            observations: 2,
            per_action: HashMap::from([("a".to_string(), 4), ("z".to_string(), 0)]),
        };
        assert_eq!(d.window("a"), 4);
        assert_eq!(d.window("b"), 2);
        assert_eq!(d.window("z"), 1, "never below 1");
    }

    #[test]
    fn fixture_causes_render_the_reason_texts() {
        let table = [
            (stale(), "stale: msgraph.x expired at 2026-03-01T11:00:00Z"),
            (gap(), "could not collect msgraph.*: forbidden (403)"),
            (
                gap_expired(),
                "could not collect msgraph.*: forbidden (x); last value of msgraph.x expired at 2026-03-01T11:00:00Z",
            ),
            (missing(), "signal msgraph.x not available"),
        ];
        for (cause, text) in table {
            assert_eq!(cause.to_string(), text);
        }
    }

    /// The condition comes from the typed cause only: text that looks like a stale or gap
    /// reason (a rule's own `unknown` reason) raises nothing.
    #[test]
    fn conditions_are_classified_from_the_cause_not_the_text() {
        let table = [
            (Some(stale()), Some(Condition::Stale)),
            (Some(gap_expired()), Some(Condition::Stale)),
            (Some(gap()), Some(Condition::CollectionError)),
            (Some(missing()), None),
            (
                Some(Undetected::undecided(
                    "stale: msgraph.x expired at 2026-03-01T11:00:00Z",
                )),
                None,
            ),
            (
                Some(Undetected::undecided("could not collect msgraph.*")),
                None,
            ),
            (
                Some(Undetected::RuleError {
                    message: "x".into(),
                }),
                None,
            ),
            (Some(Undetected::Aborted), None),
            (Some(Undetected::NoRule), None),
            (
                Some(Undetected::NotANumber {
                    key: "msgraph.x".into(),
                }),
                None,
            ),
            (None, None),
        ];
        for (cause, condition) in table {
            assert_eq!(Condition::classify(cause.as_ref()), condition, "{cause:?}");
        }
    }

    #[test]
    fn severity_and_kind_names() {
        assert_eq!(
            Severity::of_regression(TestStatus::FailedLowRisk, Risk::High),
            Severity::Info
        );
        assert_eq!(
            Severity::of_regression(TestStatus::PartiallyTested, Risk::High),
            Severity::Critical
        );
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert!(EventKind::Recovery.is_resolution());
        assert_eq!(EventKind::StaleCleared.alert_name(), "PosturedSignalStale");
    }
}
