//! The `http_json` kind over real loopback HTTP (wiremock): each auth kind (the credential is
//! actually sent; a secret never reaches a gap or an error), each paging kind with its page
//! cap, declared types checked (a wrong-type answer is a `malformed` gap of that signal only),
//! and configuration problems with their key paths.

use chrono::Utc;
use postured_connectors::http::redirect_policy;
use postured_connectors::http_json::{HttpJsonConnector, HttpJsonSettings};
use postured_connectors::record::Mode;
use postured_connectors::settings::{ConfigProblem, SettingsContext};
use postured_connectors::{Connector, PollContext, SignalValue, Snapshot};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "s3cret-value-0042";

fn env(name: &str) -> Option<String> {
    match name {
        "HJ_SECRET" => Some(SECRET.to_owned()),
        "HJ_PASSWORD" => Some("s3cret".to_owned()),
        "HJ_CLIENT_SECRET" => Some("csecret-value".to_owned()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<HttpJsonSettings, Vec<ConfigProblem>> {
    let cx = SettingsContext {
        path: "tenants[0].connectors[0]",
        tenant: "acme",
        env: &env,
        base_dir: None,
        resolve_secrets: true,
    };
    HttpJsonSettings::parse(text.parse().expect("toml"), &cx)
}

fn connector(text: &str) -> HttpJsonConnector {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = parse(text).expect("valid settings");
    let client = reqwest::Client::builder()
        .redirect(redirect_policy())
        .build()
        .unwrap();
    HttpJsonConnector::new(settings, client, Mode::Live).expect("connector")
}

async fn poll(text: &str) -> Snapshot {
    connector(text)
        .poll(&PollContext {
            observed_at: Utc::now(),
        })
        .await
}

fn value(s: &Snapshot, key: &str) -> Option<SignalValue> {
    s.signals
        .iter()
        .find(|x| x.key == key)
        .map(|x| x.value.clone())
}

/// The snapshot's gaps and errors, as text: never contains the secret.
fn assert_no_secret(s: &Snapshot) {
    let text = format!("{:?} {:?}", s.gaps, s.errors);
    for secret in [SECRET, "s3cret", "csecret-value", "tok-abc"] {
        assert!(!text.contains(secret), "secret in {text}");
    }
}

fn quick(extra: &str, url: &str) -> String {
    format!(
        "name = \"t\"\nurl = \"{url}\"\nmax_retries = 0\nrequest_timeout = \"5s\"\n{extra}\n\
         [signals]\ncount = {{ expr = \"length(@)\", type = \"number\" }}\n"
    )
}

#[tokio::test]
async fn no_auth_single_response_signals_of_each_type() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "login": "acme",
            "two_factor_requirement_enabled": true,
            "default_repository_permission": "read",
            "plan": { "seats": 5, "filled_seats": 4 }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let s = poll(&format!(
        r#"
name = "github_org"
url = "{}/orgs/acme"
[signals]
two_factor_required = {{ expr = "two_factor_requirement_enabled", type = "bool" }}
default_permission = {{ expr = "default_repository_permission", type = "text" }}
"seats.filled" = {{ expr = "plan.filled_seats", type = "number" }}
"#,
        server.uri()
    ))
    .await;
    assert!(s.gaps.is_empty(), "{:?}", s.gaps);
    assert_eq!(
        value(&s, "http_json.github_org.two_factor_required"),
        Some(SignalValue::Bool(true))
    );
    assert_eq!(
        value(&s, "http_json.github_org.default_permission"),
        Some(SignalValue::Text("read".into()))
    );
    // A dotted signal name (quoted in TOML) is a deeper key.
    assert_eq!(
        value(&s, "http_json.github_org.seats.filled"),
        Some(SignalValue::Number(4.0))
    );
}

#[test]
fn jmespath_errors_are_config_problems() {
    let problems = parse(
        r#"
name = "t"
url = "https://api.example.com/x"
paging = { kind = "link_header" }
[signals]
ok = { expr = "length(@)", type = "number" }
broken = { expr = "items[?enabled", type = "number" }
unknown_fn = { expr = "no_such_function(@)", type = "number" }
wrongtype = { expr = "@", type = "integer" }
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    // serde stops at the first decoding error: the unknown type name.
    assert_eq!(paths, ["tenants[0].connectors[0].signals.wrongtype.type"]);

    let problems = parse(
        r#"
name = "Bad-Name"
url = "http://api.example.com/x"
auth = { kind = "bearer", token = { env = "UNSET_VAR" } }
paging = { kind = "link_header" }
max_pages = 0
[signals]
ok = { expr = "length(@)", type = "number" }
broken = { expr = "items[?enabled", type = "number" }
unknown_fn = { expr = "length([?starts_with(name, 'a') && no_such_function(@)])", type = "number" }
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "tenants[0].connectors[0].name",
        "tenants[0].connectors[0].url",
        "tenants[0].connectors[0].auth.token",
        "tenants[0].connectors[0].items",
        "tenants[0].connectors[0].max_pages",
        "tenants[0].connectors[0].signals.broken.expr",
        "tenants[0].connectors[0].signals.unknown_fn.expr",
    ] {
        assert!(paths.contains(&want), "missing {want} in {problems:#?}");
    }
    assert!(!paths.contains(&"tenants[0].connectors[0].signals.ok.expr"));
    let broken = problems
        .iter()
        .find(|p| p.path.ends_with("broken.expr"))
        .unwrap();
    assert!(broken.message.contains("column"), "{}", broken.message);
    let token = problems
        .iter()
        .find(|p| p.path.ends_with("auth.token"))
        .unwrap();
    assert!(token.message.contains("UNSET_VAR"), "{}", token.message);
}

#[tokio::test]
async fn bearer_token_is_sent_and_a_401_is_a_gap_without_the_secret() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ok"))
        .and(header("authorization", format!("Bearer {SECRET}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1, 2, 3])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/denied"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .mount(&server)
        .await;
    let auth = r#"auth = { kind = "bearer", token = { env = "HJ_SECRET" } }"#;
    let s = poll(&quick(auth, &format!("{}/ok", server.uri()))).await;
    assert_eq!(
        value(&s, "http_json.t.count"),
        Some(SignalValue::Number(3.0))
    );

    let s = poll(&quick(auth, &format!("{}/denied", server.uri()))).await;
    assert!(s.signals.is_empty());
    assert_eq!(s.gaps.len(), 1);
    assert_eq!(s.gaps[0].prefix, "http_json.t.");
    assert_eq!(s.gaps[0].kind, "unauthorized");
    assert_no_secret(&s);
    // Debug of the settings redacts the secret.
    let debug = format!("{:?}", parse(&quick(auth, "https://x.example/")).unwrap());
    assert!(!debug.contains(SECRET), "{debug}");
}

#[tokio::test]
async fn basic_and_custom_header_credentials_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/basic"))
        .and(header("authorization", "Basic YWxpY2U6czNjcmV0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/key"))
        .and(header("x-api-key", SECRET))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1, 2])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let basic =
        r#"auth = { kind = "basic", username = "alice", password = { env = "HJ_PASSWORD" } }"#;
    let s = poll(&quick(basic, &format!("{}/basic", server.uri()))).await;
    assert_eq!(
        value(&s, "http_json.t.count"),
        Some(SignalValue::Number(1.0))
    );
    let key = r#"auth = { kind = "header", name = "X-Api-Key", value = { env = "HJ_SECRET" } }"#;
    let s = poll(&quick(key, &format!("{}/key", server.uri()))).await;
    assert_eq!(
        value(&s, "http_json.t.count"),
        Some(SignalValue::Number(2.0))
    );
    // Without the header, the server refuses: a forbidden gap, no secret in it.
    let s = poll(&quick("", &format!("{}/key", server.uri()))).await;
    assert_eq!(s.gaps[0].kind, "forbidden");
    assert_no_secret(&s);
}

#[tokio::test]
async fn oauth2_client_credentials_token_is_requested_and_used() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("authorization", "Basic Y2lkOmNzZWNyZXQtdmFsdWU="))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("scope=read%3Aorg"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "tok-abc", "token_type": "Bearer", "expires_in": 3600
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/data"))
        .and(header("authorization", "Bearer tok-abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1, 2, 3, 4])))
        .expect(2)
        .mount(&server)
        .await;
    let auth = format!(
        r#"auth = {{ kind = "oauth2", token_url = "{}/oauth/token", client_id = "cid", client_secret = {{ env = "HJ_CLIENT_SECRET" }}, scopes = ["read:org"] }}"#,
        server.uri()
    );
    let c = connector(&quick(&auth, &format!("{}/data", server.uri())));
    let cx = PollContext {
        observed_at: Utc::now(),
    };
    for _ in 0..2 {
        // The second poll reuses the cached token (the token mock expects one call).
        let s = c.poll(&cx).await;
        assert_eq!(
            value(&s, "http_json.t.count"),
            Some(SignalValue::Number(4.0))
        );
    }
}

#[tokio::test]
async fn oauth2_rejected_client_is_an_unauthorized_gap_and_no_data_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": "bad secret csecret-value"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(0)
        .mount(&server)
        .await;
    let auth = format!(
        r#"auth = {{ kind = "oauth2", token_url = "{}/oauth/token", client_id = "cid", client_secret = {{ env = "HJ_CLIENT_SECRET" }}, client_auth = "body" }}"#,
        server.uri()
    );
    let s = poll(&quick(&auth, &format!("{}/data", server.uri()))).await;
    assert_eq!(s.gaps.len(), 1);
    assert_eq!(s.gaps[0].kind, "unauthorized");
    assert_eq!(s.errors[0].endpoint, "/oauth/token");
    assert_no_secret(&s);
}

/// Three pages of users; `enabled` on some.
fn users(page: usize) -> serde_json::Value {
    json!([
        { "id": page * 10 + 1, "enabled": true },
        { "id": page * 10 + 2, "enabled": page != 2 }
    ])
}

const USER_SIGNALS: &str = r#"
[signals]
total = { expr = "length(@)", type = "number" }
disabled = { expr = "length([?!enabled])", type = "number" }
"#;

#[tokio::test]
async fn next_link_paging_concatenates_items_and_stops_at_max_pages() {
    let server = MockServer::start().await;
    for p in 1..=3usize {
        let next = if p < 3 {
            json!(format!("/users?page={}", p + 1))
        } else {
            json!(null)
        };
        Mock::given(method("GET"))
            .and(path("/users"))
            .and(query_param("page", p.to_string().as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "data": users(p), "links": { "next": next } })),
            )
            .mount(&server)
            .await;
    }
    let cfg = |max: usize| {
        format!(
            "name = \"u\"\nurl = \"{}/users?page=1\"\nitems = \"data\"\nmax_pages = {max}\n\
             paging = {{ kind = \"next_link\", path = \"links.next\" }}\n{USER_SIGNALS}",
            server.uri()
        )
    };
    let s = poll(&cfg(50)).await;
    assert!(s.gaps.is_empty(), "{:?}", s.gaps);
    assert_eq!(
        value(&s, "http_json.u.total"),
        Some(SignalValue::Number(6.0))
    );
    assert_eq!(
        value(&s, "http_json.u.disabled"),
        Some(SignalValue::Number(1.0))
    );
    let s = poll(&cfg(2)).await;
    assert!(s.signals.is_empty(), "a partial read is never judged");
    assert_eq!(s.gaps[0].prefix, "http_json.u.");
    assert_eq!(s.gaps[0].kind, "other");
    assert!(
        s.gaps[0].reason.contains("max_pages"),
        "{}",
        s.gaps[0].reason
    );
}

