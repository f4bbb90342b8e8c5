//! `methodology.md`: the calendar, maintenance, quorum, staleness and unknown rules that
//! produced the figures, generated from the configuration in force for the period.

use std::io::{self, Write};

use probity_config::Agreement;
use probity_config::time::rfc3339;

use crate::report::{AgreementReport, ResolvedAgreement};

/// Writes the rules that produced the figures, from the configuration in force, and the
/// verdict they led to with the coverage and unknown time beside it.
pub(super) fn write(out: &mut dyn Write, inputs: &ResolvedAgreement<'_>, report: &AgreementReport) -> io::Result<()> {
    let ResolvedAgreement { agreement, service, calendar, ref period, .. } = *inputs;
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
    write_maintenance(&mut m, agreement, report)?;
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
    writeln!(
        m,
        "- base = period ∩ service hours \\ maintenance (the maintenance that counts for this agreement, above)"
    )?;
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

/// The maintenance section: where windows come from, the notice rule, each window that
/// meets the period's service hours, and a warning naming every retroactive one (SPEC §11:
/// a retroactive window is never silent).
fn write_maintenance(m: &mut dyn Write, agreement: &Agreement, report: &AgreementReport) -> io::Result<()> {
    writeln!(m, "## Planned maintenance\n")?;
    writeln!(
        m,
        "Maintenance windows are stored records: declared in the configuration file (`declared_by` = `config`, `declared_at` = when the window first appeared in a loaded catalogue) or through the API (`declared_by` = the token's id, `declared_at` = when it was declared). A window declared after it began is *retroactive*. A cancelled window excludes nothing.\n"
    )?;
    match agreement.maintenance_notice {
        Some(notice) => writeln!(
            m,
            "**Notice rule:** this agreement sets `maintenance_notice` = {n}. Only the part of a window from max(start, declared_at + {n}) counts as maintenance; the rest is ordinary service time. A part a later change added (an extension) counts from when it was added + {n}. `notice_met` says whether the whole window was announced in time.\n",
            n = probity_config::units::format_duration(notice)
        )?,
        None => writeln!(
            m,
            "**Notice rule:** this agreement sets no `maintenance_notice`: every window counts whole, however late it was declared (`notice_met` is empty).\n"
        )?,
    }
    let windows = &report.maintenance_windows;
    if windows.is_empty() {
        return writeln!(m, "No maintenance window meets the period's service hours.\n");
    }
    let retroactive: Vec<&str> = windows.iter().filter(|w| w.retroactive).map(|w| w.id.as_str()).collect();
    if !retroactive.is_empty() {
        writeln!(
            m,
            "**Warning: {} retroactive window{} ({}): declared after {} began, so the time {} excludes was excluded after the fact.** Check each against its change record (`GET /api/v1/maintenance/{{id}}` shows who declared it and when).\n",
            retroactive.len(),
            if retroactive.len() == 1 { "" } else { "s" },
            retroactive.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", "),
            if retroactive.len() == 1 { "it" } else { "they" },
            if retroactive.len() == 1 { "it" } else { "they" },
        )?;
    }
    writeln!(m, "The windows that meet the period's service hours (also in `maintenance.csv`):\n")?;
    for w in windows {
        let notice = match w.notice_met {
            None => "",
            Some(true) => "; notice met",
            Some(false) => "; notice NOT met",
        };
        writeln!(
            m,
            "- `{}`: {} to {}, {:.3} s counted as maintenance; declared at {} by `{}`{}{}; {}{}",
            w.id,
            rfc3339(w.start_ms),
            rfc3339(w.end_ms),
            w.counted_seconds,
            rfc3339(w.declared_at_ms),
            w.declared_by,
            if w.retroactive { ", **RETROACTIVE**" } else { "" },
            notice,
            if w.reason.is_empty() { "(no reason given)" } else { &w.reason },
            w.ticket.as_deref().map(|t| format!(" (ticket {t})")).unwrap_or_default()
        )?;
    }
    writeln!(m)
}
