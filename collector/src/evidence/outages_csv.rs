//! `outages.csv`: one row per outage of the agreement report, with its counted part, the
//! probes, agents and reasons behind it, and the dependencies it is attributed to.

use std::collections::BTreeMap;
use std::io::{self, Write};

use probity_config::time::rfc3339;
use probity_config::wire::ErrorKind;

use crate::availability::OutageReport;

pub(super) const HEADER: [&str; 8] =
    ["start", "end", "seconds", "counted_seconds", "probes", "agents", "reasons", "attributed_to"];

pub(super) fn write(out: &mut dyn Write, outages: &[OutageReport]) -> io::Result<()> {
    let mut w = super::csv_writer(out);
    w.write_record(HEADER)?;
    for o in outages {
        let attributed = o
            .attributed_to
            .iter()
            .flatten()
            .map(|a| format!("{}:{}", a.service, a.counted_seconds))
            .collect::<Vec<_>>()
            .join(";");
        w.write_record([
            rfc3339(o.start_ms),
            rfc3339(o.end_ms),
            o.duration_seconds.to_string(),
            o.counted_seconds.to_string(),
            o.probes.join(";"),
            o.agents.join(";"),
            reasons_text(&o.reasons),
            attributed,
        ])?;
    }
    w.flush()
}

/// `timeout:3;connect:1`: how many agent down runs of each kind an outage holds.
pub(super) fn reasons_text(reasons: &BTreeMap<ErrorKind, u64>) -> String {
    reasons.iter().map(|(k, n)| format!("{k}:{n}")).collect::<Vec<_>>().join(";")
}
