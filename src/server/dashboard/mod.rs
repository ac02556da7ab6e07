//! The web dashboard for people, at `/`: server-rendered HTML (maud) over the same in-memory
//! state and store the API reads, in the spirit of the Compliance Manager overview. Not part
//! of the API (and not in its OpenAPI document).
//!
//! Pages (every one but sign-in needs a session, else `303 /sign-in?next=...`):
//! - `GET /` overview: score, trend, key improvement actions, breakdowns, filters ([`overview`])
//! - `GET /assessments`, `GET /assessments/{id}`: assessments and their controls ([`assessments`])
//! - `GET /actions/{action}?tenant=T|group=G`, `POST` the same: an improvement action's page
//!   and its manual workflow form ([`actions`])
//! - `POST /actions/{action}/evidence?...`, `GET /evidence/{id}`: evidence upload and download
//!   ([`evidence`]; uploads bounded by `[evidence] max_file_bytes`, not the form limit)
//! - `GET /alerts`: recent alert events and delivery ([`alerts`])
//! - `GET|POST /sign-in`, `POST /sign-out` ([`signin`]; sessions in [`session`])
//! - `GET /sign-in/oidc`, `GET /sign-in/oidc/callback`: OpenID Connect sign-in ([`oidc_signin`])
//! - `GET /static/dashboard.css`: the one stylesheet, compiled into the binary
//!
//! Every answer carries a Content-Security-Policy without scripts (`default-src 'none'`,
//! styles and images from the origin only, forms posting to it only, `frame-ancestors
//! 'none'`), `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`,
//! `X-Frame-Options: DENY`, and pages `Cache-Control: no-store`. No JavaScript is served:
//! every flow is a link or a form. Every form that changes something posts the session's
//! CSRF token; a POST whose `Sec-Fetch-Site` says it came from another site is refused.
//!
//! Must not: hold the logic of a write (a manual status goes through
//! [`crate::server::assessments::record_action_set`], as the API's does).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};

use crate::app::App;
use crate::server::auth::AuthState;

pub mod actions;
pub mod alerts;
pub mod assessments;
pub mod evidence;
pub mod filters;
pub mod layout;
pub mod oidc_signin;
pub mod overview;
pub mod session;
pub mod signin;

use layout::Nav;
use session::{Session, Sessions};

/// The stylesheet, served at `/static/dashboard.css`.
pub const STYLESHEET: &str = include_str!("dashboard.css");

/// The Content-Security-Policy of every dashboard answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest accepted form body (64 KiB: the workflow form with every field at its limit fits).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The dashboard's routes, with a new session table (sessions last as long as the router):
/// the session cookie is `Secure` unless `[server] listen` is a loopback address.
pub fn routes(app: &App, auth: AuthState) -> Router<Arc<App>> {
    routes_with(
        Arc::new(Sessions::new(!session::is_loopback(
            &app.config.server.listen,
        ))),
        auth,
    )
}

/// The dashboard's routes over a given session table (whoever holds it can start sessions,
/// e.g. a test signing in people of every role) and the API's authentication state (the
/// sign-in resolves tokens through it).
pub fn routes_with(sessions: Arc<Sessions>, auth: AuthState) -> Router<Arc<App>> {
    let oidc = oidc_signin::OidcSignIn::from_auth(&auth, sessions.secure()).map(Arc::new);
    Router::new()
        .route("/", get(overview::page))
        .route("/assessments", get(assessments::list))
        .route("/assessments/{id}", get(assessments::page))
        .route("/actions/{action}", get(actions::page).post(actions::save))
        .route(
            "/actions/{action}/evidence",
            axum::routing::post(evidence::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/evidence/{id}", get(evidence::download))
        .route("/alerts", get(alerts::page))
        .route("/sign-in", get(signin::form).post(signin::sign_in))
        .route("/sign-in/oidc", get(oidc_signin::start))
        .route("/sign-in/oidc/callback", get(oidc_signin::callback))
        .route("/sign-out", axum::routing::post(signin::sign_out))
        .route("/static/dashboard.css", get(stylesheet))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::Extension(sessions))
        .layer(axum::Extension(auth))
        .layer(axum::Extension(oidc))
        .layer(middleware::from_fn(security_headers))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Adds the security headers of the module docs to every answer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// An HTML answer with `status`.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page saying what went wrong (404, 403, 400, 503 ...), with `status`.
pub fn error_page(status: StatusCode, session: Option<&Session>, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    html_response(
        status,
        layout::page(
            title,
            Nav::None,
            session,
            html! {
                h1 { (title) }
                p { (message) }
                p { a href="/" { "Back to the overview" } }
            },
        ),
    )
}

/// The refusal of a form POST, `None` when it may proceed: refused (403) when the browser says
/// it came from another site (`Sec-Fetch-Site` other than `same-origin` or `none`), or when
/// `session` is given and `csrf` is not its token.
pub fn check_post(
    headers: &HeaderMap,
    session: Option<&Session>,
    csrf: Option<&str>,
) -> Option<Response> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin" && s != "none") {
        return Some(error_page(
            StatusCode::FORBIDDEN,
            session,
            "This form was posted from another site and was refused.",
        ));
    }
    if let Some(s) = session
        && !csrf.is_some_and(|c| s.csrf_matches(c))
    {
        return Some(error_page(
            StatusCode::FORBIDDEN,
            Some(s),
            "The form's security token is missing or out of date: reload the page and try again.",
        ));
    }
    None
}
