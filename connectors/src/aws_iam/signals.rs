//! Normalise an [`IamSnapshot`] into the `aws_iam.*` signals (listed in `docs/signals.md`).
//!
//! Each area that failed becomes a gap over its prefix; an area's signals are emitted only
//! from a successful read. Lists of failing users are text signals naming at most
//! [`MAX_LISTED`] users (`a, b and 3 more`), so a rule can put them in its reason.
//!
//! The credential-report signals follow the CIS AWS Foundations Benchmark v3.0 audits; the
//! root row (`<root_account>`) is left out of every per-user count (root's keys and MFA are
//! recommendations 1.4 to 1.6, read from `GetAccountSummary`). Ages are measured at the poll's
//! observation time.

use chrono::{DateTime, Utc};

use super::model::{CredentialReport, ReportRow};
use super::{IamSnapshot, KIND};
pub use crate::signal::{MAX_LISTED, listing};
use crate::{Snapshot, SnapshotBuilder};

/// CIS 1.12: credentials unused for this many days or more must be disabled.
pub const UNUSED_DAYS: i64 = 45;
/// CIS 1.14: access keys must be rotated within this many days.
pub const ROTATION_DAYS: i64 = 90;

/// The snapshot's signals and gaps, stamped `observed_at`; credential ages (CIS 1.12, 1.14)
/// are measured at `ages_at` (the poll's start, or a replay's configured `ages_as_of`).
pub fn normalise(
    snap: &IamSnapshot,
    observed_at: DateTime<Utc>,
    ages_at: DateTime<Utc>,
) -> Snapshot {
    let mut b = SnapshotBuilder::new(observed_at);
    let p = |s: &str| format!("{KIND}.{s}.");

    match &snap.summary {
        Ok(s) => {
            let get = |k: &str| s.get(k).copied();
            if let Some(v) = get("AccountMFAEnabled") {
                b.flag(format!("{KIND}.account.root_mfa_enabled"), v == 1);
            }
            if let Some(v) = get("AccountAccessKeysPresent") {
                b.flag(format!("{KIND}.account.root_access_keys_present"), v > 0);
            }
            if let Some(v) = get("Users") {
                b.num(format!("{KIND}.account.users"), v as f64);
            }
        }
        Err(e) => b.gap(&p("account"), e),
    }

    match &snap.virtual_mfa_devices {
        Ok(d) => {
            b.count(format!("{KIND}.mfa_devices.virtual_total"), d.len());
            b.flag(
                format!("{KIND}.mfa_devices.root_virtual"),
                d.iter().any(|d| d.is_root()),
            );
        }
        Err(e) => b.gap(&p("mfa_devices"), e),
    }

    let pp = |s: &str| format!("{KIND}.password_policy.{s}");
    match &snap.password_policy {
        Ok(policy) => {
            b.flag(pp("present"), policy.is_some());
            let d = policy.clone().unwrap_or_default();
            b.num(pp("minimum_length"), d.minimum_length.unwrap_or(0) as f64);
            b.num(
                pp("reuse_prevention"),
                d.reuse_prevention.unwrap_or(0) as f64,
            );
            b.flag(pp("require_uppercase"), d.require_uppercase);
            b.flag(pp("require_lowercase"), d.require_lowercase);
            b.flag(pp("require_numbers"), d.require_numbers);
            b.flag(pp("require_symbols"), d.require_symbols);
            b.flag(pp("expire_passwords"), d.expire_passwords);
            b.num(pp("max_age_days"), d.max_age_days.unwrap_or(0) as f64);
        }
        Err(e) => b.gap(&p("password_policy"), e),
    }

    match &snap.credential_report {
        Ok(r) => report_signals(&mut b, r, ages_at),
        Err(e) => b.gap(&p("credentials"), e),
    }

    match &snap.user_policies {
        Ok(users) => {
            let direct: Vec<String> = users
                .iter()
                .filter(|u| !u.attached.is_empty() || !u.inline.is_empty())
                .map(|u| u.user.clone())
                .collect();
            b.count(format!("{KIND}.users.total"), users.len());
            b.count(format!("{KIND}.users.direct_policies_total"), direct.len());
            b.text(format!("{KIND}.users.direct_policies"), listing(&direct));
        }
        Err(e) => b.gap(&p("users"), e),
    }

    match &snap.admin_policies {
        Ok(ps) => {
            let names: Vec<String> = ps.iter().map(|p| p.name.clone()).collect();
            b.count(format!("{KIND}.policies.admin_attached_total"), names.len());
            b.text(format!("{KIND}.policies.admin_attached"), listing(&names));
        }
        Err(e) => b.gap(&p("policies"), e),
    }
    b.finish()
}

