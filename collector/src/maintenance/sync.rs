//! The configuration file's `[[maintenance]]` tables as records (SPEC §11): at start and on
//! every reload, a window the file holds for the first time is declared by `config` at that
//! moment (so `declared_at` is when it first appeared in a loaded catalogue, and survives
//! restarts because it is stored); a window the file changed gets a `changed` record; a
//! window the file no longer holds is cancelled by `config`, with a note saying so (it is
//! kept, like every cancelled window, and excludes nothing from then on); a window the file
//! holds again after dropping it is `restored`.
//!
//! A window cancelled through the API stays cancelled even while the file still holds it,
//! and a file window whose id belongs to a window declared through the API is ignored with
//! a warning: the record already told readers what that id means.

use probity_config::Catalogue;
use probity_config::time::rfc3339;

use super::{Action, CONFIG, Change, MaintenanceError, Window};
use crate::store::Store;

/// What a sync did, by window id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    pub declared: Vec<String>,
    pub changed: Vec<String>,
    pub cancelled: Vec<String>,
    pub restored: Vec<String>,
    /// File windows ignored because the id is an API window's.
    pub conflicts: Vec<String>,
}

impl Synced {
    pub fn is_empty(&self) -> bool {
        self.declared.is_empty() && self.changed.is_empty() && self.cancelled.is_empty() && self.restored.is_empty()
    }
}

/// Brings the records in line with the catalogue's `[[maintenance]]` tables at `now_ms`.
pub fn sync(store: &Store, catalogue: &Catalogue, now_ms: i64) -> Result<Synced, MaintenanceError> {
    let stored = super::list(store)?;
    let mut out = Synced::default();
    for m in &catalogue.maintenance {
        let change = declaration(m, now_ms);
        let Some(window) = stored.iter().find(|w| w.id == m.id.as_str()) else {
            let span = (m.start.as_millisecond(), m.end.as_millisecond());
            super::mark_touched(store, catalogue, &change.services, span, now_ms)?;
            store_change(store, m.id.as_str(), &change)?;
            out.declared.push(m.id.to_string());
            continue;
        };
        if window.declared_by != CONFIG {
            out.conflicts.push(m.id.to_string());
            continue;
        }
        let same = |c: &Change| {
            (&c.services, &c.start, &c.end, &c.reason) == (&change.services, &change.start, &change.end, &change.reason)
        };
        let action = match &window.cancelled {
            Some((_, by)) if by == CONFIG => Action::Restored,
            Some(_) => continue,
            None if same(window.history.last().expect("a window has changes")) => continue,
            None => Action::Changed,
        };
        let note = match action {
            Action::Restored => "the configuration file holds the window again",
            _ => "changed in the configuration file",
        };
        let next = Change { change: window.history.len() as u32 + 1, action, note: Some(note.into()), ..change };
        let services = services_of_both(&window.services, &next.services);
        super::mark_touched(store, catalogue, &services, touched_span(window, &next), now_ms)?;
        store_change(store, &window.id, &next)?;
        if action == Action::Restored {
            out.restored.push(window.id.clone())
        } else {
            out.changed.push(window.id.clone())
        }
    }
    for window in stored.iter().filter(|w| w.declared_by == CONFIG && w.cancelled.is_none()) {
        if catalogue.maintenance.iter().any(|m| m.id.as_str() == window.id) {
            continue;
        }
        let mut next = window.next(Action::Cancelled, CONFIG, now_ms);
        next.note = Some("removed from the configuration file".into());
        super::mark_touched(store, catalogue, &window.services, window.span(), now_ms)?;
        store_change(store, &window.id, &next)?;
        out.cancelled.push(window.id.clone());
    }
    Ok(out)
}

/// A file window's first change, as if it first appeared at `now_ms`.
pub(super) fn declaration(m: &probity_config::Maintenance, now_ms: i64) -> Change {
    Change {
        change: 1,
        action: Action::Declared,
        at: rfc3339(now_ms),
        by: CONFIG.to_string(),
        note: Some("from the configuration file".into()),
        services: m.services.iter().map(|s| s.to_string()).collect(),
        start: rfc3339(m.start.as_millisecond()),
        end: rfc3339(m.end.as_millisecond()),
        reason: m.reason.clone(),
        ticket: None,
    }
}

