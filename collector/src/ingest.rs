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
/// The highest `seq` taken (SPEC §15): 2^53, the largest integer every JSON reader keeps exact.
pub const MAX_SEQ: u64 = 1 << 53;
/// How far past the instance's highest seq a result may jump (SPEC §15): further would
/// count that many results as lost, for ever.
pub const MAX_SEQ_JUMP: u64 = 1_000_000_000;
/// `cert_not_after` further than this from now (either way) is not a certificate (SPEC §15):
/// 100 years of 365.25 days, in seconds.
pub const MAX_CERT_DISTANCE_S: i64 = 3_155_760_000;
/// Ids echoed back in reasons and errors are cut to this many characters (SPEC §15).
pub const MAX_ECHOED_ID: usize = 64;

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

/// An id as it may be echoed back: at most [`MAX_ECHOED_ID`] characters, the last one `…`
/// when it was cut, so a 100k-character id costs the answer 64 characters.
pub fn echo_id(id: &str) -> String {
    if id.chars().nth(MAX_ECHOED_ID).is_none() {
        return id.to_string();
    }
    let cut = id.char_indices().nth(MAX_ECHOED_ID - 1).map_or(id.len(), |(i, _)| i);
    format!("{}…", &id[..cut])
}

/// Judges a result's `seq` against the highest seq its instance had before this request:
/// above 2^53, or more than 10^9 past that highest, is refused, so one bogus seq cannot
/// turn into billions of lost results.
pub fn check_seq(seq: u64, highest: u64) -> Result<(), RejectReason> {
    if seq > MAX_SEQ {
        return Err(RejectReason::Invalid(format!("seq {seq} is above 2^53 ({MAX_SEQ})")));
    }
    if seq > highest.saturating_add(MAX_SEQ_JUMP) {
        return Err(RejectReason::Invalid(format!(
            "seq {seq} is more than {MAX_SEQ_JUMP} past this agent instance's highest seq {highest}"
        )));
    }
    Ok(())
}

