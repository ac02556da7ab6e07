//! Microsoft Graph connector (application permissions, client-credentials flow).
//!
//! Role: for one tenant, get a token once, read its Graph v1.0 endpoints concurrently and
//! return each one's typed payload or its own [`CollectionError`] in an [`MsGraphSnapshot`];
//! [`signals`] normalises that into the `msgraph.*` signals, [`settings`] owns the connector
//! table's keys and [`MSGRAPH`] is the kind's registry entry (catalog
//! `config/catalog/msgraph.toml`). [`credential`] holds what it signs in with (client secret,
//! certificate, federated token, managed identity) and [`auth`] gets the token. It does not
//! schedule, store or export metrics, and never logs a secret, a key or a token.
//!
//! | field of [`MsGraphSnapshot`] | endpoint | application permission |
//! |---|---|---|
//! | `secure_score` | `GET /security/secureScores?$top=1` | SecurityEvents.Read.All |
//! | `control_profiles` | `GET /security/secureScoreControlProfiles` | SecurityEvents.Read.All |
//! | `registration_details` | `GET /reports/authenticationMethods/userRegistrationDetails` | AuditLog.Read.All (Entra ID P1/P2) |
//! | `conditional_access` | `GET /identity/conditionalAccess/policies` | Policy.Read.All |
//! | `security_defaults` | `GET /policies/identitySecurityDefaultsEnforcementPolicy` | Policy.Read.All |
//! | `sensitivity_labels` | `GET /security/dataSecurityAndGovernance/sensitivityLabels` | SensitivityLabels.Read.All |
//! | `subscribed_skus` | `GET /subscribedSkus` | Organization.Read.All (or Directory.Read.All) |
//! | `authentication_methods` | `GET /policies/authenticationMethodsPolicy` | Policy.Read.All |
//! | `authorization` | `GET /policies/authorizationPolicy` | Policy.Read.All |
//! | `admin_consent` | `GET /policies/adminConsentRequestPolicy` | Policy.Read.All |
//! | `domains` | `GET /domains` | Domain.Read.All |
//! | `privileged` | role assignments, PIM instances and policies, principals ([`privileged`]) | RoleManagement.Read.Directory and others ([`privileged`]) |

pub mod auth;
pub mod credential;
pub mod directory;
#[cfg(test)]
mod directory_tests;
pub mod model;
#[cfg(test)]
mod model_tests;
pub mod privileged;
pub mod privileged_signals;
#[cfg(test)]
mod privileged_tests;
pub mod scuba;
#[cfg(test)]
mod scuba_tests;
pub mod settings;
#[cfg(test)]
mod settings_tests;
pub mod signals;
pub mod token_error;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::http::{HttpClient, HttpSettings};
use crate::record::{Mode, Recorder};
use crate::{CollectionError, Connector, ErrorKind, PollContext, Snapshot};
use auth::TokenSource;
pub use credential::{CertificateKey, Credential, ManagedIdentity};
use directory::{
    AdminConsentRequestPolicy, AuthenticationMethodsPolicy, AuthorizationPolicy, Domain,
};
use model::{
    ConditionalAccessPolicy, SecureScore, SecureScoreControlProfile, SecurityDefaultsPolicy,
    SensitivityLabel, SubscribedSku, UserRegistrationDetails,
};
pub use settings::{MSGRAPH, MsGraphSettings};

/// Connector kind and signal namespace.
pub const KIND: &str = "msgraph";

/// Default Entra authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Default Graph base URL (v1.0).
pub const DEFAULT_GRAPH_BASE: &str = "https://graph.microsoft.com/v1.0";

