//! `GET /api/v1/openapi.json` (SPEC §13): the OpenAPI 3.1 document of every route, made
//! by utoipa from the handlers' `#[utoipa::path]` annotations and the types they answer
//! with. Routes are registered through `utoipa_axum`'s `OpenApiRouter` and `routes!`, so a
//! handler is in the router and in the document by the same line; `app()` splits the two
//! apart. The shared pieces live here: the security schemes, the error answers every
//! endpoint shares (`ReadErrors`, …) and the parameter sets the handlers accept.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use probity_config::wire::ErrorBody;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The document's frame: what utoipa cannot learn from a handler.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "probity collector",
        description = "The collector's HTTP API (SPEC §6, §8, §10-§15). Read endpoints need \
            `Authorization: Bearer <token>` once any API token is configured; a scoped token \
            sees only its agreements and the services they are on, and any other id is 404. \
            Agents authenticate with their own token. Every error is `{\"error\": \"...\"}`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "read", description = "SPEC §8: services, figures, reports, compliance, gaps, evidence"),
        (name = "history", description = "SPEC §10: closed periods, revisions, catalogue versions"),
        (name = "maintenance", description = "SPEC §11: maintenance windows as records with provenance"),
        (name = "agent", description = "SPEC §6: what agents call"),
        (name = "operations", description = "health, readiness, metrics, this document, the dashboard")
    )
)]
pub struct ApiDoc;

/// `api_token`: an `[[api.tokens]]` or `read_tokens_sha256` token; `agent_token`: an
/// `[[agents]]` token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, description) in [
            ("api_token", "an [[api.tokens]] or read_tokens_sha256 token (probity-collector new-token)"),
            ("agent_token", "an [[agents]] token (probity-collector new-agent)"),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description)).build(),
                ),
            );
        }
    }
}

/// The errors every read endpoint may answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(super) enum ReadErrors {
    /// A parameter or period the endpoint does not accept; the message says what it does.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// A token is configured and none (or an unknown one) was sent.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// An unknown id, or one the token's scope does not cover (the same answer).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Our fault; the collector's log says more.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// The errors of a write (maintenance, restate).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(super) enum WriteErrors {
    /// The body is not what the endpoint takes; the message says what it does.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token, or an unknown one.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token's role or scope does not allow this write.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// An unknown id, or one the token's scope does not cover.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The write conflicts with what is stored; the message says what.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Our fault; the collector's log says more.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// `period=2026-11` (month), `2026-Q4`, `2026-W47`, `2026`, or `from` and `to` (RFC 3339),
/// read in the calendar's zone (SPEC §8). Left out: an agreement endpoint takes the
/// agreement's running period; a service endpoint answers 400 asking for one. A period
/// longer than `[api] max_period` is a 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct PeriodParams {
    /// `2026-11`, `2026-Q4`, `2026-W47` or `2026`.
    period: Option<String>,
    /// RFC 3339 start, with `to`.
    from: Option<String>,
    /// RFC 3339 end (exclusive), with `from`.
    to: Option<String>,
}

/// The document, built once from the same router `app()` serves.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| super::routes().split_for_parts().1)
}

/// [`document`] as pretty JSON (what `GET /api/v1/openapi.json` answers).
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_pretty_json().expect("an OpenAPI document is always serialisable"))
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document. Open: it describes the API, it discloses no data.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document_json()).into_response()
}
