//! Every `tests/data/invalid-*.toml` must fail validation with exactly the messages in
//! the `.err` file beside it (one rule per file, plus one file with many mistakes).
//! `PROBITY_BLESS=1 cargo test -p probity-config --test invalid_configs` rewrites the
//! `.err` files; review the diff before committing.

use std::path::Path;

use probity_config::{parse_agent_config, parse_collector_config};

#[test]
fn every_invalid_config_fails_with_its_expected_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let bless = std::env::var_os("PROBITY_BLESS").is_some();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.starts_with("invalid-") && name.ends_with(".toml")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let result = if name.starts_with("invalid-agent-") {
            parse_agent_config(&name, &text).map(|_| ())
        } else {
            parse_collector_config(&name, &text).map(|_| ())
        };
        let actual = match result {
            Ok(()) => {
                failures.push(format!("{name}: was accepted"));
                continue;
            }
            Err(e) => format!("{e}\n"),
        };
        let expected_path = path.with_extension("err");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!("{name}:\n--- expected\n{expected}--- actual\n{actual}"));
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} invalid configs found in {}", dir.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_file_with_many_mistakes_reports_them_all_in_one_run() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/invalid-many-mistakes.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let err = parse_collector_config("invalid-many-mistakes.toml", &text).unwrap_err();
    let paths: Vec<&str> = err.errors.iter().map(|d| d.path.as_str()).collect();
    for expected in [
        "server.raw_retention",
        "agents[0].token_sha256",
        "calendars.office.timezone",
        "services[0].probes[0].url",
        "agreements[0].availability",
    ] {
        assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
    }
    assert!(err.errors.len() >= 5);
}

#[test]
fn the_examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["collector.toml", "quickstart.toml"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        if let Err(e) = parse_collector_config(name, &text) {
            panic!("{e}");
        }
    }
    let text = std::fs::read_to_string(dir.join("agent.toml")).unwrap();
    parse_agent_config("agent.toml", &text).unwrap();
}

#[test]
fn the_collector_example_shows_exactly_its_one_deliberate_gap() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/collector.toml")).unwrap();
    let config = parse_collector_config("collector.toml", &text).unwrap();
    let gaps = probity_config::gaps::structural_gaps(&config.catalogue);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].agreement, "payments-sla");
    assert_eq!(gaps[0].dependency_agreement, "acme-psp-uc");
    assert_eq!(gaps[0].rule, probity_config::gaps::GapRule::Availability);
    assert_eq!((gaps[0].agreement_value.as_str(), gaps[0].dependency_value.as_str()), ("99.9%", "99.5%"));
}