/// Endpoint paths (relative to the Graph base), used as error/log labels.
pub mod endpoints {
    /// Secure Score snapshots (SecurityEvents.Read.All); read with `$top=1`.
    pub const SECURE_SCORES: &str = "/security/secureScores";
    /// Secure Score control profiles (SecurityEvents.Read.All).
    pub const CONTROL_PROFILES: &str = "/security/secureScoreControlProfiles";
    /// MFA registration report (AuditLog.Read.All; Entra ID P1/P2).
    pub const REGISTRATION_DETAILS: &str = "/reports/authenticationMethods/userRegistrationDetails";
    /// Conditional access policies (Policy.Read.All).
    pub const CONDITIONAL_ACCESS: &str = "/identity/conditionalAccess/policies";
    /// Security defaults policy (Policy.Read.All).
    pub const SECURITY_DEFAULTS: &str = "/policies/identitySecurityDefaultsEnforcementPolicy";
    /// Tenant sensitivity labels (SensitivityLabels.Read.All).
    pub const SENSITIVITY_LABELS: &str = "/security/dataSecurityAndGovernance/sensitivityLabels";
    /// The tenant's subscriptions and their service plans (Organization.Read.All): licences
    /// such as Entra ID P2 (`AAD_PREMIUM_P2`).
    pub const SUBSCRIBED_SKUS: &str = "/subscribedSkus";
    /// The authentication methods policy (Policy.Read.All).
    pub const AUTHENTICATION_METHODS: &str = "/policies/authenticationMethodsPolicy";
    /// The authorization policy: app registration, user consent, guests (Policy.Read.All).
    pub const AUTHORIZATION: &str = "/policies/authorizationPolicy";
    /// The admin consent request policy (Policy.Read.All).
    pub const ADMIN_CONSENT: &str = "/policies/adminConsentRequestPolicy";
    /// The tenant's domains and their password expiry (Domain.Read.All).
    pub const DOMAINS: &str = "/domains";
}

/// Configuration of one tenant's Graph connector.
#[derive(Clone)]
pub struct MsGraphConfig {
    /// Entra tenant id (GUID or verified domain; not `common`).
    pub tenant_id: String,
    /// App registration (client) id (unused with a managed identity).
    pub client_id: String,
    /// What the connector signs in with: a client secret (its value, not its id), a
    /// certificate, a federated token file or a managed identity. Its material is redacted in
    /// `Debug`; unused in replay mode.
    pub credential: Credential,
    /// Entra authority, default `https://login.microsoftonline.com`.
    pub authority: String,
    /// Full token URL override (e.g. a local OAuth2 server's `/token`); default
    /// `{authority}/{tenant_id}/oauth2/v2.0/token`.
    pub token_url: Option<String>,
    /// Graph base URL, default `https://graph.microsoft.com/v1.0`.
    pub graph_base: String,
    /// Deadline of one HTTP attempt.
    pub request_timeout: Duration,
    /// Retries per request for 429/5xx/timeouts/network errors.
    pub max_retries: u32,
    /// Cap of one wait between retries (also caps `Retry-After`).
    pub max_retry_wait: Duration,
    /// Largest response body read, per response (token response and each Graph page); a
    /// larger one is [`ErrorKind::TooLarge`]. Default
    /// [`crate::http::DEFAULT_MAX_RESPONSE_BYTES`] (8 MiB).
    pub max_response_bytes: u64,
    /// Live, record into a directory, or replay from one.
    pub mode: Mode,
    /// Conditional access exclusions the tenant declares (break-glass accounts), accepted by
    /// the SCuBA checks ([`scuba`]); default none.
    pub exclusions: scuba::Exclusions,
}

impl MsGraphConfig {
    /// Config with a client secret and the defaults: public authority and Graph v1.0, 30 s
    /// timeout, 3 retries, 60 s max wait, 8 MiB per response, live mode.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        Self::with_credential(tenant_id, client_id, Credential::Secret(client_secret))
    }

    /// Config with any credential and the defaults of [`MsGraphConfig::new`].
    pub fn with_credential(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        credential: Credential,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            authority: DEFAULT_AUTHORITY.to_owned(),
            token_url: None,
            graph_base: DEFAULT_GRAPH_BASE.to_owned(),
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            max_retry_wait: Duration::from_secs(60),
            max_response_bytes: crate::http::DEFAULT_MAX_RESPONSE_BYTES,
            mode: Mode::Live,
            exclusions: scuba::Exclusions::default(),
        }
    }

    /// A replay-only config (no credentials needed): serves every request from `dir`.
    pub fn replay(tenant_id: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        Self {
            mode: Mode::Replay(dir.into()),
            ..Self::new(tenant_id, "", SecretString::from(String::new()))
        }
    }

    /// The token URL in force: a managed identity's endpoint, the override, or
    /// `{authority}/{tenant_id}/oauth2/v2.0/token` (also the `aud` of client assertions).
    pub fn resolved_token_url(&self) -> String {
        if let Credential::ManagedIdentity(mi) = &self.credential {
            return mi.endpoint.clone();
        }
        match &self.token_url {
            Some(u) => u.clone(),
            None => format!(
                "{}/{}/oauth2/v2.0/token",
                self.authority.trim_end_matches('/'),
                self.tenant_id
            ),
        }
    }
}

