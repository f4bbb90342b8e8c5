//! `agents.csv`: the agents that measured the agreement's service, with the columns of
//! `GET /api/v1/agents` (SPEC §15), as known when the bundle was made: labels as
//! `key=value` joined by `;`, probes joined by `;`, an empty field where nothing is known.

use std::io::{self, Write};

use crate::agents::AgentRow;
use probity_config::time::rfc3339;

pub(super) const HEADER: [&str; 10] = [
    "id",
    "labels",
    "instance",
    "last_seen",
    "clock_offset_ms",
    "clock_ok",
    "version",
    "lost_results",
    "resets",
    "probes",
];

pub(super) fn write<'a>(out: &mut dyn Write, rows: impl Iterator<Item = &'a AgentRow>) -> io::Result<()> {
    let mut w = super::csv_writer(out);
    w.write_record(HEADER)?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in rows {
        let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        w.write_record([
            r.id.clone(),
            labels.join(";"),
            opt(r.instance.clone()),
            opt(r.last_seen_ms.map(rfc3339)),
            opt(r.clock_offset_ms.map(|o| o.to_string())),
            opt(r.clock_ok.map(|ok| ok.to_string())),
            opt(r.version.clone()),
            r.lost_results.to_string(),
            r.resets.to_string(),
            r.probes.join(";"),
        ])?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn agents_csv_has_the_agents_api_columns_and_leaves_the_unknown_empty() {
        let seen = AgentRow {
            id: "lon-1".into(),
            labels: BTreeMap::from([("site".into(), "london".into()), ("tier".into(), "a,b".into())]),
            instance: Some("9f2c".into()),
            last_seen_ms: Some(1_767_225_600_000),
            clock_offset_ms: Some(-2_500),
            clock_ok: Some(false),
            version: Some("0.1.0".into()),
            lost_results: 3,
            resets: 1,
            probes: vec!["web".into(), "dns".into()],
            embedded: false,
        };
        let never = AgentRow {
            id: "fra-1".into(),
            labels: BTreeMap::new(),
            instance: None,
            last_seen_ms: None,
            clock_offset_ms: None,
            clock_ok: None,
            version: None,
            lost_results: 0,
            resets: 0,
            probes: vec!["web".into()],
            embedded: false,
        };
        let mut out = Vec::new();
        write(&mut out, [&seen, &never].into_iter()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,labels,instance,last_seen,clock_offset_ms,clock_ok,version,lost_results,resets,probes\n\
             lon-1,\"site=london;tier=a,b\",9f2c,2026-01-01T00:00:00Z,-2500,false,0.1.0,3,1,web;dns\n\
             fra-1,,,,,,,0,0,web\n"
        );
    }
}
