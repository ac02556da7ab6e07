//! The connector contract under faults (issue 9 item 4): one table of faulty sources run over
//! every connector kind through the daemon. For each kind, one app holds a healthy tenant and
//! one tenant per fault, every one with a connector of that kind; the faulty tenants are polled
//! together with the healthy one.
//!
//! | row | what the source does (HTTP kinds) | gap kind (HTTP) | exec program | gap kind (exec) |
//! |---|---|---|---|---|
//! | `unauthorized` | 401 in the source's error shape (AWS: 403 `InvalidClientTokenId`) | `unauthorized` | exit 1, "401 Unauthorized" on stderr | `other` |
//! | `forbidden` | 403 (Graph `Authorization_RequestDenied`, AWS `AccessDenied`) | `forbidden` | exit 77 (`EX_NOPERM`) | `forbidden` |
//! | `not_found` | 404 (AWS: without an AWS code; `NoSuchEntity` means "no password policy") | `not_found` | `argv[0]` does not exist | `not_found` |
//! | `throttled_retry_after` | 429 + `Retry-After: 1` (AWS: 400 `Throttling` + `Retry-After`) | `throttled` | — | — |
//! | `throttled` | the same without `Retry-After` | `throttled` | exit 75 (`EX_TEMPFAIL`) | `throttled` |
//! | `timeout` | the healthy answer, 3 s late (`request_timeout` 1 s) | `timeout` | sleeps past `timeout` (1 s) | `timeout` |
//! | `truncated_body` | 200, the healthy body cut in half (its own `Content-Length`) | `malformed` | a line cut in half | `malformed` |
//! | `truncated_transfer` | 200, `Content-Length` of the whole body, half of it sent, then the connection closed | `network` | — | — |
//! | `wrong_types` | 200, the healthy body with every number, boolean (and JSON list of scalars) as a string, every string as a number | `malformed` | a list where a scalar value goes | `malformed` |
//! | `oversized` | 200, a valid body one byte over `max_response_bytes` | `too_large` | more than `max_stdout_bytes` on stdout | `too_large` |
//! | `redirect` | 302 to the same path on another loopback origin | `redirect` | — | — |
//!
//! A truncated body is `malformed` when the bytes that arrived are complete by HTTP (the
//! document is what is cut) and `network` when the transfer stops short of its
//! `Content-Length` (the transport fails before any parsing).
//!
//! Rows that do not apply to `exec`: a program has no `Retry-After` (it can say "throttled"
//! with exit 75, the scheduler's backoff does the rest), no transfer length (a pipe ends or it
//! does not: a cut output is the `truncated_body` row) and no redirect. There is no exit
//! status for "unauthenticated" either: exit 1 with the cause on stderr is `other`, and the
//! stderr tail is the reason.
//!
//! Every row asserts (a) every error of the faulty poll has the row's kind; for HTTP kinds the
//! source saw each request twice on a transient fault (`max_retries = 1`: throttled, timeout,
//! truncated transfer), the throttled retry after the `Retry-After` when there is one (which
//! the poll reports), and once on any other; (b) every action of the faulty tenant is
//! `could_not_be_detected` with a collection gap of that kind as its cause, 0 points achieved
//! and the same points possible as for the healthy tenant (or out of scope: another kind's
//! action), never failed or passed; no error or reason holds the credentials, and the other
//! origin of the redirect row is never asked; (c) the healthy tenant, polled at the same time,
//! keeps its normal statuses and finishes before the slowest faulty poll, and polls the same
//! afterwards; (d) no poll panics; for exec, the timed-out program and its child are killed.
//! The healthy answers are the demo recordings (`config/demo/`, real shapes) and GitHub's
//! documented organisation (`connectors/fixtures/http_json/github/`).
//!
//! `connectors/tests/hostile_sources.rs` keeps what this table does not show: the token
//! request's redirects, an endless body, a body at exactly the cap.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use postured::app::PollReport;
use postured::evaluation::{TestStatus, Undetected};
use postured::store::PollOutcome;
use postured_connectors::ErrorKind;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Limits written into every HTTP connector block of this file.
const HTTP_LIMITS: &str = r#"
  request_timeout = "1s"
  max_retries = 1
  max_retry_wait = "1s"
  max_response_bytes = 65536
"#;
/// `max_response_bytes` above: larger than every healthy answer (the largest is about 3 KiB).
const MAX_RESPONSE_BYTES: usize = 65536;
/// How late the `timeout` row answers (the request timeout is 1 s).
const SERVER_DELAY: Duration = Duration::from_secs(3);
/// The `Retry-After` of the `throttled_retry_after` row, in seconds.
const RETRY_AFTER: u64 = 1;
/// Attempts per request: the first and `max_retries` more.
const ATTEMPTS: usize = 2;

