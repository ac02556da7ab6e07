//! Improvement actions (their de-duplicated instances): `GET /api/v1/actions`, a filtered,
//! sorted listing with cursor paging, and `GET /api/v1/actions/{action}?tenant=|group=`, one
//! instance with its testing logic, the signals behind its status, related controls and
//! regulations, history and ledger.
//!
//! **Listing.** Filters: every [`ScoreFilter`] criterion, `q` (case-insensitive substring of
//! the title, at most [`MAX_SEARCH_CHARS`] characters), `implementation_status`,
//! `assigned_to` (exact). Sort: `sort=points|title|status|updated` (`points` is the action's
//! points, `status` the test status' name, `updated` when the status last changed, unknown
//! first), `order=asc|desc` (default `points` `desc`). Ties are broken by the instance id
//! (`tenant:<id>:<action>` or `group:<id>:<action>`, ascending), so the order is total.
//!
//! **Paging.** `limit` items a page ([`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]; 0 or more is a
//! 400). `next_cursor` is opaque (at most [`MAX_CURSOR_CHARS`]); passed back as `cursor` with
//! the same filters and sort it continues *after the last item returned* (keyset paging): an
//! item is never returned twice and an item whose sort key did not change is never skipped,
//! whatever changed between the pages. A cursor of another listing (other filters or sort) is
//! a 400 [`INVALID_CURSOR`].
//!
//! The instances come from the model over the caller's assessments (its tenants and groups),
//! built for the request from the latest evaluations; history and ledger from the store.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::evaluation::{ActionState, ImplementationStatus, TestStatus, Undetected};
use crate::model::report::TestingSource;
use crate::model::template::{ImplementationType, Responsibility};
use crate::model::{Instance, InstanceKey, InstanceScope, ScoreFilter};
use crate::report::ledger::ActionLedger;
use crate::server::assessments::assessment_in_scope;
use crate::server::auth::{Principal, Role};
use crate::server::extract::ApiQuery;
use crate::server::problem::{
    INVALID_CURSOR, INVALID_QUERY, Problem, UNKNOWN_ACTION, WRONG_SCOPE, excerpt, store_failed,
};
use crate::store::TransitionRow;

/// Items a page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 500;
/// Longest `q`, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;
/// Longest cursor accepted, in characters.
pub const MAX_CURSOR_CHARS: usize = 2048;

/// What the listing is sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// The action's points (1..=99).
    #[default]
    Points,
    /// The title (byte order).
    Title,
    /// The test status' name.
    Status,
    /// When the status last changed (unknown first in ascending order).
    Updated,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// The listing's own parameters (the model filters are [`ScoreFilter`]'s).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Case-insensitive text the title contains (at most 200 characters).
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Only instances with this implementation status.
    pub implementation_status: Option<ImplementationStatus>,
    /// Only instances assigned to exactly this owner.
    pub assigned_to: Option<String>,
    /// Sort key (default `points`).
    pub sort: Option<SortBy>,
    /// Sort direction (default `desc` for `points`, `asc` otherwise).
    pub order: Option<SortOrder>,
    /// Items a page: default 50, 1..=500.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub cursor: Option<String>,
}

/// The whole query of `GET /api/v1/actions` (read as two extractors: serde's `flatten`
/// would hand `limit` over as text).
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// The model filters.
    pub filter: ScoreFilter,
    /// The listing's parameters.
    pub list: ListParams,
}

