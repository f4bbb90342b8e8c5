//! Instants as probity writes and reads them, on jiff: RFC 3339 in UTC, the instant a local
//! day starts in a zone, and parsing an instant given by a user. The one place an instant
//! becomes text, so every report, message and file spells time the same way.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// An instant (Unix ms) as RFC 3339 in UTC: `2026-11-10T22:00:00Z`, with a fraction only
/// when the instant has one (`2026-11-10T22:00:00.25Z`). An instant outside jiff's range
/// (±9999 years) is written as its number of milliseconds rather than lost.
pub fn rfc3339(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_string(),
        Err(_) => ms.to_string(),
    }
}

/// The instant (Unix ms) a local date starts in `tz`: after the gap if midnight does not
/// exist that day; `i64::MAX` for a date jiff cannot place.
pub fn local_midnight_ms(tz: &TimeZone, date: Date) -> i64 {
    match date.to_zoned(tz.clone()).and_then(|z| z.start_of_day()) {
        Ok(z) => z.timestamp().as_millisecond(),
        Err(_) => i64::MAX,
    }
}

/// Parses an RFC 3339 instant with an offset (`2026-11-10T22:00:00Z`), the message saying
/// what to write instead.
pub fn parse_instant(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|_| {
        format!("\"{text}\" is not an RFC 3339 instant with an offset; write e.g. \"2026-11-10T22:00:00Z\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_a_fraction_only_when_needed() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_763_812_800_000), "2025-11-22T12:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_763_812_800_250), "2025-11-22T12:00:00.25Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn rfc3339_round_trips_through_parse_instant() {
        for ms in [0, 1, 999, 1_763_812_800_250, -86_400_001] {
            assert_eq!(parse_instant(&rfc3339(ms)).unwrap().as_millisecond(), ms);
        }
        assert!(parse_instant("2026-11-10 22:00").unwrap_err().contains("write e.g."));
    }

    #[test]
    fn local_midnight_follows_the_zone_and_skips_a_missing_midnight() {
        let tz = |name: &str| crate::tzdb().get(name).unwrap();
        let date = |s: &str| s.parse::<Date>().unwrap();
        assert_eq!(rfc3339(local_midnight_ms(&tz("Europe/London"), date("2026-07-01"))), "2026-06-30T23:00:00Z");
        assert_eq!(rfc3339(local_midnight_ms(&tz("Europe/London"), date("2026-12-01"))), "2026-12-01T00:00:00Z");
        // Santiago springs forward at midnight: 2026-09-06 starts at 01:00 local (-03).
        assert_eq!(rfc3339(local_midnight_ms(&tz("America/Santiago"), date("2026-09-06"))), "2026-09-06T04:00:00Z");
    }
}