/// Whether a credential last used (or, never used, created/changed) at `last` counts as
/// unused for `days` at `now`: unknown or at least `days` old.
fn older_than(last: Option<DateTime<Utc>>, now: DateTime<Utc>, days: i64) -> bool {
    last.is_none_or(|t| now - t >= chrono::Duration::days(days))
}

/// CIS 1.12 for one row: a password enabled and not used (never used: not changed) within
/// [`UNUSED_DAYS`], or an active key not used (never used: not rotated) within it.
pub fn has_unused_credentials(r: &ReportRow, now: DateTime<Utc>) -> bool {
    let password = r.password_enabled
        && older_than(
            r.password_last_used.or(r.password_last_changed),
            now,
            UNUSED_DAYS,
        );
    let key = r
        .keys
        .iter()
        .any(|k| k.active && older_than(k.last_used.or(k.last_rotated), now, UNUSED_DAYS));
    password || key
}

fn report_signals(b: &mut SnapshotBuilder, report: &CredentialReport, now: DateTime<Utc>) {
    let k = |s: &str| format!("{KIND}.credentials.{s}");
    let users: Vec<&ReportRow> = report.rows.iter().filter(|r| !r.is_root()).collect();
    let names = |f: &dyn Fn(&ReportRow) -> bool| -> Vec<String> {
        users
            .iter()
            .filter(|r| f(r))
            .map(|r| r.user.clone())
            .collect()
    };
    b.count(k("users_total"), users.len());

    let console = names(&|r| r.password_enabled);
    let without_mfa = names(&|r| r.password_enabled && !r.mfa_active);
    b.count(k("console_users_total"), console.len());
    b.count(k("console_users_without_mfa_total"), without_mfa.len());
    b.ratio(
        k("console_users_mfa_ratio"),
        console.len() - without_mfa.len(),
        console.len(),
    );
    b.text(k("console_users_without_mfa"), listing(&without_mfa));

    let unused = names(&|r| has_unused_credentials(r, now));
    b.count(k("unused_total"), unused.len());
    b.text(k("unused"), listing(&unused));

    let two_keys = names(&|r| r.keys.iter().all(|k| k.active));
    b.count(k("multiple_active_keys_total"), two_keys.len());
    b.text(k("multiple_active_keys"), listing(&two_keys));

    let unrotated = names(&|r| {
        r.keys
            .iter()
            .any(|k| k.active && older_than(k.last_rotated, now, ROTATION_DAYS))
    });
    b.count(k("unrotated_keys_total"), unrotated.len());
    b.text(k("unrotated_keys"), listing(&unrotated));

    let root = report.rows.iter().find(|r| r.is_root());
    b.flag(k("root_reported"), root.is_some());
    if let Some(root) = root {
        b.flag(k("root_mfa_active"), root.mfa_active);
        b.flag(
            k("root_access_keys_active"),
            root.keys.iter().any(|k| k.active),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::ReportKey;
    use super::*;

    fn t(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn unused_follows_cis_1_12() {
        let now: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        let mut r = ReportRow {
            user: "u".into(),
            password_enabled: true,
            password_last_used: None,
            password_last_changed: t("2026-02-01T00:00:00Z"),
            ..ReportRow::default()
        };
        // Never used, changed 28 days ago: not yet unused.
        assert!(!has_unused_credentials(&r, now));
        r.password_last_changed = t("2026-01-15T00:00:00Z"); // exactly 45 days
        assert!(has_unused_credentials(&r, now));
        r.password_last_used = t("2026-02-20T00:00:00Z");
        assert!(!has_unused_credentials(&r, now));
        r.keys[1] = ReportKey {
            active: true,
            last_rotated: t("2025-01-01T00:00:00Z"),
            last_used: t("2026-02-27T00:00:00Z"),
        };
        assert!(!has_unused_credentials(&r, now));
        r.keys[0] = ReportKey {
            active: true,
            last_rotated: t("2025-01-01T00:00:00Z"),
            last_used: None,
        };
        assert!(has_unused_credentials(&r, now));
        r.keys[0].active = false;
        r.password_enabled = false;
        r.password_last_used = None;
        assert!(!has_unused_credentials(&r, now));
    }

    /// Every key a full snapshot emits is listed in docs/signals.md's AWS IAM section.
    #[test]
    fn every_emitted_key_is_documented() {
        use super::super::UserPolicies;
        use super::super::model::{ManagedPolicy, PasswordPolicy, VirtualMfaDevice};
        let docs = include_str!("../../../docs/signals.md");
        let section = docs
            .split("## AWS IAM (`aws_iam`)")
            .nth(1)
            .expect("an aws_iam section");
        let now: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        let root = ReportRow {
            user: "<root_account>".into(),
            mfa_active: true,
            ..ReportRow::default()
        };
        let snap = IamSnapshot {
            summary: Ok([
                ("AccountMFAEnabled".to_owned(), 1),
                ("AccountAccessKeysPresent".to_owned(), 0),
                ("Users".to_owned(), 1),
            ]
            .into_iter()
            .collect()),
            credential_report: Ok(CredentialReport {
                generated: None,
                rows: vec![
                    root,
                    ReportRow {
                        user: "u".into(),
                        password_enabled: true,
                        ..ReportRow::default()
                    },
                ],
            }),
            password_policy: Ok(Some(PasswordPolicy::default())),
            virtual_mfa_devices: Ok(vec![VirtualMfaDevice {
                serial_number: "arn:aws:iam::1:mfa/x".into(),
                user_arn: None,
            }]),
            user_policies: Ok(vec![UserPolicies {
                user: "u".into(),
                attached: vec!["p".into()],
                inline: vec![],
            }]),
            admin_policies: Ok(vec![ManagedPolicy {
                name: "p".into(),
                arn: "arn:aws:iam::1:policy/p".into(),
                default_version: "v1".into(),
            }]),
        };
        let out = normalise(&snap, now, now);
        assert!(out.gaps.is_empty());
        assert!(out.signals.len() > 30, "{}", out.signals.len());
        for s in &out.signals {
            assert!(
                section.contains(&format!("`{}`", s.key)),
                "{} is not documented in docs/signals.md",
                s.key
            );
        }
        let e = crate::CollectionError::new(crate::ErrorKind::Forbidden, "iam:X", "denied");
        let out = normalise(&IamSnapshot::all_failed(e), now, now);
        assert!(out.signals.is_empty());
        for g in &out.gaps {
            assert!(section.contains(&format!("`{}`", g.prefix)), "{}", g.prefix);
        }
        assert_eq!(out.gaps.len(), 6);
    }

    #[test]
    fn listing_caps_at_ten() {
        let names: Vec<String> = (0..13).map(|i| format!("u{i}")).collect();
        assert_eq!(
            listing(&names),
            "u0, u1, u2, u3, u4, u5, u6, u7, u8, u9 and 3 more"
        );
        assert_eq!(listing(&names[..2]), "u0, u1");
        assert_eq!(listing(&[]), "");
    }
}