/// One action instance in a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionSummary {
    /// Instance id: `tenant:<tenant>:<action>` or `group:<group>:<action>` (the tie-breaker
    /// of every sort).
    pub instance: String,
    /// Action id.
    pub id: String,
    /// Where the instance lives (a tenant for technical and provider-managed actions, a
    /// group otherwise).
    pub scope: InstanceScope,
    /// Title.
    pub title: String,
    /// Category.
    pub category: String,
    /// Solution.
    pub solution: String,
    /// Technical, operational or documentation.
    pub implementation_type: ImplementationType,
    /// Customer or provider.
    pub responsibility: Responsibility,
    /// Who sets the test status.
    pub testing_source: TestingSource,
    /// Implementation status.
    pub implementation_status: ImplementationStatus,
    /// Test status.
    pub test_status: TestStatus,
    /// The action's points (1..=99).
    pub points: u32,
    /// points × credit; 0 when out of scope.
    pub points_achieved: f64,
    /// points; 0 when out of scope.
    pub points_possible: f64,
    /// Owner.
    pub assigned_to: Option<String>,
    /// When the status last changed (the manual record's time, or since when the stored
    /// automatic status holds); `null` when unknown.
    pub updated_at: Option<DateTime<Utc>>,
    /// Assessments referencing it (in the caller's scope).
    pub assessments: BTreeSet<String>,
    /// Regulations of their templates.
    pub regulations: BTreeSet<String>,
}

/// A page of the listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionPage {
    /// The items, in the listing's order.
    pub items: Vec<ActionSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The page size used.
    pub limit: usize,
}

/// The instance id of a key (`tenant:<id>:<action>`).
fn instance_id(key: &InstanceKey) -> String {
    format!("{}:{}:{}", key.scope.kind(), key.scope.id(), key.action)
}

/// A sort key value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
enum Key {
    Int(i64),
    Text(String),
}

fn key_of(sort: SortBy, s: &ActionSummary) -> Key {
    match sort {
        SortBy::Points => Key::Int(i64::from(s.points)),
        SortBy::Title => Key::Text(s.title.clone()),
        SortBy::Status => Key::Text(s.test_status.as_str().to_owned()),
        SortBy::Updated => Key::Int(s.updated_at.map_or(i64::MIN, |t| t.timestamp_millis())),
    }
}

/// What a cursor holds: the listing it belongs to and the last item returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// Fingerprint of the filters and sort.
    f: String,
    /// Sort key of the last item.
    k: Key,
    /// Instance id of the last item.
    i: String,
}

