//! Structural gaps (SPEC §8): agreements whose targets cannot hold because of what their
//! service depends on. A pure function over the validated catalogue.

use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use crate::calendar::{Calendar, WEEKDAYS, subtract};
use crate::catalogue::{Agreement, AgreementKind, Catalogue};
use crate::units::format_duration;

/// Which promise a dependency's agreement fails to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GapRule {
    /// The dependency's availability target is below the dependent's.
    Availability,
    /// The dependency's latency promise is looser than the dependent's.
    Latency,
    /// The dependency's calendar does not cover the dependent's service hours.
    Hours,
}

/// One structural gap between an agreement and an agreement on a dependency.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Gap {
    pub agreement: String,
    pub service: String,
    pub dependency_agreement: String,
    pub dependency_kind: AgreementKind,
    pub dependency: String,
    pub rule: GapRule,
    /// The dependent agreement's value and the dependency's, as people write them.
    pub agreement_value: String,
    pub dependency_value: String,
    pub message: String,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Representative weeks (one in winter, one in summer) over which calendar hours are
/// compared, so that zones with different DST rules are compared in both seasons.
const COMPARE_WEEKS: [(&str, &str); 2] =
    [("2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z"), ("2026-07-13T00:00:00Z", "2026-07-20T00:00:00Z")];

/// Every structural gap in the catalogue, in agreement order.
pub fn structural_gaps(catalogue: &Catalogue) -> Vec<Gap> {
    let mut gaps = Vec::new();
    for a in &catalogue.agreements {
        for dep in catalogue.dependencies_transitive(a.service.as_str()) {
            for b in catalogue.agreements_of(dep.id.as_str()) {
                if b.kind == AgreementKind::Sla {
                    continue;
                }
                gaps.extend(compare(catalogue, a, b));
            }
        }
    }
    gaps
}

fn compare(catalogue: &Catalogue, a: &Agreement, b: &Agreement) -> Vec<Gap> {
    let mut out = Vec::new();
    let gap = |rule, av: String, bv: String, what: String| Gap {
        agreement: a.id.to_string(),
        service: a.service.to_string(),
        dependency_agreement: b.id.to_string(),
        dependency_kind: b.kind,
        dependency: b.service.to_string(),
        rule,
        message: format!(
            "{} {} on {} depends on {}, whose {} {} {what}",
            a.kind.as_str(),
            a.id,
            a.service,
            b.service,
            b.kind.as_str(),
            b.id
        ),
        agreement_value: av,
        dependency_value: bv,
    };
    if b.availability < a.availability {
        out.push(gap(
            GapRule::Availability,
            format!("{}%", a.availability),
            format!("{}%", b.availability),
            format!("targets {}% availability, below {}%", b.availability, a.availability),
        ));
    }
    if let (Some(la), Some(lb)) = (&a.latency, &b.latency)
        && (lb.max > la.max || lb.percentile < la.percentile)
    {
        let (av, bv) = (
            format!("p{} <= {}", la.percentile, format_duration(la.max)),
            format!("p{} <= {}", lb.percentile, format_duration(lb.max)),
        );
        out.push(gap(GapRule::Latency, av.clone(), bv.clone(), format!("promises latency {bv}, looser than {av}")));
    }
    if let (Some(ca), Some(cb)) = (catalogue.calendar(&a.calendar), catalogue.calendar(&b.calendar))
        && let Some(uncovered) = uncovered_hours(ca, cb)
    {
        out.push(gap(
            GapRule::Hours,
            format!("{} ({})", ca.id, ca.hours_text.join(", ")),
            format!("{} ({})", cb.id, cb.hours_text.join(", ")),
            format!("calendar {} does not cover {uncovered} of calendar {}", cb.id, ca.id),
        ));
    }
    out
}

