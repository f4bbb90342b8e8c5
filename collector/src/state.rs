//! `AppState`: what every request handler shares. The configuration (catalogue included)
//! sits behind a lock holding an `Arc`, swapped whole on reload so a request sees one
//! consistent catalogue; the store, the group commit and the metrics live beside it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use ed25519_dalek::SigningKey;
use probity_config::{CollectorConfig, TokenHash};
use subtle::ConstantTimeEq;

use crate::commit::GroupCommit;
use crate::disk::Writes;
use crate::metrics::Metrics;
use crate::store::Store;

/// Size limits on ingest bodies.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes on the wire (compressed); more is `413`.
    pub max_body: usize,
    /// Bytes after decompression; more is `413` (a zip bomb is refused, not buffered).
    pub max_decoded: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body: 8 << 20, max_decoded: 64 << 20 }
    }
}

/// Shared state of the collector; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    config: RwLock<Arc<CollectorConfig>>,
    config_path: Option<PathBuf>,
    store: Arc<Store>,
    commit: GroupCommit,
    /// Whether ingest takes writes (SPEC §15 "Disk").
    writes: Arc<Writes>,
    metrics: Metrics,
    limits: Limits,
    /// The embedded agent's token hash, made at start (its catalogue entry has none).
    embedded_token: Option<TokenHash>,
    /// Signs evidence bundles.
    signing_key: SigningKey,
}

impl AppState {
    /// Must be called inside a tokio runtime (it starts the group-commit task).
    pub fn new(config: CollectorConfig, store: Arc<Store>, spec: StateSpec) -> AppState {
        let ledger = spec.ledger.map(|path| Arc::new(crate::ledger::Ledger::new(path)));
        let commit = GroupCommit::start(store.clone(), ledger);
        AppState {
            inner: Arc::new(Shared {
                config: RwLock::new(Arc::new(config)),
                config_path: spec.config_path,
                store,
                commit,
                writes: Writes::new(),
                metrics: Metrics::default(),
                limits: spec.limits,
                embedded_token: spec.embedded_token,
                signing_key: spec.signing_key.unwrap_or_else(ephemeral_key),
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<CollectorConfig> {
        self.inner.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new (validated) configuration in force.
    pub fn set_config(&self, config: CollectorConfig) {
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    pub fn config_path(&self) -> Option<&PathBuf> {
        self.inner.config_path.as_ref()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub fn commit(&self) -> &GroupCommit {
        &self.inner.commit
    }

    pub fn writes(&self) -> &Arc<Writes> {
        &self.inner.writes
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.inner.signing_key
    }

    /// The agent whose token has this sha256. Every agent's hash is compared in constant
    /// time, so the answer's timing does not depend on how much of a hash matched.
    pub fn agent_for_token(&self, token: &str) -> Option<String> {
        let presented = probity_config::token_sha256(token);
        let config = self.config();
        let mut found: Option<String> = None;
        for agent in &config.catalogue.agents {
            let hash = if agent.embedded { self.inner.embedded_token } else { agent.token_sha256 };
            if let Some(hash) = hash
                && bool::from(hash.ct_eq(&presented))
            {
                found = Some(agent.id.to_string());
            }
        }
        found
    }
}

/// What `AppState::new` needs besides the config and the store.
#[derive(Clone, Debug, Default)]
pub struct StateSpec {
    /// The file SIGHUP reloads.
    pub config_path: Option<PathBuf>,
    pub limits: Limits,
    pub embedded_token: Option<TokenHash>,
    /// The evidence signing key; `None` makes a throwaway one (tests).
    pub signing_key: Option<SigningKey>,
    /// The acknowledged ledger the group commit keeps (`data_dir/ledger`); `None`: none.
    pub ledger: Option<PathBuf>,
}

/// A random key for states built without one: bundles it signs verify, but only until restart.
fn ephemeral_key() -> SigningKey {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the OS provides random bytes");
    SigningKey::from_bytes(&secret)
}
