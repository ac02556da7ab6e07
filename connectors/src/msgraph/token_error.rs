//! The error body of an Entra token endpoint (RFC 6749 fields plus Entra's AADSTS numbers;
//! the managed identity endpoint answers the same shape) and its classification into a
//! [`CollectionError`] with a hint per AADSTS number.
//!
//! Must not: put the credential a request carried into a message ([`scrub`]).

use oauth2::ErrorResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::{CollectionError, ErrorKind};

/// Entra token-endpoint error body: RFC 6749 fields plus Entra's `error_codes` (AADSTS numbers).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EntraTokenError {
    /// OAuth error, e.g. `invalid_client`, `invalid_scope`.
    pub error: String,
    /// `AADSTSnnnn: ...\r\nTrace ID: ...` (diagnostics only).
    #[serde(default)]
    pub error_description: Option<String>,
    /// AADSTS numbers, e.g. `[7000222]`.
    #[serde(default)]
    pub error_codes: Option<Vec<u64>>,
    /// Link to the error-code page.
    #[serde(default)]
    pub error_uri: Option<String>,
}

impl std::fmt::Display for EntraTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        if let Some(n) = self.aadsts() {
            write!(f, " AADSTS{n}")?;
        }
        Ok(())
    }
}

impl ErrorResponse for EntraTokenError {}

impl EntraTokenError {
    /// The first AADSTS number, from `error_codes` or else the `AADSTSnnnn:` description prefix.
    pub fn aadsts(&self) -> Option<u64> {
        if let Some(n) = self.error_codes.as_ref().and_then(|c| c.first()) {
            return Some(*n);
        }
        let d = self.error_description.as_deref()?;
        let rest = &d[d.find("AADSTS")? + "AADSTS".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// The classified error (see [`TokenSource::token`] for the mapping).
    pub(super) fn to_collection_error(
        &self,
        status: Option<u16>,
        secret: Option<&SecretString>,
        endpoint: &str,
    ) -> CollectionError {
        let kind = match self.error.as_str() {
            "invalid_client" | "unauthorized_client" => ErrorKind::Unauthorized,
            "temporarily_unavailable" => ErrorKind::Server,
            _ => ErrorKind::Auth,
        };
        let n = self.aadsts();
        let hint = match n {
            Some(7_000_215) => {
                "client secret is invalid (often the secret ID was configured instead of its value)"
            }
            Some(7_000_222) => "client secret has expired; create a new secret for the app",
            Some(7_000_218) => "request lacks a client secret or assertion",
            Some(700_016) | Some(700_011) => "application (client_id) not found in the tenant",
            Some(7_000_112) => "application is disabled",
            Some(90_002) => "tenant not found",
            Some(70_011) => "invalid scope",
            Some(53_003) | Some(530_035) => "blocked by conditional access or security defaults",
            Some(700_027) => {
                "client assertion failed signature validation (is this certificate uploaded to the app registration?)"
            }
            Some(700_024) => {
                "client assertion is not within its valid time range (check the clock)"
            }
            Some(70_021) | Some(700_211) | Some(700_213) => {
                "no federated identity credential of the app matches the token's issuer, subject and audience"
            }
            Some(700_023) | Some(700_212) => "the federated token's audience is not accepted",
            Some(50_013) => {
                "the assertion was refused (its audience, issuer or time window does not match)"
            }
            _ => "token endpoint rejected the request",
        };
        let first_line = self
            .error_description
            .as_deref()
            .and_then(|d| d.lines().next())
            .map(|l| scrub(l, secret))
            .unwrap_or_default();
        let message = if first_line.is_empty() {
            hint.to_owned()
        } else {
            format!("{hint}: {first_line}")
        };
        CollectionError {
            kind,
            endpoint: endpoint.to_owned(),
            status,
            code: Some(self.to_string()),
            message,
            retry_after: None,
        }
    }
}

/// Remove the credential the request carried (a secret or an assertion) from a
/// server-provided text, should it ever be echoed.
pub(super) fn scrub(text: &str, secret: Option<&SecretString>) -> String {
    match secret.map(ExposeSecret::expose_secret) {
        Some(s) if s.len() >= 4 => text.replace(s, "[redacted]"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgraph::auth::TOKEN_ENDPOINT;

    fn secret() -> SecretString {
        SecretString::from("s3cr3t-value".to_owned())
    }

    #[test]
    fn invalid_client_7000215_from_realdata() {
        let body = include_str!(
            "../../fixtures/entra-oauth/token-error-invalid_client-7000215-supportdoc.json"
        );
        let e: EntraTokenError = serde_json::from_str(body).unwrap();
        assert_eq!(e.aadsts(), Some(7_000_215));
        let c = e.to_collection_error(Some(401), Some(&secret()), TOKEN_ENDPOINT);
        assert_eq!(c.kind, ErrorKind::Unauthorized);
        assert_eq!(c.code.as_deref(), Some("invalid_client AADSTS7000215"));
        assert!(c.message.contains("secret is invalid"), "{}", c.message);
        assert!(!c.message.contains("Trace ID"));
    }

    #[test]
    fn invalid_scope_is_auth() {
        let body = include_str!(
            "../../fixtures/entra-oauth/token-error-invalid_scope-clientcreds-doc.json"
        );
        let e: EntraTokenError = serde_json::from_str(body).unwrap();
        let c = e.to_collection_error(Some(400), Some(&secret()), TOKEN_ENDPOINT);
        assert_eq!(c.kind, ErrorKind::Auth);
        assert_eq!(c.code.as_deref(), Some("invalid_scope AADSTS70011"));
    }

    #[test]
    fn aadsts_from_description_when_codes_missing() {
        let e = EntraTokenError {
            error: "invalid_client".into(),
            error_description: Some("AADSTS7000222: The provided client secret keys are expired. s3cr3t-value\r\nTrace ID: x".into()),
            error_codes: None,
            error_uri: None,
        };
        assert_eq!(e.aadsts(), Some(7_000_222));
        let c = e.to_collection_error(Some(401), Some(&secret()), TOKEN_ENDPOINT);
        assert!(c.message.contains("expired"));
        assert!(!c.message.contains("s3cr3t-value"));
    }
}
