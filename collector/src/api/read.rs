//! The read API of SPEC §8 for service owners and supplier managers: services and their
//! state, availability, latency, agreement reports, compliance, structural gaps, evidence
//! bundles and the dashboard. Read tokens when configured; every figure from `report`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use probity_config::Catalogue;
use probity_config::gaps::Gap;
use probity_config::time::rfc3339;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::auth::Principal;
use super::openapi::{PeriodParams, ReadErrors};
use crate::ingest::echo_id;
use crate::period::{PeriodError, PeriodQuery};
use crate::report::{self, ReportError};
use crate::state::AppState;
use crate::store::Store;
use crate::views::View;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    let dashboard =
        OpenApiRouter::new().routes(routes!(dashboard)).routes(routes!(dashboard_js)).routes(routes!(dashboard_css));
    OpenApiRouter::new()
        .merge(super::dashboard_headers(dashboard))
        .routes(routes!(services))
        .routes(routes!(service_availability))
        .routes(routes!(service_latency))
        .routes(routes!(evidence))
        .routes(routes!(gaps))
        .routes(routes!(public_key))
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
            ReportError::Source(source) => ApiError::failure(source.as_ref()),
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

/// The dashboard for service owners (open: it holds no data; it asks the API with the
/// token typed into it).
#[utoipa::path(get, path = "/", tag = "operations", responses((status = 200, content_type = "text/html", body = String)))]
async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

/// The dashboard's script (same origin, as its Content-Security-Policy requires).
#[utoipa::path(get, path = "/dashboard.js", tag = "operations", responses((status = 200, content_type = "text/javascript", body = String)))]
async fn dashboard_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("dashboard.js")).into_response()
}

/// The dashboard's styles.
#[utoipa::path(get, path = "/dashboard.css", tag = "operations", responses((status = 200, content_type = "text/css", body = String)))]
async fn dashboard_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("dashboard.css")).into_response()
}

/// `GET /api/v1/services`.
#[derive(Serialize, ToSchema)]
struct ServiceList {
    services: Vec<ServiceView>,
}

#[derive(Serialize, ToSchema)]
struct ServiceView {
    id: String,
    name: String,
    owner: String,
    #[schema(value_type = crate::views::StateName)]
    state: &'static str,
    since: String,
    depends_on: Vec<String>,
    probes: Vec<ProbeView>,
    agreements: Vec<AgreementRef>,
}

#[derive(Serialize, ToSchema)]
struct ProbeView {
    id: String,
    kind: &'static str,
    target: String,
    interval_ms: u64,
    quorum: usize,
    agents: Vec<String>,
}

#[derive(Serialize, ToSchema)]
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

/// Every service the token sees, with its current state, probes and agreements.
#[utoipa::path(
    get,
    path = "/api/v1/services",
    tag = "read",
    security((), ("api_token" = [])),
    responses((status = 200, body = ServiceList), ReadErrors)
)]
async fn services(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers)?;
    only(&params, &[])?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let c = principal.scoped_catalogue(&config.catalogue);
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
        Ok(ServiceList { services: list })
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
    let principal = authorize(&state, headers)?;
    only(&params, accepted)?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let query = period_query(&params, config.api.max_period);
        let catalogue = principal.scoped_catalogue(&config.catalogue);
        let r = compute(state.store(), &catalogue, query, &params, now)?;
        let mut out = serde_json::to_value(r.view()).map_err(ApiError::internal)?;
        principal.scrub(&mut out);
        Ok(out)
    })
    .await?;
    Ok(Json(out).into_response())
}

pub(super) fn calendar_param(params: &HashMap<String, String>) -> Option<&str> {
    params.get("calendar").map(String::as_str)
}

/// `calendar` for the service-hours figures (default `24x7`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct CalendarParam {
    /// A calendar name from the catalogue, or `24x7` (the default).
    calendar: Option<String>,
}

/// `percentiles`, e.g. `50,90,95,99`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct PercentilesParam {
    /// Comma-separated percentiles in (0, 100]; default `50,90,95,99`.
    percentiles: Option<String>,
}

/// The SPEC §7 figures of a service without targets, with its outages.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/availability",
    tag = "read",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "a service id"), PeriodParams, CalendarParam),
    responses((status = 200, body = crate::views::ServiceAvailabilityView), ReadErrors)
)]
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

