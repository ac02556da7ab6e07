//! Notifiers: turn an [`AlertEvent`] into one HTTP request per destination kind.
//!
//! Payload builders are pure (tested on their JSON); [`deliver`] sends through the app's shared
//! `reqwest` client and classifies failures: network errors, timeouts, 408, 429 and 5xx are
//! retryable; any other status is permanent (the request will never be accepted as it is).
//!
//! - [`alertmanager`]: Prometheus Alertmanager API v2, `POST {url}/api/v2/alerts`.
//! - [`webhook`]: generic JSON, signed `X-Postured-Signature: sha256=<hex HMAC-SHA256(body)>`.
//! - [`slack`]: Slack incoming webhook (`text` + Block Kit `blocks`).
//! - [`teams`]: Microsoft Teams incoming webhook / Workflows (a message with one Adaptive Card).

pub mod alertmanager;
pub mod slack;
pub mod teams;
pub mod webhook;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::regression::AlertEvent;
use super::settings::{NotifierConfig, NotifierKind};

/// Why a delivery failed. Messages are secret-free (no URLs with tokens, no keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: network error, timeout, 408, 429, 5xx.
    #[error("{0}")]
    Retryable(String),
    /// Will not succeed as is: another 4xx, an unbuildable request.
    #[error("{0}")]
    Permanent(String),
}

/// Instants a payload depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Now.
    pub now: DateTime<Utc>,
    /// Alertmanager: `endsAt` of a firing alert (it stays active until then unless re-posted).
    pub firing_ends_at: DateTime<Utc>,
}

/// Deliver several events to one notifier. Alertmanager takes them in one request; the other
/// kinds take one request per event, stopping at the first failure.
pub async fn deliver(
    client: &reqwest::Client,
    notifier: &NotifierConfig,
    events: &[&AlertEvent],
    timing: Timing,
) -> Result<(), DeliveryError> {
    match notifier.kind {
        NotifierKind::Alertmanager => {
            let body = alertmanager::payload(events, timing);
            let url = alertmanager::alerts_url(&notifier.url);
            post_json(client, notifier, &url, &body, &[]).await
        }
        NotifierKind::Webhook => {
            for e in events {
                let body = serde_json::to_vec(&webhook::payload(e))
                    .map_err(|err| DeliveryError::Permanent(format!("encoding: {err}")))?;
                let mut headers = vec![("X-Postured-Delivery", e.dedup_key())];
                if let Some(secret) = &notifier.secret_value {
                    headers.push((
                        webhook::SIGNATURE_HEADER,
                        webhook::signature(secret.expose_secret().as_bytes(), &body),
                    ));
                }
                post_bytes(client, notifier, &notifier.url, body, &headers).await?;
            }
            Ok(())
        }
        NotifierKind::Slack => {
            for e in events {
                post_json(client, notifier, &notifier.url, &slack::payload(e), &[]).await?;
            }
            Ok(())
        }
        NotifierKind::Teams => {
            for e in events {
                post_json(client, notifier, &notifier.url, &teams::payload(e), &[]).await?;
            }
            Ok(())
        }
    }
}

async fn post_json(
    client: &reqwest::Client,
    notifier: &NotifierConfig,
    url: &str,
    body: &serde_json::Value,
    headers: &[(&'static str, String)],
) -> Result<(), DeliveryError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|err| DeliveryError::Permanent(format!("encoding: {err}")))?;
    post_bytes(client, notifier, url, bytes, headers).await
}

async fn post_bytes(
    client: &reqwest::Client,
    notifier: &NotifierConfig,
    url: &str,
    body: Vec<u8>,
    headers: &[(&'static str, String)],
) -> Result<(), DeliveryError> {
    let mut req = client
        .post(url)
        .timeout(notifier.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    // Error texts name the notifier, never the URL: webhook URLs carry tokens.
    let resp = req.send().await.map_err(|e| {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        DeliveryError::Retryable(format!(
            "{} ({}): {what}",
            notifier.name,
            notifier.kind.as_str()
        ))
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let detail: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let msg = format!(
        "{} ({}): HTTP {}: {}",
        notifier.name,
        notifier.kind.as_str(),
        status.as_u16(),
        detail.trim()
    );
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(DeliveryError::Retryable(msg))
    } else {
        Err(DeliveryError::Permanent(msg))
    }
}

/// `firing` or `resolved`.
pub(crate) fn status_word(e: &AlertEvent) -> &'static str {
    if e.kind.is_resolution() {
        "resolved"
    } else {
        "firing"
    }
}

/// Human lines shared by the chat notifiers: (label, value).
pub(crate) fn facts(e: &AlertEvent) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Tenant", e.tenant.clone()),
        ("Action", format!("{} ({})", e.title, e.action_id)),
        ("Severity", e.severity.as_str().to_owned()),
        (
            "Status",
            format!(
                "{} -> {}",
                e.old_status.map_or("unknown", |s| s.as_str()),
                e.new_status.as_str()
            ),
        ),
    ];
    if e.points_lost > 0.0 {
        f.push(("Points lost", format!("{:.1}", e.points_lost)));
    }
    if e.score_delta != 0.0 {
        f.push((
            "Score change",
            format!("{:+.2} percentage points", e.score_delta * 100.0),
        ));
    }
    f.push((
        "Since",
        e.episode_started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ));
    if let Some(r) = &e.reason {
        f.push(("Reason", r.clone()));
    }
    if !e.controls.is_empty() {
        f.push(("Controls", e.controls.join(", ")));
    }
    f
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A sample event for payload tests.

    use chrono::{TimeZone, Utc};

    use crate::alerts::{AlertEvent, EventKind, Severity};
    use crate::evaluation::TestStatus;
    use crate::signals::SignalValue;

    /// An event of `kind` for tenant `t1`, action `msgraph.a`, episode 12:01, observed 12:05.
    pub fn event(kind: EventKind) -> AlertEvent {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap();
        AlertEvent {
            tenant: "t1".into(),
            action_id: "msgraph.a".into(),
            title: "Block legacy authentication".into(),
            kind,
            severity: Severity::Critical,
            at: t0 + chrono::Duration::minutes(5),
            episode_started_at: t0 + chrono::Duration::minutes(1),
            old_status: Some(TestStatus::Passed),
            new_status: TestStatus::FailedHighRisk,
            old_credit: Some(1.0),
            new_credit: 0.0,
            points_lost: 27.0,
            score_delta: -0.1,
            reason: Some("legacy authentication is not blocked".into()),
            signals: vec![("msgraph.x".into(), SignalValue::Bool(false))],
            controls: vec!["iso27001:A.8.5".into()],
        }
    }
}
