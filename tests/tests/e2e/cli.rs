//! The command lines of SPEC §3 as a user runs them: exit codes, summaries, errors, `--help`.

use std::process::{Command, Output};

use probity_tests::{bin, workspace_root};

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name)).args(args).current_dir(workspace_root()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_config_accepts_the_example_and_prints_its_one_structural_gap() {
    let out = run("probity-collector", &["check-config", "config/examples/collector.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("warning: structural gap (availability): sla payments-sla on payments-api depends on acme-psp, whose uc acme-psp-uc targets 99.5% availability, below 99.9%"), "{stdout}");
    assert!(stdout.contains("ok: 3 services, 12 probes, 3 agreements, 1 structural gap"), "{stdout}");
}

#[test]
fn check_config_accepts_the_quickstart_and_the_agent_example() {
    let out = run("probity-collector", &["check-config", "config/examples/quickstart.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 structural gaps"));
    // The agent's check-config also reads the token file, which on this host is absent...
    let out = run("probity-agent", &["check-config", "config/examples/agent.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("token file /etc/probity/agent.token"), "{}", text(&out.stderr));
    // ...and once it is there, the example is accepted as it stands.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("agent.token");
    std::fs::write(&token, "probity_0123\n").unwrap();
    let example = std::fs::read_to_string(workspace_root().join("config/examples/agent.toml")).unwrap();
    let example = example.replace("/etc/probity/agent.token", &token.display().to_string());
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, example).unwrap();
    let out = run("probity-agent", &["check-config", &config.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: agent lon-1"));
}

#[test]
fn check_config_exits_1_with_every_error() {
    let out = run("probity-collector", &["check-config", "config/tests/data/invalid-many-mistakes.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.lines().count() >= 5, "{stderr}");
    assert!(stderr.contains("config/tests/data/invalid-many-mistakes.toml:23:13: services[0].probes[0].timeout: 30s is longer than interval 10s"), "{stderr}");
}

#[test]
fn check_config_on_a_missing_file_says_so() {
    let out = run("probity-collector", &["check-config", "no/such/file.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read no/such/file.toml"), "{}", text(&out.stderr));
    let out = run("probity-agent", &["check-config", "no/such/agent.toml"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn new_agent_prints_a_token_and_an_entry_holding_its_sha256() {
    let out = run("probity-collector", &["new-agent", "par-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.lines().find(|l| l.starts_with(probity_config::TOKEN_PREFIX)).expect("a token line");
    let hash = hex_sha256(token);
    assert!(stdout.contains(&format!("token_sha256 = \"{hash}\"")), "{stdout}");
    assert!(stdout.contains("id = \"par-1\""));
    let out = run("probity-collector", &["new-agent", "Not Valid"]);
    assert_eq!(out.status.code(), Some(1));
}

fn hex_sha256(token: &str) -> String {
    probity_config::token_sha256(token).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_command_answers_help() {
    for (binary, args) in [
        ("probity-collector", vec!["--help"]),
        ("probity-collector", vec!["check-config", "--help"]),
        ("probity-collector", vec!["new-agent", "--help"]),
        ("probity-collector", vec!["evidence", "verify", "--help"]),
        ("probity-agent", vec!["--help"]),
        ("probity-agent", vec!["check-config", "--help"]),
        ("probity-agent", vec!["probe", "--help"]),
    ] {
        let out = run(binary, &args);
        assert!(out.status.success(), "{binary} {args:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Usage:"), "{binary} {args:?}");
    }
}

#[test]
fn every_db_command_says_what_it_does_when_it_is_safe_and_its_exit_codes() {
    for (command, safe) in [
        ("check", "Safe at any time"),
        ("rebuild", "Safe only with the collector stopped"),
        ("backup", "Safe while the collector runs"),
        ("restore", "Safe only with the collector stopped"),
    ] {
        let out = run("probity-collector", &["db", command, "--help"]);
        assert!(out.status.success(), "db {command}: {}", text(&out.stderr));
        let help = text(&out.stdout);
        for needed in ["Usage:", safe, "Exit codes: 0", "--config"] {
            assert!(help.contains(needed), "db {command} --help lacks {needed:?}:\n{help}");
        }
    }
}

#[test]
fn agent_check_config_warns_about_a_plaintext_token_and_a_token_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = probity_tests::write_file(dir.path(), "agent.token", b"probity_secret\n");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "id = \"lon-1\"\ncollector = \"http://collector.example.com:7878\"\ntoken_file = \"{}\"\nspool_dir = \"{}\"\n",
        token.display(),
        dir.path().join("spool").display()
    );
    let path = probity_tests::write_file(dir.path(), "agent.toml", config.as_bytes());
    let out = run("probity-agent", &["check-config", path.to_str().unwrap()]);
    assert!(out.status.success(), "warnings do not fail the check: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning: collector http://collector.example.com:7878/ is plain http:// on another host: the agent's bearer token crosses the network in plaintext; use https://"), "{stderr}");
    assert!(stderr.contains("is readable by group or others (mode 0644); chmod 600"), "{stderr}");
    // Loopback and a private token file: nothing to say.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = config.replace("collector.example.com", "127.0.0.1");
    let path = probity_tests::write_file(dir.path(), "agent.toml", config.as_bytes());
    let out = run("probity-agent", &["check-config", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(!text(&out.stderr).contains("warning"), "{}", text(&out.stderr));
}
