//! Dashboard sessions: a person signs in once (`signin`) and the browser then carries a
//! session cookie instead of a bearer token.
//!
//! - Sessions are held server-side, in memory, keyed by the SHA-256 of their id (32 random
//!   bytes from the thread-local CSPRNG, hex in the cookie); each stores the resolved
//!   [`Principal`] and a per-session CSRF token (32 random bytes) that every form posts back.
//! - A session ends [`SESSION_LIFETIME`] after sign-in (8 h), after [`SESSION_IDLE`] without a
//!   request (1 h), or at sign-out. At most [`MAX_SESSIONS`] (1,000) are held: a sign-in past it
//!   first drops expired sessions, then the oldest one.
//! - The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` (named
//!   `__Host-postured_session`) unless the server listens on a plain-HTTP loopback address
//!   (then `postured_session`: browsers drop `Secure` cookies set over plain HTTP elsewhere
//!   than localhost). Any other listen address is assumed to sit behind a TLS-terminating
//!   proxy.
//! - Sessions live as long as the server generation: a reload (SIGHUP) or restart signs
//!   everyone out. A principal's rights are those resolved at sign-in.
//! - A session signed in with an API token (subject `token:<id>`) keeps the token's id and
//!   follows it: at most once per [`DEFAULT_RECHECK`] (1 minute) per session, on a request,
//!   the store is asked whether the token is still active; a revoked, expired or deleted token,
//!   or a store that cannot answer, ends the session (the request is redirected to sign-in).
//!   Sessions of JWTs and of the shared token end with their lifetime as above.
//!
//! [`SignedIn`] is the extractor of the pages: without a valid session a request is redirected
//! to `/sign-in?next=<path>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::server::auth::Principal;

/// A session's absolute lifetime from sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(3600);
/// Most sessions held at once.
pub const MAX_SESSIONS: usize = 1000;
/// How often, at most, a session's API token is checked again in the store.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(60);

/// One signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who, with the role and scope resolved at sign-in.
    pub principal: Principal,
    /// The CSRF token every form of this session posts back (64 hex digits).
    pub csrf: String,
    /// The id of the API token it signed in with (subject `token:<id>`), checked again in the
    /// store at most once per recheck interval; `None` for other credentials.
    pub token_id: Option<String>,
}

impl Session {
    /// Whether `given` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        self.csrf.len() == given.len() && bool::from(self.csrf.as_bytes().ct_eq(given.as_bytes()))
    }
}

struct Entry {
    session: Session,
    created: Instant,
    last_seen: Instant,
    /// When its token was last found active (sign-in counts).
    checked: Instant,
}

