//! The history layer (SPEC §10) around the pure arithmetic: catalogue versions, period
//! states, sealed revisions of closed periods. It decides *which* catalogue and *which*
//! stored figures a reader gets; every seconds figure still comes from `availability`
//! through `report`, and history never adds up time itself.

pub mod periods;
pub mod restatements;
pub mod versions;

pub use restatements::{Reason, mark_touched};

/// A history failure (our fault: a 500), or a stored record that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("storage: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("stored {what} cannot be read: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("catalogue version {version} no longer validates: {reason}")]
    Catalogue { version: u32, reason: String },
}

/// Stores the catalogue in force as a version (if it changed) and returns its number.
pub async fn record_catalogue(state: &crate::AppState, source: versions::Source) -> Result<u32, HistoryError> {
    let catalogue = state.config().catalogue.clone();
    record_catalogue_of(state, catalogue, source).await
}

/// Stores `catalogue` as a version (if it differs from the newest) and returns its number.
pub async fn record_catalogue_of(
    state: &crate::AppState,
    catalogue: probity_config::Catalogue,
    source: versions::Source,
) -> Result<u32, HistoryError> {
    let store = state.store().clone();
    let now = crate::api::now_ms();
    let recorded = tokio::task::spawn_blocking(move || versions::record(&store, &catalogue, source, now))
        .await
        .map_err(|e| HistoryError::Decode { what: "catalogue version", reason: format!("recording panicked: {e}") })?;
    Ok(recorded?.version)
}
