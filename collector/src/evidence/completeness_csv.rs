//! `completeness.csv`: per (agent, probe), the results expected over the period at the
//! probe's interval, those received, the shortfall, the agent's lost results (seq gaps)
//! and the largest stretch without a result. `availability::ResultTally` counts them
//! while `results.csv` streams; this file only writes them out.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::availability::Completeness;

pub(super) const HEADER: [&str; 7] =
    ["agent", "probe", "expected", "received", "missing", "lost_seq_agent", "largest_gap_seconds"];

pub(super) fn write(
    out: &mut dyn Write,
    rows: &BTreeMap<(String, String), Completeness>,
    lost: &BTreeMap<String, Option<u64>>,
) -> io::Result<()> {
    let mut w = super::csv_writer(out);
    w.write_record(HEADER)?;
    for ((agent, probe), c) in rows {
        w.write_record([
            agent.clone(),
            probe.clone(),
            c.expected.to_string(),
            c.received.to_string(),
            c.missing.to_string(),
            lost.get(agent).copied().flatten().map(|n| n.to_string()).unwrap_or_default(),
            c.largest_gap_seconds.to_string(),
        ])?;
    }
    w.flush()
}
