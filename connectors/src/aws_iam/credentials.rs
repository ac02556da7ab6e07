//! Where the connector's AWS credentials come from.
//!
//! Base credentials, first match wins (resolved while loading the configuration, so a missing
//! one is a configuration problem):
//! 1. `access_key_id` + `secret_access_key` (+ `session_token`) configured as secret
//!    references (`{ env = "VAR" }` or `{ file = "PATH" }`);
//! 2. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! 3. a web identity token file (`web_identity_token_file` + `web_identity_role_arn`, or the
//!    environment's `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, as EKS and GitHub OIDC set
//!    them): STS `AssumeRoleWithWebIdentity` (unsigned) at every credential refresh, the file
//!    read each time (the platform rotates it);
//! 4. the shared credentials file (`shared_credentials_file`, else
//!    `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`), profile `profile` (else
//!    `AWS_PROFILE`, else `default`): static keys only (`aws_access_key_id`,
//!    `aws_secret_access_key`, `aws_session_token`; no `credential_process`, SSO or
//!    `source_profile` chains).
//!
//! Then, when `role_arn` is set: STS `AssumeRole` signed with the base credentials, with
//! `external_id` and `role_session_name` (the usual cross-account audit set-up). Temporary
//! credentials are cached until [`REFRESH_BEFORE`] before their expiry.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
#[cfg(test)]
use secrecy::ExposeSecret;
use secrecy::SecretString;
use tokio::sync::Mutex;

use super::client::{AwsCredentials, QueryApi, child_text, malformed, parse};
use crate::{CollectionError, ErrorKind};

/// Temporary credentials are renewed this long before they expire.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Default session duration asked of STS (its minimum is 900 s).
pub const SESSION_SECONDS: u32 = 3600;

/// The base of the credential chain.
#[derive(Debug, Clone)]
pub enum BaseCredentials {
    /// Static keys (configured, environment or profile file).
    Static(AwsCredentials),
    /// `AssumeRoleWithWebIdentity` with the token read from `token_file`.
    WebIdentity {
        /// Role to assume.
        role_arn: String,
        /// File holding the OIDC token.
        token_file: PathBuf,
    },
}

/// An optional `AssumeRole` on top of the base.
#[derive(Debug, Clone)]
pub struct AssumeRole {
    /// Role ARN.
    pub role_arn: String,
    /// External id the role's trust policy requires.
    pub external_id: Option<String>,
    /// `RoleSessionName`.
    pub session_name: String,
}

/// Resolves (and caches) the credentials IAM requests are signed with.
#[derive(Debug)]
pub struct CredentialSource {
    base: BaseCredentials,
    assume: Option<AssumeRole>,
    sts: QueryApi,
    session_name: String,
    cache: Mutex<Option<AwsCredentials>>,
}

/// The label of credential errors.
pub const CREDENTIALS: &str = "sts:credentials";

impl CredentialSource {
    /// A source over `base`, optionally assuming `assume` through `sts`.
    pub fn new(
        base: BaseCredentials,
        assume: Option<AssumeRole>,
        sts: QueryApi,
        session_name: String,
    ) -> Self {
        Self {
            base,
            assume,
            sts,
            session_name,
            cache: Mutex::new(None),
        }
    }

    /// The credentials to sign with now (cached temporary credentials while valid).
    pub async fn get(&self) -> Result<AwsCredentials, CollectionError> {
        if let (BaseCredentials::Static(c), None) = (&self.base, &self.assume) {
            return Ok(c.clone());
        }
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && c.expiration.is_some_and(|e| {
                e - chrono::Duration::from_std(REFRESH_BEFORE).unwrap_or_default() > Utc::now()
            })
        {
            return Ok(c.clone());
        }
        let base = match &self.base {
            BaseCredentials::Static(c) => c.clone(),
            BaseCredentials::WebIdentity {
                role_arn,
                token_file,
            } => {
                let token = crate::settings::read_bounded(
                    token_file,
                    crate::settings::MAX_SECRET_FILE_BYTES,
                )
                .map_err(|e| {
                    CollectionError::new(
                        ErrorKind::Auth,
                        CREDENTIALS,
                        format!(
                            "cannot read the web identity token file {}: {e}",
                            token_file.display()
                        ),
                    )
                })?;
                let session = SESSION_SECONDS.to_string();
                let xml = self
                    .sts
                    .call(
                        None,
                        "AssumeRoleWithWebIdentity",
                        &[
                            ("RoleArn", role_arn),
                            ("RoleSessionName", &self.session_name),
                            ("WebIdentityToken", token.trim()),
                            ("DurationSeconds", &session),
                        ],
                    )
                    .await?;
                sts_credentials(&self.sts.label("AssumeRoleWithWebIdentity"), &xml)?
            }
        };
        let creds = match &self.assume {
            None => base,
            Some(a) => {
                let session = SESSION_SECONDS.to_string();
                let mut params = vec![
                    ("RoleArn", a.role_arn.as_str()),
                    ("RoleSessionName", a.session_name.as_str()),
                    ("DurationSeconds", session.as_str()),
                ];
                if let Some(x) = &a.external_id {
                    params.push(("ExternalId", x));
                }
                let xml = self.sts.call(Some(&base), "AssumeRole", &params).await?;
                sts_credentials(&self.sts.label("AssumeRole"), &xml)?
            }
        };
        *cache = Some(creds.clone());
        Ok(creds)
    }
}

