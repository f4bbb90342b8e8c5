//! The collector's Ed25519 evidence key: generated in `data_dir` on first start (mode
//! 0600) or loaded from `[evidence] signing_key`; stored as 64 hex characters.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

/// The key file's name inside `data_dir` when no `signing_key` path is configured.
pub const DEFAULT_KEY_FILE: &str = "evidence-signing-key.hex";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read signing key {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write signing key {}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("signing key {} is not 64 hex characters (an Ed25519 secret key); fix or remove the file", path.display())]
    Malformed { path: PathBuf },
    #[error("cannot read random bytes from the OS: {0}")]
    Random(String),
}

/// Loads the configured key, or the one in `data_dir`, generating it there on first use.
/// A configured key is never generated: a missing file there is an error.
pub fn load_or_generate(configured: Option<&Path>, data_dir: &Path) -> Result<SigningKey, KeyError> {
    if let Some(path) = configured {
        return load(path);
    }
    let path = data_dir.join(DEFAULT_KEY_FILE);
    if path.exists() {
        return load(&path);
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
    write_private(&path, format!("{}\n", hex::encode(secret)).as_bytes())
        .map_err(|source| KeyError::Write { path: path.clone(), source })?;
    Ok(SigningKey::from_bytes(&secret))
}

pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).map_err(|_| KeyError::Malformed { path: path.to_path_buf() })?;
    Ok(SigningKey::from_bytes(&secret))
}

/// The public half as lowercase hex.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

/// Creates a file only the owner can read, atomically: written under a temporary name,
/// synced, then renamed, so a crash never leaves a half-written key behind.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_generated_once_with_owner_only_permissions_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(None, dir.path()).unwrap();
        let again = load_or_generate(None, dir.path()).unwrap();
        assert_eq!(first.to_bytes(), again.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DEFAULT_KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(public_key_hex(&first).len(), 64);
    }

    #[test]
    fn a_configured_key_is_loaded_and_never_generated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.hex");
        let err = load_or_generate(Some(&path), dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }), "{err}");
        std::fs::write(&path, "zz").unwrap();
        assert!(load_or_generate(Some(&path), dir.path()).unwrap_err().to_string().contains("not 64 hex characters"));
        std::fs::write(&path, format!("{}\n", "11".repeat(32))).unwrap();
        let key = load_or_generate(Some(&path), dir.path()).unwrap();
        assert_eq!(key.to_bytes(), [0x11; 32]);
    }
}