impl std::fmt::Debug for MsGraphConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsGraphConfig")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("authority", &self.authority)
            .field("token_url", &self.token_url)
            .field("graph_base", &self.graph_base)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("mode", &self.mode)
            .field("exclusions", &self.exclusions)
            .finish()
    }
}

/// An invalid [`MsGraphConfig`] (bad URL, empty tenant id ...).
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid msgraph config: {0}")]
pub struct ConfigError(pub String);

/// One poll of a Microsoft Graph tenant: each endpoint's parsed payload or its error.
#[derive(Debug, Clone)]
pub struct MsGraphSnapshot {
    /// Latest Secure Score snapshot; `Ok(None)` when the tenant has none yet.
    /// `GET /security/secureScores?$top=1` (SecurityEvents.Read.All).
    pub secure_score: Result<Option<SecureScore>, CollectionError>,
    /// `GET /security/secureScoreControlProfiles` (SecurityEvents.Read.All), all pages.
    pub control_profiles: Result<Vec<SecureScoreControlProfile>, CollectionError>,
    /// `GET /reports/authenticationMethods/userRegistrationDetails` (AuditLog.Read.All,
    /// Entra ID P1/P2), all pages.
    pub registration_details: Result<Vec<UserRegistrationDetails>, CollectionError>,
    /// `GET /identity/conditionalAccess/policies` (Policy.Read.All), all pages.
    pub conditional_access: Result<Vec<ConditionalAccessPolicy>, CollectionError>,
    /// `GET /policies/identitySecurityDefaultsEnforcementPolicy` (Policy.Read.All).
    pub security_defaults: Result<SecurityDefaultsPolicy, CollectionError>,
    /// `GET /security/dataSecurityAndGovernance/sensitivityLabels` (SensitivityLabels.Read.All),
    /// top-level labels with their sublabels nested, all pages.
    pub sensitivity_labels: Result<Vec<SensitivityLabel>, CollectionError>,
    /// `GET /subscribedSkus` (Organization.Read.All), all pages.
    pub subscribed_skus: Result<Vec<SubscribedSku>, CollectionError>,
    /// `GET /policies/authenticationMethodsPolicy` (Policy.Read.All).
    pub authentication_methods: Result<AuthenticationMethodsPolicy, CollectionError>,
    /// `GET /policies/authorizationPolicy` (Policy.Read.All).
    pub authorization: Result<AuthorizationPolicy, CollectionError>,
    /// `GET /policies/adminConsentRequestPolicy` (Policy.Read.All).
    pub admin_consent: Result<AdminConsentRequestPolicy, CollectionError>,
    /// `GET /domains` (Domain.Read.All), all pages.
    pub domains: Result<Vec<Domain>, CollectionError>,
    /// Privileged roles, PIM and their principals ([`privileged`]), one result per part.
    pub privileged: privileged::PrivilegedAccess,
}

impl MsGraphSnapshot {
    /// The number of endpoints a poll reads (fields of this struct).
    pub const ENDPOINTS: usize = 11 + privileged::PrivilegedAccess::RESULTS;

