//! Tidy checks over the source tree: every `.rs` file opens with a `//!` line saying what
//! lives there, no file uses `std::time::Instant` where `tokio::time::Instant` belongs, and
//! each `**Invariant:**` of ARCHITECTURE.md that a reading of the tree can check is checked
//! here (the dependency rules over Cargo.lock, who may call sled, who knows a byte layout).

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
    let tree = shipped_dependencies("agent");
    assert!(tree.contains("tokio") && tree.contains("probity-config"), "the walk finds the agent's own crates");
    for banned in ["sled", "axum", "probity-collector"] {
        assert!(!tree.contains(banned), "probity-agent depends on {banned} (directly or through another crate)");
    }
}

#[test]
fn the_config_crate_stays_free_of_runtime_crates() {
    let tree = shipped_dependencies("config");
    assert!(tree.contains("toml") && tree.contains("serde"), "the walk finds the config crate's own crates");
    for banned in ["tokio", "axum", "sled", "reqwest", "hyper", "mio"] {
        assert!(!tree.contains(banned), "probity-config depends on {banned} (directly or through another crate)");
    }
}

/// The names of every crate a member ships with: its `[dependencies]` (target-specific ones
/// included, dev-dependencies not) and, through Cargo.lock, everything those depend on.
fn shipped_dependencies(member: &str) -> std::collections::BTreeSet<String> {
    let manifest = std::fs::read_to_string(workspace_root().join(member).join("Cargo.toml")).unwrap();
    let mut direct = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]" || (line.starts_with("[target.") && line.ends_with(".dependencies]"));
        } else if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['.', '=', ' ']).next().unwrap();
            direct.push(name.to_string());
        }
    }
    assert!(!direct.is_empty(), "no [dependencies] in {member}/Cargo.toml");
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap();
    let mut edges: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for package in lock.split("[[package]]").skip(1) {
        let name = package.lines().find_map(|l| l.strip_prefix("name = ")).unwrap().trim_matches('"').to_string();
        let deps = package.split("dependencies = [").nth(1).map_or("", |d| d.split(']').next().unwrap());
        let deps = deps.lines().filter_map(|l| l.trim().trim_end_matches(',').trim_matches('"').split(' ').next());
        edges.entry(name).or_default().extend(deps.filter(|d| !d.is_empty()).map(str::to_string));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = direct;
    while let Some(name) = stack.pop() {
        if seen.insert(name.clone()) {
            stack.extend(edges.get(&name).cloned().unwrap_or_default());
        }
    }
    seen
}

/// Source lines that are code: comments dropped, and each `#[cfg(test)]` item skipped
/// (unit tests may build what the rules keep out of the shipped code). Braces are counted
/// to find the item's end, which is exact for rustfmt-formatted code without braces in
/// string literals at a test module's top level.
fn code_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(|l| l.split("//").next().unwrap());
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            if !line.trim().is_empty() {
                out.push(line);
            }
            continue;
        }
        let mut depth = 0i64;
        for item in lines.by_ref() {
            depth += item.matches('{').count() as i64 - item.matches('}').count() as i64;
            if depth <= 0 && (item.contains('}') || item.trim_end().ends_with(';')) {
                break;
            }
        }
    }
    out
}

#[test]
fn the_code_line_reader_skips_comments_and_test_items_only() {
    let text = "//! doc\nuse a; // trailing\n#[cfg(test)]\nmod tests {\n    fn t() { sled() }\n}\nfn after() {}\n";
    assert_eq!(code_lines(text), ["use a; ", "fn after() {}"]);
    assert_eq!(code_lines("#[cfg(test)]\nmod tests;\nfn f() {}\n"), ["fn f() {}"]);
}

/// Files under `dirs` (relative to the root) with a code line for which `bad` holds,
/// except those whose root-relative path starts with one of `allowed`.
fn offenders(dirs: &[&str], allowed: &[&str], bad: impl Fn(&str) -> bool) -> Vec<String> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(!files.is_empty(), "no .rs files under {dirs:?}");
    files
        .into_iter()
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .filter(|f| !allowed.iter().any(|a| f.starts_with(a)))
        .filter(|f| code_lines(&std::fs::read_to_string(root.join(f)).unwrap()).into_iter().any(&bad))
        .collect()
}

/// A line that names `std::time::Instant`, directly or in a `use std::time::{…}` group.
fn uses_std_instant(line: &str) -> bool {
    let l = line.trim();
    l.contains("std::time::Instant") || (l.starts_with("use std::time::{") && l.contains("Instant"))
}

