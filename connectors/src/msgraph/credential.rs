//! What the Graph connector signs in with: a client secret, a certificate (a client assertion
//! signed with its private key), a federated token file (workload identity federation), or an
//! Azure managed identity.
//!
//! Role: hold the loaded credential ([`Credential`]) and produce what one token request sends
//! from it: a freshly signed client assertion ([`CertificateKey::assertion`], RFC 7523 with
//! the claims and header Microsoft's "certificate credentials" page asks for), or the current
//! content of a federated token file ([`read_federated_token`], re-read on every request
//! because Kubernetes rotates it). [`super::auth`] sends them. The key is checked against the
//! certificate when it is loaded ([`CertificateKey::from_pem`]).
//!
//! Must not: put a key, an assertion, a token or a secret into `Debug`, a log or an error
//! (errors name files and variables, never their content).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{self as ring_sig, EcdsaKeyPair, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::SecretString;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::settings::{MAX_SECRET_FILE_BYTES, read_bounded};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 section 2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a signed client assertion is valid (`exp - nbf`): 10 minutes, the upper end of
/// what Microsoft recommends (5 to 10 minutes after `nbf`). A new one is signed per request.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// The Azure Instance Metadata Service token endpoint (plain http on a link-local address,
/// reachable only from inside the VM, AKS node or container host).
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// `api-version` of the IMDS token request.
pub const IMDS_API_VERSION: &str = "2018-02-01";

/// `resource` of the IMDS token request: Microsoft Graph (IMDS takes a resource, not a scope).
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// The credential of one connector. `Debug` shows which form it is, never its material.
#[derive(Clone)]
pub enum Credential {
    /// `client_secret`: the secret's value, sent as `client_secret` in the token form.
    Secret(SecretString),
    /// `certificate`: a client assertion signed with the private key, sent as
    /// `client_assertion`.
    Certificate(Arc<CertificateKey>),
    /// `federated_token_file`: the file's current content (a JWT from another identity
    /// provider), sent as `client_assertion`.
    FederatedToken(PathBuf),
    /// `managed_identity`: a token from the instance metadata endpoint; no client credential.
    ManagedIdentity(ManagedIdentity),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret([redacted])"),
            Credential::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
            Credential::FederatedToken(p) => f.debug_tuple("FederatedToken").field(p).finish(),
            Credential::ManagedIdentity(m) => f.debug_tuple("ManagedIdentity").field(m).finish(),
        }
    }
}

/// Azure managed identity settings. `Debug` redacts the App Service identity header.
#[derive(Clone)]
pub struct ManagedIdentity {
    /// Token endpoint: default [`DEFAULT_IMDS_ENDPOINT`]; on App Service and Functions the
    /// `IDENTITY_ENDPOINT` variable (a loopback URL in tests).
    pub endpoint: String,
    /// Client id of a user-assigned identity; `None`: the system-assigned identity.
    pub client_id: Option<String>,
    /// App Service and Functions: the `IDENTITY_HEADER` value, sent as `X-IDENTITY-HEADER`
    /// with `api-version` [`APP_SERVICE_API_VERSION`]; `None`: IMDS (`Metadata: true`).
    pub identity_header: Option<SecretString>,
}

impl std::fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentity")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field(
                "identity_header",
                &self.identity_header.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// `api-version` of the App Service / Functions managed identity endpoint.
pub const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// A certificate's private key, ready to sign client assertions. `Debug` shows the algorithm
/// and the thumbprint only.
#[derive(Clone)]
pub struct CertificateKey {
    key: EncodingKey,
    algorithm: Algorithm,
    thumbprint: String,
}