impl Cursor {
    fn encode(&self) -> String {
        hex::encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(text: &str) -> Option<Cursor> {
        if text.len() > MAX_CURSOR_CHARS {
            return None;
        }
        serde_json::from_slice(&hex::decode(text).ok()?).ok()
    }
}

/// The fingerprint of a listing: its filters, sort and direction (not the page size).
fn fingerprint(q: &ListQuery, sort: SortBy, order: SortOrder) -> String {
    let canonical = serde_json::json!({
        "filter": q.filter,
        "q": q.list.q.as_deref().map(str::to_lowercase),
        "implementation_status": q.list.implementation_status,
        "assigned_to": q.list.assigned_to,
        "sort": sort,
        "order": order,
    });
    hex::encode(&Sha256::digest(canonical.to_string().as_bytes())[..8])
}

fn bad_query(detail: impl Into<String>) -> Problem {
    INVALID_QUERY.at(StatusCode::BAD_REQUEST, detail)
}

/// The summary of one instance; `since` gives the stored automatic status' start.
fn summary(i: &Instance, since: Option<DateTime<Utc>>) -> ActionSummary {
    ActionSummary {
        instance: instance_id(&i.key),
        id: i.key.action.clone(),
        scope: i.key.scope.clone(),
        title: i.title.clone(),
        category: i.category.clone(),
        solution: i.solution.clone(),
        implementation_type: i.implementation_type,
        responsibility: i.responsibility,
        testing_source: i.testing_source,
        implementation_status: i.implementation_status,
        test_status: i.test_status,
        points: i.points,
        points_achieved: i.points_achieved,
        points_possible: i.points_possible,
        assigned_to: i.assigned_to.clone(),
        updated_at: i.status_since.or(since),
        assessments: i.assessments.clone(),
        regulations: i.regulations.clone(),
    }
}

/// When a tenant-scoped automatic instance's stored status began (the stored state of its
/// action when its status is the current one); `stored` holds each tenant's stored states,
/// read once per request.
fn automatic_since(
    stored: &HashMap<String, crate::evaluation::ActionMap<ActionState>>,
    i: &Instance,
) -> Option<DateTime<Utc>> {
    let InstanceScope::Tenant(t) = &i.key.scope else {
        return None;
    };
    if i.testing_source != TestingSource::Automatic {
        return None;
    }
    stored
        .get(t)?
        .get(i.key.action.as_str())
        .filter(|s| s.test_status == i.test_status)
        .map(|s| s.since)
}

/// The stored states of every tenant in the caller's scope.
async fn stored_states(
    app: &App,
    principal: &Principal,
) -> HashMap<String, crate::evaluation::ActionMap<ActionState>> {
    let mut out = HashMap::new();
    for t in app.tenants() {
        if principal.scope.allows_tenant(&t.id) {
            out.insert(t.id.clone(), app.stored_states(&t.id).await);
        }
    }
    out
}

/// `GET /api/v1/actions`.
#[utoipa::path(
    get,
    path = "/api/v1/actions",
    operation_id = "list_actions",
    tag = "actions",
    security(("bearer" = ["reader"])),
    params(ScoreFilter, ListParams),
    responses(
        (status = 200, description = "A page of action instances in the caller's scope", body = ActionPage),
        (status = 400, description = "Invalid query, limit out of range or a cursor of another listing", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiQuery(filter): ApiQuery<ScoreFilter>,
    ApiQuery(list): ApiQuery<ListParams>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    match page(&app, &principal, &ListQuery { filter, list }).await {
        Ok(p) => Json(p).into_response(),
        Err(p) => p.into_response(),
    }
}

async fn page(app: &App, principal: &Principal, q: &ListQuery) -> Result<ActionPage, Problem> {
    let limit = q.list.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(bad_query(format!(
            "limit must be between 1 and {MAX_LIMIT} (default {DEFAULT_LIMIT})"
        )));
    }
    let needle = match &q.list.q {
        Some(s) if s.chars().count() > MAX_SEARCH_CHARS => {
            return Err(bad_query(format!(
                "q is longer than {MAX_SEARCH_CHARS} characters"
            )));
        }
        Some(s) => Some(s.to_lowercase()),
        None => None,
    };
    let sort = q.list.sort.unwrap_or_default();
    let order = q.list.order.unwrap_or(if sort == SortBy::Points {
        SortOrder::Desc
    } else {
        SortOrder::Asc
    });
    let print = fingerprint(q, sort, order);
    let after = match &q.list.cursor {
        Some(text) => match Cursor::decode(text) {
            Some(c) if c.f == print => Some(c),
            _ => {
                return Err(INVALID_CURSOR.at(
                    StatusCode::BAD_REQUEST,
                    "the cursor was not issued for this listing (same filters and sort)",
                ));
            }
        },
        None => None,
    };
    let model = app
        .compliance_model_of(|a| assessment_in_scope(principal, a))
        .await;
    let stored = stored_states(app, principal).await;
    let mut items = Vec::new();
    for i in model.instances() {
        let keep = q.filter.matches(i)
            && needle
                .as_deref()
                .is_none_or(|n| i.title.to_lowercase().contains(n))
            && q.list
                .implementation_status
                .is_none_or(|s| s == i.implementation_status)
            && q.list
                .assigned_to
                .as_ref()
                .is_none_or(|a| i.assigned_to.as_ref() == Some(a));
        if keep {
            items.push(summary(i, automatic_since(&stored, i)));
        }
    }
    let compare = |a: &(Key, String), b: &(Key, String)| -> Ordering {
        let primary = match order {
            SortOrder::Asc => a.0.cmp(&b.0),
            SortOrder::Desc => b.0.cmp(&a.0),
        };
        primary.then_with(|| a.1.cmp(&b.1))
    };
    let mut keyed: Vec<((Key, String), ActionSummary)> = items
        .into_iter()
        .map(|s| ((key_of(sort, &s), s.instance.clone()), s))
        .collect();
    keyed.sort_by(|a, b| compare(&a.0, &b.0));
    let start = match &after {
        Some(c) => {
            let last = (c.k.clone(), c.i.clone());
            keyed.partition_point(|(k, _)| compare(k, &last) != Ordering::Greater)
        }
        None => 0,
    };
    let rest = &keyed[start..];
    let page: Vec<ActionSummary> = rest.iter().take(limit).map(|(_, s)| s.clone()).collect();
    let next_cursor = (rest.len() > limit).then(|| {
        let ((k, i), _) = &rest[limit - 1];
        Cursor {
            f: print.clone(),
            k: k.clone(),
            i: i.clone(),
        }
        .encode()
    });
    Ok(ActionPage {
        items: page,
        next_cursor,
        limit,
    })
}

/// Query of `GET /api/v1/actions/{action}`: exactly one of `tenant` and `group`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DetailQuery {
    /// The tenant (technical and provider-managed actions).
    pub tenant: Option<String>,
    /// The group (operational and documentation actions).
    pub group: Option<String>,
}

