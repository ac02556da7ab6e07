//! The `aws_iam` connector kind end to end, through the daemon (configuration, poll, signals,
//! catalog rules, points):
//!
//! - against a **real AWS API emulator**, `moto_server` on loopback (`POSTURED_TEST_MOTO_URL`,
//!   started by `scripts/test.sh`; without it these tests print a note and pass, unless
//!   `POSTURED_REQUIRE_TEST_SERVERS` is set). Each scenario is its own AWS account, reached
//!   the way an auditor reaches one: STS `AssumeRole` with an external id, signed with the
//!   base keys (moto maps the assumed role's account id to a separate IAM state, so the
//!   scenarios run in parallel on one server). Accounts are prepared through moto's IAM API
//!   with the connector's own SigV4 client;
//! - against **wiremock fixtures** built from AWS's documented response shapes
//!   (`connectors/fixtures/aws_iam/`), for what moto cannot show: a `<root_account>` row,
//!   `AccountMFAEnabled = 1`, a root virtual MFA device, and old and unused credentials.
//!
//! Every action of `config/catalog/aws_iam.toml` is asserted with its exact status and points.

mod support;

use std::path::Path;

use base64::Engine;
use postured::evaluation::{ActionResult, TestStatus};
use postured::store::PollOutcome;
use postured_connectors::aws_iam::AwsIamSettings;
use postured_connectors::aws_iam::client::AwsCredentials;
use postured_connectors::record::Mode;
use postured_connectors::settings::SettingsContext;
use support::*;
use wiremock::matchers::{method, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use TestStatus::{
    CouldNotBeDetected, FailedHighRisk, FailedLowRisk, FailedMediumRisk, OutOfScope,
    PartiallyTested, Passed,
};

/// A fresh account id per scenario and run: moto keeps its state between runs, and accounts
/// isolate scenarios running in parallel on one server.
fn fresh_account() -> String {
    format!(
        "{:012}",
        rand::random::<u64>() % 900_000_000_000 + 100_000_000_000
    )
}

fn moto_url() -> Option<String> {
    match std::env::var("POSTURED_TEST_MOTO_URL") {
        Ok(u) if !u.is_empty() => Some(u.trim_end_matches('/').to_owned()),
        _ => {
            assert!(
                !servers_required(),
                "POSTURED_TEST_MOTO_URL is required (scripts/test.sh starts moto_server)"
            );
            eprintln!("skipped: POSTURED_TEST_MOTO_URL not set (run scripts/test.sh)");
            None
        }
    }
}

/// Base keys in files (secret references), the role of `account` with an external id.
fn connector_table(dir: &Path, endpoint: &str, account: &str) -> String {
    std::fs::write(dir.join("key-id"), "AKIDPOSTUREDTEST").unwrap();
    std::fs::write(dir.join("secret"), "not-a-real-secret\n").unwrap();
    format!(
        r#"
  [[tenants.connectors]]
  kind = "aws_iam"
  schedule = "0 0 * * * *"
  endpoint = "{endpoint}"
  sts_endpoint = "{endpoint}"
  access_key_id = {{ file = "{d}/key-id" }}
  secret_access_key = {{ file = "{d}/secret" }}
  role_arn = "arn:aws:iam::{account}:role/postured-audit"
  external_id = "postured-external-id"
  report_poll_interval = "50ms"
  report_wait = "10s"
  max_retry_wait = "200ms"
"#,
        d = dir.display()
    )
}

/// A connector built from the same table, for preparing the account through IAM.
struct Prep {
    conn: postured_connectors::aws_iam::IamConnector,
    creds: AwsCredentials,
}

impl Prep {
    async fn new(dir: &Path, endpoint: &str, account: &str) -> Prep {
        postured::http::install_crypto_provider();
        let table: toml::Table = connector_table(dir, endpoint, account)
            .replace("[[tenants.connectors]]", "")
            .replace("kind = \"aws_iam\"", "")
            .replace("schedule = \"0 0 * * * *\"", "")
            .parse()
            .unwrap();
        let env = |_: &str| None;
        let cx = SettingsContext {
            path: "prep",
            tenant: "prep",
            env: &env,
            base_dir: None,
            resolve_secrets: true,
        };
        let settings = AwsIamSettings::parse(table, &cx).unwrap();
        let conn = settings
            .connector(reqwest::Client::new(), Mode::Live)
            .unwrap();
        let creds = conn.credentials().await.unwrap().unwrap();
        Prep { conn, creds }
    }

    async fn call(&self, action: &str, params: &[(&str, &str)]) -> String {
        self.conn
            .iam()
            .call(Some(&self.creds), action, params)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"))
    }

    async fn user(&self, name: &str, console: bool, mfa: bool, keys: usize) {
        self.call("CreateUser", &[("UserName", name)]).await;
        if console {
            self.call(
                "CreateLoginProfile",
                &[("UserName", name), ("Password", "Correct-Horse-9-Battery")],
            )
            .await;
        }
        if mfa {
            let xml = self
                .call("CreateVirtualMFADevice", &[("VirtualMFADeviceName", name)])
                .await;
            let doc = roxmltree::Document::parse(&xml).unwrap();
            let serial = doc
                .descendants()
                .find(|n| n.has_tag_name("SerialNumber"))
                .and_then(|n| n.text())
                .unwrap()
                .to_owned();
            self.call(
                "EnableMFADevice",
                &[
                    ("UserName", name),
                    ("SerialNumber", &serial),
                    ("AuthenticationCode1", "123456"),
                    ("AuthenticationCode2", "654321"),
                ],
            )
            .await;
        }
        for _ in 0..keys {
            self.call("CreateAccessKey", &[("UserName", name)]).await;
        }
    }

    /// Create a customer-managed policy; returns its ARN.
    async fn policy(&self, name: &str, document: &str) -> String {
        let xml = self
            .call(
                "CreatePolicy",
                &[("PolicyName", name), ("PolicyDocument", document)],
            )
            .await;
        let doc = roxmltree::Document::parse(&xml).unwrap();
        doc.descendants()
            .find(|n| n.has_tag_name("Arn"))
            .and_then(|n| n.text())
            .unwrap()
            .to_owned()
    }
}

const ADMIN: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]}"#;

