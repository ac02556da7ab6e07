//! HTTP handlers of the Compliance Manager model (mounted by `crate::server` behind the bearer
//! token). They read the app's latest reports and write manual statuses through the model
//! runtime; they never poll.
//!
//! - `GET /api/v1/assessments` -> every tenant's latest assessment reports (controls with
//!   rollups, action instances).
//! - `GET /api/v1/scores?tenant=&assessment=&regulation=&solution=&group=&category=&testing_source=&test_status=&by=`
//!   -> `{"filter", "score", "breakdown"}`: the score over the de-duplicated instances matching
//!   every given criterion, broken down `by` tenant, assessment, regulation, solution, group or
//!   category when asked.
//! - `PUT /api/v1/actions/{action}/status` with a JSON [`StatusBody`] (at most
//!   [`MAX_STATUS_BODY_BYTES`]) -> the saved manual status. Refusals are RFC 9457 problem
//!   details (`application/problem+json`, [`crate::server::problem`]): 404 when the path's
//!   action id is malformed or no template or catalog knows the action; 400 for a malformed or
//!   unknown `parent`, a body that does not parse, a field past its limit
//!   ([`crate::server::input`]) or a wrong scope; 413 for a body too large; 503 when the store fails. Nothing is saved on a
//!   refusal. Shown from the tenant's next poll, like `postured action set`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::app::model::{ActionSet, Actor};
use crate::server::auth::{Principal, Role};
use crate::server::input::{ActionSetError, check_action_set};
use crate::server::problem::{Problem, excerpt};

/// Largest accepted body of `PUT /api/v1/actions/{action}/status` (64 KiB: every field at
/// its limit fits); a larger one is answered 413.
pub const MAX_STATUS_BODY_BYTES: usize = 64 * 1024;
use crate::evaluation::{ImplementationStatus, ScoreSummary, TestStatus};
use crate::model::report::TestingSource;
use crate::model::{Dimension, ManualStatus, ManualUpdate, ScoreFilter};

/// `GET /api/v1/assessments`.
#[utoipa::path(
    get,
    path = "/api/v1/assessments",
    tag = "assessments",
    security(("bearer" = ["reader"])),
    responses((status = 200, description = "Every tenant's assessment reports", body = serde_json::Value)),
)]
pub async fn assessments(State(app): State<Arc<App>>, principal: Principal) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    Json(app.assessment_reports().await).into_response()
}

/// Query of `GET /api/v1/scores`: a [`ScoreFilter`] plus an optional breakdown.
#[derive(Debug, Deserialize)]
pub struct ScoresQuery {
    /// The filter (every field optional).
    #[serde(flatten)]
    pub filter: ScoreFilter,
    /// Break the score down by this dimension.
    pub by: Option<Dimension>,
}

/// Answer of `GET /api/v1/scores`.
#[derive(Debug, Serialize)]
pub struct ScoresAnswer {
    /// The filter applied.
    pub filter: ScoreFilter,
    /// Score over the matching instances, each once.
    pub score: ScoreSummary,
    /// `(value, score)` per value of `by`, sorted by value; empty without `by`.
    pub breakdown: Vec<(String, ScoreSummary)>,
}

/// `GET /api/v1/scores`.
#[utoipa::path(
    get,
    path = "/api/v1/scores",
    tag = "scores",
    security(("bearer" = ["reader"])),
    responses((status = 200, description = "The filtered compliance score and its breakdown", body = serde_json::Value)),
)]
pub async fn scores(
    State(app): State<Arc<App>>,
    principal: Principal,
    Query(q): Query<ScoresQuery>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let model = app.compliance_model().await;
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
        (status = 200, description = "The saved manual status", body = serde_json::Value),
        (status = 400, description = "Invalid body or field"),
        (status = 403, description = "Caller lacks the role (assessor for a test status, date or notes) or scope"),
        (status = 404, description = "Unknown action"),
        (status = 413, description = "Body too large"),
        (status = 503, description = "Store unavailable"),
    ),
)]
pub async fn set_status(
    State(app): State<Arc<App>>,
    principal: Principal,
    action: Result<Path<String>, PathRejection>,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> Response {
    let Ok(Path(action)) = action else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "/problems/invalid-action-id",
            "Invalid action id",
            "the action id is not valid UTF-8 text",
        )
        .into_response();
    };
    let body = match body {
        Ok(Json(body)) => body,
        Err(e) => {
            let status = e.status();
            let (kind, title) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                ("/problems/body-too-large", "Request body too large")
            } else {
                ("/problems/invalid-body", "Invalid request body")
            };
            // 415 and 422 keep their status; their detail is axum's, which never echoes more
            // than a field name and a position.
            return Problem::new(status, kind, title, excerpt(&e.body_text(), 300)).into_response();
        }
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
        Err(e) => {
            app.metrics.observe_store_error(e.kind());
            Err(store_unavailable(e.kind()).into())
        }
    }
}

fn store_unavailable(kind: &str) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "/problems/store-unavailable",
        "Store unavailable",
        format!("store unavailable: {kind}"),
    )
}

/// The problem details of a refused action set.
pub(crate) fn rejection(app: &App, e: &ActionSetError) -> Problem {
    match e {
        // The path's action id names a resource: one that cannot exist is not found (like an
        // unknown one); a malformed `parent` in the body is a bad request.
        ActionSetError::BadActionId { field } => Problem::new(
            if *field == "action" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            },
            "/problems/invalid-action-id",
            "Invalid action id",
            e.to_string(),
        ),
        ActionSetError::UnknownAction { field, id } => Problem::new(
            if *field == "action" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            },
            "/problems/unknown-action",
            "Unknown action",
            format!(
                "{field}: no template or catalog knows the action {:?}",
                excerpt(id, 128)
            ),
        ),
        ActionSetError::Invalid { .. } => Problem::new(
            StatusCode::BAD_REQUEST,
            "/problems/invalid-field",
            "Invalid field",
            e.to_string(),
        ),
        ActionSetError::Scope(m) => Problem::new(
            StatusCode::BAD_REQUEST,
            "/problems/wrong-scope",
            "Wrong scope",
            excerpt(m, 300),
        ),
        ActionSetError::Store(s) => {
            app.metrics.observe_store_error(s.kind());
            store_unavailable(s.kind())
        }
    }
}
