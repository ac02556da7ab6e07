//! Automatic testing: CEL rules over a tenant's signals, and what their results mean.
//!
//! Each catalog rule is compiled once ([`CompiledRule::compile`]) and evaluated for every tenant
//! against a [`SignalView`]: the tenant's *fresh* signals (`expires_at > now`) exposed as nested
//! CEL maps rooted at the first key segment, so `msgraph.mfa.registered_ratio` reads the signal
//! `msgraph.mfa.registered_ratio` and `msgraph.securescore.controls.AdminMFAV2.score` (or
//! `msgraph.securescore.controls["AdminMFAV2"].score`) a Secure Score control. Numbers are CEL
//! doubles (compare with `0.0`), flags are bools, labels are strings. Expired signals are not
//! exposed. Every namespace above a path some rule mentions exists as a (possibly empty) map,
//! as do the namespaces of expired signals and gaps, so `has(msgraph.ca.legacy_auth_blocked)`
//! is `false` rather than an error when the value is stale or was never collected.
//!
//! # Rule result contract
//!
//! | the rule returns | outcome |
//! |---|---|
//! | `true` / `false` | pass / fail(the action's risk) |
//! | a number `1` / `0` | pass / fail(the action's risk) |
//! | a number strictly between 0 and 1 | partial(f) |
//! | any other number (or NaN) | unknown, with the value as reason |
//! | `"pass"`, `"fail"`, `"fail:low"`, `"fail:medium"`, `"fail:high"` | pass / fail(risk) |
//! | `"not_applicable"` | not applicable |
//! | `"unknown"` | unknown |
//! | a map `{"outcome": .., "fraction": .., "risk": .., "reason": ..}` | see [`interpret`] |
//! | anything else (null, list, other strings) | unknown, with the reason |
//!
//! Outcome -> test status ([`Outcome::test_status`]): pass -> `passed`, fail -> `failed_<risk>_risk`,
//! partial -> `partially_tested`, not applicable -> `out_of_scope`, unknown ->
//! `could_not_be_detected`.
//!
//! Every unknown outcome carries a typed cause ([`Undetected`]). A rule that fails at run time
//! because a signal is missing yields the cause the view gives
//! ([`SignalView::missing_cause`]): the collection gap when the key lies under a current
//! [`SignalGap`](crate::signals::SignalGap) (with the expiry of its last value, if any),
//! staleness when only an expired value exists, otherwise a missing signal. The action's
//! reason text is the cause's `Display` (`stale: <key> expired at <instant>`,
//! `signal <key> not available`, ...); no code reads that text back.
//!
//! Layout: [`contract`] maps a CEL value to an [`Outcome`]; [`cel`] compiles and evaluates
//! rules; [`paths`] scans rule text for the signal paths it mentions. The signals themselves
//! are indexed by [`SignalView`], outside this module.
//!
//! Pure: no IO, no clock, never panics outward (a panicking expression becomes unknown).

pub mod cel;
pub mod contract;
pub mod paths;

pub use cel::{CompiledRule, RuleEnv};
pub use contract::{Outcome, interpret};
pub use paths::{rule_namespaces, signal_paths};

use std::sync::Arc;

#[cfg(doc)]
use crate::evaluation::{Undetected, signal_view::SignalView};

use crate::signals::SignalValue;

