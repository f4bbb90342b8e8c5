//! Reading `probity-agent.toml`: who the agent is, where the collector is, its token
//! and its spool. The agent holds no probe list of its own (SPEC §5).

use std::path::PathBuf;

use crate::diag::{ConfigErrors, Diagnostics};
use crate::id::Id;
use crate::reader::Reader;
use crate::units::parse_byte_size;

pub const DEFAULT_SPOOL_MAX: u64 = 1 << 30;

/// Everything `probity-agent.toml` says.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub id: Id,
    /// Base URL of the collector (http or https).
    pub collector: url::Url,
    pub token: TokenSource,
    pub spool_dir: PathBuf,
    /// Bytes; beyond it the oldest results are dropped, and counted.
    pub spool_max: u64,
    /// Extra root certificate(s) for a collector with a private CA.
    pub ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    File(PathBuf),
    Inline(String),
}

impl AgentConfig {
    /// A warning when the bearer token would cross the network in plaintext: an `http://`
    /// collector that is not on this host's loopback (SPEC §15).
    pub fn plaintext_token_warning(&self) -> Option<String> {
        if self.collector.scheme() != "http" {
            return None;
        }
        let loopback = match self.collector.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        (!loopback).then(|| {
            format!(
                "collector {} is plain http:// on another host: the agent's bearer token crosses the network in plaintext; use https://",
                self.collector
            )
        })
    }
}

/// Parses and validates an agent config; `file` names it in error messages.
pub fn parse_agent_config(file: &str, text: &str) -> Result<AgentConfig, ConfigErrors> {
    let mut r = Reader { diags: Diagnostics::new(text) };
    let Some(root) = crate::parse_document(&mut r, text) else {
        return Err(r.diags.finish(file).unwrap_err());
    };
    let config = read(&mut r, &root);
    r.diags.finish(file)?;
    Ok(config.expect("a config with no diagnostics is complete"))
}

fn read(r: &mut Reader<'_>, root: &crate::reader::Value<'_>) -> Option<AgentConfig> {
    let f = r.fields(root, "", &["id", "collector", "token_file", "token", "spool_dir", "spool_max", "ca_file"])?;
    let id = r.req_string(&f, "id").and_then(|s| match Id::new(&s.value) {
        Ok(id) => Some(id),
        Err(e) => {
            r.error(s.pos, "id", e);
            None
        }
    });
    let collector = r.req_string(&f, "collector").and_then(|s| match url::Url::parse(&s.value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
        Ok(u) => {
            r.error(
                s.pos,
                "collector",
                format!("\"{}\" has scheme \"{}\"; use an http:// or https:// URL", s.value, u.scheme()),
            );
            None
        }
        Err(e) => {
            r.error(
                s.pos,
                "collector",
                format!("\"{}\" is not a URL ({e}); write e.g. \"https://collector.example.com:7878\"", s.value),
            );
            None
        }
    });
    let token_file = r.opt_string(&f, "token_file");
    let token = r.opt_string(&f, "token");
    let token = match (token_file, token) {
        (Some(file), None) => Some(TokenSource::File(PathBuf::from(file.value))),
        (None, Some(t)) if t.value.trim().is_empty() => {
            r.error(t.pos, "token", "is empty; paste the token printed by probity-collector new-agent");
            None
        }
        (None, Some(t)) => Some(TokenSource::Inline(t.value.trim().to_string())),
        (Some(file), Some(_)) => {
            r.error(file.pos, "token_file", "token_file and token are both set; keep one");
            None
        }
        (None, None) => {
            r.error(
                f.pos,
                "token_file",
                "is required but missing; set token_file (or token) to the agent's bearer token",
            );
            None
        }
    };
    // No default: a path the agent creates on its own would surprise whoever runs it by hand,
    // and the packaged config and systemd unit name /var/lib/probity-agent explicitly.
    let spool_dir = match r.opt_string(&f, "spool_dir") {
        Some(s) if s.value.trim().is_empty() => {
            r.error(s.pos, "spool_dir", "is empty; set the directory that keeps unsent results and the assignment");
            None
        }
        Some(s) => Some(PathBuf::from(s.value)),
        None => {
            r.error(
                f.pos,
                "spool_dir",
                "is required but missing; set the directory that keeps unsent results and the cached assignment, \
                 e.g. \"/var/lib/probity-agent\" (the systemd unit's StateDirectory)",
            );
            None
        }
    };
    let spool_max = match r.opt_string(&f, "spool_max") {
        None => Some(DEFAULT_SPOOL_MAX),
        Some(s) => match parse_byte_size(&s.value) {
            Ok(n) if n >= 1 << 20 => Some(n),
            Ok(_) => {
                r.error(s.pos, "spool_max", format!("\"{}\" is below the minimum of 1MiB", s.value));
                None
            }
            Err(e) => {
                r.error(s.pos, "spool_max", e);
                None
            }
        },
    };
    let ca_file = r.opt_string(&f, "ca_file").map(|s| PathBuf::from(s.value));
    Some(AgentConfig {
        id: id?,
        collector: collector?,
        token: token?,
        spool_dir: spool_dir?,
        spool_max: spool_max?,
        ca_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_agent_config_takes_the_defaults() {
        let c = parse_agent_config(
            "a.toml",
            "id = \"lon-1\"\ncollector = \"http://127.0.0.1:7878\"\ntoken = \"t\"\nspool_dir = \"s\"\n",
        )
        .unwrap();
        assert_eq!(c.id.as_str(), "lon-1");
        assert_eq!(c.spool_max, DEFAULT_SPOOL_MAX);
        assert_eq!(c.token, TokenSource::Inline("t".into()));
    }

    #[test]
    fn a_plaintext_collector_on_another_host_is_warned_about() {
        let warning = |collector: &str| {
            let text = format!("id = \"a\"\ncollector = \"{collector}\"\ntoken = \"t\"\nspool_dir = \"/s\"\n");
            parse_agent_config("a.toml", &text).unwrap().plaintext_token_warning()
        };
        let w = warning("http://collector.example.com:7878").expect("a warning");
        assert!(w.contains("http://collector.example.com:7878/") && w.contains("plaintext; use https://"), "{w}");
        assert!(warning("http://10.0.0.5:7878").is_some());
        for quiet in
            ["https://collector.example.com", "http://127.0.0.1:7878", "http://localhost:7878", "http://[::1]:7878"]
        {
            assert_eq!(warning(quiet), None, "{quiet}");
        }
    }

    #[test]
    fn every_agent_error_is_reported_at_once() {
        let err = parse_agent_config(
            "a.toml",
            "id = \"Lon 1\"\ncollector = \"ftp://x\"\nspool_max = \"lots\"\ncolour = \"red\"\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.errors.len(), 6, "{text}");
        assert!(text.contains("a.toml:1:6: id: \"Lon 1\" is not a valid id"), "{text}");
        assert!(text.contains("a.toml:2:13: collector: \"ftp://x\" has scheme \"ftp\""), "{text}");
        assert!(text.contains("a.toml:4:1: colour: unknown key"), "{text}");
        assert!(text.contains("token_file: is required but missing"), "{text}");
        assert!(text.contains("spool_dir: is required but missing"), "{text}");
    }
}
