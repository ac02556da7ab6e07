//! HTTP handlers of evidence (mounted by `crate::server::api`; the rules are
//! `crate::app::evidence`'s):
//!
//! - `POST /api/v1/actions/{action}/evidence?tenant=|group=[&supersedes=ID]` (contributor):
//!   a `multipart/form-data` body with one file part named `file` (at most `[evidence]
//!   max_file_bytes`, counted while it is read: 413 `/problems/evidence-too-large` past it; a
//!   type outside `allowed_types` 415 `/problems/evidence-type-not-allowed`; content that is not
//!   the declared type 415 `/problems/evidence-content-mismatch`), or a JSON body `{"url"}` (at
//!   most [`MAX_LINK_BODY_BYTES`]; not an http(s) URL of at most 2,000 characters: 400
//!   `/problems/invalid-link`) -> 201 with the evidence row. `supersedes` names the row this one
//!   corrects. An instance holds at most `[evidence] max_per_instance` files and links (422
//!   `/problems/evidence-limit` past it).
//! - `GET /api/v1/actions/{action}/evidence?tenant=|group=` (reader) -> the instance's evidence,
//!   oldest first, withdrawn rows included (marked).
//! - `GET /api/v1/evidence/{id}` (reader) -> the file, with its stored media type and
//!   `Content-Disposition: attachment`, after its SHA-256 is checked again (a mismatch is 500
//!   `/problems/evidence-corrupt` and an error log; the bytes are never served); a file of the
//!   evidence directory is streamed (hashed in a streaming pass first, then sent from the same
//!   open handle), never read whole. A link or a row
//!   outside the caller's scope is 404 `/problems/unknown-evidence`.
//! - `DELETE /api/v1/evidence/{id}` (contributor) -> the withdrawn row (kept, with its bytes);
//!   409 `/problems/evidence-locked` once the instance is passed, failed or out of scope, 409
//!   `/problems/evidence-withdrawn` when withdrawn already.
//!
//! Every change is audited (`evidence.add`, `evidence.withdraw`) with the caller as actor.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::app::evidence::{self, EvidenceBytes, EvidenceError, Upload};
use crate::app::model::{ActionSet, Actor};
use crate::model::InstanceScope;
use crate::server::assessments::rejection;
use crate::server::auth::{Principal, Role, forbidden};
use crate::server::extract::ApiQuery;
use crate::server::input::check_action_set;
use crate::server::problem::{self, ProblemType, excerpt};
use crate::store::Evidence;

/// Largest JSON body of a link, in bytes (8 KiB: a 2,000-character URL fits).
pub const MAX_LINK_BODY_BYTES: usize = 8 * 1024;

/// The instance of `/api/v1/actions/{action}/evidence`: exactly one of `tenant` (technical and
/// provider-managed actions) or `group`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InstanceQuery {
    /// Tenant id.
    pub tenant: Option<String>,
    /// Group id.
    pub group: Option<String>,
    /// (POST only) the evidence row this one corrects.
    pub supersedes: Option<i64>,
}

/// A link to attach (`Content-Type: application/json`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// An `http` or `https` URL of at most 2,000 characters.
    pub url: String,
}

/// A file to attach (`Content-Type: multipart/form-data`): one part named `file`, with a file
/// name and a media type (or a name whose extension gives the type).
#[derive(Debug, ToSchema)]
pub struct UploadForm {
    /// The file.
    #[schema(content_media_type = "application/octet-stream")]
    pub file: Vec<u8>,
}

fn problem(kind: ProblemType, status: StatusCode, detail: impl Into<String>) -> Response {
    kind.at(status, detail).into_response()
}