/// The server-side session table (see the module docs).
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Entry>>,
    secure: bool,
    max: usize,
    recheck: Duration,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Whether a `[server] listen` address is a loopback address (`127.0.0.0/8`, `::1`,
/// `localhost`), where the dashboard is served over plain HTTP without `Secure` cookies.
pub fn is_loopback(listen: &str) -> bool {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => listen
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}

impl Sessions {
    /// An empty table; `secure` marks the cookie `Secure` (and names it `__Host-...`).
    pub fn new(secure: bool) -> Sessions {
        Sessions::with_capacity(secure, MAX_SESSIONS)
    }

    /// An empty table holding at most `max` sessions.
    pub fn with_capacity(secure: bool, max: usize) -> Sessions {
        Sessions {
            table: Mutex::new(HashMap::new()),
            secure,
            max: max.max(1),
            recheck: DEFAULT_RECHECK,
        }
    }

    /// The same table checking sessions' tokens at most once per `recheck` (default
    /// [`DEFAULT_RECHECK`]; zero: on every request).
    pub fn with_recheck(mut self, recheck: Duration) -> Sessions {
        self.recheck = recheck;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A panic while holding the lock leaves a consistent map (every change is one insert
        // or remove): keep serving.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Start a session for `principal` at `now`; returns its id (for the cookie) and the
    /// session.
    pub fn create_at(&self, principal: Principal, now: Instant) -> (String, Session) {
        let id = random_hex();
        let token_id = principal.subject.strip_prefix("token:").map(str::to_owned);
        let session = Session {
            principal,
            csrf: random_hex(),
            token_id,
        };
        let mut table = self.lock();
        table.retain(|_, e| alive(e, now));
        while table.len() >= self.max {
            let oldest = table.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| *k);
            match oldest {
                Some(k) => table.remove(&k),
                None => break,
            };
        }
        table.insert(
            key(&id),
            Entry {
                session: session.clone(),
                created: now,
                last_seen: now,
                checked: now,
            },
        );
        (id, session)
    }

    /// [`Sessions::create_at`] now.
    pub fn create(&self, principal: Principal) -> (String, Session) {
        self.create_at(principal, Instant::now())
    }

    /// The live session `id` names at `now` (its idle clock restarted), if any; an expired one
    /// is dropped.
    pub fn get_at(&self, id: &str, now: Instant) -> Option<Session> {
        let k = key(id);
        let mut table = self.lock();
        let entry = table.get_mut(&k)?;
        if !alive(entry, now) {
            table.remove(&k);
            return None;
        }
        entry.last_seen = now;
        Some(entry.session.clone())
    }

    /// [`Sessions::get_at`] now.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.get_at(id, Instant::now())
    }

    /// Whether session `id`'s token is due for a check at `now` (it has one, and was last
    /// found active at least the recheck interval ago).
    fn due_at(&self, id: &str, now: Instant) -> Option<String> {
        let table = self.lock();
        let entry = table.get(&key(id))?;
        let token = entry.session.token_id.as_ref()?;
        (now.saturating_duration_since(entry.checked) >= self.recheck).then(|| token.clone())
    }

    /// Record that session `id`'s token was found active at `now`.
    fn checked_at(&self, id: &str, now: Instant) {
        if let Some(e) = self.lock().get_mut(&key(id)) {
            e.checked = e.checked.max(now);
        }
    }

    /// Whether session `id` may go on: when its token is due for a check, the store is asked
    /// and a token that is no longer active (or a store error) ends the session (`false`).
    pub async fn follow_token(&self, id: &str, store: &dyn crate::store::Store) -> bool {
        let now = Instant::now();
        let Some(token) = self.due_at(id, now) else {
            return true;
        };
        let active = match store.token(&token).await {
            Ok(found) => found.is_some_and(|t| t.token.is_active(chrono::Utc::now())),
            Err(e) => {
                tracing::warn!(
                    error.kind = e.kind(),
                    "a session's token could not be checked; the session ends"
                );
                false
            }
        };
        if active {
            self.checked_at(id, now);
        } else {
            self.remove(id);
        }
        active
    }

    /// End session `id` (sign-out).
    pub fn remove(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    /// Sessions held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the cookie is `Secure` (the server is not on a plain-HTTP loopback address).
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-postured_session"
        } else {
            "postured_session"
        }
    }

    /// The session id the request's `Cookie` headers carry, if any.
    pub fn id_from(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == self.cookie_name())
            .map(|c| c.value().to_owned())
    }

    /// `Set-Cookie` value carrying session `id`.
    pub fn set_cookie(&self, id: &str) -> HeaderValue {
        let cookie = Cookie::build((self.cookie_name(), id.to_owned()))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .path("/")
            .max_age(cookie::time::Duration::seconds(
                SESSION_LIFETIME.as_secs() as i64
            ))
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("a cookie of hex digits is a header")
    }

    /// `Set-Cookie` value removing the session cookie.
    pub fn clear_cookie(&self) -> HeaderValue {
        let cookie = Cookie::build((self.cookie_name(), ""))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .path("/")
            .max_age(cookie::time::Duration::ZERO)
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("a cookie is a header")
    }
}

fn alive(e: &Entry, now: Instant) -> bool {
    now.saturating_duration_since(e.created) < SESSION_LIFETIME
        && now.saturating_duration_since(e.last_seen) < SESSION_IDLE
}

/// A request of a signed-in person: its session, and the session id it came with.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session.
    pub session: Session,
    /// Its id (from the cookie).
    pub id: String,
}

/// Where to send a request after sign-in: its path and query when that is a local path
/// (`/...`, not `//...`), else `/`.
pub fn local_target(target: &str) -> &str {
    if target.starts_with('/') && !target.starts_with("//") && !target.starts_with("/\\") {
        target
    } else {
        "/"
    }
}

