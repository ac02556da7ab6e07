//! Sign-in without a client secret, over real loopback HTTP: certificate credentials (the
//! token endpoint verifies the client assertion's signature with the public key of a
//! certificate generated here, its `x5t#S256` header, audience, issuer, subject and time
//! window), workload identity federation (the token file's content is the assertion, re-read
//! after it changes) and managed identity (an IMDS double checks `Metadata: true`, the
//! resource and the client id). Keys are generated at test time and never written to the
//! repository; the Graph double checks that the token obtained is the one sent.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use postured_connectors::ErrorKind;
use postured_connectors::msgraph::credential::{ASSERTION_TYPE, CertificatePart};
use postured_connectors::msgraph::{
    CertificateKey, Credential, ManagedIdentity, MsGraphConfig, MsGraphConnector, MsGraphSnapshot,
};
use serde::Deserialize;
use wiremock::matchers::{header, method, path, path_regex, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TENANT: &str = "00000001-0001-0001-0001-000000000001";
const CLIENT_ID: &str = "00001111-aaaa-2222-bbbb-3333cccc4444";

/// A test identity: a private key, its self-signed certificate and the public key.
struct Identity {
    key_pem: String,
    cert_pem: String,
    public_pem: String,
    algorithm: Algorithm,
}

/// RSA 2048 (ring cannot generate RSA keys; the `rsa` crate does, rcgen self-signs).
fn rsa_identity() -> Identity {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let key_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let pair = rcgen::KeyPair::from_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    identity(pair, key_pem, Algorithm::PS256)
}

/// EC P-256.
fn ec_identity() -> Identity {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key_pem = pair.serialize_pem();
    identity(pair, key_pem, Algorithm::ES256)
}

fn identity(pair: rcgen::KeyPair, key_pem: String, algorithm: Algorithm) -> Identity {
    let params = rcgen::CertificateParams::new(vec!["postured-signin-test".to_owned()]).unwrap();
    let cert = params.self_signed(&pair).unwrap();
    Identity {
        key_pem,
        cert_pem: cert.pem(),
        public_pem: pair.public_key_pem(),
        algorithm,
    }
}

static RSA: LazyLock<Identity> = LazyLock::new(rsa_identity);
static EC: LazyLock<Identity> = LazyLock::new(ec_identity);
static OTHER_RSA: LazyLock<Identity> = LazyLock::new(rsa_identity);

fn access_token() -> String {
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/entra-oauth/token-response-success.json"
    ))
    .unwrap();
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// An Entra error body (the documented shape: `error`, `error_description` with the AADSTS
/// number, `error_codes`).
fn entra_error(status: u16, error: &str, code: u64, text: &str) -> ResponseTemplate {
    json(
        status,
        serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0000\r\nCorrelation ID: 0000"),
            "error_codes": [code],
            "timestamp": "2026-11-29 06:00:00Z",
        }),
    )
}

