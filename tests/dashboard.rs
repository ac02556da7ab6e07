//! The web dashboard end to end: a real daemon on loopback with a real SQLite file and the
//! demo tenants replayed from their recordings.
//!
//! - Over plain HTTP (reqwest, no redirects followed): sign-in and sessions, the redirect of
//!   unauthenticated pages, the security headers, CSRF and cross-site refusals, the workflow
//!   form saving through the API's body (and its field errors), and the escaping of hostile
//!   text from templates and from people.
//! - In a real headless Chromium (`tests/browser/dashboard.mjs`, playwright-core driving Debian
//!   `chromium`, axe-core checking accessibility): sign in, filter the overview by category,
//!   open an action, set a manual status with a note, see the score change; screenshots of the
//!   main pages. Skipped with a message when node, the npm packages or chromium are missing,
//!   unless `POSTURED_REQUIRE_TEST_SERVERS` is set (scripts/test.sh, CI).

mod support;

use std::path::Path;

use std::sync::Arc;

use postured::model::InstanceScope;
use postured::server::auth::{Principal, Role, Scope};
use postured::server::dashboard::session::Sessions;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use support::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The demo configuration's tenants and assessments (config/demo.toml), recordings at their
/// absolute paths.
fn demo_tenants() -> String {
    let demo = std::fs::read_to_string(Path::new(ROOT).join("config/demo.toml")).unwrap();
    let start = demo.find("[[tenants]]").expect("demo tenants");
    demo[start..]
        .replace(
            "replay_dir = \"demo/",
            &format!("replay_dir = \"{ROOT}/config/demo/"),
        )
        .to_string()
}

/// A daemon with both demo tenants polled once.
async fn demo_app() -> TestApp {
    let app = TestApp::spawn("", &demo_tenants()).await;
    for t in ["contoso-demo", "aws-demo"] {
        let r = app.poll(t).await;
        assert!(r.stored, "{t}: {:?}", r.outcome);
    }
    app
}

