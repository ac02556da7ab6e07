//! `kind = "aws_iam"`: the connector table's keys, their validation, and the kind's registry
//! entry ([`AWS_IAM`]).
//!
//! Keys (besides `kind`, `schedule` and `poll_timeout`), with their defaults:
//! `endpoint` (`https://iam.amazonaws.com`), `sts_endpoint` (`https://sts.amazonaws.com`),
//! `region` (`us-east-1`); credentials (see [`super::credentials`] for the order):
//! `access_key_id`, `secret_access_key`, `session_token` (secret references), `profile`,
//! `shared_credentials_file`, `web_identity_token_file`, `web_identity_role_arn`, `role_arn`,
//! `external_id`, `role_session_name` (`postured`); limits: `request_timeout` (30 s),
//! `max_retries` (4), `max_retry_wait` (60 s), `max_response_bytes` (8 MiB), `report_wait`
//! (60 s), `report_poll_interval` (2 s), `max_users` (1000), `max_policies` (1000),
//! `user_concurrency` (4); and
//! `replay_dir` with, optionally, `ages_as_of` (an RFC 3339 instant at which credential ages
//! are measured instead of each poll's start, so a replayed recording keeps the verdicts of
//! the day it was made; only with `replay_dir`).
//!
//! Must not: do network IO or reveal a secret (keys are redacted in `Debug`).

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::client::AwsCredentials;
use super::credentials::{
    AssumeRole, BaseCredentials, CredentialSource, env_credentials, profile_credentials,
};
use super::{
    DEFAULT_ENDPOINT, DEFAULT_REGION, DEFAULT_STS_ENDPOINT, IamConfig, IamConnector, IamLimits,
    KIND,
};
use crate::Connector;
use crate::http::HttpSettings;
use crate::record::Mode;
use crate::settings::{
    BuildContext, ConfigProblem, ConnectorSettings, Kind, SecretRef, SettingsContext, decode,
};

/// The catalog of AWS IAM improvement actions (`config/catalog/aws_iam.toml`).
pub const CATALOG: &str = include_str!("../../../config/catalog/aws_iam.toml");

/// The registry entry of the AWS IAM connector kind.
pub const AWS_IAM: Kind<AwsIamSettings> = Kind {
    name: KIND,
    catalog: CATALOG,
    parse: AwsIamSettings::parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "d_endpoint")]
    endpoint: String,
    #[serde(default = "d_sts")]
    sts_endpoint: String,
    #[serde(default = "d_region")]
    region: String,
    #[serde(default)]
    access_key_id: Option<SecretRef>,
    #[serde(default)]
    secret_access_key: Option<SecretRef>,
    #[serde(default)]
    session_token: Option<SecretRef>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    shared_credentials_file: Option<PathBuf>,
    #[serde(default)]
    web_identity_token_file: Option<PathBuf>,
    #[serde(default)]
    web_identity_role_arn: Option<String>,
    #[serde(default)]
    role_arn: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default = "d_session")]
    role_session_name: String,
    #[serde(default = "d_timeout", with = "humantime_serde")]
    request_timeout: Duration,
    #[serde(default = "d_retries")]
    max_retries: u32,
    #[serde(default = "d_retry_wait", with = "humantime_serde")]
    max_retry_wait: Duration,
    #[serde(default = "d_bytes")]
    max_response_bytes: u64,
    #[serde(default = "d_report_wait", with = "humantime_serde")]
    report_wait: Duration,
    #[serde(default = "d_report_interval", with = "humantime_serde")]
    report_poll_interval: Duration,
    #[serde(default = "d_max")]
    max_users: usize,
    #[serde(default = "d_max")]
    max_policies: usize,
    #[serde(default = "d_concurrency")]
    user_concurrency: usize,
    #[serde(default)]
    replay_dir: Option<PathBuf>,
    #[serde(default)]
    ages_as_of: Option<chrono::DateTime<chrono::Utc>>,
}

fn d_endpoint() -> String {
    DEFAULT_ENDPOINT.into()
}
fn d_sts() -> String {
    DEFAULT_STS_ENDPOINT.into()
}
fn d_region() -> String {
    DEFAULT_REGION.into()
}
fn d_session() -> String {
    "postured".into()
}
fn d_timeout() -> Duration {
    Duration::from_secs(30)
}
fn d_retries() -> u32 {
    4
}
fn d_retry_wait() -> Duration {
    Duration::from_secs(60)
}
fn d_bytes() -> u64 {
    crate::http::DEFAULT_MAX_RESPONSE_BYTES
}
fn d_report_wait() -> Duration {
    IamLimits::default().report_wait
}
fn d_report_interval() -> Duration {
    IamLimits::default().report_poll_interval
}
fn d_max() -> usize {
    1000
}
fn d_concurrency() -> usize {
    IamLimits::default().user_concurrency
}

