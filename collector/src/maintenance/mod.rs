//! Maintenance windows as records with provenance (SPEC §11). A window is what someone
//! told us: declared through the API (by a token's id) or in the configuration file (by
//! `config`, when it first appeared in a loaded catalogue), then perhaps given a new end or
//! cancelled. Each of those is one change, stored once (`store/maintenance.rs`) and never
//! rewritten; a window is the fold of its changes, and its `history` is the list of them.
//!
//! Which part of a window counts for an agreement (the notice rule) is arithmetic and lives
//! in `availability::window_figures`; this module only says what was declared, when and by
//! whom. `sync.rs` turns the configuration file's `[[maintenance]]` tables into records;
//! `client.rs` is `probity-collector maintenance …`, a thin client of the API.

pub mod client;
pub mod sync;

use std::collections::BTreeMap;

use probity_config::time::{parse_instant, rfc3339};
use probity_config::{Catalogue, Id};
use serde::{Deserialize, Serialize};

use crate::availability::{self, Declaration, WindowInput};
use crate::store::{Store, StoreError};

/// `declared_by` / `by` of what the configuration file declared.
pub const CONFIG: &str = "config";

/// The longest window probity takes: longer is a typo, or something that is not maintenance.
pub const MAX_WINDOW_MS: i64 = 366 * 86_400_000;

/// What one change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The window's first record.
    Declared,
    /// A new end (ended early or extended).
    EndChanged,
    /// The configuration file changed the window (services, start, end or reason).
    Changed,
    Cancelled,
    /// The configuration file holds a window again that it had dropped.
    Restored,
}

/// One stored change: the window as it stood after it, and who changed it when. The
/// stored JSON is also the `history` entry the API shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    /// 1 for the declaration, then 2, 3, …
    pub change: u32,
    pub action: Action,
    /// When the change was made (RFC 3339).
    pub at: String,
    /// The token id, or `config`.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub services: Vec<String>,
    pub start: String,
    pub end: String,
    pub reason: String,
    #[serde(default)]
    pub ticket: Option<String>,
}

/// A window as its changes give it.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub id: String,
    pub services: Vec<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
    pub ticket: Option<String>,
    pub declared_at_ms: i64,
    pub declared_by: String,
    /// When and by whom it was cancelled, if it is.
    pub cancelled: Option<(i64, String)>,
    /// The window's extent as each change declared it, oldest first (for the notice rule).
    pub declarations: Vec<Declaration>,
    pub history: Vec<Change>,
}

impl Window {
    /// Folds a window's changes (oldest first, never empty).
    pub fn from_changes(id: &str, history: Vec<Change>) -> Result<Window, MaintenanceError> {
        let bad = |reason: String| MaintenanceError::Decode { id: id.to_string(), reason };
        let first = history.first().ok_or_else(|| bad("no changes".into()))?;
        let instant = |text: &str| parse_instant(text).map(|t| t.as_millisecond()).map_err(bad);
        let declared_at_ms = instant(&first.at)?;
        let declared_by = first.by.clone();
        let mut declarations: Vec<Declaration> = Vec::new();
        let mut cancelled = None;
        for c in &history {
            let (start_ms, end_ms, at_ms) = (instant(&c.start)?, instant(&c.end)?, instant(&c.at)?);
            if declarations.last().is_none_or(|d| (d.start_ms, d.end_ms) != (start_ms, end_ms)) {
                declarations.push(Declaration { start_ms, end_ms, at_ms });
            }
            cancelled = match c.action {
                Action::Cancelled => Some((at_ms, c.by.clone())),
                Action::Restored => None,
                _ => cancelled,
            };
        }
        let last = history.last().expect("not empty");
        Ok(Window {
            id: id.to_string(),
            services: last.services.clone(),
            start_ms: instant(&last.start)?,
            end_ms: instant(&last.end)?,
            reason: last.reason.clone(),
            ticket: last.ticket.clone(),
            declared_at_ms,
            declared_by,
            cancelled,
            declarations,
            history,
        })
    }

