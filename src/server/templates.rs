//! Templates: `GET /api/v1/templates` (every template of the registry: built-in,
//! `[templates] dirs`, imported), `GET /api/v1/templates/{id}` (one, with its controls and
//! actions), `POST /api/v1/templates` (import; administrator) and
//! `GET /api/v1/templates/{id}/export?format=xlsx|csv|json`; and the assessment export
//! `GET /api/v1/assessments/{tenant}/{assessment}/export?format=xlsx|csv|json|oscal`.
//!
//! An import's body is the file itself (at most [`MAX_IMPORT_FILE_BYTES`], else 413), its
//! format given by `Content-Type` ([`ImportFormat::from_media_type`]: a Compliance Manager
//! workbook, `text/csv`, OSCAL catalog JSON or XML; anything else 415). It goes through the
//! one import body of `postured template import`
//! ([`crate::interchange::formats::import_template`]): every located problem is answered at
//! once (422 [`INVALID_TEMPLATE`], `errors`), and nothing is saved. An id already in the
//! registry is a 409 [`TEMPLATE_EXISTS`] (choose another with `?id=`). A valid template is
//! saved to the store and added to the registry at once (201, `Location`). Exports use the
//! CLI's exporters ([`crate::interchange::formats`]).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::evaluation::Catalog;
use crate::interchange::MAX_IMPORT_FILE_BYTES;
use crate::interchange::formats::{
    ImportFormat, ImportOptions, ReportFormat, TemplateFormat, export_report, export_template,
    import_template,
};
use crate::model::template::Template;
use crate::server::auth::{Principal, Role};
use crate::server::extract::ApiQuery;
use crate::server::problem::{
    BODY_TOO_LARGE, EXPORT_FAILED, INVALID_BODY, INVALID_TEMPLATE, LocatedError, Problem,
    TEMPLATE_EXISTS, UNKNOWN_TEMPLATE, UNSUPPORTED_MEDIA_TYPE, excerpt, store_failed,
};

/// One template in the listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateSummary {
    /// Template id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Regulation or standard (the `regulation` score filter).
    pub certification: String,
    /// Product covered.
    pub product: String,
    /// Number of controls.
    pub controls: usize,
    /// Number of improvement actions.
    pub actions: usize,
    /// Number of controls that name no action (they can only be `none`); for an OSCAL
    /// import of SP 800-53 rev 5 or CSF 2.0, the controls the built-in template's mappings
    /// do not reach (docs/interchange.md).
    pub controls_without_actions: usize,
}

impl TemplateSummary {
    fn of(t: &Template) -> Self {
        TemplateSummary {
            id: t.id.clone(),
            title: t.title.clone(),
            certification: t.certification.clone(),
            product: t.product.clone(),
            controls: t.controls.len(),
            actions: t.actions.len(),
            controls_without_actions: t.controls.iter().filter(|c| c.actions.is_empty()).count(),
        }
    }
}

fn unknown_template(id: &str) -> Problem {
    UNKNOWN_TEMPLATE.at(
        StatusCode::NOT_FOUND,
        format!("no template {:?}", excerpt(id, 128)),
    )
}

/// `GET /api/v1/templates`.
#[utoipa::path(
    get,
    path = "/api/v1/templates",
    operation_id = "list_templates",
    tag = "templates",
    security(("bearer" = ["reader"])),
    responses(
        (status = 200, description = "Every template, by id", body = Vec<TemplateSummary>),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(State(app): State<Arc<App>>, principal: Principal) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let registry = app.model.registry();
    let mut out: Vec<TemplateSummary> = registry.iter().map(TemplateSummary::of).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Json(out).into_response()
}

/// `GET /api/v1/templates/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{id}",
    operation_id = "get_template",
    tag = "templates",
    security(("bearer" = ["reader"])),
    params(("id" = String, Path, description = "Template id")),
    responses(
        (status = 200, description = "The template: controls and the actions mapped to them", body = Template),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown template", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    match app.model.registry().get(&id) {
        Some(t) => Json(t).into_response(),
        None => unknown_template(&id).into_response(),
    }
}

