//! Building an agreement's evidence bundle for a period: the report, its daily breakdown,
//! outages, every raw result (streamed), completeness, methodology and a printable HTML
//! report, signed. Every figure comes from `report` / `availability`; this module only
//! lays them out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Seek, Write};

use ed25519_dalek::SigningKey;
use probity_config::wire::ErrorKind;
use probity_config::{Agreement, Catalogue};
use serde_json::json;

use super::bundle::{BundleError, BundleWriter};
use crate::availability::{self, DailyRow, FiguresSpec, rfc3339};
use crate::period::{self, Period, PeriodQuery};
use crate::report::{self, AgreementReport, ReportError, ReportSource, SourceError};

/// One raw result as `results.csv` lists it.
#[derive(Clone, Copy, Debug)]
pub struct RawResult<'a> {
    pub at: i64,
    pub agent: &'a str,
    pub probe: &'a str,
    pub ok: bool,
    pub duration_us: u64,
    pub error_kind: Option<ErrorKind>,
    pub status: Option<u16>,
}

/// What evidence needs from storage beyond what reports need.
pub trait EvidenceSource: ReportSource {
    /// Calls `f` for every stored raw result of `probe` with `at` in `[from_ms, to_ms)`,
    /// streaming (never collecting a period's results in memory).
    fn each_result(
        &self,
        probe: &str,
        from_ms: i64,
        to_ms: i64,
        f: &mut dyn FnMut(RawResult<'_>) -> io::Result<()>,
    ) -> Result<(), SourceError>;
    /// Results an agent lost in `[from_ms, to_ms)` (gaps in its `seq`), if known for the window.
    fn lost_results(&self, agent: &str, from_ms: i64, to_ms: i64) -> Result<Option<u64>, SourceError>;
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{0}")]
    Report(#[from] ReportError),
    #[error("{0}")]
    Bundle(#[from] BundleError),
    #[error("reading storage: {0}")]
    Source(SourceError),
}

/// Per (agent, probe) completeness, filled while results are streamed.
#[derive(Clone, Debug, Default)]
struct Completeness {
    received: u64,
    last_at: Option<i64>,
    largest_gap_ms: i64,
}

/// Writes the bundle for `agreement_id` over the period `query` into `out`; returns it
/// with the period the query resolved to.
pub fn export<W: Write + Seek>(
    out: W,
    source: &dyn EvidenceSource,
    catalogue: &Catalogue,
    agreement_id: &str,
    query: PeriodQuery<'_>,
    key: &SigningKey,
    now: i64,
) -> Result<(W, Period), EvidenceError> {
    let agreement =
        catalogue.agreement(agreement_id).ok_or_else(|| ReportError::UnknownAgreement(agreement_id.to_string()))?;
    let calendar = catalogue.calendar(&agreement.calendar).expect("validated reference");
    let period = period::resolve(query, Some(agreement.period), &calendar.timezone, now).map_err(ReportError::from)?;
    let (report, timeline) =
        report::agreement_report_with_timeline(source, catalogue, agreement_id, period.clone(), now)?;
    let service = catalogue.service(agreement.service.as_str()).expect("validated reference");
    let maintenance = report::maintenance_intervals(catalogue, service.id.as_str());
    let spec = FiguresSpec {
        calendar,
        maintenance: &maintenance,
        unknown: agreement.unknown,
        target_percent: Some(agreement.availability),
    };
    let daily = availability::daily_breakdown(&timeline, &spec, period.from_ms, period.to_ms);

    let mut w = BundleWriter::new(out);
    w.add_file("summary.json", |o| {
        serde_json::to_writer_pretty(&mut *o, &report).map_err(io::Error::other)?;
        o.write_all(b"\n")
    })?;
    w.add_file("daily.csv", |o| write_daily(o, &daily))?;
    w.add_file("outages.csv", |o| write_outages(o, &report))?;

    // One pass over the raw results feeds both results.csv and completeness.csv.
    let mut completeness: BTreeMap<(String, String), Completeness> = BTreeMap::new();
    for p in &service.probes {
        for a in &p.agents {
            completeness.insert((a.to_string(), p.id.to_string()), Completeness::default());
        }
    }
    let mut source_error = None;
    w.add_file("results.csv", |o| {
        let mut o = io::BufWriter::with_capacity(64 * 1024, o);
        o.write_all(b"at,agent,probe,ok,duration_us,error_kind,status\n")?;
        for p in &service.probes {
            let mut each = |r: RawResult<'_>| -> io::Result<()> {
                let c = completeness.entry((r.agent.to_string(), r.probe.to_string())).or_default();
                c.received += 1;
                let gap_from = c.last_at.unwrap_or(period.from_ms);
                c.largest_gap_ms = c.largest_gap_ms.max(r.at - gap_from);
                c.last_at = Some(r.at);
                writeln!(
                    o,
                    "{},{},{},{},{},{},{}",
                    rfc3339(r.at),
                    csv(r.agent),
                    csv(r.probe),
                    r.ok,
                    r.duration_us,
                    r.error_kind.map(|k| k.as_str()).unwrap_or(""),
                    r.status.map(|s| s.to_string()).unwrap_or_default()
                )
            };
            if let Err(e) = source.each_result(p.id.as_str(), period.from_ms, period.to_ms, &mut each) {
                source_error = Some(e);
                return Err(io::Error::other("storage read failed"));
            }
        }
        o.flush()
    })
    .map_err(|e| match source_error.take() {
        Some(s) => EvidenceError::Source(s),
        None => EvidenceError::from(e),
    })?;

    let mut lost = BTreeMap::new();
    for agent in service.probes.iter().flat_map(|p| p.agents.iter()) {
        if !lost.contains_key(agent.as_str()) {
            let n = source.lost_results(agent.as_str(), period.from_ms, period.to_ms).map_err(EvidenceError::Source)?;
            lost.insert(agent.to_string(), n);
        }
    }
    let intervals: BTreeMap<String, i64> =
        service.probes.iter().map(|p| (p.id.to_string(), p.interval.as_millis() as i64)).collect();
    w.add_file("completeness.csv", |o| write_completeness(o, &completeness, &lost, &intervals, &period))?;
    w.add_file("methodology.md", |o| o.write_all(methodology(catalogue, agreement, &period).as_bytes()))?;
    w.add_file("report.html", |o| {
        o.write_all(html_report(catalogue, agreement, &report, &daily, &completeness, &intervals, &period).as_bytes())
    })?;

    let header = json!({
        "agreement": terms(agreement),
        "period": report.period,
        "generated_at": rfc3339(now),
        "collector_version": env!("CARGO_PKG_VERSION"),
        "tzdb_version": probity_config::tzdb_version(),
    });
    let serde_json::Value::Object(header) = header else { unreachable!("json! object") };
    Ok((w.finish(header, key)?, period))
}

/// The agreement's terms as the manifest records them.
fn terms(a: &Agreement) -> serde_json::Value {
    json!({
        "id": a.id,
        "kind": a.kind,
        "service": a.service,
        "counterparty": a.counterparty,
        "calendar": a.calendar,
        "period": a.period,
        "availability_percent": a.availability,
        "latency": a.latency.as_ref().map(|l| json!({"percentile": l.percentile, "max_ms": l.max.as_micros() as f64 / 1000.0})),
        "unknown": a.unknown,
    })
}

/// Quotes a CSV field when it holds a separator, quote or line break.
fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

fn write_daily(o: &mut dyn Write, rows: &[DailyRow]) -> io::Result<()> {
    o.write_all(
        b"date,service_hours_seconds,maintenance_seconds,unknown_seconds,downtime_seconds,availability_percent\n",
    )?;
    for r in rows {
        writeln!(
            o,
            "{},{},{},{},{},{}",
            r.date,
            r.service_hours_seconds,
            r.maintenance_seconds,
            r.unknown_seconds,
            r.downtime_seconds,
            opt(r.availability_percent)
        )?;
    }
    Ok(())
}

fn reasons_text(reasons: &BTreeMap<ErrorKind, u64>) -> String {
    reasons.iter().map(|(k, n)| format!("{k}:{n}")).collect::<Vec<_>>().join(";")
}

fn write_outages(o: &mut dyn Write, report: &AgreementReport) -> io::Result<()> {
    o.write_all(b"start,end,seconds,counted_seconds,probes,agents,reasons,attributed_to\n")?;
    for out in &report.figures.outages {
        let attributed = out
            .attributed_to
            .iter()
            .flatten()
            .map(|a| format!("{}:{}", a.service, a.counted_seconds))
            .collect::<Vec<_>>()
            .join(";");
        writeln!(
            o,
            "{},{},{},{},{},{},{},{}",
            rfc3339(out.start_ms),
            rfc3339(out.end_ms),
            out.duration_seconds,
            out.counted_seconds,
            csv(&out.probes.join(";")),
            csv(&out.agents.join(";")),
            csv(&reasons_text(&out.reasons)),
            csv(&attributed)
        )?;
    }
    Ok(())
}

fn expected_results(period: &Period, interval_ms: i64) -> u64 {
    if interval_ms <= 0 { 0 } else { ((period.to_ms - period.from_ms).max(0) / interval_ms) as u64 }
}

fn write_completeness(
    o: &mut dyn Write,
    rows: &BTreeMap<(String, String), Completeness>,
    lost: &BTreeMap<String, Option<u64>>,
    intervals: &BTreeMap<String, i64>,
    period: &Period,
) -> io::Result<()> {
    o.write_all(b"agent,probe,expected,received,missing,lost_seq_agent,largest_gap_seconds\n")?;
    for ((agent, probe), c) in rows {
        let expected = expected_results(period, intervals.get(probe).copied().unwrap_or(0));
        let tail = c.last_at.map_or(period.to_ms - period.from_ms, |last| period.to_ms - last);
        let largest_gap = c.largest_gap_ms.max(tail);
        writeln!(
            o,
            "{},{},{},{},{},{},{}",
            csv(agent),
            csv(probe),
            expected,
            c.received,
            expected.saturating_sub(c.received),
            lost.get(agent).copied().flatten().map(|n| n.to_string()).unwrap_or_default(),
            largest_gap as f64 / 1000.0
        )?;
    }
    Ok(())
}

/// The rules that produced the figures, generated from the configuration in force.
pub fn methodology(catalogue: &Catalogue, agreement: &Agreement, period: &Period) -> String {
    let service = catalogue.service(agreement.service.as_str()).expect("validated reference");
    let calendar = catalogue.calendar(&agreement.calendar).expect("validated reference");
    let mut m = String::new();
    let _ = writeln!(m, "# Methodology: {} ({})\n", agreement.id, agreement.kind.as_str().to_uppercase());
    let _ = writeln!(
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
    );
    let _ = writeln!(m, "## Service hours\n");
    if calendar.id == probity_config::calendar::ALWAYS {
        let _ = writeln!(m, "Calendar `24x7`: every instant is in service hours (UTC).\n");
    } else {
        let _ = writeln!(
            m,
            "Calendar `{}` in time zone `{}` (IANA time-zone database {}), hours: {}.",
            calendar.id,
            calendar.timezone_name,
            probity_config::tzdb_version(),
            calendar.hours_text.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
        );
        let holidays: Vec<String> = calendar.holidays.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(
            m,
            "Holidays (no service hours on these local dates): {}.\n",
            if holidays.is_empty() { "none".to_string() } else { holidays.join(", ") }
        );
        let _ = writeln!(
            m,
            "An instant is in service hours when its local civil time in that zone falls in one of the ranges for its local weekday, on a date that is not a holiday. On a day when clocks go back the repeated local hour counts twice; on a day when they go forward the skipped hour does not exist. Daily rows are local days (23, 24 or 25 hours long).\n"
        );
    }
    let _ = writeln!(m, "## Planned maintenance\n");
    let windows: Vec<_> = catalogue
        .maintenance_of(service.id.as_str())
        .filter(|w| w.end.as_millisecond() > period.from_ms && w.start.as_millisecond() < period.to_ms)
        .collect();
    if windows.is_empty() {
        let _ = writeln!(m, "No maintenance windows overlap the period.\n");
    } else {
        let _ = writeln!(m, "Time inside these windows is excluded from agreed service time:\n");
        for w in windows {
            let _ = writeln!(
                m,
                "- `{}`: {} to {}: {}",
                w.id,
                w.start,
                w.end,
                if w.reason.is_empty() { "(no reason given)" } else { &w.reason }
            );
        }
        let _ = writeln!(m);
    }
    let _ = writeln!(m, "## Probes, agents and quorum\n");
    for p in &service.probes {
        let _ = writeln!(
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
        );
    }
    let _ = writeln!(
        m,
        "\nA probe is **down** at an instant when at least min(quorum, agents with a known view) of the agents with a known view see it down; **unknown** when no agent's view is known; **up** otherwise. The service is down when any probe is down, else unknown when any probe is unknown, else up. Down runs shorter than `min_outage` = {} count as up; the remaining down runs are outages.\n",
        probity_config::units::format_duration(service.min_outage)
    );
    let _ = writeln!(m, "## Figures\n");
    let policy = match agreement.unknown {
        probity_config::UnknownPolicy::Exclude => "`exclude`: unknown time is removed from agreed service time",
        probity_config::UnknownPolicy::Up => "`up`: unknown time counts as available",
        probity_config::UnknownPolicy::Down => "`down`: unknown time counts as downtime (but is not an outage)",
    };
    let _ = writeln!(m, "- base = period ∩ service hours \\ maintenance");
    let _ = writeln!(m, "- downtime = |base ∩ down|, unknown = |base ∩ unknown|; unknown policy {policy}");
    let _ =
        writeln!(m, "- availability_percent = 100 × (agreed − downtime) / agreed; target {}%", agreement.availability);
    let _ = writeln!(m, "- error_budget_seconds = agreed × (1 − target / 100); remaining = budget − downtime");
    if let Some(l) = &agreement.latency {
        let _ = writeln!(
            m,
            "- latency: p{} of successful results' durations, all agents merged, over the minutes whose start lies in base (HDR histograms, 3 significant digits, microseconds); target ≤ {}",
            l.percentile,
            probity_config::units::format_duration(l.max)
        );
    }
    let _ = writeln!(
        m,
        "- met: availability ≥ target{}",
        if agreement.latency.is_some() { " and latency ≤ its max" } else { "" }
    );
    let _ = writeln!(
        m,
        "- outages are listed when they overlap base; `counted_seconds` is the part inside base; `attributed_to` gives the part during which a dependency (from `depends_on`, directly or further down) was down too."
    );
    let _ = writeln!(
        m,
        "\nAll seconds figures are exact to the millisecond. `results.csv` holds every raw result the figures were computed from; `manifest.json` lists every file's sha256 and is signed (Ed25519) in `manifest.sig` with the key in `public-key.txt`."
    );
    m
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fmt_pct(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}%")).unwrap_or_else(|| "n/a".into())
}

/// A self-contained, printable report: inline CSS and SVG, no network.
#[allow(clippy::too_many_arguments)]
fn html_report(
    catalogue: &Catalogue,
    agreement: &Agreement,
    report: &AgreementReport,
    daily: &[DailyRow],
    completeness: &BTreeMap<(String, String), Completeness>,
    intervals: &BTreeMap<String, i64>,
    period: &Period,
) -> String {
    let f = &report.figures;
    let met = f.met.unwrap_or(true);
    let service = catalogue.service(agreement.service.as_str()).expect("validated reference");
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{id} {label}</title><style>
body{{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}}
h1{{font-size:1.5em;margin-bottom:.2em}} h2{{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}}
.verdict{{display:inline-block;padding:.3em .8em;border-radius:4px;color:#fff;font-weight:bold}}
.met{{background:#2e7d32}} .breached{{background:#c62828}}
table{{border-collapse:collapse;margin:.5em 0}} td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}
th{{background:#f3f3f3}} td:first-child,th:first-child{{text-align:left}}
@media print{{body{{margin:0}}}}
</style></head><body>
<h1>{kind} {id}: {service_name}</h1>
<p>Counterparty: {cp} &middot; period {label} ({from} to {to}{running}) &middot; calendar {cal}</p>
<p><span class="verdict {cls}">{verdict}</span> availability {avail} against a target of {target}%</p>
"#,
        id = esc(&report.agreement),
        label = esc(&period.label),
        kind = agreement.kind.as_str().to_uppercase(),
        service_name = esc(&service.name),
        cp = esc(&report.counterparty),
        from = rfc3339(period.from_ms),
        to = rfc3339(period.to_ms),
        running = if period.complete { "" } else { ", still running" },
        cal = esc(&report.calendar),
        cls = if met { "met" } else { "breached" },
        verdict = if met { "MET" } else { "BREACHED" },
        avail = fmt_pct(f.availability_percent),
        target = agreement.availability,
    );
    let _ = write!(h, "<h2>Figures</h2><table><tr><th>figure</th><th>seconds</th></tr>");
    for (name, v) in [
        ("service hours", f.service_hours_seconds),
        ("maintenance", f.maintenance_seconds),
        ("unknown", f.unknown_seconds),
        ("downtime", f.downtime_seconds),
        ("agreed service time", f.agreed_service_seconds),
    ] {
        let _ = write!(h, "<tr><td>{name}</td><td>{v:.3}</td></tr>");
    }
    if let (Some(b), Some(r)) = (f.error_budget_seconds, f.error_budget_remaining_seconds) {
        let _ =
            write!(h, "<tr><td>error budget</td><td>{b:.3}</td></tr><tr><td>budget remaining</td><td>{r:.3}</td></tr>");
    }
    h.push_str("</table>");

    // Daily availability against the target: one bar per local day.
    let _ = write!(h, "<h2>Daily availability</h2>");
    let (w, ht, pad) = (720.0_f64, 180.0_f64, 30.0_f64);
    let lo = (agreement.availability - (100.0 - agreement.availability) * 4.0).clamp(0.0, 99.0).floor();
    let y = |v: f64| pad + (ht - 2.0 * pad) * (1.0 - ((v - lo) / (100.0 - lo)).clamp(0.0, 1.0));
    let bw = if daily.is_empty() { 0.0 } else { (w - 2.0 * pad) / daily.len() as f64 };
    let _ = write!(
        h,
        r#"<svg width="{w}" height="{ht}" viewBox="0 0 {w} {ht}" role="img" aria-label="daily availability">"#
    );
    for (i, d) in daily.iter().enumerate() {
        let x = pad + i as f64 * bw;
        match d.availability_percent {
            Some(a) => {
                let colour = if a >= agreement.availability { "#2e7d32" } else { "#c62828" };
                let _ = write!(
                    h,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: {a:.3}%</title></rect>"#,
                    y(a),
                    (bw - 1.0).max(0.5),
                    (ht - pad - y(a)).max(0.5),
                    d.date
                );
            }
            None => {
                let _ = write!(
                    h,
                    r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="2" fill="#bbb"><title>{}: no agreed time</title></rect>"##,
                    ht - pad - 2.0,
                    (bw - 1.0).max(0.5),
                    d.date
                );
            }
        }
    }
    let ty = y(agreement.availability);
    let _ = write!(
        h,
        r##"<line x1="{pad}" x2="{:.1}" y1="{ty:.1}" y2="{ty:.1}" stroke="#333" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="11">target {}%</text><text x="2" y="{:.1}" font-size="11">{lo}%</text><text x="2" y="{:.1}" font-size="11">100%</text></svg>"##,
        w - pad,
        w - pad - 90.0,
        ty - 4.0,
        agreement.availability,
        ht - pad,
        pad + 4.0
    );

    // Outage timeline over the period.
    let _ = write!(h, "<h2>Outages</h2>");
    let span = (period.to_ms - period.from_ms).max(1) as f64;
    let _ = write!(
        h,
        r##"<svg width="{w}" height="40" viewBox="0 0 {w} 40" role="img" aria-label="outage timeline"><rect x="{pad}" y="10" width="{:.1}" height="16" fill="#e8f5e9"/>"##,
        w - 2.0 * pad
    );
    for o in &f.outages {
        let x0 = pad + (w - 2.0 * pad) * (((o.start_ms - period.from_ms) as f64) / span).clamp(0.0, 1.0);
        let x1 = pad + (w - 2.0 * pad) * (((o.end_ms - period.from_ms) as f64) / span).clamp(0.0, 1.0);
        let _ = write!(
            h,
            r##"<rect x="{x0:.1}" y="10" width="{:.1}" height="16" fill="#c62828"><title>{} to {}</title></rect>"##,
            (x1 - x0).max(1.0),
            rfc3339(o.start_ms),
            rfc3339(o.end_ms)
        );
    }
    h.push_str("</svg>");
    if f.outages.is_empty() {
        h.push_str("<p>No outages overlapped agreed service time.</p>");
    } else {
        h.push_str("<table><tr><th>start</th><th>end</th><th>seconds</th><th>counted</th><th>probes</th><th>agents</th><th>reasons</th><th>attributed to</th></tr>");
        for o in &f.outages {
            let attributed = o
                .attributed_to
                .iter()
                .flatten()
                .map(|a| format!("{} ({:.0} s)", a.service, a.counted_seconds))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = write!(
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
            );
        }
        h.push_str("</table>");
    }
    if !report.attributed_downtime.is_empty() {
        h.push_str("<h2>Downtime attributed to dependencies</h2><table><tr><th>dependency</th><th>seconds</th></tr>");
        for a in &report.attributed_downtime {
            let _ = write!(h, "<tr><td>{}</td><td>{:.3}</td></tr>", esc(&a.service), a.counted_seconds);
        }
        h.push_str("</table>");
    }
    if let Some(l) = &report.latency {
        let _ = write!(
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
        );
    }
    h.push_str("<h2>Completeness</h2><table><tr><th>agent</th><th>probe</th><th>expected</th><th>received</th></tr>");
    for ((agent, probe), c) in completeness {
        let expected = expected_results(period, intervals.get(probe).copied().unwrap_or(0));
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{expected}</td><td>{}</td></tr>",
            esc(agent),
            esc(probe),
            c.received
        );
    }
    h.push_str("</table><p>How these figures were produced: see <code>methodology.md</code> in this bundle. Verify the bundle offline with <code>probity-collector evidence verify</code>.</p></body></html>\n");
    h
}

impl EvidenceSource for crate::report::memory::MemorySource {
    fn each_result(
        &self,
        probe: &str,
        from_ms: i64,
        to_ms: i64,
        f: &mut dyn FnMut(RawResult<'_>) -> io::Result<()>,
    ) -> Result<(), SourceError> {
        for (agent, at, down, us) in self.results_of(probe) {
            if (from_ms..to_ms).contains(&at) {
                let r = RawResult {
                    at,
                    agent: &agent,
                    probe,
                    ok: down.is_none(),
                    duration_us: us,
                    error_kind: down,
                    status: None,
                };
                f(r)?;
            }
        }
        Ok(())
    }

    fn lost_results(&self, _agent: &str, _from_ms: i64, _to_ms: i64) -> Result<Option<u64>, SourceError> {
        Ok(Some(0))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use probity_config::parse_collector_config;

    use super::*;
    use crate::evidence::verify::verify_bundle;
    use crate::report::memory::MemorySource;

    const CONFIG: &str = r#"
[embedded_agent]
enabled = true
[calendars.london-all-day]
timezone = "Europe/London"
hours = ["mon-sun 00:00-24:00"]
[calendars.london-office]
timezone = "Europe/London"
hours = ["mon-fri 09:00-17:00"]
holidays = ["2026-10-30"]
[[maintenance]]
id = "chg-7"
services = ["psp"]
start = "2026-10-14T10:00:00Z"
end = "2026-10-14T11:00:00Z"
reason = "card network upgrade"
[[services]]
id = "psp"
name = "Payment processor, supplier"
  [[services.probes]]
  id = "psp-api"
  kind = "tcp"
  target = "127.0.0.1:443"
  interval = "1m"
  timeout = "10s"
[[agreements]]
id = "psp-uc"
kind = "uc"
service = "psp"
counterparty = "ACME, \"the supplier\""
calendar = "london-all-day"
availability = 99.5
latency = { percentile = 95, max = "250ms" }
[[agreements]]
id = "psp-office"
kind = "uc"
service = "psp"
calendar = "london-office"
availability = 99.9
"#;

    fn source(catalogue: &Catalogue) -> MemorySource {
        let mut src = MemorySource::new(catalogue);
        // October 2026, one result a minute; down 2026-10-13 12:00-13:30 UTC.
        let start = "2026-10-01T00:00:00+01:00".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let end = "2026-11-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let down_from = "2026-10-13T12:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let mut at = start;
        while at < end {
            let down = (down_from..down_from + 5_400_000).contains(&at);
            src.add(
                "psp-api",
                "local",
                at,
                down.then_some(ErrorKind::Connect),
                30_000 + (at / 60_000 % 7) as u64 * 1000,
            );
            at += 60_000;
        }
        src
    }

    fn entries(bytes: &[u8]) -> BTreeMap<String, String> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut out = BTreeMap::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let mut text = String::new();
            f.read_to_string(&mut text).unwrap();
            out.insert(f.name().unwrap().to_string(), text);
        }
        out
    }

    fn export_october(agreement: &str) -> (Vec<u8>, SigningKey) {
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let src = source(&c);
        let key = SigningKey::from_bytes(&[3; 32]);
        let now = "2026-11-22T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let q = PeriodQuery { period: Some("2026-10"), from: None, to: None, max_period: None };
        let (out, _) = export(Cursor::new(Vec::new()), &src, &c, agreement, q, &key, now).unwrap();
        (out.into_inner(), key)
    }

    #[test]
    fn an_exported_bundle_holds_every_file_and_verifies() {
        let (bytes, key) = export_october("psp-uc");
        verify_bundle(Cursor::new(&bytes), Some(&key.verifying_key())).unwrap();
        let files = entries(&bytes);
        for name in crate::evidence::CONTENT_FILES {
            assert!(files.contains_key(name), "{name} missing");
        }
        let manifest: serde_json::Value = serde_json::from_str(&files["manifest.json"]).unwrap();
        assert_eq!(manifest["agreement"]["id"], "psp-uc");
        assert_eq!(manifest["tzdb_version"], probity_config::tzdb_version());
        assert_eq!(manifest["period"]["label"], "2026-10");
        assert!(files["report.html"].contains("BREACHED") || files["report.html"].contains("MET"));
        assert!(
            !files["report.html"].contains("http://") && !files["report.html"].contains("https://"),
            "no external assets"
        );
        assert!(files["methodology.md"].contains("Europe/London"));
    }

    #[test]
    fn summary_json_is_the_agreement_report() {
        let (bytes, _) = export_october("psp-uc");
        let files = entries(&bytes);
        let summary: serde_json::Value = serde_json::from_str(&files["summary.json"]).unwrap();
        assert_eq!(summary["downtime_seconds"], 5400.0);
        assert_eq!(summary["agreement"], "psp-uc");
        assert_eq!(summary["outages"][0]["counted_seconds"], 5400.0);
    }

    #[test]
    fn daily_rows_sum_to_the_report_and_the_clocks_back_day_has_25_hours() {
        let (bytes, _) = export_october("psp-uc");
        let files = entries(&bytes);
        let summary: serde_json::Value = serde_json::from_str(&files["summary.json"]).unwrap();
        let mut sums = [0.0_f64; 4];
        let mut rows = 0;
        for line in files["daily.csv"].lines().skip(1) {
            let cols: Vec<&str> = line.split(',').collect();
            for (i, s) in sums.iter_mut().enumerate() {
                *s += cols[i + 1].parse::<f64>().unwrap();
            }
            if cols[0] == "2026-10-25" {
                assert_eq!(cols[1], "90000", "clocks go back in London on 2026-10-25");
            }
            rows += 1;
        }
        assert_eq!(rows, 31);
        for (i, key) in
            ["service_hours_seconds", "maintenance_seconds", "unknown_seconds", "downtime_seconds"].iter().enumerate()
        {
            assert!((sums[i] - summary[key].as_f64().unwrap()).abs() < 1e-6, "{key}: {} vs {}", sums[i], summary[key]);
        }
    }

    #[test]
    fn results_csv_lists_every_result_in_the_period_and_completeness_counts_them() {
        let (bytes, _) = export_october("psp-uc");
        let files = entries(&bytes);
        let results: Vec<&str> = files["results.csv"].lines().collect();
        assert_eq!(results[0], "at,agent,probe,ok,duration_us,error_kind,status");
        // 31 days + the extra hour of the clocks-back day, one result a minute.
        assert_eq!(results.len() - 1, 31 * 1440 + 60);
        assert!(results.iter().any(|l| l.contains(",false,") && l.ends_with(",connect,")));
        let completeness: Vec<&str> = files["completeness.csv"].lines().collect();
        assert_eq!(completeness[1], format!("local,psp-api,{n},{n},0,0,60", n = 31 * 1440 + 60));
    }

    #[test]
    fn maintenance_and_holidays_shape_the_office_hours_agreement() {
        let (bytes, _) = export_october("psp-office");
        let files = entries(&bytes);
        let summary: serde_json::Value = serde_json::from_str(&files["summary.json"]).unwrap();
        // 22 weekdays in October 2026 minus the 30th (a holiday), 8 hours each.
        assert_eq!(summary["service_hours_seconds"], 21.0 * 8.0 * 3600.0);
        assert_eq!(summary["maintenance_seconds"], 3600.0);
        // The outage 12:00-13:30 UTC is 13:00-14:30 local, inside office hours.
        assert_eq!(summary["downtime_seconds"], 5400.0);
        assert!(files["methodology.md"].contains("card network upgrade"));
        assert!(files["methodology.md"].contains("2026-10-30"));
    }
}