/// A rule's verdict plus the detail kept for the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleResult {
    /// The outcome.
    pub outcome: Outcome,
    /// Detail given by the rule (the `reason` of a map result); for [`Outcome::Unknown`] the
    /// cause's text.
    pub reason: Option<String>,
    /// Fresh signals the rule refers to, with their values, sorted by key.
    pub signals: Vec<(Arc<str>, SignalValue)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::signal_view::SignalView;
    use crate::evaluation::status::{Risk, TestStatus};
    use crate::evaluation::testutil::{expired, fresh, gap, now};
    use crate::evaluation::undetected::{Expiry, Undetected};
    use crate::signals::{Signal, SignalGap, SignalValue};
    use cel_interpreter::Context;

    fn run(rule: &str, signals: &[Signal], gaps: &[SignalGap]) -> RuleResult {
        let rule = CompiledRule::compile(rule).expect("rule compiles");
        let base = Context::default();
        let view = SignalView::new(now(), signals, gaps);
        let namespaces = rule_namespaces([&rule]);
        let env = RuleEnv::new(&base, &view, &namespaces);
        rule.evaluate(&env, Risk::Medium)
    }

    #[test]
    fn rule_result_contract() {
        use Outcome::*;
        let table: Vec<(&str, Outcome)> = vec![
            // bool
            ("true", Pass),
            ("false", Fail(Risk::Medium)),
            // numbers
            ("1.0", Pass),
            ("1", Pass),
            ("0.0", Fail(Risk::Medium)),
            ("0", Fail(Risk::Medium)),
            ("0.8", Partial(0.8)),
            ("1.5", Unknown("rule returned 1.5, outside [0, 1]".into())),
            ("-0.5", Unknown("rule returned -0.5, outside [0, 1]".into())),
            // strings
            ("'pass'", Pass),
            ("'fail'", Fail(Risk::Medium)),
            ("'fail:low'", Fail(Risk::Low)),
            ("'fail:medium'", Fail(Risk::Medium)),
            ("'fail:high'", Fail(Risk::High)),
            ("'not_applicable'", NotApplicable),
            ("'unknown'", Unknown("rule returned unknown".into())),
            (
                "'maybe'",
                Unknown("rule returned unsupported outcome \"maybe\"".into()),
            ),
            (
                "'fail:extreme'",
                Unknown("rule returned unsupported outcome \"fail:extreme\"".into()),
            ),
            // maps
            ("{'outcome': 'pass'}", Pass),
            ("{'outcome': 'fail', 'risk': 'high'}", Fail(Risk::High)),
            ("{'outcome': 'fail:low'}", Fail(Risk::Low)),
            ("{'outcome': 'partial', 'fraction': 0.25}", Partial(0.25)),
            ("{'outcome': 'partial', 'fraction': 1.0}", Pass),
            ("{'fraction': 0.5}", Partial(0.5)),
            ("{'fraction': 0.0, 'risk': 'low'}", Fail(Risk::Low)),
            (
                "{'outcome': 'not_applicable', 'reason': 'no admins'}",
                NotApplicable,
            ),
            (
                "{'outcome': 'unknown', 'reason': 'licence missing'}",
                Unknown("licence missing".into()),
            ),
            (
                "{'outcome': 'partial'}",
                Unknown("rule returned partial without a fraction".into()),
            ),
            (
                "{'reason': 'x'}",
                Unknown("rule returned a map without outcome or fraction".into()),
            ),
            (
                "{'outcome': 'fail', 'risk': 'severe'}",
                Unknown("rule returned unsupported risk \"severe\"".into()),
            ),
            // other types
            (
                "null",
                Unknown("rule returned a null, expected a bool, number, string or map".into()),
            ),
            (
                "[1, 2]",
                Unknown("rule returned a list, expected a bool, number, string or map".into()),
            ),
        ];
        for (rule, expected) in table {
            let result = run(rule, &[], &[]);
            assert_eq!(result.outcome, expected, "rule {rule}");
        }
    }

    #[test]
    fn map_reason_is_kept() {
        let r = run(
            "{'outcome': 'not_applicable', 'reason': 'no admins'}",
            &[],
            &[],
        );
        assert_eq!(r.reason.as_deref(), Some("no admins"));
        let r = run("true", &[], &[]);
        assert_eq!(r.reason, None);
    }

    #[test]
    fn nested_signal_maps() {
        let signals = [
            fresh("msgraph.mfa.registered_ratio", 0.8),
            fresh("msgraph.mfa.users_total", 50.0),
            fresh("msgraph.security_defaults.enabled", true),
            fresh("msgraph.securescore.controls.AdminMFAV2.score", 5.0),
            fresh("msgraph.securescore.controls.AdminMFAV2.max_score", 10.0),
            fresh("msgraph.securescore.controls.AdminMFAV2.state", "default"),
        ];
        let table = [
            ("msgraph.mfa.registered_ratio", Outcome::Partial(0.8)),
            ("msgraph.mfa.users_total == 50.0", Outcome::Pass),
            ("msgraph.security_defaults.enabled", Outcome::Pass),
            (
                "msgraph.securescore.controls.AdminMFAV2.score / msgraph.securescore.controls.AdminMFAV2.max_score",
                Outcome::Partial(0.5),
            ),
            (
                "msgraph.securescore.controls[\"AdminMFAV2\"].score / 10.0",
                Outcome::Partial(0.5),
            ),
            (
                "msgraph.securescore.controls.AdminMFAV2.state.startsWith('def')",
                Outcome::Pass,
            ),
            ("has(msgraph.mfa.admins_total)", Outcome::Fail(Risk::Medium)),
            ("size(msgraph.mfa) == 2", Outcome::Pass),
        ];
        for (rule, expected) in table {
            assert_eq!(run(rule, &signals, &[]).outcome, expected, "rule {rule}");
        }
    }

    #[test]
    fn records_signals_the_rule_mentions() {
        let signals = [
            fresh("msgraph.mfa.registered_ratio", 0.8),
            fresh("msgraph.mfa.users_total", 50.0),
            fresh("msgraph.mfa.admins_total", 3.0),
        ];
        let r = run(
            "msgraph.mfa.users_total == 0.0 ? 'not_applicable' : msgraph.mfa.registered_ratio",
            &signals,
            &[],
        );
        assert_eq!(
            r.signals,
            vec![
                (
                    "msgraph.mfa.registered_ratio".into(),
                    SignalValue::Number(0.8)
                ),
                ("msgraph.mfa.users_total".into(), SignalValue::Number(50.0)),
            ]
        );
    }

    #[test]
    fn missing_stale_and_gap_reasons() {
        let at = "2026-03-01T11:00:00Z";
        let expired_at = now() - chrono::Duration::hours(1);
        let g = gap(
            "msgraph.mfa.",
            "forbidden",
            "403 Authorization_RequestDenied on /reports/authenticationMethods/userRegistrationDetails",
        );
        let missing = |key: &str| Undetected::Missing { key: key.into() };
        let gap_cause = |g: &SignalGap, expired: Option<&str>| Undetected::Gap {
            prefix: g.prefix.clone(),
            kind: g.kind.clone(),
            reason: g.reason.clone(),
            expired: expired.map(|key| Expiry {
                key: key.into(),
                expired_at,
            }),
        };
        let token_gap = gap("msgraph.", "unauthorized", "401 invalid_client");
        /// (rule, signals, gaps, expected cause, expected reason text)
        type Row<'r> = (&'r str, Vec<Signal>, Vec<SignalGap>, Undetected, String);
        let table: Vec<Row<'_>> = vec![
            (
                "msgraph.mfa.registered_ratio",
                vec![fresh("msgraph.ca.mfa_all_users", true)],
                vec![],
                missing("msgraph.mfa.registered_ratio"),
                "signal msgraph.mfa.registered_ratio not available".into(),
            ),
            (
                "msgraph.mfa.registered_ratio",
                vec![fresh("msgraph.mfa.users_total", 50.0)],
                vec![],
                missing("msgraph.mfa.registered_ratio"),
                "signal msgraph.mfa.registered_ratio not available".into(),
            ),
            (
                "msgraph.mfa.registered_ratio",
                vec![expired("msgraph.mfa.registered_ratio", 1.0)],
                vec![],
                Undetected::Stale {
                    key: "msgraph.mfa.registered_ratio".into(),
                    expired_at,
                },
                format!("stale: msgraph.mfa.registered_ratio expired at {at}"),
            ),
            (
                "msgraph.mfa.registered_ratio",
                vec![],
                vec![g.clone()],
                gap_cause(&g, None),
                "could not collect msgraph.mfa.*: forbidden (403 Authorization_RequestDenied on /reports/authenticationMethods/userRegistrationDetails)".into(),
            ),
            (
                "msgraph.mfa.registered_ratio",
                vec![expired("msgraph.mfa.registered_ratio", 1.0)],
                vec![g.clone()],
                gap_cause(&g, Some("msgraph.mfa.registered_ratio")),
                format!(
                    "could not collect msgraph.mfa.*: forbidden (403 Authorization_RequestDenied on /reports/authenticationMethods/userRegistrationDetails); last value of msgraph.mfa.registered_ratio expired at {at}"
                ),
            ),
            (
                // a token failure gaps the whole connector namespace
                "msgraph.mfa.registered_ratio",
                vec![],
                vec![token_gap.clone()],
                gap_cause(&token_gap, None),
                "could not collect msgraph.*: unauthorized (401 invalid_client)".into(),
            ),
            (
                // the missing key is the one evaluated, not the first one in the text
                "msgraph.ca.mfa_all_users ? msgraph.mfa.registered_ratio : false",
                vec![fresh("msgraph.ca.mfa_all_users", true)],
                vec![],
                missing("msgraph.mfa.registered_ratio"),
                "signal msgraph.mfa.registered_ratio not available".into(),
            ),
            (
                "msgraph.securescore.controls['AdminMFAV2'].score > 0.0",
                vec![fresh("msgraph.securescore.controls.Other.score", 1.0)],
                vec![],
                missing("msgraph.securescore.controls.AdminMFAV2.score"),
                "signal msgraph.securescore.controls.AdminMFAV2.score not available".into(),
            ),
            (
                "1.0 / 'x'",
                vec![],
                vec![],
                Undetected::RuleError {
                    message: "Unsupported binary operator 'div': Float(1.0), String(\"x\")".into(),
                },
                "rule error: Unsupported binary operator 'div': Float(1.0), String(\"x\")".into(),
            ),
        ];
        for (rule, signals, gaps, cause, reason) in table {
            let r = run(rule, &signals, &gaps);
            assert_eq!(r.outcome, Outcome::Unknown(cause), "rule {rule}");
            assert_eq!(
                r.outcome.cause().map(ToString::to_string),
                Some(reason.clone()),
                "rule {rule}"
            );
            assert_eq!(r.reason, Some(reason), "rule {rule}");
        }
    }

    #[test]
    fn expired_signal_is_not_exposed() {
        // A stale true must not pass; has() sees the namespace but not the value.
        let signals = [
            expired("msgraph.security_defaults.enabled", true),
            fresh("msgraph.ca.enabled_total", 1.0),
        ];
        let r = run("msgraph.security_defaults.enabled", &signals, &[]);
        assert_eq!(r.outcome.test_status(), TestStatus::CouldNotBeDetected);
        let r = run("has(msgraph.security_defaults.enabled)", &signals, &[]);
        assert_eq!(r.outcome, Outcome::Fail(Risk::Medium));
        // a gap namespace is a (possibly empty) map as well
        let r = run(
            "has(msgraph.labels.total)",
            &[],
            &[gap("msgraph.labels.", "forbidden", "403")],
        );
        assert_eq!(r.outcome, Outcome::Fail(Risk::Medium));
        // A gap of one signal (`<key>.`, as http_json gives a value of the wrong type) leaves
        // the key missing, not an empty map: the rule is undetected by that gap.
        let g = gap("http_json.org.two_factor.", "malformed", "not a bool");
        let r = run("http_json.org.two_factor", &[], std::slice::from_ref(&g));
        match r.outcome {
            Outcome::Unknown(Undetected::Gap { prefix, kind, .. }) => {
                assert_eq!(
                    (prefix.as_str(), kind.as_str()),
                    (g.prefix.as_str(), "malformed")
                )
            }
            other => panic!("{other:?}"),
        }
        let r = run("has(http_json.org.two_factor)", &[], &[g]);
        assert_eq!(r.outcome, Outcome::Fail(Risk::Medium));
    }

    #[test]
    fn unsupported_expression_does_not_panic_outward() {
        // cel-interpreter 0.10 leaves struct construction unimplemented (it panics).
        let r = run("Foo{a: 1}", &[], &[]);
        assert!(matches!(r.outcome, Outcome::Unknown(_)), "{:?}", r.outcome);
        assert_eq!(r.outcome, Outcome::Unknown(Undetected::Aborted));
    }

    #[test]
    fn compile_errors_are_reported() {
        assert!(CompiledRule::compile("msgraph.mfa.").is_err());
        assert!(CompiledRule::compile("(1 + ").is_err());
        assert!(CompiledRule::compile("msgraph.mfa.registered_ratio >= 0.9").is_ok());
    }
}