/// How an action is tested.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestingLogic {
    /// The CEL rule as shown to users; empty for manually tested actions.
    pub rule: String,
    /// What the action is and why it matters (the catalog's or the template's description).
    pub description: String,
    /// Connector kind whose catalog defines the action, if any.
    pub kind: Option<String>,
}

/// The latest evaluation of an automatically tested action.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Evaluated {
    /// When the tenant was last evaluated.
    pub evaluated_at: DateTime<Utc>,
    /// The signals the rule read and their values (normalised by the connector; personal
    /// data never reaches a signal), as `[key, value]` pairs.
    #[schema(value_type = Vec<(String, serde_json::Value)>)]
    pub signals: Vec<(std::sync::Arc<str>, postured_connectors::SignalValue)>,
    /// Why the status is what it is, when not plainly passed.
    pub reason: Option<String>,
    /// Why it is `could_not_be_detected`, typed; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Undetected>,
    /// The rule's credit in [0, 1].
    pub credit: f64,
}

/// A control that maps the action, in one assessment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RelatedControl {
    /// Assessment id.
    pub assessment: String,
    /// Template id.
    pub template: String,
    /// Regulation of the template.
    pub certification: String,
    /// Control id.
    pub control: String,
    /// Control title.
    pub title: String,
    /// The control's rollup status.
    pub status: crate::model::report::ControlStatus,
}

/// One action instance in full.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionDetail {
    /// The instance as listed.
    pub action: ActionSummary,
    /// Why the status is what it is.
    pub reason: Option<String>,
    /// Notes of the manual record.
    pub notes: Option<String>,
    /// Evidence links of the manual record.
    pub evidence: Vec<String>,
    /// How it is tested.
    pub testing_logic: TestingLogic,
    /// The latest evaluation behind an automatic status (`null` for manual ones and before
    /// the first poll).
    pub evaluation: Option<Evaluated>,
    /// Controls mapping it, per assessment in the caller's scope.
    pub controls: Vec<RelatedControl>,
    /// Framework controls the catalog maps it to (`iso27001:A.8.5`, `nist_800_53:IA-2(1)`).
    pub framework_controls: Vec<String>,
    /// Regulations of the templates referencing it.
    pub regulations: BTreeSet<String>,
    /// Stored test-status transitions, oldest first (tenant-scoped instances).
    pub history: Vec<TransitionRow>,
    /// The regression ledger of the instance (`null` without stored history).
    pub ledger: Option<ActionLedger>,
}

