//! The read API of SPEC §8 for service owners and supplier managers: services and their
//! state, availability, latency, agreement reports, compliance, structural gaps, evidence
//! bundles and the dashboard. Read tokens when configured; every figure from `report`.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use probity_config::Catalogue;
use probity_config::time::rfc3339;
use serde::Serialize;

use super::ApiError;
use super::auth::Principal;
use crate::ingest::echo_id;
use crate::period::{PeriodError, PeriodQuery};
use crate::report::{self, ReportError};
use crate::state::AppState;
use crate::store::Store;
use crate::views::View;

pub(super) fn routes() -> Router<AppState> {
    let dashboard = Router::new()
        .route("/", get(dashboard))
        .route("/dashboard.js", get(dashboard_js))
        .route("/dashboard.css", get(dashboard_css));
    Router::new()
        .merge(super::dashboard_headers(dashboard))
        .route("/api/v1/services", get(services))
        .route("/api/v1/services/{id}/availability", get(service_availability))
        .route("/api/v1/services/{id}/latency", get(service_latency))
        .route("/api/v1/agreements/{id}/evidence", get(evidence))
        .route("/api/v1/gaps", get(gaps))
        .route("/api/v1/evidence/public-key", get(public_key))
}

type Params = Query<HashMap<String, String>>;

/// Refuses a request without a valid token when any is configured (SPEC §8, §12); the
/// caller's scope decides what the answer may show.
pub(super) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    super::auth::require(state, headers, probity_config::Role::Reader)
}

/// Rejects parameters an endpoint does not take, naming the ones it does.
pub(super) fn only(params: &HashMap<String, String>, accepted: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<&str> = params.keys().map(String::as_str).filter(|k| !accepted.contains(k)).collect();
    unknown.sort_unstable();
    match unknown.first() {
        None => Ok(()),
        Some(k) => Err(ApiError::BadRequest(format!(
            "unknown parameter \"{k}\"; this endpoint accepts {}",
            accepted.join(", ")
        ))),
    }
}

/// The period parameters, with `[api] max_period` so a longer period is refused before any work.
pub(super) fn period_query(params: &HashMap<String, String>, max_period: std::time::Duration) -> PeriodQuery<'_> {
    PeriodQuery {
        period: params.get("period").map(String::as_str),
        from: params.get("from").map(String::as_str),
        to: params.get("to").map(String::as_str),
        max_period: Some(max_period),
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::UnknownAgreement(id) => super::unknown_agreement(&id),
            ReportError::UnknownService(id) => super::unknown_service(&id),
            ReportError::UnknownCalendar(name, defined) => {
                ApiError::BadRequest(ReportError::UnknownCalendar(echo_id(&name), defined).to_string())
            }
            ReportError::Period(_) | ReportError::BadParameter(_) => ApiError::BadRequest(e.to_string()),
            ReportError::Source(source) => ApiError::internal(source),
        }
    }
}

impl From<PeriodError> for ApiError {
    fn from(e: PeriodError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

/// Runs report arithmetic (sled scans) off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

async fn dashboard_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("dashboard.js")).into_response()
}

async fn dashboard_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("dashboard.css")).into_response()
}

#[derive(Serialize)]
struct ServiceView {
    id: String,
    name: String,
    owner: String,
    state: &'static str,
    since: String,
    depends_on: Vec<String>,
    probes: Vec<ProbeView>,
    agreements: Vec<AgreementRef>,
}

#[derive(Serialize)]
struct ProbeView {
    id: String,
    kind: &'static str,
    target: String,
    interval_ms: u64,
    quorum: usize,
    agents: Vec<String>,
}

#[derive(Serialize)]
struct AgreementRef {
    id: String,
    kind: probity_config::AgreementKind,
    target_percent: f64,
    calendar: String,
    /// The calendar's IANA zone: the dashboard shows the agreement's times in it.
    timezone: String,
    /// The agreement's own period kind (`week`, `month`, `quarter`, `year`).
    period: &'static str,
}

