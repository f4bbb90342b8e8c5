//! `methodology.md`: the calendar, maintenance, quorum, staleness and unknown rules that
//! produced the figures, generated from the configuration in force for the period.

use std::io::{self, Write};

use probity_config::time::rfc3339;

use crate::report::{AgreementReport, ResolvedAgreement};

/// Writes the rules that produced the figures, from the configuration in force, and the
/// verdict they led to with the coverage and unknown time beside it.
pub(super) fn write(out: &mut dyn Write, inputs: &ResolvedAgreement<'_>, report: &AgreementReport) -> io::Result<()> {
    let ResolvedAgreement { catalogue, agreement, service, calendar, ref period, .. } = *inputs;
    let mut m = io::BufWriter::new(out);
    writeln!(m, "# Methodology: {} ({})\n", agreement.id, agreement.kind.as_str().to_uppercase())?;
    writeln!(
        m,
        "Agreement `{}` with {} on service `{}` ({}), period {} ({} to {}{}).\n",
        agreement.id,
        if agreement.counterparty.is_empty() { "an unnamed counterparty" } else { &agreement.counterparty },
        service.id,
        service.name,
        period.label,
        rfc3339(period.from_ms),
        rfc3339(period.to_ms),
        if period.complete { "" } else { ", still running: figures up to the generation time" }
    )?;
    writeln!(m, "## Service hours\n")?;
    if calendar.id == probity_config::calendar::ALWAYS {
        writeln!(m, "Calendar `24x7`: every instant is in service hours (UTC).\n")?;
    } else {
        writeln!(
            m,
            "Calendar `{}` in time zone `{}` (IANA time-zone database {}), hours: {}.",
            calendar.id,
            calendar.timezone_name,
            probity_config::tzdb_version(),
            calendar.hours_text.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
        )?;
        let holidays: Vec<String> = calendar.holidays.iter().map(|d| d.to_string()).collect();
        writeln!(
            m,
            "Holidays (no service hours on these local dates): {}.\n",
            if holidays.is_empty() { "none".to_string() } else { holidays.join(", ") }
        )?;
        writeln!(
            m,
            "An instant is in service hours when its local civil time in that zone falls in one of the ranges for its local weekday, on a date that is not a holiday. On a day when clocks go back the repeated local hour counts twice; on a day when they go forward the skipped hour does not exist. Daily rows are local days (23, 24 or 25 hours long).\n"
        )?;
    }
    writeln!(m, "## Planned maintenance\n")?;
    let windows: Vec<_> = catalogue
        .maintenance_of(service.id.as_str())
        .filter(|w| w.end.as_millisecond() > period.from_ms && w.start.as_millisecond() < period.to_ms)
        .collect();
    if windows.is_empty() {
        writeln!(m, "No maintenance windows overlap the period.\n")?;
    } else {
        writeln!(m, "Time inside these windows is excluded from agreed service time:\n")?;
        for w in windows {
            writeln!(
                m,
                "- `{}`: {} to {}: {}",
                w.id,
                w.start,
                w.end,
                if w.reason.is_empty() { "(no reason given)" } else { &w.reason }
            )?;
        }
        writeln!(m)?;
    }
    writeln!(m, "## Probes, agents and quorum\n")?;
    for p in &service.probes {
        writeln!(
            m,
            "- `{}` ({} {}): every {}, timeout {}, agents {}, quorum {}. An agent's view is stale, and so unknown, {} after its latest result.",
            p.id,
            p.spec.kind(),
            p.spec.target(),
            probity_config::units::format_duration(p.interval),
            probity_config::units::format_duration(p.timeout),
            p.agents.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "),
            p.quorum,
            probity_config::units::format_duration(p.interval * 2)
        )?;
    }
    writeln!(
        m,
        "\nA probe is **down** at an instant when at least min(quorum, agents with a known view) of the agents with a known view see it down; **unknown** when no agent's view is known; **up** otherwise. The service is down when any probe is down, else unknown when any probe is unknown, else up. Down runs shorter than `min_outage` = {} count as up; the remaining down runs are outages.\n",
        probity_config::units::format_duration(service.min_outage)
    )?;
    writeln!(m, "## Figures\n")?;
    let policy = match agreement.unknown {
        probity_config::UnknownPolicy::Exclude => "`exclude`: unknown time is removed from agreed service time",
        probity_config::UnknownPolicy::Up => "`up`: unknown time counts as available",
        probity_config::UnknownPolicy::Down => "`down`: unknown time counts as downtime (but is not an outage)",
    };
    writeln!(m, "- base = period ∩ service hours \\ maintenance")?;
    writeln!(m, "- downtime = |base ∩ down|, unknown = |base ∩ unknown|; unknown policy {policy}")?;
    writeln!(m, "- availability_percent = 100 × (agreed − downtime) / agreed; target {}%", agreement.availability)?;
    writeln!(m, "- error_budget_seconds = agreed × (1 − target / 100); remaining = budget − downtime")?;
    if let Some(l) = &agreement.latency {
        writeln!(
            m,
            "- latency: p{} of successful results' durations, all agents merged, over the minutes whose start lies in base (HDR histograms, 3 significant digits, microseconds); target ≤ {}",
            l.percentile,
            probity_config::units::format_duration(l.max)
        )?;
    }
    writeln!(
        m,
        "- coverage_percent = 100 × (|base| − unknown) / |base|: the part of agreed time actually monitored, whatever the unknown policy; min_coverage {}%",
        agreement.min_coverage
    )?;
    writeln!(
        m,
        "- verdict, in this order: `insufficient_data` when agreed = 0 or coverage < min_coverage; else `breached` when availability < target{}; {}else `met`. `met` is true for met, false for breached, null for insufficient_data: a period without enough monitoring is never reported as met.",
        if agreement.latency.is_some() { " or latency (with samples) > its max" } else { "" },
        if agreement.latency.is_some() { "else `insufficient_data` when latency has no samples; " } else { "" }
    )?;
    writeln!(
        m,
        "- outages are listed when they overlap base; `counted_seconds` is the part inside base; `attributed_to` gives the part during which a dependency (from `depends_on`, directly or further down) was down too."
    )?;
    let f = &report.figures;
    let pct = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |x| format!("{x:.3}%"));
    writeln!(
        m,
        "\n**Verdict: {}** — availability {} against {}%, coverage {} (minimum {}%), unknown {:.3} s of {:.3} s of base.",
        report.verdict.as_str(),
        pct(f.availability_percent),
        agreement.availability,
        pct(f.coverage_percent),
        agreement.min_coverage,
        f.unknown_seconds,
        f.millis.base_ms as f64 / 1000.0
    )?;
    writeln!(
        m,
        "\nAll seconds figures are exact to the millisecond. `results.csv` holds every raw result the figures were computed from; `manifest.json` lists the sha256 of every other file (the public key included; not the signature, which signs the manifest) and is signed (Ed25519) in `manifest.sig` with the key in `public-key.txt`."
    )?;
    m.flush()
}