/// `GET /api/v1/actions/{action}`.
#[utoipa::path(
    get,
    path = "/api/v1/actions/{action}",
    operation_id = "get_action",
    tag = "actions",
    security(("bearer" = ["reader"])),
    params(("action" = String, Path, description = "Improvement action id"), DetailQuery),
    responses(
        (status = 200, description = "The action instance with its testing logic, signals, controls, history and ledger", body = ActionDetail),
        (status = 400, description = "Not exactly one of tenant and group", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such instance in the caller's scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn detail(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(action): Path<String>,
    ApiQuery(q): ApiQuery<DetailQuery>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    match detail_of(&app, &principal, &action, q).await {
        Ok(d) => Json(d).into_response(),
        Err(p) => p.into_response(),
    }
}

async fn detail_of(
    app: &App,
    principal: &Principal,
    action: &str,
    q: DetailQuery,
) -> Result<ActionDetail, Problem> {
    let scope = match (q.tenant, q.group) {
        (Some(t), None) => InstanceScope::Tenant(t),
        (None, Some(g)) => InstanceScope::Group(g),
        _ => {
            return Err(WRONG_SCOPE.at(
                StatusCode::BAD_REQUEST,
                "give exactly one of tenant (technical and provider-managed actions) and group",
            ));
        }
    };
    let not_found = || {
        UNKNOWN_ACTION.at(
            StatusCode::NOT_FOUND,
            format!(
                "no instance of {:?} in {} {:?} (or outside the caller's scope)",
                excerpt(action, 128),
                scope.kind(),
                excerpt(scope.id(), 128)
            ),
        )
    };
    let model = app
        .compliance_model_of(|a| assessment_in_scope(principal, a))
        .await;
    let key = InstanceKey {
        scope: scope.clone(),
        action: action.to_owned(),
    };
    let Some(instance) = model.instance(&key) else {
        return Err(not_found());
    };
    let since = automatic_since(&stored_states(app, principal).await, instance);
    let def = app.evaluator.action(action);
    let template_description = || {
        app.model
            .registry()
            .iter()
            .flat_map(|t| t.actions.iter())
            .find(|a| a.id == action)
            .map(|a| a.description.clone())
    };
    let testing_logic = TestingLogic {
        rule: instance.testing_logic.clone(),
        description: def
            .map(|d| d.description.clone())
            .or_else(template_description)
            .unwrap_or_default(),
        kind: def.and_then(|d| d.kind.clone()),
    };
    let mut framework_controls = Vec::new();
    if let Some(d) = def {
        let c = &d.controls;
        for (framework, ids) in [
            ("iso27001", &c.iso27001),
            ("nist_800_53", &c.nist_800_53),
            ("gdpr", &c.gdpr),
            ("scuba", &c.scuba),
        ] {
            framework_controls.extend(ids.iter().map(|id| format!("{framework}:{id}")));
        }
    }
    // The evaluation, history and ledger of a tenant's automatic instance.
    let (mut evaluation, mut history, mut ledger) = (None, Vec::new(), None);
    if let InstanceScope::Tenant(t) = &scope {
        if instance.testing_source == TestingSource::Automatic
            && let Some(e) = app.evaluation(t).await
            && let Some(r) = e.actions.iter().find(|r| r.action_id == action)
        {
            evaluation = Some(Evaluated {
                evaluated_at: e.evaluated_at,
                signals: r.signals.clone(),
                reason: r.reason.clone(),
                cause: r.cause.clone(),
                credit: r.credit,
            });
        }
        let read = async {
            let transitions = app.store.transitions(t, Some(action), None).await?;
            let events = app.store.alert_events(t, Some(action), None).await?;
            Ok::<_, crate::store::StoreError>((transitions, events))
        };
        let (transitions, events) = match read.await {
            Ok(r) => r,
            Err(e) => return Err(store_failed(app, e.kind())),
        };
        ledger = crate::report::ledger::ledger(&transitions, &events, Utc::now())
            .into_iter()
            .find(|l| l.action_id == action);
        history = transitions;
    }
    // Controls mapping it, in every assessment in scope that references the instance.
    let reports = app
        .assessment_reports_of(|t| instance.tenants.contains(t))
        .await;
    let controls = reports
        .iter()
        .filter(|r| instance.assessments.contains(&r.id))
        .flat_map(|r| {
            r.controls
                .iter()
                .filter(|c| c.actions.iter().any(|a| a == action))
                .map(|c| RelatedControl {
                    assessment: r.id.clone(),
                    template: r.template_id.clone(),
                    certification: r.certification.clone(),
                    control: c.id.clone(),
                    title: c.title.clone(),
                    status: c.status,
                })
        })
        .collect();
    Ok(ActionDetail {
        action: summary(instance, since),
        reason: instance.reason.clone(),
        notes: instance.notes.clone(),
        evidence: instance.evidence.clone(),
        testing_logic,
        evaluation,
        controls,
        framework_controls,
        regulations: instance.regulations.clone(),
        history,
        ledger,
    })
}
