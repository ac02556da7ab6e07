//! AWS IAM connector (`kind = "aws_iam"`, one AWS account per tenant): SigV4-signed IAM Query
//! API calls ([`client`]), credentials from the usual chain ([`credentials`]), typed responses
//! ([`model`]), the `aws_iam.*` signals ([`signals`]) and the connector table's keys
//! ([`settings`]; catalog `config/catalog/aws_iam.toml`, CIS AWS Foundations Benchmark
//! semantics). It does not schedule, store or export metrics, and never logs a key, a token or
//! a signature.
//!
//! | field of [`IamSnapshot`] | calls | IAM permission |
//! |---|---|---|
//! | `summary` | `GetAccountSummary` | `iam:GetAccountSummary` |
//! | `credential_report` | `GenerateCredentialReport` (until `COMPLETE`, bounded) + `GetCredentialReport` | `iam:GenerateCredentialReport`, `iam:GetCredentialReport` |
//! | `password_policy` | `GetAccountPasswordPolicy` (`NoSuchEntity` = no policy) | `iam:GetAccountPasswordPolicy` |
//! | `virtual_mfa_devices` | `ListVirtualMFADevices` | `iam:ListVirtualMFADevices` |
//! | `user_policies` | `ListUsers`, then per user `ListAttachedUserPolicies` + `ListUserPolicies` | `iam:ListUsers`, `iam:ListAttachedUserPolicies`, `iam:ListUserPolicies` |
//! | `admin_policies` | `ListPolicies` (`Scope=Local`, `OnlyAttached=true`) + `GetPolicyVersion` of each default version | `iam:ListPolicies`, `iam:GetPolicyVersion` |
//!
//! Every call is a `GET` (the Query API accepts GET and POST), so each request has its own
//! URL: the record/replay files of [`crate::record`] key on it.

pub mod client;
pub mod credentials;
pub mod model;
pub mod settings;
pub mod signals;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;
use url::Url;

use crate::http::{HttpClient, HttpSettings};
use crate::record::Mode;
use crate::{CollectionError, Connector, ErrorKind, PollContext, Snapshot};
use client::{AwsCredentials, IAM_VERSION, QueryApi, STS_VERSION, parse};
use credentials::CredentialSource;
use model::{AccountSummary, CredentialReport, ManagedPolicy, PasswordPolicy, VirtualMfaDevice};
pub use settings::{AWS_IAM, AwsIamSettings};

/// Connector kind and signal namespace.
pub const KIND: &str = "aws_iam";
/// Default IAM endpoint (IAM is global; its signing region is `us-east-1`).
pub const DEFAULT_ENDPOINT: &str = "https://iam.amazonaws.com";
/// Default STS endpoint (global).
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.amazonaws.com";
/// Default signing region.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Limits of one account poll.
#[derive(Debug, Clone)]
pub struct IamLimits {
    /// Longest wait for the credential report to be generated (default 60 s).
    pub report_wait: Duration,
    /// Pause between two `GenerateCredentialReport` calls while it is generated (default 2 s).
    pub report_poll_interval: Duration,
    /// Most pages read of one list call (default 200; 100 items a page by AWS default).
    pub max_pages: usize,
    /// Most users whose policies are listed (two calls each; default 1,000): past it the
    /// `aws_iam.users.` namespace is a gap rather than a partial answer.
    pub max_users: usize,
    /// Most customer-managed policies whose default version is read (default 1,000).
    pub max_policies: usize,
    /// Users whose policies are listed at the same time (default 4; two calls each, one after
    /// the other).
    pub user_concurrency: usize,
}

impl Default for IamLimits {
    fn default() -> Self {
        Self {
            report_wait: Duration::from_secs(60),
            report_poll_interval: Duration::from_secs(2),
            max_pages: 200,
            max_users: 1000,
            max_policies: 1000,
            user_concurrency: 4,
        }
    }
}

