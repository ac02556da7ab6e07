//! Why an action is `could_not_be_detected`: the typed cause the evaluator attaches to
//! [`Outcome::Unknown`](super::Outcome::Unknown) and [`ActionResult::cause`](super::ActionResult::cause),
//! read by the regression detector (staleness and collection-error alerts) and rendered as the
//! action's `reason` text by [`Display`](std::fmt::Display).
//!
//! Data only: building a cause is the job of the signal view (missing, stale, gap), the rules
//! (run-time errors, undecided results) and the evaluator (no rule, family item values). This
//! module must not look at signals, and no code may parse the text back: match on the variant.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The last value of a signal, which expired (its `expires_at <= now`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Expiry {
    /// Signal key, e.g. `msgraph.mfa.registered_ratio`.
    pub key: String,
    /// When the value expired (its `expires_at`).
    pub expired_at: DateTime<Utc>,
}

/// Why a rule (or a generated action family's item) could not decide an action's status.
///
/// The [`Display`](fmt::Display) text is the action's `reason`, as shown in reports, alerts and
/// exports; each variant documents its text.
///
/// Serialized as a map tagged by `cause` (`{"cause": "stale", "key": .., "expired_at": ..}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Undetected {
    /// The most specific current collection gap covering a signal the rule needs: the
    /// connector could not collect `prefix*`. `could not collect <prefix>*: <kind> (<reason>)`,
    /// followed by `; last value of <key> expired at <instant>` when an expired value exists.
    Gap {
        /// Key prefix the failed endpoint would have produced, ending in `.`.
        prefix: String,
        /// Error kind (`forbidden`, `throttled`, `unauthorized`, ...).
        kind: String,
        /// Secret-free detail of the collection error.
        reason: String,
        /// The expired last value under the gap, if any (the condition is then staleness).
        expired: Option<Expiry>,
    },
    /// Only an expired value of a signal the rule needs exists (no gap covers it).
    /// `stale: <key> expired at <instant>` (RFC 3339, seconds, `Z`).
    Stale {
        /// Signal key.
        key: String,
        /// When its last value expired.
        expired_at: DateTime<Utc>,
    },
    /// A signal (or namespace) the rule needs was never produced. `signal <key> not available`.
    Missing {
        /// Signal key or namespace.
        key: String,
    },
    /// A signal that must be a number holds another type (a family item's `score`, `max_score`).
    /// `signal <key> is not a number`.
    NotANumber {
        /// Signal key.
        key: String,
    },
    /// The rule failed at run time for another reason than a missing signal (a type error,
    /// a division by zero, ...). `rule error: <message>`.
    RuleError {
        /// The CEL interpreter's message.
        message: String,
    },
    /// The CEL interpreter aborted on an unsupported expression.
    /// `rule evaluation aborted: unsupported expression`.
    Aborted,
    /// The rule ran but its result does not decide: it returned `unknown` (the message is its
    /// reason, or `rule returned unknown`) or a value outside the rule result contract (the
    /// message says which, e.g. `rule returned 1.5, outside [0, 1]`). The message verbatim.
    Undecided {
        /// Human text, shown as is.
        message: String,
    },
    /// The catalog action has neither a rule nor a family item. `action has no rule`.
    NoRule,
}

impl Undetected {
    /// A result that does not decide, with its text (see [`Undetected::Undecided`]).
    pub fn undecided(message: impl Into<String>) -> Self {
        Undetected::Undecided {
            message: message.into(),
        }
    }
}

/// `2026-03-01T11:00:00Z`: the instant format of every cause text.
fn instant(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl fmt::Display for Undetected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Undetected::Gap {
                prefix,
                kind,
                reason,
                expired,
            } => {
                write!(f, "could not collect {prefix}*: {kind} ({reason})")?;
                if let Some(e) = expired {
                    write!(
                        f,
                        "; last value of {} expired at {}",
                        e.key,
                        instant(&e.expired_at)
                    )?;
                }
                Ok(())
            }
            Undetected::Stale { key, expired_at } => {
                write!(f, "stale: {key} expired at {}", instant(expired_at))
            }
            Undetected::Missing { key } => write!(f, "signal {key} not available"),
            Undetected::NotANumber { key } => write!(f, "signal {key} is not a number"),
            Undetected::RuleError { message } => write!(f, "rule error: {message}"),
            Undetected::Aborted => f.write_str("rule evaluation aborted: unsupported expression"),
            Undetected::Undecided { message } => f.write_str(message),
            Undetected::NoRule => f.write_str("action has no rule"),
        }
    }
}

/// Tests write expected undecided results as text: `Outcome::Unknown("rule returned unknown".into())`.
#[cfg(test)]
impl From<&str> for Undetected {
    fn from(message: &str) -> Self {
        Undetected::undecided(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::testutil::now;

    #[test]
    fn text_of_every_cause() {
        let at = now() - chrono::Duration::hours(1);
        let expiry = Expiry {
            key: "msgraph.mfa.registered_ratio".into(),
            expired_at: at,
        };
        let gap = |expired| Undetected::Gap {
            prefix: "msgraph.mfa.".into(),
            kind: "forbidden".into(),
            reason: "403".into(),
            expired,
        };
        let table = [
            (
                gap(None),
                "could not collect msgraph.mfa.*: forbidden (403)",
            ),
            (
                gap(Some(expiry)),
                "could not collect msgraph.mfa.*: forbidden (403); last value of msgraph.mfa.registered_ratio expired at 2026-03-01T11:00:00Z",
            ),
            (
                Undetected::Stale {
                    key: "msgraph.x".into(),
                    expired_at: at,
                },
                "stale: msgraph.x expired at 2026-03-01T11:00:00Z",
            ),
            (
                Undetected::Missing {
                    key: "msgraph.x".into(),
                },
                "signal msgraph.x not available",
            ),
            (
                Undetected::NotANumber {
                    key: "msgraph.x".into(),
                },
                "signal msgraph.x is not a number",
            ),
            (
                Undetected::RuleError {
                    message: "boom".into(),
                },
                "rule error: boom",
            ),
            (
                Undetected::Aborted,
                "rule evaluation aborted: unsupported expression",
            ),
            (Undetected::undecided("licence missing"), "licence missing"),
            (Undetected::NoRule, "action has no rule"),
        ];
        for (cause, text) in table {
            assert_eq!(cause.to_string(), text, "{cause:?}");
        }
    }

    #[test]
    fn serializes_tagged_by_cause() {
        let cause = Undetected::Stale {
            key: "msgraph.x".into(),
            expired_at: now(),
        };
        let json = serde_json::to_value(&cause).unwrap();
        assert_eq!(json["cause"], "stale");
        assert_eq!(json["key"], "msgraph.x");
        let back: Undetected = serde_json::from_value(json).unwrap();
        assert_eq!(back, cause);
        let json = serde_json::to_value(Undetected::NoRule).unwrap();
        assert_eq!(json, serde_json::json!({"cause": "no_rule"}));
    }
}
