//! `GET /metrics`: Prometheus text exposition (rendered off the async path: it reads the
//! store's agent seq state; the agreement figures come from `metrics`' cached snapshot),
//! behind an unscoped token once any token is configured unless `[api] metrics_open`
//! (SPEC §12).

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use probity_config::wire::ErrorBody;
use prometheus_client::encoding::prometheus_text;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus text exposition (SPEC §14).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "tokens are configured and none (or an unknown one) was sent", body = ErrorBody),
        (status = 403, description = "a scoped token; /metrics needs an unscoped one (or [api] metrics_open = true)", body = ErrorBody),
        (status = 500, description = "our fault", body = ErrorBody)
    )
)]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    super::auth::require_metrics(&state, &headers)?;
    let now = super::now_ms();
    let text = tokio::task::spawn_blocking(move || {
        state.metrics().render(state.store(), state.writes(), &state.config(), now)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text))
}