impl std::fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateKey")
            .field("algorithm", &self.algorithm)
            .field("x5t#S256", &self.thumbprint)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Which half of a certificate credential a loading problem concerns (its configuration key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePart {
    /// The private key (`certificate.key`).
    Key,
    /// The certificate (`certificate.certificate`).
    Certificate,
    /// The pair: the key does not belong to the certificate (`certificate`).
    Pair,
}

/// The claims of a client assertion (Microsoft identity platform, "certificate credentials").
#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

impl CertificateKey {
    /// Load a PEM private key (RSA as PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`; EC
    /// P-256 or P-384 as PKCS#8) and the PEM certificate uploaded to the app registration (the
    /// first `CERTIFICATE` block; a chain may follow). RSA signs PS256 (what Microsoft
    /// documents), EC ES256 or ES384 by its curve. The key must belong to the certificate: a
    /// probe signed with it must verify with the certificate's public key. Errors say which
    /// part is wrong, without key material.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, (CertificatePart, String)> {
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| {
            (
                CertificatePart::Certificate,
                format!("no PEM certificate found: {e}"),
            )
        })?;
        let end_entity = webpki::EndEntityCert::try_from(&cert).map_err(|e| {
            (
                CertificatePart::Certificate,
                format!("the certificate cannot be parsed: {e}"),
            )
        })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
            (
                CertificatePart::Key,
                format!("no unencrypted PEM private key found: {e}"),
            )
        })?;
        let algorithm = probe(&key, &end_entity)?;
        let encoding = match algorithm {
            Algorithm::PS256 => EncodingKey::from_rsa_pem(key_pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(key_pem.as_bytes()),
        }
        .map_err(|e| (CertificatePart::Key, format!("unusable private key: {e}")))?;
        Ok(Self {
            key: encoding,
            algorithm,
            thumbprint: URL_SAFE_NO_PAD.encode(Sha256::digest(cert.as_ref())),
        })
    }

    /// The `x5t#S256` header value: the base64url SHA-256 thumbprint of the certificate's DER.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The signing algorithm: PS256 (RSA), ES256 (P-256) or ES384 (P-384).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A new client assertion for `client_id` at token endpoint `audience`: `aud` = the token
    /// URL, `iss` = `sub` = the client id, a random `jti`, `nbf` = `iat` = now, `exp` = now +
    /// [`ASSERTION_LIFETIME`]; header `typ` JWT and `x5t#S256`.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<SecretString, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = AssertionClaims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
        };
        let mut header = Header::new(self.algorithm);
        header.x5t_s256 = Some(self.thumbprint.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(SecretString::from)
            .map_err(|e| format!("signing the client assertion: {e}"))
    }
}

/// Find the algorithm the key signs with and check that the certificate's public key verifies
/// it (ring signs a probe; webpki verifies it against the certificate's SubjectPublicKeyInfo).
fn probe(
    key: &PrivateKeyDer<'_>,
    cert: &webpki::EndEntityCert<'_>,
) -> Result<Algorithm, (CertificatePart, String)> {
    const PROBE: &[u8] = b"postured certificate key check";
    let rng = SystemRandom::new();
    let mismatch = || {
        (
            CertificatePart::Pair,
            "the private key does not belong to the certificate".to_owned(),
        )
    };
    let rsa = match key {
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()).ok(),
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).ok(),
        _ => None,
    };
    if let Some(pair) = rsa {
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(&ring_sig::RSA_PSS_SHA256, &rng, PROBE, &mut sig)
            .map_err(|_| (CertificatePart::Key, "the RSA key cannot sign".to_owned()))?;
        cert.verify_signature(
            webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            PROBE,
            &sig,
        )
        .map_err(|_| mismatch())?;
        return Ok(Algorithm::PS256);
    }
    let PrivateKeyDer::Pkcs8(k) = key else {
        return Err((
            CertificatePart::Key,
            "not an RSA key, nor an EC key in PKCS#8 form (BEGIN PRIVATE KEY; convert with \
             `openssl pkcs8 -topk8 -nocrypt`)"
                .to_owned(),
        ));
    };
    let curves = [
        (
            &ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING,
            webpki::ring::ECDSA_P256_SHA256,
            Algorithm::ES256,
        ),
        (
            &ring_sig::ECDSA_P384_SHA384_ASN1_SIGNING,
            webpki::ring::ECDSA_P384_SHA384,
            Algorithm::ES384,
        ),
    ];
    for (signing, verifying, algorithm) in curves {
        let Ok(pair) = EcdsaKeyPair::from_pkcs8(signing, k.secret_pkcs8_der(), &rng) else {
            continue;
        };
        let sig = pair
            .sign(&rng, PROBE)
            .map_err(|_| (CertificatePart::Key, "the EC key cannot sign".to_owned()))?;
        cert.verify_signature(verifying, PROBE, sig.as_ref())
            .map_err(|_| mismatch())?;
        return Ok(algorithm);
    }
    Err((
        CertificatePart::Key,
        "unsupported private key: RSA (2048 bits or more), or EC on P-256 or P-384".to_owned(),
    ))
}

/// The current content of a federated token file, trimmed (at most
/// [`MAX_SECRET_FILE_BYTES`]). Errors name the file, never its content.
pub fn read_federated_token(path: &Path) -> Result<SecretString, String> {
    let text = read_bounded(path, MAX_SECRET_FILE_BYTES)
        .map_err(|e| format!("cannot read federated token file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("federated token file {} is empty", path.display()));
    }
    Ok(SecretString::from(token.to_owned()))
}