#[test]
fn no_std_instant_where_tokio_instant_belongs() {
    // The agent's and collector's code and tests run on tokio and measure with its clock (so
    // `tokio::time::pause()` works); benches and the plain-thread harness may use std's.
    let found = offenders(&["agent/src", "agent/tests", "collector/src", "collector/tests"], &[], uses_std_instant);
    assert!(found.is_empty(), "std::time::Instant used where tokio::time::Instant belongs: {found:?}");
}

#[test]
fn the_instant_check_catches_both_spellings() {
    assert!(uses_std_instant("use std::time::Instant;"));
    assert!(uses_std_instant("use std::time::{Duration, Instant};"));
    assert!(uses_std_instant("    let t = std::time::Instant::now();"));
    assert!(!uses_std_instant("use tokio::time::Instant;"));
    assert!(!uses_std_instant("use std::time::{Duration, SystemTime};"));
}

#[test]
fn only_the_store_calls_sled() {
    // commit.rs holds the group commit's one `flush_async`, on the `sled::Db` the store hands it.
    let found = offenders(&["collector/src"], &["collector/src/store/", "collector/src/commit.rs"], |l| {
        l.contains("sled::") || l.contains("use sled")
    });
    assert!(found.is_empty(), "only collector/src/store/ may call sled: {found:?}");
}

#[test]
fn only_keys_and_the_store_know_a_byte_layout() {
    let found = offenders(&["collector/src"], &["collector/src/keys.rs", "collector/src/store/"], |l| {
        ["to_be_bytes", "from_be_bytes", "to_le_bytes", "from_le_bytes"].iter().any(|f| l.contains(f))
    });
    assert!(found.is_empty(), "byte layouts belong in collector/src/keys.rs (or the store's codecs): {found:?}");
}

#[test]
fn report_and_evidence_read_through_their_source_traits() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("collector/src/evidence"), &mut files);
    for name in ["report.rs", "report"] {
        let path = root.join("collector/src").join(name);
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else if path.exists() {
            files.push(path);
        }
    }
    assert!(files.len() > 1, "no report or evidence sources found");
    let found: Vec<String> = files
        .iter()
        .filter(|f| {
            code_lines(&std::fs::read_to_string(f).unwrap())
                .into_iter()
                .any(|l| l.contains("sled") || l.contains("store::") || l.contains("Store"))
        })
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        found.is_empty(),
        "report and evidence read through ReportSource / EvidenceSource, not the store: {found:?}"
    );
}

#[test]
fn the_config_crate_does_no_io_but_reading_a_file() {
    let io = [
        "fs::write",
        "File::create",
        "OpenOptions",
        "create_dir",
        "remove_file",
        "remove_dir",
        "fs::rename",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "std::process",
        "set_var",
    ];
    let found = offenders(&["config/src"], &[], |l| io.iter().any(|call| l.contains(call)));
    assert!(found.is_empty(), "probity-config does no I/O but reading a file: {found:?}");
}

#[test]
fn every_time_zone_comes_from_the_bundled_database() {
    let host_zones = ["TimeZone::system", "TimeZone::try_system", "tz::db()", "TimeZone::get(", "/usr/share/zoneinfo"];
    let found =
        offenders(&["config/src", "agent/src", "collector/src"], &[], |l| host_zones.iter().any(|z| l.contains(z)));
    assert!(found.is_empty(), "time zones come from probity_config::tzdb(), never the host's: {found:?}");
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let jiff = manifest.lines().find(|l| l.starts_with("jiff =")).expect("jiff in [workspace.dependencies]");
    assert!(jiff.contains("tzdb-bundle-always"), "jiff must bundle the time-zone database: {jiff}");
}

#[test]
fn only_availability_adds_up_time() {
    // As far as a reading of the tree can tell: the interval operations that turn runs into
    // seconds are defined in `availability/` only, so nothing else can add up time its own way.
    let interval_ops = ["fn intersect", "fn total", "fn overlap", "fn union", "fn subtract", "fn clip_to"];
    let found = offenders(&["collector/src"], &["collector/src/availability/"], |l| {
        interval_ops.iter().any(|op| l.contains(&format!("{op}(")) || l.contains(&format!("{op}<")))
    });
    assert!(found.is_empty(), "interval arithmetic belongs in collector/src/availability/: {found:?}");
}
