//! Slack incoming webhook: `text` (the summary, used by notifications and old clients) plus
//! Block Kit `blocks`: a header, the facts as two-column fields, and a context line with the
//! dedup key.

use serde_json::{Value, json};

use super::super::regression::AlertEvent;
use super::{facts, status_word};

/// The JSON body.
pub fn payload(e: &AlertEvent) -> Value {
    let icon = if e.kind.is_resolution() {
        ":white_check_mark:"
    } else {
        ":rotating_light:"
    };
    let header: String = format!(
        "[{}] {}",
        status_word(e).to_uppercase(),
        e.kind.alert_name()
    )
    .chars()
    .take(150)
    .collect();
    let fields: Vec<Value> = facts(e)
        .into_iter()
        .take(10)
        .map(|(k, v)| {
            let v: String = v.chars().take(1900).collect();
            json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")})
        })
        .collect();
    json!({
        "text": format!("{icon} {}", e.summary()),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} {}", e.summary())}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("postured · {}", e.dedup_key())}
            ]}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::event;
    use super::*;
    use crate::alerts::EventKind;

    #[test]
    fn text_and_blocks() {
        let p = payload(&event(EventKind::Regression));
        assert!(p["text"].as_str().unwrap().contains("regressed"));
        assert_eq!(p["blocks"][0]["type"], "header");
        assert_eq!(
            p["blocks"][0]["text"]["text"],
            "[FIRING] PosturedActionRegression"
        );
        let fields = p["blocks"][2]["fields"].as_array().unwrap();
        assert!(fields.len() <= 10, "Slack allows at most 10 fields");
        assert!(fields[0]["text"].as_str().unwrap().contains("t1"));
    }
}
