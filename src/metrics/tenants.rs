//! The per-tenant families (scores, categories, per-action points and counters, status
//! counts, assessments and control counts), kept out of the Prometheus registry.
//!
//! A poll publishes a tenant's series as a compact, immutable value (numbers plus label values
//! escaped once and interned, so the catalog's action ids, categories and assessment ids are
//! shared by every tenant) and swaps it into the tenant's entry under a mutex held only for
//! that swap. A scrape copies the entries' pointers under the same mutex and renders without
//! it, family by family across tenants (the text format wants a family's series contiguous
//! under one `# HELP`/`# TYPE`), with `itoa`/`ryu` for the numbers. A scrape never waits for a
//! poll's work and never sees a half-published tenant; a tenant's series are replaced as a
//! whole, so actions, categories and assessments that disappear vanish with the next publish.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::evaluation::{TenantEvaluation, TestStatus};
use crate::model::report::{AssessmentReport, ControlStatus};

/// Every control rollup status, in the order of SCORING.md, with its `status` label.
const CONTROL_STATUSES: [(ControlStatus, &str); 5] = [
    (ControlStatus::Passed, "passed"),
    (ControlStatus::Failed, "failed"),
    (ControlStatus::None, "none"),
    (ControlStatus::OutOfScope, "out_of_scope"),
    (ControlStatus::InProgress, "in_progress"),
];

/// One family: name, HELP text and TYPE, exactly as the registry exported them before.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        kind: "gauge",
    }
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        kind: "counter",
    }
}

const SCORE_RATIO: Family = gauge(
    "postured_compliance_score_ratio",
    "Compliance score of a tenant: points achieved / points possible, in [0, 1].",
);
const POINTS_ACHIEVED: Family = gauge(
    "postured_compliance_points_achieved",
    "Points achieved by a tenant over its de-duplicated improvement actions.",
);
const POINTS_POSSIBLE: Family = gauge(
    "postured_compliance_points_possible",
    "Points possible for a tenant (out-of-scope actions excluded).",
);
const CATEGORY_ACHIEVED: Family = gauge(
    "postured_category_points_achieved",
    "Points achieved by a tenant in one action category.",
);
const CATEGORY_POSSIBLE: Family = gauge(
    "postured_category_points_possible",
    "Points possible for a tenant in one action category.",
);
const ACTION_ACHIEVED: Family = gauge(
    "postured_action_points_achieved",
    "Points achieved by one improvement action of a tenant.",
);
const ACTION_POSSIBLE: Family = gauge(
    "postured_action_points_possible",
    "Points possible for one improvement action of a tenant (0 when out of scope).",
);
const ACTIONS_BY_STATUS: Family = gauge(
    "postured_actions",
    "Improvement actions of a tenant per test status.",
);
const REGRESSIONS: Family = counter(
    "postured_action_regressions_total",
    "Debounced regressions of an improvement action (credit dropped and stayed down).",
);
const RECOVERIES: Family = counter(
    "postured_action_recoveries_total",
    "Recoveries of an improvement action after a regression.",
);
const ASSESSMENT_ACHIEVED: Family = gauge(
    "postured_assessment_points_achieved",
    "Points achieved over an assessment's de-duplicated action instances.",
);
const ASSESSMENT_POSSIBLE: Family = gauge(
    "postured_assessment_points_possible",
    "Points possible over an assessment's action instances (out of scope excluded).",
);
const ASSESSMENT_PROGRESS: Family = gauge(
    "postured_assessment_progress_ratio",
    "Share of an assessment's in-scope controls that passed, in [0, 1].",
);
const ASSESSMENT_AUTOMATED: Family = gauge(
    "postured_assessment_automated_points_ratio",
    "Share of an assessment's possible points tested automatically (testing source automatic), in [0, 1].",
);
const CONTROL_STATUS: Family = gauge(
    "postured_control_status",
    "Controls of an assessment per rollup status (passed, failed, none, out_of_scope, in_progress).",
);

