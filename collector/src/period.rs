//! Report periods (`2026-11`, `2026-Q4`, `2026-W47`, `2026`, or `from`/`to`), read in a
//! calendar's zone and clipped to now for a period still running. Pure: `now` is a
//! parameter, so the same query always gives the same period in tests.
//!
//! Month, quarter, ISO week and year run from local midnight to local midnight in the
//! calendar's zone, so their length follows its clock changes (a London October is 745
//! hours long). `from`/`to` are instants and taken as given.

use jiff::Timestamp;
use jiff::civil::{Date, ISOWeekDate, Weekday};
use jiff::tz::TimeZone;
use probity_config::PeriodKind;

use probity_config::time::{local_midnight_ms, rfc3339};

/// What every period error ends with, so a 400 always says what is accepted.
const ACCEPTED: &str = "use period=2026-11 (month), period=2026-Q4 (quarter), period=2026-W47 (ISO week), \
     period=2026 (year), or from=…&to=… as RFC 3339 instants such as 2026-11-01T00:00:00Z";

/// A resolved report period `[from_ms, to_ms)` (Unix ms). `to_ms` is already clipped to
/// now; `complete` says whether the period had ended by then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub complete: bool,
    /// The end before clipping to now: what `[api] max_period` measures.
    pub end_ms: i64,
}

/// A bad period query (an HTTP 400). Each message names the offending input and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("period \"{0}\" is not a period; {ACCEPTED}")]
    NotAPeriod(String),
    #[error("period \"{text}\": {problem}; {ACCEPTED}")]
    OutOfRange { text: String, problem: String },
    #[error("{name}=\"{text}\" is not an RFC 3339 instant with an offset; write e.g. {name}=2026-11-01T00:00:00Z")]
    NotAnInstant { name: &'static str, text: String },
    #[error("from={from} is not before to={to}; the period must not be empty")]
    EmptyRange { from: String, to: String },
    #[error("{given} was given without {missing}; give both from=… and to=…, or period=…")]
    HalfRange { given: &'static str, missing: &'static str },
    #[error("give either period=… or from=…&to=…, not both")]
    PeriodAndRange,
    #[error("no period given; {ACCEPTED}")]
    Missing,
    #[error("the period {label} is {length} long, longer than [api] max_period ({max}); ask for a shorter period")]
    TooLong { label: String, length: String, max: String },
}

/// A period query as it arrives: `period=…`, or `from=…&to=…`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeriodQuery<'a> {
    pub period: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    /// A longer period is refused before any work (`[api] max_period`); `None`: no limit.
    pub max_period: Option<std::time::Duration>,
}

/// Resolves a query in `tz` at `now_ms`. With neither `period` nor `from`/`to`, the period
/// of kind `default` containing now (an agreement's own period), or an error without one.
pub fn resolve(
    query: PeriodQuery<'_>,
    default: Option<PeriodKind>,
    tz: &TimeZone,
    now_ms: i64,
) -> Result<Period, PeriodError> {
    let period = match (query.period, query.from, query.to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(PeriodError::PeriodAndRange),
        (Some(text), None, None) => parse_period(text, tz, now_ms),
        (None, Some(from), Some(to)) => parse_range(from, to, now_ms),
        (None, Some(_), None) => Err(PeriodError::HalfRange { given: "from", missing: "to" }),
        (None, None, Some(_)) => Err(PeriodError::HalfRange { given: "to", missing: "from" }),
        (None, None, None) => match default {
            Some(kind) => Ok(current_period(kind, tz, now_ms)),
            None => Err(PeriodError::Missing),
        },
    }?;
    if let Some(max) = query.max_period {
        let length = period.end_ms.saturating_sub(period.from_ms);
        if u128::try_from(length).unwrap_or(0) > max.as_millis() {
            return Err(PeriodError::TooLong {
                label: period.label,
                length: format_length(length),
                max: probity_config::units::format_duration(max),
            });
        }
    }
    Ok(period)
}

