//! HTTP handlers of the Compliance Manager model (mounted by `crate::server` behind the bearer
//! token). They read the app's latest reports and write manual statuses through the model
//! runtime; they never poll. Every read is limited to the caller's scope: assessments of
//! tenants or groups outside it are left out of lists and scores, and answered 404 on their
//! own.
//!
//! - `GET /api/v1/assessments?tenant=` -> the latest assessment reports (score, status,
//!   progress, controls with rollups, action instances), an array of [`AssessmentReport`] as
//!   before this API was versioned.
//! - `GET /api/v1/assessments/{tenant}/{assessment}` -> one report;
//!   `.../controls/{control}` -> one control with its rollup and its action instances.
//! - `GET /api/v1/score?tenant=&assessment=&regulation=&solution=&group=&category=&testing_source=&test_status=&by=`
//!   -> [`ScoresAnswer`]: the score over the de-duplicated instances matching every given
//!   criterion, broken down `by` tenant, assessment, regulation, solution, group or category
//!   when asked. `GET /api/v1/scores` is the same operation under its earlier name (kept,
//!   marked deprecated in the document).
//! - `PUT /api/v1/actions/{action}/status` with a JSON [`StatusBody`] (at most
//!   [`MAX_STATUS_BODY_BYTES`]) -> the saved manual status. Refusals are RFC 9457 problem
//!   details (`application/problem+json`, [`crate::server::problem`]): 404 when the path's
//!   action id is malformed or no template or catalog knows the action; 400 for a malformed or
//!   unknown `parent`, a body that does not parse, a field past its limit
//!   ([`crate::server::input`]) or a wrong scope; 413 for a body too large; 503 when the store
//!   fails. Nothing is saved on a refusal. Shown from the tenant's next poll, like `postured
//!   action set`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::app::model::{ActionSet, Actor};
use crate::evaluation::{ImplementationStatus, ScoreSummary, TestStatus};
use crate::model::report::{ActionInstanceReport, AssessmentReport, ControlReport, TestingSource};
use crate::model::{Assessment, Dimension, ManualStatus, ManualUpdate, ScoreFilter};
use crate::server::auth::{Principal, Role};
use crate::server::extract::ApiQuery;
use crate::server::input::{ActionSetError, check_action_set};
use crate::server::problem::{
    INVALID_ACTION_ID, INVALID_FIELD, Problem, UNKNOWN_ACTION, UNKNOWN_ASSESSMENT, UNKNOWN_CONTROL,
    WRONG_SCOPE, excerpt, store_failed,
};

/// Largest accepted body of `PUT /api/v1/actions/{action}/status` (64 KiB: every field at
/// its limit fits); a larger one is answered 413.
pub const MAX_STATUS_BODY_BYTES: usize = 64 * 1024;

/// Whether an assessment is in the caller's scope (its tenant and its group).
pub fn assessment_in_scope(principal: &Principal, a: &Assessment) -> bool {
    principal.scope.allows_tenant(&a.tenant) && principal.scope.allows_group(&a.group)
}

/// Whether an assessment report is in the caller's scope.
fn report_in_scope(principal: &Principal, r: &AssessmentReport) -> bool {
    principal.scope.allows_tenant(&r.tenant) && principal.scope.allows_group(&r.group)
}

/// Query of `GET /api/v1/assessments`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssessmentsQuery {
    /// Only this tenant's assessments.
    pub tenant: Option<String>,
}

