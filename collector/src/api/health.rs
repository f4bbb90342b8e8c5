//! Liveness and readiness. The router exists only once storage is open and the catalogue
//! loaded, so `/readyz` answering means ready unless writes are suspended (SPEC §15: low
//! disk space or a write error, answered as 503 with the reason, as ingest does); it also
//! checks the store still answers.

use axum::extract::State;
use probity_config::wire::ErrorBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// Liveness: the process answers. Open.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = String, example = "ok\n")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: storage open, the catalogue loaded, the store answering, writes taken. Open.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, body = String, example = "ready\n"),
        (status = 500, description = "the store does not answer", body = ErrorBody),
        (status = 503, description = "writes are suspended (free space below [server] min_free_disk, or a write error); the reason is the error", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds until it is worth asking again")))
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.writes().check()?;
    let store = state.store().clone();
    tokio::task::spawn_blocking(move || store.seq_summary("")).await.map_err(ApiError::internal)??;
    Ok("ready\n")
}
