//! The singleton tables `[server]`, `[api]`, `[embedded_agent]` and `[evidence]`: each
//! read on its own, with defaults for what is left out; the scopes of `[[api.tokens]]`
//! are resolved against agreements and services at the end.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{array_of_tables, read_id, token_hash};
use crate::catalogue::*;
use crate::id::Id;
use crate::reader::{At, Reader, Value, index};

const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 86_400);
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// More connections than this would exhaust file descriptors long before they helped.
const MAX_MAX_CONNECTIONS: i64 = 1_000_000;
const DEFAULT_MAX_CLOCK_OFFSET: Duration = Duration::from_secs(2);
/// An agent further off than this has every result refused anyway (5 minutes ahead) or
/// is plainly broken; a looser threshold would hide it.
const MAX_MAX_CLOCK_OFFSET: Duration = Duration::from_secs(3600);
const DEFAULT_MIN_FREE_DISK: u64 = 1 << 30;
/// Below this the watermark would not leave sled room to finish what it is writing (its
/// segments are 512 KiB and a flush can write several) before the disk is full.
const MIN_MIN_FREE_DISK: u64 = 16 << 20;
/// Above this the watermark is a typo (a unit too large), not a reserve.
const MAX_MIN_FREE_DISK: u64 = 1 << 50;

pub(super) fn read_server(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<ServerConfig> {
    let mut server = ServerConfig {
        listen: DEFAULT_LISTEN.parse().expect("default listen address"),
        data_dir: PathBuf::from("data"),
        raw_retention: DEFAULT_RETENTION,
        tls: None,
        max_connections: DEFAULT_MAX_CONNECTIONS,
        max_clock_offset: DEFAULT_MAX_CLOCK_OFFSET,
        min_free_disk: DEFAULT_MIN_FREE_DISK,
    };
    let Some(v) = v else { return Some(server) };
    let f = r.fields(
        v,
        "server",
        &[
            "listen",
            "data_dir",
            "raw_retention",
            "tls_cert",
            "tls_key",
            "max_connections",
            "max_clock_offset",
            "min_free_disk",
        ],
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
    if let Some(s) = r.opt_string(&f, "min_free_disk") {
        match crate::units::parse_byte_size(&s.value) {
            Ok(n) if (MIN_MIN_FREE_DISK..=MAX_MIN_FREE_DISK).contains(&n) => server.min_free_disk = n,
            Ok(_) => {
                ok = false;
                r.error(
                    s.pos,
                    "server.min_free_disk",
                    format!("\"{}\" is outside 16MiB-1024TiB; the default is \"1GiB\"", s.value),
                );
            }
            Err(e) => {
                ok = false;
                r.error(s.pos, "server.min_free_disk", e);
            }
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

/// A scope entry of an `[[api.tokens]]` table, checked once agreements and services are known.
pub(super) struct ScopeRef {
    token: usize,
    agreement: bool,
    path: String,
    name: At<String>,
}

pub(super) fn read_api(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<(ApiConfig, Vec<ScopeRef>)> {
    let Some(v) = v else { return Some((ApiConfig::default(), Vec::new())) };
    let f = r.fields(v, "api", &["read_tokens_sha256", "max_period", "tokens", "metrics_open"])?;
    let mut api = ApiConfig { metrics_open: r.opt_bool(&f, "metrics_open").unwrap_or(false), ..ApiConfig::default() };
    if f.get("max_period").is_some()
        && let Some(d) = r.opt_positive_duration(&f, "max_period")
    {
        api.max_period = d.value;
    }
    let list = r.opt_string_list(&f, "read_tokens_sha256").unwrap_or_default();
    for (i, s) in list.into_iter().enumerate() {
        // A bad hash is reported; the file is then refused as a whole.
        if let Some(h) = token_hash(r, &index("api.read_tokens_sha256", i), s) {
            api.read_tokens_sha256.push(h);
        }
    }
    let mut scopes = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, item) in array_of_tables(r, &f, "tokens") {
        let path = index("api.tokens", i);
        let Some(t) = r.fields(item, &path, &["id", "token_sha256", "role", "agreements", "services"]) else {
            continue;
        };
        let id = read_id(r, &t, "id");
        let hash = r.req_string(&t, "token_sha256").and_then(|s| token_hash(r, &t.key_path("token_sha256"), s));
        let role = r.req_string(&t, "role").and_then(|s| {
            Role::parse(&s.value).or_else(|| {
                r.error(
                    s.pos,
                    t.key_path("role"),
                    format!("\"{}\" is not a role; use reader, operator or manager", s.value),
                );
                None
            })
        });
        for (key, agreement) in [("agreements", true), ("services", false)] {
            for (j, name) in r.opt_string_list(&t, key).unwrap_or_default().into_iter().enumerate() {
                scopes.push(ScopeRef { token: api.tokens.len(), agreement, path: index(&t.key_path(key), j), name });
            }
        }
        let (Some(id), Some(token_sha256), Some(role)) = (id, hash, role) else { continue };
        if let Some(first) = ids.get(id.value.as_str()) {
            let line = r.diags.line_of(*first);
            r.error(
                id.pos,
                t.key_path("id"),
                format!("duplicate token id \"{}\" (first defined on line {line})", id.value),
            );
            continue;
        }
        ids.insert(id.value.to_string(), id.pos);
        api.tokens.push(ApiToken { id: id.value, token_sha256, role, agreements: Vec::new(), services: Vec::new() });
    }
    // One hash for two tokens would make `by` ambiguous in every record it signs.
    let mut seen: HashMap<TokenHash, &str> = HashMap::new();
    let mut dupes = Vec::new();
    for (t, h) in api.tokens.iter().map(|t| (t.id.as_str(), t.token_sha256)) {
        if let Some(first) = seen.insert(h, t) {
            dupes.push(format!("tokens \"{first}\" and \"{t}\" have the same token_sha256; give each its own token"));
        }
    }
    for d in dupes {
        r.error(f.pos, "api.tokens", d);
    }
    Some((api, scopes))
}

/// Resolves the scope lists of `[[api.tokens]]` against the agreements and services defined.
pub(super) fn resolve_scopes(
    r: &mut Reader<'_>,
    api: &mut ApiConfig,
    scopes: Vec<ScopeRef>,
    agreements: &HashSet<String>,
    services: &HashMap<String, usize>,
) {
    for s in scopes {
        let known = if s.agreement { agreements.contains(&s.name.value) } else { services.contains_key(&s.name.value) };
        let what = if s.agreement { "agreement" } else { "service" };
        if !known {
            r.error(s.name.pos, s.path, format!("unknown {what} \"{}\"", s.name.value));
            continue;
        }
        let Ok(id) = Id::new(&s.name.value) else { continue };
        if let Some(token) = api.tokens.get_mut(s.token) {
            if s.agreement { token.agreements.push(id) } else { token.services.push(id) }
        }
    }
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