/// `GET /api/v1/assessments`.
#[utoipa::path(
    get,
    path = "/api/v1/assessments",
    tag = "assessments",
    security(("bearer" = ["reader"])),
    params(AssessmentsQuery),
    responses(
        (status = 200, description = "The latest reports of every evaluated tenant's assessments in the caller's scope (tenants in configuration order, then assessments in configuration order, defaults last)", body = Vec<AssessmentReport>),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn assessments(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AssessmentsQuery>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let reports = app
        .assessment_reports_of(|t| {
            principal.scope.allows_tenant(t) && q.tenant.as_deref().is_none_or(|x| x == t)
        })
        .await;
    let reports: Vec<AssessmentReport> = reports
        .into_iter()
        .filter(|r| report_in_scope(&principal, r))
        .collect();
    Json(reports).into_response()
}

/// The report of `assessment` of `tenant` if both exist, the tenant has been evaluated and the
/// assessment is in the caller's scope, else a 404 problem.
pub(crate) async fn find_report(
    app: &App,
    principal: &Principal,
    tenant: &str,
    assessment: &str,
) -> Result<AssessmentReport, Problem> {
    crate::server::tenants::visible_tenant(app, principal, tenant)?;
    app.assessment_reports_of(|t| t == tenant)
        .await
        .into_iter()
        .find(|r| r.id == assessment && report_in_scope(principal, r))
        .ok_or_else(|| {
            UNKNOWN_ASSESSMENT.at(
                StatusCode::NOT_FOUND,
                format!(
                    "no assessment {:?} of tenant {:?} (or the tenant has not been evaluated yet, \
                     or it is outside the caller's scope)",
                    excerpt(assessment, 128),
                    excerpt(tenant, 128)
                ),
            )
        })
}

/// `GET /api/v1/assessments/{tenant}/{assessment}`.
#[utoipa::path(
    get,
    path = "/api/v1/assessments/{tenant}/{assessment}",
    tag = "assessments",
    security(("bearer" = ["reader"])),
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("assessment" = String, Path, description = "Assessment id"),
    ),
    responses(
        (status = 200, description = "The assessment's latest report: score, status, progress, controls with rollups, action instances", body = AssessmentReport),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown tenant or assessment, not evaluated yet, or outside the caller's scope", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn assessment(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path((tenant, assessment)): Path<(String, String)>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    match find_report(&app, &principal, &tenant, &assessment).await {
        Ok(r) => Json(r).into_response(),
        Err(p) => p.into_response(),
    }
}

/// Answer of `GET /api/v1/assessments/{tenant}/{assessment}/controls/{control}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ControlDetail {
    /// Tenant id.
    pub tenant: String,
    /// Assessment id.
    pub assessment: String,
    /// Regulation / standard of the assessment's template.
    pub certification: String,
    /// The control with its rollup status and its actions' ids.
    pub control: ControlReport,
    /// The control's action instances, in the control's order.
    pub actions: Vec<ActionInstanceReport>,
}

/// `GET /api/v1/assessments/{tenant}/{assessment}/controls/{control}`.
#[utoipa::path(
    get,
    path = "/api/v1/assessments/{tenant}/{assessment}/controls/{control}",
    tag = "assessments",
    security(("bearer" = ["reader"])),
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("assessment" = String, Path, description = "Assessment id"),
        ("control" = String, Path, description = "Control id as in the template (e.g. `A.5.15`)"),
    ),
    responses(
        (status = 200, description = "The control's rollup and its action instances", body = ControlDetail),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown tenant, assessment or control", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn control(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path((tenant, assessment, control)): Path<(String, String, String)>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let report = match find_report(&app, &principal, &tenant, &assessment).await {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let Some(found) = report.controls.iter().find(|c| c.id == control) else {
        return UNKNOWN_CONTROL
            .at(
                StatusCode::NOT_FOUND,
                format!(
                    "no control {:?} in assessment {:?}",
                    excerpt(&control, 128),
                    report.id
                ),
            )
            .into_response();
    };
    let actions = found
        .actions
        .iter()
        .filter_map(|id| report.actions.iter().find(|a| &a.id == id).cloned())
        .collect();
    Json(ControlDetail {
        tenant: report.tenant.clone(),
        assessment: report.id.clone(),
        certification: report.certification.clone(),
        control: found.clone(),
        actions,
    })
    .into_response()
}

/// Query of `GET /api/v1/score`: a [`ScoreFilter`] plus an optional breakdown.
#[derive(Debug, Deserialize)]
pub struct ScoresQuery {
    /// The filter (every field optional).
    #[serde(flatten)]
    pub filter: ScoreFilter,
    /// Break the score down by this dimension.
    pub by: Option<Dimension>,
}

/// The breakdown parameter of `GET /api/v1/score` (documented apart from the filter).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreakdownParam {
    /// Break the score down by this dimension.
    pub by: Option<Dimension>,
}

/// Answer of `GET /api/v1/score`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoresAnswer {
    /// The filter applied.
    pub filter: ScoreFilter,
    /// Score over the matching instances, each once.
    pub score: ScoreSummary,
    /// `[value, score]` per value of `by`, sorted by value; empty without `by`.
    pub breakdown: Vec<(String, ScoreSummary)>,
}