/// The problem details of a refused evidence call.
pub(crate) fn refusal(app: &App, e: &EvidenceError) -> Response {
    let detail = e.to_string();
    match e {
        EvidenceError::TooLarge { .. } => problem(
            problem::EVIDENCE_TOO_LARGE,
            StatusCode::PAYLOAD_TOO_LARGE,
            detail,
        ),
        EvidenceError::TypeNotAllowed(_) => problem(
            problem::EVIDENCE_TYPE_NOT_ALLOWED,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            detail,
        ),
        EvidenceError::ContentMismatch(_) => problem(
            problem::EVIDENCE_CONTENT_MISMATCH,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            detail,
        ),
        EvidenceError::InvalidLink(_) => problem(
            problem::INVALID_LINK,
            StatusCode::BAD_REQUEST,
            excerpt(&detail, 300),
        ),
        EvidenceError::TooMany { .. } => problem(
            problem::EVIDENCE_LIMIT,
            StatusCode::UNPROCESSABLE_ENTITY,
            detail,
        ),
        EvidenceError::InvalidSupersedes(_) => {
            problem(problem::INVALID_SUPERSEDES, StatusCode::BAD_REQUEST, detail)
        }
        EvidenceError::Locked(_) => problem(problem::EVIDENCE_LOCKED, StatusCode::CONFLICT, detail),
        EvidenceError::AlreadyWithdrawn => {
            problem(problem::EVIDENCE_WITHDRAWN, StatusCode::CONFLICT, detail)
        }
        EvidenceError::NotFound => problem(
            problem::UNKNOWN_EVIDENCE,
            StatusCode::NOT_FOUND,
            "no such evidence file",
        ),
        EvidenceError::Corrupt => problem(
            problem::EVIDENCE_CORRUPT,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the stored evidence does not match its SHA-256 and is not served; see the logs",
        ),
        EvidenceError::Io(_) => {
            tracing::error!(error = %e, "evidence storage failed");
            problem(
                problem::EVIDENCE_STORAGE_UNAVAILABLE,
                StatusCode::SERVICE_UNAVAILABLE,
                "the evidence directory could not be used; see the logs",
            )
        }
        EvidenceError::Store(s) => problem::store_failed(app, s.kind()).into_response(),
    }
}

fn actor(principal: &Principal) -> Actor {
    Actor {
        subject: principal.subject.clone(),
        request_id: Some(uuid::Uuid::new_v4().to_string()),
    }
}

/// Whether the caller's scope covers an instance.
fn in_scope(principal: &Principal, scope: &InstanceScope) -> bool {
    match scope {
        InstanceScope::Tenant(t) => principal.scope.allows_tenant(t),
        InstanceScope::Group(g) => principal.scope.allows_group(g),
    }
}

/// The instance named by the path and query, checked like a status change (known action,
/// right scope kind, existing tenant or group) and against the caller's role and scope.
async fn instance(
    app: &App,
    principal: &Principal,
    role: Role,
    action: Result<Path<String>, PathRejection>,
    q: InstanceQuery,
) -> Result<(String, InstanceScope, Option<i64>), Response> {
    principal
        .require(role)
        .map_err(IntoResponse::into_response)?;
    let Ok(Path(action)) = action else {
        return Err(problem(
            problem::INVALID_ACTION_ID,
            StatusCode::BAD_REQUEST,
            "the action id is not valid UTF-8 text",
        ));
    };
    let set = ActionSet {
        tenant: q.tenant,
        group: q.group,
        action,
        update: Default::default(),
    };
    let scope = check_action_set(
        &app.model,
        &app.evaluator,
        app.store.as_ref(),
        &app.config,
        &set,
    )
    .await
    .map_err(|e| rejection(app, &e).into_response())?;
    if !in_scope(principal, &scope) {
        return Err(forbidden("the instance is outside the caller's scope").into_response());
    }
    Ok((set.action, scope, q.supersedes))
}

/// Why a multipart body could not be read.
pub(crate) enum UploadError {
    /// The file part is too large (the limit, in bytes).
    TooLarge(u64),
    /// The body is not one `file` part of valid multipart.
    Malformed(String),
}

/// Read one file part of a multipart body, counting its bytes against `max`: the one reader
/// of uploaded files (the API's and the dashboard's).
pub(crate) async fn read_file_part(
    mut field: axum::extract::multipart::Field<'_>,
    max: u64,
) -> Result<Upload, UploadError> {
    let file_name = field.file_name().map(str::to_string);
    let media_type = field.content_type().map(str::to_string);
    let mut bytes = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if (bytes.len() + chunk.len()) as u64 > max {
                    return Err(UploadError::TooLarge(max));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(UploadError::Malformed(format!(
                    "malformed multipart body: {}",
                    e.body_text()
                )));
            }
        }
    }
    Ok(Upload {
        file_name,
        media_type,
        bytes,
    })
}

