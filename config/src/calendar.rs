//! Service-hours calendars: weekly hours in an IANA zone minus holidays, and the exact
//! set of instants they cover over any interval, following the civil-time rule of
//! SPEC §7 (a repeated local hour counts twice, a skipped one does not exist).

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The name of the built-in calendar: UTC, always in service hours.
pub const ALWAYS: &str = "24x7";

/// Seconds in a civil day (ranges end at most at 24:00).
pub const DAY_SECONDS: u32 = 86_400;

/// One span of local civil time within a day, in seconds from local midnight: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DayRange {
    pub start: u32,
    pub end: u32,
}

impl fmt::Display for DayRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |s: u32| format!("{:02}:{:02}", s / 3600, (s % 3600) / 60);
        write!(f, "{}-{}", hm(self.start), hm(self.end))
    }
}

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A validated calendar.
#[derive(Clone, Debug)]
pub struct Calendar {
    pub id: String,
    /// The IANA name as the time-zone database spells it.
    pub timezone_name: String,
    pub timezone: TimeZone,
    /// Ranges per local weekday, Monday first; sorted, non-overlapping.
    pub weekly: [Vec<DayRange>; 7],
    pub holidays: BTreeSet<Date>,
    /// The `hours` entries as written, for methodology texts.
    pub hours_text: Vec<String>,
}

impl Calendar {
    /// The built-in `24x7` calendar.
    pub fn always() -> Calendar {
        let full = vec![DayRange { start: 0, end: DAY_SECONDS }];
        Calendar {
            id: ALWAYS.to_string(),
            timezone_name: "UTC".to_string(),
            timezone: TimeZone::UTC,
            weekly: std::array::from_fn(|_| full.clone()),
            holidays: BTreeSet::new(),
            hours_text: vec!["mon-sun 00:00-24:00".to_string()],
        }
    }

    /// Builds a calendar from its textual parts, as a config file writes them (for tests
    /// and tools; config files go through validation, which reports positions).
    pub fn from_text(id: &str, zone: &str, hours: &[&str], holidays: &[&str]) -> Result<Calendar, String> {
        let (timezone_name, timezone) = parse_timezone(zone)?;
        let mut weekly: [Vec<DayRange>; 7] = Default::default();
        for h in hours {
            let (days, ranges) = parse_hours(h)?;
            for d in days {
                weekly[d].extend(ranges.iter().copied());
            }
        }
        for (day, ranges) in weekly.iter_mut().enumerate() {
            ranges.sort();
            if ranges.windows(2).any(|w| w[1].start < w[0].end) {
                return Err(format!("hours overlap on {}", WEEKDAYS[day]));
            }
        }
        let holidays = holidays.iter().map(|d| parse_date(d)).collect::<Result<_, _>>()?;
        let hours_text = hours.iter().map(|s| s.to_string()).collect();
        Ok(Calendar { id: id.to_string(), timezone_name, timezone, weekly, holidays, hours_text })
    }

    pub fn is_always(&self) -> bool {
        self.holidays.is_empty() && self.weekly.iter().all(|d| d == &[DayRange { start: 0, end: DAY_SECONDS }])
    }

    /// The ranges that apply on a local date (none on a holiday).
    pub fn ranges_on(&self, date: Date) -> &[DayRange] {
        if self.holidays.contains(&date) {
            return &[];
        }
        &self.weekly[date.weekday().to_monday_zero_offset() as usize]
    }