    pub fn covers(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }

    /// Some part of the window began before it was declared (SPEC §11: `start` <
    /// `declared_at`; a part added later counts from when it was added).
    pub fn retroactive(&self) -> bool {
        availability::declared_parts(&self.declarations).iter().any(|&((start, _), at)| start < at)
    }

    /// The window as the arithmetic takes it.
    pub fn input(&self) -> WindowInput<'_> {
        WindowInput { declarations: &self.declarations, cancelled: self.cancelled.is_some() }
    }

    /// The instants any version of the window covered: what a change may have moved.
    pub fn span(&self) -> (i64, i64) {
        let start = self.declarations.iter().map(|d| d.start_ms).min().unwrap_or(self.start_ms);
        let end = self.declarations.iter().map(|d| d.end_ms).max().unwrap_or(self.end_ms);
        (start, end)
    }

    /// The next change, as the window stands.
    fn next(&self, action: Action, by: &str, now_ms: i64) -> Change {
        Change {
            change: self.history.len() as u32 + 1,
            action,
            at: rfc3339(now_ms),
            by: by.to_string(),
            note: None,
            services: self.services.clone(),
            start: rfc3339(self.start_ms),
            end: rfc3339(self.end_ms),
            reason: self.reason.clone(),
            ticket: self.ticket.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// Bad input: every problem found, each saying what to fix.
    #[error("{0}")]
    Invalid(String),
    #[error("maintenance window \"{0}\" already exists; choose another id, or leave id out to have one made")]
    Exists(String),
    #[error("no maintenance window \"{0}\"")]
    NotFound(String),
    /// The window is in a state that refuses the change (cancelled, ended, from the config file).
    #[error("{0}")]
    Refused(String),
    /// The writer's token id is `config`, which names the configuration file's windows.
    #[error(
        "the token id \"config\" is reserved for windows of the configuration file; give this [[api.tokens]] entry another id"
    )]
    Reserved,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("marking the closed periods a maintenance change touches: {0}")]
    History(#[from] crate::history::HistoryError),
    #[error("stored maintenance window \"{id}\" cannot be read: {reason}")]
    Decode { id: String, reason: String },
}

/// A new window as asked for (the API's body, the config file's table).
#[derive(Clone, Debug, Default)]
pub struct NewWindow {
    pub id: Option<String>,
    pub services: Vec<String>,
    pub start: String,
    pub end: String,
    pub reason: String,
    pub ticket: Option<String>,
}

/// A file window as its record would be had it first appeared in a catalogue loaded at
/// `declared_at_ms`: for report sources without a store (tests, tools).
pub fn config_window(m: &probity_config::Maintenance, declared_at_ms: i64) -> Window {
    let change = sync::declaration(m, declared_at_ms);
    Window::from_changes(m.id.as_str(), vec![change]).expect("a validated window folds")
}

/// Brings the records in line with `catalogue`'s file windows (start, SIGHUP), off the
/// async threads, logging what changed; the closed periods the changes touch are marked
/// for the history layer first (see `mark_touched`).
pub async fn sync_catalogue(state: &crate::AppState, catalogue: Catalogue) -> Result<sync::Synced, MaintenanceError> {
    let store = state.store().clone();
    let now = crate::api::now_ms();
    let synced = tokio::task::spawn_blocking(move || sync::sync(&store, &catalogue, now))
        .await
        .map_err(|e| MaintenanceError::Decode { id: "(sync)".into(), reason: format!("sync panicked: {e}") })??;
    if !synced.is_empty() {
        tracing::info!(
            declared = ?synced.declared,
            changed = ?synced.changed,
            cancelled = ?synced.cancelled,
            restored = ?synced.restored,
            "maintenance windows from the configuration file recorded"
        );
    }
    for id in &synced.conflicts {
        tracing::warn!(
            window = %id,
            "a [[maintenance]] window in the configuration file has the id of a window declared through the API; the file's is ignored, give it another id"
        );
    }
    Ok(synced)
}

