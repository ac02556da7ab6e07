//! The credential keys of `kind = "msgraph"`: each form parses, and every missing piece or
//! conflict is a problem at its key path, reported together with the others.

use std::path::Path;

use super::credential::Credential;
use super::settings::MsGraphSettings;
use crate::settings::{ConfigProblem, SettingsContext};

const BASE: &str = "tenants[0].connectors[0]";
const IDS: &str = "tenant_id = \"t\"\nclient_id = \"c\"\n";

fn parse_in(
    text: &str,
    dir: Option<&Path>,
    resolve: bool,
) -> Result<MsGraphSettings, Vec<ConfigProblem>> {
    let env = |name: &str| match name {
        "SECRET" => Some("s3cr3t".to_owned()),
        "AZURE_FEDERATED_TOKEN_FILE" => Some("token".to_owned()),
        "IDENTITY_ENDPOINT" => Some("http://127.0.0.1:41234/msi/token".to_owned()),
        "IDENTITY_HEADER" => Some("app-service-header".to_owned()),
        _ => None,
    };
    let cx = SettingsContext {
        path: BASE,
        tenant: "t",
        env: &env,
        base_dir: dir,
        resolve_secrets: resolve,
    };
    MsGraphSettings::parse(text.parse().unwrap(), &cx)
}

fn problems(text: &str, dir: Option<&Path>) -> Vec<(String, String)> {
    parse_in(text, dir, true)
        .unwrap_err()
        .into_iter()
        .map(|p| (p.path.trim_start_matches(BASE).to_owned(), p.message))
        .collect()
}

fn paths(text: &str, dir: Option<&Path>) -> Vec<String> {
    problems(text, dir).into_iter().map(|(p, _)| p).collect()
}

/// An EC P-256 key and its self-signed certificate, written into `dir` as `key.pem` and
/// `cert.pem` (generated now, never committed).
fn write_identity(dir: &Path, name: &str) {
    let pair = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["postured-test".to_owned()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    std::fs::write(dir.join(format!("{name}-key.pem")), pair.serialize_pem()).unwrap();
    std::fs::write(dir.join(format!("{name}-cert.pem")), cert.pem()).unwrap();
}

#[test]
fn each_credential_form_parses() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path());
    write_identity(dir.path(), "a");
    std::fs::write(dir.path().join("token"), "eyJ.federated.token\n").unwrap();

    let s = parse_in(
        &format!("{IDS}client_secret = {{ env = \"SECRET\" }}"),
        d,
        true,
    )
    .unwrap();
    assert!(matches!(s.config.credential, Credential::Secret(_)));

    let text = format!(
        "{IDS}certificate = {{ key = {{ file = \"a-key.pem\" }}, certificate = {{ file = \"{}\" }} }}",
        dir.path().join("a-cert.pem").display()
    );
    // A relative key file is read from the configuration's directory.
    let s = parse_in(&text, d, true).unwrap();
    let Credential::Certificate(key) = &s.config.credential else {
        panic!("{:?}", s.config.credential)
    };
    assert_eq!(key.algorithm(), jsonwebtoken::Algorithm::ES256);
    let shown = format!("{s:?}");
    let key_pem = std::fs::read_to_string(dir.path().join("a-key.pem")).unwrap();
    assert!(
        !shown.contains(&key_pem.lines().nth(1).unwrap()[..30]),
        "{shown}"
    );
    assert!(!shown.contains("s3cr3t"));

    for form in ["\"token\"", "{ env = \"AZURE_FEDERATED_TOKEN_FILE\" }"] {
        let s = parse_in(&format!("{IDS}federated_token_file = {form}"), d, true).unwrap();
        assert!(
            matches!(&s.config.credential, Credential::FederatedToken(p) if p == &dir.path().join("token")),
            "{:?}",
            s.config.credential
        );
    }

    let s = parse_in("tenant_id = \"t\"\nmanaged_identity = {}", d, true).unwrap();
    let Credential::ManagedIdentity(mi) = &s.config.credential else {
        panic!()
    };
    assert_eq!(
        mi.endpoint,
        "http://169.254.169.254/metadata/identity/oauth2/token"
    );
    assert_eq!(mi.client_id, None);
    let s = parse_in(
        "tenant_id = \"t\"\nmanaged_identity = { client_id = \"u\", endpoint = \"http://127.0.0.1:9/token\" }",
        d,
        true,
    )
    .unwrap();
    let Credential::ManagedIdentity(mi) = &s.config.credential else {
        panic!()
    };
    assert_eq!(
        (mi.endpoint.as_str(), mi.client_id.as_deref()),
        ("http://127.0.0.1:9/token", Some("u"))
    );
    assert!(s.credential_resolved);
    assert!(mi.identity_header.is_none());

    // App Service: the endpoint and header from its variables; the header is redacted.
    let s = parse_in(
        "tenant_id = \"t\"\nmanaged_identity = { source = \"app_service\" }",
        d,
        true,
    )
    .unwrap();
    let Credential::ManagedIdentity(mi) = &s.config.credential else {
        panic!()
    };
    assert_eq!(mi.endpoint, "http://127.0.0.1:41234/msi/token");
    assert!(mi.identity_header.is_some());
    assert!(!format!("{s:?}").contains("app-service-header"));
}

