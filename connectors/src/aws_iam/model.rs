//! Typed forms of the IAM responses the connector reads, and their parsers (XML via
//! [`roxmltree`], the credential report's CSV via [`csv`]). Shapes follow the IAM API
//! reference; the fixtures under `connectors/fixtures/aws_iam/` (see their `SOURCES.md`) are
//! parsed in the tests below.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Utc};

use super::client::{child, child_text, members};

/// `GetAccountSummary`: the `SummaryMap` entries (`AccountMFAEnabled`,
/// `AccountAccessKeysPresent`, ...).
pub type AccountSummary = BTreeMap<String, i64>;

/// Parse a `GetAccountSummary` response.
pub fn account_summary(doc: &roxmltree::Document<'_>) -> Result<AccountSummary, String> {
    let map = child(doc.root_element(), "SummaryMap", true).ok_or("no SummaryMap")?;
    let mut out = AccountSummary::new();
    for entry in map
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "entry")
    {
        let key = child_text(entry, "key", false).ok_or("an entry without key")?;
        let value = child_text(entry, "value", false).ok_or("an entry without value")?;
        let value: i64 = value
            .trim()
            .parse()
            .map_err(|_| format!("SummaryMap {key}: {value:?} is not a number"))?;
        out.insert(key.trim().to_owned(), value);
    }
    Ok(out)
}

/// `GetAccountPasswordPolicy`'s `PasswordPolicy`. Absent booleans are `false`, absent
/// numbers `None` (AWS omits `MaxPasswordAge` and `PasswordReusePrevention` when unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// `MinimumPasswordLength`.
    pub minimum_length: Option<i64>,
    /// `RequireUppercaseCharacters`.
    pub require_uppercase: bool,
    /// `RequireLowercaseCharacters`.
    pub require_lowercase: bool,
    /// `RequireNumbers`.
    pub require_numbers: bool,
    /// `RequireSymbols`.
    pub require_symbols: bool,
    /// `ExpirePasswords`.
    pub expire_passwords: bool,
    /// `MaxPasswordAge` (days).
    pub max_age_days: Option<i64>,
    /// `PasswordReusePrevention`.
    pub reuse_prevention: Option<i64>,
}

/// Parse a `GetAccountPasswordPolicy` response.
pub fn password_policy(doc: &roxmltree::Document<'_>) -> Result<PasswordPolicy, String> {
    let p = child(doc.root_element(), "PasswordPolicy", true).ok_or("no PasswordPolicy")?;
    let flag = |name: &str| -> Result<bool, String> {
        match child_text(p, name, false).map(str::trim) {
            None => Ok(false),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(o) => Err(format!("{name}: {o:?} is not a boolean")),
        }
    };
    let num = |name: &str| -> Result<Option<i64>, String> {
        child_text(p, name, false)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| format!("{name}: {v:?} is not a number"))
            })
            .transpose()
    };
    Ok(PasswordPolicy {
        minimum_length: num("MinimumPasswordLength")?,
        require_uppercase: flag("RequireUppercaseCharacters")?,
        require_lowercase: flag("RequireLowercaseCharacters")?,
        require_numbers: flag("RequireNumbers")?,
        require_symbols: flag("RequireSymbols")?,
        expire_passwords: flag("ExpirePasswords")?,
        max_age_days: num("MaxPasswordAge")?,
        reuse_prevention: num("PasswordReusePrevention")?,
    })
}

/// One `ListVirtualMFADevices` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualMfaDevice {
    /// `SerialNumber` (the device ARN).
    pub serial_number: String,
    /// `User/Arn` when the device is assigned.
    pub user_arn: Option<String>,
}

impl VirtualMfaDevice {
    /// Whether the device is the root user's: assigned to `arn:aws:iam::<account>:root`, or
    /// named `root-account-mfa-device` (the serial the console gives it; CIS 1.6's audit looks
    /// for it).
    pub fn is_root(&self) -> bool {
        self.user_arn
            .as_deref()
            .is_some_and(|a| a.ends_with(":root"))
            || self.serial_number.ends_with("/root-account-mfa-device")
    }
}

