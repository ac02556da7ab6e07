//! Test helpers for the evaluation modules: signal and gap builders at a fixed instant.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::signals::{Signal, SignalGap, SignalValue};

/// The fixed "now" of evaluation tests.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid instant")
}

/// A fresh signal (observed 10 minutes ago, expires in 50 minutes).
pub fn fresh(key: &str, value: impl Into<Value>) -> Signal {
    Signal {
        key: key.into(),
        value: value.into().0,
        observed_at: now() - Duration::minutes(10),
        expires_at: now() + Duration::minutes(50),
    }
}

/// An expired signal (observed 4 hours ago, expired an hour ago).
pub fn expired(key: &str, value: impl Into<Value>) -> Signal {
    Signal {
        key: key.into(),
        value: value.into().0,
        observed_at: now() - Duration::hours(4),
        expires_at: now() - Duration::hours(1),
    }
}

/// A collection gap.
pub fn gap(prefix: &str, kind: &str, reason: &str) -> SignalGap {
    SignalGap {
        prefix: prefix.to_string(),
        kind: kind.to_string(),
        reason: reason.to_string(),
    }
}

/// Conversion helper so tests can write `fresh("k", 0.8)`, `fresh("k", true)`,
/// `fresh("k", "text")`.
pub struct Value(pub SignalValue);

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value(SignalValue::Number(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value(SignalValue::Bool(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value(SignalValue::Text(v.to_string()))
    }
}
