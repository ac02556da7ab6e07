//! The connector contract end to end: a connector kind defined in this test is registered
//! through the same registry as the built-in kinds, configured from its own
//! `[[tenants.connectors]]` table (typed settings, problems with key paths), polled, and its
//! signals tested by a rule of its own catalog into points and the compliance score.

mod support;

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use postured::config::Config;
use postured::evaluation::TestStatus;
use postured::registry::Registry;
use postured::store::PollOutcome;
use postured_connectors::settings::{
    BuildContext, ConfigProblem, ConnectorKind, ConnectorSettings, SettingsContext, decode,
};
use postured_connectors::{Connector, PollContext, Snapshot, SnapshotBuilder};
use serde::Deserialize;
use support::*;

/// A fleet of widgets, some enabled: the whole "source" lives in the settings.
struct WidgetsKind;

const CATALOG: &str = r#"
[[actions]]
id = "widgets.enabled"
title = "Enable every widget"
category = "Widgets"
solution = "Widget console"
description = "Every widget of the fleet should be enabled. Credit is the share enabled."
purpose = "preventative"
enforcement = "mandatory"
risk = "high"
rule = 'widgets.fleet.total == 0.0 ? "not_applicable" : widgets.fleet.enabled_ratio'
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WidgetsSettings {
    enabled: u32,
    total: u32,
}

impl ConnectorKind for WidgetsKind {
    fn name(&self) -> &'static str {
        "widgets"
    }

    fn catalog(&self) -> &'static str {
        CATALOG
    }

    fn settings(
        &self,
        table: toml::Table,
        cx: &SettingsContext<'_>,
    ) -> Result<Arc<dyn ConnectorSettings>, Vec<ConfigProblem>> {
        let s: WidgetsSettings = decode(cx.path, toml::Value::Table(table)).map_err(|p| vec![p])?;
        if s.enabled > s.total {
            return Err(vec![ConfigProblem::new(
                cx.key("enabled"),
                "must not exceed total",
            )]);
        }
        Ok(Arc::new(s))
    }
}

impl ConnectorSettings for WidgetsSettings {
    fn build(&self, _cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(WidgetsConnector {
            enabled: self.enabled as usize,
            total: self.total as usize,
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct WidgetsConnector {
    enabled: usize,
    total: usize,
}

#[async_trait]
impl Connector for WidgetsConnector {
    fn kind(&self) -> &'static str {
        "widgets"
    }

    async fn poll(&self, cx: &PollContext) -> Snapshot {
        let mut b = SnapshotBuilder::new(cx.observed_at);
        b.count("widgets.fleet.total", self.total);
        b.ratio("widgets.fleet.enabled_ratio", self.enabled, self.total);
        b.finish()
    }
}

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register(Arc::new(WidgetsKind)).expect("new kind");
    r
}

const TENANT: &str = r#"
[[tenants]]
id = "acme"
  [[tenants.connectors]]
  kind = "widgets"
  schedule = "0 0 * * * *"
  enabled = 8
  total = 10
"#;

/// A template of the widgets action only, assessed for the tenant instead of the default.
fn widgets_assessment(dir: &std::path::Path) -> String {
    std::fs::write(
        dir.join("widgets.toml"),
        r#"
id = "widgets"
title = "Widget hygiene"
certification = "Widget hygiene"
[[controls]]
id = "W-1"
family = "Widgets"
title = "Every widget is enabled"
actions = ["widgets.enabled"]
"#,
    )
    .unwrap();
    format!(
        r#"
[model]
default_assessment = false
[templates]
dirs = ["{}"]
[[assessments]]
id = "acme-widgets"
tenant = "acme"
template = "widgets"
"#,
        dir.display()
    )
}

#[tokio::test]
async fn a_kind_defined_in_a_test_is_configured_polled_and_scored() {
    let templates = tempfile::tempdir().unwrap();
    let extra = widgets_assessment(templates.path());
    let app = TestApp::spawn_with(&extra, TENANT, &registry()).await;
    let report = app.poll("acme").await;
    assert_eq!(report.outcome, PollOutcome::Success, "{:?}", report.errors);
    assert!(report.stored);

    let eval = &report.evaluation;
    let a = eval
        .actions
        .iter()
        .find(|a| a.action_id == "widgets.enabled")
        .expect("the kind's catalog action is evaluated");
    assert_eq!(a.test_status, TestStatus::PartiallyTested);
    assert!((a.credit - 0.8).abs() < 1e-12, "{a:?}");
    assert!(a.points_possible > 0.0);
    assert!((a.points_achieved - 0.8 * a.points_possible).abs() < 1e-9);
    assert!(
        a.signals
            .iter()
            .any(|(k, _)| &**k == "widgets.fleet.enabled_ratio")
    );
    // The built-in kinds' actions are there too, out of scope: the tenant has no msgraph
    // connector, so they neither fail nor count.
    let graph = eval
        .actions
        .iter()
        .find(|a| a.action_id == "msgraph.mfa.all_users")
        .expect("built-in catalog kept");
    assert_eq!(graph.test_status, TestStatus::OutOfScope);
    assert_eq!(graph.points_possible, 0.0);
    assert_eq!(
        graph.reason.as_deref(),
        Some("the tenant has no msgraph connector")
    );
    // The tenant's compliance score is its assessment's: the widgets action alone.
    assert!((eval.score.points_achieved - a.points_achieved).abs() < 1e-9);
    assert!((eval.score.points_possible - a.points_possible).abs() < 1e-9);
    assert!((eval.score.ratio - 0.8).abs() < 1e-9, "{:?}", eval.score);
    let reports = app.app.assessment_reports().await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].id, "acme-widgets");
    assert!((reports[0].score.ratio - 0.8).abs() < 1e-9);

    let m = app.metrics().await;
    assert_eq!(
        sample(
            &m,
            "postured_connector_polls_total{connector=\"widgets\",outcome=\"success\",tenant=\"acme\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn the_kinds_settings_problems_come_with_every_other_problem() {
    let text = r#"
        [server]
        listen = "nowhere"
        [[tenants]]
        id = "acme"
          [[tenants.connectors]]
          kind = "widgets"
          schedule = "0 0 * * * *"
          enabled = 11
          total = 10
          [[tenants.connectors]]
          kind = "widgets"
          schedule = "never"
          colour = "blue"
    "#;
    let problems = Config::parse_with(text, &[], &|_| None, &registry(), None).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "server.listen",
        "tenants[0].connectors[0].enabled",
        "tenants[0].connectors[1].schedule",
        "tenants[0].connectors[1].colour",
    ] {
        assert!(paths.contains(&want), "missing {want} in {problems:?}");
    }
    // Unregistered, the kind is unknown, and the message lists the kinds that are.
    let problems = Config::parse(TENANT, &[], &|_| None).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "tenants[0].connectors[0].kind");
    assert!(problems[0].message.contains("known: msgraph"));
}

#[test]
fn a_kind_is_registered_once() {
    let mut r = registry();
    assert!(r.register(Arc::new(WidgetsKind)).is_err());
    assert_eq!(
        r.names(),
        ["msgraph", "exec", "http_json", "aws_iam", "widgets"]
    );
}
