//! `completeness.csv`: what was measured against what was scheduled, at three levels, one
//! `row` kind each so no figure repeats on rows it does not belong to:
//!
//! - `probe`: per (agent, probe), the results expected over the period at the probe's
//!   interval, those received, the shortfall and the largest stretch without a result
//!   (`availability::ResultTally` counts them while `results.csv` streams);
//! - `agent`: per agent, those figures summed over its probes, its lost results (seq gaps,
//!   over every instance) and its resets (instances after the first, SPEC §15);
//! - `instance`: per agent instance (a spool; `legacy` for requests without one), its lost
//!   results. Seq gaps carry no time, so lost results and resets are over the agent's whole
//!   history, not the period.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::export::InstanceLoss;
use crate::availability::Completeness;

pub(super) const HEADER: [&str; 10] = [
    "row",
    "agent",
    "instance",
    "probe",
    "expected",
    "received",
    "missing",
    "largest_gap_seconds",
    "lost_seq",
    "resets",
];

/// The name an instance row gives a request without `instance`.
pub(super) const LEGACY: &str = "legacy";

pub(super) fn write(
    out: &mut dyn Write,
    rows: &BTreeMap<(String, String), Completeness>,
    instances: &BTreeMap<String, Vec<InstanceLoss>>,
) -> io::Result<()> {
    let mut w = super::csv_writer(out);
    w.write_record(HEADER)?;
    let mut agents: Vec<&str> = rows.keys().map(|(a, _)| a.as_str()).collect();
    agents.dedup();
    for agent in agents {
        let probes: Vec<(&str, &Completeness)> =
            rows.iter().filter(|((a, _), _)| a == agent).map(|((_, p), c)| (p.as_str(), c)).collect();
        for (probe, c) in &probes {
            let (expected, received, missing) = (c.expected.to_string(), c.received.to_string(), c.missing.to_string());
            let gap = c.largest_gap_seconds.to_string();
            w.write_record(["probe", agent, "", probe, &expected, &received, &missing, &gap, "", ""])?;
        }
        let sum = |f: fn(&Completeness) -> u64| probes.iter().map(|(_, c)| f(c)).sum::<u64>().to_string();
        let seen = instances.get(agent).map_or(&[][..], Vec::as_slice);
        // An agent never heard from has no seq state: its lost results and resets are unknown.
        let (lost, resets) = if seen.is_empty() {
            (String::new(), String::new())
        } else {
            (seen.iter().map(|i| i.lost).sum::<u64>().to_string(), (seen.len() - 1).to_string())
        };
        let (expected, received, missing) = (sum(|c| c.expected), sum(|c| c.received), sum(|c| c.missing));
        w.write_record(["agent", agent, "", "", &expected, &received, &missing, "", &lost, &resets])?;
        for i in seen {
            let name = i.instance.as_deref().unwrap_or(LEGACY);
            w.write_record(["instance", agent, name, "", "", "", "", "", &i.lost.to_string(), ""])?;
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(expected: u64, received: u64) -> Completeness {
        Completeness {
            expected,
            received,
            missing: expected.saturating_sub(received),
            largest_gap_ms: 60_000,
            largest_gap_seconds: 60.0,
        }
    }

    #[test]
    fn each_figure_sits_on_the_row_it_belongs_to_once() {
        let rows = BTreeMap::from([
            (("a1".to_string(), "p1".to_string()), row(100, 90)),
            (("a1".to_string(), "p2".to_string()), row(100, 100)),
            (("a2".to_string(), "p1".to_string()), row(100, 0)),
        ]);
        let instances = BTreeMap::from([(
            "a1".to_string(),
            vec![InstanceLoss { instance: None, lost: 2 }, InstanceLoss { instance: Some("i-2".into()), lost: 5 }],
        )]);
        let mut out = Vec::new();
        write(&mut out, &rows, &instances).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "row,agent,instance,probe,expected,received,missing,largest_gap_seconds,lost_seq,resets\n\
             probe,a1,,p1,100,90,10,60,,\n\
             probe,a1,,p2,100,100,0,60,,\n\
             agent,a1,,,200,190,10,,7,1\n\
             instance,a1,legacy,,,,,,2,\n\
             instance,a1,i-2,,,,,,5,\n\
             probe,a2,,p1,100,0,100,60,,\n\
             agent,a2,,,100,0,100,,,\n"
        );
    }
}