/// `kind = "aws_iam"` settings, credentials resolved.
#[derive(Debug, Clone)]
pub struct AwsIamSettings {
    /// IAM endpoint.
    pub endpoint: String,
    /// STS endpoint (assume-role, web identity).
    pub sts_endpoint: String,
    /// Signing region.
    pub region: String,
    /// The base credentials; `None` when secrets were not resolved or when replaying.
    pub base: Option<BaseCredentials>,
    /// An `AssumeRole` on top of the base.
    pub assume: Option<AssumeRole>,
    /// `RoleSessionName` of STS calls.
    pub role_session_name: String,
    /// HTTP limits.
    pub http: HttpSettings,
    /// Poll limits.
    pub limits: IamLimits,
    /// Replay directory (resolved against the configuration file's directory).
    pub replay_dir: Option<PathBuf>,
    /// With `replay_dir`: the instant credential ages are measured at (see [`IamConfig`]).
    pub ages_as_of: Option<chrono::DateTime<chrono::Utc>>,
}

impl AwsIamSettings {
    /// Decode and validate a connector table (common keys removed); resolve the base
    /// credentials when [`SettingsContext::resolve_secrets`] (see [`super::credentials`]).
    /// Every problem is returned at once.
    pub fn parse(
        table: toml::Table,
        cx: &SettingsContext<'_>,
    ) -> Result<AwsIamSettings, Vec<ConfigProblem>> {
        let raw: Raw = decode(cx.path, toml::Value::Table(table)).map_err(|p| vec![p])?;
        let mut problems = Vec::new();
        for (key, url) in [
            ("endpoint", &raw.endpoint),
            ("sts_endpoint", &raw.sts_endpoint),
        ] {
            if let Err(m) = crate::settings::check_credential_url(url, false) {
                problems.push(ConfigProblem::new(cx.key(key), m));
            }
        }
        for (key, d) in [
            ("request_timeout", raw.request_timeout),
            ("report_wait", raw.report_wait),
            ("report_poll_interval", raw.report_poll_interval),
        ] {
            if d.is_zero() {
                problems.push(ConfigProblem::new(cx.key(key), "must be positive"));
            }
        }
        if raw.max_response_bytes == 0 {
            problems.push(ConfigProblem::new(
                cx.key("max_response_bytes"),
                "must be positive",
            ));
        }
        if raw.user_concurrency == 0 || raw.user_concurrency > 32 {
            problems.push(ConfigProblem::new(
                cx.key("user_concurrency"),
                "must be between 1 and 32",
            ));
        }
        if raw.region.trim().is_empty() {
            problems.push(ConfigProblem::new(cx.key("region"), "must not be empty"));
        }
        if raw.access_key_id.is_some() != raw.secret_access_key.is_some() {
            problems.push(ConfigProblem::new(
                cx.key("secret_access_key"),
                "access_key_id and secret_access_key go together",
            ));
        }
        let replay_dir = raw.replay_dir.clone().map(|d| cx.resolve_path(d));
        if raw.ages_as_of.is_some() && replay_dir.is_none() {
            problems.push(ConfigProblem::new(
                cx.key("ages_as_of"),
                "only with replay_dir: a live poll measures credential ages when it starts",
            ));
        }
        let mut base = None;
        if replay_dir.is_none() && cx.resolve_secrets {
            match resolve_base(&raw, cx) {
                Ok(b) => base = Some(b),
                Err(p) => problems.push(p),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let assume = raw.role_arn.clone().map(|role_arn| AssumeRole {
            role_arn,
            external_id: raw.external_id.clone(),
            session_name: raw.role_session_name.clone(),
        });
        Ok(AwsIamSettings {
            endpoint: raw.endpoint,
            sts_endpoint: raw.sts_endpoint,
            region: raw.region,
            base,
            assume,
            role_session_name: raw.role_session_name,
            http: HttpSettings {
                request_timeout: raw.request_timeout,
                max_retries: raw.max_retries,
                max_retry_wait: raw.max_retry_wait,
                max_response_bytes: raw.max_response_bytes,
                ..HttpSettings::default()
            },
            limits: IamLimits {
                report_wait: raw.report_wait,
                report_poll_interval: raw.report_poll_interval,
                max_users: raw.max_users,
                max_policies: raw.max_policies,
                user_concurrency: raw.user_concurrency,
                ..IamLimits::default()
            },
            replay_dir,
            ages_as_of: raw.ages_as_of,
        })
    }

    /// The connector configuration in `mode`.
    pub fn config(&self, mode: Mode) -> IamConfig {
        IamConfig {
            endpoint: self.endpoint.clone(),
            sts_endpoint: self.sts_endpoint.clone(),
            region: self.region.clone(),
            http: self.http.clone(),
            limits: self.limits.clone(),
            mode,
            ages_as_of: self.ages_as_of,
        }
    }

    /// Build the connector over `client` in `mode` (live and record need resolved
    /// credentials).
    pub fn connector(&self, client: reqwest::Client, mode: Mode) -> Result<IamConnector, String> {
        let replay = matches!(mode, Mode::Replay(_));
        let base = match (&self.base, replay) {
            (Some(b), _) => b.clone(),
            (None, true) => BaseCredentials::Static(AwsCredentials {
                access_key_id: String::new(),
                secret_access_key: SecretString::from(String::new()),
                session_token: None,
                expiration: None,
            }),
            (None, false) => return Err("the aws_iam credentials were not resolved".into()),
        };
        let assume = self.assume.clone();
        let session = self.role_session_name.clone();
        IamConnector::new(self.config(mode), client, move |sts| {
            CredentialSource::new(base, assume, sts, session)
        })
    }
}

/// The base credentials, first match wins (see [`super::credentials`]).
fn resolve_base(raw: &Raw, cx: &SettingsContext<'_>) -> Result<BaseCredentials, ConfigProblem> {
    if let (Some(id), Some(secret)) = (&raw.access_key_id, &raw.secret_access_key) {
        let get = |key: &str, r: &SecretRef| {
            r.resolve(cx.env)
                .map_err(|m| ConfigProblem::new(cx.key(key), m))
                .and_then(|s| {
                    if s.expose_secret().is_empty() {
                        Err(ConfigProblem::new(cx.key(key), "the secret is empty"))
                    } else {
                        Ok(s)
                    }
                })
        };
        let id = get("access_key_id", id)?;
        let secret = get("secret_access_key", secret)?;
        let token = raw
            .session_token
            .as_ref()
            .map(|t| get("session_token", t))
            .transpose()?;
        return Ok(BaseCredentials::Static(AwsCredentials {
            access_key_id: id.expose_secret().to_owned(),
            secret_access_key: secret,
            session_token: token,
            expiration: None,
        }));
    }
    if let Some(c) = env_credentials(cx.env) {
        return Ok(BaseCredentials::Static(c));
    }
    let token_file = raw
        .web_identity_token_file
        .clone()
        .map(|f| cx.resolve_path(f))
        .or_else(|| (cx.env)("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from));
    if let Some(token_file) = token_file {
        let role_arn = raw
            .web_identity_role_arn
            .clone()
            .or_else(|| (cx.env)("AWS_ROLE_ARN"))
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                ConfigProblem::new(
                    cx.key("web_identity_role_arn"),
                    "a web identity token file needs the role to assume \
                     (web_identity_role_arn or AWS_ROLE_ARN)",
                )
            })?;
        return Ok(BaseCredentials::WebIdentity {
            role_arn,
            token_file,
        });
    }
    let file = raw
        .shared_credentials_file
        .clone()
        .map(|f| cx.resolve_path(f))
        .or_else(|| (cx.env)("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from))
        .or_else(|| (cx.env)("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")));
    let profile = raw
        .profile
        .clone()
        .or_else(|| (cx.env)("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let Some(file) = file else {
        return Err(ConfigProblem::new(
            cx.key("access_key_id"),
            "no AWS credentials: configure access_key_id and secret_access_key, set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a web identity token file, or a \
             shared credentials file",
        ));
    };
    profile_credentials(&file, &profile)
        .map(BaseCredentials::Static)
        .map_err(|m| {
            ConfigProblem::new(
                cx.key("profile"),
                format!(
                    "no AWS credentials (no access_key_id, no AWS_ACCESS_KEY_ID, no web identity \
                     token file), and the shared credentials file does not help: {m}"
                ),
            )
        })
}

impl ConnectorSettings for AwsIamSettings {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, String> {
        let mode = match (&self.replay_dir, cx.record) {
            (_, Some(recorder)) => Mode::Record(recorder.clone()),
            (Some(dir), None) => Mode::Replay(dir.clone()),
            (None, None) => Mode::Live,
        };
        let conn = self
            .connector(cx.http.clone(), mode)
            .map_err(|e| format!("building the aws_iam connector: {e}"))?;
        Ok(Arc::new(conn))
    }

    fn replays(&self) -> bool {
        self.replay_dir.is_some()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AwsIamSettings, Vec<ConfigProblem>> {
        let cx = SettingsContext {
            path: "tenants[0].connectors[0]",
            tenant: "t",
            env,
            base_dir: None,
            resolve_secrets: true,
        };
        AwsIamSettings::parse(text.parse().unwrap(), &cx)
    }

    #[test]
    fn credential_chain_order() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKIDENV".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_owned()),
            "MY_ID" => Some("AKIDCONF".to_owned()),
            "MY_SECRET" => Some("confsecret".to_owned()),
            _ => None,
        };
        let s = parse_with(
            "access_key_id = { env = \"MY_ID\" }\nsecret_access_key = { env = \"MY_SECRET\" }",
            &env,
        )
        .unwrap();
        match s.base {
            Some(BaseCredentials::Static(c)) => assert_eq!(c.access_key_id, "AKIDCONF"),
            other => panic!("{other:?}"),
        }
        let s = parse_with(
            "role_arn = \"arn:aws:iam::1:role/audit\"\nexternal_id = \"x\"",
            &env,
        )
        .unwrap();
        match &s.base {
            Some(BaseCredentials::Static(c)) => assert_eq!(c.access_key_id, "AKIDENV"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.assume.unwrap().external_id.as_deref(), Some("x"));
        assert!(!format!("{:?}", s.base).contains("envsecret"));

        let none = |_: &str| None;
        let s = parse_with(
            "web_identity_token_file = \"/var/run/token\"\nweb_identity_role_arn = \"arn:aws:iam::1:role/r\"",
            &none,
        )
        .unwrap();
        assert!(matches!(s.base, Some(BaseCredentials::WebIdentity { .. })));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[audit]\naws_access_key_id = AKIDPROF\naws_secret_access_key = p\n",
        )
        .unwrap();
        let s = parse_with(
            &format!(
                "shared_credentials_file = {:?}\nprofile = \"audit\"",
                file.display().to_string()
            ),
            &none,
        )
        .unwrap();
        match s.base {
            Some(BaseCredentials::Static(c)) => assert_eq!(c.access_key_id, "AKIDPROF"),
            other => panic!("{other:?}"),
        }
        let problems = parse_with(
            &format!(
                "shared_credentials_file = {:?}\nprofile = \"other\"",
                file.display().to_string()
            ),
            &none,
        )
        .unwrap_err();
        assert_eq!(problems[0].path, "tenants[0].connectors[0].profile");
    }

    #[test]
    fn endpoints_and_limits_are_checked() {
        let none = |_: &str| None;
        let problems = parse_with(
            "replay_dir = \"d\"\nendpoint = \"http://iam.example.com\"\nreport_wait = \"0s\"",
            &none,
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "tenants[0].connectors[0].endpoint",
                "tenants[0].connectors[0].report_wait"
            ]
        );
        let s = parse_with("replay_dir = \"d\"", &none).unwrap();
        assert_eq!(s.endpoint, "https://iam.amazonaws.com");
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.limits.report_wait, Duration::from_secs(60));
    }

    /// `ages_as_of` pins the instant credential ages are measured at, for replays only.
    #[test]
    fn ages_as_of_is_for_replays() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
            _ => None,
        };
        let at = "ages_as_of = \"2026-11-29T06:00:00Z\"";
        let problems = parse_with(at, &env).unwrap_err();
        assert_eq!(problems[0].path, "tenants[0].connectors[0].ages_as_of");
        assert!(problems[0].message.contains("only with replay_dir"));
        let s = parse_with(&format!("replay_dir = \"d\"\n{at}"), &env).unwrap();
        let want: chrono::DateTime<chrono::Utc> = "2026-11-29T06:00:00Z".parse().unwrap();
        assert_eq!(s.config(Mode::Live).ages_as_of, Some(want));
        let bad = parse_with("replay_dir = \"d\"\nages_as_of = \"yesterday\"", &env).unwrap_err();
        assert_eq!(bad[0].path, "tenants[0].connectors[0].ages_as_of");
    }
}
