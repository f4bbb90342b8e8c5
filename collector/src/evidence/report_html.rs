//! `report.html`: the agreement report for people — verdict, figures, a bar per local day,
//! the outage timeline, attribution, latency and completeness — in one self-contained
//! page (inline CSS and SVG, no external assets), written into the zip as it is produced.

use std::collections::BTreeMap;
use std::io::{self, Write};

use probity_config::time::rfc3339;

use super::outages_csv::reasons_text;
use crate::availability::{Completeness, DailyRow, share_of};
use crate::report::{AgreementReport, ResolvedAgreement};

/// Writes a self-contained, printable report (inline CSS and SVG, no network) as it goes:
/// one bar per local day, so `daily` (with `days` rows) is consumed, never collected.
pub(super) fn write(
    out: &mut dyn Write,
    inputs: &ResolvedAgreement<'_>,
    report: &AgreementReport,
    days: usize,
    daily: impl IntoIterator<Item = DailyRow>,
    completeness: &BTreeMap<(String, String), Completeness>,
) -> io::Result<()> {
    let f = &report.figures;
    let verdict = report.verdict;
    let ResolvedAgreement { agreement, service, ref period, .. } = *inputs;
    let mut h = io::BufWriter::with_capacity(64 * 1024, out);
    write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{id} {label}</title><style>
body{{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}}
h1{{font-size:1.5em;margin-bottom:.2em}} h2{{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}}
.warning{{border:2px solid #c62828;background:#fdecea;padding:.5em .8em}}
.verdict{{display:inline-block;padding:.3em .8em;border-radius:4px;color:#fff;font-weight:bold}}
.met{{background:#2e7d32}} .breached{{background:#c62828}} .insufficient_data{{background:#6d6d6d}}
table{{border-collapse:collapse;margin:.5em 0}} td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}
th{{background:#f3f3f3}} td:first-child,th:first-child{{text-align:left}}
@media print{{body{{margin:0}}}}
</style></head><body>
<h1>{kind} {id}: {service_name}</h1>
<p>Counterparty: {cp} &middot; period {label} ({from} to {to}{running}) &middot; calendar {cal}</p>
<p><span class="verdict {cls}">{verdict}</span> availability {avail} against a target of {target}% &middot; coverage {coverage} (minimum {min_coverage}%) &middot; unknown {unknown:.3} s</p>
{why}"#,
        id = esc(&report.agreement),
        label = esc(&period.label),
        kind = agreement.kind.as_str().to_uppercase(),
        service_name = esc(&service.name),
        cp = esc(&report.counterparty),
        from = rfc3339(period.from_ms),
        to = rfc3339(period.to_ms),
        running = if period.complete { "" } else { ", still running" },
        cal = esc(&report.calendar),
        cls = verdict.as_str(),
        verdict = match verdict {
            crate::availability::Verdict::Met => "MET",
            crate::availability::Verdict::Breached => "BREACHED",
            crate::availability::Verdict::InsufficientData => "INSUFFICIENT DATA",
        },
        avail = fmt_pct(f.availability_percent),
        target = agreement.availability,
        coverage = fmt_pct(f.coverage_percent),
        min_coverage = report.min_coverage_percent,
        unknown = f.unknown_seconds,
        why = if verdict == crate::availability::Verdict::InsufficientData {
            "<p><strong>Not enough of the agreed time was monitored (or a latency target has no samples) to say whether the agreement was met.</strong></p>\n"
        } else {
            ""
        },
    )?;
    // A retroactive window is never silent: named at the top, beside the verdict it shaped.
    let retroactive: Vec<&str> =
        report.maintenance_windows.iter().filter(|w| w.retroactive).map(|w| w.id.as_str()).collect();
    if !retroactive.is_empty() {
        write!(
            h,
            r#"<p class="warning"><strong>Retroactive maintenance:</strong> {} declared after {} began ({}); the time {} excludes was excluded after the fact. See Maintenance below.</p>"#,
            if retroactive.len() == 1 { "one window was" } else { "windows were" },
            if retroactive.len() == 1 { "it" } else { "they" },
            esc(&retroactive.join(", ")),
            if retroactive.len() == 1 { "it" } else { "they" },
        )?;
    }
    write!(h, "<h2>Figures</h2><table><tr><th>figure</th><th>seconds</th></tr>")?;
    for (name, v) in [
        ("service hours", f.service_hours_seconds),
        ("maintenance", f.maintenance_seconds),
        ("unknown", f.unknown_seconds),
        ("downtime", f.downtime_seconds),
        ("agreed service time", f.agreed_service_seconds),
    ] {
        write!(h, "<tr><td>{name}</td><td>{v:.3}</td></tr>")?;
    }
    if let (Some(b), Some(r)) = (f.error_budget_seconds, f.error_budget_remaining_seconds) {
        write!(h, "<tr><td>error budget</td><td>{b:.3}</td></tr><tr><td>budget remaining</td><td>{r:.3}</td></tr>")?;
    }
    h.write_all(b"</table>")?;
    write_maintenance(&mut h, report)?;

    // Daily availability against the target: one bar per local day.
    write!(h, "<h2>Daily availability</h2>")?;
    let (w, ht, pad) = (720.0_f64, 180.0_f64, 30.0_f64);
    let lo = (agreement.availability - (100.0 - agreement.availability) * 4.0).clamp(0.0, 99.0).floor();
    let y = |v: f64| pad + (ht - 2.0 * pad) * (1.0 - ((v - lo) / (100.0 - lo)).clamp(0.0, 1.0));
    let bw = if days == 0 { 0.0 } else { (w - 2.0 * pad) / days as f64 };
    write!(h, r#"<svg width="{w}" height="{ht}" viewBox="0 0 {w} {ht}" role="img" aria-label="daily availability">"#)?;
    for (i, d) in daily.into_iter().enumerate() {
        let x = pad + i as f64 * bw;
        match d.availability_percent {
            Some(a) => {
                let colour = if a >= agreement.availability { "#2e7d32" } else { "#c62828" };
                write!(
                    h,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: {a:.3}%</title></rect>"#,
                    y(a),
                    (bw - 1.0).max(0.5),
                    (ht - pad - y(a)).max(0.5),
                    d.date
                )?;
            }
            None => {
                write!(
                    h,
                    r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="2" fill="#bbb"><title>{}: no agreed time</title></rect>"##,
                    ht - pad - 2.0,
                    (bw - 1.0).max(0.5),
                    d.date
                )?;
            }
        }
    }
    let ty = y(agreement.availability);
    write!(
        h,
        r##"<line x1="{pad}" x2="{:.1}" y1="{ty:.1}" y2="{ty:.1}" stroke="#333" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="11">target {}%</text><text x="2" y="{:.1}" font-size="11">{lo}%</text><text x="2" y="{:.1}" font-size="11">100%</text></svg>"##,
        w - pad,
        w - pad - 90.0,
        ty - 4.0,
        agreement.availability,
        ht - pad,
        pad + 4.0
    )?;

    // Outage timeline over the period.
    write!(h, "<h2>Outages</h2>")?;
    write!(
        h,
        r##"<svg width="{w}" height="40" viewBox="0 0 {w} 40" role="img" aria-label="outage timeline"><rect x="{pad}" y="10" width="{:.1}" height="16" fill="#e8f5e9"/>"##,
        w - 2.0 * pad
    )?;
    for o in &f.outages {
        let x0 = pad + (w - 2.0 * pad) * share_of((period.from_ms, period.to_ms), o.start_ms);
        let x1 = pad + (w - 2.0 * pad) * share_of((period.from_ms, period.to_ms), o.end_ms);
        write!(
            h,
            r##"<rect x="{x0:.1}" y="10" width="{:.1}" height="16" fill="#c62828"><title>{} to {}</title></rect>"##,
            (x1 - x0).max(1.0),
            rfc3339(o.start_ms),
            rfc3339(o.end_ms)
        )?;
    }
    h.write_all(b"</svg>")?;
    if f.outages.is_empty() {
        h.write_all(b"<p>No outages overlapped agreed service time.</p>")?;
    } else {
        h.write_all(b"<table><tr><th>start</th><th>end</th><th>seconds</th><th>counted</th><th>probes</th><th>agents</th><th>reasons</th><th>attributed to</th></tr>")?;
        for o in &f.outages {
            let attributed = o
                .attributed_to
                .iter()
                .flatten()
                .map(|a| format!("{} ({:.0} s)", a.service, a.counted_seconds))
                .collect::<Vec<_>>()
                .join(", ");
            write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                rfc3339(o.start_ms),
                rfc3339(o.end_ms),
                o.duration_seconds,
                o.counted_seconds,
                esc(&o.probes.join(", ")),
                esc(&o.agents.join(", ")),
                esc(&reasons_text(&o.reasons)),
                esc(&attributed)
            )?;
        }
        h.write_all(b"</table>")?;
    }
    if !report.attributed_downtime.is_empty() {
        h.write_all(
            b"<h2>Downtime attributed to dependencies</h2><table><tr><th>dependency</th><th>seconds</th></tr>",
        )?;
        for a in &report.attributed_downtime {
            write!(h, "<tr><td>{}</td><td>{:.3}</td></tr>", esc(&a.service), a.counted_seconds)?;
        }
        h.write_all(b"</table>")?;
    }
    if let Some(l) = &report.latency {
        write!(
            h,
            "<h2>Latency</h2><table><tr><th>percentile</th><th>target</th><th>achieved</th><th>samples</th><th>met</th></tr><tr><td>p{}</td><td>{} ms</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
            l.percentile,
            l.target_ms,
            l.achieved_ms.map(|a| format!("{a:.3} ms")).unwrap_or_else(|| "no samples".into()),
            l.samples,
            match l.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "n/a",
            }
        )?;
    }
    h.write_all(
        b"<h2>Completeness</h2><table><tr><th>agent</th><th>probe</th><th>expected</th><th>received</th></tr>",
    )?;
    for ((agent, probe), c) in completeness {
        write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(agent),
            esc(probe),
            c.expected,
            c.received
        )?;
    }
    h.write_all(b"</table><p>How these figures were produced: see <code>methodology.md</code> in this bundle. Verify the bundle offline with <code>probity-collector evidence verify</code>.</p></body></html>\n")?;
    h.flush()
}

/// The maintenance windows that meet the period's service hours, with their provenance.
fn write_maintenance(h: &mut dyn Write, report: &AgreementReport) -> io::Result<()> {
    h.write_all(b"<h2>Maintenance</h2>")?;
    if report.maintenance_windows.is_empty() {
        return h.write_all(b"<p>No maintenance window met the period's service hours.</p>");
    }
    h.write_all(b"<table><tr><th>window</th><th>start</th><th>end</th><th>counted s</th><th>declared</th><th>by</th><th>retroactive</th><th>notice met</th><th>reason</th><th>ticket</th></tr>")?;
    for w in &report.maintenance_windows {
        write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&w.id),
            rfc3339(w.start_ms),
            rfc3339(w.end_ms),
            w.counted_seconds,
            rfc3339(w.declared_at_ms),
            esc(&w.declared_by),
            if w.retroactive { "<strong>RETROACTIVE</strong>" } else { "no" },
            match w.notice_met {
                None => "no rule",
                Some(true) => "yes",
                Some(false) => "<strong>no</strong>",
            },
            esc(&w.reason),
            esc(w.ticket.as_deref().unwrap_or(""))
        )?;
    }
    h.write_all(b"</table>")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fmt_pct(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}%")).unwrap_or_else(|| "n/a".into())
}