/// SPEC §10's seam: a change of a window over `span` (every instant its old and new
/// extent cover) of `services` may change closed periods, so the history layer marks them
/// (`restatement_pending`, reason `maintenance`) *before* the change is stored; its job
/// then recomputes each one with the records as they are and keeps what differs.
fn mark_touched(
    store: &Store,
    catalogue: &Catalogue,
    services: &[String],
    span: (i64, i64),
    now_ms: i64,
) -> Result<(), MaintenanceError> {
    for service in services {
        crate::history::mark_touched(
            store,
            catalogue,
            service,
            span.0,
            span.1,
            crate::history::Reason::Maintenance,
            now_ms,
        )?;
    }
    Ok(())
}

/// Every window, in id order.
pub fn list(store: &Store) -> Result<Vec<Window>, MaintenanceError> {
    let mut grouped: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for (id, _, payload) in store.maintenance_changes()? {
        let change = decode(&id, &payload)?;
        grouped.entry(id).or_default().push(change);
    }
    grouped.into_iter().map(|(id, changes)| Window::from_changes(&id, changes)).collect()
}

/// The windows covering `service`, cancelled ones included (they exclude nothing, but a
/// report can say so).
pub fn windows_of(store: &Store, service: &str) -> Result<Vec<Window>, MaintenanceError> {
    Ok(list(store)?.into_iter().filter(|w| w.covers(service)).collect())
}

pub fn get(store: &Store, id: &str) -> Result<Option<Window>, MaintenanceError> {
    let changes: Vec<Change> =
        store.maintenance_window_changes(id)?.iter().map(|p| decode(id, p)).collect::<Result<_, _>>()?;
    if changes.is_empty() {
        return Ok(None);
    }
    Window::from_changes(id, changes).map(Some)
}

/// Checks a new window against the catalogue and stores its declaration by `by` at `now_ms`.
pub fn declare(
    store: &Store,
    catalogue: &Catalogue,
    new: &NewWindow,
    by: &str,
    now_ms: i64,
) -> Result<Window, MaintenanceError> {
    let id = match &new.id {
        Some(id) => id.clone(),
        None => made_id(now_ms),
    };
    refuse_reserved(by)?;
    let change = validate(catalogue, new, &id)?;
    let change = Change { change: 1, action: Action::Declared, at: rfc3339(now_ms), by: by.to_string(), ..change };
    let window = Window::from_changes(&id, vec![change.clone()])?;
    mark_touched(store, catalogue, &window.services, window.span(), now_ms)?;
    match store.append_maintenance_change(&id, 1, &encode(&change)) {
        Ok(()) => {}
        Err(StoreError::RecordExists { .. }) => return Err(MaintenanceError::Exists(id)),
        Err(e) => return Err(e.into()),
    }
    Ok(window)
}

/// Gives a window a new end: earlier ends it early (at any time), later extends it, which
/// only a window that has not ended yet can be. The same end changes nothing.
pub fn set_end(
    store: &Store,
    catalogue: &Catalogue,
    id: &str,
    end: &str,
    by: &str,
    now_ms: i64,
) -> Result<Window, MaintenanceError> {
    refuse_reserved(by)?;
    let window = get(store, id)?.ok_or_else(|| MaintenanceError::NotFound(id.to_string()))?;
    refuse_config_and_cancelled(&window, "change its end")?;
    let end_ms = parse_instant(end).map_err(|e| MaintenanceError::Invalid(format!("end: {e}")))?.as_millisecond();
    if end_ms <= window.start_ms {
        return Err(MaintenanceError::Invalid(format!(
            "end {} is not after the window's start {}; to call the window off, DELETE it",
            rfc3339(end_ms),
            rfc3339(window.start_ms)
        )));
    }
    if end_ms - window.start_ms > MAX_WINDOW_MS {
        return Err(MaintenanceError::Invalid(format!(
            "end {} makes the window longer than 366d, the longest probity takes; declare a new window instead",
            rfc3339(end_ms)
        )));
    }
    if end_ms == window.end_ms {
        return Ok(window);
    }
    if end_ms > window.end_ms && window.end_ms <= now_ms {
        return Err(MaintenanceError::Refused(format!(
            "maintenance window \"{id}\" ended at {}; an ended window cannot be extended, declare a new one",
            rfc3339(window.end_ms)
        )));
    }
    let mut change = window.next(Action::EndChanged, by, now_ms);
    change.end = rfc3339(end_ms);
    let (from, to) = window.span();
    mark_touched(store, catalogue, &window.services, (from, to.max(end_ms)), now_ms)?;
    append(store, window, change)
}