/// One poll of one AWS account: each area's parsed result or its own error.
#[derive(Debug, Clone)]
pub struct IamSnapshot {
    /// `GetAccountSummary`.
    pub summary: Result<AccountSummary, CollectionError>,
    /// The credential report.
    pub credential_report: Result<CredentialReport, CollectionError>,
    /// `GetAccountPasswordPolicy`; `Ok(None)` when the account has none (`NoSuchEntity`).
    pub password_policy: Result<Option<PasswordPolicy>, CollectionError>,
    /// `ListVirtualMFADevices`, all pages.
    pub virtual_mfa_devices: Result<Vec<VirtualMfaDevice>, CollectionError>,
    /// Per user (`ListUsers` order): attached managed policy names and inline policy names.
    pub user_policies: Result<Vec<UserPolicies>, CollectionError>,
    /// Attached customer-managed policies whose default version grants `"*"` on `"*"`.
    pub admin_policies: Result<Vec<ManagedPolicy>, CollectionError>,
}

/// The policies attached directly to one IAM user (CIS 1.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPolicies {
    /// User name.
    pub user: String,
    /// `ListAttachedUserPolicies` names.
    pub attached: Vec<String>,
    /// `ListUserPolicies` (inline) names.
    pub inline: Vec<String>,
}

impl IamSnapshot {
    /// Every area failed with `e` (no credentials).
    pub fn all_failed(e: CollectionError) -> Self {
        Self {
            summary: Err(e.clone()),
            credential_report: Err(e.clone()),
            password_policy: Err(e.clone()),
            virtual_mfa_devices: Err(e.clone()),
            user_policies: Err(e.clone()),
            admin_policies: Err(e),
        }
    }
}

/// Configuration of one account's connector.
#[derive(Debug, Clone)]
pub struct IamConfig {
    /// IAM endpoint (default [`DEFAULT_ENDPOINT`]).
    pub endpoint: String,
    /// STS endpoint (default [`DEFAULT_STS_ENDPOINT`]).
    pub sts_endpoint: String,
    /// Signing region (default [`DEFAULT_REGION`]).
    pub region: String,
    /// HTTP limits (timeouts, retries, byte cap).
    pub http: HttpSettings,
    /// Poll limits.
    pub limits: IamLimits,
    /// Live, record or replay.
    pub mode: Mode,
    /// The instant credential ages are measured at (CIS 1.12, 1.14); `None`: each poll's
    /// start. Only for replays, so a recorded account keeps the verdicts of its recording day.
    pub ages_as_of: Option<DateTime<Utc>>,
}

/// The AWS IAM connector for one account.
#[derive(Debug)]
pub struct IamConnector {
    iam: QueryApi,
    /// `None` in replay mode (nothing is signed).
    credentials: Option<CredentialSource>,
    limits: IamLimits,
    ages_as_of: Option<DateTime<Utc>>,
}

impl IamConnector {
    /// Build the connector. `credentials` builds the credential source from the STS client
    /// (ignored in replay mode). Errors: an endpoint that is not a URL.
    pub fn new(
        cfg: IamConfig,
        client: reqwest::Client,
        credentials: impl FnOnce(QueryApi) -> CredentialSource,
    ) -> Result<Self, String> {
        let parse_url = |s: &str| Url::parse(s).map_err(|e| format!("endpoint `{s}`: {e}"));
        let iam_base = parse_url(&cfg.endpoint)?;
        let sts_base = parse_url(&cfg.sts_endpoint)?;
        let replay = matches!(cfg.mode, Mode::Replay(_));
        // STS answers carry temporary credentials: never recorded (a recording poll talks to
        // STS live), never replayed (a replaying connector signs nothing).
        let sts_http = HttpClient::new(client.clone(), Mode::Live, cfg.http.clone());
        let http = HttpClient::new(client, cfg.mode, cfg.http);
        let iam = QueryApi::new(http, iam_base, cfg.region.clone(), "iam", IAM_VERSION);
        let sts = QueryApi::new(sts_http, sts_base, cfg.region, "sts", STS_VERSION);
        Ok(Self {
            iam,
            credentials: (!replay).then(|| credentials(sts)),
            limits: cfg.limits,
            ages_as_of: cfg.ages_as_of,
        })
    }

    /// The IAM API client (tests prepare an emulator's account through it).
    pub fn iam(&self) -> &QueryApi {
        &self.iam
    }

