//! The agent's side of the wire protocol (SPEC §6): a reqwest client with the bearer
//! token, `GET /api/v1/agent/assignment` and `POST /api/v1/ingest`, and the clock offset
//! estimated from each ingest answer's `received_at` (SPEC §15).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use probity_config::wire::{Assignment, IngestResponse};
use probity_config::{AgentConfig, TokenSource};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::AgentError;

/// Request body compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    #[default]
    Zstd,
    Gzip,
    None,
}

pub struct Collector {
    http: reqwest::Client,
    base: url::Url,
    authorization: String,
    pub agent: String,
    compression: Compression,
    /// This host's clock minus the collector's, from the latest ingest answer.
    clock_offset_ms: Mutex<Option<i64>>,
}

/// Why a call to the collector did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(
        "collector refused the agent's token ({status}): check token / token_file and the collector's [[agents]] entry"
    )]
    Auth { status: StatusCode },
    #[error("collector answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    /// `503`: the collector cannot store results now (disk full, write errors); results
    /// stay spooled and are sent again after `retry_after` (its `Retry-After`).
    #[error("collector cannot store results now (503): {body}")]
    Unavailable { retry_after: Option<Duration>, body: String },
    #[error("collector unreachable: {0}")]
    Transport(String),
    #[error("collector sent an unreadable answer: {0}")]
    Decode(String),
}

pub enum AssignmentFetch {
    Changed { assignment: Assignment, etag: Option<String> },
    NotModified,
}

/// The bearer token, read from `token_file` when it is one; an empty file is an error.
pub fn read_token(source: &TokenSource) -> Result<String, AgentError> {
    match source {
        TokenSource::Inline(t) => Ok(t.clone()),
        TokenSource::File(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|error| AgentError::Token { path: path.clone(), error })?;
            let token = text.trim();
            if token.is_empty() {
                let error =
                    std::io::Error::other("is empty; put the token printed by probity-collector new-agent in it");
                return Err(AgentError::Token { path: path.clone(), error });
            }
            Ok(token.to_string())
        }
    }
}

