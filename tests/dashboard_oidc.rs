//! The dashboard's OpenID Connect sign-in against the real OAuth2 server scripts/test.sh runs
//! (oauth2-mock-server, tests/support/oauth2/server.mjs; POSTURED_TEST_OAUTH2_URL): the
//! authorization-code flow with PKCE driven by an HTTP client that follows each redirect by
//! hand across the dashboard, the provider and back, carrying each origin's cookies.

#![allow(missing_docs)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use support::servers_required;
use tokio_util::sync::CancellationToken;

/// A browser: cookies by origin (`scheme://host:port`), redirects not followed.
struct Browser {
    http: reqwest::Client,
    jar: HashMap<String, HashMap<String, String>>,
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

fn origin(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    u.origin().ascii_serialization()
}

impl Browser {
    fn new() -> Browser {
        postured::http::install_crypto_provider();
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: HashMap::new(),
        }
    }

    async fn get(&mut self, url: &str) -> Answer {
        let o = origin(url);
        let mut req = self.http.get(url);
        if let Some(c) = self.jar.get(&o).filter(|c| !c.is_empty()) {
            let header: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(COOKIE, header.join("; "));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for sc in &set_cookies {
            let c = cookie::Cookie::parse(sc.clone()).unwrap();
            let jar = self.jar.entry(o.clone()).or_default();
            if c.max_age().is_some_and(|a| a.is_zero()) || c.value().is_empty() {
                jar.remove(c.name());
            } else {
                jar.insert(c.name().to_string(), c.value().to_string());
            }
        }
        Answer {
            status,
            location,
            set_cookies,
            body: resp.text().await.unwrap(),
        }
    }

    /// From the dashboard's sign-in button to the provider's redirect back: the callback URL
    /// (not yet requested). `claims`: the person signing in at the provider.
    async fn sign_in_at_provider(&mut self, base: &str, oauth: &str, claims: Value) -> String {
        let start = self
            .get(&format!("{base}/sign-in/oidc?next=%2Fassessments"))
            .await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let authorize = start.location.expect("a redirect to the provider");
        assert!(
            authorize.starts_with(&format!("{oauth}/authorize?")),
            "{authorize}"
        );
        let q: HashMap<String, String> = url::Url::parse(&authorize)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "postured-dashboard");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["redirect_uri"], format!("{base}/sign-in/oidc/callback"));
        assert!(q["scope"].split(' ').any(|s| s == "openid"));
        assert!(
            q["state"].len() >= 16 && q["nonce"].len() >= 32 && q["code_challenge"].len() == 43
        );
        // The person signs in at the provider (it approves at once).
        let claims: String =
            url::form_urlencoded::byte_serialize(claims.to_string().as_bytes()).collect();
        let back = self
            .get(&format!("{authorize}&postured_claims={claims}"))
            .await;
        assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
        let callback = back.location.expect("a redirect back to the dashboard");
        assert!(
            callback.starts_with(&format!("{base}/sign-in/oidc/callback?")),
            "{callback}"
        );
        callback
    }
}

/// A daemon on a free loopback port with `[server] public_url` its own URL and the dashboard's
/// OpenID Connect sign-in configured against `oauth`.
async fn daemon(oauth: &str, dir: &tempfile::TempDir) -> (String, CancellationToken) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "{base}"
[server.oidc]
issuer = "{oauth}"
audience = "api://postured-test"
roles = {{ "Postured.Read" = "reader", "Postured.Assess" = "assessor" }}
client_id = "postured-dashboard"
client_secret = {{ env = "TEST_OIDC_CLIENT_SECRET" }}
[store]
url = "sqlite://{db}"
"#,
        db = dir.path().join("postured.db").display()
    );
    let env = |k: &str| (k == "TEST_OIDC_CLIENT_SECRET").then(|| "not-a-real-secret".to_owned());
    let cfg = postured::config::Config::parse_with(
        &text,
        &[],
        &env,
        &postured::registry::Registry::builtin(),
        None,
    )
    .unwrap_or_else(|p| panic!("config: {p:?}"));
    let app = Arc::new(postured::assembly::build_app(cfg).await.unwrap());
    let cancel = CancellationToken::new();
    let (_, serve) = postured::server::bind(app, &format!("127.0.0.1:{port}"), cancel.clone())
        .await
        .unwrap();
    tokio::spawn(serve);
    (base, cancel)
}

fn oauth_url() -> Option<String> {
    let url = std::env::var("POSTURED_TEST_OAUTH2_URL").ok();
    if url.is_none() {
        assert!(
            !servers_required(),
            "POSTURED_TEST_OAUTH2_URL is required (scripts/test.sh starts it)"
        );
        eprintln!("skipped: POSTURED_TEST_OAUTH2_URL not set (run scripts/test.sh)");
    }
    url
}

