//! The agent endpoints of SPEC §6: `GET /api/v1/agent/assignment` (ETag, 304) and
//! `POST /api/v1/ingest` (bearer token, compressed bodies under two size limits,
//! per-result validation, dedup, and a 200 only once the accepted results are durable;
//! a 503 with `Retry-After` while writes are suspended or when a write fails, `disk.rs`).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use probity_config::wire::{AssignedProbe, Assignment, ErrorBody, IngestRequest, IngestResponse, Rejected};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::ingest::{DecodeError, Encoding, RejectReason, check_result, check_seq, decode_body, echo_id};
use crate::metrics::ClockChange;
use crate::state::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(assignment)).routes(routes!(ingest))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AssignmentQuery {
    /// Optional: an agent may name itself; naming another is 403.
    agent: Option<String>,
}

/// The agent a request's bearer token belongs to.
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <agent token>".into()))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be \"Bearer <agent token>\"".into()))?;
    state.agent_for_token(token).ok_or_else(|| ApiError::Unauthorized("unknown agent token".into()))
}

/// The probes the calling agent must run (SPEC §6).
#[utoipa::path(
    get,
    path = "/api/v1/agent/assignment",
    tag = "agent",
    security(("agent_token" = [])),
    params(
        AssignmentQuery,
        ("If-None-Match" = Option<String>, Header, description = "the ETag of the assignment the agent holds")
    ),
    responses(
        (status = 200, body = Assignment, headers(("ETag" = String, description = "the assignment's version"))),
        (status = 304, description = "unchanged since If-None-Match"),
        (status = 401, description = "no agent token, or an unknown one", body = ErrorBody),
        (status = 403, description = "the token belongs to another agent than ?agent=", body = ErrorBody)
    )
)]
async fn assignment(
    State(state): State<AppState>,
    Query(query): Query<AssignmentQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let agent = authenticate(&state, &headers)?;
    if let Some(asked) = query.agent.filter(|a| *a != agent) {
        return Err(ApiError::Forbidden(format!("this token belongs to agent '{agent}', not '{asked}'")));
    }
    let config = state.config();
    let body = Assignment {
        agent: agent.clone(),
        probes: config
            .catalogue
            .assignment(&agent)
            .into_iter()
            .map(|p| AssignedProbe {
                id: p.id.to_string(),
                interval_ms: p.interval.as_millis() as u64,
                timeout_ms: p.timeout.as_millis() as u64,
                spec: p.spec.clone(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    Ok((
        StatusCode::OK,
        [(header::ETAG, etag_value), (header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        Bytes::from(bytes),
    )
        .into_response())
}

/// A batch of results; answered once every accepted result is durable (SPEC §6, §15).
#[utoipa::path(
    post,
    path = "/api/v1/ingest",
    tag = "agent",
    security(("agent_token" = [])),
    params(("Content-Encoding" = Option<String>, Header, description = "gzip or zstd, or none")),
    request_body(content = IngestRequest, content_type = "application/json"),
    responses(
        (status = 200, body = IngestResponse),
        (status = 400, description = "a malformed body or instance", body = ErrorBody),
        (status = 401, description = "no agent token, or an unknown one", body = ErrorBody),
        (status = 403, description = "the token belongs to another agent", body = ErrorBody),
        (status = 413, description = "the body (or its decompression) is over the limit", body = ErrorBody),
        (status = 415, description = "an unknown Content-Encoding", body = ErrorBody),
        (status = 500, description = "our fault", body = ErrorBody),
        (status = 503, description = "writes are suspended (free space below [server] min_free_disk, or a write error): nothing was stored; keep the results and send them again after Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds to wait before sending again")))
    )
)]
async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let started = tokio::time::Instant::now();
    // Stamped on arrival, before the body is read: the agent halves the round trip around it.
    let received_at = now_ms();
    let limits = state.limits();
    // A declared length over the limit is refused before a byte of the body is read.
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if let Some(length) = declared.filter(|n| *n > limits.max_body as u64) {
        return Err(ApiError::PayloadTooLarge(format!(
            "Content-Length {length} is larger than the limit of {} bytes",
            limits.max_body
        )));
    }
    let agent = authenticate(&state, &headers)?;
    // Suspended: refused before the body is read, so a full disk costs the agents nothing.
    state.writes().check()?;
    let encoding_header = headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?"));
    let encoding = Encoding::from_header(encoding_header).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {:?} is not supported; use gzip, zstd or none",
            encoding_header.unwrap_or_default()
        ))
    })?;
    let wire = match Limited::new(body, limits.max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::PayloadTooLarge(format!(
                "the request body is larger than {} bytes",
                limits.max_body
            )));
        }
        Err(e) => return Err(ApiError::BadRequest(format!("cannot read the request body: {e}"))),
    };
    let version = agent_version(&headers);
    let worker = state.clone();
    let mut response = tokio::task::spawn_blocking(move || ingest_blocking(&worker, &agent, version, encoding, &wire))
        .await
        .map_err(ApiError::internal)??;
    response.received_at = Some(received_at);
    // Duplicates and rejections wait too: the write they repeat may still be in flight. A
    // failed or endless flush is a storage failure: 503, and the agent sends the batch
    // again later (a duplicate by then if it did reach the disk).
    match tokio::time::timeout(crate::disk::WRITE_TIMEOUT, state.commit().commit()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(state.writes().suspend_on_error(&e).into()),
        Err(_) => {
            let late = format!("a flush did not finish within {}s", crate::disk::WRITE_TIMEOUT.as_secs());
            return Err(state.writes().suspend_on_error(&late).into());
        }
    }
    state.metrics().observe_ingest_latency(started.elapsed());
    Ok(Json(response))
}

