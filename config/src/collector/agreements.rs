//! `[[agreements]]`: SLAs, OLAs and underpinning contracts with their targets, then the
//! cross references (unique ids, known service, known calendar).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::array_of_tables;
use super::calendars::Calendars;
use super::read_id;
use crate::calendar::ALWAYS;
use crate::catalogue::*;
use crate::id::Id;
use crate::reader::{At, Fields, Reader, Value, index};

/// Agreement fields as read, with positions kept for the cross-reference pass.
pub(super) struct RawAgreement {
    path: String,
    id: Option<At<Id>>,
    kind: Option<AgreementKind>,
    service: Option<At<String>>,
    counterparty: String,
    calendar: Option<At<String>>,
    period: Option<PeriodKind>,
    availability: Option<f64>,
    latency: Option<Option<LatencyTarget>>,
    unknown: Option<UnknownPolicy>,
    min_coverage: Option<f64>,
    settle: Option<Duration>,
    maintenance_notice: Option<Option<Duration>>,
}

pub(super) fn read_agreements(r: &mut Reader<'_>, top: &Fields<'_, '_>) -> Vec<RawAgreement> {
    let mut agreements: Vec<RawAgreement> = Vec::new();
    for (i, item) in array_of_tables(r, top, "agreements") {
        let path = index("agreements", i);
        if let Some(a) = read_agreement(r, item, &path) {
            agreements.push(a);
        }
    }
    agreements
}

/// Checks agreement ids are unique and each names a known service and calendar.
pub(super) fn resolve_agreements(
    r: &mut Reader<'_>,
    agreements: Vec<RawAgreement>,
    service_ids: &HashMap<String, usize>,
    calendars: &Calendars,
) -> Vec<Agreement> {
    let mut final_agreements = Vec::new();
    let mut agreement_ids: HashSet<String> = HashSet::new();
    for a in agreements {
        if let Some(id) = &a.id
            && !agreement_ids.insert(id.value.to_string())
        {
            r.error(id.pos, format!("{}.id", a.path), format!("duplicate agreement id \"{}\"", id.value));
        }
        if let Some(s) = &a.service
            && !service_ids.contains_key(&s.value)
        {
            r.error(s.pos, format!("{}.service", a.path), format!("unknown service \"{}\"", s.value));
        }
        if let Some(c) = &a.calendar
            && !calendars.knows(&c.value)
        {
            let known: Vec<&str> = calendars.all.keys().map(String::as_str).collect();
            r.error(
                c.pos,
                format!("{}.calendar", a.path),
                format!("unknown calendar \"{}\"; defined: {}", c.value, known.join(", ")),
            );
        }
        if let (
            Some(id),
            Some(kind),
            Some(service),
            Some(period),
            Some(availability),
            Some(latency),
            Some(unknown),
            Some(min_coverage),
            Some(settle),
            Some(maintenance_notice),
        ) = (
            a.id,
            a.kind,
            a.service,
            a.period,
            a.availability,
            a.latency,
            a.unknown,
            a.min_coverage,
            a.settle,
            a.maintenance_notice,
        ) {
            let calendar = a.calendar.map(|c| c.value).unwrap_or_else(|| ALWAYS.to_string());
            let Ok(service) = Id::new(&service.value) else { continue };
            final_agreements.push(Agreement {
                id: id.value,
                kind,
                service,
                counterparty: a.counterparty,
                calendar,
                period,
                availability,
                latency,
                unknown,
                min_coverage,
                settle,
                maintenance_notice,
            });
        }
    }

    final_agreements
}