/// A tenant's evaluation series (score, categories, actions, status counts).
struct EvaluationSeries {
    /// Ratio, points achieved, points possible.
    score: [f64; 3],
    /// Escaped category label, points achieved, points possible; sorted, one per category.
    categories: Vec<(Arc<str>, f64, f64)>,
    /// Per-action points, sorted by escaped action label, one per action; empty when
    /// per-action series are off.
    actions: Vec<ActionSeries>,
    /// Actions per test status, in the order of [`TestStatus::ALL`].
    by_status: [i64; TestStatus::ALL.len()],
}

/// One action's points.
struct ActionSeries {
    label: Arc<str>,
    achieved: f64,
    possible: f64,
}

/// One assessment's series.
struct AssessmentSeries {
    label: Arc<str>,
    achieved: f64,
    possible: f64,
    progress: f64,
    automated: f64,
    /// Controls per rollup status, in the order of [`CONTROL_STATUSES`].
    controls: [i64; 5],
}

/// A tenant's assessment series prepared from its reports ([`super::Metrics::prepare_assessments`]),
/// not yet published: per assessment its points, progress, automated share and control
/// counts, with the interned id label.
pub struct PreparedAssessments(Arc<Vec<AssessmentSeries>>);

impl std::fmt::Debug for PreparedAssessments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|a| a.label.as_ref()))
            .finish()
    }
}

/// An action's regression and recovery counters; `None` until the series exists (with
/// per-action series on, every evaluated action has both at 0 or more).
#[derive(Clone, Copy, Default)]
struct Counts {
    regressions: Option<u64>,
    recoveries: Option<u64>,
}

/// What a tenant exports; cloning copies pointers only.
#[derive(Clone)]
struct Entry {
    /// The tenant id, escaped as a label value.
    label: Arc<str>,
    evaluation: Option<Arc<EvaluationSeries>>,
    /// Assessments sorted by escaped id, one per id.
    assessments: Option<Arc<Vec<AssessmentSeries>>>,
    /// Counted actions by escaped action label (usually empty).
    counters: Arc<BTreeMap<Arc<str>, Counts>>,
}

/// The per-tenant families of every tenant.
pub(super) struct TenantSeries {
    per_action_series: bool,
    /// Tenant id -> its entry; locked only to swap or copy pointers.
    tenants: Mutex<BTreeMap<String, Entry>>,
    /// Escaped label values shared across tenants (catalog action ids, categories, assessment
    /// ids); bounded by the catalog and the configuration. Never locked by a scrape.
    interned: Mutex<HashSet<Arc<str>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Escape a label value per the text exposition format: backslash, double quote, newline.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.into()
}

/// The shared, escaped copy of `value`.
fn intern(set: &mut HashSet<Arc<str>>, value: &str) -> Arc<str> {
    let escaped = escape(value);
    if let Some(v) = set.get(escaped.as_ref()) {
        return v.clone();
    }
    let v: Arc<str> = Arc::from(escaped.as_ref());
    set.insert(v.clone());
    v
}

/// Sort by label and keep the last of equal labels (a later `with_label_values` overwrote an
/// earlier one in the registry).
fn sort_last_wins<T>(v: &mut Vec<T>, key: impl Fn(&T) -> &str) {
    v.reverse();
    v.sort_by(|a, b| key(a).cmp(key(b)));
    v.dedup_by(|a, b| key(a) == key(b));
}

impl TenantSeries {
    pub(super) fn new(per_action_series: bool) -> Self {
        TenantSeries {
            per_action_series,
            tenants: Mutex::new(BTreeMap::new()),
            interned: Mutex::new(HashSet::new()),
        }
    }

    /// Apply `f` to the tenant's entry (created when absent) under the map's lock; `f` only
    /// swaps pointers or touches the (usually empty) counters.
    fn with_entry(&self, tenant: &str, f: impl FnOnce(&mut Entry)) {
        let mut tenants = lock(&self.tenants);
        if let Some(e) = tenants.get_mut(tenant) {
            f(e);
            return;
        }
        let mut e = Entry {
            label: Arc::from(escape(tenant).as_ref()),
            evaluation: None,
            assessments: None,
            counters: Arc::default(),
        };
        f(&mut e);
        tenants.insert(tenant.to_owned(), e);
    }