/// A period's length the way config durations are written, in whole seconds when it has
/// no milliseconds (`730d5h49m12s`).
fn format_length(ms: i64) -> String {
    probity_config::units::format_duration(std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Parses `2026-11`, `2026-Q4`, `2026-W47` or `2026` into local-midnight bounds in `tz`.
pub fn parse_period(text: &str, tz: &TimeZone, now_ms: i64) -> Result<Period, PeriodError> {
    let not_a_period = || PeriodError::NotAPeriod(text.to_string());
    let out_of_range = |problem: String| PeriodError::OutOfRange { text: text.to_string(), problem };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());

    let (year_text, rest) = text.split_at_checked(4).ok_or_else(not_a_period)?;
    if !digits(year_text) {
        return Err(not_a_period());
    }
    let year: i16 = year_text.parse().map_err(|_| not_a_period())?;
    if !(1970..=9998).contains(&year) {
        return Err(out_of_range(format!("year {year} is outside 1970-9998")));
    }
    let (first, next_first) = match rest.strip_prefix('-') {
        None if rest.is_empty() => (date(year, 1, 1), date(year + 1, 1, 1)),
        None => return Err(not_a_period()),
        Some(r) if r.len() == 2 && (r.starts_with('Q') || r.starts_with('q')) && digits(&r[1..]) => {
            let quarter: i8 = r[1..].parse().map_err(|_| not_a_period())?;
            if !(1..=4).contains(&quarter) {
                return Err(out_of_range(format!("quarter Q{quarter} does not exist; quarters are Q1 to Q4")));
            }
            let month = (quarter - 1) * 3 + 1;
            (date(year, month, 1), if quarter == 4 { date(year + 1, 1, 1) } else { date(year, month + 3, 1) })
        }
        Some(r) if r.len() == 3 && (r.starts_with('W') || r.starts_with('w')) && digits(&r[1..]) => {
            let week: i8 = r[1..].parse().map_err(|_| not_a_period())?;
            let monday = ISOWeekDate::new(year, week, Weekday::Monday).map_err(|_| {
                out_of_range(format!("ISO year {year} has no week {week:02}; weeks run from W01 to W52 or W53"))
            })?;
            let monday = monday.date();
            (monday, monday.checked_add(jiff::Span::new().days(7)).map_err(|_| not_a_period())?)
        }
        Some(r) if r.len() == 2 && digits(r) => {
            let month: i8 = r.parse().map_err(|_| not_a_period())?;
            if !(1..=12).contains(&month) {
                return Err(out_of_range(format!("month {r} does not exist; months are 01 to 12")));
            }
            (date(year, month, 1), if month == 12 { date(year + 1, 1, 1) } else { date(year, month + 1, 1) })
        }
        Some(_) => return Err(not_a_period()),
    };
    let label = canonical_label(text);
    Ok(clip(label, local_midnight_ms(tz, first), local_midnight_ms(tz, next_first), now_ms))
}

/// Parses `from`/`to` RFC 3339 instants (with an offset); `to` is exclusive.
pub fn parse_range(from: &str, to: &str, now_ms: i64) -> Result<Period, PeriodError> {
    let instant = |name: &'static str, text: &str| {
        text.parse::<Timestamp>()
            .map(|ts| ts.as_millisecond())
            .map_err(|_| PeriodError::NotAnInstant { name, text: text.to_string() })
    };
    let (from_ms, to_ms) = (instant("from", from)?, instant("to", to)?);
    if from_ms >= to_ms {
        return Err(PeriodError::EmptyRange { from: from.to_string(), to: to.to_string() });
    }
    Ok(clip(format!("{}/{}", rfc3339(from_ms), rfc3339(to_ms)), from_ms, to_ms, now_ms))
}

/// The period of `kind` in `tz` that contains `now_ms`, labelled as `parse_period` reads it.
pub fn current_period(kind: PeriodKind, tz: &TimeZone, now_ms: i64) -> Period {
    let today = Timestamp::from_millisecond(now_ms).map(|ts| tz.to_datetime(ts).date()).unwrap_or(Date::ZERO);
    let (label, first, next_first) = match kind {
        PeriodKind::Week => {
            let week = today.iso_week_date();
            let monday = today.checked_sub(jiff::Span::new().days(i64::from(week.weekday().to_monday_zero_offset())));
            let monday = monday.unwrap_or(today);
            let next = monday.checked_add(jiff::Span::new().days(7)).unwrap_or(today);
            (format!("{:04}-W{:02}", week.year(), week.week()), monday, next)
        }
        PeriodKind::Month => {
            let first = today.first_of_month();
            (
                format!("{:04}-{:02}", today.year(), today.month()),
                first,
                first.last_of_month().tomorrow().unwrap_or(first),
            )
        }
        PeriodKind::Quarter => {
            let quarter = (today.month() - 1) / 3 + 1;
            let first = date(today.year(), (quarter - 1) * 3 + 1, 1);
            let next = if quarter == 4 { date(today.year() + 1, 1, 1) } else { date(today.year(), quarter * 3 + 1, 1) };
            (format!("{:04}-Q{quarter}", today.year()), first, next)
        }
        PeriodKind::Year => (format!("{:04}", today.year()), date(today.year(), 1, 1), date(today.year() + 1, 1, 1)),
    };
    clip(label, local_midnight_ms(tz, first), local_midnight_ms(tz, next_first), now_ms)
}