fn store_change(store: &Store, id: &str, change: &Change) -> Result<(), MaintenanceError> {
    store.append_maintenance_change(id, change.change, &super::encode(change)).map_err(MaintenanceError::from)
}

/// The instants a window's old versions and its new one cover together.
fn touched_span(window: &Window, next: &Change) -> (i64, i64) {
    let (a, b) = window.span();
    let parse = |t: &str| probity_config::time::parse_instant(t).map_or(a, |t| t.as_millisecond());
    (a.min(parse(&next.start)), b.max(parse(&next.end)))
}

fn services_of_both(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = a.to_vec();
    out.extend(b.iter().filter(|s| !a.contains(s)).cloned());
    out
}

#[cfg(test)]
mod tests {
    use probity_config::parse_collector_config;
    use probity_config::time::parse_instant;

    use super::*;
    use crate::store::StoreOptions;

    const BASE: &str = r#"
[[agents]]
id = "a1"
token_sha256 = "d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a"
[[services]]
id = "shop"
  [[services.probes]]
  id = "shop-tcp"
  kind = "tcp"
  target = "127.0.0.1:80"
  interval = "10s"
  timeout = "5s"
"#;

    fn with_window(end: &str) -> Catalogue {
        let text = format!(
            "{BASE}\n[[maintenance]]\nid = \"chg-1\"\nservices = [\"shop\"]\nstart = \"2026-11-10T22:00:00Z\"\nend = \"{end}\"\nreason = \"db\"\n"
        );
        parse_collector_config("t.toml", &text).unwrap().catalogue
    }

    fn ms(s: &str) -> i64 {
        parse_instant(s).unwrap().as_millisecond()
    }

    #[test]
    fn a_file_window_is_declared_once_when_first_loaded_changed_dropped_and_restored_with_a_trace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let first = ms("2026-11-01T00:00:00Z");
        let c = with_window("2026-11-11T02:00:00Z");
        assert_eq!(sync(&store, &c, first).unwrap().declared, vec!["chg-1"]);
        // Loading the same file again (a restart, a SIGHUP) changes nothing: declared_at stays.
        assert!(sync(&store, &c, first + 86_400_000).unwrap().is_empty());
        let w = super::super::get(&store, "chg-1").unwrap().unwrap();
        assert_eq!((w.declared_by.as_str(), w.declared_at_ms, w.retroactive()), ("config", first, false));

        let changed = sync(&store, &with_window("2026-11-11T03:00:00Z"), first + 2).unwrap();
        assert_eq!(changed.changed, vec!["chg-1"]);
        let w = super::super::get(&store, "chg-1").unwrap().unwrap();
        assert_eq!(w.span(), (ms("2026-11-10T22:00:00Z"), ms("2026-11-11T03:00:00Z")));

        let without = parse_collector_config("t.toml", BASE).unwrap().catalogue;
        assert_eq!(sync(&store, &without, first + 3).unwrap().cancelled, vec!["chg-1"]);
        let w = super::super::get(&store, "chg-1").unwrap().unwrap();
        assert_eq!(w.cancelled, Some((first + 3, "config".to_string())));
        assert_eq!(w.history.last().unwrap().note.as_deref(), Some("removed from the configuration file"));
        assert!(sync(&store, &without, first + 4).unwrap().is_empty(), "cancelled once");

        assert_eq!(sync(&store, &c, first + 5).unwrap().restored, vec!["chg-1"]);
        let w = super::super::get(&store, "chg-1").unwrap().unwrap();
        assert_eq!((w.cancelled.is_none(), w.declared_at_ms, w.history.len()), (true, first, 4));
    }

    #[test]
    fn a_file_window_with_the_id_of_an_api_window_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let c = with_window("2026-11-11T02:00:00Z");
        let api = super::super::NewWindow {
            id: Some("chg-1".into()),
            services: vec!["shop".into()],
            start: "2026-11-12T00:00:00Z".into(),
            end: "2026-11-12T01:00:00Z".into(),
            reason: "other".into(),
            ticket: None,
        };
        super::super::declare(&store, &c, &api, "ops", 0).unwrap();
        let synced = sync(&store, &c, 1).unwrap();
        assert_eq!((synced.is_empty(), synced.conflicts), (true, vec!["chg-1".to_string()]));
        assert_eq!(super::super::get(&store, "chg-1").unwrap().unwrap().reason, "other");
    }
}
