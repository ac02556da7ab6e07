//! `GET /`: the overview, as Compliance Manager's: the compliance score (points achieved of
//! achievable) over the instances the filters match, its trend from the stored snapshots, the
//! key improvement actions (most points still available first), and the score broken down by
//! category, solution and assessment, with a per-tenant table and its trends.
//!
//! The score is [`crate::model::ComplianceModel::score`] over the app's current model
//! ([`App::compliance_model`]: a person's manual status counts at once); the trend is the
//! stored series that matches the filter: the assessment's snapshots with an assessment, the
//! category's with a tenant and a category, the tenant's score snapshots with a tenant, else
//! one sparkline per tenant. At most [`KEY_ACTIONS`] key actions and [`TREND_DAYS`] days of
//! history are shown. A store that fails leaves the trends out (the page says so).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use maud::{Markup, html};

use crate::app::App;
use crate::evaluation::{ScoreSummary, TestStatus};
use crate::model::{Dimension, Instance, InstanceScope, ScoreFilter};
use crate::server::dashboard::filters::{FilterQuery, assessments_in_scope, query_of, scoped};
use crate::server::dashboard::layout::{
    self, Nav, TESTING_SOURCES, meter, percent, points, points_of, source_name, sparkline,
    status_badge, test_status_label,
};
use crate::server::dashboard::session::SignedIn;
use crate::server::dashboard::{error_page, html_response};

/// Most key improvement actions listed.
pub const KEY_ACTIONS: usize = 15;
/// Days of stored history the trends cover.
pub const TREND_DAYS: i64 = 90;

/// The link to an instance's page.
pub fn action_href(scope: &InstanceScope, action: &str) -> String {
    let (k, v) = match scope {
        InstanceScope::Tenant(t) => ("tenant", t),
        InstanceScope::Group(g) => ("group", g),
    };
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair(k, v);
    format!("/actions/{action}?{}", q.finish())
}

/// `tenant contoso` / `group eu`.
pub fn scope_label(scope: &InstanceScope) -> String {
    match scope {
        InstanceScope::Tenant(t) => format!("tenant {t}"),
        InstanceScope::Group(g) => format!("group {g}"),
    }
}

fn select(id: &str, label: &str, current: Option<&str>, options: &[(String, String)]) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            select id=(id) name=(id) {
                option value="" { "All" }
                @for (value, text) in options {
                    option value=(value) selected[current == Some(value.as_str())] { (text) }
                }
            }
        }
    }
}

fn plain(values: BTreeSet<&str>) -> Vec<(String, String)> {
    values
        .into_iter()
        .map(|v| (v.to_owned(), v.to_owned()))
        .collect()
}

fn breakdown(caption: &str, first: &str, rows: &[(String, ScoreSummary)]) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr {
                th scope="col" { (first) }
                th scope="col" class="num" { "Score" }
                th scope="col" { span.muted { "Bar" } }
                th scope="col" class="num" { "Points achieved" }
                th scope="col" class="num" { "Points achievable" }
            } }
            tbody {
                @for (name, s) in rows {
                    tr {
                        th scope="row" { (name) }
                        td.num { (percent(s.ratio)) }
                        td { (meter(name, s)) }
                        td.num { (points(s.points_achieved)) }
                        td.num { (points(s.points_possible)) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="5" { "Nothing matches the filters." } } }
            }
        }
    }
}

/// The stored series the filter's trend is drawn from, with its label; `Ok(None)` when no
/// single series matches (no tenant or assessment chosen).
async fn trend(
    app: &App,
    filter: &ScoreFilter,
    since: DateTime<Utc>,
) -> Result<Option<(String, Vec<(DateTime<Utc>, f64)>)>, crate::store::StoreError> {
    if let Some(a) = &filter.assessment {
        let Some(tenant) = app
            .model
            .assessments
            .iter()
            .find(|x| &x.id == a)
            .map(|x| x.tenant.clone())
        else {
            return Ok(None);
        };
        let rows = app.store.assessment_history(&tenant, Some(since)).await?;
        let series = rows
            .into_iter()
            .filter(|r| &r.assessment == a)
            .map(|r| (r.at, r.score.ratio))
            .collect();
        return Ok(Some((format!("Assessment {a}"), series)));
    }
    let Some(tenant) = &filter.tenant else {
        return Ok(None);
    };
    if let Some(c) = &filter.category {
        let rows = app.store.category_history(tenant, Some(since)).await?;
        let series = rows
            .into_iter()
            .filter(|r| &r.category == c)
            .map(|r| (r.at, r.score.ratio))
            .collect();
        return Ok(Some((format!("Category {c} of tenant {tenant}"), series)));
    }
    let rows = app.store.score_history(tenant, Some(since)).await?;
    Ok(Some((
        format!("Tenant {tenant}"),
        rows.into_iter().map(|r| (r.at, r.score.ratio)).collect(),
    )))
}

