//! The exec connector's output protocol: one JSON object per line of the program's stdout,
//! parsed into signals under the connector's namespace `exec.<name>.`.
//!
//! ```text
//! {"key": "exec.backup.last_success_age_hours", "value": 3.5}
//! {"key": "exec.backup.encrypted", "value": true, "expires_in": "26h"}
//! {"key": "exec.backup.tool", "value": "restic", "expires_in": 3600}
//! ```
//!
//! `key` (string, required): `exec.<name>.` followed by one or more segments of ASCII letters,
//! digits and `_`, separated by `.`; at most [`MAX_KEY_LEN`] bytes; each key at most once.
//! `value` (required): `true`/`false`, a number, or a string (at most [`MAX_TEXT_LEN`] bytes).
//! `expires_in` (optional): seconds (a non-negative number) or a duration text (`"26h"`,
//! `"90m"`): the signal goes stale after `observed_at + expires_in`, or earlier when the
//! daemon's own expiry comes first. Blank lines are skipped; any other field is an error.
//!
//! Pure: no IO, no clock. Must not: accept a key outside the connector's namespace, or keep
//! any signal of an output that has one bad line (the whole output is then refused).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::signal::{ObservedSignal, SignalValue};

/// Longest accepted signal key, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Longest accepted text value, in bytes.
pub const MAX_TEXT_LEN: usize = 4096;

/// One line of the protocol.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    key: String,
    value: serde_json::Value,
    #[serde(default)]
    expires_in: Option<ExpiresIn>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Seconds(f64),
    Text(String),
}

/// Why an output was refused: the 1-based line number and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong (no line content: values are the program's).
    pub message: String,
    /// Whether the line parsed but its key is outside the namespace.
    pub outside_namespace: bool,
    /// Whether the output had more signals than allowed.
    pub too_many: bool,
}

impl LineError {
    fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
            outside_namespace: false,
            too_many: false,
        }
    }
}

/// Parse a program's whole stdout into signals under `namespace` (`exec.<name>.`), each
/// observed at `observed_at`, at most `max_signals` of them. Any bad line refuses the whole
/// output.
pub fn parse_output(
    stdout: &[u8],
    namespace: &str,
    observed_at: DateTime<Utc>,
    max_signals: usize,
) -> Result<Vec<ObservedSignal>, LineError> {
    let text = std::str::from_utf8(stdout).map_err(|e| {
        let line = stdout[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        LineError::new(line, "not UTF-8")
    })?;
    let mut signals = Vec::new();
    let mut seen = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw)
            .map_err(|e| LineError::new(n, format!("not a signal object: {e}")))?;
        if !key_in_namespace(&line.key, namespace) {
            return Err(LineError {
                outside_namespace: true,
                ..LineError::new(
                    n,
                    format!(
                        "key {:?} is outside the connector's namespace {namespace:?} (keys are \
                         {namespace}<segment>[.<segment>...], segments of A-Z a-z 0-9 _)",
                        truncate(&line.key, 80)
                    ),
                )
            });
        }
        if !seen.insert(line.key.clone()) {
            return Err(LineError::new(n, format!("key {:?} repeated", line.key)));
        }
        if signals.len() == max_signals {
            return Err(LineError {
                too_many: true,
                ..LineError::new(n, format!("more than {max_signals} signals"))
            });
        }
        let value = match line.value {
            serde_json::Value::Bool(b) => SignalValue::Bool(b),
            serde_json::Value::Number(x) => match x.as_f64() {
                Some(f) if f.is_finite() => SignalValue::Number(f),
                _ => return Err(LineError::new(n, "the number is out of range")),
            },
            serde_json::Value::String(s) if s.len() <= MAX_TEXT_LEN => SignalValue::Text(s),
            serde_json::Value::String(_) => {
                return Err(LineError::new(
                    n,
                    format!("the text value is longer than {MAX_TEXT_LEN} bytes"),
                ));
            }
            _ => {
                return Err(LineError::new(
                    n,
                    "value must be a boolean, a number or a string",
                ));
            }
        };
        let expires_at = match line.expires_in {
            None => None,
            Some(e) => Some(expiry(observed_at, &e).ok_or_else(|| {
                LineError::new(
                    n,
                    "expires_in must be non-negative seconds or a duration such as \"26h\"",
                )
            })?),
        };
        signals.push(ObservedSignal {
            key: line.key,
            value,
            observed_at,
            expires_at,
        });
    }
    Ok(signals)
}

