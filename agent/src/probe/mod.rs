//! Probes: one file per kind, one closed `match` to dispatch them, and the `Outcome`
//! every kind returns. A failed probe is data (`Failure`), never an `Err`.

mod arrival;
pub mod dns;
pub mod grpc;
pub mod http;
pub mod icmp;
pub mod net;
pub mod tcp;
pub mod tls;

use std::time::{Duration, SystemTime};

use probity_config::probe::ProbeSpec;
use probity_config::units::format_duration;
use probity_config::wire::{ErrorKind, Phases, ProbeResult, ResultError};
use tokio::time::Instant;

pub use arrival::arm_receive_stamps;
pub use net::{days_left, expiry_words, trust_extra_root};

/// What one probe run saw.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Probe start, agent wall clock.
    pub at: SystemTime,
    /// Measured with a monotonic clock.
    pub duration: Duration,
    pub details: Details,
    /// `Ok` when the target is up; the details above are kept either way.
    pub result: Result<(), Failure>,
}

/// Everything a probe measured on the way, up or down. Besides what goes on the wire
/// (status, phases, expiry), what came back, for `probity-agent probe` to print.
#[derive(Clone, Debug, Default)]
pub struct Details {
    pub status: Option<u16>,
    pub phases: Phases,
    /// Unix seconds.
    pub cert_not_after: Option<i64>,
    /// The peer's certificate chain as sent, end entity first (DER).
    pub chain: Vec<Vec<u8>>,
    /// DNS answers as `expect` writes them; a TCP probe's reply; ICMP replies.
    pub answers: Vec<String>,
    /// Each DNS query sent: UDP, then TCP when the UDP answer was truncated.
    pub attempts: Vec<Attempt>,
    /// The final HTTP response's version and headers.
    pub http_version: Option<&'static str>,
    pub headers: Vec<(String, String)>,
}

/// One DNS query on one transport, timed from the probe's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub transport: &'static str,
    /// When the TCP connection was up (TCP only).
    pub connect_us: Option<u64>,
    /// When the answer arrived.
    pub answer_us: u64,
    pub bytes: usize,
    pub truncated: bool,
}

/// Why a target is down, in words a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

/// Runs one probe of any kind, with `timeout` enforced around the whole of it.
pub async fn run_spec(spec: &ProbeSpec, timeout: Duration) -> Outcome {
    crate::install_crypto_provider();
    let deadline = Instant::now() + timeout;
    let at = SystemTime::now();
    let start = Instant::now();
    let run = async {
        match spec {
            ProbeSpec::Http(s) => http::run(s, deadline).await,
            ProbeSpec::Tcp(s) => tcp::run(s, deadline).await,
            ProbeSpec::Dns(s) => dns::run(s, deadline).await,
            ProbeSpec::Tls(s) => tls::run(s, deadline).await,
            ProbeSpec::Icmp(s) => icmp::run(s, deadline).await,
            ProbeSpec::Grpc(s) => grpc::run(s, deadline).await,
        }
    };
    // Every kind honours the deadline itself, step by step, so it can say what it was
    // waiting for; this outer limit is the guarantee, with a hair of grace.
    match tokio::time::timeout_at(deadline + Duration::from_millis(20), run).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome {
            at,
            duration: start.elapsed(),
            details: Details::default(),
            result: Err(Failure {
                kind: ErrorKind::Timeout,
                message: format!("timeout: no result within {}", format_duration(timeout)),
            }),
        },
    }
}

impl Outcome {
    pub fn is_up(&self) -> bool {
        self.result.is_ok()
    }

    /// The wire form, once the spool has given it its `seq`.
    pub fn to_result(&self, probe: &str, seq: u64) -> ProbeResult {
        /// 100 years of 365.25 days: the collector's bound on `cert_not_after`.
        const MAX_CERT_DISTANCE_S: u64 = 3_155_760_000;
        let at = match self.at.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        };
        let phases = &self.details.phases;
        let any_phase = phases.dns_us.is_some()
            || phases.connect_us.is_some()
            || phases.tls_us.is_some()
            || phases.first_byte_us.is_some();
        ProbeResult {
            seq,
            probe: probe.to_string(),
            at,
            duration_us: net::micros(self.duration),
            ok: self.result.is_ok(),
            // The collector refuses a result whose status is outside 100-599 or whose
            // certificate expiry is more than 100 years away (SPEC §15); such a field is left
            // out here (the failure message keeps what was seen), so the result still counts.
            status: self.details.status.filter(|s| (100..=599).contains(s)),
            phases: any_phase.then(|| phases.clone()),
            error: self.result.as_ref().err().map(|f| ResultError { kind: f.kind, message: f.message.clone() }),
            cert_not_after: self.details.cert_not_after.filter(|t| {
                let now_s = at.div_euclid(1000);
                *t >= 0 && t.abs_diff(now_s) <= MAX_CERT_DISTANCE_S
            }),
        }
    }
}