impl FromRequestParts<Arc<App>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let sessions = parts.extensions.get::<Arc<Sessions>>().cloned();
        let mut found = sessions.as_ref().and_then(|s| {
            let id = s.id_from(&parts.headers)?;
            s.get(&id).map(|session| SignedIn { session, id })
        });
        if let (Some(s), Some(signed)) = (&sessions, &found)
            && !s.follow_token(&signed.id, app.store.as_ref()).await
        {
            found = None;
        }
        found.ok_or_else(|| {
            let here = parts
                .uri
                .path_and_query()
                .map_or("/", axum::http::uri::PathAndQuery::as_str);
            let next: String =
                url::form_urlencoded::byte_serialize(local_target(here).as_bytes()).collect();
            Redirect::to(&format!("/sign-in?next={next}")).into_response()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::{Role, Scope};

    fn principal() -> Principal {
        Principal {
            subject: "api_token".into(),
            role: Role::Reader,
            scope: Scope::default(),
        }
    }

    #[test]
    fn sessions_expire_idle_and_absolute_and_are_bounded() {
        let sessions = Sessions::with_capacity(false, 2);
        let t0 = Instant::now();
        let (a, sa) = sessions.create_at(principal(), t0);
        assert_eq!(a.len(), 64);
        assert_eq!(sa.csrf.len(), 64);
        assert_ne!(a, sa.csrf);
        assert!(sessions.get_at(&a, t0 + SESSION_IDLE / 2).is_some());
        // Used within the idle time, again and again, until the absolute lifetime.
        let mut t = t0;
        while t + SESSION_IDLE / 2 < t0 + SESSION_LIFETIME {
            t += SESSION_IDLE / 2;
            assert!(sessions.get_at(&a, t).is_some());
        }
        assert!(sessions.get_at(&a, t0 + SESSION_LIFETIME).is_none());
        assert!(sessions.is_empty(), "an expired session is dropped");
        // Idle.
        let (b, _) = sessions.create_at(principal(), t0);
        assert!(sessions.get_at(&b, t0 + SESSION_IDLE).is_none());
        // Bounded: the third sign-in drops the oldest.
        let (c, _) = sessions.create_at(principal(), t0);
        let (d, _) = sessions.create_at(principal(), t0 + Duration::from_secs(1));
        let (e, _) = sessions.create_at(principal(), t0 + Duration::from_secs(2));
        assert_eq!(sessions.len(), 2);
        let now = t0 + Duration::from_secs(3);
        assert!(sessions.get_at(&c, now).is_none());
        assert!(sessions.get_at(&d, now).is_some());
        assert!(sessions.get_at(&e, now).is_some());
        sessions.remove(&d);
        assert!(sessions.get_at(&d, now).is_none());
        assert!(sessions.get_at("not-a-session", now).is_none());
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_off_loopback() {
        let local = Sessions::new(false);
        let v = local.set_cookie("abc");
        let v = v.to_str().unwrap();
        assert!(v.starts_with("postured_session=abc"), "{v}");
        for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
            assert!(v.contains(part), "{v}");
        }
        assert!(!v.contains("Secure"), "{v}");
        let remote = Sessions::new(true);
        let v = remote.set_cookie("abc");
        let v = v.to_str().unwrap();
        assert!(v.starts_with("__Host-postured_session=abc"), "{v}");
        assert!(v.contains("Secure"), "{v}");
        assert!(
            remote
                .clear_cookie()
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-postured_session=xyz; b=2"),
        );
        assert_eq!(remote.id_from(&headers).as_deref(), Some("xyz"));
        assert_eq!(local.id_from(&headers), None);
        for (listen, lo) in [
            ("127.0.0.1:9898", true),
            ("[::1]:0", true),
            ("localhost:9898", true),
            ("0.0.0.0:9898", false),
            ("10.0.0.5:443", false),
            ("postured.example:9898", false),
        ] {
            assert_eq!(is_loopback(listen), lo, "{listen}");
        }
        let s = Session {
            principal: principal(),
            csrf: "ab".repeat(32),
            token_id: None,
        };
        assert!(s.csrf_matches(&"ab".repeat(32)));
        assert!(!s.csrf_matches(&"ab".repeat(31)));
        assert!(!s.csrf_matches(""));
    }

    #[test]
    fn only_local_paths_are_redirect_targets() {
        for (t, want) in [
            ("/assessments?x=1", "/assessments?x=1"),
            ("//evil.example/", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example/", "/"),
            ("", "/"),
        ] {
            assert_eq!(local_target(t), want, "{t}");
        }
    }
}
