//! The history endpoints of SPEC §10: agreement reports through the history layer (a
//! closed period answers from its sealed revision), each period's revisions, and catalogue
//! versions (listed, and each one's catalogue without token hashes). Read tokens as for the
//! rest of the read API.

use std::collections::HashMap;

use std::borrow::Cow;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use probity_config::Catalogue;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::auth::Principal;
use super::openapi::{PeriodParams, ReadErrors, WriteErrors};
use super::read::{authorize, blocking, only, period_query};
use crate::history::periods::HistoryReadError;
use crate::history::{self, HistoryError};
use crate::period::PeriodQuery;
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(agreement_report))
        .routes(routes!(period_revisions))
        .routes(routes!(restate))
        .routes(routes!(compliance))
        .routes(routes!(versions))
        .routes(routes!(version))
}

/// The catalogue a history read computes with, as the caller may see it. The history layer
/// records the catalogue it is given as the first version when there is none yet, so the
/// full catalogue is recorded first: a scoped view is never stored as a version.
fn scoped_catalogue<'c>(
    state: &AppState,
    principal: &Principal,
    catalogue: &'c Catalogue,
    now: i64,
) -> Result<Cow<'c, Catalogue>, ApiError> {
    if principal.is_scoped() && state.store().latest_catalogue_version()?.is_none() {
        history::versions::record(state.store(), catalogue, history::versions::Source::File, now)?;
    }
    Ok(principal.scoped_catalogue(catalogue))
}

type Params = Query<HashMap<String, String>>;

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        ApiError::internal(e)
    }
}

impl From<HistoryReadError> for ApiError {
    fn from(e: HistoryReadError) -> Self {
        match e {
            HistoryReadError::Report(r) => ApiError::from(r),
            HistoryReadError::History(h) => ApiError::from(h),
        }
    }
}

/// An agreement's report for a period (SPEC §7, §8, §10): a closed period answers from its
/// latest sealed revision.
#[utoipa::path(
    get,
    path = "/api/v1/agreements/{id}/report",
    tag = "read",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "an agreement id"), PeriodParams),
    responses((status = 200, body = ReportDoc), ReadErrors)
)]
async fn agreement_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers)?;
    only(&params, &["period", "from", "to"])?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let query = period_query(&params, config.api.max_period);
        let store = state.store().as_ref();
        let catalogue = scoped_catalogue(&state, &principal, &config.catalogue, now)?;
        let mut report = history::periods::agreement_report(store, store, &catalogue, &id, query, now)?;
        principal.scrub(&mut report);
        Ok(report)
    })
    .await?;
    Ok(Json(out).into_response())
}

/// Every agreement the token sees, summarised, with verdict counts and the compliance rate.
#[utoipa::path(
    get,
    path = "/api/v1/compliance",
    tag = "read",
    security((), ("api_token" = [])),
    params(PeriodParams),
    responses((status = 200, body = ComplianceDoc), ReadErrors)
)]
async fn compliance(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers)?;
    only(&params, &["period", "from", "to"])?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let query = period_query(&params, config.api.max_period);
        let store = state.store().as_ref();
        let catalogue = scoped_catalogue(&state, &principal, &config.catalogue, now)?;
        let mut out = history::periods::compliance(store, store, &catalogue, query, now)?;
        principal.scrub(&mut out);
        Ok(out)
    })
    .await?;
    Ok(Json(out).into_response())
}

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RestateBody {
    /// Why the period is restated (required, not blank).
    reason: String,
}

