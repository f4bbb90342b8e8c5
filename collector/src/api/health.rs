//! Liveness and readiness. The router exists only once storage is open and the catalogue
//! loaded, so `/readyz` answering means ready; it also checks the store still answers.

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::ApiError;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.store().seq_summary("").map_err(ApiError::internal)?;
    Ok("ready\n")
}
