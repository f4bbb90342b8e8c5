//! `GET /api/v1/agents` (SPEC §15): every agent with its labels, instance, last request,
//! clock offset and verdict, version, lost results, resets and assigned probes.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use probity_config::time::rfc3339;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::auth::Principal;
use super::read::authorize;
use crate::agents::{AgentRow, agent_rows};
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(agents))
}

/// The JSON shape of one agent, names as in SPEC §15; `null` where nothing is known yet.
#[derive(Serialize, ToSchema)]
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

/// `GET /api/v1/agents`.
#[derive(Serialize, ToSchema)]
struct AgentList {
    agents: Vec<AgentView>,
}

/// Every agent (SPEC §15).
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "read",
    security((), ("api_token" = [])),
    responses((status = 200, body = AgentList), super::openapi::ReadErrors)
)]
async fn agents(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers)?;
    let rows =
        tokio::task::spawn_blocking(move || current_rows(&state, &principal)).await.map_err(ApiError::internal)??;
    let agents: Vec<AgentView> = rows.into_iter().map(AgentView::from).collect();
    Ok(Json(AgentList { agents }).into_response())
}

/// The rows as of now, of the agents that run a probe the caller sees, each listing only
/// those probes (reads the seq state from the store: call off the async threads).
pub(super) fn current_rows(state: &AppState, principal: &Principal) -> Result<Vec<AgentRow>, ApiError> {
    let config = state.config();
    let catalogue = principal.scoped_catalogue(&config.catalogue);
    let instances = state.store().all_agent_instances()?.into_iter().map(|i| (i.agent.clone(), i)).collect();
    Ok(agent_rows(&catalogue, &state.metrics().agents_seen(), &instances, config.server.max_clock_offset))
}