/// Judges one result of `agent` at collector time `now_ms`: the probe's interval (ms), or why not.
pub fn check_result(config: &CollectorConfig, agent: &str, r: &ProbeResult, now_ms: i64) -> Result<i64, RejectReason> {
    let Some((_, probe)) = config.catalogue.probe(&r.probe) else {
        return Err(RejectReason::UnknownProbe { probe: echo_id(&r.probe) });
    };
    if !probe.agents.iter().any(|a| a.as_str() == agent) {
        return Err(RejectReason::NotAssigned { probe: echo_id(&r.probe), agent: echo_id(agent) });
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
    check_fields(r, now_ms)?;
    Ok(i64::try_from(probe.interval.as_millis()).unwrap_or(i64::MAX))
}

/// The field rules of SPEC §15 that need nothing but the result and the time: `status`
/// within 100–599, phases in order and within `duration_us`, `cert_not_after` positive
/// and within 100 years of now.
pub fn check_fields(r: &ProbeResult, now_ms: i64) -> Result<(), RejectReason> {
    if let Some(status) = r.status
        && !(100..=599).contains(&status)
    {
        return Err(RejectReason::Invalid(format!("status {status} is not an HTTP status (100-599)")));
    }
    if let Some(phases) = &r.phases {
        // Phases count from the probe's start, so each ends no earlier than the one before.
        let named = [
            ("dns_us", phases.dns_us),
            ("connect_us", phases.connect_us),
            ("tls_us", phases.tls_us),
            ("first_byte_us", phases.first_byte_us),
        ];
        let mut previous: Option<(&str, u64)> = None;
        for (name, value) in named {
            let Some(value) = value else { continue };
            if value > r.duration_us {
                return Err(RejectReason::Invalid(format!(
                    "phases.{name} {value} is longer than duration_us {}",
                    r.duration_us
                )));
            }
            if let Some((before, before_value)) = previous
                && value < before_value
            {
                return Err(RejectReason::Invalid(format!(
                    "phases out of order: {name} {value} ends before {before} {before_value} (phases count from the probe's start)"
                )));
            }
            previous = Some((name, value));
        }
    }
    if let Some(not_after) = r.cert_not_after {
        let now_s = now_ms.div_euclid(1000);
        if not_after < 0 {
            return Err(RejectReason::Invalid(format!("cert_not_after {not_after} is before 1970")));
        }
        if not_after.abs_diff(now_s) > MAX_CERT_DISTANCE_S as u64 {
            return Err(RejectReason::Invalid(format!(
                "cert_not_after {not_after} is more than 100 years from now ({now_s})"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use probity_config::wire::Phases;

    use super::*;

    const NOW_MS: i64 = 1_767_225_600_000;

    fn ok_result() -> ProbeResult {
        ProbeResult {
            seq: 1,
            probe: "web".into(),
            at: NOW_MS - 1000,
            duration_us: 50_000,
            ok: true,
            status: Some(200),
            phases: Some(Phases {
                dns_us: Some(100),
                connect_us: Some(200),
                tls_us: Some(300),
                first_byte_us: Some(40_000),
            }),
            error: None,
            cert_not_after: Some(NOW_MS / 1000 + 90 * 86_400),
        }
    }

    fn reason(r: &ProbeResult) -> Option<String> {
        check_fields(r, NOW_MS).err().map(|e| e.to_string())
    }

    #[test]
    fn a_plausible_result_passes_every_field_rule() {
        assert_eq!(reason(&ok_result()), None);
        let bare = ProbeResult { status: None, phases: None, cert_not_after: None, ..ok_result() };
        assert_eq!(reason(&bare), None);
    }

    #[test]
    fn seq_above_2_pow_53_is_rejected() {
        assert_eq!(check_seq(MAX_SEQ, MAX_SEQ - 1), Ok(()));
        let e = check_seq(u64::MAX, u64::MAX - 1).unwrap_err().to_string();
        assert_eq!(e, "seq 18446744073709551615 is above 2^53 (9007199254740992)");
        assert!(check_seq(MAX_SEQ + 1, MAX_SEQ).is_err());
    }

    #[test]
    fn seq_more_than_a_billion_past_the_highest_is_rejected() {
        assert_eq!(check_seq(1_000_000_000, 0), Ok(()), "a fresh instance may start anywhere up to 10^9");
        assert_eq!(check_seq(1_000_000_500, 500), Ok(()));
        let e = check_seq(1_000_000_501, 500).unwrap_err().to_string();
        assert_eq!(e, "seq 1000000501 is more than 1000000000 past this agent instance's highest seq 500");
        assert_eq!(check_seq(3, 500), Ok(()), "late seqs below the highest are the duplicate check's business");
    }

    #[test]
    fn status_outside_100_to_599_is_rejected() {
        for status in [100, 200, 599] {
            assert_eq!(reason(&ProbeResult { status: Some(status), ..ok_result() }), None);
        }
        for status in [0, 99, 600, 65535] {
            assert_eq!(
                reason(&ProbeResult { status: Some(status), ..ok_result() }),
                Some(format!("status {status} is not an HTTP status (100-599)"))
            );
        }
    }

    #[test]
    fn phases_out_of_order_are_rejected() {
        let mut r = ok_result();
        r.phases.as_mut().unwrap().connect_us = Some(50);
        assert_eq!(
            reason(&r).unwrap(),
            "phases out of order: connect_us 50 ends before dns_us 100 (phases count from the probe's start)"
        );
        // A phase left out is skipped, not taken as zero.
        let mut r = ok_result();
        r.phases = Some(Phases { dns_us: None, connect_us: Some(500), tls_us: None, first_byte_us: Some(400) });
        assert!(reason(&r).unwrap().starts_with("phases out of order: first_byte_us 400 ends before connect_us 500"));
        let mut r = ok_result();
        r.phases = Some(Phases { dns_us: Some(7), connect_us: Some(7), tls_us: None, first_byte_us: Some(7) });
        assert_eq!(reason(&r), None, "equal ends are in order");
    }

    #[test]
    fn a_phase_longer_than_duration_is_rejected() {
        let mut r = ok_result();
        r.phases.as_mut().unwrap().first_byte_us = Some(50_001);
        assert_eq!(reason(&r).unwrap(), "phases.first_byte_us 50001 is longer than duration_us 50000");
        r.phases.as_mut().unwrap().first_byte_us = Some(50_000);
        assert_eq!(reason(&r), None);
    }

    #[test]
    fn cert_not_after_more_than_100_years_away_or_negative_is_rejected() {
        let now_s = NOW_MS / 1000;
        for ok in [now_s + MAX_CERT_DISTANCE_S, now_s - 10 * 86_400, 0.max(now_s - MAX_CERT_DISTANCE_S)] {
            assert_eq!(reason(&ProbeResult { cert_not_after: Some(ok), ..ok_result() }), None, "{ok}");
        }
        let far = now_s + MAX_CERT_DISTANCE_S + 1;
        assert_eq!(
            reason(&ProbeResult { cert_not_after: Some(far), ..ok_result() }).unwrap(),
            format!("cert_not_after {far} is more than 100 years from now ({now_s})")
        );
        assert_eq!(
            reason(&ProbeResult { cert_not_after: Some(-1), ..ok_result() }).unwrap(),
            "cert_not_after -1 is before 1970"
        );
        assert!(reason(&ProbeResult { cert_not_after: Some(i64::MAX), ..ok_result() }).is_some());
    }

    #[test]
    fn echoed_ids_are_cut_to_64_characters() {
        assert_eq!(echo_id("web"), "web");
        let exact = "x".repeat(64);
        assert_eq!(echo_id(&exact), exact);
        let long = "é".repeat(100_000);
        let echoed = echo_id(&long);
        assert_eq!(echoed.chars().count(), 64, "63 characters and the ellipsis");
        assert!(echoed.ends_with('…'));
    }

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