#[tokio::test]
async fn link_header_paging_and_a_foreign_origin_link_is_refused() {
    let server = MockServer::start().await;
    let base = server.uri();
    for p in 1..=3usize {
        let mut resp = ResponseTemplate::new(200).set_body_json(users(p));
        if p < 3 {
            resp = resp.insert_header(
                "link",
                format!(
                    "<{base}/members?page={}>; rel=\"next\", <{base}/members?page=3>; rel=\"last\", <{base}/about>",
                    p + 1
                )
                .as_str(),
            );
        }
        Mock::given(method("GET"))
            .and(path("/members"))
            .and(query_param("page", p.to_string().as_str()))
            .respond_with(resp)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/evil"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(users(1))
                .insert_header("link", "<https://elsewhere.example/steal>; rel=\"next\""),
        )
        .mount(&server)
        .await;
    let cfg = |url: &str, max: usize| {
        format!(
            "name = \"m\"\nurl = \"{base}{url}\"\nitems = \"@\"\nmax_pages = {max}\n\
             paging = {{ kind = \"link_header\" }}\n{USER_SIGNALS}"
        )
    };
    let s = poll(&cfg("/members?page=1", 50)).await;
    assert!(s.gaps.is_empty(), "{:?}", s.gaps);
    assert_eq!(
        value(&s, "http_json.m.total"),
        Some(SignalValue::Number(6.0))
    );
    let s = poll(&cfg("/members?page=1", 1)).await;
    assert_eq!(s.gaps[0].kind, "other");
    let s = poll(&cfg("/evil", 50)).await;
    assert!(s.signals.is_empty());
    assert_eq!(s.gaps[0].kind, "redirect");
}