async fn spawn(dir: &Path, endpoint: &str, account: &str) -> TestApp {
    let tenants = format!(
        "[[tenants]]\nid = \"aws\"\n{}",
        connector_table(dir, endpoint, account)
    );
    TestApp::spawn_with("", &tenants, &registry()).await
}

/// The built-in kinds plus `aws_iam` (registered here until the daemon scopes a kind's
/// actions to the tenants that have a connector of that kind; then `builtin_kinds()` lists
/// it).
fn registry() -> postured::registry::Registry {
    let mut r = postured::registry::Registry::builtin();
    if r.get("aws_iam").is_none() {
        r.register(std::sync::Arc::new(postured_connectors::aws_iam::AWS_IAM))
            .expect("aws_iam registers");
    }
    r
}

async fn poll_actions(app: &TestApp) -> Vec<ActionResult> {
    let report = app.poll("aws").await;
    assert_eq!(report.outcome, PollOutcome::Success, "{:#?}", report.errors);
    report
        .evaluation
        .actions
        .iter()
        .filter(|a| a.action_id.starts_with("aws_iam."))
        .cloned()
        .collect()
}

/// `(action, status, points achieved, points possible, reason contains)`.
type Expect<'a> = (&'a str, TestStatus, f64, f64, &'a str);

fn check(actions: &[ActionResult], expected: &[Expect<'_>]) {
    assert_eq!(
        actions.len(),
        expected.len(),
        "{:#?}",
        actions.iter().map(|a| &a.action_id).collect::<Vec<_>>()
    );
    let mut wrong = Vec::new();
    for (id, status, achieved, possible, reason) in expected {
        let a = actions
            .iter()
            .find(|a| a.action_id == *id)
            .unwrap_or_else(|| panic!("{id} not evaluated"));
        let r = a.reason.clone().unwrap_or_default();
        if a.test_status != *status
            || (a.points_achieved - achieved).abs() > 1e-9
            || (a.points_possible - possible).abs() > 1e-9
            || !r.contains(reason)
        {
            wrong.push(format!(
                "{id}: got {:?} {}/{} {r:?}; expected {status:?} {achieved}/{possible} {reason:?}",
                a.test_status, a.points_achieved, a.points_possible
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

const NO_POLICY: &str = "the account has no password policy";

#[tokio::test]
async fn moto_weak_account() {
    let Some(url) = moto_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let account = fresh_account();
    let p = Prep::new(dir.path(), &url, &account).await;
    p.call(
        "UpdateAccountPasswordPolicy",
        &[
            ("MinimumPasswordLength", "8"),
            ("PasswordReusePrevention", "5"),
            ("RequireSymbols", "false"),
            ("RequireNumbers", "true"),
            ("RequireUppercaseCharacters", "false"),
            ("RequireLowercaseCharacters", "true"),
        ],
    )
    .await;
    // alice: console + MFA, permissions through a group only.
    p.user("alice", true, true, 1).await;
    p.call("CreateGroup", &[("GroupName", "readers")]).await;
    let read = p.policy("Read", READ).await;
    p.call(
        "AttachGroupPolicy",
        &[("GroupName", "readers"), ("PolicyArn", &read)],
    )
    .await;
    p.call(
        "AddUserToGroup",
        &[("GroupName", "readers"), ("UserName", "alice")],
    )
    .await;
    // bob: console without MFA, two active keys, an inline policy.
    p.user("bob", true, false, 2).await;
    p.call(
        "PutUserPolicy",
        &[
            ("UserName", "bob"),
            ("PolicyName", "inline"),
            ("PolicyDocument", READ),
        ],
    )
    .await;
    // carol: no console, one key, the admin policy attached directly.
    p.user("carol", false, false, 1).await;
    let admin = p.policy("AdminAll", ADMIN).await;
    p.call(
        "AttachUserPolicy",
        &[("UserName", "carol"), ("PolicyArn", &admin)],
    )
    .await;
    // dave: console without MFA.
    p.user("dave", true, false, 0).await;

    let app = spawn(dir.path(), &url, &account).await;
    let actions = poll_actions(&app).await;
    check(
        &actions,
        &[
            ("aws_iam.root.no_access_keys", Passed, 27.0, 27.0, ""),
            // moto: AccountMFAEnabled is always 0.
            ("aws_iam.root.mfa", FailedHighRisk, 0.0, 27.0, "no MFA"),
            (
                "aws_iam.root.hardware_mfa",
                FailedMediumRisk,
                0.0,
                9.0,
                "no MFA",
            ),
            (
                "aws_iam.password.min_length",
                FailedMediumRisk,
                0.0,
                27.0,
                "below 14",
            ),
            (
                "aws_iam.password.reuse_prevention",
                FailedLowRisk,
                0.0,
                27.0,
                "fewer than 24",
            ),
            ("aws_iam.password.uppercase", FailedLowRisk, 0.0, 9.0, ""),
            ("aws_iam.password.lowercase", Passed, 9.0, 9.0, ""),
            ("aws_iam.password.symbols", FailedLowRisk, 0.0, 9.0, ""),
            ("aws_iam.password.numbers", Passed, 9.0, 9.0, ""),
            (
                "aws_iam.password.max_age",
                FailedLowRisk,
                0.0,
                9.0,
                "within 90 days",
            ),
            (
                "aws_iam.users.console_mfa",
                PartiallyTested,
                9.0,
                27.0,
                "console users without MFA: bob, dave",
            ),
            (
                "aws_iam.credentials.unused_disabled",
                Passed,
                27.0,
                27.0,
                "",
            ),
            (
                "aws_iam.keys.one_active",
                FailedLowRisk,
                0.0,
                9.0,
                "users with two active access keys: bob",
            ),
            ("aws_iam.keys.rotated", Passed, 27.0, 27.0, ""),
            (
                "aws_iam.users.permissions_via_groups",
                FailedLowRisk,
                0.0,
                9.0,
                "users with policies attached directly: bob, carol",
            ),
            (
                "aws_iam.policies.no_full_admin",
                FailedHighRisk,
                0.0,
                27.0,
                "granting *:*: AdminAll",
            ),
        ],
    );
}

#[tokio::test]
async fn moto_strong_account() {
    let Some(url) = moto_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let account = fresh_account();
    let p = Prep::new(dir.path(), &url, &account).await;
    p.call(
        "UpdateAccountPasswordPolicy",
        &[
            ("MinimumPasswordLength", "14"),
            ("PasswordReusePrevention", "24"),
            ("RequireSymbols", "true"),
            ("RequireNumbers", "true"),
            ("RequireUppercaseCharacters", "true"),
            ("RequireLowercaseCharacters", "true"),
            ("MaxPasswordAge", "90"),
        ],
    )
    .await;
    p.user("erin", true, true, 1).await;
    p.call("CreateGroup", &[("GroupName", "admins")]).await;
    // An admin policy that is not attached: CIS 1.16 only counts attached ones.
    p.policy("UnusedAdmin", ADMIN).await;
    let read = p.policy("Read", READ).await;
    p.call(
        "AttachGroupPolicy",
        &[("GroupName", "admins"), ("PolicyArn", &read)],
    )
    .await;
    p.call(
        "AddUserToGroup",
        &[("GroupName", "admins"), ("UserName", "erin")],
    )
    .await;

    let app = spawn(dir.path(), &url, &account).await;
    let actions = poll_actions(&app).await;
    check(
        &actions,
        &[
            ("aws_iam.root.no_access_keys", Passed, 27.0, 27.0, ""),
            ("aws_iam.root.mfa", FailedHighRisk, 0.0, 27.0, "no MFA"),
            (
                "aws_iam.root.hardware_mfa",
                FailedMediumRisk,
                0.0,
                9.0,
                "no MFA",
            ),
            ("aws_iam.password.min_length", Passed, 27.0, 27.0, ""),
            ("aws_iam.password.reuse_prevention", Passed, 27.0, 27.0, ""),
            ("aws_iam.password.uppercase", Passed, 9.0, 9.0, ""),
            ("aws_iam.password.lowercase", Passed, 9.0, 9.0, ""),
            ("aws_iam.password.symbols", Passed, 9.0, 9.0, ""),
            ("aws_iam.password.numbers", Passed, 9.0, 9.0, ""),
            ("aws_iam.password.max_age", Passed, 9.0, 9.0, ""),
            ("aws_iam.users.console_mfa", Passed, 27.0, 27.0, ""),
            (
                "aws_iam.credentials.unused_disabled",
                Passed,
                27.0,
                27.0,
                "",
            ),
            ("aws_iam.keys.one_active", Passed, 9.0, 9.0, ""),
            ("aws_iam.keys.rotated", Passed, 27.0, 27.0, ""),
            ("aws_iam.users.permissions_via_groups", Passed, 9.0, 9.0, ""),
            ("aws_iam.policies.no_full_admin", Passed, 27.0, 27.0, ""),
        ],
    );
}

#[tokio::test]
async fn moto_account_without_password_policy_or_users() {
    let Some(url) = moto_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let account = fresh_account();
    let app = spawn(dir.path(), &url, &account).await;
    let actions = poll_actions(&app).await;
    check(
        &actions,
        &[
            ("aws_iam.root.no_access_keys", Passed, 27.0, 27.0, ""),
            ("aws_iam.root.mfa", FailedHighRisk, 0.0, 27.0, "no MFA"),
            (
                "aws_iam.root.hardware_mfa",
                FailedMediumRisk,
                0.0,
                9.0,
                "no MFA",
            ),
            // NoSuchEntity: the password actions fail, the collection does not.
            (
                "aws_iam.password.min_length",
                FailedMediumRisk,
                0.0,
                27.0,
                NO_POLICY,
            ),
            (
                "aws_iam.password.reuse_prevention",
                FailedLowRisk,
                0.0,
                27.0,
                NO_POLICY,
            ),
            (
                "aws_iam.password.uppercase",
                FailedLowRisk,
                0.0,
                9.0,
                NO_POLICY,
            ),
            (
                "aws_iam.password.lowercase",
                FailedLowRisk,
                0.0,
                9.0,
                NO_POLICY,
            ),
            (
                "aws_iam.password.symbols",
                FailedLowRisk,
                0.0,
                9.0,
                NO_POLICY,
            ),
            (
                "aws_iam.password.numbers",
                FailedLowRisk,
                0.0,
                9.0,
                NO_POLICY,
            ),
            (
                "aws_iam.password.max_age",
                FailedLowRisk,
                0.0,
                9.0,
                NO_POLICY,
            ),
            ("aws_iam.users.console_mfa", OutOfScope, 0.0, 0.0, ""),
            (
                "aws_iam.credentials.unused_disabled",
                Passed,
                27.0,
                27.0,
                "",
            ),
            ("aws_iam.keys.one_active", Passed, 9.0, 9.0, ""),
            ("aws_iam.keys.rotated", Passed, 27.0, 27.0, ""),
            ("aws_iam.users.permissions_via_groups", Passed, 9.0, 9.0, ""),
            ("aws_iam.policies.no_full_admin", Passed, 27.0, 27.0, ""),
        ],
    );
}

// --- wiremock: what moto cannot show -------------------------------------------------------------

fn fixture_xml(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("connectors/fixtures/aws_iam")
            .join(name),
    )
    .unwrap()
}

fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

async fn mount(server: &MockServer, action: &str, status: u16, body: String) {
    Mock::given(method("GET"))
        .and(query_param("Action", action))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(server)
        .await;
}

fn empty_list(action: &str, list: &str) -> String {
    format!(
        "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result><{list}/><IsTruncated>false</IsTruncated></{action}Result></{action}Response>"
    )
}

/// A credential report built on the documented header (`credential-report-header.csv`):
/// root with MFA and no keys; `old` with a key rotated 120 days ago and last used 50 days
/// ago; `idle` with a console password never used and changed 60 days ago; `fresh` with a
/// key used yesterday.
fn credential_report() -> String {
    let header = fixture_xml("credential-report-header.csv");
    let rows = [
        format!(
            "<root_account>,arn:aws:iam::123456789012:root,{c},not_supported,{u},not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
            c = days_ago(900),
            u = days_ago(3)
        ),
        format!(
            "old,arn:aws:iam::123456789012:user/old,{c},false,N/A,N/A,N/A,false,true,{r},{u},us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
            c = days_ago(400),
            r = days_ago(120),
            u = days_ago(50)
        ),
        format!(
            "idle,arn:aws:iam::123456789012:user/idle,{c},true,no_information,{ch},N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
            c = days_ago(400),
            ch = days_ago(60)
        ),
        format!(
            "fresh,arn:aws:iam::123456789012:user/fresh,{c},false,N/A,N/A,N/A,false,true,{r},{u},us-east-1,iam,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
            c = days_ago(30),
            r = days_ago(30),
            u = days_ago(1)
        ),
    ];
    let csv = format!("{}\n{}\n", header.trim_end(), rows.join("\n"));
    let content = base64::engine::general_purpose::STANDARD.encode(csv);
    fixture_xml("GetCredentialReport-response.aws-doc.xml")
        .replace("BASE-64 ENCODED FILE CONTENTS", &content)
}

#[tokio::test]
async fn wiremock_root_row_root_mfa_and_old_credentials() {
    postured::http::install_crypto_provider();
    let server = MockServer::start().await;
    let summary = fixture_xml("GetAccountSummary-response.erlcloud-fixture.xml").replace(
        "<key>AccountMFAEnabled</key>\n                          <value>0</value>",
        "<key>AccountMFAEnabled</key>\n                          <value>1</value>",
    );
    assert!(summary.contains("<value>1</value>"));
    // The erlcloud sample has no AccountAccessKeysPresent entry (the service always sends
    // it; the botocore example shows it): add it, as the AWS reference sample has it.
    let summary = summary.replace(
        "<SummaryMap>",
        "<SummaryMap><entry><key>AccountAccessKeysPresent</key><value>0</value></entry>",
    );
    mount(&server, "GetAccountSummary", 200, summary).await;
    mount(
        &server,
        "GenerateCredentialReport",
        200,
        fixture_xml("GenerateCredentialReport-response.erlcloud-fixture.xml")
            .replace("STARTED", "COMPLETE"),
    )
    .await;
    mount(&server, "GetCredentialReport", 200, credential_report()).await;
    mount(
        &server,
        "GetAccountPasswordPolicy",
        200,
        fixture_xml("GetAccountPasswordPolicy-response.erlcloud-fixture.xml"),
    )
    .await;
    // The documented sample holds a virtual device assigned to root.
    mount(
        &server,
        "ListVirtualMFADevices",
        200,
        fixture_xml("ListVirtualMFADevices-response.erlcloud-fixture.xml"),
    )
    .await;
    mount(&server, "ListUsers", 200, empty_list("ListUsers", "Users")).await;
    mount(
        &server,
        "ListPolicies",
        200,
        empty_list("ListPolicies", "Policies"),
    )
    .await;
    mount(
        &server,
        "AssumeRole",
        200,
        r#"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>sk</SecretAccessKey><SessionToken>tok</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>"#.to_owned(),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &server.uri(), "123456789012").await;
    let actions = poll_actions(&app).await;
    check(
        &actions,
        &[
            ("aws_iam.root.no_access_keys", Passed, 27.0, 27.0, ""),
            ("aws_iam.root.mfa", Passed, 27.0, 27.0, ""),
            (
                "aws_iam.root.hardware_mfa",
                FailedMediumRisk,
                0.0,
                9.0,
                "virtual device",
            ),
            // The erlcloud policy: length 12, reuse 12, all character classes, 90 days but
            // ExpirePasswords false.
            (
                "aws_iam.password.min_length",
                FailedMediumRisk,
                0.0,
                27.0,
                "below 14",
            ),
            (
                "aws_iam.password.reuse_prevention",
                FailedLowRisk,
                0.0,
                27.0,
                "fewer than 24",
            ),
            ("aws_iam.password.uppercase", Passed, 9.0, 9.0, ""),
            ("aws_iam.password.lowercase", Passed, 9.0, 9.0, ""),
            ("aws_iam.password.symbols", Passed, 9.0, 9.0, ""),
            ("aws_iam.password.numbers", Passed, 9.0, 9.0, ""),
            (
                "aws_iam.password.max_age",
                FailedLowRisk,
                0.0,
                9.0,
                "within 90 days",
            ),
            // idle has MFA; root's row is not a console user.
            ("aws_iam.users.console_mfa", Passed, 27.0, 27.0, ""),
            (
                "aws_iam.credentials.unused_disabled",
                FailedMediumRisk,
                0.0,
                27.0,
                "credentials unused for 45 days or more: old, idle",
            ),
            ("aws_iam.keys.one_active", Passed, 9.0, 9.0, ""),
            (
                "aws_iam.keys.rotated",
                FailedMediumRisk,
                0.0,
                27.0,
                "access keys older than 90 days: old",
            ),
            ("aws_iam.users.permissions_via_groups", Passed, 9.0, 9.0, ""),
            ("aws_iam.policies.no_full_admin", Passed, 27.0, 27.0, ""),
        ],
    );
    // Every IAM request was signed with the assumed role's keys.
    let requests = server.received_requests().await.unwrap();
    let iam: Vec<_> = requests
        .iter()
        .filter(|r| !r.url.query().unwrap_or("").contains("Action=AssumeRole"))
        .collect();
    assert!(!iam.is_empty());
    for r in iam {
        let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(auth.contains("Credential=ASIAEXAMPLE/"), "{auth}");
        assert_eq!(r.headers.get("x-amz-security-token").unwrap(), "tok");
    }
    let assume = requests
        .iter()
        .find(|r| r.url.query().unwrap_or("").contains("Action=AssumeRole"))
        .unwrap();
    let q = assume.url.query().unwrap();
    assert!(q.contains("ExternalId=postured-external-id"), "{q}");
    let auth = assume
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(auth.contains("Credential=AKIDPOSTUREDTEST/"), "{auth}");
}

#[tokio::test]
async fn throttling_is_retried_and_access_denied_is_a_gap() {
    postured::http::install_crypto_provider();
    let server = MockServer::start().await;
    let throttled = r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
    // GetAccountSummary: throttled twice, then answered.
    Mock::given(method("GET"))
        .and(query_param("Action", "GetAccountSummary"))
        .respond_with(ResponseTemplate::new(400).set_body_string(throttled))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    mount(
        &server,
        "GetAccountSummary",
        200,
        fixture_xml("GetAccountSummary-response.erlcloud-fixture.xml").replace(
            "<SummaryMap>",
            "<SummaryMap><entry><key>AccountAccessKeysPresent</key><value>1</value></entry>",
        ),
    )
    .await;
    let denied = r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform iam:GenerateCredentialReport</Message></Error></ErrorResponse>"#;
    for a in [
        "GenerateCredentialReport",
        "GetAccountPasswordPolicy",
        "ListVirtualMFADevices",
        "ListUsers",
        "ListPolicies",
        "AssumeRole",
    ] {
        let body = if a == "AssumeRole" {
            r#"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>sk</SecretAccessKey><SessionToken>tok</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>"#
        } else {
            denied
        };
        mount(
            &server,
            a,
            if a == "AssumeRole" { 200 } else { 403 },
            body.to_owned(),
        )
        .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &server.uri(), "123456789012").await;
    let report = app.poll("aws").await;
    assert_eq!(report.outcome, PollOutcome::Partial, "{:#?}", report.errors);
    let actions: Vec<ActionResult> = report
        .evaluation
        .actions
        .iter()
        .filter(|a| a.action_id.starts_with("aws_iam."))
        .cloned()
        .collect();
    let get = |id: &str| actions.iter().find(|a| a.action_id == id).unwrap();
    // The throttled call succeeded on its third attempt: the summary's actions are decided.
    assert_eq!(
        get("aws_iam.root.no_access_keys").test_status,
        FailedHighRisk
    );
    assert_eq!(get("aws_iam.root.mfa").test_status, FailedHighRisk);
    // Without root MFA, CIS 1.6 fails on the summary alone (the device list is not needed).
    assert_eq!(
        get("aws_iam.root.hardware_mfa").test_status,
        FailedMediumRisk
    );
    // Every other area is a gap: could not be detected, never failed.
    for id in [
        "aws_iam.password.min_length",
        "aws_iam.users.console_mfa",
        "aws_iam.keys.one_active",
        "aws_iam.users.permissions_via_groups",
        "aws_iam.policies.no_full_admin",
    ] {
        let a = get(id);
        assert_eq!(a.test_status, CouldNotBeDetected, "{id}: {a:?}");
        assert!(
            a.reason.as_deref().unwrap_or("").contains("AccessDenied"),
            "{id}: {:?}",
            a.reason
        );
    }
    let summary_calls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.url
                .query()
                .unwrap_or("")
                .contains("Action=GetAccountSummary")
        })
        .count();
    assert_eq!(summary_calls, 3);
}

/// The catalog loads, every rule compiles, every action names its CIS recommendation, and
/// every signal a rule reads is documented in docs/signals.md.
#[test]
fn catalog_rules_read_documented_signals_and_name_their_benchmark() {
    use postured_connectors::settings::ConnectorKind;
    let kind = postured_connectors::aws_iam::AWS_IAM;
    let catalog = postured::evaluation::Catalog::from_sources(&[(
        kind.name(),
        kind.catalog(),
        Some(kind.name()),
    )])
    .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(catalog.actions.len(), 16);
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/signals.md"))
            .unwrap();
    let section = docs
        .split("## AWS IAM (`aws_iam`)")
        .nth(1)
        .expect("aws_iam section");
    for a in &catalog.actions {
        assert!(
            a.title.contains("(CIS AWS ")
                && a.description.contains("CIS AWS Foundations Benchmark v"),
            "{}: names no CIS recommendation",
            a.id
        );
        let rule = postured::evaluation::rules::cel::CompiledRule::compile(&a.rule)
            .unwrap_or_else(|e| panic!("{}: {e}", a.id));
        for path in rule.paths() {
            assert!(path.starts_with("aws_iam."), "{}: {path}", a.id);
            assert!(
                section.contains(&format!("`{path}`")),
                "{}: {path} is not documented in docs/signals.md",
                a.id
            );
        }
    }
}

/// `postured record` against moto, then replay: the same signals, no network, and no STS
/// answer (temporary credentials) among the recordings.
#[tokio::test]
async fn moto_record_then_replay_gives_the_same_signals() {
    let Some(url) = moto_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let account = fresh_account();
    let p = Prep::new(dir.path(), &url, &account).await;
    p.user("rita", true, false, 2).await;
    p.call(
        "UpdateAccountPasswordPolicy",
        &[("MinimumPasswordLength", "16")],
    )
    .await;
    let rec_dir = dir.path().join("recordings");
    let table = connector_table(dir.path(), &url, &account)
        .replace("[[tenants.connectors]]", "")
        .replace("kind = \"aws_iam\"", "")
        .replace("schedule = \"0 0 * * * *\"", "");
    let env = |_: &str| None;
    let cx = SettingsContext {
        path: "c",
        tenant: "t",
        env: &env,
        base_dir: None,
        resolve_secrets: true,
    };
    let settings = AwsIamSettings::parse(table.parse().unwrap(), &cx).unwrap();
    let recorder = postured_connectors::record::Recorder::keeping_personal_data(&rec_dir);
    let live = settings
        .connector(reqwest::Client::new(), Mode::Record(recorder))
        .unwrap();
    let now = chrono::Utc::now();
    let cx = postured_connectors::PollContext { observed_at: now };
    use postured_connectors::Connector;
    let recorded = live.poll(&cx).await;
    assert!(recorded.gaps.is_empty(), "{:?}", recorded.gaps);
    let files: Vec<String> = std::fs::read_dir(&rec_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.contains("GetCredentialReport")),
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.contains("AssumeRole")), "{files:?}");

    let replay = settings
        .connector(reqwest::Client::new(), Mode::Replay(rec_dir.clone()))
        .unwrap();
    let replayed = replay.poll(&cx).await;
    assert!(replayed.gaps.is_empty(), "{:?}", replayed.gaps);
    assert_eq!(recorded.signals, replayed.signals);
    let get = |k: &str| {
        replayed
            .signals
            .iter()
            .find(|s| s.key == k)
            .map(|s| s.value.clone())
    };
    assert_eq!(
        get("aws_iam.credentials.multiple_active_keys"),
        Some(postured_connectors::SignalValue::Text("rita".into()))
    );
    assert_eq!(
        get("aws_iam.password_policy.minimum_length"),
        Some(postured_connectors::SignalValue::Number(16.0))
    );
}

/// Web identity (EKS, GitHub OIDC): `AssumeRoleWithWebIdentity` unsigned with the token read
/// from the file, then `AssumeRole` with the external id signed with its credentials, then IAM
/// signed with the assumed role's.
#[tokio::test]
async fn web_identity_then_assume_role() {
    postured::http::install_crypto_provider();
    let server = MockServer::start().await;
    let creds = |id: &str, token: &str| {
        format!(
            "<R><Result><Credentials><AccessKeyId>{id}</AccessKeyId><SecretAccessKey>s-{id}</SecretAccessKey><SessionToken>{token}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></Result></R>"
        )
    };
    mount(
        &server,
        "AssumeRoleWithWebIdentity",
        200,
        creds("ASIAWEB", "web-tok"),
    )
    .await;
    mount(&server, "AssumeRole", 200, creds("ASIAROLE", "role-tok")).await;
    mount(
        &server,
        "GetAccountSummary",
        200,
        fixture_xml("GetAccountSummary-response.erlcloud-fixture.xml"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJ.oidc.token\n").unwrap();
    let table = format!(
        r#"
endpoint = "{u}"
sts_endpoint = "{u}"
web_identity_token_file = "{t}"
web_identity_role_arn = "arn:aws:iam::111122223333:role/postured"
role_arn = "arn:aws:iam::444455556666:role/audit"
external_id = "ext-1"
"#,
        u = server.uri(),
        t = token_file.display()
    );
    let env = |_: &str| None;
    let cx = SettingsContext {
        path: "c",
        tenant: "t",
        env: &env,
        base_dir: None,
        resolve_secrets: true,
    };
    let settings = AwsIamSettings::parse(table.parse().unwrap(), &cx).unwrap();
    let conn = settings
        .connector(reqwest::Client::new(), Mode::Live)
        .unwrap();
    let c = conn.credentials().await.unwrap().unwrap();
    assert_eq!(c.access_key_id, "ASIAROLE");
    conn.iam()
        .call(Some(&c), "GetAccountSummary", &[])
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    let find = |action: &str| {
        requests
            .iter()
            .find(|r| {
                r.url
                    .query_pairs()
                    .any(|(k, v)| k == "Action" && v == action)
            })
            .unwrap_or_else(|| panic!("no {action}"))
    };
    let web = find("AssumeRoleWithWebIdentity");
    assert!(web.headers.get("authorization").is_none());
    assert!(
        web.url
            .query_pairs()
            .any(|(k, v)| k == "WebIdentityToken" && v == "eyJ.oidc.token")
    );
    let assume = find("AssumeRole");
    let auth = assume
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(auth.contains("Credential=ASIAWEB/"), "{auth}");
    assert_eq!(
        assume.headers.get("x-amz-security-token").unwrap(),
        "web-tok"
    );
    assert!(
        assume
            .url
            .query_pairs()
            .any(|(k, v)| k == "ExternalId" && v == "ext-1")
    );
    let iam = find("GetAccountSummary");
    let auth = iam.headers.get("authorization").unwrap().to_str().unwrap();
    assert!(auth.contains("Credential=ASIAROLE/"), "{auth}");
    assert!(auth.contains("/us-east-1/iam/aws4_request"), "{auth}");
    // Cached: a second call asks STS nothing more.
    conn.credentials().await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

/// CPU time of the calling thread, from `/proc/thread-self/schedstat` (Linux; `None`
/// elsewhere). A `#[tokio::test]` runs on one thread, so this is the poll's CPU time.
fn thread_cpu() -> Option<std::time::Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

/// The cost of one account poll against moto on loopback: 10 users (3 with console passwords,
/// 1 with MFA, 6 access keys), 2 attached customer-managed policies, a password policy.
/// The benchmark `scripts/bench-aws-iam.sh` runs it in a release build against a moto it
/// starts (figures in `docs/connectors/aws_iam.md`, "Cost").
#[tokio::test]
#[ignore = "benchmark: run explicitly"]
async fn poll_cost_against_moto() {
    let Some(url) = moto_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let account = fresh_account();
    let p = Prep::new(dir.path(), &url, &account).await;
    p.call(
        "UpdateAccountPasswordPolicy",
        &[("MinimumPasswordLength", "14")],
    )
    .await;
    let admin = p.policy("AdminAll", ADMIN).await;
    let read = p.policy("Read", READ).await;
    for i in 0..10 {
        let name = format!("user{i}");
        p.user(
            &name,
            i < 3,
            i == 0,
            usize::from(i % 2 == 0) + usize::from(i == 4),
        )
        .await;
        if i == 1 {
            p.call(
                "AttachUserPolicy",
                &[("UserName", &name), ("PolicyArn", &admin)],
            )
            .await;
        }
        if i == 2 {
            p.call(
                "AttachUserPolicy",
                &[("UserName", &name), ("PolicyArn", &read)],
            )
            .await;
        }
    }
    use postured_connectors::Connector;
    let cx = postured_connectors::PollContext {
        observed_at: chrono::Utc::now(),
    };
    // Warm-up: connection, STS credentials, the credential report generated once.
    let snap = p.conn.poll(&cx).await;
    assert!(snap.gaps.is_empty(), "{:?}", snap.gaps);
    let runs = 20u32;
    let (wall0, cpu0) = (std::time::Instant::now(), thread_cpu());
    for _ in 0..runs {
        let snap = p.conn.poll(&cx).await;
        assert!(snap.gaps.is_empty(), "{:?}", snap.gaps);
    }
    let wall = wall0.elapsed() / runs;
    let cpu = cpu0.zip(thread_cpu()).map(|(a, b)| (b - a) / runs);
    eprintln!(
        "aws_iam poll against moto (10 users, 2 policies; 30 IAM requests): wall {wall:?}, \
         CPU (postured's thread) {cpu:?} per poll, mean of {runs}"
    );
}

/// `Marker`/`IsTruncated` paging: the marker (with characters that need encoding) is passed
/// back verbatim and both pages are read.
#[tokio::test]
async fn list_calls_follow_the_marker() {
    postured::http::install_crypto_provider();
    let server = MockServer::start().await;
    let page = |names: &[&str], marker: Option<&str>| {
        let members: String = names
            .iter()
            .map(|n| {
                format!(
                    "<member><UserName>{n}</UserName><Arn>arn:aws:iam::1:user/{n}</Arn></member>"
                )
            })
            .collect();
        let tail = match marker {
            Some(m) => format!("<IsTruncated>true</IsTruncated><Marker>{m}</Marker>"),
            None => "<IsTruncated>false</IsTruncated>".to_owned(),
        };
        format!(
            "<ListUsersResponse><ListUsersResult><Users>{members}</Users>{tail}</ListUsersResult></ListUsersResponse>"
        )
    };
    Mock::given(method("GET"))
        .and(query_param("Action", "ListUsers"))
        .and(query_param("Marker", "m/1+x=="))
        .respond_with(ResponseTemplate::new(200).set_body_string(page(&["c"], None)))
        .with_priority(1)
        .mount(&server)
        .await;
    mount(
        &server,
        "ListUsers",
        200,
        page(&["a", "b"], Some("m/1+x==")),
    )
    .await;
    mount(
        &server,
        "ListAttachedUserPolicies",
        200,
        empty_list("ListAttachedUserPolicies", "AttachedPolicies"),
    )
    .await;
    mount(
        &server,
        "ListUserPolicies",
        200,
        empty_list("ListUserPolicies", "PolicyNames"),
    )
    .await;
    // User c was deleted after ListUsers: NoSuchEntity means no policies, not a failure.
    Mock::given(method("GET"))
        .and(query_param("Action", "ListUserPolicies"))
        .and(query_param("UserName", "c"))
        .respond_with(ResponseTemplate::new(404).set_body_string(
            "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name c cannot be found.</Message></Error></ErrorResponse>",
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    let table = format!(
        "endpoint = \"{u}\"\naccess_key_id = {{ env = \"ID\" }}\nsecret_access_key = {{ env = \"SECRET\" }}",
        u = server.uri()
    );
    let env = |k: &str| Some(format!("value-of-{k}"));
    let cx = SettingsContext {
        path: "c",
        tenant: "t",
        env: &env,
        base_dir: None,
        resolve_secrets: true,
    };
    let settings = AwsIamSettings::parse(table.parse().unwrap(), &cx).unwrap();
    let conn = settings
        .connector(reqwest::Client::new(), Mode::Live)
        .unwrap();
    let snap = conn.snapshot().await;
    let users: Vec<String> = snap
        .user_policies
        .unwrap()
        .into_iter()
        .map(|u| u.user)
        .collect();
    assert_eq!(users, ["a", "b", "c"]);
}

/// The demo account's recordings (`config/demo/aws_iam/`), made against a fresh moto with
/// `POSTURED_RECORD_AWS_DEMO=config/demo/aws_iam cargo test --test aws_iam record_demo --
/// --ignored` (moto running, `POSTURED_TEST_MOTO_URL` set). Users are synthetic.
#[tokio::test]
#[ignore = "generator of config/demo/aws_iam: run explicitly"]
async fn record_demo_account() {
    let Some(url) = moto_url() else { return };
    let Ok(out) = std::env::var("POSTURED_RECORD_AWS_DEMO") else {
        eprintln!("skipped: set POSTURED_RECORD_AWS_DEMO to the output directory");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let account = "111122223333";
    let p = Prep::new(dir.path(), &url, account).await;
    p.call(
        "UpdateAccountPasswordPolicy",
        &[
            ("MinimumPasswordLength", "14"),
            ("PasswordReusePrevention", "24"),
            ("RequireSymbols", "true"),
            ("RequireNumbers", "true"),
            ("RequireUppercaseCharacters", "false"),
            ("RequireLowercaseCharacters", "true"),
        ],
    )
    .await;
    p.call("CreateGroup", &[("GroupName", "engineers")]).await;
    let read = p.policy("EngineeringRead", READ).await;
    p.call(
        "AttachGroupPolicy",
        &[("GroupName", "engineers"), ("PolicyArn", &read)],
    )
    .await;
    for (name, console, mfa, keys) in [
        ("ana.lima", true, true, 1),
        ("ben.okafor", true, true, 0),
        ("chen.wei", true, false, 0),
        ("ci-deployer", false, false, 2),
    ] {
        p.user(name, console, mfa, keys).await;
        p.call(
            "AddUserToGroup",
            &[("GroupName", "engineers"), ("UserName", name)],
        )
        .await;
    }
    let admin = p.policy("BreakGlassAdmin", ADMIN).await;
    p.call(
        "AttachUserPolicy",
        &[("UserName", "ci-deployer"), ("PolicyArn", &admin)],
    )
    .await;
    let table = connector_table(dir.path(), &url, account)
        .replace("[[tenants.connectors]]", "")
        .replace("kind = \"aws_iam\"", "")
        .replace("schedule = \"0 0 * * * *\"", "");
    let env = |_: &str| None;
    let cx = SettingsContext {
        path: "c",
        tenant: "t",
        env: &env,
        base_dir: None,
        resolve_secrets: true,
    };
    let settings = AwsIamSettings::parse(table.parse().unwrap(), &cx).unwrap();
    let recorder = postured_connectors::record::Recorder::keeping_personal_data(&out);
    let conn = settings
        .connector(reqwest::Client::new(), Mode::Record(recorder))
        .unwrap();
    let snap = conn.snapshot().await;
    assert!(
        snap.summary.is_ok() && snap.admin_policies.is_ok(),
        "{snap:?}"
    );
}

/// The demo recordings replay (no network, no credentials) into the expected signals, at the
/// recording's date (the keys' and passwords' ages are measured at the poll's start).
#[tokio::test]
async fn demo_recordings_replay() {
    postured::http::install_crypto_provider();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/aws_iam");
    let table: toml::Table = format!("replay_dir = {:?}", dir.display().to_string())
        .parse()
        .unwrap();
    let env = |_: &str| None;
    let cx = SettingsContext {
        path: "c",
        tenant: "t",
        env: &env,
        base_dir: None,
        resolve_secrets: true,
    };
    let settings = AwsIamSettings::parse(table, &cx).unwrap();
    let conn = settings
        .connector(reqwest::Client::new(), Mode::Replay(dir))
        .unwrap();
    let snap = conn.snapshot().await;
    let report = snap.credential_report.clone().expect("credential report");
    let recorded_on = report
        .rows
        .iter()
        .filter_map(|r| r.keys[0].last_rotated)
        .max()
        .expect("a key");
    use postured_connectors::SignalValue::{Bool, Number, Text};
    let out = postured_connectors::aws_iam::signals::normalise(&snap, recorded_on, recorded_on);
    assert!(out.gaps.is_empty(), "{:?}", out.gaps);
    let get = |k: &str| {
        out.signals
            .iter()
            .find(|s| s.key == k)
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    assert_eq!(get("aws_iam.credentials.users_total"), Number(4.0));
    assert_eq!(get("aws_iam.credentials.console_users_total"), Number(3.0));
    assert_eq!(
        get("aws_iam.credentials.console_users_without_mfa"),
        Text("chen.wei".into())
    );
    assert_eq!(
        get("aws_iam.credentials.multiple_active_keys"),
        Text("ci-deployer".into())
    );
    assert_eq!(get("aws_iam.credentials.unused_total"), Number(0.0));
    assert_eq!(
        get("aws_iam.users.direct_policies"),
        Text("ci-deployer".into())
    );
    assert_eq!(
        get("aws_iam.policies.admin_attached"),
        Text("BreakGlassAdmin".into())
    );
    assert_eq!(get("aws_iam.password_policy.minimum_length"), Number(14.0));
    assert_eq!(
        get("aws_iam.password_policy.require_uppercase"),
        Bool(false)
    );
    assert_eq!(get("aws_iam.account.root_mfa_enabled"), Bool(false));
}

/// Hostile or failing answers: each area gets its classified gap, no signal, no panic.
#[tokio::test]
async fn hostile_answers_are_classified_gaps() {
    postured::http::install_crypto_provider();
    let server = MockServer::start().await;
    let other = MockServer::start().await;
    // Oversized body (cap 2 KiB below).
    mount(
        &server,
        "GetAccountSummary",
        200,
        format!("<R>{}</R>", "x".repeat(4096)),
    )
    .await;
    // Redirect to another origin: never followed.
    Mock::given(method("GET"))
        .and(query_param("Action", "ListUsers"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/steal", other.uri())),
        )
        .mount(&server)
        .await;
    // Bad keys.
    mount(
        &server,
        "GetAccountPasswordPolicy",
        403,
        "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>".to_owned(),
    )
    .await;
    // Not XML.
    mount(
        &server,
        "ListVirtualMFADevices",
        200,
        "{\"json\": true}".to_owned(),
    )
    .await;
    // Server error (retried, then given up).
    mount(&server, "GenerateCredentialReport", 500, "oops".to_owned()).await;
    mount(&server, "ListPolicies", 404, "".to_owned()).await;
    let table = format!(
        "endpoint = \"{u}\"\naccess_key_id = {{ env = \"ID\" }}\nsecret_access_key = {{ env = \"SECRET\" }}\nmax_response_bytes = 2048\nmax_retries = 1\nmax_retry_wait = \"10ms\"",
        u = server.uri()
    );
    let env = |k: &str| Some(format!("value-of-{k}"));
    let cx = SettingsContext {
        path: "c",
        tenant: "t",
        env: &env,
        base_dir: None,
        resolve_secrets: true,
    };
    let settings = AwsIamSettings::parse(table.parse().unwrap(), &cx).unwrap();
    let conn = settings
        .connector(postured::http::http_client().unwrap(), Mode::Live)
        .unwrap();
    use postured_connectors::Connector;
    let snap = conn
        .poll(&postured_connectors::PollContext {
            observed_at: chrono::Utc::now(),
        })
        .await;
    assert!(snap.signals.is_empty(), "{:?}", snap.signals);
    let kind = |prefix: &str| {
        snap.gaps
            .iter()
            .find(|g| g.prefix == prefix)
            .map(|g| g.kind.as_str())
            .unwrap_or_else(|| panic!("no gap {prefix}: {:?}", snap.gaps))
    };
    assert_eq!(kind("aws_iam.account."), "too_large");
    assert_eq!(kind("aws_iam.users."), "redirect");
    assert_eq!(kind("aws_iam.password_policy."), "unauthorized");
    assert_eq!(kind("aws_iam.mfa_devices."), "malformed");
    assert_eq!(kind("aws_iam.credentials."), "server_error");
    assert_eq!(kind("aws_iam.policies."), "not_found");
    assert!(other.received_requests().await.unwrap().is_empty());
    // The secret never appears in a reason.
    for g in &snap.gaps {
        assert!(!g.reason.contains("value-of-SECRET"), "{}", g.reason);
    }
}