/// Stores the recomputation of a closed period (with its sealed catalogue version) as its
/// next revision. Needs a `manager` token; the reason is required.
#[utoipa::path(
    post,
    path = "/api/v1/agreements/{id}/periods/{label}/restate",
    tag = "history",
    security(("api_token" = [])),
    params(
        ("id" = String, Path, description = "an agreement id"),
        ("label" = String, Path, description = "a closed period's label, e.g. 2026-11")
    ),
    request_body(content = RestateBody, content_type = "application/json"),
    responses((status = 201, description = "the new revision, with its report", body = RevisionDoc), WriteErrors)
)]
async fn restate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, label)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = super::auth::require(&state, &headers, probity_config::Role::Manager)?;
    caller.agreement_or_404(&id)?;
    let body: RestateBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be {{\"reason\": \"why this period is restated\"}}: {e}"))
    })?;
    let reason = body.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ApiError::BadRequest("reason is empty; say why this period is restated".into()));
    }
    let by = caller.id.clone().unwrap_or_else(|| "manager".into());
    let now = super::now_ms();
    let revision = blocking(move || {
        let config = state.config();
        let store = state.store().as_ref();
        let request = history::periods::Restatement { agreement: &id, label: &label, reason: &reason, by: &by };
        history::periods::restate(store, store, &config.catalogue, &request, now).map_err(|e| match e {
            history::periods::RestateError::NotClosed { .. } => ApiError::Conflict(e.to_string()),
            history::periods::RestateError::Unchanged { .. } => ApiError::Conflict(e.to_string()),
            history::periods::RestateError::Read(r) => ApiError::from(r),
        })
    })
    .await?;
    tracing::info!(by = %revision.by, revision = revision.number, "closed period restated");
    let mut out = revision.listing();
    out["report"] = revision.report;
    caller.scrub(&mut out);
    Ok((axum::http::StatusCode::CREATED, Json(out)).into_response())
}

/// Every revision of a closed period (sealing it first if it has none yet).
#[utoipa::path(
    get,
    path = "/api/v1/agreements/{id}/periods/{label}/revisions",
    tag = "history",
    security((), ("api_token" = [])),
    params(
        ("id" = String, Path, description = "an agreement id"),
        ("label" = String, Path, description = "a period label, e.g. 2026-11")
    ),
    responses((status = 200, body = RevisionListDoc), ReadErrors)
)]
async fn period_revisions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, label)): Path<(String, String)>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers)?;
    only(&params, &[])?;
    let now = super::now_ms();
    let out = blocking(move || {
        let config = state.config();
        let store = state.store().as_ref();
        // Reading the period's report seals it if it is closed, and checks the id and label.
        let query = PeriodQuery { period: Some(&label), from: None, to: None, max_period: None };
        let catalogue = scoped_catalogue(&state, &principal, &config.catalogue, now)?;
        let report = history::periods::agreement_report(store, store, &catalogue, &id, query, now)?;
        let label = report["period"]["label"].as_str().unwrap_or(&label).to_string();
        let list = history::periods::revisions(store, &id, &label)?;
        let lines: Vec<serde_json::Value> = list.iter().map(|r| r.listing()).collect();
        let mut out = serde_json::json!({
            "agreement": id,
            "period": report["period"],
            "revisions": lines,
        });
        principal.scrub(&mut out);
        Ok(out)
    })
    .await?;
    Ok(Json(out).into_response())
}

/// Every catalogue version. A scoped token sees every version, its `changes` cut to the
/// entries of the catalogue it sees.
#[utoipa::path(
    get,
    path = "/api/v1/catalogue/versions",
    tag = "history",
    security((), ("api_token" = [])),
    responses((status = 200, body = VersionListDoc), ReadErrors)
)]
async fn versions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers)?;
    only(&params, &[])?;
    let config = state.config();
    let list = blocking(move || Ok(history::versions::list(state.store())?)).await?;
    let seen = principal.scoped_catalogue(&config.catalogue);
    let lines: Vec<Value> = list
        .iter()
        .map(|v| {
            let mut line = v.summary();
            if principal.is_scoped() {
                cut_changes(&mut line["changes"], &seen);
            }
            line
        })
        .collect();
    Ok(Json(serde_json::json!({ "versions": lines })).into_response())
}

/// Keeps the `changes` entries that name something in the caller's catalogue.
fn cut_changes(changes: &mut Value, seen: &Catalogue) {
    let visible = |entry: &Value| -> bool {
        let id = entry["id"].as_str().unwrap_or_default();
        match entry["kind"].as_str().unwrap_or_default() {
            "service" => seen.service(id).is_some(),
            "agreement" => seen.agreement(id).is_some(),
            "probe" => seen.probe(id).is_some(),
            "agent" => seen.agent(id).is_some(),
            "calendar" => seen.calendar(id).is_some(),
            "maintenance" => seen.maintenance.iter().any(|m| m.id.as_str() == id),
            _ => false,
        }
    };
    if let Some(map) = changes.as_object_mut() {
        for list in map.values_mut() {
            if let Some(entries) = list.as_array_mut() {
                entries.retain(visible);
            }
        }
    }
}

