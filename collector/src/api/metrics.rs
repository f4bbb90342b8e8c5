//! `GET /metrics`: Prometheus text exposition (rendered off the async path: it reads the
//! store's agent seq state; the agreement figures come from `metrics`' cached snapshot),
//! behind an unscoped token once any token is configured unless `[api] metrics_open`
//! (SPEC §12).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::prometheus_text;

use super::ApiError;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    super::auth::require_metrics(&state, &headers)?;
    let now = super::now_ms();
    let text = tokio::task::spawn_blocking(move || state.metrics().render(state.store(), &state.config(), now))
        .await
        .map_err(ApiError::internal)??;
    Ok(([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text))
}
