//! What the dashboard draws a period from, and what Grafana's JSON datasources can read:
//! `GET /api/v1/services/{id}/timeline` (the state runs of a period with their reasons and
//! the maintenance windows) and `GET /api/v1/services/{id}/latency/series` (latency
//! percentiles per hour or local day). Read tokens as every read endpoint; figures from
//! `report`, JSON from `views`.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::openapi::{PeriodParams, ReadErrors};
use super::read::{CalendarParam, PercentilesParam, calendar_param, report_json};
use crate::report;
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(timeline)).routes(routes!(latency_series))
}

/// `step`: `hour` or `day` (local days in the calendar's zone).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct StepParam {
    /// `hour` or `day`.
    step: Option<String>,
}

type Params = Query<std::collections::HashMap<String, String>>;

/// A service's state runs over a period, with service hours, maintenance and reasons.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/timeline",
    tag = "read",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "a service id"), PeriodParams, CalendarParam),
    responses((status = 200, body = crate::views::TimelineView), ReadErrors)
)]
async fn timeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    report_json(state, &headers, params, &["period", "from", "to", "calendar"], move |store, c, q, p, now| {
        report::service_state_timeline(store, c, &id, calendar_param(p), q, now)
    })
    .await
}

/// Latency percentiles of a service per hour or local day.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/latency/series",
    tag = "read",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "a service id"), PeriodParams, CalendarParam, StepParam, PercentilesParam),
    responses((status = 200, body = crate::views::LatencySeriesView), ReadErrors)
)]
async fn latency_series(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    report_json(
        state,
        &headers,
        params,
        &["period", "from", "to", "calendar", "step", "percentiles"],
        move |store, c, q, p, now| {
            let percentiles = report::parse_percentiles(p.get("percentiles").map(String::as_str))?;
            let step = report::parse_step(p.get("step").map(String::as_str))?;
            report::latency_series(store, c, &id, calendar_param(p), q, step, &percentiles, now)
        },
    )
    .await
}
