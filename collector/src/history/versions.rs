//! Catalogue versions (SPEC §10): every catalogue the collector puts in force is stored
//! as a numbered version (canonical JSON, its sha256, when and from where it was loaded,
//! and what changed since the previous one), so a closed period can be computed with the
//! terms that held at its end.

use probity_config::Catalogue;
use probity_config::canonical::{self, Changes};
use probity_config::time::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::HistoryError;
use crate::store::Store;

/// Where a catalogue came from (SPEC §10: start, SIGHUP, or a change through the API).
///
/// Nothing records `Api` yet, on purpose: no endpoint changes the catalogue (services,
/// probes, agreements, calendars). Maintenance windows written through the API (SPEC §11)
/// are their own records, with their own provenance and history, not catalogue changes: a
/// window touching a closed period marks it for restatement (`history::mark_touched`)
/// instead of making a new catalogue version. A future catalogue write endpoint records
/// its result with `Api`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    File,
    Api,
}

/// One stored catalogue version, as `GET /api/v1/catalogue/versions/{n}` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogueVersion {
    pub version: u32,
    /// RFC 3339.
    pub loaded_at: String,
    pub loaded_at_ms: i64,
    /// sha256 of the canonical JSON of `catalogue`, hex.
    pub sha256: String,
    pub source: Source,
    pub changes: Changes,
    /// The catalogue in canonical JSON (no token hashes).
    pub catalogue: Value,
}

impl CatalogueVersion {
    /// The listing's line: everything but the catalogue itself.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "version": self.version,
            "loaded_at": self.loaded_at,
            "sha256": self.sha256,
            "source": self.source,
            "changes": self.changes,
        })
    }

    /// The catalogue it holds, validated again.
    pub fn catalogue(&self) -> Result<Catalogue, HistoryError> {
        canonical::from_value(&self.catalogue)
            .map_err(|e| HistoryError::Catalogue { version: self.version, reason: e.to_string() })
    }
}

/// Stores `catalogue` as the next version unless it equals the newest one (a restart or a
/// reload of the same file is not a new version). Returns the version in force.
pub fn record(
    store: &Store,
    catalogue: &Catalogue,
    source: Source,
    now_ms: i64,
) -> Result<CatalogueVersion, HistoryError> {
    let value = canonical::to_value(catalogue);
    let sha256 = canonical::sha256_hex(&canonical::to_bytes(&value));
    let latest = latest(store)?;
    if let Some(latest) = &latest
        && latest.sha256 == sha256
    {
        return Ok(latest.clone());
    }
    let version = CatalogueVersion {
        version: latest.as_ref().map_or(1, |l| l.version + 1),
        loaded_at: rfc3339(now_ms),
        loaded_at_ms: now_ms,
        sha256,
        source,
        changes: canonical::changes(latest.as_ref().map(|l| &l.catalogue), &value),
        catalogue: value,
    };
    store.append_catalogue_version(version.version, &encode(&version))?;
    Ok(version)
}

/// Every version, oldest first.
pub fn list(store: &Store) -> Result<Vec<CatalogueVersion>, HistoryError> {
    store.catalogue_versions()?.into_iter().map(|(_, payload)| decode(&payload)).collect()
}

pub fn get(store: &Store, version: u32) -> Result<Option<CatalogueVersion>, HistoryError> {
    store.catalogue_version(version)?.map(|p| decode(&p)).transpose()
}

pub fn latest(store: &Store) -> Result<Option<CatalogueVersion>, HistoryError> {
    store.latest_catalogue_version()?.map(|(_, p)| decode(&p)).transpose()
}

/// The version in force at `t`: the newest loaded at or before it, or, for an instant
/// before the first version (periods that closed before versions were kept), the oldest.
pub fn in_force_at(versions: &[CatalogueVersion], t_ms: i64) -> Option<&CatalogueVersion> {
    versions.iter().rev().find(|v| v.loaded_at_ms <= t_ms).or(versions.first())
}

fn encode(v: &CatalogueVersion) -> Vec<u8> {
    canonical::to_bytes(&serde_json::to_value(v).expect("a version serialises"))
}

fn decode(payload: &[u8]) -> Result<CatalogueVersion, HistoryError> {
    serde_json::from_slice(payload)
        .map_err(|e| HistoryError::Decode { what: "catalogue version", reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    const CONFIG: &str = r#"
[[agents]]
id = "a1"
token_sha256 = "d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a"
[[services]]
id = "web"
  [[services.probes]]
  id = "web-tcp"
  kind = "tcp"
  target = "127.0.0.1:80"
[[agreements]]
id = "web-sla"
kind = "sla"
service = "web"
availability = 99.0
"#;

    fn catalogue(text: &str) -> Catalogue {
        probity_config::parse_collector_config("t.toml", text).unwrap().catalogue
    }

    #[test]
    fn versions_are_numbered_only_when_the_catalogue_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let v1 = record(&store, &catalogue(CONFIG), Source::File, 1_000).unwrap();
        assert_eq!((v1.version, v1.changes.added.len()), (1, 4));
        let same = record(&store, &catalogue(CONFIG), Source::File, 2_000).unwrap();
        assert_eq!((same.version, same.loaded_at_ms), (1, 1_000));
        let v2 = record(&store, &catalogue(&CONFIG.replace("99.0", "99.5")), Source::File, 3_000).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(v2.changes.changed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["web-sla"]);
        let all = list(&store).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(get(&store, 1).unwrap().unwrap(), v1);
        assert_eq!(all[1].catalogue().unwrap().agreement("web-sla").unwrap().availability, 99.5);
        // In force: the newest at or before the instant, else the oldest.
        assert_eq!(in_force_at(&all, 500).unwrap().version, 1);
        assert_eq!(in_force_at(&all, 2_999).unwrap().version, 1);
        assert_eq!(in_force_at(&all, 3_000).unwrap().version, 2);
        // The sha256 is of the canonical JSON the version holds.
        assert_eq!(v2.sha256, canonical::sha256_hex(&canonical::to_bytes(&v2.catalogue)));
    }
}
