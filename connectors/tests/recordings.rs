//! Recordings: private files with pseudonymised personal data that still replay (issue 8 row
//! 19), and hostile recording files (truncated, empty, huge, deep, wrong-type, wrong-encoding,
//! not a file) that each end in a classified error with bounded memory.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postured_connectors::msgraph::{
    MsGraphConfig, MsGraphConnector, MsGraphSnapshot, record_tenant, signals,
};
use postured_connectors::pseudonym::Pseudonymiser;
use postured_connectors::record::{PersonalData, Recorder};
use postured_connectors::{CollectionError, ErrorKind};
use secrecy::SecretString;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "00000001-0001-0001-0001-000000000001";

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_owned(), "application/json")
}

/// A Graph with the six official examples and a token endpoint; `updatedBy` of the control
/// profile filled in with an address, as a real tenant has it.
async fn graph() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(json(&fixture("entra-oauth/token-response-success.json")))
        .mount(&server)
        .await;
    let profiles = fixture("msgraph/secureScoreControlProfiles-list.json").replacen(
        r#""updatedBy": null"#,
        r#""updatedBy": "MeganB@Contoso.com""#,
        1,
    );
    assert!(profiles.contains("MeganB@Contoso.com"));
    for (p, body) in [
        (
            "/v1.0/security/secureScores",
            fixture("msgraph/secureScores-list.json"),
        ),
        ("/v1.0/security/secureScoreControlProfiles", profiles),
        (
            "/v1.0/reports/authenticationMethods/userRegistrationDetails",
            fixture("msgraph/userRegistrationDetails-list.json"),
        ),
        (
            "/v1.0/identity/conditionalAccess/policies",
            fixture("msgraph/conditionalAccessPolicies-list.json"),
        ),
        (
            "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy",
            fixture("msgraph/identitySecurityDefaultsEnforcementPolicy-get.json"),
        ),
        (
            "/v1.0/security/dataSecurityAndGovernance/sensitivityLabels",
            fixture("msgraph/sensitivityLabels-list-v1.json"),
        ),
        (
            "/v1.0/subscribedSkus",
            fixture("msgraph/subscribedSkus-list.json"),
        ),
        (
            "/v1.0/policies/authenticationMethodsPolicy",
            fixture("msgraph/authenticationMethodsPolicy-get-featureSettings.json"),
        ),
        (
            "/v1.0/policies/authorizationPolicy",
            fixture("msgraph/authorizationPolicy-get.json"),
        ),
        (
            "/v1.0/policies/adminConsentRequestPolicy",
            fixture("msgraph/adminConsentRequestPolicy-get.json"),
        ),
        ("/v1.0/domains", fixture("msgraph/domains-list.json")),
        (
            "/v1.0/roleManagement/directory/roleAssignments",
            fixture("msgraph/roleAssignments-list-expand-principal.json"),
        ),
        (
            "/v1.0/roleManagement/directory/roleEligibilityScheduleInstances",
            fixture("msgraph/roleEligibilityScheduleInstances-list.json"),
        ),
        (
            "/v1.0/roleManagement/directory/roleAssignmentScheduleInstances",
            fixture("msgraph/roleAssignmentScheduleInstances-list.json"),
        ),
        (
            "/v1.0/policies/roleManagementPolicyAssignments",
            fixture("msgraph/roleManagementPolicyAssignments-list.json"),
        ),
        ("/v1.0/users", fixture("msgraph/users-list.json")),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(json(&body))
            .mount(&server)
            .await;
    }
    server
}

fn config(server: &MockServer) -> MsGraphConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    MsGraphConfig {
        authority: server.uri(),
        graph_base: format!("{}/v1.0", server.uri()),
        request_timeout: Duration::from_secs(5),
        max_retries: 0,
        ..MsGraphConfig::new(TENANT, "app", SecretString::from("s3cret-value"))
    }
}

fn replay(dir: &Path, max_response_bytes: u64) -> MsGraphSnapshot {
    let _ = rustls::crypto::ring::default_provider().install_default();
    block_on(
        MsGraphConnector::new(
            MsGraphConfig {
                max_response_bytes,
                ..MsGraphConfig::replay(TENANT, dir)
            },
            reqwest::Client::new(),
        )
        .unwrap(),
    )
}

