//! The wire messages between agent and collector (SPEC §6): assignment, ingest
//! request and response, results and their error kinds. JSON, field names as in the SPEC.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::probe::ProbeSpec;

/// `GET /api/v1/agent/assignment` response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Assignment {
    pub agent: String,
    pub probes: Vec<AssignedProbe>,
}

/// One probe an agent must run; kind keys are flattened in beside `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssignedProbe {
    pub id: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// `kind` and the kind's keys, named as in the config (SPEC §4, §16).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub spec: ProbeSpec,
}

/// `POST /api/v1/ingest` request body.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestRequest {
    pub agent: String,
    /// The agent instance (SPEC §15): a random id the agent made with its spool. `seq` is
    /// per (agent, instance); absent from agents that predate instances, which the
    /// collector treats as one legacy instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub results: Vec<ProbeResult>,
    /// The agent's clock minus the collector's, estimated from the previous response's
    /// `received_at` (round trip halved); positive when the agent is ahead (SPEC §15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
}

/// The longest `instance` id the collector accepts.
pub const INSTANCE_MAX_LEN: usize = 64;

/// Checks an `instance` id: 1 to 64 characters of ASCII letters, digits, `-` and `_`.
pub fn check_instance(instance: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if instance.is_empty() || instance.len() > INSTANCE_MAX_LEN || !instance.chars().all(ok_char) {
        let shown: String = instance.chars().take(INSTANCE_MAX_LEN).collect();
        return Err(format!(
            "instance {shown:?} is not 1 to {INSTANCE_MAX_LEN} characters of letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// One probe run as the agent saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProbeResult {
    /// Per agent, strictly increasing, never reused.
    pub seq: u64,
    pub probe: String,
    /// Probe start, Unix milliseconds (agent wall clock).
    pub at: i64,
    /// Measured with a monotonic clock.
    pub duration_us: u64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<Phases>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResultError>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_not_after: Option<i64>,
}

/// Phase timings in microseconds, each counted from the probe's start (`at`) to the end
/// of that phase, as `curl -w` reports them, so they never decrease in the order
/// dns, connect, tls, first byte, and none exceeds `duration_us`; each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Phases {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_us: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResultError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Why a probe failed. Closed: the collector counts outages by these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Dns,
    Connect,
    Timeout,
    Tls,
    Status,
    Body,
    Answer,
    CertExpiry,
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Dns,
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Tls,
        ErrorKind::Status,
        ErrorKind::Body,
        ErrorKind::Answer,
        ErrorKind::CertExpiry,
        ErrorKind::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Status => "status",
            ErrorKind::Body => "body",
            ErrorKind::Answer => "answer",
            ErrorKind::CertExpiry => "cert_expiry",
            ErrorKind::Internal => "internal",
        }
    }

    pub fn from_str_opt(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /api/v1/ingest` response body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: Vec<Rejected>,
    /// Collector wall-clock time when the request arrived, Unix ms (SPEC §15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rejected {
    pub seq: u64,
    pub reason: String,
}

/// `{"error": "..."}`, the body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// Counts per error kind, as reports show them (`reasons` {kind: count}).
pub type ReasonCounts = BTreeMap<String, u64>;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::probe::{HttpSpec, default_expect_status};

    #[test]
    fn ingest_request_matches_the_spec_example() {
        let spec_example = json!({"agent": "lon-1", "results": [
          {"seq": 101, "probe": "payments-health", "at": 1763812800123i64, "duration_us": 48210, "ok": true,
           "status": 200, "phases": {"dns_us": 812, "connect_us": 1020, "tls_us": 9000, "first_byte_us": 47000}},
          {"seq": 102, "probe": "payments-dns", "at": 1763812801500i64, "duration_us": 5000000, "ok": false,
           "error": {"kind": "timeout", "message": "no answer within 5s"}}
        ]});
        let req: IngestRequest = serde_json::from_value(spec_example.clone()).unwrap();
        assert_eq!(req.results[0].phases.as_ref().unwrap().tls_us, Some(9000));
        assert_eq!(req.results[1].error.as_ref().unwrap().kind, ErrorKind::Timeout);
        assert_eq!(serde_json::to_value(&req).unwrap(), spec_example);
        assert_eq!(req.instance, None, "a request without instance comes from an agent that predates them");
        let with_instance = json!({"agent": "lon-1", "instance": "9f2c41d0", "results": []});
        let req: IngestRequest = serde_json::from_value(with_instance.clone()).unwrap();
        assert_eq!(req.instance.as_deref(), Some("9f2c41d0"));
        assert_eq!(serde_json::to_value(&req).unwrap(), with_instance);
    }

    #[test]
    fn instance_ids_are_short_plain_words() {
        assert!(check_instance("9f2c41d0e1b2").is_ok());
        assert!(check_instance(&"a".repeat(64)).is_ok());
        for bad in ["", "has space", "slash/", &"a".repeat(65), "é"] {
            let e = check_instance(bad).unwrap_err();
            assert!(e.contains("letters, digits"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn ingest_response_round_trips() {
        let resp = IngestResponse {
            accepted: 1,
            duplicates: 1,
            rejected: vec![Rejected { seq: 103, reason: "probe 'x' is not assigned to agent 'lon-1'".into() }],
            received_at: Some(1763812802000),
        };
        let v = serde_json::to_value(&resp).unwrap();
        assert_eq!(
            v,
            json!({"accepted": 1, "duplicates": 1, "rejected": [{"seq": 103, "reason": "probe 'x' is not assigned to agent 'lon-1'"}], "received_at": 1763812802000i64})
        );
        assert_eq!(serde_json::from_value::<IngestResponse>(v).unwrap(), resp);
    }

    #[test]
    fn assignment_flattens_kind_keys_beside_the_id() {
        let a = Assignment {
            agent: "lon-1".into(),
            probes: vec![AssignedProbe {
                id: "payments-health".into(),
                interval_ms: 30000,
                timeout_ms: 10000,
                spec: ProbeSpec::Http(HttpSpec {
                    url: "https://payments.example.com/health".into(),
                    method: "GET".into(),
                    headers: Default::default(),
                    body: None,
                    expect_status: default_expect_status(),
                    body_contains: Some("ok".into()),
                    follow_redirects: true,
                    tls_verify: true,
                    ..HttpSpec::default()
                }),
            }],
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["probes"][0]["kind"], "http");
        assert_eq!(v["probes"][0]["interval_ms"], 30000);
        assert_eq!(v["probes"][0]["url"], "https://payments.example.com/health");
        assert_eq!(serde_json::from_value::<Assignment>(v).unwrap(), a);
        // A key left out takes the config's default.
        let short = json!({"agent": "a", "probes": [{"id": "t", "kind": "tcp", "interval_ms": 1000, "timeout_ms": 500, "target": "127.0.0.1:22"}]});
        let parsed: Assignment = serde_json::from_value(short).unwrap();
        assert_eq!(parsed.probes[0].spec.kind(), "tcp");
    }

    #[test]
    fn every_error_kind_has_its_spec_name() {
        let names: Vec<String> =
            ErrorKind::ALL.iter().map(|k| serde_json::to_value(k).unwrap().as_str().unwrap().to_string()).collect();
        assert_eq!(names, ["dns", "connect", "timeout", "tls", "status", "body", "answer", "cert_expiry", "internal"]);
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_str_opt(k.as_str()), Some(k));
        }
    }
}