/// Parse one `ListVirtualMFADevices` page into `out`.
pub fn virtual_mfa_devices(
    result: roxmltree::Node<'_, '_>,
    out: &mut Vec<VirtualMfaDevice>,
) -> Result<(), String> {
    for m in members(result, "VirtualMFADevices") {
        let serial = child_text(m, "SerialNumber", false).ok_or("a device without SerialNumber")?;
        let user_arn = child(m, "User", false)
            .and_then(|u| child_text(u, "Arn", false))
            .map(|a| a.trim().to_owned());
        out.push(VirtualMfaDevice {
            serial_number: serial.trim().to_owned(),
            user_arn,
        });
    }
    Ok(())
}

/// Parse the text of each `<member>` of list `list` (`ListUserPolicies`' `PolicyNames`) or
/// the text of field `field` of each member (`ListUsers`' `UserName`), into `out`.
pub fn member_fields(
    result: roxmltree::Node<'_, '_>,
    list: &str,
    field: Option<&str>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    for m in members(result, list) {
        let text = match field {
            None => m.text().unwrap_or(""),
            Some(f) => {
                child_text(m, f, false).ok_or_else(|| format!("a {list} member without {f}"))?
            }
        };
        out.push(text.trim().to_owned());
    }
    Ok(())
}

/// One `ListPolicies` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    /// `PolicyName`.
    pub name: String,
    /// `Arn`.
    pub arn: String,
    /// `DefaultVersionId`.
    pub default_version: String,
}

/// Parse one `ListPolicies` page into `out`.
pub fn policies(
    result: roxmltree::Node<'_, '_>,
    out: &mut Vec<ManagedPolicy>,
) -> Result<(), String> {
    for m in members(result, "Policies") {
        let get = |f: &str| {
            child_text(m, f, false)
                .map(|t| t.trim().to_owned())
                .ok_or_else(|| format!("a policy without {f}"))
        };
        out.push(ManagedPolicy {
            name: get("PolicyName")?,
            arn: get("Arn")?,
            default_version: get("DefaultVersionId")?,
        });
    }
    Ok(())
}

/// The policy document of a `GetPolicyVersion` response, decoded: the live service sends it
/// URL-encoded (RFC 3986); documentation samples show it raw. Either is accepted.
pub fn policy_document(doc: &roxmltree::Document<'_>) -> Result<serde_json::Value, String> {
    let text = child_text(doc.root_element(), "Document", true).ok_or("no Document")?;
    let text = text.trim();
    let json = if text.starts_with('{') {
        text.to_owned()
    } else {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map_err(|_| "Document is not UTF-8 once URL-decoded")?
            .into_owned()
    };
    serde_json::from_str(&json).map_err(|e| format!("Document is not JSON: {e}"))
}

/// CIS AWS Foundations Benchmark v3.0 recommendation 1.16: whether a policy document has a
/// statement with `"Effect": "Allow"`, `"Action": "*"` and `"Resource": "*"` (a string, or a
/// list holding `"*"`). Conditions are not considered, as in the benchmark's audit.
pub fn grants_full_admin(document: &serde_json::Value) -> bool {
    let has_star = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s == "*",
        Some(serde_json::Value::Array(a)) => a.iter().any(|x| x.as_str() == Some("*")),
        _ => false,
    };
    let statements: Vec<&serde_json::Value> = match document.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.iter().collect(),
        Some(one @ serde_json::Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    statements.into_iter().any(|s| {
        s.get("Effect").and_then(|e| e.as_str()) == Some("Allow")
            && has_star(s.get("Action"))
            && has_star(s.get("Resource"))
    })
}

/// `GenerateCredentialReport`'s `State` (`STARTED`, `INPROGRESS`, `COMPLETE`).
pub fn report_state(doc: &roxmltree::Document<'_>) -> Result<String, String> {
    child_text(doc.root_element(), "State", true)
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| "no State".to_owned())
}