async fn services(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    only(&params, &[])?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let c = &config.catalogue;
        let store = state.store();
        // Nothing was monitored before the first catalogue version (the collector's first
        // start on this database): no state is older than that.
        let monitored_from = crate::history::versions::get(store, 1)?.map(|v| v.loaded_at_ms.min(now));
        let mut list = Vec::with_capacity(c.services.len());
        for s in &c.services {
            let (st, since) = report::current_state(store.as_ref(), s, now)?;
            let since = monitored_from.map_or(since, |first| since.max(first));
            list.push(ServiceView {
                id: s.id.to_string(),
                name: s.name.clone(),
                owner: s.owner.clone(),
                state: st.as_str(),
                since: rfc3339(since),
                depends_on: s.depends_on.iter().map(|d| d.to_string()).collect(),
                probes: s
                    .probes
                    .iter()
                    .map(|p| ProbeView {
                        id: p.id.to_string(),
                        kind: p.spec.kind(),
                        target: p.spec.target(),
                        interval_ms: p.interval.as_millis() as u64,
                        quorum: p.quorum,
                        agents: p.agents.iter().map(|a| a.to_string()).collect(),
                    })
                    .collect(),
                agreements: c
                    .agreements_of(s.id.as_str())
                    .map(|a| AgreementRef {
                        id: a.id.to_string(),
                        kind: a.kind,
                        target_percent: a.availability,
                        calendar: a.calendar.clone(),
                        timezone: c.calendar(&a.calendar).map(|cal| cal.timezone_name.clone()).unwrap_or_default(),
                        period: a.period.as_str(),
                    })
                    .collect(),
            });
        }
        Ok(serde_json::json!({ "services": list }))
    })
    .await?;
    Ok(Json(out).into_response())
}

/// The shape every report endpoint shares: check the token and the parameters, then
/// compute off the async threads against the configuration in force and answer JSON.
pub(super) async fn report_json<T: View>(
    state: AppState,
    headers: &HeaderMap,
    params: HashMap<String, String>,
    accepted: &[&str],
    compute: impl FnOnce(&Store, &Catalogue, PeriodQuery<'_>, &HashMap<String, String>, i64) -> Result<T, ReportError>
    + Send
    + 'static,
) -> Result<Response, ApiError> {
    authorize(&state, headers)?;
    only(&params, accepted)?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let query = period_query(&params, config.api.max_period);
        let r = compute(state.store(), &config.catalogue, query, &params, now)?;
        serde_json::to_value(r.view()).map_err(ApiError::internal)
    })
    .await?;
    Ok(Json(out).into_response())
}

pub(super) fn calendar_param(params: &HashMap<String, String>) -> Option<&str> {
    params.get("calendar").map(String::as_str)
}

async fn service_availability(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    report_json(state, &headers, params, &["period", "from", "to", "calendar"], move |store, c, q, p, now| {
        report::service_availability(store, c, &id, calendar_param(p), q, now)
    })
    .await
}

async fn service_latency(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    report_json(
        state,
        &headers,
        params,
        &["period", "from", "to", "calendar", "percentiles"],
        move |store, c, q, p, now| {
            let percentiles = report::parse_percentiles(p.get("percentiles").map(String::as_str))?;
            report::service_latency(store, c, &id, calendar_param(p), q, &percentiles, now)
        },
    )
    .await
}

async fn gaps(State(state): State<AppState>, headers: HeaderMap, Query(params): Params) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    only(&params, &[])?;
    let config = state.config();
    let gaps = probity_config::gaps::structural_gaps(&config.catalogue);
    Ok(Json(serde_json::json!({ "gaps": gaps })).into_response())
}

async fn public_key(State(state): State<AppState>) -> Response {
    // The public half is public: no token needed to check a bundle.
    let hex = crate::evidence::signing::public_key_hex(state.signing_key());
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{hex}\n")).into_response()
}

async fn evidence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    only(&params, &["period", "from", "to"])?;
    let now = super::now_ms();
    let (file, name) = blocking(move || {
        let config = state.config();
        // Written to an unlinked temporary file, then streamed: a quarter of raw results
        // never sits in memory.
        let query = period_query(&params, config.api.max_period);
        // A closed period is laid out with the catalogue version of its latest revision,
        // and carries its revisions (SPEC §10).
        let store = state.store().as_ref();
        let closed = crate::history::periods::closed_evidence(store, store, &config.catalogue, &id, query, now)?;
        let catalogue = closed.as_ref().map_or(&config.catalogue, |c| &c.catalogue);
        let inputs = report::ResolvedAgreement::resolve(catalogue, &id, query, now)?;
        let tmp = tempfile::tempfile().map_err(ApiError::internal)?;
        let agents = super::agents::current_rows(&state)?;
        let file = crate::evidence::export::export(
            std::io::BufWriter::new(tmp),
            state.store().as_ref(),
            &inputs,
            closed.as_ref().map(|c| c.history()),
            &agents,
            state.signing_key(),
            now,
        )
        .map_err(|e| match e {
            crate::evidence::export::EvidenceError::Report(r) => ApiError::from(r),
            other => ApiError::internal(other),
        })?;
        let mut file = file.into_inner().map_err(|e| ApiError::internal(e.error()))?;
        use std::io::Seek;
        file.rewind().map_err(ApiError::internal)?;
        Ok((file, format!("{id}-{}.zip", inputs.period.label.replace(['/', ':'], "_"))))
    })
    .await?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
