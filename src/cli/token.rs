//! `postured token create|list|revoke`: API tokens managed from the host, against the
//! configured store (the same checks and records as `POST/GET/DELETE /api/v1/tokens`).
//!
//! Must not: print a token's text other than once, at creation, or its digest ever.

use std::process::ExitCode;

use chrono::Utc;
use secrecy::ExposeSecret;

use super::EXIT_CONFIG;
use crate::access::Role;
use crate::config::Config;
use crate::server::tokens::{check_new_token, create, revoke};

/// Who the CLI acts as in `created_by` and the audit log: `cli:<login>` (`$USER`, or
/// `$LOGNAME`, at most 64 characters; `cli:unknown` without either).
pub fn cli_subject() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    let user: String = user.chars().filter(|c| !c.is_control()).take(64).collect();
    if user.is_empty() {
        "cli:unknown".to_string()
    } else {
        format!("cli:{user}")
    }
}

/// `postured token create`: check, mint, store (with its audit row), then print the token's text once on
/// stdout's first line and its id on the second. Exit 64 with every problem for a field past
/// its limit or an unknown tenant or group.
///
/// # Errors
///
/// Store and random source errors.
pub async fn create_token(
    cfg: Config,
    role: Role,
    tenants: Vec<String>,
    groups: Vec<String>,
    expires: Option<String>,
    name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let new = match check_new_token(
        &cfg,
        name.as_deref(),
        role,
        (!tenants.is_empty()).then_some(tenants.as_slice()),
        (!groups.is_empty()).then_some(groups.as_slice()),
        expires.as_deref(),
        now,
    ) {
        Ok(n) => n,
        Err(problems) => {
            for p in problems.lines() {
                eprintln!("postured token create: {p}");
            }
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let store = crate::assembly::open_store(&cfg).await?;
    let by = cli_subject();
    let minted = create(store.as_ref(), new, &by, now).await?;
    println!("{}", minted.text.expose_secret());
    println!("id: {}", minted.stored.token.id);
    eprintln!("The token is shown this once; store it now (only its SHA-256 digest is kept).");
    Ok(ExitCode::SUCCESS)
}

/// `postured token list`: every token's metadata as JSON (never a secret or its digest).
///
/// # Errors
///
/// Store errors.
pub async fn list_tokens(cfg: Config) -> anyhow::Result<ExitCode> {
    let store = crate::assembly::open_store(&cfg).await?;
    let tokens = store.tokens().await?;
    println!("{}", serde_json::to_string_pretty(&tokens)?);
    Ok(ExitCode::SUCCESS)
}

/// `postured token revoke ID`: exit 0 when revoked (now or before), 1 for an unknown id.
///
/// # Errors
///
/// Store errors.
pub async fn revoke_token(cfg: Config, id: &str) -> anyhow::Result<ExitCode> {
    let store = crate::assembly::open_store(&cfg).await?;
    match revoke(store.as_ref(), id, &cli_subject()).await? {
        Some(t) => {
            println!(
                "revoked {} at {}",
                t.id,
                t.revoked_at.map(|r| r.to_rfc3339()).unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("postured token revoke: no token has the id {id:?}");
            Ok(ExitCode::FAILURE)
        }
    }
}