/// Cancels a window: it is kept, with who cancelled it and when, and excludes nothing.
pub fn cancel(
    store: &Store,
    catalogue: &Catalogue,
    id: &str,
    by: &str,
    now_ms: i64,
) -> Result<Window, MaintenanceError> {
    refuse_reserved(by)?;
    let window = get(store, id)?.ok_or_else(|| MaintenanceError::NotFound(id.to_string()))?;
    refuse_config_and_cancelled(&window, "cancel it")?;
    let change = window.next(Action::Cancelled, by, now_ms);
    mark_touched(store, catalogue, &window.services, window.span(), now_ms)?;
    append(store, window, change)
}

/// `config` names the configuration file in every record: a token with that id would make
/// its windows read as the file's (and the next reload would cancel them).
fn refuse_reserved(by: &str) -> Result<(), MaintenanceError> {
    if by == CONFIG {
        return Err(MaintenanceError::Reserved);
    }
    Ok(())
}

fn refuse_config_and_cancelled(window: &Window, what: &str) -> Result<(), MaintenanceError> {
    if window.declared_by == CONFIG {
        return Err(MaintenanceError::Refused(format!(
            "maintenance window \"{}\" is declared in the configuration file; to {what}, edit its [[maintenance]] table and reload (SIGHUP)",
            window.id
        )));
    }
    if let Some((at, by)) = &window.cancelled {
        return Err(MaintenanceError::Refused(format!(
            "maintenance window \"{}\" was cancelled at {} by {by}; a cancelled window is kept as it is",
            window.id,
            rfc3339(*at)
        )));
    }
    Ok(())
}

