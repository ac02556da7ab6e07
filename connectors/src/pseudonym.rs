//! Pseudonymisation of personal data in recorded response bodies, so a recording can be shared.
//!
//! Role: replace every personal value of a JSON body by a keyed hash of it (HMAC-SHA256,
//! [`Pseudonymiser::pseudonym`]): the same value always gives the same pseudonym under one
//! key, so joins between records and endpoints, counts and the connector's signals survive
//! replay, while the value itself cannot be read back nor confirmed by guessing without the
//! key. It does no IO and keeps nothing but the key, which is never written, logged or shown
//! in `Debug`.
//!
//! # Which fields are personal
//!
//! String values (also inside arrays) of:
//!
//! - the keys in [`PERSONAL_KEYS`] wherever they occur (`userPrincipalName`,
//!   `userDisplayName`, `mail`, `email`, `updatedBy`, `assignedTo`, ...);
//! - `id` and `displayName` of a *user record*: an object with a `userPrincipalName` or
//!   `userDisplayName` key (e.g. a `userRegistrationDetails` item), or the value of a `user`
//!   key (Graph's `identitySet.user`);
//! - the user-id lists [`USER_ID_LISTS`] of conditional-access policies (`includeUsers`,
//!   `excludeUsers`), except their special values [`SPECIAL_USER_VALUES`] (`All`, `None`,
//!   `GuestsOrExternalUsers`), which the connector's signals read.
//!
//! Everything else is kept: policy, label and control ids and names, group and role ids,
//! scores, flags, dates. A pseudonym reads `pseudonym:` followed by 20 hex digits (the first
//! 80 bits of the HMAC).
//!
//! # The key
//!
//! `postured record` draws a fresh random 256-bit key per run ([`Pseudonymiser::random`])
//! and never stores it: pseudonyms are consistent within one recording (all its files), and
//! nobody, not even the one who recorded, can map them back or test a guessed name against
//! them. Two recordings made by different runs therefore use different pseudonyms.
//!
//! # Signals
//!
//! The daemon's automatic evidence holds signal values, not bodies: [`Pseudonymiser::signals`]
//! applies the same keyed pseudonym to the text signals that name users
//! ([`USER_LISTING_SIGNALS`], each listed name; [`USER_DETAIL_SIGNALS`], the whole text) and
//! to every occurrence of those names in accompanying texts (a rule's reason quotes them).

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::signal::SignalValue;

/// Keys whose string values are personal wherever they occur.
pub const PERSONAL_KEYS: &[&str] = &[
    "userPrincipalName",
    "userDisplayName",
    "mail",
    "email",
    "emailAddress",
    "otherMails",
    "proxyAddresses",
    "givenName",
    "surname",
    "mailNickname",
    "onPremisesSamAccountName",
    "onPremisesUserPrincipalName",
    "userId",
    "updatedBy",
    "assignedTo",
];

/// Keys that mark an object as a user record (its `id` and `displayName` are then personal).
pub const USER_RECORD_MARKERS: &[&str] = &["userPrincipalName", "userDisplayName"];

/// Keys that are personal inside a user record.
pub const USER_RECORD_KEYS: &[&str] = &["id", "displayName"];

/// Keys whose value is a user record (Graph `identitySet.user`).
pub const USER_RECORD_HOLDERS: &[&str] = &["user"];

/// Lists of user object ids (conditional-access `conditionalAccessUsers`).
pub const USER_ID_LISTS: &[&str] = &["includeUsers", "excludeUsers"];

/// Values of [`USER_ID_LISTS`] that name no user and are kept.
pub const SPECIAL_USER_VALUES: &[&str] = &["All", "None", "GuestsOrExternalUsers"];

/// Text signals whose value is a [`crate::signal::listing`] of users (names, principal
/// names or object ids): each listed name is personal, the ` and N more` tail is kept.
pub const USER_LISTING_SIGNALS: &[&str] = &[
    "aws_iam.users.direct_policies",
    "aws_iam.credentials.console_users_without_mfa",
    "aws_iam.credentials.unused",
    "aws_iam.credentials.multiple_active_keys",
    "aws_iam.credentials.unrotated_keys",
    "msgraph.privileged.roles.not_cloud_only",
];

/// `(prefix, suffix)` of text signals whose value is prose naming users (by object id): the
/// whole text is personal.
pub const USER_DETAIL_SIGNALS: &[(&str, &str)] = &[
    ("msgraph.privileged.roles.scuba.", ".detail"),
    ("msgraph.privileged.pim_assignments.scuba.", ".detail"),
];

/// Prefix of every pseudonym.
pub const PREFIX: &str = "pseudonym:";

/// Length of a random key, in bytes.
pub const KEY_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A keyed pseudonymiser (HMAC-SHA256). `Debug` never shows the key.
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: HmacSha256,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser([key redacted])")
    }
}