/// Decode, parse, validate and store one batch (blocking: decompression and sled writes).
fn ingest_blocking(
    state: &AppState,
    agent: &str,
    version: Option<String>,
    encoding: Encoding,
    wire: &[u8],
) -> Result<IngestResponse, ApiError> {
    let decoded = decode_body(encoding, wire, state.limits().max_decoded).map_err(|e| match e {
        DecodeError::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
        DecodeError::Corrupt { .. } => ApiError::BadRequest(e.to_string()),
    })?;
    let request: IngestRequest = serde_json::from_slice(&decoded)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a valid ingest request: {e}")))?;
    if request.agent != agent {
        return Err(ApiError::Forbidden(format!(
            "this token belongs to agent '{agent}', not '{}'",
            echo_id(&request.agent)
        )));
    }
    if let Some(instance) = &request.instance {
        probity_config::wire::check_instance(instance).map_err(ApiError::BadRequest)?;
    }
    let config = state.config();
    let now_ms = now_ms();
    record_clock(state, &config, agent, request.clock_offset_ms, version.as_deref(), now_ms);
    // A seq out of range is refused before the store sees it: the store marks every seq it
    // is given as answered for, and one such seq would count as billions of lost results.
    let instance = request.instance.as_deref();
    let highest = state.store().instance_highest(agent, instance).map_err(|e| storage_failure(state, &e))?;
    let (results, out_of_range): (Vec<_>, Vec<_>) =
        request.results.into_iter().partition(|r| check_seq(r.seq, highest).is_ok());
    // Closed periods these results fall in are marked first (SPEC §10, restatement pending):
    // a crash in between leaves a mark too many, never a late result without one.
    crate::history::restatements::note_results(state.store(), &config, agent, &results, now_ms)
        .map_err(|e| storage_failure(state, &e))?;
    let mut summary = state
        .store()
        .ingest(agent, instance, &results, |r| check_result(&config, agent, r, now_ms))
        .map_err(|e| storage_failure(state, &e))?;
    for r in &out_of_range {
        if let Err(reason) = check_seq(r.seq, highest) {
            summary.rejected.push((r.seq, reason));
        }
    }
    if summary.reset {
        tracing::warn!(
            agent,
            instance = instance.unwrap_or("legacy"),
            "agent reset: a new agent instance (a new or deleted spool); its seqs start again"
        );
    }
    let reasons: Vec<&RejectReason> = summary.rejected.iter().map(|(_, r)| r).collect();
    state.metrics().record_ingest(summary.accepted, summary.duplicates, &reasons);
    state.metrics().record_latest(agent, &summary.latest, &results);
    if !summary.rejected.is_empty() {
        tracing::debug!(agent, rejected = summary.rejected.len(), first = %summary.rejected[0].1, "results rejected");
    }
    let response = IngestResponse {
        accepted: summary.accepted,
        duplicates: summary.duplicates,
        rejected: summary.rejected.into_iter().map(|(seq, r)| Rejected { seq, reason: r.to_string() }).collect(),
        received_at: None,
    };
    Ok(response)
}

/// A storage failure anywhere in `e`'s causes suspends writes and answers 503 (the agent
/// keeps the batch and sends it again); anything else (a damaged record) is what
/// `ApiError::failure` makes of it.
fn storage_failure(state: &AppState, e: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(store) = c.downcast_ref::<crate::store::StoreError>()
            && crate::disk::is_write_failure(store)
        {
            return state.writes().suspend_on_error(store).into();
        }
        cause = c.source();
    }
    ApiError::failure(e)
}

/// Notes the agent's request and clock offset; warns once when its clock goes past
/// `[server] max_clock_offset` and once when it comes back, not on every request.
fn record_clock(
    state: &AppState,
    config: &probity_config::CollectorConfig,
    agent: &str,
    reported: Option<i64>,
    version: Option<&str>,
    now_ms: i64,
) {
    // An offset beyond a century is no clock's: keep the last plausible one instead.
    let offset = reported.filter(|o| o.unsigned_abs() <= crate::ingest::MAX_CERT_DISTANCE_S as u64 * 1000);
    if offset.is_none() && reported.is_some() {
        tracing::debug!(agent, clock_offset_ms = reported, "implausible clock offset ignored");
    }
    let max = i64::try_from(config.server.max_clock_offset.as_millis()).unwrap_or(i64::MAX);
    let max_text = probity_config::units::format_duration(config.server.max_clock_offset);
    match state.metrics().record_agent(agent, now_ms, offset, version, max) {
        ClockChange::WentOff => tracing::warn!(
            agent,
            clock_offset_ms = offset,
            max_clock_offset = %max_text,
            "agent clock is off; its results are timed by its own clock (check NTP on the agent host)"
        ),
        ClockChange::CameBack => {
            tracing::info!(agent, clock_offset_ms = offset, max_clock_offset = %max_text, "agent clock is back in line")
        }
        ClockChange::Unchanged => {}
    }
}

/// `probity-agent/0.1.0` → `0.1.0`; other clients are named as they name themselves.
fn agent_version(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let version = ua.strip_prefix("probity-agent/").unwrap_or(ua);
    Some(echo_id(version))
}

/// Collector wall-clock time, Unix ms: data here (the future/retention checks), not a timer.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
