//! The shipped systemd units stay hardened: `systemd-analyze security --offline=true`
//! rates each at an exposure of 4.0 or less (README, "Run as services"), and each keeps
//! the settings the packages rely on (the probity user, its state directory, credentials).

use std::path::{Path, PathBuf};
use std::process::Command;

fn units() -> [PathBuf; 2] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    [root.join("collector/dist/probity-collector.service"), root.join("agent/dist/probity-agent.service")]
}

/// The figure in "→ Overall exposure level for NAME: 1.2 OK".
fn exposure(output: &str) -> Option<f64> {
    let line = output.lines().find(|l| l.contains("Overall exposure level for"))?;
    line.rsplit_once(": ")?.1.split_whitespace().next()?.parse().ok()
}

#[test]
fn the_exposure_figure_is_read_from_systemd_analyze_output() {
    let sample = "✓ UMask=   Files created by service are accessible only by service's own user by default\n\n\
                  → Overall exposure level for probity-agent.service: 9.6 UNSAFE 😨\n";
    assert_eq!(exposure(sample), Some(9.6));
    assert_eq!(exposure("no figure here"), None);
}

#[test]
fn each_unit_is_rated_at_most_4_by_systemd_analyze() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("SKIPPED: systemd-analyze is not installed here, so the units' exposure is unchecked");
        return;
    }
    for unit in units() {
        let out = Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(&unit).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let figure = exposure(&text).unwrap_or_else(|| {
            panic!("no exposure figure for {}: {text}{}", unit.display(), String::from_utf8_lossy(&out.stderr))
        });
        assert!(figure <= 4.0, "{}: exposure {figure} > 4.0\n{text}", unit.display());
    }
}

#[test]
fn each_unit_runs_as_probity_with_its_state_directory_and_credential() {
    for (unit, state, credential) in [
        (&units()[0], "StateDirectory=probity-collector", "LoadCredential=evidence-signing-key:"),
        (&units()[1], "StateDirectory=probity-agent", "LoadCredential=agent.token:"),
    ] {
        let text = std::fs::read_to_string(unit).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        for wanted in ["User=probity", state, credential, "UMask=0077", "NoNewPrivileges=yes", "ProtectSystem=strict"] {
            assert!(lines.iter().any(|l| l.starts_with(wanted)), "{}: no {wanted}", unit.display());
        }
        // No capability unless a drop-in grants one (icmp where unprivileged ping is off).
        assert!(
            lines.contains(&"CapabilityBoundingSet=") && lines.contains(&"AmbientCapabilities="),
            "{}",
            unit.display()
        );
    }
}