#[tokio::test]
async fn offset_paging_stops_at_a_short_page_and_at_max_pages() {
    let server = MockServer::start().await;
    for (offset, n) in [(0usize, 2usize), (2, 2), (4, 1)] {
        let items: Vec<_> = (0..n)
            .map(|i| json!({ "id": offset + i, "enabled": offset + i != 3 }))
            .collect();
        Mock::given(method("GET"))
            .and(path("/items"))
            .and(query_param("offset", offset.to_string().as_str()))
            .and(query_param("limit", "2"))
            .and(query_param("q", "x"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "results": items })))
            .mount(&server)
            .await;
    }
    let cfg = |max: usize| {
        format!(
            "name = \"o\"\nurl = \"{}/items?q=x&offset=99\"\nitems = \"results\"\nmax_pages = {max}\n\
             paging = {{ kind = \"offset\", param = \"offset\", size_param = \"limit\", size = 2 }}\n{USER_SIGNALS}",
            server.uri()
        )
    };
    let s = poll(&cfg(50)).await;
    assert!(s.gaps.is_empty(), "{:?}", s.gaps);
    assert_eq!(
        value(&s, "http_json.o.total"),
        Some(SignalValue::Number(5.0))
    );
    assert_eq!(
        value(&s, "http_json.o.disabled"),
        Some(SignalValue::Number(1.0))
    );
    let s = poll(&cfg(2)).await;
    assert_eq!(s.gaps[0].kind, "other");
}