    /// Publish a tenant's evaluation.
    pub(super) fn publish_evaluation(&self, eval: &TenantEvaluation) {
        let mut by_status = [0i64; TestStatus::ALL.len()];
        for a in &eval.actions {
            if let Some(i) = TestStatus::ALL.iter().position(|s| *s == a.test_status) {
                by_status[i] += 1;
            }
        }
        let (mut categories, mut actions) = {
            let mut set = lock(&self.interned);
            let categories: Vec<_> = eval
                .categories
                .iter()
                .map(|(c, s)| (intern(&mut set, c), s.points_achieved, s.points_possible))
                .collect();
            let actions: Vec<_> = if self.per_action_series {
                eval.actions
                    .iter()
                    .map(|a| ActionSeries {
                        label: intern(&mut set, &a.action_id),
                        achieved: a.points_achieved,
                        possible: a.points_possible,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (categories, actions)
        };
        sort_last_wins(&mut categories, |c| &c.0);
        sort_last_wins(&mut actions, |a| &a.label);
        let series = Arc::new(EvaluationSeries {
            score: [
                eval.score.ratio,
                eval.score.points_achieved,
                eval.score.points_possible,
            ],
            categories,
            actions,
            by_status,
        });
        let per_action = self.per_action_series;
        self.with_entry(&eval.tenant, |e| {
            // Counters of actions that left the evaluation vanish with their points series.
            if per_action
                && !e.counters.is_empty()
                && let Some(before) = &e.evaluation
            {
                let has = |v: &[ActionSeries], k: &str| {
                    v.binary_search_by(|a| a.label.as_ref().cmp(k)).is_ok()
                };
                let gone: Vec<Arc<str>> = e
                    .counters
                    .keys()
                    .filter(|k| has(&before.actions, k) && !has(&series.actions, k))
                    .cloned()
                    .collect();
                if !gone.is_empty() {
                    let counters = Arc::make_mut(&mut e.counters);
                    for k in gone {
                        counters.remove(&k);
                    }
                }
            }
            e.evaluation = Some(series);
        });
    }

    /// Publish a tenant's assessments (reports of other tenants are ignored).
    pub(super) fn publish_assessments(&self, tenant: &str, reports: &[AssessmentReport]) {
        let prepared = self.prepare_assessments(tenant, reports);
        self.publish_prepared(tenant, prepared);
    }

    /// A tenant's assessment series from its reports (reports of other tenants are ignored),
    /// ready to publish: a few numbers per assessment, so a poll can drop the reports before
    /// it writes and publish these after.
    pub(super) fn prepare_assessments(
        &self,
        tenant: &str,
        reports: &[AssessmentReport],
    ) -> PreparedAssessments {
        let mut rows: Vec<AssessmentSeries> = {
            let mut set = lock(&self.interned);
            reports
                .iter()
                .filter(|r| r.tenant == tenant)
                .map(|r| {
                    let mut controls = [0i64; 5];
                    for c in &r.controls {
                        if let Some(i) = CONTROL_STATUSES.iter().position(|(s, _)| *s == c.status) {
                            controls[i] += 1;
                        }
                    }
                    AssessmentSeries {
                        label: intern(&mut set, &r.id),
                        achieved: r.score.points_achieved,
                        possible: r.score.points_possible,
                        progress: r.progress,
                        automated: r.automated_points_ratio,
                        controls,
                    }
                })
                .collect()
        };
        sort_last_wins(&mut rows, |r| &r.label);
        PreparedAssessments(Arc::new(rows))
    }

    /// Swap a tenant's prepared assessment series in.
    pub(super) fn publish_prepared(&self, tenant: &str, prepared: PreparedAssessments) {
        self.with_entry(tenant, |e| e.assessments = Some(prepared.0));
    }

    /// Count one regression (`recovery` false) or recovery of a tenant's action.
    pub(super) fn count(&self, tenant: &str, action: &str, recovery: bool) {
        let key = intern(&mut lock(&self.interned), action);
        self.with_entry(tenant, |e| {
            let c = Arc::make_mut(&mut e.counters).entry(key).or_default();
            let n = if recovery {
                &mut c.recoveries
            } else {
                &mut c.regressions
            };
            *n = Some(n.unwrap_or(0) + 1);
        });
    }

    /// Render every family with at least one series after `out`'s text, handing `sink` the
    /// text in chunks of at least `chunk` bytes (a chunk ends at a line's end), then the rest.
    pub(super) fn render(&self, out: String, chunk: usize, sink: &mut dyn FnMut(String)) {
        let entries: Vec<Entry> = lock(&self.tenants).values().cloned().collect();
        let mut w = Writer {
            out,
            chunk,
            sink,
            wrote: false,
        };
        let evals = || {
            entries
                .iter()
                .filter_map(|e| e.evaluation.as_deref().map(|v| (e.label.as_ref(), v)))
        };
        let assessments = || {
            entries.iter().flat_map(|e| {
                let rows = e.assessments.as_deref().map_or(&[][..], Vec::as_slice);
                rows.iter().map(move |r| (e.label.as_ref(), r))
            })
        };
        for (i, family) in [&SCORE_RATIO, &POINTS_ACHIEVED, &POINTS_POSSIBLE]
            .into_iter()
            .enumerate()
        {
            w.family(family, |w| {
                for (t, v) in evals() {
                    w.series(family, &[("tenant", t)]);
                    w.float(v.score[i]);
                }
            });
        }
        for (achieved, family) in [(true, &CATEGORY_ACHIEVED), (false, &CATEGORY_POSSIBLE)] {
            w.family(family, |w| {
                for (t, v) in evals() {
                    for (c, a, p) in &v.categories {
                        w.series(family, &[("category", c), ("tenant", t)]);
                        w.float(if achieved { *a } else { *p });
                    }
                }
            });
        }
        for (achieved, family) in [(true, &ACTION_ACHIEVED), (false, &ACTION_POSSIBLE)] {
            w.family(family, |w| {
                for (t, v) in evals() {
                    for a in &v.actions {
                        w.series(family, &[("action", &a.label), ("tenant", t)]);
                        w.float(if achieved { a.achieved } else { a.possible });
                    }
                }
            });
        }
        w.family(&ACTIONS_BY_STATUS, |w| {
            for (t, v) in evals() {
                for (s, n) in TestStatus::ALL.iter().zip(v.by_status) {
                    w.series(
                        &ACTIONS_BY_STATUS,
                        &[("tenant", t), ("test_status", s.as_str())],
                    );
                    w.int(n);
                }
            }
        });
        for (recovery, family) in [(false, &REGRESSIONS), (true, &RECOVERIES)] {
            w.family(family, |w| {
                for e in &entries {
                    let actions = e.evaluation.as_deref().map_or(&[][..], |v| &v.actions);
                    counters(actions, &e.counters, recovery, |action, n| {
                        w.series(family, &[("action", action), ("tenant", &e.label)]);
                        w.uint(n);
                    });
                }
            });
        }
        type Value = fn(&AssessmentSeries) -> f64;
        let values: [(&Family, Value); 4] = [
            (&ASSESSMENT_ACHIEVED, |r| r.achieved),
            (&ASSESSMENT_POSSIBLE, |r| r.possible),
            (&ASSESSMENT_PROGRESS, |r| r.progress),
            (&ASSESSMENT_AUTOMATED, |r| r.automated),
        ];
        for (family, value) in values {
            w.family(family, |w| {
                for (t, r) in assessments() {
                    w.series(family, &[("assessment", &r.label), ("tenant", t)]);
                    w.float(value(r));
                }
            });
        }
        w.family(&CONTROL_STATUS, |w| {
            for (t, r) in assessments() {
                for ((_, status), n) in CONTROL_STATUSES.iter().zip(r.controls) {
                    w.series(
                        &CONTROL_STATUS,
                        &[("assessment", &r.label), ("status", status), ("tenant", t)],
                    );
                    w.int(n);
                }
            }
        });
        if !w.out.is_empty() {
            (w.sink)(w.out);
        }
    }
}

/// Walk a tenant's evaluated actions (counters at 0 unless counted) and its counted actions in
/// label order, calling `f` with each series of the regression (`recovery` false) or recovery
/// counter that exists.
fn counters(
    actions: &[ActionSeries],
    counted: &BTreeMap<Arc<str>, Counts>,
    recovery: bool,
    mut f: impl FnMut(&str, u64),
) {
    let pick = |c: &Counts| {
        if recovery {
            c.recoveries
        } else {
            c.regressions
        }
    };
    let mut a = actions.iter().peekable();
    let mut c = counted.iter().peekable();
    loop {
        let order = match (a.peek(), c.peek()) {
            (None, None) => return,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some((k, _))) => x.label.as_ref().cmp(k.as_ref()),
        };
        match order {
            Ordering::Less => {
                if let Some(x) = a.next() {
                    f(&x.label, 0);
                }
            }
            Ordering::Equal => {
                a.next();
                if let Some((k, n)) = c.next() {
                    f(k, pick(n).unwrap_or(0));
                }
            }
            Ordering::Greater => {
                if let Some((k, n)) = c.next()
                    && let Some(n) = pick(n)
                {
                    f(k, n);
                }
            }
        }
    }
}

/// Appends text-format lines, handing full chunks to `sink`.
struct Writer<'a> {
    out: String,
    /// Hand `out` to `sink` once it holds this many bytes.
    chunk: usize,
    sink: &'a mut dyn FnMut(String),
    /// Whether the current family has a series yet.
    wrote: bool,
}

impl Writer<'_> {
    /// Write `# HELP`/`# TYPE` and the series `body` writes; nothing when it writes none
    /// (the registry drops families without series too).
    fn family(&mut self, f: &Family, body: impl FnOnce(&mut Self)) {
        let start = self.out.len();
        let _ = writeln!(
            self.out,
            "# HELP {} {}\n# TYPE {} {}",
            f.name,
            f.help.replace('\\', "\\\\").replace('\n', "\\n"),
            f.name,
            f.kind
        );
        self.wrote = false;
        body(self);
        // Nothing was handed on since the header: chunks end only after a series.
        if !self.wrote {
            self.out.truncate(start);
        }
    }