impl Pseudonymiser {
    /// A pseudonymiser with a fresh random key of [`KEY_LEN`] bytes (from the OS-seeded
    /// thread RNG), never stored.
    pub fn random() -> Self {
        Self::with_key(&rand::random::<[u8; KEY_LEN]>())
    }

    /// A pseudonymiser with a given key (tests, or pseudonyms stable across recordings).
    pub fn with_key(key: &[u8]) -> Self {
        let mac = HmacSha256::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self { mac }
    }

    /// The pseudonym of one value: [`PREFIX`] and the first 80 bits of its HMAC, in hex.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(PREFIX.len() + 20);
        out.push_str(PREFIX);
        for b in digest.iter().take(10) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Replace every personal value of `body` in place (see the module docs for the rule).
    /// Recursion follows the JSON nesting, which `serde_json` bounds (128 levels) when it
    /// parses a body.
    pub fn pseudonymise(&self, body: &mut Value) {
        self.walk(body, false);
    }

    /// Pseudonymise the personal text signals among `signals` in place (see the module docs),
    /// and every occurrence of their personal strings in `texts` (longest first, so a name
    /// that contains another is replaced whole). Other signals and texts are kept.
    pub fn signals<K: AsRef<str>>(
        &self,
        signals: &mut [(K, SignalValue)],
        texts: &mut [&mut String],
    ) {
        let mut personal: Vec<String> = Vec::new();
        for (key, value) in signals.iter_mut() {
            let key = key.as_ref();
            let SignalValue::Text(text) = value else {
                continue;
            };
            if USER_LISTING_SIGNALS.contains(&key) {
                let (names, tail) = split_listing(text);
                let mut out: Vec<String> = names.iter().map(|n| self.pseudonym(n)).collect();
                personal.extend(names.into_iter().map(str::to_owned));
                let mut joined = std::mem::take(&mut out).join(", ");
                joined.push_str(tail);
                *text = joined;
            } else if USER_DETAIL_SIGNALS
                .iter()
                .any(|(p, s)| key.starts_with(p) && key.ends_with(s))
                && !text.is_empty()
            {
                let clear = std::mem::take(text);
                *text = self.pseudonym(&clear);
                personal.push(clear);
            }
        }
        personal.sort_by_key(|n| std::cmp::Reverse(n.len()));
        personal.dedup();
        for t in texts.iter_mut() {
            for name in &personal {
                if t.contains(name.as_str()) {
                    **t = t.replace(name.as_str(), &self.pseudonym(name));
                }
            }
        }
    }

    fn walk(&self, v: &mut Value, user_record: bool) {
        match v {
            Value::Object(map) => {
                let user_record =
                    user_record || USER_RECORD_MARKERS.iter().any(|k| map.contains_key(*k));
                for (k, child) in map.iter_mut() {
                    let k = k.as_str();
                    if PERSONAL_KEYS.contains(&k) || (user_record && USER_RECORD_KEYS.contains(&k))
                    {
                        self.strings(child, &[]);
                    } else if USER_ID_LISTS.contains(&k) {
                        self.strings(child, SPECIAL_USER_VALUES);
                    } else {
                        self.walk(child, USER_RECORD_HOLDERS.contains(&k));
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, false);
                }
            }
            _ => {}
        }
    }

    /// Pseudonymise the strings of a personal value (a string, or an array of them), keeping
    /// `keep`; an object under a personal key is walked as a user record.
    fn strings(&self, v: &mut Value, keep: &[&str]) {
        match v {
            Value::String(s) if !keep.contains(&s.as_str()) => *s = self.pseudonym(s),
            Value::Array(items) => {
                for item in items {
                    self.strings(item, keep);
                }
            }
            Value::Object(_) => self.walk(v, true),
            _ => {}
        }
    }
}

