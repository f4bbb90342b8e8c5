//! `GET /api/v1/agents` (SPEC §15): every agent with its labels, instance, last request,
//! clock offset and verdict, version, lost results, resets and assigned probes.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use probity_config::time::rfc3339;
use serde::Serialize;

use super::ApiError;
use super::read::authorize;
use crate::agents::{AgentRow, agent_rows};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/agents", get(agents))
}

/// The JSON shape of one agent, names as in SPEC §15; `null` where nothing is known yet.
#[derive(Serialize)]
struct AgentView {
    id: String,
    labels: BTreeMap<String, String>,
    instance: Option<String>,
    last_seen: Option<String>,
    clock_offset_ms: Option<i64>,
    clock_ok: Option<bool>,
    version: Option<String>,
    lost_results: u64,
    resets: u64,
    probes: Vec<String>,
    embedded: bool,
}

impl From<AgentRow> for AgentView {
    fn from(r: AgentRow) -> Self {
        AgentView {
            id: r.id,
            labels: r.labels,
            instance: r.instance,
            last_seen: r.last_seen_ms.map(rfc3339),
            clock_offset_ms: r.clock_offset_ms,
            clock_ok: r.clock_ok,
            version: r.version,
            lost_results: r.lost_results,
            resets: r.resets,
            probes: r.probes,
            embedded: r.embedded,
        }
    }
}

async fn agents(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let rows = tokio::task::spawn_blocking(move || current_rows(&state)).await.map_err(ApiError::internal)??;
    let list: Vec<AgentView> = rows.into_iter().map(AgentView::from).collect();
    Ok(Json(serde_json::json!({ "agents": list })).into_response())
}

/// The rows as of now (reads the seq state from the store: call off the async threads).
pub(super) fn current_rows(state: &AppState) -> Result<Vec<AgentRow>, ApiError> {
    let config = state.config();
    let instances = state.store().all_agent_instances()?.into_iter().map(|i| (i.agent.clone(), i)).collect();
    Ok(agent_rows(&config.catalogue, &state.metrics().agents_seen(), &instances, config.server.max_clock_offset))
}
