//! Shorthand for the hand-written cases of the availability tests: minutes from a fixed
//! Monday, view runs, calendars, probes and services.

use jiff::Timestamp;
use probity_config::calendar::Calendar;
use probity_config::wire::ErrorKind;

use super::timeline::{ProbeViews, ServiceInput};
use crate::runs::ViewRun;

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;

pub fn ms(s: &str) -> i64 {
    s.parse::<Timestamp>().unwrap().as_millisecond()
}

/// Monday 2026-11-02 00:00 UTC: the origin of the hand-written cases.
pub fn t0() -> i64 {
    ms("2026-11-02T00:00:00Z")
}

pub fn at(minutes: i64) -> i64 {
    t0() + minutes * MINUTE
}

pub fn up(from_min: i64, to_min: i64) -> ViewRun {
    ViewRun { start: at(from_min), end: at(to_min), down: None }
}

pub fn down(from_min: i64, to_min: i64, kind: ErrorKind) -> ViewRun {
    ViewRun { start: at(from_min), end: at(to_min), down: Some(kind) }
}

pub fn calendar(zone: &str, hours: &[&str], holidays: &[&str]) -> Calendar {
    Calendar::from_text("test", zone, hours, holidays).unwrap()
}

pub fn probe<'a>(id: &'a str, quorum: usize, agents: Vec<(&'a str, Vec<ViewRun>)>) -> ProbeViews<'a> {
    ProbeViews { probe: id, quorum, agents }
}

pub fn service(probes: Vec<ProbeViews<'_>>, min_outage_minutes: i64) -> ServiceInput<'_> {
    ServiceInput { probes, min_outage_ms: min_outage_minutes * MINUTE }
}