    /// A snapshot where every endpoint failed with the same error (token failure).
    pub fn all_failed(e: CollectionError) -> Self {
        Self {
            secure_score: Err(e.clone()),
            control_profiles: Err(e.clone()),
            registration_details: Err(e.clone()),
            conditional_access: Err(e.clone()),
            security_defaults: Err(e.clone()),
            sensitivity_labels: Err(e.clone()),
            subscribed_skus: Err(e.clone()),
            authentication_methods: Err(e.clone()),
            authorization: Err(e.clone()),
            admin_consent: Err(e.clone()),
            domains: Err(e.clone()),
            privileged: privileged::PrivilegedAccess::all_failed(e),
        }
    }

    /// Every endpoint error in this snapshot (a token failure appears once per endpoint).
    pub fn errors(&self) -> Vec<&CollectionError> {
        [
            self.secure_score.as_ref().err(),
            self.control_profiles.as_ref().err(),
            self.registration_details.as_ref().err(),
            self.conditional_access.as_ref().err(),
            self.security_defaults.as_ref().err(),
            self.sensitivity_labels.as_ref().err(),
            self.subscribed_skus.as_ref().err(),
            self.authentication_methods.as_ref().err(),
            self.authorization.as_ref().err(),
            self.admin_consent.as_ref().err(),
            self.domains.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .chain(self.privileged.errors())
        .collect()
    }

    /// The token failure, when no endpoint could be read because no token was obtained
    /// (every error's endpoint is [`auth::TOKEN_ENDPOINT`]).
    pub fn token_error(&self) -> Option<&CollectionError> {
        let errs = self.errors();
        if errs.len() == Self::ENDPOINTS && errs.iter().all(|e| e.endpoint == auth::TOKEN_ENDPOINT)
        {
            errs.first().copied()
        } else {
            None
        }
    }
}

/// The Microsoft Graph connector for one tenant.
#[derive(Debug)]
pub struct MsGraphConnector {
    tenant_id: String,
    graph_base: Url,
    http: HttpClient,
    /// `None` in replay mode (no token is ever requested).
    auth: Option<TokenSource>,
    exclusions: scuba::Exclusions,
}

impl MsGraphConnector {
    /// Build the connector around a shared reqwest client for the Graph requests (the daemon
    /// installs the rustls crypto provider and [`crate::http::redirect_policy`]); the token
    /// requests get a client of their own that follows no redirect
    /// ([`auth::token_client`]). Errors: empty tenant id, unparseable `graph_base` or token
    /// URL, no rustls crypto provider installed (live and record modes).
    pub fn new(cfg: MsGraphConfig, client: reqwest::Client) -> Result<Self, ConfigError> {
        if cfg.tenant_id.trim().is_empty() {
            return Err(ConfigError("tenant_id is empty".into()));
        }
        let graph_base = Url::parse(cfg.graph_base.trim_end_matches('/'))
            .map_err(|e| ConfigError(format!("graph_base `{}`: {e}", cfg.graph_base)))?;
        let settings = HttpSettings {
            request_timeout: cfg.request_timeout,
            max_retries: cfg.max_retries,
            max_retry_wait: cfg.max_retry_wait,
            max_response_bytes: cfg.max_response_bytes,
            ..HttpSettings::default()
        };
        let auth = match cfg.mode {
            Mode::Replay(_) => None,
            Mode::Live | Mode::Record(_) => {
                let token_url = cfg.resolved_token_url();
                Url::parse(&token_url)
                    .map_err(|e| ConfigError(format!("token URL `{token_url}`: {e}")))?;
                Some(
                    TokenSource::new(
                        &token_url,
                        &cfg.client_id,
                        cfg.credential.clone(),
                        settings.clone(),
                    )
                    .map_err(|e| ConfigError(e.message))?,
                )
            }
        };
        Ok(Self {
            tenant_id: cfg.tenant_id,
            graph_base,
            http: HttpClient::new(client, cfg.mode, settings),
            auth,
            exclusions: cfg.exclusions,
        })
    }

