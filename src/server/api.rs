//! The REST API under `/api/v1` and its OpenAPI 3.1 document, generated from the handlers'
//! `#[utoipa::path]` annotations (never written by hand) and served at
//! `GET /api/v1/openapi.json`.
//!
//! Each handler module contributes an [`OpenApiRouter`]; this module merges them, adds the
//! `bearer` security scheme and splits the result into the axum router and the document.
//! Every operation names the least role it needs as the scopes of its `bearer` security
//! requirement (`security(("bearer" = ["reader"]))`; OpenAPI 3.1 allows role names there for
//! non-OAuth schemes): the role matrix test reads them and checks each against the handler.

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::server::auth::{Principal, Role};
use crate::server::{
    actions, alerts, assessments, audit, evidence, history, templates, tenants, tokens,
};

/// The document's fixed parts: info and the security scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "postured API",
        description = "Continuous compliance assessment: tenants, compliance score, assessments, \
            controls, improvement actions, templates, alerts and the audit log.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerScheme),
    // Schemas only query parameters refer to (bodies register theirs themselves).
    components(schemas(
        crate::model::Dimension,
        crate::model::report::TestingSource,
        crate::evaluation::TestStatus,
        crate::evaluation::ImplementationStatus,
        crate::server::actions::SortBy,
        crate::server::actions::SortOrder,
        crate::report::audit::AuditFormat,
    )),
)]
struct ApiDoc;

/// Adds the `bearer` HTTP security scheme (API tokens and OpenID Connect JWTs alike).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`postured token create`) or a JWT of the configured \
                         OpenID Connect issuer.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The protected API routes (authentication is layered on by the caller) and the OpenAPI
/// document describing them.
pub fn routes() -> (axum::Router<Arc<App>>, OpenApiDoc) {
    let (schemas, paths, set_status) = routes!(assessments::set_status);
    let set_status = set_status.layer(DefaultBodyLimit::max(assessments::MAX_STATUS_BODY_BYTES));
    // One method router for the path's GET and POST (the limit only matters to the import).
    let (t_schemas, t_paths, t_router) = routes!(templates::list, templates::import);
    let t_router = t_router.layer(DefaultBodyLimit::max(
        usize::try_from(crate::interchange::MAX_IMPORT_FILE_BYTES).unwrap_or(usize::MAX),
    ));
    let (schemas_t, paths_t, create_token) = routes!(tokens::create_route);
    let create_token = create_token.layer(DefaultBodyLimit::max(tokens::MAX_CREATE_BODY_BYTES));
    // Uploads are bounded by `[evidence] max_file_bytes`, counted while the file is read (the
    // limit is configuration, not a constant), and links by their own limit.
    let (e_schemas, e_paths, evidence_add) = routes!(evidence::add, evidence::list);
    let evidence_add = evidence_add.layer(DefaultBodyLimit::disable());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tenants::list))
        .routes(routes!(tenants::get))
        .routes(routes!(history::report_json))
        .routes(routes!(history::transitions))
        .routes(routes!(history::polls))
        .routes(routes!(assessments::assessments))
        .routes(routes!(assessments::assessment))
        .routes(routes!(assessments::control))
        .routes(routes!(assessments::score))
        .routes(routes!(assessments::scores))
        .routes(routes!(templates::export_assessment))
        .routes((t_schemas, t_paths, t_router))
        .routes(routes!(templates::get))
        .routes(routes!(templates::export))
        .routes(routes!(alerts::list))
        .routes(routes!(actions::list))
        .routes(routes!(actions::detail))
        .routes((schemas, paths, set_status))
        .routes(routes!(audit::audit))
        .routes(routes!(audit::export))
        .routes((e_schemas, e_paths, evidence_add))
        .routes(routes!(evidence::download, evidence::withdraw))
        .routes(routes!(openapi_json))
        .routes(routes!(tokens::list))
        .routes((schemas_t, paths_t, create_token))
        .routes(routes!(tokens::revoke_route))
        .split_for_parts()
}

/// The OpenAPI document of this build (generated once per process).
pub fn document() -> &'static OpenApiDoc {
    static DOC: std::sync::OnceLock<OpenApiDoc> = std::sync::OnceLock::new();
    DOC.get_or_init(|| routes().1)
}

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    security(("bearer" = ["reader"])),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", body = serde_json::Value),
        (status = 401, description = "No valid credentials", body = crate::server::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn openapi_json(State(_app): State<Arc<App>>, principal: Principal) -> Response {
    if let Err(p) = principal.require(Role::Reader) {
        return p.into_response();
    }
    Json(document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation is protected by the bearer scheme with exactly one role.
    #[test]
    fn every_operation_names_one_role() {
        let doc = document();
        assert!(doc.paths.paths.len() >= 6);
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("get", &item.get),
                ("put", &item.put),
                ("post", &item.post),
                ("delete", &item.delete),
                ("patch", &item.patch),
            ] {
                let Some(op) = op else { continue };
                let json = serde_json::to_value(op.security.as_ref().expect("security")).unwrap();
                let roles = json[0]["bearer"].as_array().expect("bearer");
                assert_eq!(roles.len(), 1, "{method} {path}");
                assert!(
                    Role::parse(roles[0].as_str().unwrap()).is_some(),
                    "{method} {path}"
                );
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for item in doc.paths.paths.values() {
            for op in [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                .into_iter()
                .flatten()
            {
                let id = op.operation_id.clone().expect("operation id");
                assert!(ids.insert(id.clone()), "operation id {id} is used twice");
            }
        }
        let tokens = &doc.paths.paths["/api/v1/tokens"];
        assert!(tokens.get.is_some() && tokens.post.is_some());
        assert!(doc.paths.paths["/api/v1/tokens/{id}"].delete.is_some());
    }
}