/// One fault of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Unauthorized,
    Forbidden,
    NotFound,
    ThrottledRetryAfter,
    Throttled,
    Timeout,
    TruncatedBody,
    TruncatedTransfer,
    WrongTypes,
    Oversized,
    Redirect,
}

/// The rows: each fault with the gap kind an HTTP source gives (exec: [`exec_expected`]).
const ROWS: [(Fault, ErrorKind); 11] = [
    (Fault::Unauthorized, ErrorKind::Unauthorized),
    (Fault::Forbidden, ErrorKind::Forbidden),
    (Fault::NotFound, ErrorKind::NotFound),
    (Fault::ThrottledRetryAfter, ErrorKind::Throttled),
    (Fault::Throttled, ErrorKind::Throttled),
    (Fault::Timeout, ErrorKind::Timeout),
    (Fault::TruncatedBody, ErrorKind::Malformed),
    (Fault::TruncatedTransfer, ErrorKind::Network),
    (Fault::WrongTypes, ErrorKind::Malformed),
    (Fault::Oversized, ErrorKind::TooLarge),
    (Fault::Redirect, ErrorKind::Redirect),
];

impl Fault {
    /// Tenant id and URL path segment of the row.
    fn name(self) -> &'static str {
        match self {
            Fault::Unauthorized => "unauthorized",
            Fault::Forbidden => "forbidden",
            Fault::NotFound => "not_found",
            Fault::ThrottledRetryAfter => "throttled_retry_after",
            Fault::Throttled => "throttled",
            Fault::Timeout => "timeout",
            Fault::TruncatedBody => "truncated_body",
            Fault::TruncatedTransfer => "truncated_transfer",
            Fault::WrongTypes => "wrong_types",
            Fault::Oversized => "oversized",
            Fault::Redirect => "redirect",
        }
    }

    fn from_name(name: &str) -> Option<Fault> {
        ROWS.iter().map(|(f, _)| *f).find(|f| f.name() == name)
    }
}

const HEALTHY: &str = "healthy";

// --- the run over one kind -----------------------------------------------------------------

/// One kind set up for the table: its connector blocks and what the rows can check after.
struct Setup {
    /// The connector kind.
    kind: &'static str,
    /// The rows that apply, with the gap kind each must give.
    rows: Vec<(Fault, ErrorKind)>,
    /// The `[[tenants]]` blocks: the healthy tenant and one per row.
    tenants: String,
    /// Extra configuration sections.
    extra: String,
    /// Requests the HTTP source saw (none for exec).
    hits: Option<Arc<Mutex<Vec<Hit>>>>,
    /// The redirect target (must never be asked).
    other_origin: Option<MockServer>,
    /// Temporary files: user catalogs, exec programs and the process ids they write.
    dir: tempfile::TempDir,
    /// Kept alive for the run.
    _servers: Vec<MockServer>,
}

/// `[[tenants]]` with id `id` and one connector block.
fn tenant(id: &str, block: &str) -> String {
    format!(
        "\n[[tenants]]\nid = \"{id}\"\n  [[tenants.connectors]]\n  schedule = \"0 0 * * * *\"\n{block}"
    )
}

/// Each action's (status, points achieved).
fn statuses(r: &PollReport) -> BTreeMap<String, (TestStatus, f64)> {
    r.evaluation
        .actions
        .iter()
        .map(|a| (a.action_id.clone(), (a.test_status, a.points_achieved)))
        .collect()
}

/// Poll `tenant` (connector 0) in a task of its own; the report and when it finished.
fn spawn_poll(app: &TestApp, tenant: &str) -> tokio::task::JoinHandle<(PollReport, Instant)> {
    let a = app.app.clone();
    let t = app.app.tenant(tenant).expect("tenant").clone();
    tokio::spawn(async move {
        let r = a.poll(&t, 0).await;
        (r, Instant::now())
    })
}