/// Query of `POST /api/v1/templates`: the overrides of `postured template import`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Template id (default: the file's, else derived from the title; for OSCAL
    /// `nist-800-53-r5-low` and the like for NIST's SP 800-53 baselines, else a slug of at
    /// most 48 characters, either way one no template has yet).
    pub id: Option<String>,
    /// Template title (default: the file's; for OSCAL the catalog's metadata title, which for
    /// a resolved profile is the profile's).
    pub title: Option<String>,
    /// Certification / regulation (OSCAL only; default: the catalog title).
    pub certification: Option<String>,
}

/// `POST /api/v1/templates`: import a template file.
#[utoipa::path(
    post,
    path = "/api/v1/templates",
    operation_id = "import_template",
    tag = "templates",
    security(("bearer" = ["administrator"])),
    params(ImportParams),
    request_body(
        description = "The template file (at most 32 MiB): a Compliance Manager workbook, flat CSV (UTF-8), or an OSCAL catalog in JSON or XML, by Content-Type",
        content(
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (String = "text/csv"),
            (serde_json::Value = "application/json"),
            (String = "application/xml"),
        ),
    ),
    responses(
        (status = 201, description = "Imported and saved; `Location` names it", body = TemplateSummary),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The template id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 32 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Content-Type is not a template format", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The file has problems (every one in `errors`); nothing saved", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn import(
    State(app): State<Arc<App>>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ImportParams>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(p) = principal.require(Role::Administrator) {
        return p.into_response();
    }
    match import_body(&app, &headers, params, body).await {
        Ok(summary) => {
            let mut r = (StatusCode::CREATED, Json(&summary)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/templates/{}", summary.id)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Err(p) => p.into_response(),
    }
}

async fn import_body(
    app: &App,
    headers: &HeaderMap,
    params: ImportParams,
    body: Result<Bytes, BytesRejection>,
) -> Result<TemplateSummary, Problem> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(format) = ImportFormat::from_media_type(media_type) else {
        return Err(UNSUPPORTED_MEDIA_TYPE.at(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {:?} is not a template format (a Compliance Manager workbook, \
                 text/csv, application/json or application/xml)",
                excerpt(media_type, 100)
            ),
        ));
    };
    let bytes = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(BODY_TOO_LARGE.at(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a template file is at most {MAX_IMPORT_FILE_BYTES} bytes"),
            ));
        }
        Err(e) => return Err(INVALID_BODY.at(e.status(), excerpt(&e.body_text(), 300))),
    };
    let catalog = Catalog {
        actions: app.evaluator.actions().cloned().collect(),
        families: app.evaluator.families().to_vec(),
    };
    let name = match format {
        ImportFormat::Workbook => "template.xlsx",
        ImportFormat::Csv => "template.csv",
        ImportFormat::OscalJson => "catalog.json",
        ImportFormat::OscalXml => "catalog.xml",
    };
    let options = ImportOptions {
        profile: None,
        id: params.id,
        title: params.title,
        certification: params.certification,
        taken_ids: app.model.registry().ids().map(str::to_owned).collect(),
    };
    let template = import_template(format, name, bytes.to_vec(), &options, &catalog)
        .map_err(|errors| invalid_template(&errors))?;
    if app.model.registry().get(&template.id).is_some() {
        return Err(TEMPLATE_EXISTS.at(
            StatusCode::CONFLICT,
            format!(
                "a template with id {:?} exists; choose another with ?id=",
                excerpt(&template.id, 128)
            ),
        ));
    }
    if let Err(e) = app.store.save_template(&template, Utc::now()).await {
        return Err(store_failed(app, e.kind()));
    }
    let summary = TemplateSummary::of(&template);
    app.model.insert_template(template).map_err(|errors| {
        // Validated by the import already; the registry's checks are the same.
        let mut p = INVALID_TEMPLATE.at(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the template was saved but the registry refused it",
        );
        p.errors = errors
            .iter()
            .map(|e| LocatedError {
                location: e.path.clone(),
                message: e.message.clone(),
            })
            .collect();
        p
    })?;
    Ok(summary)
}