    /// The instants of `[from_ms, to_ms)` (Unix milliseconds) inside service hours, as
    /// sorted, disjoint, non-adjacent half-open intervals.
    pub fn service_intervals(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        let mut out: Vec<(i64, i64)> = Vec::new();
        if from_ms >= to_ms {
            return out;
        }
        if self.is_always() {
            return vec![(from_ms, to_ms)];
        }
        // Local dates whose hours could reach into the interval: offsets stay within ±26h.
        let first = local_date(&self.timezone, from_ms).saturating_sub(1.day());
        let last = local_date(&self.timezone, to_ms).saturating_add(1.day());
        let mut date = first;
        while date <= last {
            for range in self.ranges_on(date) {
                let start = date.to_datetime(Time::midnight()).saturating_add((range.start as i64).seconds());
                let end = date.to_datetime(Time::midnight()).saturating_add((range.end as i64).seconds());
                for (a, b) in civil_preimage(&self.timezone, start, end) {
                    let (a, b) = (a.max(from_ms), b.min(to_ms));
                    if a < b {
                        out.push((a, b));
                    }
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        normalize(out)
    }
}

/// Sorts and merges overlapping or touching intervals.
pub fn normalize(mut v: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn local_date(tz: &TimeZone, ms: i64) -> Date {
    let ts = Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX });
    tz.to_datetime(ts).date()
}

/// The instants whose local civil time lies in `[start, end)`: for each stretch of
/// constant UTC offset, civil = instant + offset, so the preimage is a shifted copy
/// clipped to the stretch. A repeated hour yields two pieces; a skipped hour none.
pub fn civil_preimage(tz: &TimeZone, start: DateTime, end: DateTime) -> Vec<(i64, i64)> {
    let as_utc_ms =
        |dt: DateTime| -> i64 { dt.to_zoned(TimeZone::UTC).map(|z| z.timestamp().as_millisecond()).unwrap_or(0) };
    let (civil_a, civil_b) = (as_utc_ms(start), as_utc_ms(end));
    const MARGIN: i64 = 27 * 3_600_000;
    let window_lo = civil_a - MARGIN;
    let window_hi = civil_b + MARGIN;
    let Ok(lo_ts) = Timestamp::from_millisecond(window_lo) else { return Vec::new() };

    let mut pieces = Vec::new();
    let mut seg_start = window_lo;
    let mut offset_ms = tz.to_offset(lo_ts).seconds() as i64 * 1000;
    let mut transitions = tz.following(lo_ts);
    loop {
        let next = transitions.next();
        let (seg_end, next_offset) = match &next {
            Some(t) if t.timestamp().as_millisecond() < window_hi => {
                (t.timestamp().as_millisecond(), Some(t.offset().seconds() as i64 * 1000))
            }
            _ => (window_hi, None),
        };
        let a = (civil_a - offset_ms).max(seg_start);
        let b = (civil_b - offset_ms).min(seg_end);
        if a < b {
            pieces.push((a, b));
        }
        match next_offset {
            Some(o) => {
                seg_start = seg_end;
                offset_ms = o;
            }
            None => break,
        }
    }
    pieces
}

/// Parses one `hours` entry such as `"mon-fri 08:00-18:00"`, `"sat,sun 10:00-14:00"` or
/// `"mon-fri 08:00-12:00,13:00-17:00"`; returns the weekdays (Monday = 0) and ranges.
pub fn parse_hours(text: &str) -> Result<(Vec<usize>, Vec<DayRange>), String> {
    let mut parts = text.split_whitespace();
    let (Some(days), Some(times), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("\"{text}\" is not an hours entry; write days and times such as \"mon-fri 08:00-18:00\""));
    };
    let mut weekdays = Vec::new();
    for item in days.split(',') {
        let item = item.trim().to_ascii_lowercase();
        let (a, b) = item.split_once('-').unwrap_or((&item, &item));
        let (Some(a), Some(b)) = (weekday_index(a), weekday_index(b)) else {
            return Err(format!(
                "\"{text}\": \"{item}\" is not a weekday or weekday range; use mon, tue, wed, thu, fri, sat, sun as in \"mon-fri\""
            ));
        };
        let mut d = a;
        loop {
            if !weekdays.contains(&d) {
                weekdays.push(d);
            }
            if d == b {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    let mut ranges = Vec::new();
    for item in times.split(',') {
        let Some((a, b)) = item.split_once('-') else {
            return Err(format!("\"{text}\": \"{item}\" is not a time range; write it as \"08:00-18:00\""));
        };
        let start = parse_clock(a)
            .ok_or_else(|| format!("\"{text}\": \"{a}\" is not a time of day; write HH:MM from 00:00 to 23:59"))?;
        let end = parse_clock(b)
            .ok_or_else(|| format!("\"{text}\": \"{b}\" is not a time of day; write HH:MM from 00:00 to 24:00"))?;
        if start == DAY_SECONDS {
            return Err(format!("\"{text}\": a range cannot start at 24:00"));
        }
        if end <= start {
            return Err(format!(
                "\"{text}\": range {item} ends before it starts; ranges cannot cross midnight, split it into two entries (e.g. \"22:00-24:00\" and \"00:00-06:00\" on the next day)"
            ));
        }
        ranges.push(DayRange { start, end });
    }
    Ok((weekdays, ranges))
}

fn weekday_index(s: &str) -> Option<usize> {
    WEEKDAYS.iter().position(|d| *d == s)
}

fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY_SECONDS),
        (0..=23, 0..=59) => Some(h * 3600 + m * 60),
        _ => None,
    }
}

/// Parses a holiday `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let valid_shape = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    match text.parse::<Date>() {
        Ok(d) if valid_shape => Ok(d),
        _ => Err(format!("\"{text}\" is not a date; write YYYY-MM-DD such as \"2026-12-25\"")),
    }
}