/// Poll the healthy tenant alone, then every tenant at once, and check every row.
async fn run(setup: Setup) {
    let started = Instant::now();
    let kind = setup.kind;
    let app = TestApp::spawn(&setup.extra, &setup.tenants).await;

    // The healthy tenant alone: its normal statuses.
    let baseline = app.poll(HEALTHY).await;
    assert_eq!(
        baseline.outcome,
        PollOutcome::Success,
        "{kind}: {:#?}",
        baseline.errors
    );
    let normal = statuses(&baseline);
    let catalog: BTreeSet<String> = app.app.evaluator.actions().map(|a| a.id.clone()).collect();
    let decided = normal
        .values()
        .filter(|(s, _)| *s != TestStatus::OutOfScope && *s != TestStatus::CouldNotBeDetected)
        .count();
    assert!(decided > 0, "{kind}: the healthy tenant decides nothing");

    // Every faulty tenant and the healthy one at once.
    let faulty: Vec<_> = setup
        .rows
        .iter()
        .map(|(f, _)| spawn_poll(&app, f.name()))
        .collect();
    let healthy = spawn_poll(&app, HEALTHY);
    let (healthy, healthy_done) = healthy.await.expect("the healthy poll does not panic");
    let mut reports = Vec::new();
    for ((fault, expected), task) in setup.rows.iter().zip(faulty) {
        let (report, done) = task
            .await
            .unwrap_or_else(|e| panic!("{kind} {}: the poll panicked: {e}", fault.name()));
        reports.push((*fault, *expected, report, done));
    }

    // (c) the healthy tenant kept being polled, with its normal statuses, and was not held
    // up by the slowest faulty tenant.
    assert_eq!(
        healthy.outcome,
        PollOutcome::Success,
        "{kind}: {:#?}",
        healthy.errors
    );
    assert_eq!(
        statuses(&healthy),
        normal,
        "{kind}: healthy statuses changed"
    );
    let slowest = reports.iter().map(|r| r.3).max().unwrap();
    assert!(
        healthy_done < slowest,
        "{kind}: the healthy poll waited for the faulty ones"
    );

    for (fault, expected, report, _) in &reports {
        check_row(kind, (*fault, *expected), report, &baseline, &catalog);
        if let Some(hits) = &setup.hits {
            check_http_row(kind, *fault, report, &hits.lock().unwrap());
        }
    }
    if let Some(other) = &setup.other_origin {
        let asked = other.received_requests().await.unwrap();
        assert!(
            asked.is_empty(),
            "{kind}: the other origin was asked {} time(s)",
            asked.len()
        );
    }
    if kind == "exec" {
        check_exec_processes_killed(setup.dir.path()).await;
    }

    // And after the faults, the healthy tenant still polls the same.
    let again = app.poll(HEALTHY).await;
    assert_eq!(statuses(&again), normal, "{kind}: healthy statuses changed");
    eprintln!("{kind}: {} rows in {:?}", reports.len(), started.elapsed());
}

/// (a) the poll's errors, (b) its actions and points.
fn check_row(
    kind: &str,
    (fault, expected): (Fault, ErrorKind),
    r: &PollReport,
    healthy: &PollReport,
    catalog: &BTreeSet<String>,
) {
    let row = format!("{kind} {}", fault.name());
    assert_ne!(r.outcome, PollOutcome::Success, "{row}");
    assert!(!r.errors.is_empty(), "{row}: no error");
    for e in &r.errors {
        assert_eq!(e.kind, expected, "{row}: {e}");
    }
    let mut undetected = 0;
    for a in &r.evaluation.actions {
        match a.test_status {
            TestStatus::CouldNotBeDetected => {
                undetected += 1;
                match &a.cause {
                    Some(Undetected::Gap { kind: k, .. }) => {
                        assert_eq!(k, expected.as_str(), "{row}: {}: {a:?}", a.action_id)
                    }
                    other => panic!("{row}: {} undetected by {other:?}", a.action_id),
                }
                assert_eq!(a.credit, 0.0, "{row}: {}", a.action_id);
                assert_eq!(a.points_achieved, 0.0, "{row}: {}", a.action_id);
                // Unknown is not out of scope: the points stay possible.
                assert_eq!(
                    a.points_possible,
                    f64::from(a.points),
                    "{row}: {}",
                    a.action_id
                );
            }
            TestStatus::OutOfScope => assert_eq!(a.points_possible, 0.0),
            other => panic!("{row}: {} is {other:?}, not undetected: {a:?}", a.action_id),
        }
    }
    assert!(undetected > 0, "{row}: no action of the kind");
    // Unknown costs what the achieved points were, nothing more: every catalog action the
    // healthy tenant scores stays in the faulty tenant's denominator with the same points.
    // (Generated family items, e.g. one per Secure Score control profile, exist only where
    // their profiles were collected.)
    for a in &healthy.evaluation.actions {
        if a.test_status == TestStatus::OutOfScope || !catalog.contains(&a.action_id) {
            continue;
        }
        let f = r
            .evaluation
            .actions
            .iter()
            .find(|f| f.action_id == a.action_id)
            .unwrap_or_else(|| panic!("{row}: {} not evaluated", a.action_id));
        assert_eq!(
            f.points_possible, a.points_possible,
            "{row}: {}",
            a.action_id
        );
    }
    let score = &r.evaluation.score;
    assert_eq!(score.points_achieved, 0.0, "{row}: {score:?}");
    // The credentials (every kind's secret is this value) appear in no error and no reason.
    let secret = "not-a-real-secret";
    for e in &r.errors {
        assert!(!e.to_string().contains(secret), "{row}: {e}");
    }
    for a in &r.evaluation.actions {
        assert!(!a.reason.as_deref().unwrap_or("").contains(secret), "{row}");
    }
}