    /// Tenant this connector polls.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// Read every endpoint once (see the module table). Never fails as a whole: a token
    /// failure gives every endpoint that same error and makes no Graph call.
    pub async fn snapshot(&self) -> MsGraphSnapshot {
        let span = tracing::info_span!("msgraph_poll", tenant_id = %self.tenant_id);
        async {
            let token = match &self.auth {
                None => None,
                Some(a) => match a.token().await {
                    Ok(t) => Some(t),
                    Err(e) => return MsGraphSnapshot::all_failed(e),
                },
            };
            use endpoints::*;
            let (
                secure_score,
                control_profiles,
                registration_details,
                conditional_access,
                security_defaults,
                sensitivity_labels,
                subscribed_skus,
                authentication_methods,
                authorization,
                admin_consent,
                domains,
                privileged,
            ) = tokio::join!(
                self.latest_secure_score(token.clone()),
                self.list(CONTROL_PROFILES, "", token.clone(), true),
                self.list(REGISTRATION_DETAILS, "", token.clone(), true),
                self.list(CONDITIONAL_ACCESS, "", token.clone(), true),
                self.single(SECURITY_DEFAULTS, token.clone()),
                self.list(SENSITIVITY_LABELS, "", token.clone(), true),
                self.list(SUBSCRIBED_SKUS, "", token.clone(), true),
                self.single(AUTHENTICATION_METHODS, token.clone()),
                self.single(AUTHORIZATION, token.clone()),
                self.single(ADMIN_CONSENT, token.clone()),
                self.list(DOMAINS, "", token.clone(), true),
                self.privileged(token.clone()),
            );
            let snap = MsGraphSnapshot {
                secure_score,
                control_profiles,
                registration_details,
                conditional_access,
                security_defaults,
                sensitivity_labels,
                subscribed_skus,
                authentication_methods,
                authorization,
                admin_consent,
                domains,
                privileged,
            };
            tracing::info!(failed = snap.errors().len(), "msgraph poll done");
            snap
        }
        .instrument(span)
        .await
    }

    fn url(&self, path: &str, query: &str) -> Result<Url, CollectionError> {
        let s = format!(
            "{}{path}{query}",
            self.graph_base.as_str().trim_end_matches('/')
        );
        Url::parse(&s)
            .map_err(|e| CollectionError::new(ErrorKind::Other, path, format!("bad URL: {e}")))
    }

    /// Latest snapshot only: `$top=1`, nextLink deliberately not followed.
    async fn latest_secure_score(
        &self,
        token: Option<SecretString>,
    ) -> Result<Option<SecureScore>, CollectionError> {
        let v: Vec<SecureScore> = self
            .list(endpoints::SECURE_SCORES, "?$top=1", token, false)
            .await?;
        Ok(v.into_iter().next())
    }

    async fn list<T: DeserializeOwned>(
        &self,
        path: &'static str,
        query: &'static str,
        token: Option<SecretString>,
        follow_next: bool,
    ) -> Result<Vec<T>, CollectionError> {
        let url = self.url(path, query)?;
        self.http
            .get_collection(path, &url, token.as_ref(), follow_next)
            .instrument(tracing::debug_span!("msgraph_endpoint", endpoint = path))
            .await
    }

    async fn single<T: DeserializeOwned>(
        &self,
        path: &'static str,
        token: Option<SecretString>,
    ) -> Result<T, CollectionError> {
        let url = self.url(path, "")?;
        self.http
            .get_json(path, &url, token.as_ref())
            .instrument(tracing::debug_span!("msgraph_endpoint", endpoint = path))
            .await
    }
}

#[async_trait]
impl Connector for MsGraphConnector {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn poll(&self, cx: &PollContext) -> Snapshot {
        signals::normalise(&self.snapshot().await, &self.exclusions, cx.observed_at)
    }
}

/// `postured record`: poll the tenant live once and write every successful response with
/// `recorder` (see [`crate::record`] for the file format and the pseudonymisation of personal
/// data; no credentials are written). Returns the snapshot so the caller can report which
/// endpoints failed.
pub async fn record_tenant(
    mut cfg: MsGraphConfig,
    client: reqwest::Client,
    recorder: Recorder,
) -> Result<MsGraphSnapshot, ConfigError> {
    cfg.mode = Mode::Record(recorder);
    Ok(MsGraphConnector::new(cfg, client)?.snapshot().await)
}