/// Describes the hours of `a` that `b` leaves uncovered over the representative weeks.
fn uncovered_hours(a: &Calendar, b: &Calendar) -> Option<String> {
    let mut first: Option<(i64, i64)> = None;
    let mut total_ms = 0i64;
    for (from, to) in COMPARE_WEEKS {
        let from = from.parse::<Timestamp>().expect("constant").as_millisecond();
        let to = to.parse::<Timestamp>().expect("constant").as_millisecond();
        let missing = subtract(&a.service_intervals(from, to), &b.service_intervals(from, to));
        total_ms += missing.iter().map(|(x, y)| y - x).sum::<i64>();
        if first.is_none() {
            first = missing.first().copied();
        }
    }
    let (start, end) = first?;
    let local = |ms: i64| a.timezone.to_datetime(Timestamp::from_millisecond(ms).expect("in range"));
    let (s, e) = (local(start), local(end));
    let day = WEEKDAYS[s.weekday().to_monday_zero_offset() as usize];
    Some(format!(
        "{:.1}h a week (first: {day} {:02}:{:02}-{:02}:{:02} {})",
        total_ms as f64 / 3_600_000.0 / COMPARE_WEEKS.len() as f64,
        s.hour(),
        s.minute(),
        e.hour(),
        e.minute(),
        a.timezone_name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_collector_config;

    /// A catalogue where `web` (SLA) depends on `db`, which depends on `dns`.
    fn catalogue(web_sla: &str, db_ola: &str, calendars: &str) -> Catalogue {
        let text = format!(
            r#"
[embedded_agent]
enabled = true
{calendars}
[[services]]
id = "web"
depends_on = ["db"]
  [[services.probes]]
  id = "web-p"
  kind = "tcp"
  target = "127.0.0.1:80"
[[services]]
id = "db"
depends_on = ["dns"]
  [[services.probes]]
  id = "db-p"
  kind = "tcp"
  target = "127.0.0.1:5432"
[[services]]
id = "dns"
  [[services.probes]]
  id = "dns-p"
  kind = "tcp"
  target = "127.0.0.1:53"
[[agreements]]
id = "web-sla"
kind = "sla"
service = "web"
{web_sla}
[[agreements]]
id = "db-ola"
kind = "ola"
service = "db"
{db_ola}
"#
        );
        parse_collector_config("t.toml", &text).unwrap_or_else(|e| panic!("{e}")).catalogue
    }

    #[test]
    fn a_dependency_with_a_lower_availability_target_is_a_gap() {
        let c = catalogue("availability = 99.9", "availability = 99.5", "");
        let gaps = structural_gaps(&c);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].rule, GapRule::Availability);
        assert_eq!(
            gaps[0].message,
            "sla web-sla on web depends on db, whose ola db-ola targets 99.5% availability, below 99.9%"
        );
    }

    #[test]
    fn equal_or_stricter_targets_are_no_gap() {
        let c = catalogue(
            "availability = 99.9\nlatency = { percentile = 95, max = \"300ms\" }",
            "availability = 99.95\nlatency = { percentile = 99, max = \"200ms\" }",
            "",
        );
        assert!(structural_gaps(&c).is_empty());
    }

    #[test]
    fn a_looser_latency_max_or_a_lower_percentile_is_a_gap() {
        let c = catalogue(
            "availability = 99\nlatency = { percentile = 95, max = \"300ms\" }",
            "availability = 99\nlatency = { percentile = 95, max = \"500ms\" }",
            "",
        );
        let gaps = structural_gaps(&c);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].rule, GapRule::Latency);
        assert_eq!(
            (gaps[0].agreement_value.as_str(), gaps[0].dependency_value.as_str()),
            ("p95 <= 300ms", "p95 <= 500ms")
        );
        let c = catalogue(
            "availability = 99\nlatency = { percentile = 99, max = \"300ms\" }",
            "availability = 99\nlatency = { percentile = 90, max = \"300ms\" }",
            "",
        );
        assert_eq!(structural_gaps(&c)[0].rule, GapRule::Latency);
    }

    #[test]
    fn hours_not_covered_across_zones_are_a_gap() {
        // London 08:00-18:00 is New York 03:00-13:00: a New York 09:00-17:00 desk misses most of it.
        let cals = r#"
[calendars.london]
timezone = "Europe/London"
hours = ["mon-fri 08:00-18:00"]
[calendars.new-york]
timezone = "America/New_York"
hours = ["mon-fri 09:00-17:00"]
"#;
        let c =
            catalogue("availability = 99\ncalendar = \"london\"", "availability = 99\ncalendar = \"new-york\"", cals);
        let gaps = structural_gaps(&c);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].rule, GapRule::Hours);
        assert!(gaps[0].message.contains("calendar new-york does not cover 30.0h a week"), "{}", gaps[0].message);
        assert!(gaps[0].message.contains("first: mon 08:00-14:00 Europe/London"), "{}", gaps[0].message);
    }

    #[test]
    fn a_wider_calendar_in_another_zone_covers_without_a_gap() {
        let cals = r#"
[calendars.london]
timezone = "Europe/London"
hours = ["mon-fri 08:00-18:00", "sat 09:00-13:00"]
[calendars.berlin]
timezone = "Europe/Berlin"
hours = ["mon-sat 06:00-22:00"]
"#;
        let c = catalogue("availability = 99\ncalendar = \"london\"", "availability = 99\ncalendar = \"berlin\"", cals);
        assert!(structural_gaps(&c).is_empty());
        // and the 24x7 calendar covers everything
        let c = catalogue("availability = 99\ncalendar = \"london\"", "availability = 99", cals);
        assert!(structural_gaps(&c).is_empty());
    }

    #[test]
    fn dependencies_further_down_count_too() {
        let mut c = catalogue("availability = 99.9", "availability = 99.95", "");
        let mut uc = c.agreements[1].clone();
        uc.id = crate::Id::new("dns-uc").unwrap();
        uc.kind = AgreementKind::Uc;
        uc.service = crate::Id::new("dns").unwrap();
        uc.availability = 99.0;
        c.agreements.push(uc);
        let gaps = structural_gaps(&c);
        // web-sla (99.9) and db-ola (99.95) both sit above dns-uc (99.0)
        assert_eq!(gaps.len(), 2, "{gaps:?}");
        assert!(gaps.iter().all(|g| g.dependency_agreement == "dns-uc"));
    }
}