/// What the HTTP source saw of a row: a retry after `Retry-After` (or after the backoff)
/// for the throttled rows; the `Retry-After` reported.
fn check_http_row(kind: &str, fault: Fault, r: &PollReport, hits: &[Hit]) {
    let row = format!("{kind} {}", fault.name());
    let mut by_request: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    for h in hits.iter().filter(|h| h.fault == Some(fault)) {
        by_request.entry(h.request.as_str()).or_default().push(h.at);
    }
    assert!(!by_request.is_empty(), "{row}: the source was never asked");
    match fault {
        Fault::ThrottledRetryAfter | Fault::Throttled => {
            for (request, at) in &by_request {
                assert_eq!(
                    at.len(),
                    ATTEMPTS,
                    "{row}: {request} asked {} times",
                    at.len()
                );
                if fault == Fault::ThrottledRetryAfter {
                    let waited = at[1] - at[0];
                    assert!(
                        waited >= Duration::from_millis(RETRY_AFTER * 1000 - 50),
                        "{row}: {request} retried after {waited:?}"
                    );
                }
            }
            let expected =
                (fault == Fault::ThrottledRetryAfter).then(|| Duration::from_secs(RETRY_AFTER));
            assert_eq!(r.retry_after, expected, "{row}");
        }
        // Not retried: the answer will not change.
        Fault::Unauthorized
        | Fault::Forbidden
        | Fault::NotFound
        | Fault::Oversized
        | Fault::Redirect
        | Fault::WrongTypes
        | Fault::TruncatedBody => {
            for (request, at) in &by_request {
                assert_eq!(at.len(), 1, "{row}: {request} asked {} times", at.len());
            }
        }
        // Transient: retried once.
        Fault::Timeout | Fault::TruncatedTransfer => {
            for (request, at) in &by_request {
                assert_eq!(
                    at.len(),
                    ATTEMPTS,
                    "{row}: {request} asked {} times",
                    at.len()
                );
            }
        }
    }
}

// --- HTTP sources ----------------------------------------------------------------------------

/// One answer of a loopback source.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
}

impl Answer {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    fn template(self) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status)
            .set_body_raw(self.body, self.content_type)
            .set_delay(self.delay);
        for (k, v) in self.headers {
            t = t.insert_header(k, v.as_str());
        }
        t
    }
}

/// A source an HTTP connector kind reads, as a loopback server plays it.
trait HttpSource: Send + Sync + 'static {
    /// The connector kind.
    fn kind(&self) -> &'static str;
    /// The kind-specific keys of a connector block reading the source at `base` (no trailing
    /// slash); `healthy` is a base that always answers well (for a token endpoint).
    fn block(&self, base: &str, healthy: &str, dir: &Path) -> String;
    /// Extra configuration sections (a user catalog).
    fn extra(&self, _dir: &Path) -> String {
        String::new()
    }
    /// The healthy answer to `url` (path relative to the source's base).
    fn healthy(&self, method: &str, url: &Url) -> Answer;
    /// The source's own answer for a status row (401, 403, 404, throttled).
    fn error(&self, fault: Fault) -> Answer;
    /// A healthy body with wrong types.
    fn wrong_types(&self, body: &[u8]) -> Vec<u8> {
        let v: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
        serde_json::to_vec(&stringify_scalars(v)).unwrap()
    }
}

/// Every number and boolean, and every list of scalars, as a string, and every string as a
/// number (its length): valid JSON of the same layout whose values have the wrong types, in
/// whichever fields a connector reads.
fn stringify_scalars(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::Number(s.len().into()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Array(a) if !a.is_empty() && a.iter().all(|x| !x.is_array() && !x.is_object()) => {
            Value::String(
                a.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(stringify_scalars).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, stringify_scalars(v)))
                .collect(),
        ),
        other => other,
    }
}

/// One request a source saw.
#[derive(Debug, Clone)]
struct Hit {
    fault: Option<Fault>,
    request: String,
    at: Instant,
}

/// The row's fault and the source-relative URL of a request to `/<row>/<source path>`.
fn route(url: &Url) -> Option<(Option<Fault>, Url)> {
    let path = url.path().strip_prefix('/')?;
    let (segment, rest) = path.split_once('/').unwrap_or((path, ""));
    let fault = match segment {
        HEALTHY => None,
        other => Some(Fault::from_name(other)?),
    };
    let mut inner = Url::parse("http://source.invalid/").unwrap();
    inner.set_path(&format!("/{rest}"));
    inner.set_query(url.query());
    Some((fault, inner))
}