#[test]
fn offline_commands_check_presence_but_read_nothing() {
    // Files that do not exist: not read when secrets are not resolved; the connector then
    // refuses to build (credential_resolved = false). A managed identity needs nothing.
    let text = format!(
        "{IDS}certificate = {{ key = {{ file = \"/nonexistent/k\" }}, certificate = {{ file = \"/nonexistent/c\" }} }}"
    );
    let s = parse_in(&text, None, false).unwrap();
    assert!(!s.credential_resolved);
    let s = parse_in(
        &format!("{IDS}federated_token_file = \"/nonexistent/t\""),
        None,
        false,
    )
    .unwrap();
    assert!(!s.credential_resolved);
    let s = parse_in("tenant_id = \"t\"\nmanaged_identity = {}", None, false).unwrap();
    assert!(s.credential_resolved);
    // Missing and conflicting credentials are problems all the same.
    assert_eq!(
        parse_in(IDS, None, false).unwrap_err()[0].path,
        format!("{BASE}.client_secret")
    );
}

#[test]
fn no_credential_is_one_problem_with_the_other_missing_keys() {
    let p = problems("", None);
    assert_eq!(
        p.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [".tenant_id", ".client_id", ".client_secret"]
    );
    let message = &p[2].1;
    for alternative in ["certificate", "federated_token_file", "managed_identity"] {
        assert!(message.contains(alternative), "{message}");
    }
}

#[test]
fn several_credentials_are_a_problem_at_each() {
    let two = format!("{IDS}client_secret = {{ env = \"SECRET\" }}\nfederated_token_file = \"/t\"");
    let p = problems(&two, None);
    assert_eq!(
        p,
        [
            (
                ".client_secret".to_owned(),
                "only one credential may be set; also set: federated_token_file".to_owned()
            ),
            (
                ".federated_token_file".to_owned(),
                "only one credential may be set; also set: client_secret".to_owned()
            ),
        ]
    );
    let all = "tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = { env = \"SECRET\" }\nfederated_token_file = \"/t\"\n\
         certificate = { key = { file = \"/k\" }, certificate = { file = \"/c\" } }\nmanaged_identity = {}";
    assert_eq!(
        paths(all, None),
        [
            ".client_secret",
            ".certificate",
            ".federated_token_file",
            ".managed_identity"
        ]
    );
    // Reported together with the other problems of the table.
    let with_others = format!("{two}\nrequest_timeout = \"0s\"");
    assert_eq!(
        paths(&with_others, None),
        [
            ".request_timeout",
            ".client_secret",
            ".federated_token_file"
        ]
    );
}

#[test]
fn managed_identity_problems() {
    let p = problems(
        "tenant_id = \"t\"\nclient_id = \"c\"\nmanaged_identity = { client_id = \"\", endpoint = \"http://imds.example.com/token\" }",
        None,
    );
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            ".client_id",
            ".managed_identity.client_id",
            ".managed_identity.endpoint"
        ]
    );
    assert!(p[0].1.contains("managed_identity.client_id"), "{}", p[0].1);
    assert!(p[2].1.contains("plain http"), "{}", p[2].1);
    // https anywhere is fine; an unknown key is a decode problem under its path.
    assert!(
        parse_in(
            "tenant_id = \"t\"\nmanaged_identity = { endpoint = \"https://id.example.com/token\" }",
            None,
            true
        )
        .is_ok()
    );
    assert_eq!(
        paths(
            "tenant_id = \"t\"\nmanaged_identity = { object_id = \"x\" }",
            None
        ),
        [".managed_identity.object_id"]
    );
}

#[test]
fn certificate_problems_name_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path());
    write_identity(dir.path(), "a");
    write_identity(dir.path(), "b");
    let cert = |key: &str, cert: &str| {
        format!(
            "{IDS}certificate = {{ key = {{ file = \"{key}\" }}, certificate = {{ file = \"{cert}\" }} }}"
        )
    };
    // Both files missing: both reported.
    let p = problems(&cert("missing-key.pem", "missing-cert.pem"), d);
    assert_eq!(
        p.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [".certificate.key", ".certificate.certificate"]
    );
    assert!(p[0].1.contains("missing-key.pem"), "{}", p[0].1);
    // A key of another certificate.
    let p = problems(&cert("a-key.pem", "b-cert.pem"), d);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, ".certificate");
    assert!(p[0].1.contains("does not belong"), "{}", p[0].1);
    // A certificate where the key should be, and the other way round.
    assert_eq!(
        paths(&cert("a-cert.pem", "a-cert.pem"), d),
        [".certificate.key"]
    );
    assert_eq!(
        paths(&cert("a-key.pem", "a-key.pem"), d),
        [".certificate.certificate"]
    );
    // A key only in the environment is fine too; a missing variable is named.
    assert_eq!(
        paths(
            &format!(
                "{IDS}certificate = {{ key = {{ env = \"NOPE\" }}, certificate = {{ file = \"a-cert.pem\" }} }}"
            ),
            d
        ),
        [".certificate.key"]
    );
    // A certificate table without its key.
    assert_eq!(
        paths(
            &format!("{IDS}certificate = {{ certificate = {{ file = \"a-cert.pem\" }} }}"),
            d
        ),
        [".certificate"]
    );
}

#[test]
fn federated_token_file_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = Some(dir.path());
    let p = problems(
        &format!("{IDS}federated_token_file = {{ env = \"UNSET_VAR\" }}"),
        d,
    );
    assert_eq!(p[0].0, ".federated_token_file");
    assert!(p[0].1.contains("UNSET_VAR"));
    let p = problems(&format!("{IDS}federated_token_file = \"absent\""), d);
    assert_eq!(p[0].0, ".federated_token_file");
    assert!(p[0].1.contains("absent"), "{}", p[0].1);
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let p = problems(&format!("{IDS}federated_token_file = \"empty\""), d);
    assert!(p[0].1.contains("is empty"), "{}", p[0].1);
}