fn read_agreement(r: &mut Reader<'_>, v: &Value<'_>, path: &str) -> Option<RawAgreement> {
    let f = r.fields(
        v,
        path,
        &[
            "id",
            "kind",
            "service",
            "counterparty",
            "calendar",
            "period",
            "availability",
            "latency",
            "unknown",
            "min_coverage",
            "settle",
            "maintenance_notice",
        ],
    )?;
    let id = read_id(r, &f, "id");
    let kind = r.req_string(&f, "kind").and_then(|s| match s.value.as_str() {
        "sla" => Some(AgreementKind::Sla),
        "ola" => Some(AgreementKind::Ola),
        "uc" => Some(AgreementKind::Uc),
        other => {
            r.error(s.pos, f.key_path("kind"), format!("\"{other}\" is not an agreement kind; use sla, ola or uc"));
            None
        }
    });
    let service = r.req_string(&f, "service");
    let counterparty = r.opt_string(&f, "counterparty").map(|s| s.value).unwrap_or_default();
    let calendar = r.opt_string(&f, "calendar");
    let period = match r.opt_string(&f, "period") {
        None => Some(PeriodKind::Month),
        Some(s) => match s.value.as_str() {
            "week" => Some(PeriodKind::Week),
            "month" => Some(PeriodKind::Month),
            "quarter" => Some(PeriodKind::Quarter),
            "year" => Some(PeriodKind::Year),
            other => {
                r.error(
                    s.pos,
                    f.key_path("period"),
                    format!("\"{other}\" is not a period; use week, month, quarter or year"),
                );
                None
            }
        },
    };
    let availability =
        r.required(&f, "availability").and_then(|v| r.number(v, &f.key_path("availability"))).and_then(|a| {
            if a.value > 0.0 && a.value <= 100.0 {
                Some(a.value)
            } else {
                r.error(
                    a.pos,
                    f.key_path("availability"),
                    format!("{} is outside (0, 100]; give a percentage such as 99.9", a.value),
                );
                None
            }
        });
    let latency = match f.get("latency") {
        None => Some(None),
        Some(v) => read_latency(r, v, &f.key_path("latency")).map(Some),
    };
    let unknown = match r.opt_string(&f, "unknown") {
        None => Some(UnknownPolicy::Exclude),
        Some(s) => match s.value.as_str() {
            "exclude" => Some(UnknownPolicy::Exclude),
            "up" => Some(UnknownPolicy::Up),
            "down" => Some(UnknownPolicy::Down),
            other => {
                r.error(
                    s.pos,
                    f.key_path("unknown"),
                    format!("\"{other}\" is not an unknown-time policy; use exclude, up or down"),
                );
                None
            }
        },
    };
    let min_coverage = match f.get("min_coverage") {
        None => Some(DEFAULT_MIN_COVERAGE),
        Some(v) => r.number(v, &f.key_path("min_coverage")).and_then(|c| {
            // Above 0: with 0 a period with nothing monitored (under unknown = "up") would be
            // "met", which SPEC §7 rules out.
            if c.value > 0.0 && c.value <= 100.0 {
                Some(c.value)
            } else {
                r.error(
                    c.pos,
                    f.key_path("min_coverage"),
                    format!(
                        "{} is outside (0, 100]; give the percent of agreed time that must be monitored for a verdict, such as 90",
                        c.value
                    ),
                );
                None
            }
        }),
    };
    let settle = match f.get("settle") {
        None => Some(DEFAULT_SETTLE),
        Some(v) => r.duration(v, &f.key_path("settle")).map(|d| d.value),
    };
    // A notice longer than a year would refuse every window ever declared: a typo, not a rule.
    let maintenance_notice = match f.get("maintenance_notice") {
        None => Some(None),
        Some(_) => r.opt_duration_at_most(&f, "maintenance_notice", MAX_MAINTENANCE_NOTICE).map(|d| Some(d.value)),
    };
    Some(RawAgreement {
        path: path.to_string(),
        id,
        kind,
        service,
        counterparty,
        calendar,
        period,
        availability,
        latency,
        unknown,
        min_coverage,
        settle,
        maintenance_notice,
    })
}

fn read_latency(r: &mut Reader<'_>, v: &Value<'_>, path: &str) -> Option<LatencyTarget> {
    let f = r.fields(v, path, &["percentile", "max"])?;
    let percentile = r.required(&f, "percentile").and_then(|v| r.number(v, &f.key_path("percentile"))).and_then(|p| {
        if p.value > 0.0 && p.value < 100.0 {
            Some(p.value)
        } else {
            r.error(p.pos, f.key_path("percentile"), format!("{} is outside (0, 100); give e.g. 95 or 99.9", p.value));
            None
        }
    });
    let max = match f.get("max") {
        None => {
            r.error(f.pos, f.key_path("max"), "is required but missing; e.g. max = \"300ms\"");
            None
        }
        // A result longer than a day is refused at ingest, so a looser target means nothing.
        Some(_) => r.opt_duration_at_most(&f, "max", Duration::from_secs(86_400)),
    };
    Some(LatencyTarget { percentile: percentile?, max: max?.value })
}
