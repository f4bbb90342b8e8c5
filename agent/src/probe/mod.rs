//! Probes: one file per kind, one closed `match` to dispatch them, and the `Outcome`
//! every kind returns. A failed probe is data (`Failure`), never an `Err`.

use std::time::{Duration, SystemTime};

use probity_config::probe::ProbeSpec;
use probity_config::wire::{ErrorKind, Phases};

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

/// Everything a probe measured on the way, up or down.
#[derive(Clone, Debug, Default)]
pub struct Details {
    pub status: Option<u16>,
    pub phases: Phases,
    /// Unix seconds.
    pub cert_not_after: Option<i64>,
}

/// Why a target is down, in words a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

/// Runs one probe of any kind, with `timeout` enforced around the whole of it.
pub async fn run_spec(spec: &ProbeSpec, timeout: Duration) -> Outcome {
    let _ = (spec, timeout);
    Outcome {
        at: SystemTime::now(),
        duration: Duration::ZERO,
        details: Details::default(),
        result: Err(Failure { kind: ErrorKind::Internal, message: "not built yet".into() }),
    }
}
