//! The API served with a chosen caller: requests name their principal in the
//! `X-Test-Principal` header (`<role>` or `<role>@<tenant>`), so role rules can be tested over
//! real HTTP before API tokens of every role exist. The routes, handlers and role checks are
//! the daemon's own (`postured::server::api::routes`); only the authentication middleware is
//! replaced.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use postured::app::App;
use postured::server::auth::{Principal, Role, Scope};

/// Header naming the caller: `reader`, `contributor`, `assessor`, `administrator`, optionally
/// `@<tenant>` to limit it to one tenant.
pub const HEADER: &str = "x-test-principal";

async fn inject(mut req: Request, next: Next) -> Response {
    let named = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(named) = named {
        let (role, tenant) = match named.split_once('@') {
            Some((r, t)) => (r.to_string(), Some(t.to_string())),
            None => (named.clone(), None),
        };
        let role = Role::parse(&role).expect("a role name");
        req.extensions_mut().insert(Principal {
            subject: format!("token:{named}"),
            role,
            scope: Scope {
                tenants: tenant.map(|t| [t].into()),
                groups: None,
            },
        });
    }
    next.run(req).await
}

/// Serve the API routes of `app` on 127.0.0.1:0 with callers taken from [`HEADER`]; the
/// server lives as long as the test's runtime.
pub async fn serve(app: Arc<App>) -> SocketAddr {
    let (routes, _doc) = postured::server::api::routes();
    let router = routes.with_state(app).layer(middleware::from_fn(inject));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}