/// One catalogue version with its catalogue (token hashes left out). A scoped token sees
/// that catalogue cut to its scope (its services, agreements, their calendars, agents and
/// maintenance); `sha256` stays the whole catalogue's.
#[utoipa::path(
    get,
    path = "/api/v1/catalogue/versions/{n}",
    tag = "history",
    security((), ("api_token" = [])),
    params(("n" = u32, Path, description = "a version number, from 1")),
    responses((status = 200, body = VersionDoc), ReadErrors)
)]
async fn version(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(n): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let principal = authorize(&state, &headers)?;
    only(&params, &[])?;
    let number: u32 = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::BadRequest(format!("\"{n}\" is not a catalogue version; versions are numbered 1, 2, …"))
    })?;
    let found = blocking(move || Ok(history::versions::get(state.store(), number)?)).await?;
    let v = found.ok_or_else(|| ApiError::NotFound(format!("no catalogue version {number}")))?;
    let mut out = v.summary();
    if principal.is_scoped() {
        let catalogue = v.catalogue()?;
        let seen = principal.scoped_catalogue(&catalogue);
        cut_changes(&mut out["changes"], &seen);
        out["catalogue"] = probity_config::canonical::to_value(&seen);
    } else {
        out["catalogue"] = v.catalogue;
    }
    Ok(Json(out).into_response())
}

// The shapes of the JSON the history layer builds (`history::periods`, `history::versions`
// answer `serde_json::Value`s): documented here field by field, beside the handlers that
// answer them.

/// An agreement report (`views::AgreementReportView`) with the history fields of SPEC §10.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct ReportDoc<'a> {
    #[serde(flatten)]
    report: crate::views::AgreementReportView<'a>,
    /// The revision answered from (a closed period), else null.
    revision: Option<RevisionSummaryDoc>,
    /// `{since, reasons, figures}` when a recomputation of a closed period differs; else null.
    #[schema(value_type = Option<Object>)]
    restatement_pending: Option<Value>,
}

/// `views::ComplianceView` with each line's `revision` (SPEC §10).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct ComplianceDoc<'a> {
    agreements: Vec<ComplianceLineDoc<'a>>,
    met: usize,
    breached: usize,
    insufficient_data: usize,
    compliance_rate_percent: Option<f64>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct ComplianceLineDoc<'a> {
    #[serde(flatten)]
    line: crate::views::ComplianceLineView<'a>,
    /// The sealed revision a closed period's line shows, else null.
    revision: Option<RevisionSummaryDoc>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct RevisionSummaryDoc {
    number: u32,
    sealed_at: String,
    catalogue_version: u32,
    reason: String,
    by: String,
}

/// A revision as listed: its summary, `at` and what changed from the one before.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct RevisionDoc {
    #[serde(flatten)]
    summary: RevisionSummaryDoc,
    at: String,
    /// {field: {before, after}}.
    #[schema(value_type = Object)]
    changed: Value,
    /// The report the revision stores (in the answer to restate only).
    #[schema(value_type = Option<Object>)]
    report: Option<Value>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct RevisionListDoc {
    agreement: String,
    #[schema(value_type = Object)]
    period: Value,
    revisions: Vec<RevisionDoc>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct VersionSummaryDoc {
    version: u32,
    loaded_at: String,
    /// sha256 of the whole catalogue's canonical JSON.
    sha256: String,
    /// `file` or `api`.
    source: String,
    /// {added, removed, changed}: lists of {kind, id}.
    #[schema(value_type = Object)]
    changes: Value,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct VersionListDoc {
    versions: Vec<VersionSummaryDoc>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct VersionDoc {
    #[serde(flatten)]
    summary: VersionSummaryDoc,
    /// The catalogue in the config file's vocabulary, token hashes left out.
    #[schema(value_type = Object)]
    catalogue: Value,
}