/// Read the one `file` part of a multipart body, counting its bytes against `max`.
async fn read_upload(mut form: Multipart, max: u64) -> Result<Upload, UploadError> {
    let bad = UploadError::Malformed;
    let mut upload: Option<Upload> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(bad(format!("malformed multipart body: {}", e.body_text()))),
        };
        if field.name() != Some("file") || upload.is_some() {
            return Err(bad(
                "the body must hold exactly one part, named \"file\"".to_string()
            ));
        }
        upload = Some(read_file_part(field, max).await?);
    }
    upload.ok_or_else(|| bad("the body has no part named \"file\"".to_string()))
}

/// `POST /api/v1/actions/{action}/evidence`: attach a file or a link.
#[utoipa::path(
    post,
    path = "/api/v1/actions/{action}/evidence",
    tag = "evidence",
    security(("bearer" = ["contributor"])),
    params(("action" = String, Path, description = "Improvement action id"), InstanceQuery),
    request_body(content(
        (UploadForm = "multipart/form-data"),
        (LinkBody = "application/json"),
    )),
    responses(
        (status = 201, description = "The evidence row", body = Evidence),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Invalid link, query, correction or multipart body (problem details)", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Caller lacks the contributor role or the instance's scope", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown action", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "File larger than [evidence] max_file_bytes (problem `/problems/evidence-too-large`)", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Type not allowed, or content not of its declared type", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The instance has [evidence] max_per_instance files and links (problem `/problems/evidence-limit`)", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store or evidence directory unavailable", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn add(
    State(app): State<Arc<App>>,
    principal: Principal,
    action: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<InstanceQuery>,
    request: Request,
) -> Response {
    let (action, scope, supersedes) =
        match instance(&app, &principal, Role::Contributor, action, query).await {
            Ok(i) => i,
            Err(r) => return r,
        };
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let actor = actor(&principal);
    let now = Utc::now();
    let added = if content_type.starts_with("multipart/form-data") {
        let form = match Multipart::from_request(request, &()).await {
            Ok(f) => f,
            Err(e) => {
                return problem(
                    problem::INVALID_BODY,
                    StatusCode::BAD_REQUEST,
                    excerpt(&e.body_text(), 300),
                );
            }
        };
        match read_upload(form, app.config.evidence.max_file_bytes).await {
            Ok(upload) => {
                evidence::add_file(&app, scope, &action, upload, supersedes, &actor, now).await
            }
            Err(UploadError::Malformed(m)) => {
                return problem(
                    problem::INVALID_BODY,
                    StatusCode::BAD_REQUEST,
                    excerpt(&m, 300),
                );
            }
            Err(UploadError::TooLarge(max)) => Err(EvidenceError::TooLarge { max }),
        }
    } else if content_type.starts_with("application/json") {
        let body = match axum::body::to_bytes(request.into_body(), MAX_LINK_BODY_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return problem(
                    problem::BODY_TOO_LARGE,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("a link body is at most {MAX_LINK_BODY_BYTES} bytes"),
                );
            }
        };
        let link: LinkBody = match serde_json::from_slice(&body) {
            Ok(l) => l,
            Err(e) => {
                return problem(
                    problem::INVALID_BODY,
                    StatusCode::BAD_REQUEST,
                    excerpt(&e.to_string(), 300),
                );
            }
        };
        evidence::add_link(&app, scope, &action, &link.url, supersedes, &actor, now).await
    } else {
        return problem(
            problem::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send multipart/form-data (a file) or application/json (a link)",
        );
    };
    match added {
        Ok(row) => {
            let mut response = (StatusCode::CREATED, axum::Json(&row)).into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/evidence/{}", row.id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(e) => refusal(&app, &e),
    }
}

/// `GET /api/v1/actions/{action}/evidence`: the instance's evidence.
#[utoipa::path(
    get,
    path = "/api/v1/actions/{action}/evidence",
    tag = "evidence",
    security(("bearer" = ["reader"])),
    params(("action" = String, Path, description = "Improvement action id"), InstanceQuery),
    responses(
        (status = 200, description = "Evidence rows, oldest first (withdrawn ones included)", body = Vec<Evidence>),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Invalid query or scope (problem details)", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The instance is outside the caller's scope", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown action", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(app): State<Arc<App>>,
    principal: Principal,
    action: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<InstanceQuery>,
) -> Response {
    let (action, scope, _) = match instance(&app, &principal, Role::Reader, action, query).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    match app.store.evidence_of(&scope, &action).await {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => refusal(&app, &EvidenceError::Store(e)),
    }
}

/// The evidence `id` when the caller may see it (else `NotFound`, as if it did not exist).
pub(crate) async fn visible(
    app: &App,
    principal: &Principal,
    id: i64,
) -> Result<Evidence, EvidenceError> {
    match app.store.evidence(id).await? {
        Some(row) if in_scope(principal, &row.scope) => Ok(row),
        _ => Err(EvidenceError::NotFound),
    }
}

/// `GET /api/v1/evidence/{id}`: download a file of evidence.
#[utoipa::path(
    get,
    path = "/api/v1/evidence/{id}",
    tag = "evidence",
    security(("bearer" = ["reader"])),
    params(("id" = i64, Path, description = "Evidence id")),
    responses(
        (status = 200, description = "The file, as stored (Content-Disposition: attachment)", content_type = "application/octet-stream"),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such file (or a link, or outside the caller's scope)", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 500, description = "The stored bytes do not match their SHA-256 (problem `/problems/evidence-corrupt`)", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn download(
    State(app): State<Arc<App>>,
    principal: Principal,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let Ok(Path(id)) = id else {
        return refusal(&app, &EvidenceError::NotFound);
    };
    if let Err(e) = visible(&app, &principal, id).await {
        return refusal(&app, &e);
    }
    let (row, bytes) = match evidence::download(&app, id).await {
        Ok(found) => found,
        Err(e) => return refusal(&app, &e),
    };
    file_response(&row, bytes)
}

/// The answer carrying a file of evidence (checked by [`evidence::download`]): its stored media
/// type, `Content-Disposition: attachment` with an ASCII file name, `nosniff`,
/// `X-Evidence-SHA256` and the body: bytes read from the database whole, a file of the evidence
/// directory streamed from its checked handle ([`evidence::STREAM_CHUNK_BYTES`] at a time,
/// `Content-Length` its size). Served by the API and the dashboard alike.
pub(crate) fn file_response(row: &Evidence, bytes: EvidenceBytes) -> Response {
    let media_type = row
        .media_type
        .as_deref()
        .and_then(|m| HeaderValue::from_str(m).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let ascii: String = row
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"");
    let mut response = match bytes {
        EvidenceBytes::Memory(bytes) => (StatusCode::OK, bytes).into_response(),
        EvidenceBytes::File { file, size } => {
            use tokio::io::AsyncReadExt;
            let stream = tokio_util::io::ReaderStream::with_capacity(
                file.take(size),
                evidence::STREAM_CHUNK_BYTES,
            );
            let mut response =
                (StatusCode::OK, axum::body::Body::from_stream(stream)).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, media_type);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(sha) = row
        .sha256
        .as_deref()
        .and_then(|s| HeaderValue::from_str(s).ok())
    {
        headers.insert("x-evidence-sha256", sha);
    }
    response
}

/// `DELETE /api/v1/evidence/{id}`: withdraw evidence (kept, marked withdrawn).
#[utoipa::path(
    delete,
    path = "/api/v1/evidence/{id}",
    tag = "evidence",
    security(("bearer" = ["contributor"])),
    params(("id" = i64, Path, description = "Evidence id")),
    responses(
        (status = 200, description = "The withdrawn row (its bytes are kept)", body = Evidence),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Caller lacks the contributor role or the instance's scope", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such evidence", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The instance is passed, failed or out of scope (problem `/problems/evidence-locked`), or the evidence is withdrawn already", body = crate::server::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn withdraw(
    State(app): State<Arc<App>>,
    principal: Principal,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    if let Err(p) = principal.require(Role::Contributor) {
        return p.into_response();
    }
    let Ok(Path(id)) = id else {
        return refusal(&app, &EvidenceError::NotFound);
    };
    if let Err(e) = visible(&app, &principal, id).await {
        return refusal(&app, &e);
    }
    match evidence::withdraw(&app, id, &actor(&principal), Utc::now()).await {
        Ok(row) => axum::Json(row).into_response(),
        Err(e) => refusal(&app, &e),
    }
}