/// The score answer over the caller's scope.
async fn score_answer(app: &App, principal: &Principal, q: ScoresQuery) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let model = app
        .compliance_model_of(|a| assessment_in_scope(principal, a))
        .await;
    let breakdown =
        q.by.map(|d| model.scores_by(d, &q.filter))
            .unwrap_or_default();
    Json(ScoresAnswer {
        score: model.score(&q.filter),
        filter: q.filter,
        breakdown,
    })
    .into_response()
}

/// `GET /api/v1/score`: the compliance score with every model filter and a breakdown.
#[utoipa::path(
    get,
    path = "/api/v1/score",
    tag = "scores",
    security(("bearer" = ["reader"])),
    params(ScoreFilter, BreakdownParam),
    responses(
        (status = 200, description = "The score over the de-duplicated instances (of the assessments in the caller's scope) matching every given criterion, and its breakdown", body = ScoresAnswer),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn score(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ScoresQuery>,
) -> Response {
    score_answer(&app, &principal, q).await
}

/// `GET /api/v1/scores`: the earlier name of `GET /api/v1/score`, answered the same.
#[utoipa::path(
    get,
    path = "/api/v1/scores",
    tag = "scores",
    security(("bearer" = ["reader"])),
    params(ScoreFilter, BreakdownParam),
    responses(
        (status = 200, description = "As `GET /api/v1/score` (this earlier name is kept for existing integrations; new ones use `/api/v1/score`)", body = ScoresAnswer),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn scores(
    State(app): State<Arc<App>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ScoresQuery>,
) -> Response {
    score_answer(&app, &principal, q).await
}

/// Body of `PUT /api/v1/actions/{action}/status`: exactly one of `tenant` (technical and
/// provider-managed actions) or `group` (operational, documentation), and the fields to
/// change (the semantics of [`ManualUpdate`]).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// Tenant id.
    pub tenant: Option<String>,
    /// Group id.
    pub group: Option<String>,
    /// New implementation status.
    pub implementation_status: Option<ImplementationStatus>,
    /// New test status.
    pub test_status: Option<TestStatus>,
    /// New testing source.
    pub testing_source: Option<TestingSource>,
    /// Parent action (testing source `parent`).
    pub parent: Option<String>,
    /// Owner (contributor).
    pub assigned_to: Option<String>,
    /// Implementation notes (contributor); `implementation_notes` is accepted for it too.
    #[serde(alias = "implementation_notes")]
    pub notes: Option<String>,
    /// When the implementation status was set (RFC 3339; default: now when it changes).
    pub implementation_date: Option<DateTime<Utc>>,
    /// Test notes (assessor).
    pub test_notes: Option<String>,
    /// When the test status was set (RFC 3339, assessor; default: now when it changes).
    pub test_date: Option<DateTime<Utc>>,
    /// Evidence links to add.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// `PUT /api/v1/actions/{action}/status`.
#[utoipa::path(
    put,
    path = "/api/v1/actions/{action}/status",
    tag = "actions",
    security(("bearer" = ["contributor"])),
    params(("action" = String, Path, description = "Improvement action id")),
    request_body = StatusBody,
    responses(
        (status = 200, description = "The saved manual status", body = crate::model::ManualStatus),
        (status = 400, description = "Invalid body or field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Caller lacks the role (assessor for a test status, date or notes) or scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown action", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "JSON of the wrong shape", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn set_status(
    State(app): State<Arc<App>>,
    principal: Principal,
    action: Result<Path<String>, PathRejection>,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> Response {
    // The operation's declared role first, so a caller without it is refused whatever it sent.
    if let Err(p) = principal.require(Role::Contributor) {
        return p.into_response();
    }
    let Ok(Path(action)) = action else {
        return INVALID_ACTION_ID
            .at(
                StatusCode::BAD_REQUEST,
                "the action id is not valid UTF-8 text",
            )
            .into_response();
    };
    let body = match body {
        Ok(Json(body)) => body,
        Err(e) => return crate::server::problem::json_rejection(&e).into_response(),
    };
    let set = ActionSet {
        tenant: body.tenant,
        group: body.group,
        action,
        update: ManualUpdate {
            testing_source: body.testing_source,
            implementation_status: body.implementation_status,
            test_status: body.test_status,
            parent: body.parent,
            assigned_to: body.assigned_to,
            notes: body.notes,
            implementation_date: body.implementation_date,
            test_notes: body.test_notes,
            test_date: body.test_date,
            evidence: body.evidence,
        },
    };
    match record_action_set(&app, &principal, set).await {
        Ok(record) => Json(record).into_response(),
        Err(refusal) => refusal.problem.into_response(),
    }
}

/// Why [`record_action_set`] saved nothing: the problem details to answer with, and the field
/// of the update they are about, when one (`notes`, `assigned_to`, `evidence`, `parent`,
/// `test_status`, `test_notes`, `test_date` ...), so a form can show the message next to it.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The problem (403, 404, 400 or 503; see [`set_status`]).
    pub problem: Problem,
    /// The field at fault, if one.
    pub field: Option<&'static str>,
}

impl From<Problem> for Refusal {
    fn from(problem: Problem) -> Self {
        Refusal {
            problem,
            field: None,
        }
    }
}

/// Record a person's update of one action instance, the one body behind
/// `PUT /api/v1/actions/{action}/status` and the dashboard's workflow form: the caller's role
/// (assessor for a test status, test date or test notes, else contributor) and scope, the checks of
/// [`check_action_set`], then [`crate::app::model::ModelRuntime::apply_action_set`]. Returns
/// the saved record.
///
/// # Errors
///
/// A [`Refusal`]; nothing is saved then.
pub async fn record_action_set(
    app: &App,
    principal: &Principal,
    set: ActionSet,
) -> Result<ManualStatus, Refusal> {
    // Test status (with its date and notes) decides points: an assessor's call; the rest is a
    // contributor's.
    let u = &set.update;
    let field = if u.test_status.is_some() {
        Some("test_status")
    } else if u.test_notes.is_some() {
        Some("test_notes")
    } else if u.test_date.is_some() {
        Some("test_date")
    } else {
        None
    };
    let needed = if field.is_some() {
        Role::Assessor
    } else {
        Role::Contributor
    };
    principal
        .require(needed)
        .map_err(|problem| Refusal { problem, field })?;
    if let Some(t) = &set.tenant {
        principal.require_tenant(needed, t)?;
    }
    if let Some(g) = &set.group
        && !principal.scope.allows_group(g)
    {
        return Err(
            crate::server::auth::forbidden("the group is outside the caller's scope").into(),
        );
    }
    let checked = check_action_set(
        &app.model,
        &app.evaluator,
        app.store.as_ref(),
        &app.config,
        &set,
    )
    .await;
    let scope = match checked {
        Ok(s) => s,
        Err(e) => {
            let field = match &e {
                ActionSetError::Invalid { field, .. } => Some(*field),
                ActionSetError::BadActionId { field }
                | ActionSetError::UnknownAction { field, .. }
                    if *field == "parent" =>
                {
                    Some("parent")
                }
                _ => None,
            };
            return Err(Refusal {
                problem: rejection(app, &e),
                field,
            });
        }
    };
    match app
        .model
        .apply_action_set(
            app.store.as_ref(),
            scope,
            &set.action,
            set.update,
            &Actor {
                subject: principal.subject.clone(),
                request_id: Some(uuid::Uuid::new_v4().to_string()),
            },
            Utc::now(),
        )
        .await
    {
        Ok(record) => Ok(record),
        Err(e) => Err(store_failed(app, e.kind()).into()),
    }
}

/// The problem details of a refused action set.
pub(crate) fn rejection(app: &App, e: &ActionSetError) -> Problem {
    match e {
        // The path's action id names a resource: one that cannot exist is not found (like an
        // unknown one); a malformed `parent` in the body is a bad request.
        ActionSetError::BadActionId { field } => INVALID_ACTION_ID.at(
            if *field == "action" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            },
            e.to_string(),
        ),
        ActionSetError::UnknownAction { field, id } => UNKNOWN_ACTION.at(
            if *field == "action" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            },
            format!(
                "{field}: no template or catalog knows the action {:?}",
                excerpt(id, 128)
            ),
        ),
        ActionSetError::Invalid { .. } => INVALID_FIELD.at(StatusCode::BAD_REQUEST, e.to_string()),
        ActionSetError::Scope(m) => WRONG_SCOPE.at(StatusCode::BAD_REQUEST, excerpt(m, 300)),
        ActionSetError::Store(s) => store_failed(app, s.kind()),
    }
}