#[tokio::test]
async fn cursor_paging_follows_the_cursor_until_it_is_empty() {
    let server = MockServer::start().await;
    let pages = [(None, "c2"), (Some("c2"), "c3"), (Some("c3"), "")];
    for (i, (cursor, next)) in pages.iter().enumerate() {
        let mut m = Mock::given(method("GET")).and(path("/list"));
        if let Some(c) = cursor {
            m = m.and(query_param("cursor", *c));
        }
        m.respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "members": users(i + 1),
            "response_metadata": { "next_cursor": next }
        })))
        .with_priority(if cursor.is_some() { 1 } else { 5 })
        .mount(&server)
        .await;
    }
    let cfg = |max: usize| {
        format!(
            "name = \"c\"\nurl = \"{}/list\"\nitems = \"members\"\nmax_pages = {max}\n\
             paging = {{ kind = \"cursor\", param = \"cursor\", path = \"response_metadata.next_cursor\" }}\n{USER_SIGNALS}",
            server.uri()
        )
    };
    let s = poll(&cfg(50)).await;
    assert!(s.gaps.is_empty(), "{:?}", s.gaps);
    assert_eq!(
        value(&s, "http_json.c.total"),
        Some(SignalValue::Number(6.0))
    );
    let s = poll(&cfg(2)).await;
    assert_eq!(s.gaps[0].kind, "other");
}

#[tokio::test]
async fn a_wrong_type_answer_is_a_malformed_gap_of_that_signal_only() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/org"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "two_factor_requirement_enabled": "yes",
            "members": 12
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/notjson"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/object"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": { "a": 1 } })))
        .mount(&server)
        .await;
    let cfg = |url: &str, items: &str| {
        format!(
            r#"
name = "org"
url = "{}{url}"
{items}
[signals]
two_factor = {{ expr = "two_factor_requirement_enabled", type = "bool" }}
missing = {{ expr = "no_such_field", type = "number" }}
members = {{ expr = "members", type = "number" }}
"#,
            server.uri()
        )
    };
    let s = poll(&cfg("/org", "")).await;
    assert_eq!(
        value(&s, "http_json.org.members"),
        Some(SignalValue::Number(12.0))
    );
    assert_eq!(value(&s, "http_json.org.two_factor"), None);
    let prefixes: Vec<&str> = s.gaps.iter().map(|g| g.prefix.as_str()).collect();
    // Signals are evaluated in name order.
    assert_eq!(
        prefixes,
        ["http_json.org.missing.", "http_json.org.two_factor."]
    );
    assert!(s.gaps.iter().all(|g| g.kind == "malformed"));
    assert!(s.gaps[0].reason.contains("null"), "{}", s.gaps[0].reason);
    assert!(s.gaps[1].reason.contains("string"), "{}", s.gaps[1].reason);

    // A body that is not JSON, or items that are not an array: the whole namespace.
    let s = poll(&cfg("/notjson", "")).await;
    assert_eq!(s.gaps.len(), 1);
    assert_eq!(
        (s.gaps[0].prefix.as_str(), s.gaps[0].kind.as_str()),
        ("http_json.org.", "malformed")
    );
    let s = poll(&cfg("/object", "items = \"data\"")).await;
    assert_eq!(s.gaps[0].prefix, "http_json.org.");
    assert!(
        s.gaps[0].reason.contains("not an array"),
        "{}",
        s.gaps[0].reason
    );
}

#[tokio::test]
async fn the_byte_cap_and_throttling_are_the_shared_clients() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(vec![1; 1000])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .mount(&server)
        .await;
    let s = poll(&quick(
        "max_response_bytes = 100",
        &format!("{}/big", server.uri()),
    ))
    .await;
    assert_eq!(s.gaps[0].kind, "too_large");
    let s = poll(&quick("", &format!("{}/slow", server.uri()))).await;
    assert_eq!(s.gaps[0].kind, "throttled");
}
