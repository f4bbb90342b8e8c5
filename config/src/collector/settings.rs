//! The singleton tables `[server]`, `[api]`, `[embedded_agent]` and `[evidence]`: each
//! read on its own, with defaults for what is left out and no cross references.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::token_hash;
use crate::catalogue::*;
use crate::id::Id;
use crate::reader::{Reader, Value, index};

const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 86_400);
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// More connections than this would exhaust file descriptors long before they helped.
const MAX_MAX_CONNECTIONS: i64 = 1_000_000;
const DEFAULT_MAX_CLOCK_OFFSET: Duration = Duration::from_secs(2);
/// An agent further off than this has every result refused anyway (5 minutes ahead) or
/// is plainly broken; a looser threshold would hide it.
const MAX_MAX_CLOCK_OFFSET: Duration = Duration::from_secs(3600);

pub(super) fn read_server(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<ServerConfig> {
    let mut server = ServerConfig {
        listen: DEFAULT_LISTEN.parse().expect("default listen address"),
        data_dir: PathBuf::from("data"),
        raw_retention: DEFAULT_RETENTION,
        tls: None,
        max_connections: DEFAULT_MAX_CONNECTIONS,
        max_clock_offset: DEFAULT_MAX_CLOCK_OFFSET,
    };
    let Some(v) = v else { return Some(server) };
    let f = r.fields(
        v,
        "server",
        &["listen", "data_dir", "raw_retention", "tls_cert", "tls_key", "max_connections", "max_clock_offset"],
    )?;
    let mut ok = true;
    if let Some(listen) = r.opt_string(&f, "listen") {
        match listen.value.parse::<SocketAddr>() {
            Ok(a) => server.listen = a,
            Err(_) => {
                ok = false;
                r.error(
                    listen.pos,
                    "server.listen",
                    format!(
                        "\"{}\" is not an ip:port address; write e.g. \"127.0.0.1:7878\" or \"0.0.0.0:7878\"",
                        listen.value
                    ),
                );
            }
        }
    }
    if let Some(d) = r.opt_string(&f, "data_dir") {
        if d.value.trim().is_empty() {
            ok = false;
            r.error(d.pos, "server.data_dir", "is empty; give a directory for the database");
        }
        server.data_dir = PathBuf::from(d.value);
    }
    if f.get("raw_retention").is_some() {
        match r.opt_positive_duration(&f, "raw_retention") {
            Some(d) => server.raw_retention = d.value,
            None => ok = false,
        }
    }
    if let Some(n) = r.opt_integer(&f, "max_connections") {
        match usize::try_from(n.value) {
            Ok(max) if (1..=MAX_MAX_CONNECTIONS).contains(&n.value) => server.max_connections = max,
            _ => {
                ok = false;
                r.error(
                    n.pos,
                    "server.max_connections",
                    format!("{} is outside 1-{MAX_MAX_CONNECTIONS}; the default is {DEFAULT_MAX_CONNECTIONS}", n.value),
                );
            }
        }
    }
    if f.get("max_clock_offset").is_some() {
        match r.opt_duration_at_most(&f, "max_clock_offset", MAX_MAX_CLOCK_OFFSET) {
            Some(d) => server.max_clock_offset = d.value,
            None => ok = false,
        }
    }
    let cert = r.opt_string(&f, "tls_cert");
    let key = r.opt_string(&f, "tls_key");
    match (cert, key) {
        (Some(c), Some(k)) => server.tls = Some(TlsFiles { cert: c.value.into(), key: k.value.into() }),
        (Some(c), None) => {
            ok = false;
            r.error(c.pos, "server.tls_key", "is missing; set both tls_cert and tls_key to serve HTTPS, or neither");
        }
        (None, Some(k)) => {
            ok = false;
            r.error(k.pos, "server.tls_cert", "is missing; set both tls_cert and tls_key to serve HTTPS, or neither");
        }
        (None, None) => {}
    }
    ok.then_some(server)
}

pub(super) fn read_api(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<ApiConfig> {
    let Some(v) = v else { return Some(ApiConfig::default()) };
    let f = r.fields(v, "api", &["read_tokens_sha256", "max_period"])?;
    let mut api = ApiConfig::default();
    if f.get("max_period").is_some() {
        api.max_period = r.opt_positive_duration(&f, "max_period")?.value;
    }
    let list = r.opt_string_list(&f, "read_tokens_sha256").unwrap_or_default();
    for (i, s) in list.into_iter().enumerate() {
        api.read_tokens_sha256.push(token_hash(r, &index("api.read_tokens_sha256", i), s)?);
    }
    Some(api)
}

pub(super) fn read_embedded(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<EmbeddedAgent> {
    let mut e = EmbeddedAgent { enabled: false, id: Id::new("local").expect("valid") };
    let Some(v) = v else { return Some(e) };
    let f = r.fields(v, "embedded_agent", &["enabled", "id"])?;
    e.enabled = r.opt_bool(&f, "enabled").unwrap_or(false);
    if let Some(s) = r.opt_string(&f, "id") {
        match Id::new(&s.value) {
            Ok(id) => e.id = id,
            Err(msg) => {
                r.error(s.pos, "embedded_agent.id", msg);
                return None;
            }
        }
    }
    Some(e)
}

pub(super) fn read_evidence(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<EvidenceConfig> {
    let Some(v) = v else { return Some(EvidenceConfig::default()) };
    let f = r.fields(v, "evidence", &["signing_key"])?;
    Some(EvidenceConfig { signing_key: r.opt_string(&f, "signing_key").map(|s| PathBuf::from(s.value)) })
}
