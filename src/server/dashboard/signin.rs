//! Sign-in and sign-out.
//!
//! - `GET /sign-in?next=/path`: a form where a person pastes an API token.
//! - `POST /sign-in` (`token`, `next`): the token is resolved by
//!   [`crate::server::auth::resolve`], the one resolution the API's bearer middleware uses, so
//!   every kind of credential the API accepts signs in here too. Accepted: a new session
//!   ([`super::session`]), `303` to `next` (a local path only) with the cookie. Refused: the
//!   form again, `401`, saying so (never echoing the token). A token longer than
//!   [`MAX_TOKEN_CHARS`] is refused the same way.
//! - `GET /sign-in/oidc`, `GET /sign-in/oidc/callback`: the identity provider's sign-in, offered
//!   on the form when `[server.oidc]` has a `client_id` ([`super::oidc_signin`]).
//! - `POST /sign-out` (`csrf`): the session ends, the cookie is cleared, `303 /sign-in`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::server::dashboard::layout::{self, Nav};
use crate::server::dashboard::oidc_signin::OidcSignIn;
use crate::server::dashboard::session::{Sessions, local_target};
use crate::server::dashboard::{check_post, html_response};

/// Longest token accepted, in characters (API tokens and JWTs are far shorter).
pub const MAX_TOKEN_CHARS: usize = 8192;

/// Query of `GET /sign-in`.
#[derive(Debug, Default, Deserialize)]
pub struct Next {
    /// Where to go after signing in.
    pub next: Option<String>,
}

/// Body of `POST /sign-in`.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    /// The API token.
    #[serde(default)]
    pub token: String,
    /// Where to go after signing in.
    #[serde(default)]
    pub next: Option<String>,
}

/// The sign-in page: the token form, with `error` above it and, when `oidc` names the
/// identity provider, a "Sign in with <provider>" link (see [`super::oidc_signin`]).
pub fn render(next: &str, error: Option<&str>, status: StatusCode, oidc: Option<&str>) -> Response {
    let start: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let content = html! {
        div.signin {
            h1 { "Sign in" }
            @if let Some(provider) = oidc {
                p { a.button href={ "/sign-in/oidc?next=" (start) } { "Sign in with " (provider) } }
            }
            p { "Paste an API token to open the dashboard. Its role and scope apply to everything you see and do here." }
            @if let Some(e) = error {
                div.error-summary role="alert" id="token-error" { (e) }
            }
            form method="post" action="/sign-in" {
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="token" { "API token" }
                    input id="token" name="token" type="password" autocomplete="off" required
                        aria-describedby=[error.map(|_| "token-error")];
                }
                button type="submit" { "Sign in" }
            }
        }
    };
    html_response(status, layout::page("Sign in", Nav::None, None, content))
}

/// `GET /sign-in`.
pub async fn form(
    Extension(oidc): Extension<Option<Arc<OidcSignIn>>>,
    Query(q): Query<Next>,
) -> Response {
    render(
        local_target(q.next.as_deref().unwrap_or("/")),
        None,
        StatusCode::OK,
        oidc.as_deref().map(OidcSignIn::label),
    )
}

/// `POST /sign-in`.
pub async fn sign_in(
    Extension(sessions): Extension<Arc<Sessions>>,
    Extension(auth): Extension<crate::server::auth::AuthState>,
    Extension(oidc): Extension<Option<Arc<OidcSignIn>>>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    if let Some(r) = check_post(&headers, None, None) {
        return r;
    }
    let next = local_target(f.next.as_deref().unwrap_or("/")).to_owned();
    let token = f.token.trim();
    let principal = if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        None
    } else {
        crate::server::auth::resolve(&auth, token.as_bytes())
            .await
            .ok()
    };
    let Some(principal) = principal else {
        return render(
            &next,
            Some("The token was not accepted: it is unknown, expired or revoked."),
            StatusCode::UNAUTHORIZED,
            oidc.as_deref().map(OidcSignIn::label),
        );
    };
    tracing::info!(subject = %principal.subject, role = principal.role.as_str(), "dashboard sign-in");
    let (id, _) = sessions.create(principal);
    let mut response = Redirect::to(&next).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, sessions.set_cookie(&id));
    response
}

/// Body of `POST /sign-out`.
#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// `POST /sign-out`.
pub async fn sign_out(
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    Form(f): Form<SignOutForm>,
) -> Response {
    if let Some(id) = sessions.id_from(&headers)
        && let Some(session) = sessions.get(&id)
    {
        if let Some(r) = check_post(&headers, Some(&session), f.csrf.as_deref()) {
            return r;
        }
        sessions.remove(&id);
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, sessions.clear_cookie());
    response.headers_mut().insert(
        header::HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cookies\""),
    );
    response
}
