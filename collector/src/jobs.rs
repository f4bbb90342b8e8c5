//! Background work off the request path: `/metrics`' agreement figures (every 15-60 s, in
//! their own task), hourly/daily histogram rollups (every minute),
//! sealing closed periods (every minute), recomputing the closed periods marked as touched
//! (every 5 s; a pass over no marks is one empty scan), raw-result retention (every hour),
//! and keeping stored runs in step with probe intervals. Each pass runs in `spawn_blocking`: they are long sled scans.

use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::state::AppState;

const ROLLUP_EVERY: Duration = Duration::from_secs(60);
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
const SEAL_EVERY: Duration = Duration::from_secs(60);
const RESTATEMENTS_EVERY: Duration = Duration::from_secs(5);

/// Runs the periodic jobs until `stop` turns true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    // Its own task: a long rollup or retention pass must not hold the figures back.
    tokio::spawn(refresh_metrics_every(state.clone(), stop.clone()));
    let mut rollup = tokio::time::interval(ROLLUP_EVERY);
    let mut retention = tokio::time::interval(RETENTION_EVERY);
    rollup.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seal = tokio::time::interval(SEAL_EVERY);
    seal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut restatements = tokio::time::interval(RESTATEMENTS_EVERY);
    restatements.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // While writes are suspended (a full disk, a write error) the jobs write nothing:
        // each would fail, and sled must not meet a full disk; they run on the next tick.
        tokio::select! {
            _ = seal.tick() => if state.writes().is_writable() { seal_closed_periods(&state).await },
            _ = restatements.tick() => if state.writes().is_writable() { recompute_touched_periods(&state).await },
            _ = rollup.tick() => if state.writes().is_writable() { roll_up(&state).await },
            _ = retention.tick() => if state.writes().is_writable() { apply_retention(&state).await },
            _ = stop.changed() => return,
        }
    }
}

/// Recomputes `/metrics`' service and agreement figures every `metrics::REFRESH_EVERY`, or
/// less often when a refresh takes long (a big catalogue over a long period): the next one
/// waits ten times as long as the last took, up to `metrics::REFRESH_AT_MOST_EVERY`, so the
/// figures cost at most about a tenth of the machine.
async fn refresh_metrics_every(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        refresh_metrics(&state).await;
        let took = state.metrics().snapshot().took;
        let wait = (took * 10).clamp(crate::metrics::REFRESH_EVERY, crate::metrics::REFRESH_AT_MOST_EVERY);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Recomputes `/metrics`' service and agreement figures once.
pub async fn refresh_metrics(state: &AppState) {
    let state = state.clone();
    let now = crate::api::now_ms();
    let refreshed = tokio::task::spawn_blocking(move || {
        let config = state.config();
        state.metrics().refresh(state.store(), &config.catalogue, now)
    });
    match refreshed.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "metrics refresh failed"),
        Err(e) => warn!(error = %e, "metrics refresh panicked"),
    }
}

/// Builds the rollups of complete hours and days.
pub async fn roll_up(state: &AppState) {
    let store = state.store().clone();
    let now = crate::api::now_ms();
    match tokio::task::spawn_blocking(move || store.roll_up(now)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::debug!(rollups = n, "histograms rolled up"),
        Ok(Err(e)) => warn!(error = %e, "histogram rollup failed"),
        Err(e) => warn!(error = %e, "histogram rollup panicked"),
    }
}

/// Seals every agreement period that has closed (SPEC §10) and has no revision yet.
pub async fn seal_closed_periods(state: &AppState) {
    let state = state.clone();
    let now = crate::api::now_ms();
    let sealed = tokio::task::spawn_blocking(move || {
        let config = state.config();
        let store = state.store().as_ref();
        crate::history::periods::seal_due(store, store, &config.catalogue, now)
    });
    match sealed.await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => info!(periods = n, "closed periods sealed as revision 1"),
        Ok(Err(e)) => warn!(error = %e, "sealing closed periods failed"),
        Err(e) => warn!(error = %e, "sealing closed periods panicked"),
    }
}

/// Recomputes the closed periods that late results or maintenance changes touched (SPEC
/// §10's restatement pending), each with its sealed catalogue version.
pub async fn recompute_touched_periods(state: &AppState) {
    let store = state.store().clone();
    let now = crate::api::now_ms();
    let done = tokio::task::spawn_blocking(move || {
        crate::history::restatements::recompute_marked(store.as_ref(), store.as_ref(), now)
    });
    match done.await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => info!(periods = n, "touched closed periods recomputed"),
        Ok(Err(e)) => warn!(error = %e, "recomputing touched closed periods failed"),
        Err(e) => warn!(error = %e, "recomputing touched closed periods panicked"),
    }
}

/// Removes raw results older than `raw_retention`; runs and histograms stay.
pub async fn apply_retention(state: &AppState) {
    let store = state.store().clone();
    let retention = state.config().server.raw_retention;
    let cutoff = crate::api::now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    match tokio::task::spawn_blocking(move || store.remove_raw_before(cutoff)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => info!(removed = n, cutoff_ms = cutoff, "raw results past retention removed"),
        Ok(Err(e)) => warn!(error = %e, "retention failed"),
        Err(e) => warn!(error = %e, "retention panicked"),
    }
}

/// Records every probe's interval; runs of a probe whose interval changed are rebuilt
/// from the raw results still held.
pub async fn sync_intervals(state: &AppState) {
    let store = state.store().clone();
    let probes: Vec<(String, i64)> = state
        .config()
        .catalogue
        .probes()
        .map(|(_, p)| (p.id.to_string(), i64::try_from(p.interval.as_millis()).unwrap_or(i64::MAX)))
        .collect();
    match tokio::task::spawn_blocking(move || store.sync_intervals(&probes)).await {
        Ok(Ok(rebuilt)) if rebuilt.is_empty() => {}
        Ok(Ok(rebuilt)) => info!(probes = ?rebuilt, "interval changed: view runs rebuilt from raw results"),
        Ok(Err(e)) => warn!(error = %e, "recording probe intervals failed"),
        Err(e) => warn!(error = %e, "recording probe intervals panicked"),
    }
}
