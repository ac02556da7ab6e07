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
//! - `PUT /api/v1/actions/{action}/status` with a JSON [`StatusBody`] -> the saved manual
//!   status (400 with a message for a wrong scope, 503 when the store fails). Shown from the
//!   tenant's next poll, like `postured action set`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::app::model::{ActionSet, scope_for};
use crate::evaluation::{ImplementationStatus, ScoreSummary, TestStatus};
use crate::model::report::TestingSource;
use crate::model::{Dimension, ManualUpdate, ScoreFilter};

/// `GET /api/v1/assessments`.
pub async fn assessments(State(app): State<Arc<App>>) -> Response {
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
pub async fn scores(State(app): State<Arc<App>>, Query(q): Query<ScoresQuery>) -> Response {
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
#[derive(Debug, Default, Deserialize)]
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
    /// Owner.
    pub assigned_to: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Evidence links to add.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// `PUT /api/v1/actions/{action}/status`.
pub async fn set_status(
    State(app): State<Arc<App>>,
    Path(action): Path<String>,
    Json(body): Json<StatusBody>,
) -> Response {
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
            evidence: body.evidence,
        },
    };
    let scope = match scope_for(&app.model, &app.config, &set) {
        Ok(s) => s,
        Err(m) => return (StatusCode::BAD_REQUEST, format!("{m}\n")).into_response(),
    };
    match app
        .model
        .apply_action_set(
            app.store.as_ref(),
            scope,
            &set.action,
            set.update,
            Utc::now(),
        )
        .await
    {
        Ok(record) => Json(record).into_response(),
        Err(e) => {
            app.metrics.observe_store_error(e.kind());
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store unavailable: {}\n", e.kind()),
            )
                .into_response()
        }
    }
}
