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

/// A line that serialises: serde by path or import, or a derive of its traits.
fn mentions_serde(line: &str) -> bool {
    line.contains("serde") || line.contains("Serialize") || line.contains("Deserialize")
}

#[test]
fn the_arithmetics_types_carry_no_serde() {
    // Core types are not serialisable by design: `views.rs` maps them to SPEC §8's JSON.
    let found = offenders(&["collector/src/availability"], &[], mentions_serde);
    assert!(found.is_empty(), "collector/src/availability/ must not know serde (map it in views.rs): {found:?}");
}

#[test]
fn the_serde_check_catches_derives_attributes_and_imports() {
    assert!(mentions_serde("#[derive(Clone, Debug, Serialize)]"));
    assert!(mentions_serde("    #[serde(skip)]"));
    assert!(mentions_serde("use serde::{Serialize, Serializer};"));
    assert!(mentions_serde("#[derive(serde::Deserialize)]"));
    assert!(!mentions_serde("pub struct Figures {"));
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

/// A source file's code with comments and string and char literals blanked to spaces
/// (line breaks kept, so positions still give line numbers), and `#[cfg(test)]` items
/// from the first one on dropped: tests may work figures out by hand.
fn code_without_comments_strings_or_tests(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let word_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                out.push(blank(chars[i]));
                i += 1;
            }
            out.push_str("  ");
            i += 2;
        } else if !word_before && (c == 'r' || c == 'b') && matches!(next, Some('#' | '"') | Some('r')) && {
            // r"…", r#"…"#, br"…", b"…"
            let mut j = i + 1;
            if c == 'b' && chars.get(j) == Some(&'r') {
                j += 1;
            }
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            chars.get(j) == Some(&'"')
        } {
            let mut j = i + 1;
            if chars.get(j) == Some(&'r') {
                j += 1;
            }
            let raw = c == 'r' || chars.get(i + 1) == Some(&'r');
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            loop {
                match chars.get(j) {
                    None => break,
                    Some('\\') if !raw => j += 2,
                    Some('"') if (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
            let end = j.min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\''); a lifetime ('a) has no closing quote.
            let mut j = i + 1;
            if next == Some('\\') {
                j += 2;
            }
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Where code adds up or subtracts time itself instead of asking `availability`: a call to
/// (or an import of) the interval arithmetic — `intersect`, `total`, `subtract`,
/// `normalize`, `service_intervals`, `last_stretch_of` — or a `+`, `-`, `+=` or `-=` next
/// to an instant or a length in ms (`…_ms`, `.at`, `.start`, `.end`). One line each.
fn interval_arithmetic_in(text: &str) -> Vec<String> {
    const SET_ARITHMETIC: [&str; 6] =
        ["intersect", "total", "subtract", "normalize", "service_intervals", "last_stretch_of"];
    let code = code_without_comments_strings_or_tests(text);
    // Tokens: paths (`a.b_ms`, `availability::total`), numbers, and operators, with lines.
    let mut tokens: Vec<(usize, String)> = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || (chars[i] == '.' && chars.get(i + 1).is_some_and(|n| n.is_alphabetic() || *n == '_'))
                    || (chars[i] == ':' && chars.get(i + 1) == Some(&':')))
            {
                i += if chars[i] == ':' { 2 } else { 1 };
            }
            tokens.push((line, chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = if ["->", "=>", "-=", "+=", "::", ".."].contains(&two.as_str()) { two } else { c.to_string() };
            i += op.chars().count();
            tokens.push((line, op));
        }
    }
    let last_segment = |t: &str| t.rsplit(['.', ':']).next().unwrap_or("").to_string();
    let time_like = |t: &str| {
        let starts_like_a_name = t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
        starts_like_a_name
            && t.split(['.', ':'])
                .enumerate()
                .any(|(n, seg)| seg.ends_with("_ms") || (n > 0 && ["at", "start", "end"].contains(&seg)))
    };
    let mut found = Vec::new();
    let mut in_use = false;
    for (k, (line, t)) in tokens.iter().enumerate() {
        match t.as_str() {
            "use" => in_use = true,
            ";" => in_use = false,
            _ => {}
        }
        let next = tokens.get(k + 1).map(|(_, t)| t.as_str());
        if SET_ARITHMETIC.contains(&last_segment(t).as_str()) && (in_use || next == Some("(")) {
            found.push(format!("line {line}: {t}"));
        }
        if ["-", "+", "-=", "+="].contains(&t.as_str()) {
            let before = k.checked_sub(1).map(|b| tokens[b].1.as_str()).unwrap_or("");
            let after = next.unwrap_or("");
            if time_like(before) || time_like(after) {
                found.push(format!("line {line}: {before} {t} {after}"));
            }
        }
    }
    found
}

#[test]
fn the_interval_arithmetic_check_catches_what_it_is_for_and_nothing_else() {
    // What report.rs and evidence/ once did themselves.
    let reintroduced = [
        "let ms = total(&intersect(parts, &dep_down));",
        "use crate::availability::{self, Attribution, intersect, total};",
        "let tail = c.last_at.map_or(period.to_ms - period.from_ms, |last| period.to_ms - last);",
        "c.largest_gap_ms = c.largest_gap_ms.max(r.at - gap_from);",
        "dep_total_ms += ms;",
        "let x0 = pad + w * ((o.start_ms - period.from_ms) as f64 / span);",
        "let hours = calendar.service_intervals(from, to);",
    ];
    for code in reintroduced {
        assert!(!interval_arithmetic_in(code).is_empty(), "not caught: {code}");
    }
    let fine = [
        "fn f(x: i64) -> Result<i64, E> { Ok(x * 60_000) }",
        "// period.to_ms - period.from_ms is availability's job",
        r#"let s = "to_ms - from_ms"; let r = r"a_ms - b"; let c = '-';"#,
        "let achieved_ms = h.value_at_quantile(p / 100.0) as f64 / 1000.0;",
        "match x { Some(a) => a, None => -1 }",
        "availability::context_window(period.from_ms, period.to_ms, min_outage_ms, now)",
        "fn f<'a>(x: &'a str) -> &'a str { x }",
        "#[cfg(test)]\nmod tests { fn t() { let d = p.to_ms - p.from_ms; } }",
    ];
    for code in fine {
        assert!(interval_arithmetic_in(code).is_empty(), "wrongly caught: {code}: {:?}", interval_arithmetic_in(code));
    }
}

#[test]
fn reports_and_evidence_leave_adding_up_time_to_availability() {
    // ARCHITECTURE.md: every seconds figure comes from `availability`; nothing else adds up time.
    let root = workspace_root();
    let mut files = vec![root.join("collector/src/report.rs")];
    rust_files(&root.join("collector/src/evidence"), &mut files);
    assert!(files.len() > 3, "found only {files:?}");
    let mut offenders = Vec::new();
    for f in &files {
        let name = f.strip_prefix(&root).unwrap().display().to_string();
        for hit in interval_arithmetic_in(&std::fs::read_to_string(f).unwrap()) {
            offenders.push(format!("{name}: {hit}"));
        }
    }
    assert!(
        offenders.is_empty(),
        "interval arithmetic outside `availability` (move it there, with a unit test): {offenders:#?}"
    );
}