/// Stores `change` as the window's next record and returns the window with it.
fn append(store: &Store, window: Window, change: Change) -> Result<Window, MaintenanceError> {
    match store.append_maintenance_change(&window.id, change.change, &encode(&change)) {
        Ok(()) => {}
        Err(StoreError::RecordExists { .. }) => {
            return Err(MaintenanceError::Refused(format!(
                "maintenance window \"{}\" was changed at the same moment by another request; read it again and retry",
                window.id
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let mut history = window.history;
    history.push(change);
    Window::from_changes(&window.id, history)
}

/// Every problem with a new window at once, or its first change (action, at and by to fill).
fn validate(catalogue: &Catalogue, new: &NewWindow, id: &str) -> Result<Change, MaintenanceError> {
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = Id::new(id) {
        problems.push(format!("id {e}"));
    }
    let mut services: Vec<String> = Vec::new();
    if new.services.is_empty() {
        problems.push("services is empty; list the services this window covers".into());
    }
    for s in &new.services {
        if catalogue.service(s).is_none() {
            let known: Vec<&str> = catalogue.services.iter().map(|s| s.id.as_str()).collect();
            problems.push(format!("services: unknown service \"{s}\"; known: {}", known.join(", ")));
        } else if !services.contains(s) {
            services.push(s.clone());
        }
    }
    let start = parse_instant(&new.start).map_err(|e| problems.push(format!("start: {e}"))).ok();
    let end = parse_instant(&new.end).map_err(|e| problems.push(format!("end: {e}"))).ok();
    if let (Some(start), Some(end)) = (start, end) {
        let (s, e) = (start.as_millisecond(), end.as_millisecond());
        if e <= s {
            problems.push(format!("end {} is not after start {}", rfc3339(e), rfc3339(s)));
        } else if e - s > MAX_WINDOW_MS {
            problems.push("the window is longer than 366d, the longest probity takes; declare it in parts".into());
        }
    }
    let reason = new.reason.trim();
    if reason.is_empty() {
        problems.push("reason is empty; say what the maintenance is for, e.g. \"database upgrade\"".into());
    } else if reason.chars().count() > 1000 {
        problems.push("reason is longer than 1000 characters; put the details in the ticket".into());
    }
    let ticket = new.ticket.as_deref().map(str::trim);
    if let Some(t) = ticket
        && (t.is_empty() || t.chars().count() > 200)
    {
        problems.push("ticket must be 1 to 200 characters, such as \"CHG-1042\"; leave it out if there is none".into());
    }
    if !problems.is_empty() {
        return Err(MaintenanceError::Invalid(problems.join("; ")));
    }
    let (start, end) = (start.expect("checked").as_millisecond(), end.expect("checked").as_millisecond());
    Ok(Change {
        change: 1,
        action: Action::Declared,
        at: String::new(),
        by: String::new(),
        note: None,
        services,
        start: rfc3339(start),
        end: rfc3339(end),
        reason: reason.to_string(),
        ticket: ticket.map(str::to_string),
    })
}

/// An id for a window declared without one: `mw-` and 12 random hex digits.
fn made_id(now_ms: i64) -> String {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the time still makes an id; a clash is a 409, never an overwrite.
        return format!("mw-{:012x}", now_ms.rem_euclid(1 << 48));
    }
    format!("mw-{}", hex::encode(bytes))
}

fn encode(change: &Change) -> Vec<u8> {
    serde_json::to_vec(change).expect("a change always serialises")
}

fn decode(id: &str, payload: &[u8]) -> Result<Change, MaintenanceError> {
    serde_json::from_slice(payload).map_err(|e| MaintenanceError::Decode { id: id.to_string(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use probity_config::parse_collector_config;

    use super::*;
    use crate::store::StoreOptions;

    const CONFIG: &str = r#"
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
[[services]]
id = "psp"
  [[services.probes]]
  id = "psp-tcp"
  kind = "tcp"
  target = "127.0.0.1:81"
  interval = "10s"
  timeout = "5s"
"#;

    fn ms(s: &str) -> i64 {
        parse_instant(s).unwrap().as_millisecond()
    }

    fn window(id: Option<&str>, start: &str, end: &str) -> NewWindow {
        NewWindow {
            id: id.map(str::to_string),
            services: vec!["shop".into()],
            start: start.into(),
            end: end.into(),
            reason: "database upgrade".into(),
            ticket: Some("CHG-7".into()),
        }
    }

    #[test]
    fn a_window_is_declared_changed_and_cancelled_with_every_change_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let now = ms("2026-11-10T12:00:00Z");
        let w = declare(&store, &c, &window(Some("chg-1"), "2026-11-10T22:00:00Z", "2026-11-11T02:00:00Z"), "ops", now)
            .unwrap();
        assert_eq!((w.declared_by.as_str(), w.declared_at_ms, w.retroactive()), ("ops", now, false));
        let reserved = declare(
            &store,
            &c,
            &window(Some("chg-9"), "2026-11-12T00:00:00Z", "2026-11-12T01:00:00Z"),
            super::CONFIG,
            now,
        );
        assert!(matches!(reserved, Err(MaintenanceError::Reserved)), "{reserved:?}");
        let again =
            declare(&store, &c, &window(Some("chg-1"), "2026-11-12T00:00:00Z", "2026-11-12T01:00:00Z"), "x", now);
        assert!(matches!(again, Err(MaintenanceError::Exists(_))), "{again:?}");

        // Extended while it runs, then ended early; both kept.
        let w = set_end(&store, &c, "chg-1", "2026-11-11T03:00:00Z", "ops", ms("2026-11-11T01:00:00Z")).unwrap();
        assert_eq!(w.end_ms, ms("2026-11-11T03:00:00Z"));
        let w = set_end(&store, &c, "chg-1", "2026-11-11T02:30:00Z", "ops", ms("2026-11-11T02:10:00Z")).unwrap();
        assert_eq!(
            w.history.iter().map(|c| c.action).collect::<Vec<_>>(),
            [Action::Declared, Action::EndChanged, Action::EndChanged]
        );
        // Ended: it can be shortened but not extended.
        let later = ms("2026-11-12T00:00:00Z");
        let err = set_end(&store, &c, "chg-1", "2026-11-11T05:00:00Z", "ops", later).unwrap_err();
        assert!(err.to_string().contains("an ended window cannot be extended"), "{err}");
        let err = set_end(&store, &c, "chg-1", "2026-11-10T21:00:00Z", "ops", later).unwrap_err();
        assert!(err.to_string().contains("is not after the window's start"), "{err}");

        let w = cancel(&store, &c, "chg-1", "lead", later).unwrap();
        assert_eq!(w.cancelled, Some((later, "lead".to_string())));
        assert!(w.input().cancelled);
        let err = cancel(&store, &c, "chg-1", "lead", later).unwrap_err();
        assert!(err.to_string().contains("was cancelled at"), "{err}");
        // Read back from the store: the same window, four changes.
        let back = get(&store, "chg-1").unwrap().unwrap();
        assert_eq!(back, w);
        assert_eq!(back.history.len(), 4);
        assert_eq!(list(&store).unwrap().len(), 1);
        assert!(get(&store, "chg-2").unwrap().is_none());
    }

    #[test]
    fn a_window_declared_after_it_began_is_retroactive_and_an_id_is_made_when_none_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let w = declare(
            &store,
            &c,
            &window(None, "2026-11-10T10:00:00Z", "2026-11-10T11:00:00Z"),
            "ops",
            ms("2026-11-10T12:00:00Z"),
        )
        .unwrap();
        assert!(w.retroactive());
        assert!(w.id.starts_with("mw-") && Id::new(&w.id).is_ok(), "{}", w.id);
    }

    #[test]
    fn bad_windows_are_refused_with_every_problem_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let now = ms("2026-11-10T12:00:00Z");
        let check = |new: NewWindow, expected: &[&str]| {
            let err = declare(&store, &c, &new, "ops", now).unwrap_err().to_string();
            for e in expected {
                assert!(err.contains(e), "{err:?} lacks {e:?}");
            }
        };
        check(window(None, "2026-11-10T22:00:00Z", "2026-11-10T22:00:00Z"), &["is not after start"]);
        check(window(None, "yesterday", "2026-11-10T22:00:00Z"), &["start: \"yesterday\" is not an RFC 3339 instant"]);
        check(window(Some("Bad Id"), "2026-11-10T22:00:00Z", "2026-11-11T22:00:00Z"), &["id "]);
        check(window(None, "2026-01-01T00:00:00Z", "2027-06-01T00:00:00Z"), &["longer than 366d"]);
        let mut w = window(None, "2026-11-10T22:00:00Z", "2026-11-11T22:00:00Z");
        w.services = vec!["shop".into(), "nope".into()];
        w.reason = " ".into();
        check(w, &["unknown service \"nope\"; known: shop, psp", "reason is empty"]);
        let mut w = window(None, "2026-11-10T22:00:00Z", "2026-11-11T22:00:00Z");
        w.services.clear();
        check(w, &["services is empty"]);
        assert!(list(&store).unwrap().is_empty(), "nothing refused was stored");
    }
}