/// What the source answers `fault` to a request of `url` (source-relative).
fn answer(
    source: &dyn HttpSource,
    fault: Option<Fault>,
    method: &str,
    url: &Url,
    other: &str,
) -> Answer {
    let healthy = || source.healthy(method, url);
    let Some(fault) = fault else {
        return healthy();
    };
    match fault {
        Fault::Unauthorized | Fault::Forbidden | Fault::NotFound | Fault::Throttled => {
            source.error(fault)
        }
        Fault::ThrottledRetryAfter => {
            let mut a = source.error(fault);
            a.headers.push(("retry-after", RETRY_AFTER.to_string()));
            a
        }
        Fault::Timeout => Answer {
            delay: SERVER_DELAY,
            ..healthy()
        },
        Fault::TruncatedBody => {
            let mut a = healthy();
            a.body.truncate(a.body.len() / 2);
            a
        }
        // Served by `truncating_server`; this is the whole answer it cuts.
        Fault::TruncatedTransfer => healthy(),
        Fault::WrongTypes => {
            let a = healthy();
            Answer::new(200, a.content_type, source.wrong_types(&a.body))
        }
        Fault::Oversized => {
            let mut a = healthy();
            // Valid: trailing whitespace after the document.
            let pad = (MAX_RESPONSE_BYTES + 1).saturating_sub(a.body.len());
            a.body.extend(std::iter::repeat_n(b' ', pad));
            a
        }
        Fault::Redirect => {
            let mut a = Answer::new(302, "text/plain", "");
            let target = format!(
                "{other}/{}{}{}",
                fault.name(),
                url.path(),
                url.query().map(|q| format!("?{q}")).unwrap_or_default()
            );
            a.headers.push(("location", target));
            a
        }
    }
}

/// Log a request of row `fault` to (source-relative) `url`.
fn log_hit(hits: &Mutex<Vec<Hit>>, fault: Option<Fault>, method: &str, url: &Url) {
    let request = format!(
        "{method} {}{}",
        url.path(),
        url.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    hits.lock().unwrap().push(Hit {
        fault,
        request,
        at: Instant::now(),
    });
}

/// The loopback source: routes `/<row>/...` to the row's answer and logs every request.
struct Responder {
    source: Arc<dyn HttpSource>,
    other: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Some((fault, url)) = route(&request.url) else {
            return ResponseTemplate::new(500);
        };
        log_hit(&self.hits, fault, request.method.as_str(), &url);
        answer(
            &*self.source,
            fault,
            request.method.as_str(),
            &url,
            &self.other,
        )
        .template()
    }
}