/// The `<Credentials>` of an `AssumeRole`/`AssumeRoleWithWebIdentity` response.
pub fn sts_credentials(label: &str, xml: &str) -> Result<AwsCredentials, CollectionError> {
    let doc = parse(label, xml)?;
    let root = doc.root_element();
    let get = |name: &str| {
        child_text(root, name, true)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| malformed(label, format!("no {name}")))
    };
    let expiration: Option<DateTime<Utc>> = child_text(root, "Expiration", true)
        .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(AwsCredentials {
        access_key_id: get("AccessKeyId")?,
        secret_access_key: SecretString::from(get("SecretAccessKey")?),
        session_token: Some(SecretString::from(get("SessionToken")?)),
        expiration: Some(expiration.unwrap_or_else(|| Utc::now() + chrono::Duration::minutes(15))),
    })
}

/// Read profile `profile` of a shared credentials file (INI: `[name]` sections of
/// `key = value` lines; `#`/`;` comments). Errors name the file and the profile, never a
/// value.
pub fn profile_credentials(
    path: &std::path::Path,
    profile: &str,
) -> Result<AwsCredentials, String> {
    let text = crate::settings::read_bounded(path, crate::settings::MAX_CREDENTIALS_FILE_BYTES)
        .map_err(|e| {
            format!(
                "cannot read shared credentials file {}: {e}",
                path.display()
            )
        })?;
    let mut in_profile = false;
    let mut found = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_profile = name == profile || name == format!("profile {profile}");
            found |= in_profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    if !found {
        return Err(format!(
            "profile {profile:?} not found in {}",
            path.display()
        ));
    }
    match (id, secret) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Ok(AwsCredentials {
            access_key_id: id,
            secret_access_key: SecretString::from(secret),
            session_token: token.filter(|t| !t.is_empty()).map(SecretString::from),
            expiration: None,
        }),
        _ => Err(format!(
            "profile {profile:?} in {} has no aws_access_key_id and aws_secret_access_key",
            path.display()
        )),
    }
}

/// Static credentials from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// optional `AWS_SESSION_TOKEN`), when both keys are set.
pub fn env_credentials(env: &dyn Fn(&str) -> Option<String>) -> Option<AwsCredentials> {
    let id = env("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty())?;
    let secret = env("AWS_SECRET_ACCESS_KEY").filter(|v| !v.is_empty())?;
    Some(AwsCredentials {
        access_key_id: id,
        secret_access_key: SecretString::from(secret),
        session_token: env("AWS_SESSION_TOKEN")
            .filter(|v| !v.is_empty())
            .map(SecretString::from),
        expiration: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n# c\n[audit]\naws_access_key_id=AKIDAUDIT\naws_secret_access_key=s2\naws_session_token = t\n",
        )
        .unwrap();
        let c = profile_credentials(&path, "audit").unwrap();
        assert_eq!(c.access_key_id, "AKIDAUDIT");
        assert_eq!(c.secret_access_key.expose_secret(), "s2");
        assert!(c.session_token.is_some());
        let c = profile_credentials(&path, "default").unwrap();
        assert_eq!(c.access_key_id, "AKIDDEFAULT");
        assert!(c.session_token.is_none());
        let e = profile_credentials(&path, "nope").unwrap_err();
        assert!(e.contains("\"nope\" not found"), "{e}");
        assert!(!e.contains("s2"));
    }

    #[test]
    fn sts_response() {
        let xml = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>sk</SecretAccessKey><SessionToken>tok</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>"#;
        let c = sts_credentials("sts:AssumeRole", xml).unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.expiration, Some("2030-01-01T00:00:00Z".parse().unwrap()));
        let e = sts_credentials("sts:AssumeRole", "<x/>").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed);
    }
}
