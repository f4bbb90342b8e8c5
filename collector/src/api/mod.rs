//! The collector's HTTP surface, routed in one place: `app(state)` merges one `routes()`
//! per submodule (agents, health, metrics, the read API, history), puts the security
//! headers of SPEC §12 on every answer, and `ApiError` is the one error type every handler
//! returns.

mod agent;
pub mod auth;
mod history;
pub use agent::now_ms;
mod agents;
mod health;
mod maintenance;
mod metrics;
pub mod openapi;
mod read;
mod timeline;

use axum::Json;
use axum::Router;
use axum::http::HeaderValue;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use probity_config::wire::ErrorBody;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The whole router, ready for `oneshot` in tests or a listener in `serve`.
pub fn app(state: AppState) -> Router {
    let (router, _document) = routes().split_for_parts();
    router
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .with_state(state)
}

/// Every route with its OpenAPI operation (SPEC §13): each submodule's `routes()` registers
/// its handlers with `utoipa_axum::routes!`, so a route cannot be served without being
/// documented (`openapi::document` splits the same router).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::routes())
        .merge(agent::routes())
        .merge(agents::routes())
        .merge(metrics::routes())
        .merge(read::routes())
        .merge(history::routes())
        .merge(timeline::routes())
        .merge(openapi::routes())
        .merge(maintenance::routes())
}

/// The dashboard's Content-Security-Policy (SPEC §12): nothing from another origin, and no
/// inline script or style either — the page loads `/dashboard.js` and `/dashboard.css`
/// from the collector itself and fetches the API from it; no frame may embed it. A
/// dashboard change that needs more (an inline `<script>`, a `style="…"` attribute in
/// markup, a CDN) must change this constant, in the open.
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The headers the dashboard's page and its files carry beside `nosniff`: the CSP above
/// and `X-Frame-Options: DENY` (for browsers that predate `frame-ancestors`).
pub(crate) fn dashboard_headers<S: Clone + Send + Sync + 'static>(router: OpenApiRouter<S>) -> OpenApiRouter<S> {
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DASHBOARD_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
}

/// The `404` of an agreement id that names nothing — and of one a token's scope does not
/// cover, with the same body, so a scope discloses nothing. The id is echoed cut to 64
/// characters.
pub(crate) fn unknown_agreement(id: &str) -> ApiError {
    ApiError::NotFound(crate::report::ReportError::UnknownAgreement(crate::ingest::echo_id(id)).to_string())
}

/// As [`unknown_agreement`], for a service id.
pub(crate) fn unknown_service(id: &str) -> ApiError {
    ApiError::NotFound(crate::report::ReportError::UnknownService(crate::ingest::echo_id(id)).to_string())
}

/// Every answer is JSON, a path that names nothing too.
async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {}; the API is under /api/v1/ (see the README)", uri.path()))
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let error = format!("{} does not accept {method}", uri.path());
    (StatusCode::METHOD_NOT_ALLOWED, Json(ErrorBody { error })).into_response()
}

/// An error answered as `{"error": "..."}`. Bad input is 4xx with a message that says what
/// to fix and is not logged as an error; our fault is 500, logged, with no internals shown.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Writes are suspended (SPEC §15): `503` with `Retry-After` and the reason.
    #[error("{reason}")]
    Unavailable { reason: String, retry_after: std::time::Duration },
    #[error("internal error: {0}")]
    Internal(String),
    /// A stored record failed its checksum: 500, the message naming the record.
    #[error("{0}")]
    Damaged(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) | ApiError::Damaged(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::failure(&e)
    }
}

impl ApiError {
    /// Our fault: a damaged record anywhere in `e`'s causes is named (SPEC §15: an error
    /// naming the record, never a figure; it tells the operator what to restore and leaks
    /// nothing but the record's ids); anything else stays an internal error.
    pub fn failure(e: &(dyn std::error::Error + 'static)) -> ApiError {
        let mut cause = Some(e);
        while let Some(c) = cause {
            if let Some(damaged @ crate::store::StoreError::Damaged { .. }) = c.downcast_ref() {
                return ApiError::Damaged(damaged.to_string());
            }
            cause = c.source();
        }
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                "internal error; see the collector's log".to_string()
            }
            ApiError::Damaged(detail) => {
                tracing::error!(error = %detail, "request failed");
                detail.clone()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(ErrorBody { error: message })).into_response();
        if let ApiError::Unavailable { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(retry_after.as_secs().max(1)));
        }
        response
    }
}

impl From<crate::disk::Suspension> for ApiError {
    fn from(s: crate::disk::Suspension) -> Self {
        ApiError::Unavailable { reason: s.reason, retry_after: crate::disk::RETRY_AFTER }
    }
}