fn expiry(observed_at: DateTime<Utc>, e: &ExpiresIn) -> Option<DateTime<Utc>> {
    let d = match e {
        ExpiresIn::Seconds(s) if s.is_finite() && *s >= 0.0 && *s < 1e12 => {
            Duration::from_secs_f64(*s)
        }
        ExpiresIn::Seconds(_) => return None,
        ExpiresIn::Text(t) => humantime::parse_duration(t).ok()?,
    };
    let d = chrono::Duration::from_std(d).ok()?;
    observed_at.checked_add_signed(d)
}

/// Whether `key` is `namespace` + `seg(.seg)*`, segments of `[A-Za-z0-9_]+`, at most
/// [`MAX_KEY_LEN`] bytes.
pub fn key_in_namespace(key: &str, namespace: &str) -> bool {
    key.len() <= MAX_KEY_LEN
        && key.strip_prefix(namespace).is_some_and(|rest| {
            rest.split('.').all(|seg| {
                !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        })
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn parse(text: &str) -> Result<Vec<ObservedSignal>, LineError> {
        parse_output(text.as_bytes(), "exec.backup.", t0(), 10)
    }

    #[test]
    fn the_documented_lines_parse() {
        let s = parse(
            "{\"key\": \"exec.backup.last_success_age_hours\", \"value\": 3.5}\n\n\
             {\"key\": \"exec.backup.encrypted\", \"value\": true, \"expires_in\": \"26h\"}\n\
             {\"key\": \"exec.backup.tool\", \"value\": \"restic\", \"expires_in\": 3600}\n",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].value, SignalValue::Number(3.5));
        assert_eq!(s[0].expires_at, None);
        assert_eq!(s[1].value, SignalValue::Bool(true));
        assert_eq!(s[1].expires_at, Some(t0() + chrono::Duration::hours(26)));
        assert_eq!(s[2].value, SignalValue::Text("restic".into()));
        assert_eq!(s[2].expires_at, Some(t0() + chrono::Duration::hours(1)));
        assert!(s.iter().all(|s| s.observed_at == t0()));
    }

    #[test]
    fn a_bad_line_refuses_the_whole_output_with_its_number() {
        for (text, line) in [
            ("{\"key\": \"exec.backup.a\", \"value\": 1}\nnot json", 2),
            ("{\"key\": \"exec.backup.a\", \"value\": null}", 1),
            ("{\"key\": \"exec.backup.a\", \"value\": [1]}", 1),
            (
                "{\"key\": \"exec.backup.a\", \"value\": 1, \"extra\": 2}",
                1,
            ),
            ("{\"key\": \"exec.backup.a\"}", 1),
            (
                "{\"key\": \"exec.backup.a\", \"value\": 1, \"expires_in\": -1}",
                1,
            ),
            (
                "{\"key\": \"exec.backup.a\", \"value\": 1, \"expires_in\": \"soon\"}",
                1,
            ),
            (
                "{\"key\": \"exec.backup.a\", \"value\": 1}\n{\"key\": \"exec.backup.a\", \"value\": 2}",
                2,
            ),
            ("{\"key\": \"exec.backup.a\", \"value\": 1e400}", 1),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e:?}");
            assert!(!e.outside_namespace);
        }
        let e = parse_output(
            b"{\"key\": \"exec.backup.a\", \"value\": \"\xff\"}",
            "exec.backup.",
            t0(),
            10,
        )
        .unwrap_err();
        assert_eq!(e.message, "not UTF-8");
    }

    #[test]
    fn keys_outside_the_namespace_are_refused() {
        for key in [
            "exec.other.a",
            "msgraph.mfa.registered_ratio",
            "exec.backup.",
            "exec.backup",
            "exec.backup..a",
            "exec.backup.a-b",
            "exec.backup.a b",
            "exec.backupx.a",
        ] {
            let e = parse(&format!("{{\"key\": {key:?}, \"value\": 1}}")).unwrap_err();
            assert!(e.outside_namespace, "{key}: {e:?}");
        }
        assert!(key_in_namespace("exec.backup.Nightly_1.ok", "exec.backup."));
        assert!(!key_in_namespace(
            &format!("exec.backup.{}", "a".repeat(MAX_KEY_LEN)),
            "exec.backup."
        ));
    }

    #[test]
    fn at_most_max_signals() {
        let text: String = (0..11)
            .map(|i| format!("{{\"key\": \"exec.backup.k{i}\", \"value\": {i}}}\n"))
            .collect();
        let e = parse(&text).unwrap_err();
        assert!(e.too_many);
        assert_eq!(e.line, 11);
    }
}
