//! Prometheus Alertmanager API v2: `POST {url}/api/v2/alerts` with a JSON array of alerts.
//!
//! Every episode is one alert, identified by its labels `alertname`, `tenant`, `action`,
//! `severity`, `kind` (the family: `regression`, `stale`, `collection_error`) and
//! `source="postured"`, identical for the firing and the resolving post, so Alertmanager groups
//! and resolves them. A firing alert has `startsAt` = the episode start and `endsAt` a few
//! re-post intervals ahead (the delivery task re-posts firing alerts, as Prometheus does); the
//! resolution re-posts the same labels with `endsAt` = the recovery instant.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::super::regression::AlertEvent;
use super::Timing;

/// `{base}/api/v2/alerts`.
pub fn alerts_url(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

/// The labels of an event's alert (firing and resolution share them).
pub fn labels(e: &AlertEvent) -> Value {
    json!({
        "alertname": e.kind.alert_name(),
        "tenant": e.tenant,
        "action": e.action_id,
        "severity": e.severity.as_str(),
        "kind": e.kind.family(),
        "source": "postured",
    })
}

/// The request body for `events`.
pub fn payload(events: &[&AlertEvent], timing: Timing) -> Value {
    let ts = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let alerts: Vec<Value> = events
        .iter()
        .map(|e| {
            let ends_at = if e.kind.is_resolution() {
                e.at.max(e.episode_started_at)
            } else {
                timing.firing_ends_at
            };
            let mut annotations = json!({
                "summary": e.summary(),
                "description": description(e),
                "points_lost": format!("{:.2}", e.points_lost),
                "score_delta": format!("{:.4}", e.score_delta),
                "old_status": e.old_status.map_or("unknown", |s| s.as_str()),
                "new_status": e.new_status.as_str(),
                "event": e.kind.as_str(),
                "dedup_key": e.dedup_key(),
            });
            if !e.controls.is_empty() {
                annotations["controls"] = json!(e.controls.join(", "));
            }
            json!({
                "labels": labels(e),
                "annotations": annotations,
                "startsAt": ts(e.episode_started_at),
                "endsAt": ts(ends_at),
            })
        })
        .collect();
    Value::Array(alerts)
}

/// Longer text: reason and signal values.
fn description(e: &AlertEvent) -> String {
    let mut d = e.reason.clone().unwrap_or_default();
    if !e.signals.is_empty() {
        let signals: Vec<String> = e
            .signals
            .iter()
            .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
            .collect();
        if !d.is_empty() {
            d.push_str("; ");
        }
        d.push_str("signals: ");
        d.push_str(&signals.join(", "));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::super::testutil::event;
    use super::*;
    use crate::alerts::EventKind;
    use chrono::Duration;

    #[test]
    fn firing_and_resolution_share_labels() {
        let fire = event(EventKind::Regression);
        let resolve = event(EventKind::Recovery);
        let timing = Timing {
            now: fire.at,
            firing_ends_at: fire.at + Duration::minutes(4),
        };
        let body = payload(&[&fire, &resolve], timing);
        let a = &body[0];
        let b = &body[1];
        assert_eq!(a["labels"], b["labels"]);
        assert_eq!(a["labels"]["alertname"], "PosturedActionRegression");
        assert_eq!(a["labels"]["tenant"], "t1");
        assert_eq!(a["labels"]["action"], "msgraph.a");
        assert_eq!(a["labels"]["severity"], "critical");
        assert_eq!(a["labels"]["kind"], "regression");
        assert_eq!(a["startsAt"], "2026-03-01T12:01:00.000Z");
        assert_eq!(a["endsAt"], "2026-03-01T12:09:00.000Z");
        assert_eq!(
            b["endsAt"], "2026-03-01T12:05:00.000Z",
            "resolved at the recovery"
        );
        assert_eq!(a["annotations"]["points_lost"], "27.00");
        assert!(
            a["annotations"]["description"]
                .as_str()
                .unwrap()
                .contains("msgraph.x=false")
        );
        assert_eq!(
            alerts_url("http://am:9093/"),
            "http://am:9093/api/v2/alerts"
        );
    }
}
