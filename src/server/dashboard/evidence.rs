//! Evidence on the dashboard: the upload form's target and downloads, through the bodies the
//! API uses (`crate::app::evidence`, `crate::server::evidence`).
//!
//! - `POST /actions/{action}/evidence?tenant=T|group=G`: `multipart/form-data` with a `csrf`
//!   part (first, at most [`MAX_CSRF_PART_BYTES`]) and one `file` part, read by
//!   [`crate::server::evidence::read_file_part`] against `[evidence] max_file_bytes` and
//!   attached by [`crate::app::evidence::add_file`] (type allowed and sniffed, content
//!   addressed, audited as `evidence.add`). Contributor and the instance's scope, as in the API.
//!   Saved: `303` back to the action page with a notice; refused: the action page again with
//!   the refusal's status and the message next to the file field.
//! - `GET /evidence/{id}`: the file (reader, in scope, else 404), its SHA-256 checked again by
//!   [`crate::app::evidence::download`].

use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;

use crate::app::App;
use crate::app::evidence::{self, EvidenceError};
use crate::app::model::{ActionSet, Actor};
use crate::server::auth::Role;
use crate::server::dashboard::actions::{FormState, ScopeQuery, render, scope_or_error};
use crate::server::dashboard::overview::action_href;
use crate::server::dashboard::session::SignedIn;
use crate::server::dashboard::{check_post, error_page};
use crate::server::evidence::{UploadError, file_response, read_file_part, refusal, visible};
use crate::server::input::check_action_set;

/// Largest `csrf` part of an upload, in bytes.
pub const MAX_CSRF_PART_BYTES: usize = 128;

/// Why an upload was refused: the status and the message shown next to the file field.
fn refused(status: StatusCode, message: impl Into<String>) -> (StatusCode, String) {
    (status, message.into())
}

/// `POST /actions/{action}/evidence`.
pub async fn upload(
    State(app): State<Arc<App>>,
    signed: SignedIn,
    headers: HeaderMap,
    Path(action): Path<String>,
    Query(q): Query<ScopeQuery>,
    mut form: Multipart,
) -> Response {
    let session = &signed.session;
    // The CSRF part comes first: nothing else is read before it is checked.
    let mut csrf = String::new();
    match form.next_field().await {
        Ok(Some(mut field)) if field.name() == Some("csrf") => {
            while let Ok(Some(chunk)) = field.chunk().await {
                if csrf.len() + chunk.len() > MAX_CSRF_PART_BYTES {
                    csrf.clear();
                    break;
                }
                csrf.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
        _ => {}
    }
    if let Some(r) = check_post(&headers, Some(session), Some(&csrf)) {
        return r;
    }
    let scope = match scope_or_error(session, &q) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let outcome = async {
        session
            .principal
            .require(Role::Contributor)
            .map_err(|p| refused(StatusCode::FORBIDDEN, p.detail))?;
        let (tenant, group) = match &scope {
            crate::model::InstanceScope::Tenant(t) => (Some(t.clone()), None),
            crate::model::InstanceScope::Group(g) => (None, Some(g.clone())),
        };
        let set = ActionSet {
            tenant,
            group,
            action: action.clone(),
            update: Default::default(),
        };
        let checked = check_action_set(
            &app.model,
            &app.evaluator,
            app.store.as_ref(),
            &app.config,
            &set,
        )
        .await;
        let scope = checked.map_err(|e| {
            let p = crate::server::assessments::rejection(&app, &e);
            refused(
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST),
                p.detail,
            )
        })?;
        let field = match form.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => f,
            _ => {
                return Err(refused(StatusCode::BAD_REQUEST, "choose a file to upload"));
            }
        };
        let upload = match read_file_part(field, app.config.evidence.max_file_bytes).await {
            Ok(u) => u,
            Err(UploadError::TooLarge(max)) => {
                let e = EvidenceError::TooLarge { max };
                return Err(refused(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()));
            }
            Err(UploadError::Malformed(m)) => return Err(refused(StatusCode::BAD_REQUEST, m)),
        };
        if upload.bytes.is_empty() && upload.file_name.as_deref().unwrap_or("").is_empty() {
            return Err(refused(StatusCode::BAD_REQUEST, "choose a file to upload"));
        }
        let actor = Actor {
            subject: session.principal.subject.clone(),
            request_id: Some(uuid::Uuid::new_v4().to_string()),
        };
        evidence::add_file(&app, scope, &action, upload, None, &actor, Utc::now())
            .await
            .map_err(|e| refused(refusal(&app, &e).status(), e.to_string()))
    }
    .await;
    match outcome {
        Ok(_) => Redirect::to(&format!("{}&notice=evidence", action_href(&scope, &action)))
            .into_response(),
        Err((status, message)) => {
            let state = FormState {
                posted: None,
                errors: vec![("file", message)],
            };
            render(&app, session, &scope, &action, None, state, status).await
        }
    }
}

/// `GET /evidence/{id}`.
pub async fn download(
    State(app): State<Arc<App>>,
    signed: SignedIn,
    Path(id): Path<i64>,
) -> Response {
    let session = &signed.session;
    let found = async {
        visible(&app, &session.principal, id).await?;
        evidence::download(&app, id).await
    }
    .await;
    match found {
        Ok((row, bytes)) => file_response(&row, bytes),
        Err(e) => error_page(
            refusal(&app, &e).status(),
            Some(session),
            &match e {
                EvidenceError::NotFound => "No such evidence file.".to_owned(),
                other => other.to_string(),
            },
        ),
    }
}