fn form(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

#[derive(Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    sub: String,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

/// A token endpoint that accepts a client assertion only when it verifies with `public_pem`,
/// carries `thumbprint` as `x5t#S256`, is addressed to `audience`, is issued by and about
/// `CLIENT_ID`, and is valid at the server's clock (now + `clock_offset` seconds).
struct AssertionVerifier {
    key: DecodingKey,
    algorithm: Algorithm,
    thumbprint: String,
    audience: String,
    clock_offset: i64,
}

/// An `invalid_client` refusal: HTTP status, AADSTS number, description.
type Refusal = (u16, u64, &'static str);

impl AssertionVerifier {
    fn new(id: &Identity, audience: &str) -> Self {
        let key = match id.algorithm {
            Algorithm::PS256 => DecodingKey::from_rsa_pem(id.public_pem.as_bytes()),
            _ => DecodingKey::from_ec_pem(id.public_pem.as_bytes()),
        }
        .unwrap();
        Self {
            key,
            algorithm: id.algorithm,
            thumbprint: thumbprint(&id.cert_pem),
            audience: audience.to_owned(),
            clock_offset: 0,
        }
    }

    fn check(&self, req: &Request) -> Result<(), Refusal> {
        let f = form(req);
        let field = |k: &str| f.get(k).map(String::as_str);
        assert_eq!(field("grant_type"), Some("client_credentials"));
        assert_eq!(field("scope"), Some("https://graph.microsoft.com/.default"));
        assert_eq!(field("client_id"), Some(CLIENT_ID));
        assert_eq!(field("client_assertion_type"), Some(ASSERTION_TYPE));
        assert_eq!(field("client_secret"), None, "no secret with an assertion");
        let assertion = field("client_assertion").expect("client_assertion");
        let head = jsonwebtoken::decode_header(assertion).unwrap();
        assert_eq!(head.typ.as_deref(), Some("JWT"));
        let bad_signature = || {
            (
                401,
                700_027,
                "Client assertion failed signature validation.",
            )
        };
        if head.alg != self.algorithm || head.x5t_s256.as_deref() != Some(&self.thumbprint) {
            return Err(bad_signature());
        }
        let mut v = Validation::new(self.algorithm);
        v.validate_exp = false; // checked below against the server's clock
        v.required_spec_claims.clear();
        v.validate_aud = false;
        let claims = jsonwebtoken::decode::<Claims>(assertion, &self.key, &v)
            .map_err(|_| bad_signature())?
            .claims;
        if claims.aud != self.audience {
            return Err((
                401,
                50_013,
                "Assertion audience does not match the Client app presenting the assertion.",
            ));
        }
        assert_eq!(
            (claims.iss.as_str(), claims.sub.as_str()),
            (CLIENT_ID, CLIENT_ID)
        );
        assert!(uuid_like(&claims.jti), "jti {}", claims.jti);
        assert!(claims.iat <= claims.nbf + 1 && claims.exp - claims.nbf <= 600);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + self.clock_offset;
        if now < claims.nbf as i64 || now >= claims.exp as i64 {
            return Err((
                400,
                700_024,
                "Client assertion is not within its valid time range.",
            ));
        }
        Ok(())
    }
}

impl Respond for AssertionVerifier {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        match self.check(req) {
            Ok(()) => json(
                200,
                serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": access_token()}),
            ),
            Err((status, code, text)) => entra_error(status, "invalid_client", code, text),
        }
    }
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

/// base64url(SHA-256(certificate DER)), computed independently of the connector.
fn thumbprint(cert_pem: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let pem = pem_body(cert_pem);
    let der = base64::engine::general_purpose::STANDARD
        .decode(pem)
        .unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

fn token_path() -> String {
    format!("/{TENANT}/oauth2/v2.0/token")
}

fn config(server: &MockServer, credential: Credential) -> MsGraphConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    MsGraphConfig {
        authority: server.uri(),
        graph_base: format!("{}/v1.0", server.uri()),
        request_timeout: Duration::from_secs(5),
        max_retries: 0,
        ..MsGraphConfig::with_credential(TENANT, CLIENT_ID, credential)
    }
}

fn certificate(id: &Identity) -> Credential {
    Credential::Certificate(Arc::new(
        CertificateKey::from_pem(&id.key_pem, &id.cert_pem).unwrap(),
    ))
}

/// Answer every Graph GET; the requests' Authorization headers are checked afterwards.
async fn mount_graph(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path_regex("^/v1.0/"))
        .respond_with(json(200, serde_json::json!({"value": []})))
        .mount(server)
        .await;
}

/// The Authorization headers of the Graph requests the server received.
async fn graph_authorizations(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/v1.0/"))
        .map(|r| {
            r.headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// The client assertions the token endpoint received.
async fn assertions(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method == wiremock::http::Method::POST)
        .filter_map(|r| form(r).remove("client_assertion"))
        .collect()
}

/// Graph requests of one poll against [`mount_graph`]: one per endpoint, but the privileged
/// users lookup (`/users?$filter=id in (...)`), which runs only for the principals the role
/// assignments name (none in an empty answer).
const GRAPH_REQUESTS: usize = MsGraphSnapshot::ENDPOINTS - 1;

async fn poll(cfg: MsGraphConfig) -> MsGraphSnapshot {
    MsGraphConnector::new(cfg, reqwest::Client::new())
        .unwrap()
        .snapshot()
        .await
}

fn assert_token_used(auths: &[String], token: &str) {
    assert_eq!(
        auths.len(),
        GRAPH_REQUESTS,
        "one request per Graph endpoint: {auths:?}"
    );
    let expected = format!("Bearer {token}");
    assert!(auths.iter().all(|a| *a == expected), "{auths:?}");
}

async fn certificate_sign_in(id: &Identity) {
    let server = MockServer::start().await;
    let audience = format!("{}{}", server.uri(), token_path());
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(AssertionVerifier::new(id, &audience))
        .expect(1)
        .mount(&server)
        .await;
    mount_graph(&server).await;
    let snap = poll(config(&server, certificate(id))).await;
    assert!(snap.token_error().is_none(), "{:?}", snap.errors());
    assert_token_used(&graph_authorizations(&server).await, &access_token());
}

#[tokio::test]
async fn certificate_rsa_ps256_assertion_is_verified_and_its_token_used() {
    certificate_sign_in(&RSA).await;
}

#[tokio::test]
async fn certificate_ec_es256_assertion_is_verified_and_its_token_used() {
    certificate_sign_in(&EC).await;
}

/// The token endpoint's refusal of the connector's assertion (`verifier` is built for the
/// server's own token URL), with a check that neither the key nor the assertion appears in
/// the error or in the connector's Debug output, and that Graph was not called.
async fn refused(
    id: &Identity,
    verifier: impl FnOnce(&str) -> AssertionVerifier,
) -> postured_connectors::CollectionError {
    let server = MockServer::start().await;
    let audience = format!("{}{}", server.uri(), token_path());
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(verifier(&audience))
        .mount(&server)
        .await;
    mount_graph(&server).await;
    let cfg = config(&server, certificate(id));
    let connector = MsGraphConnector::new(cfg.clone(), reqwest::Client::new()).unwrap();
    let snap = connector.snapshot().await;
    let err = snap.token_error().expect("token refused").clone();
    assert!(graph_authorizations(&server).await.is_empty());
    let sent = assertions(&server).await;
    assert_eq!(sent.len(), 1);
    let shown = format!("{err} {err:?} {cfg:?} {connector:?}");
    let key_body = pem_body(&id.key_pem);
    assert!(!shown.contains(&sent[0]), "assertion leaked: {shown}");
    assert!(!shown.contains(&key_body[..40]), "key leaked: {shown}");
    err
}

#[tokio::test]
async fn assertion_signed_by_another_key_is_refused_as_unauthorized() {
    // The endpoint knows OTHER_RSA's public key under RSA's thumbprint; the connector signs
    // with RSA's key.
    let err = refused(&RSA, |aud| AssertionVerifier {
        thumbprint: thumbprint(&RSA.cert_pem),
        ..AssertionVerifier::new(&OTHER_RSA, aud)
    })
    .await;
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(err.code.as_deref(), Some("invalid_client AADSTS700027"));
    assert!(
        err.message.contains("signature validation"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn assertion_for_another_audience_is_refused() {
    let err = refused(&EC, |_| {
        AssertionVerifier::new(
            &EC,
            &format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"),
        )
    })
    .await;
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(err.code.as_deref(), Some("invalid_client AADSTS50013"));
    assert!(err.message.contains("audience"), "{}", err.message);
}

#[tokio::test]
async fn expired_and_not_yet_valid_assertions_are_refused() {
    // The server's clock is past the assertion's `exp`, or before its `nbf`.
    for offset in [601, -120] {
        let err = refused(&EC, |aud| AssertionVerifier {
            clock_offset: offset,
            ..AssertionVerifier::new(&EC, aud)
        })
        .await;
        assert_eq!(err.kind, ErrorKind::Unauthorized, "offset {offset}");
        assert_eq!(err.code.as_deref(), Some("invalid_client AADSTS700024"));
        assert!(err.message.contains("valid time range"), "{}", err.message);
    }
}

#[test]
fn key_of_another_certificate_is_refused_at_load() {
    let (part, message) = CertificateKey::from_pem(&RSA.key_pem, &OTHER_RSA.cert_pem).unwrap_err();
    assert_eq!(part, CertificatePart::Pair);
    assert!(message.contains("does not belong"), "{message}");
    let (part, _) = CertificateKey::from_pem(&EC.key_pem, &RSA.cert_pem).unwrap_err();
    assert_eq!(part, CertificatePart::Pair);
    let (part, _) = CertificateKey::from_pem("not a key", &RSA.cert_pem).unwrap_err();
    assert_eq!(part, CertificatePart::Key);
    let (part, _) = CertificateKey::from_pem(&RSA.key_pem, "not a certificate").unwrap_err();
    assert_eq!(part, CertificatePart::Certificate);
    let key = CertificateKey::from_pem(&RSA.key_pem, &RSA.cert_pem).unwrap();
    assert_eq!(key.thumbprint(), thumbprint(&RSA.cert_pem));
    // The same RSA key in PKCS#1 form (BEGIN RSA PRIVATE KEY) loads too and signs PS256.
    let pkcs1 = {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        rsa::RsaPrivateKey::from_pkcs8_pem(&RSA.key_pem)
            .unwrap()
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    };
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let key = CertificateKey::from_pem(&pkcs1, &RSA.cert_pem).unwrap();
    assert_eq!(key.algorithm(), Algorithm::PS256);
    let assertion = key.assertion(CLIENT_ID, "https://token.example/").unwrap();
    let v = {
        let mut v = Validation::new(Algorithm::PS256);
        v.set_audience(&["https://token.example/"]);
        v
    };
    let public = DecodingKey::from_rsa_pem(RSA.public_pem.as_bytes()).unwrap();
    jsonwebtoken::decode::<Claims>(
        secrecy::ExposeSecret::expose_secret(&assertion),
        &public,
        &v,
    )
    .unwrap();
    assert!(!format!("{key:?}").contains(&pem_body(&RSA.key_pem)[..40]));
}

/// A token endpoint for workload identity federation: the assertion must be the token file's
/// current content; answers a token that expires in 2 s (refreshed after 1 s).
struct FederatedVerifier {
    file: std::path::PathBuf,
}

impl Respond for FederatedVerifier {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let f = form(req);
        let current = std::fs::read_to_string(&self.file).unwrap();
        assert_eq!(
            f.get("client_assertion_type").map(String::as_str),
            Some(ASSERTION_TYPE)
        );
        if f.get("client_assertion") != Some(&current.trim().to_owned()) {
            return entra_error(
                400,
                "invalid_client",
                700_213,
                "No matching federated identity record found for presented assertion subject.",
            );
        }
        let token = format!("graph-token-for-{}", current.trim());
        json(
            200,
            serde_json::json!({"token_type": "Bearer", "expires_in": 2, "access_token": token}),
        )
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn federated_token_file_is_the_assertion_and_is_reread_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    write(&file, "eyJhbGciOiJSUzI1NiJ9.first.sig\n");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(FederatedVerifier { file: file.clone() })
        .mount(&server)
        .await;
    mount_graph(&server).await;
    let connector = MsGraphConnector::new(
        config(&server, Credential::FederatedToken(file.clone())),
        reqwest::Client::new(),
    )
    .unwrap();
    let snap = connector.snapshot().await;
    assert!(snap.token_error().is_none(), "{:?}", snap.errors());
    // Kubernetes rotates the projected token; the cached access token expires (2 s, refreshed
    // after 1 s) and the next request reads the new content.
    write(&file, "eyJhbGciOiJSUzI1NiJ9.second.sig\n");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let snap = connector.snapshot().await;
    assert!(snap.token_error().is_none(), "{:?}", snap.errors());
    assert_eq!(
        assertions(&server).await,
        [
            "eyJhbGciOiJSUzI1NiJ9.first.sig",
            "eyJhbGciOiJSUzI1NiJ9.second.sig"
        ]
    );
    let auths = graph_authorizations(&server).await;
    assert_token_used(
        &auths[..GRAPH_REQUESTS],
        "graph-token-for-eyJhbGciOiJSUzI1NiJ9.first.sig",
    );
    assert_token_used(
        &auths[GRAPH_REQUESTS..],
        "graph-token-for-eyJhbGciOiJSUzI1NiJ9.second.sig",
    );

    // The file disappears: an auth gap naming the file, no Graph call.
    std::fs::remove_file(&file).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let snap = connector.snapshot().await;
    let err = snap.token_error().expect("no token");
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message.contains("azure-identity-token"),
        "{}",
        err.message
    );
    assert_eq!(
        graph_authorizations(&server).await.len(),
        2 * GRAPH_REQUESTS
    );
}

/// The IMDS token response, as Microsoft documents it (`expires_in` is a string there).
fn imds_token(token: &str) -> ResponseTemplate {
    json(
        200,
        serde_json::json!({
            "access_token": token,
            "refresh_token": "",
            "expires_in": "3599",
            "expires_on": "1506484173",
            "not_before": "1506480273",
            "resource": "https://graph.microsoft.com",
            "token_type": "Bearer"
        }),
    )
}

const IMDS_PATH: &str = "/metadata/identity/oauth2/token";

fn managed(server: &MockServer, client_id: Option<&str>) -> MsGraphConfig {
    MsGraphConfig {
        client_id: String::new(),
        ..config(
            server,
            Credential::ManagedIdentity(ManagedIdentity {
                endpoint: format!("{}{IMDS_PATH}", server.uri()),
                client_id: client_id.map(str::to_owned),
                identity_header: None,
            }),
        )
    }
}

#[tokio::test]
async fn managed_identity_token_from_imds_is_used_on_graph_requests() {
    let user_assigned = "77777777-6666-5555-4444-333333333333";
    // User-assigned: `client_id` is sent.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(IMDS_PATH))
        .and(header("metadata", "true"))
        .and(query_param("api-version", "2018-02-01"))
        .and(query_param("resource", "https://graph.microsoft.com"))
        .and(query_param("client_id", user_assigned))
        .respond_with(imds_token("mi-user-assigned-token"))
        .expect(1)
        .mount(&server)
        .await;
    mount_graph(&server).await;
    let snap = poll(managed(&server, Some(user_assigned))).await;
    assert!(snap.token_error().is_none(), "{:?}", snap.errors());
    assert_token_used(
        &graph_authorizations(&server).await,
        "mi-user-assigned-token",
    );

    // System-assigned: no `client_id`.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(IMDS_PATH))
        .and(header("metadata", "true"))
        .and(query_param("resource", "https://graph.microsoft.com"))
        .and(query_param_is_missing("client_id"))
        .respond_with(imds_token("mi-system-token"))
        .expect(1)
        .mount(&server)
        .await;
    mount_graph(&server).await;
    let snap = poll(managed(&server, None)).await;
    assert!(snap.token_error().is_none(), "{:?}", snap.errors());
    assert_token_used(&graph_authorizations(&server).await, "mi-system-token");
}

#[tokio::test]
async fn app_service_identity_endpoint_with_its_header() {
    // App Service / Functions: IDENTITY_ENDPOINT with X-IDENTITY-HEADER; the response has
    // `expires_on` (epoch seconds) and no `expires_in`.
    let header_value = "d1a0c4a8-app-service-identity-header";
    let server = MockServer::start().await;
    let expires_on = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    Mock::given(method("GET"))
        .and(path("/msi/token"))
        .and(header("x-identity-header", header_value))
        .and(query_param("api-version", "2019-08-01"))
        .and(query_param("resource", "https://graph.microsoft.com"))
        .respond_with(json(
            200,
            serde_json::json!({
                "access_token": "app-service-token",
                "expires_on": expires_on.to_string(),
                "resource": "https://graph.microsoft.com",
                "token_type": "Bearer",
                "client_id": "5e1f0a3c-0000-0000-0000-000000000000"
            }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_graph(&server).await;
    let cfg = MsGraphConfig {
        client_id: String::new(),
        ..config(
            &server,
            Credential::ManagedIdentity(ManagedIdentity {
                endpoint: format!("{}/msi/token", server.uri()),
                client_id: None,
                identity_header: Some(header_value.into()),
            }),
        )
    };
    assert!(!format!("{cfg:?}").contains(header_value));
    let connector = MsGraphConnector::new(cfg, reqwest::Client::new()).unwrap();
    let snap = connector.snapshot().await;
    assert!(snap.token_error().is_none(), "{:?}", snap.errors());
    // Cached for its hour: the second poll asks no new token (`expect(1)`).
    connector.snapshot().await;
    let auths = graph_authorizations(&server).await;
    assert_token_used(&auths[..GRAPH_REQUESTS], "app-service-token");
    assert_token_used(&auths[GRAPH_REQUESTS..], "app-service-token");
}

#[tokio::test]
async fn managed_identity_errors_are_classified() {
    // IMDS's documented answer for an identity the VM does not have.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(IMDS_PATH))
        .respond_with(json(
            400,
            serde_json::json!({"error": "invalid_request", "error_description": "Identity not found"}),
        ))
        .mount(&server)
        .await;
    let snap = poll(managed(&server, Some("not-assigned"))).await;
    let err = snap.token_error().expect("no token");
    assert_eq!(err.kind, ErrorKind::Auth);
    assert_eq!(err.status, Some(400));
    assert!(
        err.message.contains("Identity not found"),
        "{}",
        err.message
    );

    // A 2xx body that is not a token: malformed. A redirect: refused, not followed.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(IMDS_PATH))
        .respond_with(json(200, serde_json::json!({"unexpected": true})))
        .mount(&server)
        .await;
    let snap = poll(managed(&server, None)).await;
    assert_eq!(snap.token_error().unwrap().kind, ErrorKind::Malformed);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(IMDS_PATH))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "http://example.com/"))
        .mount(&server)
        .await;
    let snap = poll(managed(&server, None)).await;
    assert_eq!(snap.token_error().unwrap().kind, ErrorKind::Redirect);
}

#[tokio::test]
async fn recording_with_a_certificate_holds_no_key_assertion_or_token() {
    use postured_connectors::msgraph::record_tenant;
    use postured_connectors::record::{PersonalData, Recorder};
    let server = MockServer::start().await;
    let audience = format!("{}{}", server.uri(), token_path());
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(AssertionVerifier::new(&RSA, &audience))
        .mount(&server)
        .await;
    mount_graph(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::new(dir.path(), PersonalData::Pseudonymise);
    let snap = record_tenant(
        config(&server, certificate(&RSA)),
        reqwest::Client::new(),
        recorder,
    )
    .await
    .unwrap();
    assert!(snap.token_error().is_none(), "{:?}", snap.errors());
    let sent = assertions(&server).await;
    let key_line = pem_body(&RSA.key_pem)[..40].to_owned();
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(
        files.len(),
        GRAPH_REQUESTS,
        "only the Graph responses are recorded"
    );
    for f in files {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        for secret in [sent[0].as_str(), &key_line, &access_token(), "Bearer"] {
            assert!(!text.contains(secret), "recording holds {secret}");
        }
    }
}
