//! The one outbound HTTP client of the daemon: connectors and notifiers share it (connection
//! pooling across tenants), built with the rustls crypto provider installed once.
//!
//! Must not: carry credentials (each request adds its own) or follow configuration of any one
//! connector.

use std::sync::Once;

use anyhow::Context;

/// Install the process-wide rustls crypto provider (ring) once; reqwest is built without one.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The shared HTTP client every connector uses (connection pooling across tenants). It follows
/// a redirect only within the request's origin
/// ([`postured_connectors::http::redirect_policy`]): a cross-origin `Location` is never
/// requested, the 3xx is returned to the caller.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("postured/", env!("CARGO_PKG_VERSION")))
        .redirect(postured_connectors::http::redirect_policy())
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .build()
        .context("building the HTTP client")
}
