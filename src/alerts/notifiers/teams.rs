//! Microsoft Teams: a `message` with one **Adaptive Card** (schema 1.4) attachment, the format
//! accepted both by Teams Workflows ("When a Teams webhook request is received") and by legacy
//! Office 365 incoming-webhook connectors. The card has a title, the summary and a FactSet.

use serde_json::{Value, json};

use super::super::regression::AlertEvent;
use super::{facts, status_word};

/// The JSON body.
pub fn payload(e: &AlertEvent) -> Value {
    let color = if e.kind.is_resolution() {
        "Good"
    } else if e.severity == super::super::regression::Severity::Critical {
        "Attention"
    } else {
        "Warning"
    };
    let facts: Vec<Value> = facts(e)
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    json!({
        "type": "message",
        "summary": e.summary(),
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {
                        "type": "TextBlock",
                        "size": "Medium",
                        "weight": "Bolder",
                        "color": color,
                        "text": format!("[{}] {}", status_word(e).to_uppercase(), e.kind.alert_name()),
                        "wrap": true
                    },
                    {"type": "TextBlock", "text": e.summary(), "wrap": true},
                    {"type": "FactSet", "facts": facts},
                    {"type": "TextBlock", "text": format!("postured · {}", e.dedup_key()), "isSubtle": true, "size": "Small", "wrap": true}
                ]
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::event;
    use super::*;
    use crate::alerts::EventKind;

    #[test]
    fn adaptive_card_message() {
        let p = payload(&event(EventKind::Stale));
        assert_eq!(p["type"], "message");
        let card = &p["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(
            card["content"]["body"][0]["text"],
            "[FIRING] PosturedSignalStale"
        );
        assert_eq!(card["content"]["body"][2]["facts"][0]["value"], "t1");
        let p = payload(&event(EventKind::StaleCleared));
        assert_eq!(p["attachments"][0]["content"]["body"][0]["color"], "Good");
    }
}