/// The names of a [`crate::signal::listing`] and its ` and N more` tail (empty when none).
fn split_listing(text: &str) -> (Vec<&str>, &str) {
    let (body, tail) = match text.rfind(" and ") {
        Some(at)
            if text[at + 5..]
                .strip_suffix(" more")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            (&text[..at], &text[at..])
        }
        _ => (text, ""),
    };
    let names = body.split(", ").filter(|n| !n.is_empty()).collect();
    (names, tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_fields_are_replaced_consistently_and_the_rest_kept() {
        let p = Pseudonymiser::with_key(b"k");
        let mut body = json!({
            "value": [
                {"id": "86462606", "userPrincipalName": "AlexW@Contoso.com",
                 "userDisplayName": "Alex Wilber", "isAdmin": false,
                 "methodsRegistered": ["push"]},
                {"id": "policy-1", "displayName": "Require MFA",
                 "conditions": {"users": {"includeUsers": ["All", "86462606"],
                                           "excludeUsers": ["GuestsOrExternalUsers"],
                                           "includeGroups": ["g1"]}}},
                {"id": "DLPEnabled", "controlStateUpdates": [
                    {"updatedBy": "admin@contoso.com", "assignedTo": null, "state": "Default"}]},
                {"createdBy": {"user": {"id": "u9", "displayName": "Megan Bowen"},
                               "application": {"id": "app", "displayName": "Portal"}}}
            ]
        });
        p.pseudonymise(&mut body);
        let alex_id = p.pseudonym("86462606");
        let v = &body["value"];
        assert_eq!(v[0]["id"], json!(alex_id));
        assert_eq!(
            v[0]["userPrincipalName"],
            json!(p.pseudonym("AlexW@Contoso.com"))
        );
        assert_eq!(v[0]["userDisplayName"], json!(p.pseudonym("Alex Wilber")));
        assert_eq!(v[0]["isAdmin"], json!(false));
        assert_eq!(v[0]["methodsRegistered"], json!(["push"]));
        assert_eq!(v[1]["id"], json!("policy-1"));
        assert_eq!(v[1]["displayName"], json!("Require MFA"));
        let users = &v[1]["conditions"]["users"];
        assert_eq!(users["includeUsers"], json!(["All", alex_id]));
        assert_eq!(users["excludeUsers"], json!(["GuestsOrExternalUsers"]));
        assert_eq!(users["includeGroups"], json!(["g1"]));
        assert_eq!(v[2]["id"], json!("DLPEnabled"));
        let update = &v[2]["controlStateUpdates"][0];
        assert_eq!(update["updatedBy"], json!(p.pseudonym("admin@contoso.com")));
        assert_eq!(update["assignedTo"], json!(null));
        assert_eq!(update["state"], json!("Default"));
        let created = &v[3]["createdBy"];
        assert_eq!(created["user"]["id"], json!(p.pseudonym("u9")));
        assert_eq!(
            created["user"]["displayName"],
            json!(p.pseudonym("Megan Bowen"))
        );
        assert_eq!(created["application"]["displayName"], json!("Portal"));
        assert!(alex_id.starts_with(PREFIX) && alex_id.len() == PREFIX.len() + 20);
    }

    #[test]
    fn user_signals_and_the_texts_quoting_them_are_pseudonymised() {
        let p = Pseudonymiser::with_key(b"k");
        let listed = "alice@contoso.com, bob@contoso.com and 3 more";
        let detail = "2 users hold Global Administrator (2 to 8 wanted): u-1, u-2";
        let mut signals = vec![
            (
                "aws_iam.credentials.console_users_without_mfa".to_string(),
                SignalValue::Text(listed.into()),
            ),
            (
                "msgraph.privileged.roles.scuba.aad_7_1.detail".to_string(),
                SignalValue::Text(detail.into()),
            ),
            (
                "msgraph.ca.scuba.aad_3_1.detail".to_string(),
                SignalValue::Text("satisfied by: Require MFA".into()),
            ),
            (
                "aws_iam.credentials.unused".to_string(),
                SignalValue::Text(String::new()),
            ),
            (
                "aws_iam.credentials.unused_total".to_string(),
                SignalValue::Number(0.0),
            ),
        ];
        let mut reason = format!("console users without MFA: {listed}");
        let mut other = detail.to_string();
        p.signals(&mut signals, &mut [&mut reason, &mut other]);
        let a = p.pseudonym("alice@contoso.com");
        let b = p.pseudonym("bob@contoso.com");
        assert_eq!(
            signals[0].1,
            SignalValue::Text(format!("{a}, {b} and 3 more"))
        );
        assert_eq!(signals[1].1, SignalValue::Text(p.pseudonym(detail)));
        assert_eq!(
            signals[2].1,
            SignalValue::Text("satisfied by: Require MFA".into())
        );
        assert_eq!(signals[3].1, SignalValue::Text(String::new()));
        assert_eq!(signals[4].1, SignalValue::Number(0.0));
        assert_eq!(
            reason,
            format!("console users without MFA: {a}, {b} and 3 more")
        );
        assert_eq!(other, p.pseudonym(detail));
        assert_eq!(split_listing("x and 2 more"), (vec!["x"], " and 2 more"));
        assert_eq!(split_listing("Tom and Jerry"), (vec!["Tom and Jerry"], ""));
    }

    #[test]
    fn keys_give_different_pseudonyms_and_debug_hides_the_key() {
        let a = Pseudonymiser::with_key(b"key-a");
        let b = Pseudonymiser::with_key(b"key-b");
        assert_ne!(a.pseudonym("x"), b.pseudonym("x"));
        assert_eq!(a.pseudonym("x"), a.pseudonym("x"));
        assert_ne!(
            Pseudonymiser::random().pseudonym("x"),
            Pseudonymiser::random().pseudonym("x")
        );
        assert!(!format!("{a:?}").contains("key-a"));
    }
}