/// A source that announces the whole body's `Content-Length`, sends half of it and closes
/// the connection (a raw socket: an HTTP library would not send a short body).
async fn truncating_server(source: Arc<dyn HttpSource>, hits: Arc<Mutex<Vec<Hit>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (source, hits) = (source.clone(), hits.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let mut parts = line.split(' ');
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
                let Some((fault, url)) = Url::parse(&format!("http://h{target}"))
                    .ok()
                    .and_then(|u| route(&u))
                else {
                    return;
                };
                log_hit(&hits, fault, method, &url);
                let a = answer(&*source, fault, method, &url, "");
                let head = format!(
                    "HTTP/1.1 {} OK\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    a.status,
                    a.content_type,
                    a.body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&a.body[..a.body.len() / 2]).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// A kind's loopback source (one server, a path prefix per row), the redirect target, the
/// truncating server, and a tenant per row.
async fn http_setup(source: Arc<dyn HttpSource>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start().await;
    let other = MockServer::start().await;
    let hits = Arc::new(Mutex::new(Vec::new()));
    // The other origin would answer well: nothing of it may be used.
    Mock::given(wiremock::matchers::any())
        .respond_with(Responder {
            source: source.clone(),
            other: String::new(),
            hits: Arc::new(Mutex::new(Vec::new())),
        })
        .mount(&other)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(Responder {
            source: source.clone(),
            other: other.uri(),
            hits: hits.clone(),
        })
        .mount(&server)
        .await;
    let truncating = truncating_server(source.clone(), hits.clone()).await;
    let healthy_base = format!("{}/{HEALTHY}", server.uri());
    let mut tenants = tenant(
        HEALTHY,
        &source.block(&healthy_base, &healthy_base, dir.path()),
    );
    for (fault, _) in ROWS {
        let host = if fault == Fault::TruncatedTransfer {
            &truncating
        } else {
            &server.uri()
        };
        let base = format!("{host}/{}", fault.name());
        tenants.push_str(&tenant(
            fault.name(),
            &source.block(&base, &healthy_base, dir.path()),
        ));
    }
    Setup {
        kind: source.kind(),
        rows: ROWS.to_vec(),
        tenants,
        extra: source.extra(dir.path()),
        hits: Some(hits),
        other_origin: Some(other),
        dir,
        _servers: vec![server],
    }
}

/// Serve a recording of `config/demo/<kind>/` (a JSON body, or an XML one recorded as a
/// string).
fn demo_recording(kind: &str, method: &str, url: &Url) -> Answer {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/demo")
        .join(kind)
        .join(postured_connectors::record::file_name(method, url));
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Answer::new(
            404,
            "text/plain",
            format!("no recording {}", file.display()),
        );
    };
    let rec: postured_connectors::record::Recording = serde_json::from_str(&text).unwrap();
    match rec.body {
        serde_json::Value::String(xml) => Answer::new(rec.status, "text/xml", xml),
        other => Answer::new(
            rec.status,
            "application/json",
            serde_json::to_vec(&other).unwrap(),
        ),
    }
}

// --- msgraph ---

struct MsGraph;

const GRAPH_TENANT: &str = "00000001-0001-0001-0001-000000000001";

fn graph_error(status: u16, code: &str, message: &str) -> Answer {
    Answer::new(
        status,
        "application/json",
        serde_json::json!({"error": {"code": code, "message": message, "innerError": {
            "date": "2026-11-29T06:00:00", "request-id": "b1f3a1c4-0000-4000-8000-000000000001",
            "client-request-id": "b1f3a1c4-0000-4000-8000-000000000001"}}})
        .to_string(),
    )
}

impl HttpSource for MsGraph {
    fn kind(&self) -> &'static str {
        "msgraph"
    }

    fn block(&self, base: &str, healthy: &str, _dir: &Path) -> String {
        format!(
            r#"  kind = "msgraph"
  tenant_id = "{GRAPH_TENANT}"
  client_id = "00001111-aaaa-2222-bbbb-3333cccc4444"
  client_secret = {{ env = "TEST_CLIENT_SECRET" }}
  token_url = "{healthy}/oauth2/v2.0/token"
  graph_base = "{base}/v1.0"
{HTTP_LIMITS}"#
        )
    }

    fn healthy(&self, method: &str, url: &Url) -> Answer {
        if method == "POST" && url.path() == "/oauth2/v2.0/token" {
            return Answer::new(
                200,
                "application/json",
                fixture("entra-oauth/token-response-success.json"),
            );
        }
        demo_recording("msgraph", method, url)
    }

    fn error(&self, fault: Fault) -> Answer {
        match fault {
            Fault::Unauthorized => graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            ),
            Fault::Forbidden => graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ),
            Fault::NotFound => graph_error(
                404,
                "Request_ResourceNotFound",
                "Resource could not be discovered.",
            ),
            _ => Answer::new(
                429,
                "application/json",
                fixture("msgraph/error-429-throttled.json"),
            ),
        }
    }
}

// --- aws_iam ---

struct AwsIam;

fn aws_error(status: u16, code: &str, message: &str) -> Answer {
    Answer::new(
        status,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ErrorResponse>"
        ),
    )
}

/// The wrong-types variant of a value: a word where a number or a boolean goes.
fn wrong_scalar(text: &str) -> Option<&'static str> {
    match text {
        "true" => Some("yes"),
        "false" => Some("no"),
        t if !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-') =>
        {
            Some("many")
        }
        _ => None,
    }
}