/// Resolves an IANA zone name in the bundled database (the one every figure uses).
pub fn parse_timezone(name: &str) -> Result<(String, TimeZone), String> {
    match crate::tzdb().get(name) {
        Ok(tz) => {
            let canonical = tz.iana_name().unwrap_or(name).to_string();
            Ok((canonical, tz))
        }
        Err(_) => Err(format!(
            "\"{name}\" is not a time zone in the IANA database; use a name such as \"Europe/London\" or \"UTC\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn cal(zone: &str, hours: &[&str], holidays: &[&str]) -> Calendar {
        Calendar::from_text("t", zone, hours, holidays).unwrap()
    }

    fn total(v: &[(i64, i64)]) -> i64 {
        v.iter().map(|(a, b)| b - a).sum()
    }

    #[test]
    fn hours_parse_days_lists_and_ranges() {
        let (days, ranges) = parse_hours("mon-fri 08:00-18:00").unwrap();
        assert_eq!(days, vec![0, 1, 2, 3, 4]);
        assert_eq!(ranges, vec![DayRange { start: 8 * 3600, end: 18 * 3600 }]);
        let (days, ranges) = parse_hours("fri-mon,wed 00:00-12:00,13:00-24:00").unwrap();
        assert_eq!(days, vec![4, 5, 6, 0, 2]);
        assert_eq!(ranges[1], DayRange { start: 13 * 3600, end: DAY_SECONDS });
    }

    #[test]
    fn malformed_hours_say_what_is_wrong() {
        assert!(parse_hours("monday 08:00-18:00").unwrap_err().contains("not a weekday"));
        assert!(parse_hours("mon-fri 8:00-18:00").unwrap_err().contains("not a time of day"));
        assert!(parse_hours("mon-fri 08:00-25:00").unwrap_err().contains("not a time of day"));
        assert!(parse_hours("mon 22:00-06:00").unwrap_err().contains("cannot cross midnight"));
        assert!(parse_hours("mon-fri").unwrap_err().contains("not an hours entry"));
        assert!(parse_hours("mon 24:00-24:00").unwrap_err().contains("cannot start at 24:00"));
    }

    #[test]
    fn a_business_week_in_london_winter_is_fifty_hours() {
        let c = cal("Europe/London", &["mon-fri 08:00-18:00"], &[]);
        let v = c.service_intervals(ms("2026-01-12T00:00:00Z"), ms("2026-01-19T00:00:00Z"));
        assert_eq!(v.len(), 5);
        assert_eq!(v[0], (ms("2026-01-12T08:00:00Z"), ms("2026-01-12T18:00:00Z")));
        assert_eq!(total(&v), 50 * 3_600_000);
    }

    #[test]
    fn summer_hours_follow_the_local_clock() {
        let c = cal("Europe/London", &["mon-fri 08:00-18:00"], &[]);
        let v = c.service_intervals(ms("2026-07-13T00:00:00Z"), ms("2026-07-14T00:00:00Z"));
        assert_eq!(v, vec![(ms("2026-07-13T07:00:00Z"), ms("2026-07-13T17:00:00Z"))]);
    }

    #[test]
    fn clocks_back_repeats_an_hour_and_it_counts_twice() {
        // 2026-10-25 01:00-02:00 local happens twice in London.
        let c = cal("Europe/London", &["sun 00:00-24:00"], &[]);
        let v = c.service_intervals(ms("2026-10-24T00:00:00Z"), ms("2026-10-27T00:00:00Z"));
        assert_eq!(total(&v), 25 * 3_600_000);
        let c = cal("Europe/London", &["sun 01:00-02:00"], &[]);
        let v = c.service_intervals(ms("2026-10-24T00:00:00Z"), ms("2026-10-27T00:00:00Z"));
        assert_eq!(v, vec![(ms("2026-10-25T00:00:00Z"), ms("2026-10-25T02:00:00Z"))]);
    }

    #[test]
    fn clocks_forward_skips_an_hour_that_then_does_not_exist() {
        let c = cal("Europe/London", &["sun 00:00-24:00"], &[]);
        let v = c.service_intervals(ms("2026-03-28T00:00:00Z"), ms("2026-03-31T00:00:00Z"));
        assert_eq!(total(&v), 23 * 3_600_000);
        let c = cal("America/New_York", &["sun 02:00-03:00"], &[]);
        let v = c.service_intervals(ms("2026-03-07T00:00:00Z"), ms("2026-03-10T00:00:00Z"));
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn half_hour_shift_zones_work_the_same_way() {
        // Lord Howe Island moves its clocks by 30 minutes.
        let c = cal("Australia/Lord_Howe", &["sun 00:00-24:00"], &[]);
        let v = c.service_intervals(ms("2026-04-03T00:00:00Z"), ms("2026-04-07T00:00:00Z"));
        assert_eq!(total(&v), 24 * 3_600_000 + 1_800_000);
    }

    #[test]
    fn holidays_remove_their_local_date() {
        let c = cal("Europe/London", &["mon-fri 08:00-18:00"], &["2026-12-25"]);
        let v = c.service_intervals(ms("2026-12-21T00:00:00Z"), ms("2026-12-28T00:00:00Z"));
        assert_eq!(total(&v), 40 * 3_600_000);
    }

    #[test]
    fn intervals_are_clipped_to_the_request() {
        let c = cal("UTC", &["mon-fri 08:00-18:00"], &[]);
        let v = c.service_intervals(ms("2026-01-12T10:00:00Z"), ms("2026-01-12T11:30:00Z"));
        assert_eq!(v, vec![(ms("2026-01-12T10:00:00Z"), ms("2026-01-12T11:30:00Z"))]);
    }

    #[test]
    fn the_always_calendar_is_one_interval() {
        let v = Calendar::always().service_intervals(5, 10_000_000_000);
        assert_eq!(v, vec![(5, 10_000_000_000)]);
    }

    #[test]
    fn dates_and_zones_are_strict() {
        assert!(parse_date("2026-12-25").is_ok());
        assert!(parse_date("2026-13-01").is_err());
        assert!(parse_date("25/12/2026").is_err());
        assert!(parse_timezone("Europe/Lndon").is_err());
        assert_eq!(parse_timezone("europe/london").unwrap().0, "Europe/London");
    }
}

/// `a \ b` for sorted, disjoint interval lists.
pub fn subtract(a: &[(i64, i64)], b: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut j = 0;
    for &(start, end) in a {
        let mut cur = start;
        while j < b.len() && b[j].1 <= cur {
            j += 1;
        }
        let mut k = j;
        while cur < end && k < b.len() && b[k].0 < end {
            if b[k].0 > cur {
                out.push((cur, b[k].0));
            }
            cur = cur.max(b[k].1);
            k += 1;
        }
        if cur < end {
            out.push((cur, end));
        }
    }
    out
}

#[cfg(test)]
mod subtract_tests {
    use super::subtract;

    #[test]
    fn subtract_removes_every_overlap() {
        assert_eq!(subtract(&[(0, 10)], &[(2, 3), (5, 7)]), vec![(0, 2), (3, 5), (7, 10)]);
        assert_eq!(subtract(&[(0, 10), (20, 30)], &[(5, 25)]), vec![(0, 5), (25, 30)]);
        assert_eq!(subtract(&[(0, 10)], &[]), vec![(0, 10)]);
        assert!(subtract(&[(0, 10)], &[(-5, 15)]).is_empty());
    }
}
