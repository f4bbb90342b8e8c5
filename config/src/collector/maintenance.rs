//! `[[maintenance]]`: windows excluded from availability, each naming the services it
//! covers; `end` must be after `start` and every service must exist.

use std::collections::{HashMap, HashSet};

use super::{array_of_tables, read_id};
use crate::catalogue::*;
use crate::id::Id;
use crate::reader::{At, Fields, Reader, index};

/// A window as read, with its id's position and its service references still unresolved.
pub(super) struct RawMaintenance {
    window: Maintenance,
    id_pos: usize,
    services: Vec<At<String>>,
    services_path: String,
}

pub(super) fn read_maintenance(r: &mut Reader<'_>, top: &Fields<'_, '_>) -> Vec<RawMaintenance> {
    let mut maintenance: Vec<RawMaintenance> = Vec::new();
    for (i, item) in array_of_tables(r, top, "maintenance") {
        let path = index("maintenance", i);
        let Some(f) = r.fields(item, &path, &["id", "services", "start", "end", "reason"]) else { continue };
        let id = read_id(r, &f, "id");
        let svcs = match f.get("services") {
            Some(_) => r.opt_string_list(&f, "services"),
            None => {
                r.error(f.pos, f.key_path("services"), "is required but missing; list the services this window covers");
                None
            }
        };
        let start = r.required(&f, "start").and_then(|v| r.instant(v, &f.key_path("start")));
        let end = r.required(&f, "end").and_then(|v| r.instant(v, &f.key_path("end")));
        let reason = r.opt_string(&f, "reason").map(|s| s.value).unwrap_or_default();
        if let (Some(start), Some(end)) = (&start, &end)
            && end.value <= start.value
        {
            r.error(end.pos, f.key_path("end"), format!("{} is not after start {}", end.value, start.value));
            continue;
        }
        if let (Some(id), Some(svcs), Some(start), Some(end)) = (id, svcs, start, end) {
            if svcs.is_empty() {
                r.error(f.pos, f.key_path("services"), "is empty; list the services this window covers");
            }
            maintenance.push(RawMaintenance {
                window: Maintenance { id: id.value, services: Vec::new(), start: start.value, end: end.value, reason },
                id_pos: id.pos,
                services: svcs,
                services_path: f.key_path("services"),
            });
        }
    }
    maintenance
}

/// Checks window ids are unique and every service named exists.
pub(super) fn resolve_maintenance(
    r: &mut Reader<'_>,
    maintenance: Vec<RawMaintenance>,
    service_ids: &HashMap<String, usize>,
) -> Vec<Maintenance> {
    let mut final_maintenance = Vec::new();
    let mut maintenance_ids: HashSet<String> = HashSet::new();
    for RawMaintenance { window: mut m, id_pos, services: svcs, services_path: path } in maintenance {
        if !maintenance_ids.insert(m.id.to_string()) {
            r.error(id_pos, path.replace(".services", ".id"), format!("duplicate maintenance id \"{}\"", m.id));
        }
        for s in svcs {
            if service_ids.contains_key(&s.value) {
                m.services.push(Id::new(&s.value).expect("service ids are valid"));
            } else {
                r.error(s.pos, path.clone(), format!("unknown service \"{}\"", s.value));
            }
        }
        final_maintenance.push(m);
    }
    final_maintenance
}
