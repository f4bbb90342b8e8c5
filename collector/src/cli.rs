//! Command-line subcommands that need no server: `check-config`, `new-agent`, `new-token`.

use std::fmt::Write as _;
use std::path::Path;

use probity_config::gaps::structural_gaps;
use probity_config::{CollectorConfig, Id, LoadError, TOKEN_PREFIX, load_collector_config, token_sha256};

/// Validates a collector config; `Ok` carries the summary and warnings to print, `Err`
/// every error (the caller exits 1).
pub fn check_config(path: &Path) -> Result<String, LoadError> {
    let config = load_collector_config(path)?;
    Ok(check_config_summary(&config))
}

/// The `ok: …` line with each structural gap as a warning before it.
pub fn check_config_summary(config: &CollectorConfig) -> String {
    let c = &config.catalogue;
    let gaps = structural_gaps(c);
    let mut out = String::new();
    for gap in &gaps {
        let _ = writeln!(out, "warning: structural gap ({}): {}", rule_name(gap.rule), gap.message);
    }
    if config.api.metrics_open && config.api.needs_token() {
        let _ = writeln!(
            out,
            "warning: [api] metrics_open = true: /metrics (agent, probe and service ids and states) answers without a token"
        );
    }
    let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    let _ = writeln!(
        out,
        "ok: {}, {}, {}, {} ({}, {})",
        plural(c.services.len(), "service"),
        plural(c.probe_count(), "probe"),
        plural(c.agreements.len(), "agreement"),
        plural(gaps.len(), "structural gap"),
        plural(c.agents.len(), "agent"),
        plural(c.defined_calendars().count(), "calendar"),
    );
    out
}

fn rule_name(rule: probity_config::gaps::GapRule) -> &'static str {
    use probity_config::gaps::GapRule;
    match rule {
        GapRule::Availability => "availability",
        GapRule::Latency => "latency",
        GapRule::Hours => "hours",
    }
}

/// A fresh agent token and the `[[agents]]` block that admits it.
#[derive(Debug)]
pub struct NewAgent {
    pub token: String,
    pub entry: String,
}

pub fn new_agent(id: &str) -> Result<NewAgent, String> {
    let id = Id::new(id).map_err(|e| format!("agent id {e}"))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot read random bytes from the OS: {e}"))?;
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = hex::encode(token_sha256(&token));
    let entry = format!("[[agents]]\nid = \"{id}\"\ntoken_sha256 = \"{hash}\"\nlabels = {{}}\n");
    Ok(NewAgent { token, entry })
}