/// A credential-report timestamp: RFC 3339, or `None` for `N/A`, `no_information`,
/// `not_supported` (and anything else that is not a time).
fn report_time(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One access key's columns of a credential-report row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportKey {
    /// `access_key_N_active`.
    pub active: bool,
    /// `access_key_N_last_rotated` (the key's creation time).
    pub last_rotated: Option<DateTime<Utc>>,
    /// `access_key_N_last_used_date` (`None`: `N/A`, never used).
    pub last_used: Option<DateTime<Utc>>,
}

/// One credential-report row (one user; `<root_account>` for the root user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRow {
    /// `user`.
    pub user: String,
    /// `password_enabled` is `true` (`not_supported` for root: false).
    pub password_enabled: bool,
    /// `password_last_used` (`None`: `no_information` or `N/A`).
    pub password_last_used: Option<DateTime<Utc>>,
    /// `password_last_changed`.
    pub password_last_changed: Option<DateTime<Utc>>,
    /// `mfa_active`.
    pub mfa_active: bool,
    /// `access_key_1_*` and `access_key_2_*`.
    pub keys: [ReportKey; 2],
}

impl ReportRow {
    /// Whether this is the root user's row (`<root_account>`).
    pub fn is_root(&self) -> bool {
        self.user == "<root_account>"
    }
}

/// The credential report: its rows and `GeneratedTime`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialReport {
    /// When AWS generated it.
    pub generated: Option<DateTime<Utc>>,
    /// One row per user, root included when AWS lists it.
    pub rows: Vec<ReportRow>,
}

/// Parse a `GetCredentialReport` response: base64 `Content` holding the CSV (columns by
/// header name, so added columns do not matter).
pub fn credential_report(doc: &roxmltree::Document<'_>) -> Result<CredentialReport, String> {
    let root = doc.root_element();
    let content = child_text(root, "Content", true).ok_or("no Content")?;
    let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
    let csv_bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| format!("Content is not base64: {e}"))?;
    let mut report = credential_report_csv(&csv_bytes)?;
    report.generated = child_text(root, "GeneratedTime", true).and_then(report_time);
    Ok(report)
}