/// Latency of a service's successful results over its calendar's hours.
#[utoipa::path(
    get,
    path = "/api/v1/services/{id}/latency",
    tag = "read",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "a service id"), PeriodParams, CalendarParam, PercentilesParam),
    responses((status = 200, body = crate::views::LatencySummaryView), ReadErrors)
)]
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

/// `GET /api/v1/gaps`.
#[derive(Serialize, ToSchema)]
struct GapList {
    gaps: Vec<Gap>,
}

/// Structural gaps between the agreements the token sees (a gap whose two agreements are
/// not both in its scope is not shown).
#[utoipa::path(
    get,
    path = "/api/v1/gaps",
    tag = "read",
    security((), ("api_token" = [])),
    responses((status = 200, body = GapList), ReadErrors)
)]
async fn gaps(State(state): State<AppState>, headers: HeaderMap, Query(params): Params) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers)?;
    only(&params, &[])?;
    let config = state.config();
    let gaps = probity_config::gaps::structural_gaps(&principal.scoped_catalogue(&config.catalogue));
    Ok(Json(GapList { gaps }).into_response())
}

/// The evidence signing key (Ed25519, hex). Open: anyone may verify a bundle.
#[utoipa::path(
    get,
    path = "/api/v1/evidence/public-key",
    tag = "read",
    responses((status = 200, content_type = "text/plain", body = String))
)]
async fn public_key(State(state): State<AppState>) -> Response {
    // The public half is public: no token needed to check a bundle.
    let hex = crate::evidence::signing::public_key_hex(state.signing_key());
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{hex}\n")).into_response()
}

/// A closed period's history as a scoped caller may see it: the sealed catalogue cut to
/// the scope, the stored reports scrubbed, and `catalogue.json` holding that cut with its
/// own `sha256` (so the bundle still verifies offline) beside the whole catalogue's
/// (`whole_sha256`) and a note saying so.
fn scope_closed_evidence(principal: &Principal, closed: &mut crate::history::periods::ClosedEvidence) {
    if !principal.is_scoped() {
        return;
    }
    closed.catalogue = principal.scoped_catalogue(&closed.catalogue).into_owned();
    principal.scrub(&mut closed.summary);
    principal.scrub(&mut closed.revisions);
    let cut = probity_config::canonical::to_value(&closed.catalogue);
    let sha256 = probity_config::canonical::sha256_hex(&probity_config::canonical::to_bytes(&cut));
    let whole = closed.version["sha256"].take();
    closed.version["changes"] = serde_json::Value::Null;
    closed.version["catalogue"] = cut;
    closed.version["sha256"] = serde_json::Value::String(sha256.clone());
    closed.version["whole_sha256"] = whole;
    closed.version["scope"] = serde_json::Value::String(format!(
        "the catalogue as token {} sees it; whole_sha256 is the whole catalogue version's",
        principal.id.as_deref().unwrap_or("(read token)")
    ));
    closed.catalogue_sha256 = sha256;
}

/// The signed evidence bundle of an agreement's period (SPEC §9).
#[utoipa::path(
    get,
    path = "/api/v1/agreements/{id}/evidence",
    tag = "read",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "an agreement id"), PeriodParams),
    responses(
        (status = 200, description = "a zip: manifest.json, manifest.sig, summary.json, CSVs, report.html", content_type = "application/zip", body = Vec<u8>),
        ReadErrors
    )
)]
async fn evidence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers)?;
    only(&params, &["period", "from", "to"])?;
    let now = super::now_ms();
    let (file, name) = blocking(move || {
        let config = state.config();
        // Written to an unlinked temporary file, then streamed: a quarter of raw results
        // never sits in memory.
        let query = period_query(&params, config.api.max_period);
        // A closed period is laid out with the catalogue version of its latest revision,
        // and carries its revisions (SPEC §10); a scoped caller gets all of it cut to its
        // scope.
        let store = state.store().as_ref();
        let scoped = principal.scoped_catalogue(&config.catalogue);
        let mut closed = crate::history::periods::closed_evidence(store, store, &scoped, &id, query, now)?;
        if let Some(c) = closed.as_mut() {
            scope_closed_evidence(&principal, c);
        }
        let catalogue = closed.as_ref().map_or(scoped.as_ref(), |c| &c.catalogue);
        let inputs = report::ResolvedAgreement::resolve(catalogue, &id, query, now)?;
        let tmp = tempfile::tempfile().map_err(ApiError::internal)?;
        let agents = super::agents::current_rows(&state, &principal)?;
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
            other => ApiError::failure(&other),
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