#[tokio::test]
async fn a_person_signs_in_with_the_provider_and_gets_a_session_with_the_mapped_role() {
    let Some(oauth) = oauth_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (base, cancel) = daemon(&oauth, &dir).await;
    let mut browser = Browser::new();

    let page = browser
        .get(&format!("{base}/sign-in?next=%2Fassessments"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Sign in with 127.0.0.1")
            && page
                .body
                .contains("href=\"/sign-in/oidc?next=%2Fassessments\""),
        "{}",
        page.body
    );

    let callback = browser
        .sign_in_at_provider(
            &base,
            &oauth,
            json!({"sub": "alice", "roles": ["Other", "Postured.Assess"]}),
        )
        .await;
    let done = browser.get(&callback).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body
            .contains("<meta http-equiv=\"refresh\" content=\"0;url=/assessments\">"),
        "{}",
        done.body
    );
    assert!(
        done.set_cookies
            .iter()
            .any(|c| c.starts_with("postured_session=") && c.contains("SameSite=Strict")),
        "{:?}",
        done.set_cookies
    );
    // The code never reaches the page.
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert!(!done.body.contains(&code));

    // The session: the ID token's subject with the mapped (highest) role.
    let assessments = browser.get(&format!("{base}/assessments")).await;
    assert_eq!(assessments.status, StatusCode::OK, "{}", assessments.body);
    assert!(
        assessments.body.contains("oidc:alice (assessor)"),
        "{}",
        assessments.body
    );

    // Replay: the same callback again is refused (the state was used), no session is made.
    let mut other = Browser::new();
    other.jar = browser.jar.clone();
    other
        .jar
        .get_mut(&origin(&base))
        .unwrap()
        .remove("postured_session");
    let replay = other.get(&callback).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    assert!(
        !replay
            .set_cookies
            .iter()
            .any(|c| c.starts_with("postured_session=")),
        "{:?}",
        replay.set_cookies
    );
    cancel.cancel();
}

#[tokio::test]
async fn state_mismatch_another_browser_provider_errors_and_no_role_are_refused() {
    let Some(oauth) = oauth_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (base, cancel) = daemon(&oauth, &dir).await;
    let no_session = |a: &Answer| {
        !a.set_cookies
            .iter()
            .any(|c| c.starts_with("postured_session="))
    };

    // A state that no sign-in started.
    let mut browser = Browser::new();
    let callback = browser
        .sign_in_at_provider(&base, &oauth, json!({"roles": ["Postured.Read"]}))
        .await;
    let mut u = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    u.query_pairs_mut().clear();
    for (k, v) in &pairs {
        let v = if k == "state" {
            format!("{v}x")
        } else {
            v.clone()
        };
        u.query_pairs_mut().append_pair(k, &v);
    }
    let mismatch = browser.get(u.as_str()).await;
    assert_eq!(
        mismatch.status,
        StatusCode::BAD_REQUEST,
        "{}",
        mismatch.body
    );
    assert!(
        mismatch
            .body
            .contains("does not belong to a sign-in in progress"),
        "{}",
        mismatch.body
    );
    assert!(no_session(&mismatch));

    // The right state, delivered to another browser (login CSRF): refused.
    let callback = browser
        .sign_in_at_provider(&base, &oauth, json!({"roles": ["Postured.Read"]}))
        .await;
    let elsewhere = Browser::new().get(&callback).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::BAD_REQUEST,
        "{}",
        elsewhere.body
    );
    assert!(
        elsewhere.body.contains("another browser"),
        "{}",
        elsewhere.body
    );
    assert!(no_session(&elsewhere));

    // The provider's refusal: its error code is shown.
    let callback = browser
        .sign_in_at_provider(&base, &oauth, json!({"roles": ["Postured.Read"]}))
        .await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let denied = browser
        .get(&format!(
            "{base}/sign-in/oidc/callback?state={state}&error=access_denied&error_description=%3Cscript%3E"
        ))
        .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED, "{}", denied.body);
    assert!(denied.body.contains("(access_denied)"), "{}", denied.body);
    assert!(!denied.body.contains("<script>"));
    assert!(no_session(&denied));

    // A person the provider knows but whose token carries no postured role.
    let callback = browser
        .sign_in_at_provider(&base, &oauth, json!({"roles": ["Other"]}))
        .await;
    let no_role = browser.get(&callback).await;
    assert_eq!(no_role.status, StatusCode::FORBIDDEN, "{}", no_role.body);
    assert!(
        no_role.body.contains("no postured role"),
        "{}",
        no_role.body
    );
    assert!(no_session(&no_role));
    cancel.cancel();
}

/// A private oauth2-mock-server (tests/support/oauth2/server.mjs) for a test that counts its
/// requests, so the other tests' requests to the shared one do not count; stopped on drop.
struct PrivateProvider {
    child: std::process::Child,
    url: String,
}

impl PrivateProvider {
    /// Started when the shared server runs (node and the npm packages are installed then).
    fn start() -> Option<PrivateProvider> {
        oauth_url()?;
        let mut child = std::process::Command::new("node")
            .args(["server.mjs", "0"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oauth2"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node runs server.mjs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let url = line.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line:?}");
        Some(PrivateProvider { child, url })
    }

    /// How many `GET path` requests the provider received so far.
    async fn gets(&self, path: &str) -> u64 {
        let counts: Value = reqwest::get(format!("{}/postured/requests", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        counts[format!("GET {path}")].as_u64().unwrap_or(0)
    }
}

impl Drop for PrivateProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sign-ins share the cached discovery document: two people signing in (each press of the
/// button, each ID token's key set) cost the provider one discovery request.
#[tokio::test]
async fn two_sign_ins_fetch_the_discovery_document_once() {
    let Some(provider) = PrivateProvider::start() else {
        return;
    };
    let oauth = provider.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let (base, cancel) = daemon(&oauth, &dir).await;
    for (sub, role) in [("alice", "Postured.Assess"), ("bob", "Postured.Read")] {
        let mut browser = Browser::new();
        let callback = browser
            .sign_in_at_provider(&base, &oauth, json!({"sub": sub, "roles": [role]}))
            .await;
        let done = browser.get(&callback).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        let page = browser.get(&format!("{base}/assessments")).await;
        assert!(page.body.contains(&format!("oidc:{sub}")), "{}", page.body);
    }
    assert_eq!(provider.gets("/authorize").await, 2, "two sign-ins");
    assert_eq!(
        provider.gets("/.well-known/openid-configuration").await,
        1,
        "one discovery request for both sign-ins and the key set"
    );
    cancel.cancel();
}
