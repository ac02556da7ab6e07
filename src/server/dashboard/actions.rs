//! `GET /actions/{action}?tenant=T` (technical and provider-managed actions) or `?group=G`
//! (operational and documentation actions): one improvement action instance, with its title,
//! description, the template's implementation guidance and expected evidence (when given),
//! points, testing logic (the catalog's CEL rule and description), current implementation
//! and test status with the signals and reason behind them, the controls it serves, its stored
//! history (test-status transitions and the ledger) and its evidence; and the manual workflow
//! form.
//!
//! `POST` the same URL (form fields `csrf`, `implementation_status`, `test_status`,
//! `testing_source`, `assigned_to`, `notes`, `evidence`): only the fields that differ from the
//! current values are sent, as one update, through
//! [`crate::server::assessments::record_action_set`] (the API's `PUT
//! /api/v1/actions/{action}/status` body: roles, scope, limits, store). Saved: `303` back to
//! the page (Post/Redirect/Get) with a notice. Refused: the page again with the refusal's
//! status and the message next to its field. A reader sees no form; a contributor's form has
//! no test status or testing source (an assessor's call, refused by the shared body too).
//! An instance outside the principal's scope, or in no active assessment of it (a group's
//! instance is shared by the tenants of the group), is 404.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::App;
use crate::app::model::ActionSet;
use crate::evaluation::{ImplementationStatus, TestStatus};
use crate::model::report::TestingSource;
use crate::model::template::Responsibility;
use crate::model::{Instance, InstanceKey, InstanceScope, ManualUpdate};
use crate::server::assessments::record_action_set;
use crate::server::auth::Role;
use crate::server::dashboard::assessments::control_status_label;
use crate::server::dashboard::filters::{assessments_in_scope, parse_source};
use crate::server::dashboard::layout::{
    self, IMPLEMENTATION_STATUSES, Nav, TESTING_SOURCES, implementation_label, points, source_name,
    status_badge, test_status_label, time,
};
use crate::server::dashboard::overview::{action_href, scope_label};
use crate::server::dashboard::session::{Session, SignedIn};
use crate::server::dashboard::{check_post, error_page, html_response};
use crate::server::input::{MAX_ASSIGNED_TO_CHARS, MAX_EVIDENCE_LINK_CHARS, MAX_NOTES_CHARS};
use crate::signals::SignalValue;
use crate::store::EvidenceKind;
use crate::store::audit::{AuditEntry, AuditFilter, AuditOrder};

/// Most transitions and audit entries listed (newest first).
pub const MAX_HISTORY_ROWS: usize = 50;

/// The newest [`MAX_HISTORY_ROWS`] audit entries of one action instance, newest first: the
/// rows of its tenant or group whose object is the action (its manual status fields and its
/// evidence), asked of the store directly (object filter, newest first), however many other
/// rows the tenant or group has.
async fn audit_of(
    app: &App,
    scope: &InstanceScope,
    action: &str,
) -> Result<Vec<AuditEntry>, crate::store::StoreError> {
    let (tenant, group) = match scope {
        InstanceScope::Tenant(t) => (Some(t.clone()), None),
        InstanceScope::Group(g) => (None, Some(g.clone())),
    };
    let filter = AuditFilter {
        tenant,
        group,
        object: Some(action.to_owned()),
        order: AuditOrder::NewestFirst,
        ..AuditFilter::default()
    };
    let limit = u32::try_from(MAX_HISTORY_ROWS).unwrap_or(u32::MAX);
    app.store.audit_entries(&filter, limit).await
}

fn json_text(v: &Option<serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "(none)".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Query of the action page: the instance's scope, and the notice after a save.
#[derive(Debug, Default, Deserialize)]
pub struct ScopeQuery {
    /// Tenant id (technical and provider-managed actions).
    pub tenant: Option<String>,
    /// Group id (operational and documentation actions).
    pub group: Option<String>,
    /// `saved` or `unchanged` after a POST.
    pub notice: Option<String>,
}

impl ScopeQuery {
    fn scope(&self) -> Option<InstanceScope> {
        match (&self.tenant, &self.group) {
            (Some(t), None) => Some(InstanceScope::Tenant(t.clone())),
            (None, Some(g)) => Some(InstanceScope::Group(g.clone())),
            _ => None,
        }
    }
}

/// The workflow form's fields (every one optional: absent or equal to the current value means
/// "unchanged").
#[derive(Debug, Default, Clone, Deserialize)]
pub struct WorkflowForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
    /// An implementation status name.
    pub implementation_status: Option<String>,
    /// A test status name.
    pub test_status: Option<String>,
    /// `automatic`, `manual` or `parent`.
    pub testing_source: Option<String>,
    /// Owner.
    pub assigned_to: Option<String>,
    /// Implementation notes.
    pub notes: Option<String>,
    /// Test notes (assessor).
    pub test_notes: Option<String>,
    /// An evidence link to add.
    pub evidence: Option<String>,
}