/// Parse the credential report CSV.
pub fn credential_report_csv(bytes: &[u8]) -> Result<CredentialReport, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| format!("credential report CSV: {e}"))?
        .clone();
    let col = |name: &str| -> Result<usize, String> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("credential report has no column {name}"))
    };
    let user = col("user")?;
    let pw = col("password_enabled")?;
    let pw_used = col("password_last_used")?;
    let pw_changed = col("password_last_changed")?;
    let mfa = col("mfa_active")?;
    let mut key_cols = Vec::new();
    for n in 1..=2 {
        key_cols.push((
            col(&format!("access_key_{n}_active"))?,
            col(&format!("access_key_{n}_last_rotated"))?,
            col(&format!("access_key_{n}_last_used_date"))?,
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let r = record.map_err(|e| format!("credential report CSV: {e}"))?;
        let get = |i: usize| r.get(i).unwrap_or("");
        // A flag column is `true`, `false` or (root's `password_enabled`) `not_supported`;
        // anything else is refused rather than read as `false`, which could pass or fail a
        // control on a value that was never a boolean.
        let flag = |i: usize| -> Result<bool, String> {
            match get(i) {
                "true" => Ok(true),
                "false" | "not_supported" => Ok(false),
                other => Err(format!(
                    "credential report column {}: {:?} is not a boolean",
                    headers.get(i).unwrap_or("?"),
                    other.chars().take(40).collect::<String>()
                )),
            }
        };
        let key = |(a, rot, used): (usize, usize, usize)| -> Result<ReportKey, String> {
            Ok(ReportKey {
                active: flag(a)?,
                last_rotated: report_time(get(rot)),
                last_used: report_time(get(used)),
            })
        };
        rows.push(ReportRow {
            user: get(user).to_owned(),
            password_enabled: flag(pw)?,
            password_last_used: report_time(get(pw_used)),
            password_last_changed: report_time(get(pw_changed)),
            mfa_active: flag(mfa)?,
            keys: [key(key_cols[0])?, key(key_cols[1])?],
        });
    }
    Ok(CredentialReport {
        generated: None,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(text).unwrap()
    }

    #[test]
    fn fixtures_parse() {
        let s = account_summary(&doc(include_str!(
            "../../fixtures/aws_iam/GetAccountSummary-response.erlcloud-fixture.xml"
        )))
        .unwrap();
        assert_eq!(s.get("AccountMFAEnabled"), Some(&0));
        assert_eq!(s.get("Users"), Some(&35));

        let p = password_policy(&doc(include_str!(
            "../../fixtures/aws_iam/GetAccountPasswordPolicy-response.erlcloud-fixture.xml"
        )))
        .unwrap();
        assert_eq!(p.minimum_length, Some(12));
        assert_eq!(p.reuse_prevention, Some(12));
        assert_eq!(p.max_age_days, Some(90));
        assert!(p.require_uppercase && p.require_lowercase && p.require_numbers);
        assert!(p.require_symbols && !p.expire_passwords);

        let text = include_str!(
            "../../fixtures/aws_iam/ListVirtualMFADevices-response.erlcloud-fixture.xml"
        );
        let d = doc(text);
        let mut devices = Vec::new();
        virtual_mfa_devices(d.root_element(), &mut devices).unwrap();
        assert_eq!(devices.len(), 3);
        assert_eq!(
            devices
                .iter()
                .map(VirtualMfaDevice::is_root)
                .collect::<Vec<_>>(),
            [false, true, false]
        );

        let d = doc(include_str!(
            "../../fixtures/aws_iam/ListUsers-response.erlcloud-fixture.xml"
        ));
        let mut users = Vec::new();
        member_fields(d.root_element(), "Users", Some("UserName"), &mut users).unwrap();
        assert_eq!(users, ["Andrew", "Jackie"]);

        let d = doc(include_str!(
            "../../fixtures/aws_iam/ListUserPolicies-response.erlcloud-fixture.xml"
        ));
        let mut names = Vec::new();
        member_fields(d.root_element(), "PolicyNames", None, &mut names).unwrap();
        assert_eq!(names, ["AllAccessPolicy", "KeyPolicy"]);

        let d = doc(include_str!(
            "../../fixtures/aws_iam/ListAttachedUserPolicies-response.erlcloud-fixture.xml"
        ));
        let mut names = Vec::new();
        member_fields(
            d.root_element(),
            "AttachedPolicies",
            Some("PolicyName"),
            &mut names,
        )
        .unwrap();
        assert_eq!(names, ["AdministratorAccess"]);

        let d = doc(include_str!(
            "../../fixtures/aws_iam/ListPolicies-response.aws-doc.xml"
        ));
        let mut ps = Vec::new();
        policies(d.root_element(), &mut ps).unwrap();
        assert!(ps.iter().any(|p| p.name == "AdministratorAccess"));

        let d = doc(include_str!(
            "../../fixtures/aws_iam/GetPolicyVersion-response.erlcloud-fixture.xml"
        ));
        let document = policy_document(&d).unwrap();
        assert!(!grants_full_admin(&document));

        let d = doc(include_str!(
            "../../fixtures/aws_iam/GenerateCredentialReport-response.erlcloud-fixture.xml"
        ));
        assert_eq!(report_state(&d).unwrap(), "STARTED");
    }

    #[test]
    fn truncated_malformed_and_extended_bodies() {
        // The AWS reference sample as captured is truncated: not XML.
        let truncated =
            include_str!("../../fixtures/aws_iam/GetAccountSummary-response.aws-doc-partial.xml");
        assert!(roxmltree::Document::parse(truncated).is_err());
        let e = super::super::client::parse("iam:GetAccountSummary", truncated).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Malformed);
        // Wrong types are errors, not zeros.
        let d = doc(
            "<R><SummaryMap><entry><key>Users</key><value>many</value></entry></SummaryMap></R>",
        );
        assert!(account_summary(&d).unwrap_err().contains("not a number"));
        let d = doc("<R><PasswordPolicy><RequireSymbols>yes</RequireSymbols></PasswordPolicy></R>");
        assert!(password_policy(&d).unwrap_err().contains("not a boolean"));
        // A missing element is an error; unknown elements are ignored.
        assert!(account_summary(&doc("<R/>")).is_err());
        let d = doc(
            "<R><PasswordPolicy><Future>1</Future><MinimumPasswordLength>14</MinimumPasswordLength></PasswordPolicy></R>",
        );
        assert_eq!(password_policy(&d).unwrap().minimum_length, Some(14));
        // A DTD (entity declarations: billion laughs) is refused by the parser.
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>"#;
        assert!(roxmltree::Document::parse(bomb).is_err());
        // Credential report: not base64, not CSV, missing column, extra column.
        let d = doc("<R><Content>!!!</Content></R>");
        assert!(credential_report(&d).unwrap_err().contains("base64"));
        assert!(credential_report_csv(b"user,arn\nx,y\n").is_err());
        let header = include_str!("../../fixtures/aws_iam/credential-report-header.csv");
        let csv = format!(
            "{},future_column\nu,a,N/A,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A,x\n",
            header.trim_end()
        );
        assert_eq!(credential_report_csv(csv.as_bytes()).unwrap().rows.len(), 1);
        let ragged = format!("{}\nu,a\n", header.trim_end());
        assert!(credential_report_csv(ragged.as_bytes()).is_err());
        // A flag that is not a boolean is an error, not `false`.
        let yes = format!(
            "{}\nu,a,N/A,false,N/A,N/A,N/A,yes,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n",
            header.trim_end()
        );
        let e = credential_report_csv(yes.as_bytes()).unwrap_err();
        assert!(
            e.contains("mfa_active") && e.contains("not a boolean"),
            "{e}"
        );
    }

    #[test]
    fn admin_documents() {
        let enc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%7D";
        let xml = format!(
            "<GetPolicyVersionResponse><GetPolicyVersionResult><PolicyVersion><Document>{enc}</Document></PolicyVersion></GetPolicyVersionResult></GetPolicyVersionResponse>"
        );
        let d = doc(&xml);
        assert!(grants_full_admin(&policy_document(&d).unwrap()));
        let v: serde_json::Value = serde_json::from_str(
            r#"{"Statement":[{"Effect":"Allow","Action":["s3:*","*"],"Resource":["*"]}]}"#,
        )
        .unwrap();
        assert!(grants_full_admin(&v));
        let v: serde_json::Value = serde_json::from_str(
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b"}]}"#,
        )
        .unwrap();
        assert!(!grants_full_admin(&v));
    }

    #[test]
    fn credential_report_columns_by_name() {
        let header = include_str!("../../fixtures/aws_iam/credential-report-header.csv");
        let csv = format!(
            "{}\n<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,2026-01-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
             alice,arn:aws:iam::123456789012:user/alice,2020-01-01T00:00:00+00:00,true,no_information,2026-01-01T00:00:00+00:00,N/A,false,true,2026-02-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n",
            header.trim_end()
        );
        let r = credential_report_csv(csv.as_bytes()).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert!(r.rows[0].is_root() && r.rows[0].mfa_active && !r.rows[0].password_enabled);
        let a = &r.rows[1];
        assert!(a.password_enabled && a.password_last_used.is_none());
        assert!(a.keys[0].active && a.keys[0].last_used.is_none() && !a.keys[1].active);
        assert_eq!(
            a.keys[0].last_rotated,
            Some("2026-02-01T00:00:00Z".parse().unwrap())
        );
    }
}
