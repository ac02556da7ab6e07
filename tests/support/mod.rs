//! Test harness: spawn the app on 127.0.0.1:0 with a temporary SQLite file and wiremock
//! standing in for Microsoft Graph and the Entra token endpoint.

#![allow(dead_code)]

pub mod principals;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use postured::app::{App, PollReport};
use postured::config::Config;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The official Microsoft Graph example payloads used as fixtures.
pub fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("connectors/fixtures")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// The Graph endpoints the msgraph connector reads, with the official example answering each
/// (`/v1.0/...` path, fixture): the one list in `connectors/fixtures/msgraph/endpoints.tsv`.
pub fn graph_endpoints() -> Vec<(String, String)> {
    let list = fixture("msgraph/endpoints.tsv");
    list.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (p, f) = l.split_once('\t').expect("path<TAB>fixture");
            (format!("/v1.0{p}"), f.to_owned())
        })
        .collect()
}

/// Answer every Graph endpoint with its official example (lowest priority, so a test can
/// mount a more specific answer on top).
pub async fn mount_graph_examples(server: &MockServer) {
    for (p, f) in graph_endpoints() {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_raw(fixture(&f), "application/json"))
            .with_priority(10)
            .mount(server)
            .await;
    }
}

/// Answer the Entra token endpoint of `tenant_guid` with the documented success shape.
pub async fn mount_token_ok(server: &MockServer, tenant_guid: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/{tenant_guid}/oauth2/v2.0/token")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("entra-oauth/token-response-success.json"),
            "application/json",
        ))
        .mount(server)
        .await;
}

/// One tenant's `[[tenants]]` block pointing at `mock` (authority and Graph base).
pub fn tenant_block(
    id: &str,
    tenant_guid: &str,
    client_id: &str,
    mock: &str,
    schedule: &str,
) -> String {
    format!(
        r#"
[[tenants]]
id = "{id}"
  [[tenants.connectors]]
  kind = "msgraph"
  schedule = "{schedule}"
  tenant_id = "{tenant_guid}"
  client_id = "{client_id}"
  client_secret = {{ env = "TEST_CLIENT_SECRET" }}
  authority = "{mock}"
  graph_base = "{mock}/v1.0"
  request_timeout = "5s"
  max_retries = 2
  max_retry_wait = "5s"
"#
    )
}

/// A running app: HTTP server bound on 127.0.0.1:0, store in a temp dir.
pub struct TestApp {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub cancel: CancellationToken,
}

pub const API_TOKEN: &str = "test-api-token";

impl TestApp {
    /// Build and start the app from `[[tenants]]` blocks (and optional extra sections).
    pub async fn spawn(extra: &str, tenants: &str) -> TestApp {
        Self::spawn_with(extra, tenants, &postured::registry::Registry::builtin()).await
    }

    /// [`TestApp::spawn`] with the connector kinds of `registry`.
    pub async fn spawn_with(
        extra: &str,
        tenants: &str,
        registry: &postured::registry::Registry,
    ) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
metrics_public = true
api_token = {{ env = "TEST_API_TOKEN" }}
[store]
url = "sqlite://{db}"
[scheduler]
startup_jitter = "0s"
poll_timeout = "20s"
backoff_initial = "200ms"
backoff_max = "1s"
{extra}
{tenants}
"#,
            db = dir.path().join("postured.db").display()
        );
        let env = |k: &str| match k {
            "TEST_CLIENT_SECRET" => Some("not-a-real-secret".to_owned()),
            "TEST_API_TOKEN" => Some(API_TOKEN.to_owned()),
            _ => None,
        };
        let cfg = Config::parse_with(&text, &[], &env, registry, None)
            .unwrap_or_else(|p| panic!("config: {p:?}"));
        let app = Arc::new(
            postured::assembly::build_app(cfg)
                .await
                .expect("app builds"),
        );
        let cancel = CancellationToken::new();
        let (addr, serve) = postured::server::bind(app.clone(), "127.0.0.1:0", cancel.clone())
            .await
            .unwrap();
        tokio::spawn(serve);
        TestApp {
            app,
            addr,
            dir,
            cancel,
        }
    }

    /// Poll connector 0 of `tenant` once.
    pub async fn poll(&self, tenant: &str) -> PollReport {
        let t = self.app.tenant(tenant).expect("tenant configured").clone();
        self.app.poll(&t, 0).await
    }

    /// GET a path of the app's HTTP server.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        postured::http::install_crypto_provider();
        let mut req = reqwest::Client::new().get(format!("http://{}{path}", self.addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics", None).await.text().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Value of the first sample line starting with `series` in a metrics exposition.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Whether real test servers are required (set by scripts/test.sh) rather than optional.
pub fn servers_required() -> bool {
    std::env::var_os("POSTURED_REQUIRE_TEST_SERVERS").is_some()
}

/// The daemon's URL from the first line `postured run` prints on stdout (`... on
/// http://ADDR/metrics`); takes the child's stdout.
pub fn served_url(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned()
}

/// Send signal `name` (`TERM`, `HUP`, ...) to process `pid`.
pub fn send_signal(pid: u32, name: &str) {
    assert!(
        std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Wait up to `within` for `child` to exit, and assert it exited successfully.
pub fn exits_cleanly(child: &mut std::process::Child, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