/// What the form shows besides the current values: the posted values and the errors, by field.
#[derive(Debug, Default)]
pub(super) struct FormState {
    /// The values posted (shown again after a refusal).
    pub(super) posted: Option<WorkflowForm>,
    /// Messages by field (`file` for the evidence upload, `form` for the whole form).
    pub(super) errors: Vec<(&'static str, String)>,
}

impl FormState {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

fn signal_text(v: &SignalValue) -> String {
    match v {
        SignalValue::Bool(b) => b.to_string(),
        SignalValue::Number(n) => n.to_string(),
        SignalValue::Text(t) => t.clone(),
    }
}

/// Line breaks as a browser posts them (`\r\n`) made `\n`.
fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n")
}

fn field_error(state: &FormState, field: &str) -> Markup {
    html! {
        @if let Some(e) = state.error(field) {
            p.error id=(format!("{field}-error")) { "Error: " (e) }
        }
    }
}

fn described_by(state: &FormState, field: &str, hint: bool) -> Option<String> {
    let mut ids = Vec::new();
    if hint {
        ids.push(format!("{field}-hint"));
    }
    if state.error(field).is_some() {
        ids.push(format!("{field}-error"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// The template's implementation guidance and expected evidence of an instance, each under
/// its heading when the template gives it (nothing otherwise).
fn template_guidance(inst: &Instance) -> Markup {
    html! {
        @if !inst.guidance.is_empty() {
            h3 { "Implementation guidance" }
            p.notes data-testid="guidance" { (inst.guidance) }
        }
        @if !inst.expected_evidence.is_empty() {
            h3 { "Expected evidence" }
            p.notes data-testid="expected-evidence" { (inst.expected_evidence) }
        }
    }
}

fn workflow_form(session: &Session, href: &str, inst: &Instance, state: &FormState) -> Markup {
    let role = session.principal.role;
    let posted = state.posted.as_ref();
    let implementation = posted
        .and_then(|p| p.implementation_status.clone())
        .unwrap_or_else(|| inst.implementation_status.as_str().to_owned());
    let test = posted
        .and_then(|p| p.test_status.clone())
        .unwrap_or_else(|| inst.test_status.as_str().to_owned());
    let source = posted
        .and_then(|p| p.testing_source.clone())
        .unwrap_or_else(|| source_name(inst.testing_source).to_owned());
    let assigned = posted
        .and_then(|p| p.assigned_to.clone())
        .unwrap_or_else(|| inst.assigned_to.clone().unwrap_or_default());
    let notes = posted
        .and_then(|p| p.notes.clone())
        .unwrap_or_else(|| inst.notes.clone().unwrap_or_default());
    let test_notes = posted
        .and_then(|p| p.test_notes.clone())
        .unwrap_or_else(|| inst.test_notes.clone().unwrap_or_default());
    let evidence = posted.and_then(|p| p.evidence.clone()).unwrap_or_default();
    html! {
        form.workflow id="workflow" method="post" action=(href) novalidate {
            input type="hidden" name="csrf" value=(session.csrf);
            div.field {
                label for="implementation_status" { "Implementation status" }
                select id="implementation_status" name="implementation_status"
                    aria-invalid=[state.error("implementation_status").map(|_| "true")]
                    aria-describedby=[described_by(state, "implementation_status", false)] {
                    @for s in IMPLEMENTATION_STATUSES {
                        option value=(s.as_str()) selected[implementation == s.as_str()] { (implementation_label(s)) }
                    }
                }
                (field_error(state, "implementation_status"))
            }
            @if role >= Role::Assessor {
                div.field {
                    label for="test_status" { "Test status" }
                    select id="test_status" name="test_status"
                        aria-invalid=[state.error("test_status").map(|_| "true")]
                        aria-describedby=[described_by(state, "test_status", true)] {
                        @for s in TestStatus::ALL {
                            option value=(s.as_str()) selected[test == s.as_str()] { (test_status_label(s)) }
                        }
                    }
                    p.hint id="test_status-hint" { "Setting a test status makes the testing source manual: the status then decides the points." }
                    (field_error(state, "test_status"))
                }
                div.field {
                    label for="testing_source" { "Testing source" }
                    select id="testing_source" name="testing_source"
                        aria-invalid=[state.error("testing_source").map(|_| "true")]
                        aria-describedby=[described_by(state, "testing_source", false)] {
                        @for s in TESTING_SOURCES {
                            option value=(source_name(s)) selected[source == source_name(s)] { (source_name(s)) }
                        }
                    }
                    (field_error(state, "testing_source"))
                }
                div.field {
                    label for="test_notes" { "Test notes" }
                    textarea id="test_notes" name="test_notes" maxlength=(MAX_NOTES_CHARS)
                        aria-invalid=[state.error("test_notes").map(|_| "true")]
                        aria-describedby=[described_by(state, "test_notes", false)] { (test_notes) }
                    (field_error(state, "test_notes"))
                }
            } @else {
                p.muted { "Test status, testing source and test notes are set by an assessor." }
            }
            div.field {
                label for="assigned_to" { "Assigned to" }
                input type="text" id="assigned_to" name="assigned_to" value=(assigned)
                    maxlength=(MAX_ASSIGNED_TO_CHARS) autocomplete="off"
                    aria-invalid=[state.error("assigned_to").map(|_| "true")]
                    aria-describedby=[described_by(state, "assigned_to", false)];
                (field_error(state, "assigned_to"))
            }
            div.field {
                label for="notes" { "Implementation notes" }
                textarea id="notes" name="notes" maxlength=(MAX_NOTES_CHARS)
                    aria-invalid=[state.error("notes").map(|_| "true")]
                    aria-describedby=[described_by(state, "notes", true)] { (notes) }
                p.hint id="notes-hint" { "At most " (MAX_NOTES_CHARS) " characters." }
                (field_error(state, "notes"))
            }
            div.field {
                label for="evidence" { "Add an evidence link" }
                input type="text" id="evidence" name="evidence" value=(evidence)
                    inputmode="url" maxlength=(MAX_EVIDENCE_LINK_CHARS) autocomplete="off"
                    aria-invalid=[state.error("evidence").map(|_| "true")]
                    aria-describedby=[described_by(state, "evidence", true)];
                p.hint id="evidence-hint" { "A URL or a document reference; optional." }
                (field_error(state, "evidence"))
            }
            button type="submit" { "Save" }
        }
    }
}

/// The action page of one instance, with `state`'s errors, answered with `status`.
pub(super) async fn render(
    app: &App,
    session: &Session,
    scope: &InstanceScope,
    action: &str,
    notice: Option<&str>,
    state: FormState,
    status: StatusCode,
) -> Response {
    let now = Utc::now();
    let model = app.compliance_model().await;
    let key = InstanceKey {
        scope: scope.clone(),
        action: action.to_owned(),
    };
    let Some(inst) = model.instance(&key) else {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(session),
            "No active assessment has this improvement action in this scope.",
        );
    };
    let catalog = app.evaluator.action(action).cloned();
    let template_action = app
        .model
        .registry()
        .iter()
        .flat_map(|t| t.actions.iter())
        .find(|a| a.id == action)
        .cloned();
    let result = match scope {
        // One tenant's whole evaluation: the signals its rule read are shown.
        InstanceScope::Tenant(t) => app
            .evaluation(t)
            .await
            .and_then(|e| e.actions.into_iter().find(|a| a.action_id == action)),
        InstanceScope::Group(_) => None,
    };
    let mut store_failed = false;
    let (transitions, events) = match scope {
        InstanceScope::Tenant(t) => {
            let read = async {
                let tr = app.store.transitions(t, Some(action), None).await?;
                let ev = app.store.alert_events(t, Some(action), None).await?;
                Ok::<_, crate::store::StoreError>((tr, ev))
            };
            match read.await {
                Ok(x) => x,
                Err(e) => {
                    app.metrics.observe_store_error(e.kind());
                    store_failed = true;
                    (Vec::new(), Vec::new())
                }
            }
        }
        InstanceScope::Group(_) => (Vec::new(), Vec::new()),
    };
    let ledger = crate::report::ledger::ledger(&transitions, &events, now)
        .into_iter()
        .next();
    let evidence = match app.store.evidence_of(scope, action).await {
        Ok(rows) => rows,
        Err(e) => {
            app.metrics.observe_store_error(e.kind());
            store_failed = true;
            Vec::new()
        }
    };
    let audit = match audit_of(app, scope, action).await {
        Ok(a) => a,
        Err(e) => {
            app.metrics.observe_store_error(e.kind());
            store_failed = true;
            Vec::new()
        }
    };
    let manual = match app.store.manual_status(scope, action).await {
        Ok(m) => m,
        Err(e) => {
            app.metrics.observe_store_error(e.kind());
            store_failed = true;
            None
        }
    };
    let allowed = assessments_in_scope(&app.model.assessments, &session.principal);
    let assessments: Vec<&String> = inst
        .assessments
        .iter()
        .filter(|a| allowed.contains(*a))
        .collect();
    if assessments.is_empty() {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(session),
            "No active assessment has this improvement action in this scope.",
        );
    }
    let controls: Vec<(String, String, String, String, &'static str)> = model
        .reports()
        .into_iter()
        .filter(|r| inst.assessments.contains(&r.id) && allowed.contains(&r.id))
        .flat_map(|r| {
            r.controls
                .iter()
                .filter(|c| c.actions.iter().any(|a| a == action))
                .map(|c| {
                    (
                        r.id.clone(),
                        r.certification.clone(),
                        c.id.clone(),
                        c.title.clone(),
                        control_status_label(c.status),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let href = action_href(scope, action);
    let evidence_href = href.replacen('?', "/evidence?", 1);
    let can_edit = session.principal.role >= Role::Contributor;
    let content = html! {
        p.muted { a href="/" { "Overview" } " › improvement action" }
        h1 { (inst.title) }
        @match notice {
            Some("saved") => p.notice role="status" { "Saved. The compliance score counts the new status now." },
            Some("unchanged") => p.notice role="status" { "Nothing was changed." },
            Some("evidence") => p.notice role="status" { "Evidence attached." },
            _ => {},
        }
        @if !state.errors.is_empty() {
            div.error-summary role="alert" {
                p { "Nothing was saved:" }
                ul { @for (f, m) in &state.errors { li { a href=(if *f == "form" { "#workflow".to_owned() } else { format!("#{f}") }) { (m) } } } }
            }
        }
        @if store_failed { p.error-summary role="status" { "Part of this page could not be read from the store." } }
        dl.facts {
            dt { "Action" } dd { code { (action) } }
            dt { "Scope" } dd { (scope_label(scope)) }
            dt { "Category" } dd { (inst.category) }
            dt { "Solution" } dd { (inst.solution) }
            dt { "Type" } dd { (inst.implementation_type.as_str()) ", " (match inst.responsibility { Responsibility::Customer => "customer", Responsibility::Provider => "provider" }) "-managed" }
            dt { "Points" } dd { (points(inst.points_achieved)) " of " (points(inst.points_possible)) " achieved (the action is worth " (inst.points) ")" }
            dt { "Implementation status" } dd data-testid="implementation-status" { (implementation_label(inst.implementation_status)) }
            dt { "Test status" } dd data-testid="test-status" { (status_badge(inst.test_status)) }
            dt { "Testing source" } dd { (source_name(inst.testing_source)) }
            @if let Some(since) = inst.status_since.or(ledger.as_ref().map(|l| l.since)) { dt { "Status since" } dd { (time(since)) } }
            @if let Some(d) = inst.implementation_date { dt { "Implementation date" } dd { (time(d)) } }
            @if let Some(d) = inst.test_date { dt { "Test date" } dd { (time(d)) } }
            dt { "Assigned to" } dd { (inst.assigned_to.as_deref().unwrap_or("nobody")) }
            @if let Some(n) = &inst.notes { dt { "Implementation notes" } dd.notes { (n) } }
            @if let Some(n) = &inst.test_notes { dt { "Test notes" } dd.notes { (n) } }
            dt { "Assessments" } dd { @for (n, a) in assessments.iter().enumerate() { @if n > 0 { ", " } a href=(format!("/assessments/{a}")) { (a) } } }
            dt { "Regulations" } dd { (inst.regulations.iter().cloned().collect::<Vec<_>>().join(", ")) }
        }
        h2 { "Description and implementation guidance" }
        @if let Some(c) = &catalog { @if !c.description.is_empty() { p { (c.description) } } }
        @if let Some(t) = &template_action {
            @if !t.description_title.is_empty() { h3 { (t.description_title) } }
            @if !t.description.is_empty() { pre { (t.description) } }
        }
        (template_guidance(inst))
        @if catalog.as_ref().is_none_or(|c| c.description.is_empty()) && template_action.as_ref().is_none_or(|t| t.description.is_empty()) && inst.guidance.is_empty() && inst.expected_evidence.is_empty() {
            p.muted { "The template and catalog give no description." }
        }
        h2 { "Testing logic" }
        @match (&catalog, inst.testing_logic.is_empty()) {
            (Some(c), _) => {
                p { "Tested automatically by this rule over the connector's signals:" }
                pre { code { (c.rule) } }
            }
            (None, false) => pre { code { (inst.testing_logic) } },
            (None, true) => p { "Tested by a person: no rule decides this action's status." },
        }
        @if let Some(reason) = &inst.reason { p { strong { "Why: " } (reason) } }
        @if let Some(r) = &result {
            @if !r.signals.is_empty() {
                table {
                    caption { "Signals behind the current result" }
                    thead { tr { th scope="col" { "Signal" } th scope="col" { "Value" } } }
                    tbody { @for (k, v) in &r.signals { tr { th scope="row" { code { (k) } } td { code { (signal_text(v)) } } } } }
                }
            }
        }
        @if !controls.is_empty() {
            h2 { "Controls" }
            table {
                thead { tr { th scope="col" { "Assessment" } th scope="col" { "Regulation" } th scope="col" { "Control" } th scope="col" { "Status" } } }
                tbody { @for (a, reg, id, title, status) in &controls {
                    tr { td { a href=(format!("/assessments/{a}")) { (a) } } td { (reg) } th scope="row" { (id) " " (title) } td { (status) } }
                } }
            }
        }
        h2 { "History" }
        @if let Some(l) = &ledger {
            p { (l.transitions) " stored transitions, " (l.regressions) " regressions, " (l.recoveries) " recoveries."
                @if let Some(f) = l.failing_since { " Failing since " (time(f)) "." } }
        }
        @if let Some(m) = &manual { p { "Manual record last changed " (time(m.updated_at)) "." } }
        @if transitions.is_empty() {
            p.muted { "No stored test-status transitions." }
        } @else {
            table {
                caption { "Test-status transitions, newest first" }
                thead { tr { th scope="col" { "When" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" class="num" { "Points" } th scope="col" { "Reason" } } }
                tbody { @for row in transitions.iter().rev().take(MAX_HISTORY_ROWS) {
                    @let t = &row.transition;
                    tr {
                        th scope="row" { (time(t.at)) }
                        td { @match t.from_status { Some(s) => (status_badge(s)), None => span.muted { "first evaluation" } } }
                        td { (status_badge(t.to_status)) }
                        td.num { (points(t.points_achieved)) " / " (points(t.points_possible)) }
                        td { (t.reason.as_deref().unwrap_or("")) }
                    }
                } }
            }
        }
        h2 id="audit" { "Audit log" }
        @if audit.is_empty() {
            p.muted { "No recorded change by a person." }
        } @else {
            table {
                caption { "Changes by people, newest first" }
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Change" } th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                tbody { @for e in &audit {
                    @let r = &e.record;
                    tr {
                        th scope="row" { (time(r.at)) }
                        td { (r.actor) }
                        td { (r.action) }
                        td { (r.field.as_deref().unwrap_or("")) }
                        td.notes { (json_text(&r.old_value)) }
                        td.notes { (json_text(&r.new_value)) }
                    }
                } }
            }
        }
        h2 id="evidence-h" { "Evidence" }
        @if evidence.is_empty() && inst.evidence.is_empty() {
            p.muted { "No evidence yet." }
        }
        @if !evidence.is_empty() {
            table {
                caption { "Evidence files and links, oldest first" }
                thead { tr {
                    th scope="col" { "Evidence" } th scope="col" { "Kind" } th scope="col" class="num" { "Size" }
                    th scope="col" { "SHA-256" } th scope="col" { "Added by" } th scope="col" { "Added" } th scope="col" { "State" }
                } }
                tbody { @for e in &evidence {
                    tr {
                        th scope="row" {
                            @match e.kind {
                                EvidenceKind::Link => a href=(e.name) rel="noreferrer noopener" { (e.name) },
                                _ => a href=(format!("/evidence/{}", e.id)) { (e.name) },
                            }
                        }
                        td { (e.kind.as_str()) @if let Some(m) = &e.media_type { br; span.muted { (m) } } }
                        td.num { @if let Some(n) = e.size { (n) " bytes" } }
                        td { @if let Some(h) = &e.sha256 { code title=(h) { (h.get(..12).unwrap_or(h)) "…" } } }
                        td { (e.uploaded_by) }
                        td { (time(e.uploaded_at)) }
                        td {
                            @if let Some(w) = e.withdrawn_at { "withdrawn " (time(w)) @if let Some(by) = &e.withdrawn_by { " by " (by) } }
                            @else if let Some(s) = e.superseded_by { "corrected by #" (s) }
                            @else { "current" }
                        }
                    }
                } }
            }
        }
        @if !inst.evidence.is_empty() {
            h3 { "Links of the manual record" }
            ul { @for e in &inst.evidence { li {
                @if e.starts_with("https://") || e.starts_with("http://") { a href=(e) rel="noreferrer noopener" { (e) } } @else { (e) }
            } } }
        }
        @if can_edit {
            form.workflow id="evidence-upload" method="post" enctype="multipart/form-data"
                action=(evidence_href) {
                input type="hidden" name="csrf" value=(session.csrf);
                div.field {
                    label for="file" { "Evidence file" }
                    input type="file" id="file" name="file" required
                        aria-invalid=[state.error("file").map(|_| "true")]
                        aria-describedby=[described_by(&state, "file", true)];
                    p.hint id="file-hint" {
                        "At most " (app.config.evidence.max_file_bytes) " bytes; types: "
                        (app.config.evidence.allowed_types.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")) "."
                    }
                    (field_error(&state, "file"))
                }
                button type="submit" { "Upload evidence" }
            }
        }
        h2 { "Manual workflow" }
        @if can_edit {
            (workflow_form(session, &href, inst, &state))
        } @else {
            p.muted { "Your role (" (session.principal.role.as_str()) ") may read this action but not change it." }
        }
    };
    html_response(
        status,
        layout::page(&inst.title, Nav::Overview, Some(session), content),
    )
}

/// The instance scope of the query, when given and in the session's scope (else the 400 or
/// 404 page).
pub(super) fn scope_or_error(
    session: &Session,
    q: &ScopeQuery,
) -> Result<InstanceScope, Box<Response>> {
    let Some(scope) = q.scope() else {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            Some(session),
            "Give exactly one of ?tenant= and ?group=.",
        )));
    };
    let allowed = match &scope {
        InstanceScope::Tenant(t) => session.principal.scope.allows_tenant(t),
        InstanceScope::Group(g) => session.principal.scope.allows_group(g),
    };
    if allowed {
        Ok(scope)
    } else {
        Err(Box::new(error_page(
            StatusCode::NOT_FOUND,
            Some(session),
            "No active assessment has this improvement action in this scope.",
        )))
    }
}

/// `GET /actions/{action}`.
pub async fn page(
    State(app): State<Arc<App>>,
    signed: SignedIn,
    Path(action): Path<String>,
    Query(q): Query<ScopeQuery>,
) -> Response {
    let session = &signed.session;
    let scope = match scope_or_error(session, &q) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    render(
        &app,
        session,
        &scope,
        &action,
        q.notice.as_deref(),
        FormState::default(),
        StatusCode::OK,
    )
    .await
}

/// The update a posted form asks for against the instance's current values, or the fields'
/// errors.
fn update_of(
    f: &WorkflowForm,
    inst: &Instance,
) -> Result<ManualUpdate, Vec<(&'static str, String)>> {
    let mut update = ManualUpdate::default();
    let mut errors = Vec::new();
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(s) = given(&f.implementation_status) {
        match ImplementationStatus::parse(&s) {
            Some(v) if v != inst.implementation_status => update.implementation_status = Some(v),
            Some(_) => {}
            None => errors.push((
                "implementation_status",
                "unknown implementation status".to_owned(),
            )),
        }
    }
    if let Some(s) = given(&f.test_status) {
        match TestStatus::parse(&s) {
            Some(v) if v != inst.test_status => update.test_status = Some(v),
            Some(_) => {}
            None => errors.push(("test_status", "unknown test status".to_owned())),
        }
    }
    if let Some(s) = given(&f.testing_source) {
        match parse_source(&s) {
            Some(v) if v != inst.testing_source => update.testing_source = Some(v),
            Some(_) => {}
            None => errors.push(("testing_source", "unknown testing source".to_owned())),
        }
    }
    if let Some(a) = &f.assigned_to {
        let a = a.trim();
        if a != inst.assigned_to.as_deref().unwrap_or("") {
            update.assigned_to = Some(a.to_owned());
        }
    }
    if let Some(n) = &f.notes {
        let n = normalise(n);
        if n != inst.notes.as_deref().unwrap_or("") {
            update.notes = Some(n);
        }
    }
    if let Some(n) = &f.test_notes {
        let n = normalise(n);
        if n != inst.test_notes.as_deref().unwrap_or("") {
            update.test_notes = Some(n);
        }
    }
    if let Some(e) = given(&f.evidence) {
        update.evidence.push(e);
    }
    // A parent source needs a parent action, which this form does not ask for.
    if update.testing_source == Some(TestingSource::Parent) {
        errors.push((
            "testing_source",
            "a parent testing source needs a parent action: set it with the API or `postured action set`".to_owned(),
        ));
    }
    if errors.is_empty() {
        Ok(update)
    } else {
        Err(errors)
    }
}

/// `POST /actions/{action}`.
pub async fn save(
    State(app): State<Arc<App>>,
    signed: SignedIn,
    headers: HeaderMap,
    Path(action): Path<String>,
    Query(q): Query<ScopeQuery>,
    Form(f): Form<WorkflowForm>,
) -> Response {
    let session = &signed.session;
    if let Some(r) = check_post(&headers, Some(session), f.csrf.as_deref()) {
        return r;
    }
    let scope = match scope_or_error(session, &q) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let current = app
        .compliance_model()
        .await
        .instance(&InstanceKey {
            scope: scope.clone(),
            action: action.clone(),
        })
        .cloned();
    let Some(inst) = current else {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(session),
            "No active assessment has this improvement action in this scope.",
        );
    };
    let href = action_href(&scope, &action);
    let update = match update_of(&f, &inst) {
        Ok(u) => u,
        Err(errors) => {
            let state = FormState {
                posted: Some(f),
                errors,
            };
            return render(
                &app,
                session,
                &scope,
                &action,
                None,
                state,
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    if update == ManualUpdate::default() {
        return Redirect::to(&format!("{href}&notice=unchanged")).into_response();
    }
    let (tenant, group) = match &scope {
        InstanceScope::Tenant(t) => (Some(t.clone()), None),
        InstanceScope::Group(g) => (None, Some(g.clone())),
    };
    let set = ActionSet {
        tenant,
        group,
        action: action.clone(),
        update,
    };
    match record_action_set(&app, &session.principal, set).await {
        Ok(_) => Redirect::to(&format!("{href}&notice=saved")).into_response(),
        Err(refusal) => {
            let status =
                StatusCode::from_u16(refusal.problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let field = refusal.field.unwrap_or("form");
            let state = FormState {
                posted: Some(f),
                errors: vec![(field, refusal.problem.detail)],
            };
            render(&app, session, &scope, &action, None, state, status).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::template::ImplementationType;
    use crate::server::auth::{Principal, Scope};

    fn instance() -> Instance {
        Instance {
            key: InstanceKey {
                scope: InstanceScope::Group("default".into()),
                action: "gdpr.lawful_basis".into(),
            },
            title: "Document the lawful basis".into(),
            category: "Documentation".into(),
            solution: "Organisation".into(),
            implementation_type: ImplementationType::Documentation,
            responsibility: Responsibility::Customer,
            testing_source: TestingSource::Manual,
            implementation_status: ImplementationStatus::NotImplemented,
            test_status: TestStatus::None,
            credit: 0.0,
            points: 3,
            points_achieved: 0.0,
            points_possible: 3.0,
            testing_logic: String::new(),
            reason: None,
            assigned_to: Some("Ana".into()),
            notes: Some("line 1\nline 2".into()),
            implementation_date: None,
            test_notes: None,
            test_date: None,
            evidence: Vec::new(),
            guidance: String::new(),
            expected_evidence: String::new(),
            status_since: None,
            tenants: BTreeSet::new(),
            groups: BTreeSet::new(),
            assessments: BTreeSet::new(),
            regulations: BTreeSet::new(),
        }
    }

    fn session(role: Role) -> Session {
        Session {
            principal: Principal {
                subject: "token:1".into(),
                role,
                scope: Scope::default(),
            },
            csrf: "c".repeat(64),
            token_id: Some("1".into()),
        }
    }

    /// A contributor's form has no test status or testing source (an assessor's call); every
    /// control has a label.
    #[test]
    fn the_form_follows_the_role_and_labels_every_control() {
        let inst = instance();
        let state = FormState::default();
        let contributor =
            workflow_form(&session(Role::Contributor), "/a", &inst, &state).into_string();
        assert!(!contributor.contains("name=\"test_status\""));
        assert!(!contributor.contains("name=\"testing_source\""));
        assert!(contributor.contains("set by an assessor"));
        let assessor = workflow_form(&session(Role::Assessor), "/a", &inst, &state).into_string();
        for field in [
            "implementation_status",
            "test_status",
            "testing_source",
            "assigned_to",
            "notes",
            "evidence",
        ] {
            assert!(
                assessor.contains(&format!("<label for=\"{field}\">")),
                "{field}"
            );
            assert!(assessor.contains(&format!("id=\"{field}\"")), "{field}");
        }
        assert!(assessor.contains(&format!("value=\"{}\"", "c".repeat(64))));
    }

    /// The template's guidance and expected evidence are shown, escaped, when present.
    #[test]
    fn guidance_and_expected_evidence_are_shown_when_the_template_gives_them() {
        let mut inst = instance();
        assert_eq!(template_guidance(&inst).into_string(), "");
        inst.guidance = "Write it down <b>now</b>".into();
        let only_guidance = template_guidance(&inst).into_string();
        assert!(only_guidance.contains("<h3>Implementation guidance</h3>"));
        assert!(only_guidance.contains("Write it down &lt;b&gt;now&lt;/b&gt;"));
        assert!(!only_guidance.contains("Expected evidence"));
        inst.expected_evidence = "The signed register".into();
        let both = template_guidance(&inst).into_string();
        assert!(both.contains("<h3>Expected evidence</h3>"));
        assert!(both.contains(">The signed register</p>"));
    }

    /// Only what differs from the current values is sent; a browser's `\r\n` is `\n`.
    #[test]
    fn only_changed_fields_make_the_update() {
        let inst = instance();
        let same = WorkflowForm {
            implementation_status: Some("not_implemented".into()),
            test_status: Some("none".into()),
            testing_source: Some("manual".into()),
            assigned_to: Some(" Ana ".into()),
            notes: Some("line 1\r\nline 2".into()),
            evidence: Some(String::new()),
            ..WorkflowForm::default()
        };
        assert_eq!(update_of(&same, &inst).unwrap(), ManualUpdate::default());
        let changed = WorkflowForm {
            test_status: Some("passed".into()),
            notes: Some("new".into()),
            evidence: Some("https://x.example/e".into()),
            ..same.clone()
        };
        let u = update_of(&changed, &inst).unwrap();
        assert_eq!(u.test_status, Some(TestStatus::Passed));
        assert_eq!(u.notes.as_deref(), Some("new"));
        assert_eq!(u.evidence, ["https://x.example/e"]);
        assert_eq!(u.implementation_status, None);
        assert_eq!(u.assigned_to, None);
        let bad = WorkflowForm {
            test_status: Some("great".into()),
            testing_source: Some("parent".into()),
            ..same
        };
        let errors = update_of(&bad, &inst).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["test_status", "testing_source"]);
    }
}