/// `GET /`.
pub async fn page(
    State(app): State<Arc<App>>,
    signed: SignedIn,
    Query(q): Query<FilterQuery>,
) -> Response {
    let session = &signed.session;
    let principal = &session.principal;
    let filter = match q.to_filter() {
        Ok(f) => scoped(f, principal),
        Err(e) => return error_page(StatusCode::BAD_REQUEST, Some(session), &e),
    };
    let now = Utc::now();
    let since = now - Duration::days(TREND_DAYS);
    let model = app.compliance_model().await;
    let visible = scoped(ScoreFilter::default(), principal);
    let seen: Vec<&Instance> = model.instances().filter(|i| visible.matches(i)).collect();
    let set = |f: fn(&Instance) -> Vec<&str>| -> BTreeSet<&str> {
        seen.iter().flat_map(|i| f(i)).collect()
    };
    // A group's instance is shared by the assessments of every tenant in the group: list only
    // the tenants and assessments in the principal's scope.
    let allowed = assessments_in_scope(&app.model.assessments, principal);
    let mut tenants = set(|i| i.tenants.iter().map(String::as_str).collect());
    tenants.retain(|t| principal.scope.allows_tenant(t));
    let mut assessments = set(|i| i.assessments.iter().map(String::as_str).collect());
    assessments.retain(|a| allowed.contains(*a));
    let regulations = set(|i| i.regulations.iter().map(String::as_str).collect());
    let groups = set(|i| i.groups.iter().map(String::as_str).collect());
    let categories = set(|i| vec![i.category.as_str()]);
    let solutions = set(|i| vec![i.solution.as_str()]);

    let score = model.score(&filter);
    let mut key: Vec<&Instance> = model
        .instances()
        .filter(|i| filter.matches(i) && i.points_possible - i.points_achieved > 1e-9)
        .collect();
    key.sort_by(|a, b| {
        let avail = |i: &Instance| i.points_possible - i.points_achieved;
        avail(b)
            .total_cmp(&avail(a))
            .then_with(|| a.key.cmp(&b.key))
    });
    let key_total = key.len();
    key.truncate(KEY_ACTIONS);

    let trend = trend(&app, &filter, since).await;
    let mut tenant_trends = Vec::new();
    let mut history_failed = trend.is_err();
    if filter.tenant.is_none() && filter.assessment.is_none() {
        for t in &tenants {
            let ratio = model.score(&ScoreFilter {
                tenant: Some((*t).to_owned()),
                ..filter.clone()
            });
            match app.store.score_history(t, Some(since)).await {
                Ok(rows) => tenant_trends.push((
                    *t,
                    ratio,
                    Some(
                        rows.into_iter()
                            .map(|r| (r.at, r.score.ratio))
                            .collect::<Vec<_>>(),
                    ),
                )),
                Err(e) => {
                    app.metrics.observe_store_error(e.kind());
                    history_failed = true;
                    tenant_trends.push((*t, ratio, None));
                }
            }
        }
    }
    if let Err(e) = &trend {
        app.metrics.observe_store_error(e.kind());
    }
    let qs = query_of(&filter);

    let content = html! {
        h1 { "Compliance overview" }
        section aria-labelledby="filters-h" {
            h2 id="filters-h" { "Filters" }
            form.filters method="get" action="/" {
                (select("tenant", "Tenant", filter.tenant.as_deref(), &plain(tenants.clone())))
                (select("assessment", "Assessment", filter.assessment.as_deref(), &plain(assessments)))
                (select("regulation", "Regulation", filter.regulation.as_deref(), &plain(regulations)))
                (select("group", "Group", filter.group.as_deref(), &plain(groups)))
                (select("category", "Category", filter.category.as_deref(), &plain(categories)))
                (select("solution", "Solution", filter.solution.as_deref(), &plain(solutions)))
                (select("testing_source", "Testing source", filter.testing_source.map(source_name),
                    &TESTING_SOURCES.iter().map(|s| (source_name(*s).to_owned(), source_name(*s).to_owned())).collect::<Vec<_>>()))
                (select("test_status", "Test status", filter.test_status.map(TestStatus::as_str),
                    &TestStatus::ALL.iter().map(|s| (s.as_str().to_owned(), test_status_label(*s).to_owned())).collect::<Vec<_>>()))
                div.actions-row {
                    button type="submit" { "Apply filters" }
                    a href="/" { "Clear filters" }
                }
            }
        }
        section aria-labelledby="score-h" {
            h2 id="score-h" { "Compliance score" }
            div.cards {
                div.card {
                    p.big data-testid="score" { (percent(score.ratio)) }
                    p { (points_of(&score)) " achieved" }
                    (meter("Compliance score", &score))
                }
                div.card {
                    h3 { "Trend" }
                    @match &trend {
                        Ok(Some((label, series))) => {
                            (sparkline(label, series, now))
                            p.muted { (label) ", last " (TREND_DAYS) " days" }
                        }
                        Ok(None) => p.muted { "Choose a tenant or an assessment to see its trend; each tenant's is in the table below." },
                        Err(_) => p.muted { "The history could not be read from the store." },
                    }
                }
            }
        }
        section aria-labelledby="key-h" {
            h2 id="key-h" { "Key improvement actions" }
            p.muted { (key_total) " actions with points still available; the " (key.len()) " with the most are listed." }
            table {
                thead { tr {
                    th scope="col" { "Improvement action" }
                    th scope="col" { "Scope" }
                    th scope="col" { "Category" }
                    th scope="col" { "Solution" }
                    th scope="col" { "Test status" }
                    th scope="col" class="num" { "Points available" }
                } }
                tbody {
                    @for i in &key {
                        tr {
                            td { a href=(action_href(&i.key.scope, &i.key.action)) { (i.title) } br; span.muted { code { (i.key.action) } } }
                            td { (scope_label(&i.key.scope)) }
                            td { (i.category) }
                            td { (i.solution) }
                            td { (status_badge(i.test_status)) }
                            td.num { (points(i.points_possible - i.points_achieved)) " of " (i.points) }
                        }
                    }
                    @if key.is_empty() { tr { td colspan="6" { "No action has points available under these filters." } } }
                }
            }
        }
        section aria-labelledby="breakdown-h" {
            h2 id="breakdown-h" { "Breakdown" }
            (breakdown("By category", "Category", &model.scores_by(Dimension::Category, &filter)))
            (breakdown("By solution", "Solution", &model.scores_by(Dimension::Solution, &filter)))
            (breakdown("By assessment", "Assessment", &model.scores_by(Dimension::Assessment, &filter)
                .into_iter().filter(|(a, _)| allowed.contains(a)).collect::<Vec<_>>()))
        }
        @if !tenant_trends.is_empty() {
            section aria-labelledby="tenants-h" {
                h2 id="tenants-h" { "Tenants" }
                table {
                    thead { tr {
                        th scope="col" { "Tenant" }
                        th scope="col" class="num" { "Score" }
                        th scope="col" class="num" { "Points" }
                        th scope="col" { "Trend (last " (TREND_DAYS) " days)" }
                    } }
                    tbody {
                        @for (t, s, series) in &tenant_trends {
                            tr {
                                th scope="row" { a href=(format!("/?{}", { let mut q = url::form_urlencoded::Serializer::new(String::new()); q.append_pair("tenant", t); q.finish() })) { (t) } }
                                td.num { (percent(s.ratio)) }
                                td.num { (points_of(s)) }
                                td { @match series {
                                    Some(series) => (sparkline(&format!("Tenant {t}"), series, now)),
                                    None => span.muted { "History unavailable" },
                                } }
                            }
                        }
                    }
                }
            }
        }
        @if history_failed { p.muted role="status" { "Part of the history could not be read from the store." } }
        @if !qs.is_empty() { p.muted { "Filtered: " code { (qs) } } }
    };
    html_response(
        StatusCode::OK,
        layout::page("Overview", Nav::Overview, Some(session), content),
    )
}
