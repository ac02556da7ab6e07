//! Hostile sources over real loopback HTTP (issue 8 rows 1-3): redirects of the token request
//! and of Graph requests to another origin, and response bodies past the byte cap (announced
//! or streamed without end).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use postured_connectors::ErrorKind;
use postured_connectors::http::redirect_policy;
use postured_connectors::msgraph::{MsGraphConfig, MsGraphConnector, endpoints};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "00000001-0001-0001-0001-000000000001";
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik1uQ19WWmNBVGZNNXBP...";
const SECRET: &str = "qWgdYAmab0YSkuL1qKv5bPX";

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

/// A live config: token endpoint under `token_base`, Graph under `graph_base`; short
/// timeouts, no retries.
fn config(token_base: &str, graph_base: &str) -> MsGraphConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    MsGraphConfig {
        authority: token_base.to_owned(),
        graph_base: format!("{graph_base}/v1.0"),
        request_timeout: Duration::from_secs(5),
        max_retries: 0,
        max_retry_wait: Duration::from_millis(100),
        ..MsGraphConfig::new(
            TENANT,
            "00001111-aaaa-2222-bbbb-3333cccc4444",
            SecretString::from(SECRET),
        )
    }
}

fn token_path() -> String {
    format!("/{TENANT}/oauth2/v2.0/token")
}

async fn mount_token(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(json(
            200,
            &fixture("entra-oauth/token-response-success.json"),
        ))
        .mount(server)
        .await;
}

/// (path under the Graph base, fixture) of every endpoint: the one list in
/// `connectors/fixtures/msgraph/endpoints.tsv`.
fn endpoints() -> Vec<(String, String)> {
    fixture("msgraph/endpoints.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (p, f) = l.split_once('\t').expect("path<TAB>fixture");
            (p.to_owned(), f.to_owned())
        })
        .collect()
}

/// Mount every endpoint (bearer required) with its official example, except `skip`.
async fn mount_graph_ok(server: &MockServer, skip: &[&str]) {
    for (p, f) in endpoints() {
        if skip.contains(&p.as_str()) {
            continue;
        }
        Mock::given(method("GET"))
            .and(path(format!("/v1.0{p}")))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(json(200, &fixture(&f)))
            .mount(server)
            .await;
    }
}

/// Issue 8 row 1: the token endpoint answering a redirect (307/308 re-POST the form, 302/303
/// turn it into a GET) to another loopback port must not send the client secret there: the
/// token request follows no redirect, whatever client the daemon passes, and the answer is a
/// classified `redirect` error on every endpoint (no Graph call).
#[tokio::test]
async fn token_redirect_is_never_followed_and_the_secret_stays_home() {
    let home = MockServer::start().await;
    let other = MockServer::start().await;
    mount_token(&other).await;
    for status in [307u16, 308, 302, 303] {
        home.reset().await;
        Mock::given(method("POST"))
            .and(path(token_path()))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("location", format!("{}{}", other.uri(), token_path())),
            )
            .expect(1)
            .mount(&home)
            .await;
        let c = MsGraphConnector::new(config(&home.uri(), &home.uri()), reqwest::Client::new())
            .unwrap();
        let s = c.snapshot().await;
        let e = s.token_error().expect("every endpoint fails on the token");
        assert_eq!(e.kind, ErrorKind::Redirect, "{status}: {e}");
        assert_eq!(e.kind.as_str(), "redirect");
        assert_eq!(e.status, Some(status));
        assert!(
            e.message.contains(&other.address().port().to_string()),
            "{e}"
        );
        assert!(!e.message.contains(SECRET));
        home.verify().await;
    }
    let leaked = other.received_requests().await.unwrap();
    assert!(
        leaked.is_empty(),
        "the other origin received {} request(s), first body: {}",
        leaked.len(),
        String::from_utf8_lossy(&leaked[0].body)
    );
}

/// Issue 8 row 2: a Graph endpoint answering `302` to another origin. With the daemon's
/// redirect policy the other origin is never asked; with a client that follows anything the
/// foreign response is still refused. Either way the endpoint is a classified `redirect`
/// error and the five other endpoints are unaffected; a redirect within the origin is still
/// followed (with the bearer).
#[tokio::test]
async fn graph_redirect_to_another_origin_is_refused() {
    let home = MockServer::start().await;
    let other = MockServer::start().await;
    mount_token(&home).await;
    mount_graph_ok(
        &home,
        &[endpoints::CONDITIONAL_ACCESS, endpoints::SECURITY_DEFAULTS],
    )
    .await;
    let ca = format!("/v1.0{}", endpoints::CONDITIONAL_ACCESS);
    Mock::given(method("GET"))
        .and(path(ca.as_str()))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}{ca}", other.uri())),
        )
        .mount(&home)
        .await;
    // Foreign data: the other origin serves a policy set of its own.
    Mock::given(method("GET"))
        .respond_with(json(
            200,
            &fixture("msgraph/conditionalAccessPolicies-list.json"),
        ))
        .mount(&other)
        .await;
    // Same-origin redirect: followed.
    Mock::given(method("GET"))
        .and(path(format!("/v1.0{}", endpoints::SECURITY_DEFAULTS)))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/v1.0/moved"))
        .mount(&home)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/moved"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(json(
            200,
            &fixture("msgraph/identitySecurityDefaultsEnforcementPolicy-get.json"),
        ))
        .mount(&home)
        .await;

    let daemon_client = reqwest::Client::builder()
        .redirect(redirect_policy())
        .build()
        .unwrap();
    for (client, other_asked) in [(daemon_client, false), (reqwest::Client::new(), true)] {
        let c = MsGraphConnector::new(config(&home.uri(), &home.uri()), client).unwrap();
        let s = c.snapshot().await;
        let e = s.conditional_access.as_ref().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Redirect, "{e}");
        assert!(
            e.message.contains(&other.address().port().to_string()),
            "{e}"
        );
        assert_eq!(s.errors().len(), 1, "{:?}", s.errors());
        assert!(s.security_defaults.as_ref().unwrap().is_enabled);
        let asked = other.received_requests().await.unwrap();
        assert_eq!(!asked.is_empty(), other_asked);
        // reqwest strips the bearer on a cross-origin redirect it follows
        assert!(
            asked
                .iter()
                .all(|r| !r.headers.contains_key("authorization"))
        );
    }
}

