//! Ingest rules that need no storage: decoding a (possibly compressed) body under a size
//! cap, and judging each result (SPEC §6) into its probe's interval or a reject reason.

use std::fmt;
use std::io::Read;

use probity_config::CollectorConfig;
use probity_config::wire::ProbeResult;

/// How far in the future an `at` may be (agent clocks drift).
pub const MAX_FUTURE_MS: i64 = 5 * 60_000;
/// A duration longer than this is not a measurement.
pub const MAX_DURATION_US: u64 = 86_400_000_000;

/// A body's `Content-Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    /// `None`: an encoding this collector does not speak.
    pub fn from_header(value: Option<&str>) -> Option<Encoding> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Some(Encoding::Identity),
            Some("gzip") | Some("x-gzip") => Some(Encoding::Gzip),
            Some("zstd") => Some(Encoding::Zstd),
            Some(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the decompressed body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("cannot decompress the {encoding} body: {source}")]
    Corrupt { encoding: &'static str, source: std::io::Error },
}

/// Decompresses `body`, reading at most `max_decoded + 1` bytes so a zip bomb is refused
/// before it is buffered.
pub fn decode_body(encoding: Encoding, body: &[u8], max_decoded: usize) -> Result<Vec<u8>, DecodeError> {
    fn read_capped(r: impl Read, name: &'static str, max: usize) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        r.take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|source| DecodeError::Corrupt { encoding: name, source })?;
        if out.len() > max {
            return Err(DecodeError::TooLarge { limit: max });
        }
        Ok(out)
    }
    match encoding {
        Encoding::Identity if body.len() > max_decoded => Err(DecodeError::TooLarge { limit: max_decoded }),
        Encoding::Identity => Ok(body.to_vec()),
        Encoding::Gzip => read_capped(flate2::read::GzDecoder::new(body), "gzip", max_decoded),
        Encoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(body)
                .map_err(|source| DecodeError::Corrupt { encoding: "zstd", source })?;
            read_capped(decoder, "zstd", max_decoded)
        }
    }
}

/// Why a result was refused; `label` names it in `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    UnknownProbe { probe: String },
    NotAssigned { probe: String, agent: String },
    InFuture { at: i64, now: i64 },
    TooOld { at: i64, retention: String },
    Invalid(String),
}

impl RejectReason {
    pub const LABELS: [&'static str; 5] = ["unknown_probe", "not_assigned", "in_future", "too_old", "invalid"];

    pub fn label(&self) -> &'static str {
        match self {
            RejectReason::UnknownProbe { .. } => "unknown_probe",
            RejectReason::NotAssigned { .. } => "not_assigned",
            RejectReason::InFuture { .. } => "in_future",
            RejectReason::TooOld { .. } => "too_old",
            RejectReason::Invalid(_) => "invalid",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::UnknownProbe { probe } => write!(f, "unknown probe '{probe}'"),
            RejectReason::NotAssigned { probe, agent } => {
                write!(f, "probe '{probe}' is not assigned to agent '{agent}'")
            }
            RejectReason::InFuture { at, now } => {
                write!(
                    f,
                    "at {at} is more than 5 minutes in the future (collector time {now}); check the agent's clock"
                )
            }
            RejectReason::TooOld { at, retention } => write!(f, "at {at} is older than raw_retention ({retention})"),
            RejectReason::Invalid(what) => f.write_str(what),
        }
    }
}

/// Judges one result of `agent` at collector time `now_ms`: the probe's interval (ms), or why not.
pub fn check_result(config: &CollectorConfig, agent: &str, r: &ProbeResult, now_ms: i64) -> Result<i64, RejectReason> {
    let Some((_, probe)) = config.catalogue.probe(&r.probe) else {
        return Err(RejectReason::UnknownProbe { probe: r.probe.clone() });
    };
    if !probe.agents.iter().any(|a| a.as_str() == agent) {
        return Err(RejectReason::NotAssigned { probe: r.probe.clone(), agent: agent.to_string() });
    }
    if r.at > now_ms.saturating_add(MAX_FUTURE_MS) {
        return Err(RejectReason::InFuture { at: r.at, now: now_ms });
    }
    let retention_ms = i64::try_from(config.server.raw_retention.as_millis()).unwrap_or(i64::MAX);
    if r.at < now_ms.saturating_sub(retention_ms) {
        let retention = probity_config::units::format_duration(config.server.raw_retention);
        return Err(RejectReason::TooOld { at: r.at, retention });
    }
    match (&r.error, r.ok) {
        (Some(_), true) => return Err(RejectReason::Invalid("ok is true but an error is given".into())),
        (None, false) => return Err(RejectReason::Invalid("ok is false but error.kind is missing".into())),
        _ => {}
    }
    if r.duration_us > MAX_DURATION_US {
        return Err(RejectReason::Invalid(format!("duration_us {} is longer than a day", r.duration_us)));
    }
    Ok(i64::try_from(probe.interval.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn encodings_are_read_from_the_header() {
        assert_eq!(Encoding::from_header(None), Some(Encoding::Identity));
        assert_eq!(Encoding::from_header(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(Some("zstd")), Some(Encoding::Zstd));
        assert_eq!(Encoding::from_header(Some("br")), None);
    }

    #[test]
    fn gzip_and_zstd_bodies_decode_and_bombs_are_refused() {
        let text = vec![b'a'; 100_000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(decode_body(Encoding::Gzip, &gz, 100_000).unwrap(), text);
        assert_eq!(decode_body(Encoding::Zstd, &zs, 100_000).unwrap(), text);
        assert!(matches!(decode_body(Encoding::Gzip, &gz, 99_999), Err(DecodeError::TooLarge { .. })));
        assert!(matches!(decode_body(Encoding::Zstd, &zs, 99_999), Err(DecodeError::TooLarge { .. })));
        assert!(matches!(decode_body(Encoding::Identity, &text, 10), Err(DecodeError::TooLarge { .. })));
        assert!(matches!(decode_body(Encoding::Gzip, b"not gzip", 10), Err(DecodeError::Corrupt { .. })));
    }
}