    /// End a line; hand the text on when it fills a chunk.
    fn end_line(&mut self) {
        self.out.push('\n');
        if self.out.len() >= self.chunk {
            let full = std::mem::replace(&mut self.out, String::with_capacity(self.chunk + 256));
            (self.sink)(full);
        }
    }

    /// `name{label="value",...} ` (values already escaped), awaiting its value.
    fn series(&mut self, f: &Family, labels: &[(&str, &str)]) {
        self.wrote = true;
        let out = &mut self.out;
        out.push_str(f.name);
        out.push('{');
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(name);
            out.push_str("=\"");
            out.push_str(value);
            out.push('"');
        }
        out.push_str("} ");
    }

    fn int(&mut self, v: i64) {
        self.out.push_str(itoa::Buffer::new().format(v));
        self.end_line();
    }

    fn uint(&mut self, v: u64) {
        self.out.push_str(itoa::Buffer::new().format(v));
        self.end_line();
    }

    /// A float: integral values as integers (as the registry wrote them), others shortest
    /// round-trip (`ryu`), non-finite as `NaN`, `+Inf`, `-Inf`.
    fn float(&mut self, v: f64) {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if v.is_nan() {
            self.out.push_str("NaN");
        } else if v.is_infinite() {
            self.out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        } else if v.fract() == 0.0 && v.abs() < EXACT {
            #[allow(clippy::cast_possible_truncation)] // integral and below 2^53: exact
            self.out.push_str(itoa::Buffer::new().format(v as i64));
        } else {
            self.out.push_str(ryu::Buffer::new().format_finite(v));
        }
        self.end_line();
    }
}