/// The 422 problem of an import with problems: every one, located.
fn invalid_template(errors: &[crate::interchange::ImportError]) -> Problem {
    let mut p = INVALID_TEMPLATE.at(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("{} problem(s); nothing was imported", errors.len()),
    );
    p.errors = errors
        .iter()
        .map(|e| LocatedError {
            location: excerpt(&e.location, 200),
            message: excerpt(&e.message, 500),
        })
        .collect();
    p
}

/// Query of the template export.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateExportParams {
    /// `xlsx` (Compliance Manager workbook), `csv` or `json`.
    #[param(value_type = String, pattern = "^(xlsx|csv|json)$")]
    pub format: TemplateFormat,
}

/// A file answer with its media type and a download name.
fn file(bytes: Vec<u8>, media_type: &'static str, name: &str) -> Response {
    let mut r = bytes.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(
            |c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "_"
        )
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

fn export_failed(e: &crate::interchange::ExportError) -> Problem {
    tracing::error!(error = %e, "export failed");
    EXPORT_FAILED.at(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// `GET /api/v1/templates/{id}/export`.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{id}/export",
    operation_id = "export_template",
    tag = "templates",
    security(("bearer" = ["reader"])),
    params(("id" = String, Path, description = "Template id"), TemplateExportParams),
    responses(
        (status = 200, description = "The template file, importable again", content(
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (String = "text/csv"),
            (Template = "application/json"),
        )),
        (status = 400, description = "Missing or unknown format", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown template", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The exporter failed", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn export(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<TemplateExportParams>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    let registry = app.model.registry();
    let Some(t) = registry.get(&id) else {
        return unknown_template(&id).into_response();
    };
    match export_template(t, q.format) {
        Ok(bytes) => file(
            bytes,
            q.format.media_type(),
            &format!("{}.{}", t.id, q.format.extension()),
        ),
        Err(e) => export_failed(&e).into_response(),
    }
}

/// Query of the assessment export.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportExportParams {
    /// `xlsx`, `csv`, `json` (the assessment report) or `oscal` (OSCAL assessment-results).
    #[param(value_type = String, pattern = "^(xlsx|csv|json|oscal)$")]
    pub format: ReportFormat,
}

/// `GET /api/v1/assessments/{tenant}/{assessment}/export`: the assessment's latest report in
/// the formats of `postured export`.
#[utoipa::path(
    get,
    path = "/api/v1/assessments/{tenant}/{assessment}/export",
    tag = "assessments",
    security(("bearer" = ["reader"])),
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("assessment" = String, Path, description = "Assessment id"),
        ReportExportParams,
    ),
    responses(
        (status = 200, description = "The report file", content(
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (String = "text/csv"),
            (crate::model::report::AssessmentReport = "application/json"),
            (serde_json::Value = "application/oscal.assessment-results+json"),
        )),
        (status = 400, description = "Missing or unknown format", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown tenant or assessment, or not evaluated yet", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The exporter failed", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn export_assessment(
    State(app): State<Arc<App>>,
    principal: Principal,
    Path((tenant, assessment)): Path<(String, String)>,
    query: Result<ApiQuery<ReportExportParams>, Problem>,
) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    // The assessment is looked up (and the caller's scope checked) before the query is
    // judged, so a caller outside the tenant's scope learns nothing from a 400.
    let report =
        match crate::server::assessments::find_report(&app, &principal, &tenant, &assessment).await
        {
            Ok(r) => r,
            Err(p) => return p.into_response(),
        };
    let q = match query {
        Ok(ApiQuery(q)) => q,
        Err(p) => return p.into_response(),
    };
    match export_report(&report, q.format) {
        Ok(bytes) => file(
            bytes,
            q.format.media_type(),
            &format!("{}.{}", report.id, q.format.extension()),
        ),
        Err(e) => export_failed(&e).into_response(),
    }
}