/// Run a replay snapshot to completion on a fresh current-thread runtime (replay does no
/// network IO).
fn block_on(c: MsGraphConnector) -> MsGraphSnapshot {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(c.snapshot())
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Personal values of the official examples (and the `updatedBy` added in [`graph`]).
const PERSONAL: [&str; 8] = [
    "AlexW@Contoso.com",
    "Alex Wilber",
    "86462606-fde0-4fc4-9e0c-a20eb73e54c6",
    "AllanD@Contoso.com",
    "Allan Deyoung",
    "BiancaP@Contoso.com",
    "Bianca Pisani",
    "MeganB@Contoso.com",
];

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Issue 8 row 19: recordings are written with mode 0600 (also over an older 0644 file) into a
/// directory created 0700, with user principal names, display names, addresses and user ids
/// pseudonymised by default; the recording replays to exactly the live poll's signals.
/// `--keep-personal-data` (`PersonalData::Keep`) writes them as received, still 0600.
#[tokio::test]
async fn recordings_are_private_and_pseudonymised_and_still_replay() {
    use std::os::unix::fs::PermissionsExt;
    let server = graph().await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("rec");
    // An older, world-readable recording of one endpoint is replaced, not reused.
    std::fs::create_dir(&dir).unwrap();
    let old = dir.join("v1.0_identity_conditionalAccess_policies.json");
    std::fs::write(&old, "{}").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();

    let live = record_tenant(
        config(&server),
        reqwest::Client::new(),
        Recorder::new(&dir, PersonalData::Pseudonymise),
    )
    .await
    .unwrap();
    assert!(live.errors().is_empty(), "{:?}", live.errors());
    let written = files(&dir);
    assert_eq!(written.len(), MsGraphSnapshot::ENDPOINTS, "{written:?}");
    for f in &written {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
        let text = std::fs::read_to_string(f).unwrap();
        for p in PERSONAL {
            assert!(!text.contains(p), "{p} in {}", f.display());
        }
    }
    let users = std::fs::read_to_string(
        dir.join("v1.0_reports_authenticationMethods_userRegistrationDetails.json"),
    )
    .unwrap();
    assert_eq!(users.matches("\"pseudonym:").count(), 9, "{users}");
    assert!(users.contains("\"isMfaRegistered\": true"));

    let replayed = tokio::task::spawn_blocking(move || replay(&dir, 1 << 20))
        .await
        .unwrap();
    assert!(replayed.errors().is_empty(), "{:?}", replayed.errors());
    assert_eq!(
        signals::normalise(&replayed, &Default::default(), at()).signals,
        signals::normalise(&live, &Default::default(), at()).signals
    );

    // Opting out keeps the data as received, in private files too, in a new 0700 directory.
    let kept = root.path().join("kept/deeper");
    record_tenant(
        config(&server),
        reqwest::Client::new(),
        Recorder::new(&kept, PersonalData::Keep),
    )
    .await
    .unwrap();
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let users = std::fs::read_to_string(
        kept.join("v1.0_reports_authenticationMethods_userRegistrationDetails.json"),
    )
    .unwrap();
    assert!(users.contains("AlexW@Contoso.com") && !users.contains("pseudonym:"));
    for f in files(&kept) {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
}

/// One recording run shares one key: the same user gets the same pseudonym in every file (and
/// a known key gives known pseudonyms).
#[tokio::test]
async fn pseudonyms_agree_within_a_recording() {
    let server = graph().await;
    let dir = tempfile::tempdir().unwrap();
    let key = b"0123456789abcdef0123456789abcdef";
    record_tenant(
        config(&server),
        reqwest::Client::new(),
        Recorder::with_pseudonymiser(dir.path(), Pseudonymiser::with_key(key)),
    )
    .await
    .unwrap();
    let users = std::fs::read_to_string(
        dir.path()
            .join("v1.0_reports_authenticationMethods_userRegistrationDetails.json"),
    )
    .unwrap();
    let p = Pseudonymiser::with_key(key);
    assert!(users.contains(&p.pseudonym("AlexW@Contoso.com")));
    assert!(users.contains(&p.pseudonym("86462606-fde0-4fc4-9e0c-a20eb73e54c6")));
}

const SECURITY_DEFAULTS_FILE: &str = "v1.0_policies_identitySecurityDefaultsEnforcementPolicy.json";
const SECURITY_DEFAULTS_LINE: &str = "GET /v1.0/policies/identitySecurityDefaultsEnforcementPolicy";

/// Replay `content` as the security-defaults recording (with a 1 MiB cap, so recordings up to
/// 4 MiB are read) and return that endpoint's error; the other five, missing, are
/// `replay_missing`.
fn replay_hostile(write: impl FnOnce(&Path)) -> CollectionError {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join(SECURITY_DEFAULTS_FILE));
    let s = replay(dir.path(), 1 << 20);
    assert_eq!(
        s.secure_score.as_ref().unwrap_err().kind,
        ErrorKind::ReplayMissing
    );
    s.security_defaults.unwrap_err()
}

/// Writes one hostile recording file at the given path.
type WriteFile<'a> = Box<dyn FnOnce(&Path) + 'a>;

fn bytes(content: impl AsRef<[u8]>) -> impl FnOnce(&Path) {
    move |p: &Path| std::fs::write(p, content).unwrap()
}

/// Hostile-input suite, recordings: every malformed recording file is a classified error of its
/// endpoint (never a panic or an abort), and a huge or endless one is refused without reading
/// more than the cap (a 64 MiB sparse file, `/dev/zero`).
#[test]
fn hostile_recordings_end_in_classified_errors() {
    let valid = fixture("msgraph/identitySecurityDefaultsEnforcementPolicy-get.json");
    let good =
        format!(r#"{{"request": "{SECURITY_DEFAULTS_LINE}", "status": 200, "body": {valid}}}"#);
    let malformed: Vec<(&str, WriteFile<'_>)> = vec![
        ("empty", Box::new(bytes(""))),
        ("truncated", Box::new(bytes(&good[..good.len() / 2]))),
        (
            "not JSON",
            Box::new(bytes("request: GET /x\nstatus: 200\n")),
        ),
        (
            "deep",
            Box::new(bytes(format!(
                r#"{{"request": "{SECURITY_DEFAULTS_LINE}", "status": 200, "body": {}{}}}"#,
                "[".repeat(200_000),
                "]".repeat(200_000)
            ))),
        ),
        (
            "status of the wrong type",
            Box::new(bytes(format!(
                r#"{{"request": "{SECURITY_DEFAULTS_LINE}", "status": "200", "body": {{}}}}"#
            ))),
        ),
        (
            "status out of range",
            Box::new(bytes(format!(
                r#"{{"request": "{SECURITY_DEFAULTS_LINE}", "status": 70000, "body": {{}}}}"#
            ))),
        ),
        (
            "body of the wrong type",
            Box::new(bytes(format!(
                r#"{{"request": "{SECURITY_DEFAULTS_LINE}", "status": 200, "body": [1, 2]}}"#
            ))),
        ),
        ("a JSON array", Box::new(bytes("[1, 2, 3]"))),
        (
            "UTF-16",
            Box::new(bytes({
                let mut v = vec![0xFF, 0xFE];
                v.extend(good.encode_utf16().flat_map(u16::to_le_bytes));
                v
            })),
        ),
        (
            "invalid UTF-8",
            Box::new(bytes({
                let mut v = good.clone().into_bytes();
                let at = v.iter().position(|&b| b == b'S').unwrap();
                v[at] = 0xE9; // a Latin-1 'é' in the middle of a string
                v
            })),
        ),
        (
            "UTF-8 with a byte-order mark",
            Box::new(bytes(
                [b"\xEF\xBB\xBF".as_slice(), good.as_bytes()].concat(),
            )),
        ),
        (
            "a directory",
            Box::new(|p: &Path| std::fs::create_dir(p).unwrap()),
        ),
    ];
    for (what, write) in malformed {
        let e = replay_hostile(write);
        assert_eq!(e.kind, ErrorKind::Malformed, "{what}: {e}");
    }
    // Too large: a 64 MiB sparse file (over 4 x the 1 MiB cap) and an endless special file.
    let e = replay_hostile(|p| std::fs::File::create(p).unwrap().set_len(64 << 20).unwrap());
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    let e = replay_hostile(|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap());
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    // The well-formed recording is read (the suite's control).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SECURITY_DEFAULTS_FILE), &good).unwrap();
    assert!(
        replay(dir.path(), 1 << 20)
            .security_defaults
            .unwrap()
            .is_enabled
    );
}