    /// The credentials in force (`None` in replay mode).
    pub async fn credentials(&self) -> Result<Option<AwsCredentials>, CollectionError> {
        match &self.credentials {
            None => Ok(None),
            Some(c) => c.get().await.map(Some),
        }
    }

    /// Read every area once (see the module table). Never fails as a whole.
    pub async fn snapshot(&self) -> IamSnapshot {
        async {
            let creds = match self.credentials().await {
                Ok(c) => c,
                Err(e) => return IamSnapshot::all_failed(e),
            };
            let c = creds.as_ref();
            let (
                summary,
                credential_report,
                password_policy,
                virtual_mfa_devices,
                user_policies,
                admin_policies,
            ) = tokio::join!(
                self.summary(c),
                self.credential_report(c),
                self.password_policy(c),
                self.virtual_mfa_devices(c),
                self.user_policies(c),
                self.admin_policies(c),
            );
            IamSnapshot {
                summary,
                credential_report,
                password_policy,
                virtual_mfa_devices,
                user_policies,
                admin_policies,
            }
        }
        .instrument(tracing::info_span!("aws_iam_poll"))
        .await
    }

    async fn call_parsed<T>(
        &self,
        c: Option<&AwsCredentials>,
        action: &str,
        params: &[(&str, &str)],
        f: impl FnOnce(&roxmltree::Document<'_>) -> Result<T, String>,
    ) -> Result<T, CollectionError> {
        let label = self.iam.label(action);
        let xml = self.iam.call(c, action, params).await?;
        let doc = parse(&label, &xml)?;
        f(&doc).map_err(|m| client::malformed(&label, m))
    }

    async fn summary(&self, c: Option<&AwsCredentials>) -> Result<AccountSummary, CollectionError> {
        self.call_parsed(c, "GetAccountSummary", &[], model::account_summary)
            .await
    }

    async fn password_policy(
        &self,
        c: Option<&AwsCredentials>,
    ) -> Result<Option<PasswordPolicy>, CollectionError> {
        match self
            .call_parsed(c, "GetAccountPasswordPolicy", &[], model::password_policy)
            .await
        {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.code.as_deref() == Some("NoSuchEntity") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GenerateCredentialReport` until its state is `COMPLETE` (pausing
    /// `report_poll_interval`, at most `report_wait`), then `GetCredentialReport`.
    async fn credential_report(
        &self,
        c: Option<&AwsCredentials>,
    ) -> Result<CredentialReport, CollectionError> {
        let started = tokio::time::Instant::now();
        loop {
            let state = self
                .call_parsed(c, "GenerateCredentialReport", &[], model::report_state)
                .await?;
            if state == "COMPLETE" {
                break;
            }
            if started.elapsed() + self.limits.report_poll_interval > self.limits.report_wait {
                return Err(CollectionError::new(
                    ErrorKind::Timeout,
                    self.iam.label("GenerateCredentialReport"),
                    format!(
                        "the credential report was still {state} after {:?} (report_wait)",
                        self.limits.report_wait
                    ),
                ));
            }
            tokio::time::sleep(self.limits.report_poll_interval).await;
        }
        self.call_parsed(c, "GetCredentialReport", &[], model::credential_report)
            .await
    }

    async fn virtual_mfa_devices(
        &self,
        c: Option<&AwsCredentials>,
    ) -> Result<Vec<VirtualMfaDevice>, CollectionError> {
        let mut out = Vec::new();
        self.iam
            .call_paged(
                c,
                "ListVirtualMFADevices",
                &[("AssignmentStatus", "Any")],
                self.limits.max_pages,
                |r| model::virtual_mfa_devices(r, &mut out),
            )
            .await?;
        Ok(out)
    }

    async fn names(
        &self,
        c: Option<&AwsCredentials>,
        action: &str,
        params: &[(&str, &str)],
        list: &str,
        field: Option<&str>,
    ) -> Result<Vec<String>, CollectionError> {
        list_names(
            &self.iam,
            c,
            action,
            params,
            list,
            field,
            self.limits.max_pages,
        )
        .await
    }

    /// `ListUsers`, then each user's attached and inline policies, at most
    /// `user_concurrency` users at a time; the first error fails the area.
    async fn user_policies(
        &self,
        c: Option<&AwsCredentials>,
    ) -> Result<Vec<UserPolicies>, CollectionError> {
        let users = self
            .names(c, "ListUsers", &[], "Users", Some("UserName"))
            .await?;
        if users.len() > self.limits.max_users {
            return Err(CollectionError::new(
                ErrorKind::Other,
                self.iam.label("ListUsers"),
                format!(
                    "{} users, more than max_users = {}",
                    users.len(),
                    self.limits.max_users
                ),
            ));
        }
        let permits = Arc::new(Semaphore::new(self.limits.user_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (i, user) in users.into_iter().enumerate() {
            let (api, creds, permits) = (self.iam.clone(), c.cloned(), permits.clone());
            let max_pages = self.limits.max_pages;
            tasks.spawn(
                async move {
                    let _permit = permits.acquire_owned().await;
                    let p = [("UserName", user.as_str())];
                    let c = creds.as_ref();
                    // A user deleted since `ListUsers` (`NoSuchEntity`) has no policies.
                    let gone = |r: Result<Vec<String>, CollectionError>| match r {
                        Err(e) if e.code.as_deref() == Some("NoSuchEntity") => Ok(Vec::new()),
                        other => other,
                    };
                    let attached = gone(
                        list_names(
                            &api,
                            c,
                            "ListAttachedUserPolicies",
                            &p,
                            "AttachedPolicies",
                            Some("PolicyName"),
                            max_pages,
                        )
                        .await,
                    )?;
                    let inline = gone(
                        list_names(
                            &api,
                            c,
                            "ListUserPolicies",
                            &p,
                            "PolicyNames",
                            None,
                            max_pages,
                        )
                        .await,
                    )?;
                    Ok::<_, CollectionError>((
                        i,
                        UserPolicies {
                            user,
                            attached,
                            inline,
                        },
                    ))
                }
                .instrument(tracing::Span::current()),
            );
        }
        let mut out = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            let done = joined.map_err(|e| {
                CollectionError::new(
                    ErrorKind::Other,
                    self.iam.label("ListUserPolicies"),
                    format!("a user's policy listing did not finish: {e}"),
                )
            })?;
            out.push(done?);
        }
        out.sort_by_key(|(i, _)| *i);
        Ok(out.into_iter().map(|(_, u)| u).collect())
    }

    async fn admin_policies(
        &self,
        c: Option<&AwsCredentials>,
    ) -> Result<Vec<ManagedPolicy>, CollectionError> {
        let mut listed = Vec::new();
        self.iam
            .call_paged(
                c,
                "ListPolicies",
                &[("Scope", "Local"), ("OnlyAttached", "true")],
                self.limits.max_pages,
                |r| model::policies(r, &mut listed),
            )
            .await?;
        if listed.len() > self.limits.max_policies {
            return Err(CollectionError::new(
                ErrorKind::Other,
                self.iam.label("ListPolicies"),
                format!(
                    "{} attached customer-managed policies, more than max_policies = {}",
                    listed.len(),
                    self.limits.max_policies
                ),
            ));
        }
        let mut admin = Vec::new();
        for p in listed {
            let document = self
                .call_parsed(
                    c,
                    "GetPolicyVersion",
                    &[("PolicyArn", &p.arn), ("VersionId", &p.default_version)],
                    model::policy_document,
                )
                .await?;
            if model::grants_full_admin(&document) {
                admin.push(p);
            }
        }
        Ok(admin)
    }
}

/// All names of a paged list call (see [`QueryApi::call_paged`]).
async fn list_names(
    api: &QueryApi,
    c: Option<&AwsCredentials>,
    action: &str,
    params: &[(&str, &str)],
    list: &str,
    field: Option<&str>,
    max_pages: usize,
) -> Result<Vec<String>, CollectionError> {
    let mut out = Vec::new();
    api.call_paged(c, action, params, max_pages, |r| {
        model::member_fields(r, list, field, &mut out)
    })
    .await?;
    Ok(out)
}

#[async_trait]
impl Connector for IamConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn poll(&self, cx: &PollContext) -> Snapshot {
        let ages_at = self.ages_as_of.unwrap_or(cx.observed_at);
        signals::normalise(&self.snapshot().await, cx.observed_at, ages_at)
    }
}