/// A fresh API token and the `[[api.tokens]]` block that admits it (SPEC §12).
pub fn new_token(id: &str, role: &str, agreements: &[String], services: &[String]) -> Result<NewAgent, String> {
    let id = Id::new(id).map_err(|e| format!("token id {e}"))?;
    let role = probity_config::Role::parse(role)
        .ok_or_else(|| format!("\"{role}\" is not a role; use reader, operator or manager"))?;
    for (what, ids) in [("agreement", agreements), ("service", services)] {
        for i in ids {
            Id::new(i).map_err(|e| format!("{what} id {e}"))?;
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot read random bytes from the OS: {e}"))?;
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = hex::encode(token_sha256(&token));
    let list = |ids: &[String]| ids.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
    let mut entry = format!("[[api.tokens]]\nid = \"{id}\"\ntoken_sha256 = \"{hash}\"\nrole = \"{}\"\n", role.as_str());
    if !agreements.is_empty() {
        entry += &format!("agreements = [{}]\n", list(agreements));
    }
    if !services.is_empty() {
        entry += &format!("services = [{}]\n", list(services));
    }
    Ok(NewAgent { token, entry })
}

/// `evidence verify`: the lines to print, and whether everything checked out.
pub fn verify_evidence(bundle: &Path, public_key: Option<&str>) -> (String, bool) {
    use crate::evidence::verify::{parse_public_key, verify_bundle};
    let mut out = String::new();
    let pinned = match public_key {
        None => None,
        Some(arg) => {
            // HEX, or a file holding it (as served by /api/v1/evidence/public-key).
            let text = if arg.len() == 64 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
                arg.to_string()
            } else {
                match std::fs::read_to_string(arg) {
                    Ok(t) => t,
                    Err(e) => {
                        return (
                            format!(
                                "FAILED: --public-key {arg}: not 64 hex characters and not a readable file ({e})\n"
                            ),
                            false,
                        );
                    }
                }
            };
            match parse_public_key(&text) {
                Ok(k) => Some(k),
                Err(e) => return (format!("FAILED: --public-key {arg}: {e}\n"), false),
            }
        }
    };
    let file = match std::fs::File::open(bundle) {
        Ok(f) => f,
        Err(e) => return (format!("FAILED: cannot open {}: {e}\n", bundle.display()), false),
    };
    let (report, failure) = match verify_bundle(std::io::BufReader::new(file), pinned.as_ref()) {
        Ok(report) => (report, None),
        Err((report, failure)) => (report, Some(failure)),
    };
    for check in &report.checks {
        let _ = writeln!(out, "ok      {check}");
    }
    match failure {
        None => {
            let _ = writeln!(out, "VERIFIED: {}", bundle.display());
            (out, true)
        }
        Some(f) => {
            let _ = writeln!(out, "FAILED  {}: {}", f.file, f.reason);
            (out, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_agent_prints_a_token_whose_hash_is_in_the_entry() {
        let a = new_agent("lon-1").unwrap();
        assert!(a.token.starts_with(TOKEN_PREFIX));
        assert_eq!(a.token.len(), TOKEN_PREFIX.len() + 64);
        assert!(a.entry.contains(&hex::encode(token_sha256(&a.token))));
        assert!(a.entry.contains("id = \"lon-1\""));
        let b = new_agent("lon-1").unwrap();
        assert_ne!(a.token, b.token, "tokens come from the OS's randomness");
        // The entry is valid config.
        let text = format!(
            "[embedded_agent]\nenabled = false\n{}\n[[services]]\nid = \"s\"\n[[services.probes]]\nid = \"p\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\n",
            a.entry
        );
        probity_config::parse_collector_config("t.toml", &text).unwrap();
    }

    #[test]
    fn new_token_prints_a_token_and_an_entry_that_validates() {
        let t = new_token("acme-review", "manager", &[], &["s".to_string()]).unwrap();
        assert!(t.entry.contains(&hex::encode(token_sha256(&t.token))) && t.entry.contains("role = \"manager\""));
        let text = format!(
            "[embedded_agent]\nenabled = true\n{}\n[[services]]\nid = \"s\"\n[[services.probes]]\nid = \"p\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\n",
            t.entry
        );
        let config = probity_config::parse_collector_config("t.toml", &text).unwrap();
        assert_eq!(config.api.tokens[0].role, probity_config::Role::Manager);
        assert_eq!(config.api.tokens[0].services[0].as_str(), "s");
        assert!(new_token("x", "admin", &[], &[]).unwrap_err().contains("not a role"));
    }

    #[test]
    fn check_config_warns_when_metrics_are_open_beside_tokens() {
        let service = "[embedded_agent]\nenabled = true\n[[services]]\nid = \"s\"\n[[services.probes]]\nid = \"p\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\n";
        let hash = hex::encode(token_sha256("probity_x"));
        let open = format!("[api]\nmetrics_open = true\nread_tokens_sha256 = [\"{hash}\"]\n{service}");
        let summary = check_config_summary(&probity_config::parse_collector_config("t.toml", &open).unwrap());
        assert!(summary.contains("warning: [api] metrics_open = true"), "{summary}");
        let closed = format!("[api]\nread_tokens_sha256 = [\"{hash}\"]\n{service}");
        let config = probity_config::parse_collector_config("t.toml", &closed).unwrap();
        assert!(!config.api.metrics_open && !check_config_summary(&config).contains("metrics_open"));
        let wrong = format!("[api]\nmetrics_open = \"yes\"\n{service}");
        let e = probity_config::parse_collector_config("t.toml", &wrong).unwrap_err().to_string();
        assert!(e.contains("api.metrics_open"), "{e}");
    }

    #[test]
    fn new_agent_refuses_a_bad_id() {
        assert!(new_agent("Bad Id").unwrap_err().contains("not a valid id"));
    }
}
