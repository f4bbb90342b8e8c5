//! `[[services]]`: a service and its `[[services.probes]]`, then the cross references
//! (duplicate service and probe ids, `depends_on`, dependency cycles).

use std::collections::HashMap;
use std::time::Duration;

use super::agents::Agents;
use super::probes::{RawProbe, read_probe, resolve_probe};
use super::{array_of_tables, read_id};
use crate::catalogue::*;
use crate::id::Id;
use crate::reader::{At, Fields, Reader, Value, index};

/// Service fields as read, with positions kept for the cross-reference pass.
pub(super) struct RawService {
    path: String,
    id: Option<At<Id>>,
    name: String,
    owner: String,
    depends_on: Vec<At<String>>,
    min_outage: Duration,
    probes: Vec<RawProbe>,
}

pub(super) fn read_services(r: &mut Reader<'_>, top: &Fields<'_, '_>) -> Vec<RawService> {
    let mut services: Vec<RawService> = Vec::new();
    for (i, item) in array_of_tables(r, top, "services") {
        let path = index("services", i);
        if let Some(s) = read_service(r, item, &path) {
            services.push(s);
        }
    }
    services
}

/// Checks ids, dependencies and each probe's agents; returns the services with the position
/// of each service id (which later tables' references are checked against).
pub(super) fn resolve_services(
    r: &mut Reader<'_>,
    services: Vec<RawService>,
    agents: &Agents,
) -> (Vec<Service>, HashMap<String, usize>) {
    let all_agent_ids: Vec<Id> = agents.list.iter().map(|a| a.id.clone()).collect();
    let mut service_ids: HashMap<String, usize> = HashMap::new();
    let mut probe_ids: HashMap<String, String> = HashMap::new();
    for s in &services {
        if let Some(id) = &s.id
            && service_ids.insert(id.value.to_string(), id.pos).is_some()
        {
            r.error(id.pos, format!("{}.id", s.path), format!("duplicate service id \"{}\"", id.value));
        }
        for p in &s.probes {
            if let Some(id) = &p.id
                && let Some(other) = probe_ids.insert(id.value.to_string(), p.path.clone())
            {
                r.error(
                    id.pos,
                    format!("{}.id", p.path),
                    format!(
                        "duplicate probe id \"{}\" (also at {other}); probe ids are unique across the whole catalogue",
                        id.value
                    ),
                );
            }
        }
    }

    let mut final_services = Vec::new();
    for s in services {
        for dep in &s.depends_on {
            if !service_ids.contains_key(&dep.value) {
                r.error(dep.pos, format!("{}.depends_on", s.path), format!("unknown service \"{}\"", dep.value));
            } else if s.id.as_ref().is_some_and(|id| id.value.as_str() == dep.value) {
                r.error(
                    dep.pos,
                    format!("{}.depends_on", s.path),
                    format!("service \"{}\" depends on itself", dep.value),
                );
            }
        }
        let mut probes = Vec::new();
        for p in s.probes {
            if let Some(probe) = resolve_probe(r, p, &all_agent_ids, &agents.pos) {
                probes.push(probe);
            }
        }
        if let Some(id) = s.id {
            final_services.push(Service {
                id: id.value,
                name: s.name,
                owner: s.owner,
                depends_on: s.depends_on.iter().filter_map(|d| Id::new(&d.value).ok()).collect(),
                min_outage: s.min_outage,
                probes,
            });
        }
    }
    check_dependency_cycles(r, &final_services, &service_ids);
    (final_services, service_ids)
}

fn read_service(r: &mut Reader<'_>, v: &Value<'_>, path: &str) -> Option<RawService> {
    let f = r.fields(v, path, &["id", "name", "owner", "depends_on", "min_outage", "probes"])?;
    let id = read_id(r, &f, "id");
    let name = r.opt_string(&f, "name").map(|s| s.value);
    let owner = r.opt_string(&f, "owner").map(|s| s.value).unwrap_or_default();
    let depends_on = r.opt_string_list(&f, "depends_on").unwrap_or_default();
    let min_outage = r.opt_duration(&f, "min_outage").map(|d| d.value).unwrap_or(Duration::ZERO);
    let mut probes = Vec::new();
    let items = array_of_tables(r, &f, "probes");
    if items.is_empty() && f.get("probes").is_none() {
        r.error(f.pos, f.key_path("probes"), "a service needs at least one probe; add a [[services.probes]] table");
    }
    for (i, item) in items {
        if let Some(p) = read_probe(r, item, &index(&f.key_path("probes"), i)) {
            probes.push(p);
        }
    }
    let name = name.unwrap_or_else(|| id.as_ref().map(|i| i.value.to_string()).unwrap_or_default());
    Some(RawService { path: path.to_string(), id, name, owner, depends_on, min_outage, probes })
}

fn check_dependency_cycles(r: &mut Reader<'_>, services: &[Service], service_pos: &HashMap<String, usize>) {
    // Depth-first search with colours; each cycle is reported once, at its first service.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let index_of: HashMap<&str, usize> = services.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut marks = vec![Mark::New; services.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        services: &[Service],
        index_of: &HashMap<&str, usize>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        marks[i] = Mark::Active;
        stack.push(i);
        for dep in &services[i].depends_on {
            let Some(&j) = index_of.get(dep.as_str()) else { continue };
            if j == i {
                continue; // self-dependency is reported separately
            }
            match marks[j] {
                Mark::New => visit(j, services, index_of, marks, stack, cycles),
                Mark::Active => {
                    let from = stack.iter().position(|&k| k == j).expect("active node is on the stack");
                    cycles.push(stack[from..].to_vec());
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
    }
    let mut cycles = Vec::new();
    for i in 0..services.len() {
        if marks[i] == Mark::New {
            visit(i, services, &index_of, &mut marks, &mut stack, &mut cycles);
        }
    }
    for cycle in cycles {
        let names: Vec<&str> = cycle.iter().chain(cycle.first()).map(|&i| services[i].id.as_str()).collect();
        let first = &services[cycle[0]];
        let pos = service_pos.get(first.id.as_str()).copied().unwrap_or(0);
        let path = format!("services[{}].depends_on", cycle[0]);
        r.error(pos, path, format!("dependency cycle: {}", names.join(" -> ")));
    }
}