/// A loopback "Graph" that streams an endless chunked JSON body on `endless_path` (stopping
/// after `max_bytes` at the latest) and answers 404 elsewhere; counts the bytes it wrote.
async fn endless_graph(endless_path: &'static str, max_bytes: u64) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&head);
                if !request.starts_with(&format!("GET /v1.0{endless_path} ")) {
                    let body = r#"{"error":{"code":"NotFound"}}"#;
                    let resp = format!(
                        "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let data = "[\"aaaaaaaaaaaa\",".repeat(4096); // 64 KiB of an endless array
                let chunk = format!("{:x}\r\n{data}\r\n", data.len());
                while counter.load(Ordering::Relaxed) < max_bytes {
                    if sock.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (format!("http://{addr}"), written)
}

/// Issue 8 row 3: an endpoint streaming an endless body is abandoned at the byte cap as a
/// classified `too_large` error, quickly and without reading on (the server could write little
/// more than the cap plus the socket buffers); the other endpoints are unaffected.
#[tokio::test]
async fn endless_body_stops_at_the_byte_cap() {
    let token = MockServer::start().await;
    mount_token(&token).await;
    let (graph, written) = endless_graph(endpoints::REGISTRATION_DETAILS, 512 << 20).await;
    let cap: u64 = 1 << 20;
    let cfg = MsGraphConfig {
        max_response_bytes: cap,
        ..config(&token.uri(), &graph)
    };
    let started = Instant::now();
    let s = MsGraphConnector::new(cfg, reqwest::Client::new())
        .unwrap()
        .snapshot()
        .await;
    let e = s.registration_details.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    assert_eq!(e.kind.as_str(), "too_large");
    assert_eq!(e.status, Some(200));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        s.security_defaults.as_ref().unwrap_err().kind,
        ErrorKind::NotFound
    );
    // Give the server a moment to notice the closed connection, then check it stopped early.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = written.load(Ordering::Relaxed);
    assert!(sent < cap + (64 << 20), "the server wrote {sent} bytes");
}

/// Issue 8 row 3: a body whose `Content-Length` is over the cap is refused before it is read
/// (a valid 2 MiB answer with a 1 MiB cap); one at exactly the cap is read. The token response
/// is capped the same way.
#[tokio::test]
async fn announced_bodies_over_the_cap_are_too_large() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_graph_ok(&server, &[endpoints::REGISTRATION_DETAILS]).await;
    let fixture_body = fixture("msgraph/userRegistrationDetails-list.json");
    let big = format!(r#"{{"value": [], "padding": "{}"}}"#, "x".repeat(2 << 20));
    Mock::given(method("GET"))
        .and(path(format!("/v1.0{}", endpoints::REGISTRATION_DETAILS)))
        .respond_with(json(200, &big))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0{}", endpoints::REGISTRATION_DETAILS)))
        .respond_with(json(200, &fixture_body))
        .mount(&server)
        .await;
    let cfg = MsGraphConfig {
        max_response_bytes: 1 << 20,
        ..config(&server.uri(), &server.uri())
    };
    let s = MsGraphConnector::new(cfg.clone(), reqwest::Client::new())
        .unwrap()
        .snapshot()
        .await;
    assert_eq!(
        s.registration_details.as_ref().unwrap_err().kind,
        ErrorKind::TooLarge
    );
    assert_eq!(s.errors().len(), 1);

    // At exactly the cap the body is read; one byte less is too large.
    let exact = MsGraphConfig {
        max_response_bytes: fixture_body.len() as u64,
        ..cfg.clone()
    };
    let s = MsGraphConnector::new(exact, reqwest::Client::new())
        .unwrap()
        .snapshot()
        .await;
    assert_eq!(s.registration_details.as_ref().unwrap().len(), 3);

    // The token response is capped too.
    let token_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(json(200, &big))
        .mount(&token_server)
        .await;
    let s = MsGraphConnector::new(
        MsGraphConfig {
            max_response_bytes: 1 << 20,
            ..config(&token_server.uri(), &server.uri())
        },
        reqwest::Client::new(),
    )
    .unwrap()
    .snapshot()
    .await;
    assert_eq!(s.token_error().unwrap().kind, ErrorKind::TooLarge);
}