impl HttpSource for AwsIam {
    fn kind(&self) -> &'static str {
        "aws_iam"
    }

    fn block(&self, base: &str, _healthy: &str, _dir: &Path) -> String {
        format!(
            r#"  kind = "aws_iam"
  endpoint = "{base}/"
  access_key_id = {{ env = "TEST_CLIENT_SECRET" }}
  secret_access_key = {{ env = "TEST_CLIENT_SECRET" }}
  report_wait = "2s"
  report_poll_interval = "50ms"
{HTTP_LIMITS}"#
        )
    }

    fn healthy(&self, method: &str, url: &Url) -> Answer {
        demo_recording("aws_iam", method, url)
    }

    fn error(&self, fault: Fault) -> Answer {
        match fault {
            // IAM answers bad keys with 403 and this code, never with 401.
            Fault::Unauthorized => aws_error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ),
            Fault::Forbidden => aws_error(
                403,
                "AccessDenied",
                "User: arn:aws:iam::111122223333:user/audit is not authorized to perform: iam:ListUsers",
            ),
            // A 404 without an AWS code (a wrong endpoint): `NoSuchEntity` is an answer
            // ("no password policy"), not a fault.
            Fault::NotFound => Answer::new(404, "text/plain", "404 page not found"),
            _ => aws_error(400, "Throttling", "Rate exceeded"),
        }
    }

    /// Every number and boolean of the XML (and of the credential report's CSV) as a word.
    fn wrong_types(&self, body: &[u8]) -> Vec<u8> {
        let xml = std::str::from_utf8(body).unwrap();
        let doc = roxmltree::Document::parse(xml).unwrap();
        let mut edits = Vec::new();
        for n in doc.descendants().filter(|n| n.is_text()) {
            let text = n.text().unwrap_or("").trim();
            let parent = n.parent_element().map(|p| p.tag_name().name());
            let new = if parent == Some("Content") {
                let b64 = base64::engine::general_purpose::STANDARD;
                let csv = String::from_utf8(b64.decode(text).unwrap()).unwrap();
                let csv: Vec<String> = csv
                    .lines()
                    .map(|l| {
                        l.split(',')
                            .map(|f| match f {
                                "true" | "false" => wrong_scalar(f).unwrap_or(f),
                                other => other,
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect();
                Some(b64.encode(csv.join("\n") + "\n"))
            } else {
                wrong_scalar(text).map(str::to_owned)
            };
            if let Some(new) = new {
                edits.push((n.range(), new));
            }
        }
        let mut out = xml.to_owned();
        for (range, new) in edits.into_iter().rev() {
            out.replace_range(range, &new);
        }
        out.into_bytes()
    }
}

// --- http_json ---

struct HttpJson;

const HTTP_JSON_CATALOG: &str = r#"
[[actions]]
id = "github.org.two_factor_required"
title = "Require two-factor authentication for the organization"
category = "Identity"
solution = "GitHub"
description = "The organization requires every member to enable two-factor authentication."
purpose = "preventative"
enforcement = "mandatory"
risk = "high"
rule = 'http_json.github_org.two_factor_required'

[[actions]]
id = "github.org.few_public_repos"
title = "Keep public repositories few"
category = "Data"
solution = "GitHub"
description = "At most ten public repositories."
purpose = "preventative"
enforcement = "mandatory"
rule = 'http_json.github_org.public_repos <= 10.0'
"#;

fn github_error(status: u16, message: &str) -> Answer {
    Answer::new(
        status,
        "application/json",
        serde_json::json!({"message": message, "documentation_url": "https://docs.github.com/rest"})
            .to_string(),
    )
}

impl HttpSource for HttpJson {
    fn kind(&self) -> &'static str {
        "http_json"
    }

    fn block(&self, base: &str, _healthy: &str, dir: &Path) -> String {
        format!(
            r#"  kind = "http_json"
  name = "github_org"
  url = "{base}/orgs/github"
  auth = {{ kind = "bearer", token = {{ env = "TEST_CLIENT_SECRET" }} }}
  catalog = "{catalog}"
  signals = {{ two_factor_required = {{ expr = "two_factor_requirement_enabled", type = "bool" }}, public_repos = {{ expr = "public_repos", type = "number" }} }}
{HTTP_LIMITS}"#,
            catalog = dir.join("github-catalog.toml").display()
        )
    }

    fn extra(&self, dir: &Path) -> String {
        std::fs::write(dir.join("github-catalog.toml"), HTTP_JSON_CATALOG).unwrap();
        String::new()
    }

    fn healthy(&self, _method: &str, _url: &Url) -> Answer {
        Answer::new(
            200,
            "application/json",
            fixture("http_json/github/orgs-get.json"),
        )
    }

    fn error(&self, fault: Fault) -> Answer {
        match fault {
            Fault::Unauthorized => github_error(401, "Bad credentials"),
            Fault::Forbidden => github_error(403, "Resource not accessible by integration"),
            Fault::NotFound => github_error(404, "Not Found"),
            _ => github_error(429, "API rate limit exceeded"),
        }
    }
}

// --- exec ------------------------------------------------------------------------------------

/// The gap kind of an exec row; `None`: the row does not apply (see the module docs).
fn exec_expected(fault: Fault) -> Option<ErrorKind> {
    match fault {
        Fault::Unauthorized => Some(ErrorKind::Other),
        Fault::ThrottledRetryAfter | Fault::TruncatedTransfer | Fault::Redirect => None,
        other => ROWS.iter().find(|(f, _)| *f == other).map(|(_, k)| *k),
    }
}

const EXEC_CATALOG: &str = r#"
[[actions]]
id = "exec.fault.backup_recent"
title = "Back up every day"
category = "Operations"
solution = "restic"
description = "The last successful backup is at most 26 hours old."
purpose = "corrective"
enforcement = "mandatory"
risk = "high"
rule = 'exec.fault.last_success_age_hours <= 26.0'

[[actions]]
id = "exec.fault.backup_encrypted"
title = "Encrypt the backup repository"
category = "Operations"
solution = "restic"
description = "The backup repository is encrypted."
purpose = "preventative"
enforcement = "mandatory"
rule = 'exec.fault.encrypted'
"#;

const EXEC_GOOD: &str = r#"echo '{"key": "exec.fault.last_success_age_hours", "value": 3.5}'
echo '{"key": "exec.fault.encrypted", "value": true}'"#;

/// The program of a row (`None`: the healthy one).
fn exec_program(fault: Option<Fault>) -> String {
    let Some(fault) = fault else {
        return EXEC_GOOD.to_owned();
    };
    match fault {
        Fault::Unauthorized => {
            "echo 'restic: 401 Unauthorized: bad credentials' >&2\nexit 1".into()
        }
        Fault::Forbidden => "echo 'restic: 403 Forbidden: access denied' >&2\nexit 77".into(),
        Fault::Throttled => "echo 'restic: 429 Too Many Requests' >&2\nexit 75".into(),
        // Its pid and its child's, for the check that the group was killed.
        Fault::Timeout => {
            format!("echo $$ > \"$PIDS\"\n/bin/sleep 30 &\necho $! >> \"$PIDS\"\n{EXEC_GOOD}\nwait")
        }
        Fault::TruncatedBody => {
            format!("{EXEC_GOOD}\nprintf '{{\"key\": \"exec.fault.extra\", \"val'")
        }
        Fault::WrongTypes => {
            r#"echo '{"key": "exec.fault.last_success_age_hours", "value": [3.5]}'"#.into()
        }
        Fault::Oversized => format!("i=0\nwhile [ $i -lt 200 ]; do\n{EXEC_GOOD}\ni=$((i+1))\ndone"),
        Fault::NotFound
        | Fault::ThrottledRetryAfter
        | Fault::TruncatedTransfer
        | Fault::Redirect => {
            unreachable!("{fault:?} has no program")
        }
    }
}

fn exec_block(dir: &Path, name: &str, program: &Path) -> String {
    format!(
        r#"  kind = "exec"
  name = "fault"
  argv = ["{program}"]
  timeout = "1s"
  env_set = {{ PATH = "/usr/bin:/bin", PIDS = "{dir}/{name}.pids" }}
  max_stdout_bytes = 4096
  catalog = "{dir}/exec-catalog.toml"
"#,
        program = program.display(),
        dir = dir.display()
    )
}

fn exec_setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exec-catalog.toml"), EXEC_CATALOG).unwrap();
    let write = |name: &str, fault: Option<Fault>| -> PathBuf {
        let p = dir.path().join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        write!(f, "#!/bin/sh\n{}\n", exec_program(fault)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let program = write(HEALTHY, None);
    let mut tenants = tenant(HEALTHY, &exec_block(dir.path(), HEALTHY, &program));
    let mut rows = Vec::new();
    for (fault, _) in ROWS {
        let Some(expected) = exec_expected(fault) else {
            continue;
        };
        let program = match fault {
            Fault::NotFound => dir.path().join("no-such-program"),
            _ => write(fault.name(), Some(fault)),
        };
        tenants.push_str(&tenant(
            fault.name(),
            &exec_block(dir.path(), fault.name(), &program),
        ));
        rows.push((fault, expected));
    }
    Setup {
        kind: "exec",
        rows,
        tenants,
        extra: String::new(),
        hits: None,
        other_origin: None,
        dir,
        _servers: Vec::new(),
    }
}

/// Whether process `pid` is gone (a zombie waiting for its reaper counts as gone).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// The `timeout` row's program and its child were killed with their group.
async fn check_exec_processes_killed(dir: &Path) {
    let pids: Vec<i32> = std::fs::read_to_string(dir.join("timeout.pids"))
        .expect("the timeout program ran")
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids.iter().all(|p| gone(*p)) {
        assert!(Instant::now() < deadline, "still running: {pids:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- the tests: one per kind, same table -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgraph_faults_are_classified_gaps() {
    run(http_setup(Arc::new(MsGraph)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_iam_faults_are_classified_gaps() {
    run(http_setup(Arc::new(AwsIam)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_faults_are_classified_gaps() {
    run(http_setup(Arc::new(HttpJson)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_faults_are_classified_gaps() {
    run(exec_setup()).await;
}

/// Every registered kind is in this table: a new kind must add its adapter here.
#[test]
fn every_builtin_kind_is_covered() {
    let covered = ["msgraph", "aws_iam", "http_json", "exec"];
    for k in postured_connectors::builtin_kinds() {
        assert!(
            covered.contains(&k.name()),
            "connector kind {} has no adapter in tests/connector_faults.rs",
            k.name()
        );
    }
}
