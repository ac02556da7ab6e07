//! `GET /assessments` (every assessment in the principal's scope with its score, status and
//! progress) and `GET /assessments/{id}` (its controls with their rollups, and its action
//! instances). Both read the app's current model ([`App::compliance_model`]), so a manual
//! status counts at once, as on the overview. An assessment outside the principal's scope is
//! answered 404, as if it did not exist.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use crate::app::App;
use crate::model::InstanceScope;
use crate::model::report::{AssessmentReport, AssessmentStatus, ControlStatus};
use crate::model::template::{ImplementationType, Responsibility};
use crate::server::auth::Principal;
use crate::server::dashboard::layout::{
    self, Nav, implementation_label, meter, percent, points, points_of, source_name, status_badge,
};
use crate::server::dashboard::overview::action_href;
use crate::server::dashboard::session::SignedIn;
use crate::server::dashboard::{error_page, html_response};

fn in_scope(p: &Principal, r: &AssessmentReport) -> bool {
    p.scope.allows_tenant(&r.tenant) && p.scope.allows_group(&r.group)
}

/// A person's words for an assessment status.
pub fn assessment_status_label(s: AssessmentStatus) -> &'static str {
    match s {
        AssessmentStatus::Complete => "Complete",
        AssessmentStatus::Incomplete => "Incomplete",
        AssessmentStatus::None => "Not started",
        AssessmentStatus::InProgress => "In progress",
    }
}

/// A person's words for a control status.
pub fn control_status_label(s: ControlStatus) -> &'static str {
    match s {
        ControlStatus::Passed => "Passed",
        ControlStatus::Failed => "Failed",
        ControlStatus::None => "Not tested",
        ControlStatus::OutOfScope => "Out of scope",
        ControlStatus::InProgress => "In progress",
    }
}

/// `GET /assessments`.
pub async fn list(State(app): State<Arc<App>>, signed: SignedIn) -> Response {
    let session = &signed.session;
    let reports: Vec<AssessmentReport> = app
        .compliance_model()
        .await
        .reports()
        .into_iter()
        .filter(|r| in_scope(&session.principal, r))
        .collect();
    let content = html! {
        h1 { "Assessments" }
        table {
            thead { tr {
                th scope="col" { "Assessment" }
                th scope="col" { "Regulation" }
                th scope="col" { "Tenant" }
                th scope="col" { "Group" }
                th scope="col" class="num" { "Score" }
                th scope="col" class="num" { "Points" }
                th scope="col" { "Status" }
                th scope="col" class="num" { "Progress" }
            } }
            tbody {
                @for r in &reports {
                    tr {
                        th scope="row" { a href=(format!("/assessments/{}", r.id)) { (r.template_title) } br; span.muted { code { (r.id) } } }
                        td { (r.certification) }
                        td { (r.tenant) }
                        td { (r.group) }
                        td.num { (percent(r.score.ratio)) " " (meter(&r.id, &r.score)) }
                        td.num { (points_of(&r.score)) }
                        td { (assessment_status_label(r.status)) }
                        td.num { (percent(r.progress)) " of controls passed" }
                    }
                }
                @if reports.is_empty() { tr { td colspan="8" { "No assessment in your scope." } } }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout::page("Assessments", Nav::Assessments, Some(session), content),
    )
}

/// `GET /assessments/{id}`.
pub async fn page(
    State(app): State<Arc<App>>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let session = &signed.session;
    let report = app.compliance_model().await.report(&id);
    let Some(r) = report.filter(|r| in_scope(&session.principal, r)) else {
        return error_page(StatusCode::NOT_FOUND, Some(session), "No such assessment.");
    };
    let scope_of = |t: ImplementationType, resp: Responsibility| {
        if t == ImplementationType::Technical || resp == Responsibility::Provider {
            InstanceScope::Tenant(r.tenant.clone())
        } else {
            InstanceScope::Group(r.group.clone())
        }
    };
    let title_of = |action: &str| {
        r.actions.iter().find(|a| a.id == action).map(|a| {
            (
                a.title.as_str(),
                action_href(&scope_of(a.implementation_type, a.responsibility), action),
            )
        })
    };
    let content = html! {
        h1 { (r.template_title) }
        dl.facts {
            dt { "Assessment" } dd { code { (r.id) } }
            dt { "Regulation" } dd { (r.certification) }
            dt { "Tenant" } dd { (r.tenant) }
            dt { "Group" } dd { (r.group) }
            dt { "Compliance score" } dd { (percent(r.score.ratio)) " (" (points_of(&r.score)) ") " (meter("Assessment score", &r.score)) }
            dt { "Status" } dd { (assessment_status_label(r.status)) }
            dt { "Progress" } dd { (percent(r.progress)) " of controls passed" }
            dt { "Tested automatically" } dd { (percent(r.automated_points_ratio)) " of the points" }
        }
        p { a href=(format!("/?assessment={}", url::form_urlencoded::byte_serialize(r.id.as_bytes()).collect::<String>())) { "Overview filtered to this assessment" } }
        h2 { "Controls" }
        table {
            thead { tr {
                th scope="col" { "Control" }
                th scope="col" { "Family" }
                th scope="col" { "Title" }
                th scope="col" { "Status" }
                th scope="col" { "Improvement actions" }
            } }
            tbody {
                @for c in &r.controls {
                    tr {
                        th scope="row" { (c.id) }
                        td { (c.family) }
                        td { (c.title) }
                        td { (control_status_label(c.status)) }
                        td {
                            ul.plain {
                                @for a in &c.actions {
                                    li { @match title_of(a) {
                                        Some((title, href)) => a href=(href) { (title) },
                                        None => code { (a) },
                                    } }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Improvement actions" }
        table {
            thead { tr {
                th scope="col" { "Improvement action" }
                th scope="col" { "Type" }
                th scope="col" { "Testing source" }
                th scope="col" { "Implementation status" }
                th scope="col" { "Test status" }
                th scope="col" class="num" { "Points" }
            } }
            tbody {
                @for a in &r.actions {
                    tr {
                        th scope="row" { a href=(action_href(&scope_of(a.implementation_type, a.responsibility), &a.id)) { (a.title) } br; span.muted { code { (a.id) } } }
                        td { (a.implementation_type.as_str()) }
                        td { (source_name(a.testing_source)) }
                        td { (implementation_label(a.implementation_status)) }
                        td { (status_badge(a.test_status)) }
                        td.num { (points(a.points_achieved)) " / " (points(a.points_possible)) }
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout::page(&r.template_title, Nav::Assessments, Some(session), content),
    )
}