fn client() -> reqwest::Client {
    postured::http::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(h: &HeaderMap) -> &str {
    h.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A signed-in browser without a browser: the session cookie and the page's CSRF token.
struct Person {
    base: String,
    cookie: String,
    csrf: String,
}

impl Person {
    /// A person whose session the test started itself in `sessions` (any role and scope).
    fn with_session(
        addr: std::net::SocketAddr,
        sessions: &Sessions,
        role: Role,
        tenant: Option<&str>,
    ) -> Person {
        let (id, session) = sessions.create(Principal {
            subject: format!("token:{}", role.as_str()),
            role,
            scope: Scope {
                tenants: tenant.map(|t| [t.to_string()].into()),
                groups: None,
            },
        });
        Person {
            base: format!("http://{addr}"),
            cookie: format!("{}={id}", sessions.cookie_name()),
            csrf: session.csrf,
        }
    }

    async fn sign_in(app: &TestApp, token: &str) -> Person {
        let base = format!("http://{}", app.addr);
        let r = client()
            .post(format!("{base}/sign-in"))
            .form(&[("token", token), ("next", "/assessments")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(r.headers()), "/assessments");
        let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(
            !set.contains("Secure"),
            "a loopback server has no Secure cookie: {set}"
        );
        let cookie = set.split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("postured_session="), "{cookie}");
        let mut p = Person {
            base,
            cookie,
            csrf: String::new(),
        };
        let (status, body) = p.get("/").await;
        assert_eq!(status, StatusCode::OK);
        p.csrf = csrf_of(&body);
        p
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = client()
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client()
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

fn csrf_of(body: &str) -> String {
    let at =
        body.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    body[at..at + 64].to_owned()
}

/// The overview's score, `72.5` from `data-testid="score">72.5%<`.
fn score_of(body: &str) -> f64 {
    let at = body.find("data-testid=\"score\">").expect("score") + "data-testid=\"score\">".len();
    body[at..body[at..].find('%').unwrap() + at]
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_which_a_valid_token_opens_and_sign_out_ends() {
    let app = demo_app().await;
    let base = format!("http://{}", app.addr);
    // Unauthenticated pages go to the sign-in page, which remembers where they were going.
    for (path, next) in [
        ("/", "%2F"),
        ("/assessments?x=1", "%2Fassessments%3Fx%3D1"),
        ("/alerts", "%2Falerts"),
    ] {
        let r = client().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(r.headers()), format!("/sign-in?next={next}"));
    }
    // A bearer token is not a session: pages ask for a sign-in.
    let r = client()
        .get(format!("{base}/"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The sign-in page, with the security headers of every dashboard answer.
    let r = client()
        .get(format!("{base}/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<label for=\"token\">API token</label>"),
        "{body}"
    );
    assert!(!body.contains("<script"), "no script is served");
    // The stylesheet, from the binary.
    let r = client()
        .get(format!("{base}/static/dashboard.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    // A wrong token: 401, the form again, the token never echoed; no cookie.
    let wrong = "wrong-token-<b>echo</b>";
    let r = client()
        .post(format!("{base}/sign-in"))
        .form(&[("token", wrong), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("was not accepted"));
    assert!(!body.contains("wrong-token"), "the token is echoed");
    // An absolute or protocol-relative `next` is not followed off the site.
    let r = client()
        .post(format!("{base}/sign-in"))
        .form(&[("token", API_TOKEN), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(r.headers()), "/");
    // A sign-in posted from another site is refused.
    let r = client()
        .post(format!("{base}/sign-in"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", API_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(SET_COOKIE).is_none());

    let person = Person::sign_in(&app, API_TOKEN).await;
    for (path, text) in [
        ("/", "Compliance overview"),
        ("/assessments", "contoso-demo-gdpr"),
        ("/assessments/contoso-demo-gdpr", "Art. 5"),
        ("/alerts", "Recent events"),
    ] {
        let (status, body) = person.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains(text), "{path}: {text}");
        assert!(body.contains("api_token (administrator)"), "{path}");
    }
    assert_eq!(
        person.get("/assessments/nope").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        person.get("/?test_status=great").await.0,
        StatusCode::BAD_REQUEST
    );
    // The overview's filters narrow the score's instances.
    let (_, all) = person.get("/").await;
    let (_, docs) = person.get("/?category=Documentation").await;
    assert!(docs.contains("<option value=\"Documentation\" selected>"));
    assert_ne!(all, docs);

    // Sign-out needs the session's CSRF token.
    let r = person.post("/sign-out", &[("csrf", "0")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(person.get("/").await.0, StatusCode::OK);
    let r = person.post("/sign-out", &[("csrf", &person.csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(person.get("/").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workflow_form_is_csrf_protected_and_saves_through_the_api_body() {
    let app = demo_app().await;
    let person = Person::sign_in(&app, API_TOKEN).await;
    let scope = InstanceScope::Group("default".into());
    let action = "gdpr.lawful_basis";
    let page = format!("/actions/{action}?group=default");
    let (status, body) = person.get(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Document the lawful basis"), "{body}");
    assert!(body.contains("<label for=\"test_status\">Test status</label>"));
    let (_, before) = person.get("/").await;
    let before = score_of(&before);
    let saved = || async { app.app.store.manual_status(&scope, action).await.unwrap() };

    // Without the token, with a wrong one, or from another site: refused, nothing saved.
    for (csrf, site) in [
        (None, "same-origin"),
        (Some("f".repeat(64)), "same-origin"),
        (Some(person.csrf.clone()), "cross-site"),
    ] {
        let mut form = vec![("test_status", "passed"), ("notes", "x")];
        if let Some(c) = &csrf {
            form.push(("csrf", c));
        }
        let r = client()
            .post(format!("{}{page}", person.base))
            .header("cookie", &person.cookie)
            .header("sec-fetch-site", site)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{csrf:?} {site}");
        assert_eq!(saved().await, None);
    }
    // Without a session: to the sign-in page, nothing saved.
    let r = client()
        .post(format!("{}{page}", person.base))
        .form(&[("csrf", person.csrf.as_str()), ("test_status", "passed")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(r.headers()).starts_with("/sign-in?next="));
    assert_eq!(saved().await, None);

    // A field past its limit: the page again, 400, the error next to the field, the posted
    // values kept, nothing saved.
    let r = person
        .post(
            &page,
            &[
                ("csrf", &person.csrf),
                ("test_status", "passed"),
                ("notes", "bell \u{7} in the notes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"notes-error\""), "{body}");
    assert!(body.contains("aria-invalid=\"true\""));
    assert!(body.contains("contains control characters"));
    assert_eq!(saved().await, None);

    // Saved: 303 back to the page (Post/Redirect/Get), through the model runtime; hostile
    // text a person typed is shown escaped.
    let notes = "Reviewed the register </textarea><script>alert('notes')</script>";
    let r = person
        .post(
            &page,
            &[
                ("csrf", &person.csrf),
                ("implementation_status", "implemented"),
                ("test_status", "passed"),
                ("assigned_to", "Ana <ana@example.com>"),
                ("notes", notes),
                ("evidence", "https://intranet.example/ropa"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(r.headers()), format!("{page}&notice=saved"));
    let record = saved().await.expect("saved");
    assert_eq!(record.notes.as_deref(), Some(notes));
    assert_eq!(
        record.test_status,
        Some(postured::evaluation::TestStatus::Passed)
    );
    assert_eq!(record.evidence, ["https://intranet.example/ropa"]);
    let (_, body) = person.get(&format!("{page}&notice=saved")).await;
    assert!(body.contains("Saved."));
    assert!(
        !body.contains("<script>alert('notes')"),
        "notes not escaped"
    );
    assert!(body.contains("&lt;/textarea&gt;&lt;script&gt;alert('notes')"));
    assert!(body.contains("Ana &lt;ana@example.com&gt;"));
    assert!(body.contains("href=\"https://intranet.example/ropa\""));
    // The audit log of the instance: who changed which field, from what to what.
    let audit = &body[body.find("Changes by people").expect("audit table")..];
    assert!(
        audit.contains("<td>api_token</td><td>action.update</td><td>test_status</td><td class=\"notes\">(none)</td><td class=\"notes\">passed</td>"),
        "{audit}"
    );
    // Evidence: a file uploaded with the form (CSRF part first) through the API's body, then
    // listed, downloadable with its hash checked, and audited.
    let upload = |csrf: &str, name: &'static str, bytes: &'static [u8]| {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(name),
            );
        client()
            .post(format!(
                "{}/actions/{action}/evidence?group=default",
                person.base
            ))
            .header("cookie", &person.cookie)
            .header("sec-fetch-site", "same-origin")
            .multipart(form)
            .send()
    };
    let r = upload("0", "register.txt", b"Records of processing")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = upload(&person.csrf, "register.pdf", b"not a pdf")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.text().await.unwrap().contains("id=\"file-error\""));
    assert!(
        app.app
            .store
            .evidence_of(&scope, action)
            .await
            .unwrap()
            .is_empty()
    );
    let r = upload(
        &person.csrf,
        "register.txt",
        b"Records of processing, reviewed",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(r.headers()), format!("{page}&notice=evidence"));
    let rows = app.app.store.evidence_of(&scope, action).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].uploaded_by, "api_token");
    let (_, body) = person.get(&format!("{page}&notice=evidence")).await;
    assert!(body.contains("Evidence attached."));
    assert!(body.contains(&format!(
        "href=\"/evidence/{}\">register.txt</a>",
        rows[0].id
    )));
    assert!(
        body.contains("<td>api_token</td><td>evidence.add</td>"),
        "{body}"
    );
    let r = client()
        .get(format!("{}/evidence/{}", person.base, rows[0].id))
        .header("cookie", &person.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["x-evidence-sha256"].to_str().unwrap(),
        rows[0].sha256.as_deref().unwrap()
    );
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        b"Records of processing, reviewed"
    );
    assert_eq!(
        person.get("/evidence/999999").await.0,
        StatusCode::NOT_FOUND
    );
    // The score counts it at once.
    let (_, after) = person.get("/").await;
    assert!(
        score_of(&after) > before,
        "{before} -> {}",
        score_of(&after)
    );
    // The same form again changes nothing.
    let r = person
        .post(
            &page,
            &[
                ("csrf", &person.csrf),
                ("implementation_status", "implemented"),
                ("test_status", "passed"),
                ("assigned_to", "Ana <ana@example.com>"),
                ("notes", notes),
            ],
        )
        .await;
    assert_eq!(location(r.headers()), format!("{page}&notice=unchanged"));
    // An unknown action or scope: 404.
    assert_eq!(
        person.get("/actions/nope.nope?group=default").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        person.get(&format!("/actions/{action}?group=nope")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        person.get(&format!("/actions/{action}")).await.0,
        StatusCode::BAD_REQUEST
    );
}

/// The action page's audit section shows the action's newest rows however many other rows its
/// group has: 20,001 rows of other objects (past the 20,000 rows the page once scanned from
/// the oldest) written before the action's own newest row, which the page still lists, newest
/// first, next to the older one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_section_shows_the_newest_rows_of_a_busy_group() {
    use postured::store::AuditRecord;
    let app = demo_app().await;
    let person = Person::sign_in(&app, API_TOKEN).await;
    let action = "gdpr.lawful_basis";
    let row = |object: &str, actor: &str, n: usize| AuditRecord {
        at: chrono::Utc::now(),
        actor: actor.to_owned(),
        action: "action.update".to_owned(),
        tenant: None,
        group: Some("default".to_owned()),
        object: object.to_owned(),
        field: Some("notes".to_owned()),
        old_value: None,
        new_value: Some(serde_json::json!(format!("note {n}"))),
        request_id: None,
    };
    let store = &app.app.store;
    store
        .append_audit(&[row(action, "cli:oldest", 0)])
        .await
        .unwrap();
    for chunk in 0..21 {
        let rows: Vec<AuditRecord> = (0..1_000)
            .map(|i| row("gdpr.other_action", "cli:busy", chunk * 1_000 + i))
            .collect();
        store.append_audit(&rows).await.unwrap();
    }
    store
        .append_audit(&[row(action, "cli:newest", 1)])
        .await
        .unwrap();
    let (status, body) = person
        .get(&format!("/actions/{action}?group=default"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let audit = &body[body.find("Changes by people").expect("audit table")..];
    let audit = &audit[..audit.find("</table>").unwrap()];
    let newest = audit.find("<td>cli:newest</td>").expect("the newest row");
    let oldest = audit.find("<td>cli:oldest</td>").expect("the older row");
    assert!(newest < oldest, "newest first: {audit}");
    assert!(
        !audit.contains("cli:busy"),
        "another action's rows: {audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_template_text_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hostile.toml"),
        r#"
id = "hostile"
title = "<script>alert('template')</script>Hostile"
certification = "H<img src=x onerror=alert(1)>"
product = "x"

[[controls]]
id = "C-1"
family = "F"
title = "<script>alert('control')</script>"
description = ""
actions = ["hostile.policy"]

[[actions]]
id = "hostile.policy"
title = "<script>alert('action')</script>"
implementation_type = "documentation"
points = 5
description = "</pre><script>alert('guidance')</script>"
guidance = "Step 1 <script>alert('how')</script>"
evidence = "A signed <b>register</b>"
"#,
    )
    .unwrap();
    let tenants = format!(
        "{}\n[[assessments]]\nid = \"contoso-hostile\"\ntenant = \"contoso-demo\"\ntemplate = \"hostile\"\n",
        demo_tenants()
    );
    let app = TestApp::spawn(
        &format!(
            "[templates]\ndirs = [{:?}]\n",
            dir.path().display().to_string()
        ),
        &tenants,
    )
    .await;
    app.poll("contoso-demo").await;
    let person = Person::sign_in(&app, API_TOKEN).await;
    let (status, body) = person.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("<script") && !body.contains("<img"));
    for path in [
        "/?assessment=contoso-hostile",
        "/assessments",
        "/assessments/contoso-hostile",
        "/actions/hostile.policy?group=default",
    ] {
        let (status, body) = person.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.contains("<script"), "{path}: unescaped script");
        assert!(!body.contains("<img"), "{path}: unescaped img");
        assert!(
            body.contains("&lt;script&gt;alert("),
            "{path}: the hostile text is shown, escaped"
        );
    }
    let (_, body) = person.get("/actions/hostile.policy?group=default").await;
    assert!(body.contains("&lt;/pre&gt;&lt;script&gt;alert('guidance')"));
    // The template's implementation guidance and expected evidence, escaped.
    assert!(body.contains("<h3>Implementation guidance</h3>"));
    assert!(body.contains("Step 1 &lt;script&gt;alert('how')&lt;/script&gt;"));
    assert!(body.contains("<h3>Expected evidence</h3>"));
    assert!(body.contains("A signed &lt;b&gt;register&lt;/b&gt;"));
}

/// The dashboard of `app` served on 127.0.0.1:0 over a session table the test holds.
async fn serve_dashboard(app: &TestApp) -> (std::net::SocketAddr, Arc<Sessions>) {
    let sessions = Arc::new(Sessions::new(false));
    let router = postured::server::dashboard::routes_with(
        sessions.clone(),
        postured::server::auth::AuthState::new(app.app.clone()),
    )
    .with_state(app.app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, sessions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_when_its_api_token_is_revoked() {
    use secrecy::ExposeSecret;
    let app = demo_app().await;
    // Checked on every request here (the daemon's table checks at most once a minute).
    let sessions = Arc::new(Sessions::new(false).with_recheck(std::time::Duration::ZERO));
    let router = postured::server::dashboard::routes_with(
        sessions.clone(),
        postured::server::auth::AuthState::new(app.app.clone()),
    )
    .with_state(app.app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let minted = postured::server::tokens::create(
        app.app.store.as_ref(),
        postured::server::tokens::NewToken {
            name: "reviewer".into(),
            role: Role::Reader,
            scope: Scope::default(),
            expires_at: None,
        },
        "api_token",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let base = format!("http://{addr}");
    let r = client()
        .post(format!("{base}/sign-in"))
        .form(&[("token", minted.text.expose_secret()), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = || async {
        client()
            .get(format!("{base}/assessments"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
    };
    let r = page().await;
    assert_eq!(r.status(), StatusCode::OK, "the token is active");
    assert_eq!(sessions.len(), 1);
    let revoked = postured::server::tokens::revoke(
        app.app.store.as_ref(),
        &minted.stored.token.id,
        "api_token",
    )
    .await
    .unwrap();
    assert!(revoked.is_some());
    let r = page().await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the session followed the revocation"
    );
    assert_eq!(location(r.headers()), "/sign-in?next=%2Fassessments");
    assert_eq!(sessions.len(), 0, "the session is gone");
    let r = page().await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_scopes_apply_as_in_the_api() {
    let app = demo_app().await;
    let (addr, sessions) = serve_dashboard(&app).await;
    let group = InstanceScope::Group("default".into());
    let action = "gdpr.lawful_basis";
    let page = format!("/actions/{action}?group=default");
    let saved = || async { app.app.store.manual_status(&group, action).await.unwrap() };

    // A reader sees the action but no form, and a post is refused by the shared body.
    let reader = Person::with_session(addr, &sessions, Role::Reader, None);
    let (status, body) = reader.get(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("id=\"workflow\""));
    assert!(body.contains("may read this action but not change it"));
    let r = reader
        .post(
            &page,
            &[("csrf", &reader.csrf), ("notes", "reader was here")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("needs the role contributor")
    );
    assert_eq!(saved().await, None);

    let form = reqwest::multipart::Form::new()
        .text("csrf", reader.csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(&b"policy"[..]).file_name("policy.txt"),
        );
    let r = client()
        .post(format!(
            "{}/actions/{action}/evidence?group=default",
            reader.base
        ))
        .header("cookie", &reader.cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a reader attaches no evidence"
    );
    assert!(
        app.app
            .store
            .evidence_of(&group, action)
            .await
            .unwrap()
            .is_empty()
    );

    // A contributor's form has no test status; notes are saved, a test status is refused
    // (assessor), with the message shown.
    let contributor = Person::with_session(addr, &sessions, Role::Contributor, None);
    let (_, body) = contributor.get(&page).await;
    assert!(body.contains("id=\"workflow\""));
    assert!(!body.contains("name=\"test_status\""));
    let r = contributor
        .post(
            &page,
            &[("csrf", &contributor.csrf), ("test_status", "passed")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("needs the role assessor"));
    assert_eq!(saved().await, None);
    let r = contributor
        .post(&page, &[("csrf", &contributor.csrf), ("notes", "drafted")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(saved().await.unwrap().notes.as_deref(), Some("drafted"));
    assert_eq!(saved().await.unwrap().test_status, None);

    // An assessor sets the test status.
    let assessor = Person::with_session(addr, &sessions, Role::Assessor, None);
    let r = assessor
        .post(
            &page,
            &[("csrf", &assessor.csrf), ("test_status", "passed")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        saved().await.unwrap().test_status,
        Some(postured::evaluation::TestStatus::Passed)
    );
    // Another session's CSRF token is not this session's.
    let r = assessor
        .post(
            &page,
            &[
                ("csrf", &contributor.csrf),
                ("test_status", "failed_low_risk"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A reader limited to aws-demo: contoso-demo's instances and assessments do not exist for
    // it, and the overview is aws-demo's.
    let contoso = app
        .app
        .compliance_model()
        .await
        .instances()
        .find(|i| i.key.scope == InstanceScope::Tenant("contoso-demo".into()))
        .map(|i| i.key.action.clone())
        .expect("a contoso-demo instance");
    let limited = Person::with_session(addr, &sessions, Role::Reader, Some("aws-demo"));
    assert_eq!(
        limited
            .get(&format!("/actions/{contoso}?tenant=contoso-demo"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        limited.get("/assessments/contoso-demo-gdpr").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = limited.get("/assessments").await;
    assert!(list.contains("aws-demo-iso27001"));
    assert!(!list.contains("contoso-demo"));
    // A group's instance: found through the tenant's own assessments only.
    assert_eq!(
        limited.get(&page).await.0,
        StatusCode::NOT_FOUND,
        "GDPR is contoso-demo's only"
    );
    let (status, shared) = limited.get("/actions/csf.gv.policy?group=default").await;
    assert_eq!(status, StatusCode::OK);
    assert!(shared.contains("aws-demo-nist-csf"));
    assert!(
        !shared.contains("contoso-demo"),
        "another tenant's assessments are listed"
    );
    let (_, overview) = limited.get("/?tenant=contoso-demo").await;
    assert!(overview.contains("<option value=\"aws-demo\" selected>"));
    assert!(!overview.contains("contoso-demo"));
}

/// Whether the browser test can run here: node, its npm packages and chromium.
fn browser_available() -> Result<(), String> {
    let browser_dir = Path::new(ROOT).join("tests/browser");
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("node is not installed".into());
    }
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        return Err("run `npm ci` in tests/browser".into());
    }
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("Debian chromium is not installed (/usr/bin/chromium)".into());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_filters_opens_an_action_and_sets_its_status_in_chromium() {
    if let Err(why) = browser_available() {
        assert!(!servers_required(), "browser test required but {why}");
        eprintln!("skipping the browser test: {why}");
        return;
    }
    let app = demo_app().await;
    let screenshots = match std::env::var_os("POSTURED_UPDATE_SCREENSHOTS") {
        Some(_) => Path::new(ROOT).join("docs/screenshots"),
        None => app.dir.path().join("screenshots"),
    };
    std::fs::create_dir_all(&screenshots).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(Path::new(ROOT).join("tests/browser/dashboard.mjs"))
        .env("DASHBOARD_URL", format!("http://{}", app.addr))
        .env("DASHBOARD_TOKEN", API_TOKEN)
        .env("SCREENSHOT_DIR", &screenshots)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed ({:?})\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("{stdout}");
    // The person's change reached the store through the same body as the API's.
    let record = app
        .app
        .store
        .manual_status(
            &InstanceScope::Group("default".into()),
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("action: "))
                .expect("the script names the action it set"),
        )
        .await
        .unwrap()
        .expect("saved");
    assert_eq!(
        record.test_status,
        Some(postured::evaluation::TestStatus::Passed)
    );
    assert!(
        record
            .notes
            .unwrap()
            .contains("Reviewed in the browser test")
    );
    for page in ["sign-in", "overview", "assessment", "action"] {
        assert!(
            screenshots.join(format!("{page}.png")).is_file(),
            "{page}.png"
        );
    }
}