impl Collector {
    /// Reads the token and `ca_file` and builds the HTTP client; nothing is sent yet.
    pub fn new(config: &AgentConfig, compression: Compression) -> Result<Collector, AgentError> {
        crate::install_crypto_provider();
        let token = read_token(&config.token)?;
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|error| AgentError::CaFile { path: path.clone(), error })?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| AgentError::Client(format!("ca_file {}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| AgentError::Client(format!("ca_file {}: {e}", path.display())))?;
            }
        }
        let mut tls = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("probity-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AgentError::Client(e.to_string()))?;
        let mut base = config.collector.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Collector {
            http,
            base,
            authorization: format!("Bearer {token}"),
            agent: config.id.as_str().to_string(),
            compression,
            clock_offset_ms: Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> url::Url {
        self.base.join(path).expect("a relative path joins")
    }

    pub async fn fetch_assignment(&self, etag: Option<&str>) -> Result<AssignmentFetch, CallError> {
        let mut request = self.http.get(self.url("api/v1/agent/assignment")).header(AUTHORIZATION, &self.authorization);
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        match status {
            StatusCode::NOT_MODIFIED => Ok(AssignmentFetch::NotModified),
            StatusCode::OK => {
                let etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
                let bytes = response.bytes().await.map_err(transport)?;
                let assignment = serde_json::from_slice(&bytes).map_err(|e| CallError::Decode(e.to_string()))?;
                Ok(AssignmentFetch::Changed { assignment, etag })
            }
            _ => Err(status_error(response).await),
        }
    }

    /// Posts results already in wire JSON, as `instance` (the spool's); `Ok` only on a 200
    /// with a readable body.
    pub async fn ingest(&self, instance: &str, results: &[&[u8]]) -> Result<IngestResponse, CallError> {
        let mut body = Vec::with_capacity(results.iter().map(|r| r.len() + 1).sum::<usize>() + 128);
        body.extend_from_slice(b"{\"agent\":");
        body.extend_from_slice(&serde_json::to_vec(&self.agent).expect("a string serialises"));
        body.extend_from_slice(b",\"instance\":");
        body.extend_from_slice(&serde_json::to_vec(instance).expect("a string serialises"));
        if let Some(offset) = self.clock_offset_ms() {
            body.extend_from_slice(format!(",\"clock_offset_ms\":{offset}").as_bytes());
        }
        body.extend_from_slice(b",\"results\":[");
        for (i, r) in results.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(r);
        }
        body.extend_from_slice(b"]}");
        let mut request = self
            .http
            .post(self.url("api/v1/ingest"))
            .header(AUTHORIZATION, &self.authorization)
            .header(CONTENT_TYPE, "application/json");
        let body = match self.compression {
            Compression::Zstd => {
                request = request.header(CONTENT_ENCODING, "zstd");
                zstd::bulk::compress(&body, 3).map_err(|e| CallError::Transport(format!("zstd: {e}")))?
            }
            Compression::Gzip => {
                request = request.header(CONTENT_ENCODING, "gzip");
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&body)
                    .and_then(|()| gz.finish())
                    .map_err(|e| CallError::Transport(format!("gzip: {e}")))?
            }
            Compression::None => body,
        };
        let sent_wall = wall_ms();
        let sent = tokio::time::Instant::now();
        let response = request.body(body).send().await.map_err(transport)?;
        // The answer's head is back: the round trip to measure ends here, not after the body.
        let round_trip = sent.elapsed();
        if response.status() != StatusCode::OK {
            return Err(status_error(response).await);
        }
        let bytes = response.bytes().await.map_err(transport)?;
        let answer: IngestResponse = serde_json::from_slice(&bytes).map_err(|e| CallError::Decode(e.to_string()))?;
        if let Some(received_at) = answer.received_at {
            let offset = estimate_offset(sent_wall, round_trip, received_at);
            *self.clock_offset_ms.lock().unwrap_or_else(|e| e.into_inner()) = Some(offset);
        }
        Ok(answer)
    }

    /// This host's clock minus the collector's (positive: we are ahead), from the latest
    /// ingest answer; `None` before the first.
    pub fn clock_offset_ms(&self) -> Option<i64> {
        *self.clock_offset_ms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The offset NTP-style with one server stamp: the collector stamped `received_at` while
/// the request was on its way, taken as the middle of the round trip, so the error is at
/// most half the round trip.
pub fn estimate_offset(sent_wall_ms: i64, round_trip: Duration, received_at_ms: i64) -> i64 {
    let half = i64::try_from(round_trip.as_millis() / 2).unwrap_or(i64::MAX);
    sent_wall_ms.saturating_add(half).saturating_sub(received_at_ms)
}

/// This host's wall clock, Unix ms.
fn wall_ms() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn transport(e: reqwest::Error) -> CallError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    CallError::Transport(text)
}

async fn status_error(response: reqwest::Response) -> CallError {
    let status = response.status();
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return CallError::Auth { status };
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return CallError::Unavailable { retry_after, body };
    }
    CallError::Status { status, body }
}

/// Shared handle, so the shipper and the assignment loop use one connection pool.
pub type SharedCollector = Arc<Collector>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_takes_the_collector_stamp_as_the_middle_of_the_round_trip() {
        // Sent at 10.000 s by our clock, answered 200 ms later, stamped 7.100 s by the
        // collector: we are 3 s ahead.
        assert_eq!(estimate_offset(10_000, Duration::from_millis(200), 7_100), 3_000);
        assert_eq!(estimate_offset(10_000, Duration::from_millis(0), 10_000), 0);
        assert_eq!(estimate_offset(0, Duration::from_millis(40), 7_200_020), -7_200_000, "behind is negative");
    }
}
