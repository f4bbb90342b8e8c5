//! The agents as the collector knows them (SPEC §15 `GET /api/v1/agents`, evidence
//! `agents.csv`): the catalogue's agents joined with what their latest request said
//! (last seen, clock offset, version) and their instances' seq state (current instance,
//! resets, lost results). Pure: the caller reads the store and the in-memory presence
//! and passes them in.

use std::collections::BTreeMap;
use std::time::Duration;

use probity_config::Catalogue;

use crate::metrics::AgentSeen;
use crate::store::AgentInstances;

/// One agent's row; `None` where nothing has been measured yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRow {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    /// The agent instance (its spool) seen last; `None` before the first result, or for
    /// an agent that predates instances.
    pub instance: Option<String>,
    pub last_seen_ms: Option<i64>,
    /// Agent clock minus collector clock, as the agent last estimated it.
    pub clock_offset_ms: Option<i64>,
    /// |offset| ≤ `[server] max_clock_offset`; `None` while no offset is known.
    pub clock_ok: Option<bool>,
    pub version: Option<String>,
    /// Seq gaps over every instance: results the agent made that never arrived.
    pub lost_results: u64,
    /// Agent resets: instances after the first (a new or deleted spool).
    pub resets: u64,
    /// Probes assigned to the agent, in catalogue order.
    pub probes: Vec<String>,
    pub embedded: bool,
}

/// Every agent of the catalogue, in catalogue order.
pub fn agent_rows(
    catalogue: &Catalogue,
    seen: &BTreeMap<String, AgentSeen>,
    instances: &BTreeMap<String, AgentInstances>,
    max_clock_offset: Duration,
) -> Vec<AgentRow> {
    let max_ms = u64::try_from(max_clock_offset.as_millis()).unwrap_or(u64::MAX);
    catalogue
        .agents
        .iter()
        .map(|a| {
            let id = a.id.as_str();
            let seen = seen.get(id);
            let clock_offset_ms = seen.and_then(|s| s.clock_offset_ms);
            let instances = instances.get(id);
            AgentRow {
                id: id.to_string(),
                labels: a.labels.clone(),
                instance: instances.and_then(|i| i.current()).map(str::to_string),
                last_seen_ms: seen.map(|s| s.last_seen_ms),
                clock_offset_ms,
                clock_ok: clock_offset_ms.map(|o| o.unsigned_abs() <= max_ms),
                version: seen.and_then(|s| s.version.clone()),
                lost_results: instances.map_or(0, AgentInstances::lost),
                resets: instances.map_or(0, AgentInstances::resets),
                probes: catalogue.assignment(id).iter().map(|p| p.id.to_string()).collect(),
                embedded: a.embedded,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SeqSummary;

    fn catalogue() -> Catalogue {
        let text = "[[agents]]\nid = \"lon-1\"\ntoken_sha256 = \"d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a\"\nlabels = { site = \"london\" }\n\n[[agents]]\nid = \"fra-1\"\ntoken_sha256 = \"e55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a\"\n\n[[services]]\nid = \"web\"\nname = \"Web\"\n\n  [[services.probes]]\n  id = \"web-tcp\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:80\"\n  agents = [\"lon-1\"]\n";
        probity_config::parse_collector_config("c.toml", text).unwrap().catalogue
    }

    #[test]
    fn every_agent_is_listed_with_what_is_known_and_nothing_more() {
        let seen = BTreeMap::from([(
            "lon-1".to_string(),
            AgentSeen { last_seen_ms: 1_000, clock_offset_ms: Some(-2_500), version: Some("0.1.0".into()) },
        )]);
        let seq = |lost| SeqSummary { highest: 9, received: 9 - lost, lost, largest_gap: lost };
        let lon = AgentInstances {
            agent: "lon-1".into(),
            instances: vec![(Some("9f2c".into()), seq(2)), (Some("77ab".into()), seq(1))],
        };
        let seqs = BTreeMap::from([("lon-1".to_string(), lon)]);
        let rows = agent_rows(&catalogue(), &seen, &seqs, Duration::from_secs(2));
        assert_eq!(rows.len(), 2);
        let lon = &rows[0];
        assert_eq!((lon.id.as_str(), lon.labels["site"].as_str()), ("lon-1", "london"));
        assert_eq!((lon.last_seen_ms, lon.clock_offset_ms, lon.clock_ok), (Some(1_000), Some(-2_500), Some(false)));
        assert_eq!((lon.lost_results, lon.probes.as_slice()), (3, ["web-tcp".to_string()].as_slice()));
        assert_eq!((lon.instance.as_deref(), lon.resets), (Some("77ab"), 1), "the instance seen last, one reset");
        let fra = &rows[1];
        assert_eq!(
            (fra.last_seen_ms, fra.clock_offset_ms, fra.clock_ok, fra.version.as_deref()),
            (None, None, None, None)
        );
        assert_eq!((fra.instance.as_deref(), fra.lost_results, fra.resets, fra.probes.len()), (None, 0, 0, 0));
        let ok = agent_rows(&catalogue(), &seen, &seqs, Duration::from_millis(2_500));
        assert_eq!(ok[0].clock_ok, Some(true), "the limit itself is ok");
    }
}
