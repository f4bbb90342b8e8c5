//! Configuration reload (SIGHUP): a valid file replaces the catalogue at once (agents see
//! new assignment ETags); an invalid one is refused with every error logged and the
//! running configuration kept. Server settings (listen, data_dir, TLS) need a restart.

use tracing::{error, info, warn};

use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no configuration file to reload")]
    NoFile,
    #[error(transparent)]
    Invalid(probity_config::LoadError),
    #[error("{0}")]
    History(crate::history::HistoryError),
    #[error("{0}")]
    Maintenance(crate::maintenance::MaintenanceError),
}

/// Reloads the configuration file; on error the running configuration stays.
pub async fn reload(state: &AppState) -> Result<(), ReloadError> {
    let Some(path) = state.config_path().cloned() else { return Err(ReloadError::NoFile) };
    let loaded = match tokio::task::spawn_blocking(move || probity_config::load_collector_config(&path)).await {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "reload panicked; keeping the running configuration");
            state.metrics().record_reload(false);
            return Err(ReloadError::NoFile);
        }
    };
    let new = match loaded {
        Ok(c) => c,
        Err(e) => {
            for line in probity_config::error_chain(&e).lines() {
                error!(error = %line, "reload refused; keeping the running configuration");
            }
            state.metrics().record_reload(false);
            return Err(ReloadError::Invalid(e));
        }
    };
    let old = state.config();
    if old.server.listen != new.server.listen
        || old.server.data_dir != new.server.data_dir
        || old.server.tls.as_ref().map(|t| (&t.cert, &t.key)) != new.server.tls.as_ref().map(|t| (&t.cert, &t.key))
        || old.embedded_agent.enabled != new.embedded_agent.enabled
        || old.embedded_agent.id != new.embedded_agent.id
    {
        warn!("server or embedded_agent settings changed; they apply at the next restart");
    }
    let (agents, probes) = (new.catalogue.agents.len(), new.catalogue.probe_count());
    // A catalogue is put in force only once it is a stored version: terms never change
    // without a trace.
    let catalogue = new.catalogue.clone();
    let version = match crate::history::record_catalogue_of(state, catalogue, crate::history::versions::Source::File)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            error!(error = %e, "reload refused: the catalogue version could not be stored; keeping the running configuration");
            state.metrics().record_reload(false);
            return Err(ReloadError::History(e));
        }
    };
    // The file's maintenance windows become records (declared, changed, or cancelled when
    // the file dropped them) before the catalogue is in force.
    if let Err(e) = crate::maintenance::sync_catalogue(state, new.catalogue.clone()).await {
        error!(error = %e, "reload refused: the maintenance windows could not be recorded; keeping the running configuration");
        state.metrics().record_reload(false);
        return Err(ReloadError::Maintenance(e));
    }
    state.set_config(new);
    crate::jobs::sync_intervals(state).await;
    state.metrics().record_reload(true);
    info!(agents, probes, catalogue_version = version, "configuration reloaded");
    Ok(())
}
