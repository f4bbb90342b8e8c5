//! Start-up safety that warns rather than refuses (SPEC §15): a bearer token about to
//! cross the network in plaintext, a token file others can read; and the spool kept
//! private (directories 0700, files 0600, a 077 umask for what is created later).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use probity_config::{AgentConfig, TokenSource};

/// Everything worth a warning about `config`, each a full sentence saying what to do.
pub fn warnings(config: &AgentConfig) -> Vec<String> {
    let mut out: Vec<String> = config.plaintext_token_warning().into_iter().collect();
    if let TokenSource::File(path) = &config.token
        && let Ok(meta) = std::fs::metadata(path)
    {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push(format!(
                "token_file {} is readable by group or others (mode {mode:04o}); chmod 600 {}",
                path.display(),
                path.display()
            ));
        }
    }
    out
}

/// Files this process creates from now on are private to its user (0600 / 0700).
pub fn private_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Makes `dir` 0700 and everything under it 0700 (directories) or 0600 (files), so a spool
/// or database made by an older version, or under a looser umask, is private too.
/// Symbolic links are left alone.
pub fn make_private(dir: &Path) -> io::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            make_private(&entry.path())?;
        } else if kind.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_tree_is_made_private_and_links_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        std::fs::create_dir_all(root.join("results")).unwrap();
        std::fs::write(root.join("results/seg-1"), b"x").unwrap();
        std::fs::write(root.join("seq"), b"1").unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"y").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        for p in [&root, &root.join("results")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        make_private(&root).unwrap();
        assert_eq!((mode(&root), mode(&root.join("results"))), (0o700, 0o700));
        assert_eq!((mode(&root.join("seq")), mode(&root.join("results/seg-1"))), (0o600, 0o600));
        assert_eq!(mode(&outside), 0o644, "a link's target is not ours to change");
    }

    #[test]
    fn a_token_file_others_can_read_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("agent.token");
        std::fs::write(&token, "probity_x\n").unwrap();
        let text = format!(
            "id = \"a\"\ncollector = \"https://c.example.com\"\ntoken_file = \"{}\"\nspool_dir = \"/s\"\n",
            token.display()
        );
        let config = probity_config::parse_agent_config("a.toml", &text).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = warnings(&config);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("readable by group or others (mode 0644); chmod 600"), "{w:?}");
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(warnings(&config).is_empty());
    }
}