/// `to` clipped to now (never before `from`, for a period that has not started);
/// complete once its end has passed.
fn clip(label: String, from_ms: i64, to_ms: i64, now_ms: i64) -> Period {
    Period { label, from_ms, to_ms: to_ms.min(now_ms).max(from_ms), complete: to_ms <= now_ms, end_ms: to_ms }
}

/// Callers have checked the ranges, so this cannot fail; the fallback keeps it panic-free.
fn date(year: i16, month: i8, day: i8) -> Date {
    Date::new(year, month, day).unwrap_or(Date::ZERO)
}

/// `2026-q4` and `2026-w47` are accepted and labelled in upper case.
fn canonical_label(text: &str) -> String {
    text.to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn zone(name: &str) -> TimeZone {
        probity_config::tzdb().get(name).unwrap()
    }

    /// Long after every period in these tests.
    fn later() -> i64 {
        ms("2030-01-01T00:00:00Z")
    }

    /// Checks a period's label, bounds and length in hours.
    fn check(text: &str, zone_name: &str, from: &str, to: &str, hours: i64) {
        let p = parse_period(text, &zone(zone_name), later()).unwrap();
        assert_eq!((p.from_ms, p.to_ms), (ms(from), ms(to)), "{text} in {zone_name}");
        assert_eq!(p.to_ms - p.from_ms, hours * HOUR, "{text} in {zone_name}");
        assert!(p.complete);
    }

    #[test]
    fn months_run_from_local_midnight_and_follow_both_london_clock_changes() {
        check("2026-01", "Europe/London", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", 31 * 24);
        check("2026-03", "Europe/London", "2026-03-01T00:00:00Z", "2026-03-31T23:00:00Z", 31 * 24 - 1);
        check("2026-07", "Europe/London", "2026-06-30T23:00:00Z", "2026-07-31T23:00:00Z", 31 * 24);
        check("2026-10", "Europe/London", "2026-09-30T23:00:00Z", "2026-11-01T00:00:00Z", 31 * 24 + 1);
    }

    #[test]
    fn months_follow_both_new_york_clock_changes() {
        check("2026-03", "America/New_York", "2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z", 31 * 24 - 1);
        check("2026-11", "America/New_York", "2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z", 30 * 24 + 1);
        check("2026-12", "America/New_York", "2026-12-01T05:00:00Z", "2027-01-01T05:00:00Z", 31 * 24);
    }

    #[test]
    fn quarters_and_years_are_read_in_the_zone() {
        check("2026-Q4", "Europe/London", "2026-09-30T23:00:00Z", "2027-01-01T00:00:00Z", 92 * 24 + 1);
        check("2026-q1", "America/New_York", "2026-01-01T05:00:00Z", "2026-04-01T04:00:00Z", 90 * 24 - 1);
        check("2026", "Europe/London", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 365 * 24);
        check("2026", "America/New_York", "2026-01-01T05:00:00Z", "2027-01-01T05:00:00Z", 365 * 24);
        check("2026-06", "UTC", "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z", 30 * 24);
    }

    #[test]
    fn iso_weeks_start_on_monday_and_may_belong_to_the_neighbouring_year() {
        // 2026-W01 starts on Monday 2025-12-29; 2026 has 53 ISO weeks.
        check("2026-W01", "UTC", "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z", 7 * 24);
        check("2026-W53", "UTC", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z", 7 * 24);
        // The week of the London clocks-forward Sunday (2026-03-29) is an hour short,
        // the New York clocks-back week (2026-11-01 is a Sunday) an hour long.
        check("2026-W13", "Europe/London", "2026-03-23T00:00:00Z", "2026-03-29T23:00:00Z", 7 * 24 - 1);
        check("2026-W44", "America/New_York", "2026-10-26T04:00:00Z", "2026-11-02T05:00:00Z", 7 * 24 + 1);
        check("2026-w47", "Europe/London", "2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z", 7 * 24);
    }

    #[test]
    fn labels_are_canonical() {
        let tz = zone("UTC");
        assert_eq!(parse_period("2026-q4", &tz, later()).unwrap().label, "2026-Q4");
        assert_eq!(parse_period("2026-w07", &tz, later()).unwrap().label, "2026-W07");
        assert_eq!(parse_period("2026-11", &tz, later()).unwrap().label, "2026-11");
    }

    #[test]
    fn a_running_period_is_clipped_to_now_and_incomplete() {
        let now = ms("2026-11-22T18:30:00Z");
        let p = parse_period("2026-11", &zone("Europe/London"), now).unwrap();
        assert_eq!((p.from_ms, p.to_ms, p.complete), (ms("2026-11-01T00:00:00Z"), now, false));
        // A period that has not started is empty, not inverted.
        let p = parse_period("2027", &zone("Europe/London"), now).unwrap();
        assert_eq!((p.to_ms - p.from_ms, p.complete), (0, false));
        // Ending exactly now is complete.
        let p = parse_period("2026-10", &zone("UTC"), ms("2026-11-01T00:00:00Z")).unwrap();
        assert!(p.complete);
    }

    #[test]
    fn from_and_to_are_instants_taken_as_given() {
        let now = ms("2026-11-22T18:30:00Z");
        let p = parse_range("2026-11-10T22:00:00+01:00", "2026-11-11T02:00:00Z", now).unwrap();
        assert_eq!(p.label, "2026-11-10T21:00:00Z/2026-11-11T02:00:00Z");
        assert_eq!((p.from_ms, p.to_ms, p.complete), (ms("2026-11-10T21:00:00Z"), ms("2026-11-11T02:00:00Z"), true));
        let p = parse_range("2026-11-22T00:00:00Z", "2026-11-23T00:00:00Z", now).unwrap();
        assert_eq!((p.to_ms, p.complete), (now, false));
    }

    #[test]
    fn the_current_period_contains_now() {
        let london = zone("Europe/London");
        // 23:30 on New Year's Eve in New York is already 2027 in London.
        let now = ms("2026-12-31T23:30:00-05:00");
        let year = current_period(PeriodKind::Year, &london, now);
        assert_eq!((year.label.as_str(), year.from_ms), ("2027", ms("2027-01-01T00:00:00Z")));
        let ny = zone("America/New_York");
        let month = current_period(PeriodKind::Month, &ny, now);
        assert_eq!((month.label.as_str(), month.from_ms, month.to_ms), ("2026-12", ms("2026-12-01T05:00:00Z"), now));
        let quarter = current_period(PeriodKind::Quarter, &ny, now);
        assert_eq!((quarter.label.as_str(), quarter.from_ms), ("2026-Q4", ms("2026-10-01T04:00:00Z")));
        // Thursday 2026-12-31 is in ISO week 53 of 2026.
        let week = current_period(PeriodKind::Week, &ny, now);
        assert_eq!((week.label.as_str(), week.from_ms), ("2026-W53", ms("2026-12-28T05:00:00Z")));
        // Each label parses back to the same period.
        for p in [&year, &month, &quarter, &week] {
            let tz = if p.label == "2027" { &london } else { &ny };
            assert_eq!(&parse_period(&p.label, tz, now).unwrap(), p);
        }
    }

    #[test]
    fn a_period_longer_than_max_period_is_refused_naming_the_limit() {
        let tz = zone("UTC");
        let now = ms("2026-11-22T18:30:00Z");
        let max = Some(std::time::Duration::from_secs(400 * 86_400));
        let q = |period, from, to| PeriodQuery { period, from, to, max_period: max };
        let e = resolve(q(None, Some("0001-01-01T00:00:00Z"), Some("2026-11-01T00:00:00Z")), None, &tz, now)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("the period 0001-01-01T00:00:00Z/2026-11-01T00:00:00Z is "), "{e}");
        assert!(e.ends_with("longer than [api] max_period (400d); ask for a shorter period"), "{e}");
        // Measured before clipping to now: a range reaching far into the future is refused too.
        assert!(resolve(q(None, Some("2026-11-01T00:00:00Z"), Some("2030-01-01T00:00:00Z")), None, &tz, now).is_err());
        // Exactly the limit passes; a year always does under the default.
        assert!(resolve(q(None, Some("2026-01-01T00:00:00Z"), Some("2027-02-05T00:00:00Z")), None, &tz, now).is_ok());
        assert!(
            resolve(q(None, Some("2026-01-01T00:00:00Z"), Some("2027-02-05T00:00:00.001Z")), None, &tz, now).is_err()
        );
        assert!(resolve(q(Some("2024"), None, None), None, &tz, now).is_ok());
        let month = Some(std::time::Duration::from_secs(28 * 86_400));
        let e =
            resolve(PeriodQuery { period: Some("2026-10"), max_period: month, ..Default::default() }, None, &tz, now)
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the period 2026-10 is 31d long, longer than [api] max_period (28d); ask for a shorter period"
        );
    }

    #[test]
    fn bad_periods_say_what_is_accepted() {
        let tz = zone("UTC");
        let message = |text: &str| parse_period(text, &tz, later()).unwrap_err().to_string();
        for text in ["", "26-11", "2026-", "2026-1", "2026/11", "november", "2026-11-01", "2026-H1", "2026-W1"] {
            let m = message(text);
            assert!(m.contains("is not a period") && m.contains("period=2026-W47"), "{text}: {m}");
        }
        assert!(message("2026-13").contains("month 13 does not exist"));
        assert!(message("2026-Q5").contains("quarter Q5 does not exist"));
        assert!(message("2025-W53").contains("ISO year 2025 has no week 53"));
        assert!(message("2026-W00").contains("has no week 00"));
        assert!(message("1969").contains("outside 1970-9998"));
    }

    #[test]
    fn bad_queries_say_what_to_fix() {
        let tz = zone("UTC");
        let now = later();
        let err = |q: PeriodQuery<'_>| resolve(q, None, &tz, now).unwrap_err().to_string();
        assert_eq!(
            err(PeriodQuery { from: Some("2026-11-01"), to: Some("2026-11-02T00:00:00Z"), ..Default::default() }),
            "from=\"2026-11-01\" is not an RFC 3339 instant with an offset; write e.g. from=2026-11-01T00:00:00Z"
        );
        assert!(err(PeriodQuery { from: Some("2026-11-01T00:00:00Z"), ..Default::default() }).contains("without to"));
        assert!(err(PeriodQuery { period: Some("2026"), to: Some("x"), ..Default::default() }).contains("not both"));
        assert!(err(PeriodQuery::default()).starts_with("no period given; use period=2026-11"));
        let same = "2026-11-01T00:00:00Z";
        assert!(err(PeriodQuery { from: Some(same), to: Some(same), ..Default::default() }).contains("is not before"));
        // With a default kind, no query means the agreement's current period.
        let p = resolve(PeriodQuery::default(), Some(PeriodKind::Month), &tz, ms("2026-11-22T18:30:00Z")).unwrap();
        assert_eq!(p.label, "2026-11");
    }

    #[test]
    fn months_quarters_and_weeks_tile_the_year_in_every_zone() {
        for name in ["Europe/London", "America/New_York", "Australia/Lord_Howe", "UTC"] {
            let tz = zone(name);
            let year = parse_period("2026", &tz, later()).unwrap();
            let tiles = |labels: Vec<String>| {
                let periods: Vec<Period> = labels.iter().map(|l| parse_period(l, &tz, later()).unwrap()).collect();
                assert_eq!(periods[0].from_ms, year.from_ms, "{name} {labels:?}");
                assert_eq!(periods.last().unwrap().to_ms, year.to_ms, "{name} {labels:?}");
                for pair in periods.windows(2) {
                    assert_eq!(pair[0].to_ms, pair[1].from_ms, "{name}: {} then {}", pair[0].label, pair[1].label);
                }
            };
            tiles((1..=12).map(|m| format!("2026-{m:02}")).collect());
            tiles((1..=4).map(|q| format!("2026-Q{q}")).collect());
            // ISO 2026 runs from 2025-12-29 to 2027-01-03: the weeks tile it instead.
            let weeks: Vec<Period> =
                (1..=53).map(|w| parse_period(&format!("2026-W{w:02}"), &tz, later()).unwrap()).collect();
            for pair in weeks.windows(2) {
                assert_eq!(pair[0].to_ms, pair[1].from_ms, "{name}: {} then {}", pair[0].label, pair[1].label);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        #[test]
        fn the_current_period_contains_now_and_its_label_reads_back_to_it(
            now in ms("2025-01-01T00:00:00Z")..ms("2028-01-01T00:00:00Z"),
            kind in proptest::sample::select(vec![PeriodKind::Week, PeriodKind::Month, PeriodKind::Quarter, PeriodKind::Year]),
            name in proptest::sample::select(vec!["Europe/London", "America/New_York", "Australia/Lord_Howe", "UTC"]),
        ) {
            let tz = zone(name);
            let current = current_period(kind, &tz, now);
            proptest::prop_assert!(current.from_ms <= now && current.to_ms == now && !current.complete);
            let full = parse_period(&current.label, &tz, later()).unwrap();
            proptest::prop_assert!(full.from_ms == current.from_ms && now < full.to_ms);
            proptest::prop_assert_eq!(parse_period(&current.label, &tz, now).unwrap(), current);
        }
    }
}
