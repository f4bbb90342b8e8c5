//! `[[agents]]`: ids, token hashes and labels, checked for duplicate ids and shared
//! tokens; the embedded agent joins the list here when it is enabled.

use std::collections::{BTreeMap, HashMap};

use super::{array_of_tables, read_id, token_hash};
use crate::catalogue::*;
use crate::id::Id;
use crate::reader::{Fields, Reader, index, join};

/// Every agent probes may be assigned to, with the position of each id for error messages.
pub(super) struct Agents {
    pub list: Vec<Agent>,
    pub pos: HashMap<String, usize>,
}

pub(super) fn read_agents(r: &mut Reader<'_>, top: &Fields<'_, '_>, embedded: Option<&EmbeddedAgent>) -> Agents {
    let mut agents: Vec<Agent> = Vec::new();
    let mut agent_pos: HashMap<String, usize> = HashMap::new();
    for (i, item) in array_of_tables(r, top, "agents") {
        let path = index("agents", i);
        let Some(f) = r.fields(item, &path, &["id", "token_sha256", "labels"]) else { continue };
        let id = read_id(r, &f, "id");
        let token = r.req_string(&f, "token_sha256").and_then(|t| token_hash(r, &f.key_path("token_sha256"), t));
        let mut labels = BTreeMap::new();
        if let Some(v) = f.get("labels")
            && let Some(map) = r.open_map(v, &f.key_path("labels"))
        {
            for (k, _, v) in map.entries() {
                if let Some(s) = r.string(v, &join(&map.path, k)) {
                    labels.insert(k.to_string(), s.value);
                }
            }
        }
        // An agent whose token is wrong is still an agent: references to it must not cascade
        // into "unknown agent" errors (the file is refused anyway).
        if let Some(id) = id {
            if let Some(first) = agent_pos.get(id.value.as_str()) {
                let line = r.diags.line_of(*first);
                r.error(
                    id.pos,
                    f.key_path("id"),
                    format!("duplicate agent id \"{}\" (first defined on line {line})", id.value),
                );
                continue;
            }
            agent_pos.insert(id.value.to_string(), id.pos);
            agents.push(Agent { id: id.value, token_sha256: token, labels, embedded: false });
        }
    }
    // Duplicate tokens would make agents indistinguishable.
    {
        let mut seen: HashMap<TokenHash, &Id> = HashMap::new();
        let mut dupes = Vec::new();
        for a in &agents {
            if let Some(h) = a.token_sha256
                && let Some(other) = seen.insert(h, &a.id)
            {
                dupes.push((a.id.clone(), other.clone()));
            }
        }
        for (a, other) in dupes {
            let pos = agent_pos[a.as_str()];
            r.error(
                pos,
                "agents",
                format!("agent \"{a}\" has the same token_sha256 as agent \"{other}\"; give each agent its own token"),
            );
        }
    }
    if let Some(embedded) = embedded
        && embedded.enabled
    {
        if let Some(pos) = agent_pos.get(embedded.id.as_str()) {
            r.error(
                *pos,
                "embedded_agent.id",
                format!("\"{}\" is also an [[agents]] id; give the embedded agent its own id", embedded.id),
            );
        } else {
            agents.push(Agent { id: embedded.id.clone(), token_sha256: None, labels: BTreeMap::new(), embedded: true });
        }
    }
    Agents { list: agents, pos: agent_pos }
}
