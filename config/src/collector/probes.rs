//! `[[services.probes]]`: the probe kind decides which keys are allowed, each kind's spec
//! is read by its own function (one per kind, like `agent/src/probe/{kind}.rs`), and
//! `resolve_probe` checks timeout, agents and quorum once every agent is known.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use toml::de::DeValue;

use super::read_id;
use crate::catalogue::*;
use crate::id::Id;
use crate::probe::*;
use crate::reader::{At, Fields, Reader, Value, index, join};
use crate::units::format_duration;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// The longest probe interval: a view is stale after two, and a day is already coarse.
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const COMMON_PROBE_KEYS: [&str; 6] = ["id", "kind", "interval", "timeout", "agents", "quorum"];
const HTTP_KEYS: [&str; 16] = [
    "url",
    "method",
    "headers",
    "body",
    "expect_status",
    "body_contains",
    "follow_redirects",
    "tls_verify",
    "body_regex",
    "expect_headers",
    "http_version",
    "ca_file",
    "client_cert",
    "client_key",
    "ip_protocol",
    "fail_if_not_tls",
];
const TCP_KEYS: [&str; 8] = ["target", "send", "expect", "tls", "starttls", "ca_file", "server_name", "ip_protocol"];
const DNS_KEYS: [&str; 6] = ["name", "record", "server", "expect", "transport", "recursion"];
const TLS_KEYS: [&str; 5] = ["target", "server_name", "min_days_valid", "ip_protocol", "ca_file"];
const ICMP_KEYS: [&str; 4] = ["target", "packets", "payload_size", "ip_protocol"];
const GRPC_KEYS: [&str; 7] = ["target", "service", "tls", "tls_verify", "server_name", "ca_file", "ip_protocol"];
const KIND_NAMES: &str = "http, tcp, dns, tls, icmp or grpc";
const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// Probe fields as read, with positions kept for the cross-reference pass.
pub(super) struct RawProbe {
    pub path: String,
    pub id: Option<At<Id>>,
    interval: Duration,
    timeout: Option<At<Duration>>,
    agents: Option<Vec<At<String>>>,
    agents_pos: usize,
    quorum: Option<At<i64>>,
    spec: Option<ProbeSpec>,
}

pub(super) fn read_probe(r: &mut Reader<'_>, v: &Value<'_>, path: &str) -> Option<RawProbe> {
    // The kind decides which keys are allowed, so read it before checking keys.
    let DeValue::Table(table) = v.get_ref() else {
        r.type_error(v, path, "a table");
        return None;
    };
    let kind_value = table.iter().find(|(k, _)| k.get_ref().as_ref() == "kind").map(|(_, v)| v);
    let kind = match kind_value {
        None => {
            r.error(v.span().start, join(path, "kind"), format!("is required but missing; use {KIND_NAMES}"));
            None
        }
        Some(k) => {
            let s = r.string(k, &join(path, "kind"))?;
            match s.value.as_str() {
                "http" | "tcp" | "dns" | "tls" | "icmp" | "grpc" => Some(s.value),
                other => {
                    r.error(s.pos, join(path, "kind"), format!("\"{other}\" is not a probe kind; use {KIND_NAMES}"));
                    None
                }
            }
        }
    };
    let kind_keys: &[&str] = match kind.as_deref() {
        Some("http") => &HTTP_KEYS,
        Some("tcp") => &TCP_KEYS,
        Some("dns") => &DNS_KEYS,
        Some("tls") => &TLS_KEYS,
        Some("icmp") => &ICMP_KEYS,
        Some("grpc") => &GRPC_KEYS,
        _ => &[],
    };
    let mut known: Vec<&str> = COMMON_PROBE_KEYS.to_vec();
    known.extend_from_slice(kind_keys);
    if kind.is_none() {
        // Without a kind we cannot say which keys are wrong; check only the shared ones.
        known.extend(
            HTTP_KEYS.iter().chain(&TCP_KEYS).chain(&DNS_KEYS).chain(&TLS_KEYS).chain(&ICMP_KEYS).chain(&GRPC_KEYS),
        );
    }
    let f = r.fields(v, path, &known)?;
    let id = read_id(r, &f, "id");
    // A day bounds every interval product (staleness is 2 intervals) far from overflow.
    let interval = r.opt_duration_at_most(&f, "interval", MAX_INTERVAL);
    let interval = interval.map_or(DEFAULT_INTERVAL, |i| i.value);
    let timeout = r.opt_positive_duration(&f, "timeout");
    let agents = r.opt_string_list(&f, "agents");
    let agents_pos = f.get("agents").map_or(f.pos, |v| v.span().start);
    let quorum = r.opt_integer(&f, "quorum");
    let spec = match kind.as_deref() {
        Some("http") => read_http(r, &f).map(ProbeSpec::Http),
        Some("tcp") => read_tcp(r, &f).map(ProbeSpec::Tcp),
        Some("dns") => read_dns(r, &f).map(ProbeSpec::Dns),
        Some("tls") => read_tls(r, &f).map(ProbeSpec::Tls),
        Some("icmp") => read_icmp(r, &f).map(ProbeSpec::Icmp),
        Some("grpc") => read_grpc(r, &f).map(ProbeSpec::Grpc),
        _ => None,
    };
    Some(RawProbe { path: path.to_string(), id, interval, timeout, agents, agents_pos, quorum, spec })
}

fn read_http(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<HttpSpec> {
    let url = r.req_string(f, "url").and_then(|u| match url::Url::parse(&u.value) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => Some(u.value),
        Ok(parsed) => {
            r.error(
                u.pos,
                f.key_path("url"),
                format!("\"{}\" has scheme \"{}\"; only http and https URLs can be probed", u.value, parsed.scheme()),
            );
            None
        }
        Err(e) => {
            r.error(
                u.pos,
                f.key_path("url"),
                format!("\"{}\" is not a URL ({e}); write e.g. \"https://example.com/health\"", u.value),
            );
            None
        }
    });
    let method = r.opt_string(f, "method").and_then(|m| {
        let upper = m.value.to_ascii_uppercase();
        if HTTP_METHODS.contains(&upper.as_str()) {
            Some(upper)
        } else {
            r.error(
                m.pos,
                f.key_path("method"),
                format!("\"{}\" is not a supported method; use one of {}", m.value, HTTP_METHODS.join(", ")),
            );
            None
        }
    });
    let method_ok = method.is_some() || f.get("method").is_none();
    let mut headers = BTreeMap::new();
    let mut headers_ok = true;
    if let Some(v) = f.get("headers")
        && let Some(map) = r.open_map(v, &f.key_path("headers"))
    {
        for (k, pos, v) in map.entries() {
            let path = join(&map.path, k);
            let valid_name =
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid_name {
                headers_ok = false;
                r.error(pos, path.clone(), format!("\"{k}\" is not a valid header name"));
            }
            match r.string(v, &path) {
                Some(s) if s.value.bytes().any(|b| b == b'\r' || b == b'\n') => {
                    headers_ok = false;
                    r.error(s.pos, path, "header values cannot contain line breaks");
                }
                Some(s) => {
                    headers.insert(k.to_string(), s.value);
                }
                None => headers_ok = false,
            }
        }
    }
    let body = r.opt_string(f, "body").map(|s| s.value);
    let mut expect_status = default_expect_status();
    let mut status_ok = true;
    if let Some(list) = r.opt_string_list(f, "expect_status") {
        expect_status.clear();
        for (i, s) in list.into_iter().enumerate() {
            match s.value.parse::<StatusRange>() {
                Ok(range) => expect_status.push(range),
                Err(e) => {
                    status_ok = false;
                    r.error(s.pos, index(&f.key_path("expect_status"), i), e);
                }
            }
        }
        if expect_status.is_empty() && status_ok {
            status_ok = false;
            r.error(
                f.get("expect_status").map_or(f.pos, |v| v.span().start),
                f.key_path("expect_status"),
                "is empty; list the expected statuses such as [\"200-299\"]",
            );
        }
    }
    let body_contains = r.opt_string(f, "body_contains").map(|s| s.value);
    let follow_redirects = r.opt_bool(f, "follow_redirects").unwrap_or(true);
    let tls_verify = r.opt_bool(f, "tls_verify").unwrap_or(true);
    let body_regex = parsed::<Pattern>(r, f, "body_regex");
    let mut expect_headers = BTreeMap::new();
    let mut expect_headers_ok = true;
    if let Some(v) = f.get("expect_headers")
        && let Some(map) = r.open_map(v, &f.key_path("expect_headers"))
    {
        for (k, pos, v) in map.entries() {
            let path = join(&map.path, k);
            if !valid_header_name(k) {
                expect_headers_ok = false;
                r.error(pos, path.clone(), format!("\"{k}\" is not a valid header name"));
            }
            match r.string(v, &path).map(|s| (s.value.parse::<Pattern>(), s.pos)) {
                Some((Ok(p), _)) => {
                    expect_headers.insert(k.to_ascii_lowercase(), p);
                }
                Some((Err(e), pos)) => {
                    expect_headers_ok = false;
                    r.error(pos, path, e);
                }
                None => expect_headers_ok = false,
            }
        }
    }
    let http_version = parsed::<HttpVersion>(r, f, "http_version");
    let ip_protocol = parsed::<IpProtocol>(r, f, "ip_protocol");
    let ca_file = read_path(r, f, "ca_file");
    let client_cert = read_path(r, f, "client_cert");
    let client_key = read_path(r, f, "client_key");
    let mut pair_ok = true;
    for (have, lacks) in [("client_cert", "client_key"), ("client_key", "client_cert")] {
        if let Some(v) = f.get(have)
            && f.get(lacks).is_none()
        {
            pair_ok = false;
            r.error(
                v.span().start,
                f.key_path(have),
                format!("needs {lacks} too: a client certificate is presented with its key"),
            );
        }
    }
    let fail_if_not_tls = r.opt_bool(f, "fail_if_not_tls").unwrap_or(false);
    if let (Some(u), Some(IpProtocol::Ip4 | IpProtocol::Ip6)) = (&url, ip_protocol.flatten()) {
        check_literal_family(r, f, u.split("://").nth(1).and_then(|rest| url_host(rest)), ip_protocol.flatten());
    }
    if !(method_ok && headers_ok && status_ok && expect_headers_ok && pair_ok) {
        return None;
    }
    Some(HttpSpec {
        body_regex: body_regex?,
        expect_headers,
        http_version: http_version?.unwrap_or_default(),
        ca_file: ca_file?,
        client_cert: client_cert?,
        client_key: client_key?,
        ip_protocol: ip_protocol?.unwrap_or_default(),
        fail_if_not_tls,
        url: url?,
        method: method.unwrap_or_else(|| "GET".into()),
        headers,
        body,
        expect_status,
        body_contains,
        follow_redirects,
        tls_verify,
    })
}

fn read_tcp(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<TcpSpec> {
    let target = read_target(r, f);
    let send = match r.opt_string(f, "send") {
        None => Some(None),
        Some(s) => match unescape(&s.value) {
            Ok(text) => Some(Some(text)),
            Err(e) => {
                r.error(s.pos, f.key_path("send"), e);
                None
            }
        },
    };
    let expect = parsed::<Pattern>(r, f, "expect");
    let tls = r.opt_bool(f, "tls").unwrap_or(false);
    let starttls = parsed::<StartTls>(r, f, "starttls");
    let ca_file = read_path(r, f, "ca_file");
    let server_name = read_server_name(r, f);
    let ip_protocol = read_ip_protocol(r, f, target.as_ref());
    let mut ok = true;
    if tls && let Some(v) = f.get("starttls") {
        ok = false;
        r.error(
            v.span().start,
            f.key_path("starttls"),
            "cannot be set with tls = true: STARTTLS begins in plain text; keep one",
        );
    }
    if !tls && f.get("starttls").is_none() {
        for key in ["ca_file", "server_name"] {
            if let Some(v) = f.get(key) {
                ok = false;
                r.error(
                    v.span().start,
                    f.key_path(key),
                    "is only used with tls = true or starttls; set one or drop it",
                );
            }
        }
    }
    if !ok {
        return None;
    }
    Some(TcpSpec {
        send: send?,
        expect: expect?,
        tls,
        starttls: starttls?,
        ca_file: ca_file?,
        server_name: server_name?,
        ip_protocol: ip_protocol?,
        ..TcpSpec::new(target?)
    })
}

fn read_icmp(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<IcmpSpec> {
    let target = r.req_string(f, "target").and_then(|t| {
        let bare = t.value.trim_start_matches('[').trim_end_matches(']');
        if valid_host(bare) && (!bare.contains(':') || bare.parse::<std::net::Ipv6Addr>().is_ok()) {
            Some(At { value: bare.to_string(), pos: t.pos })
        } else {
            r.error(t.pos, f.key_path("target"), format!("\"{}\" is not a host name or IP address", t.value));
            None
        }
    });
    let packets = match r.opt_integer(f, "packets") {
        None => Some(DEFAULT_PACKETS),
        Some(n) if (1..=100).contains(&n.value) => Some(n.value as u32),
        Some(n) => {
            r.error(n.pos, f.key_path("packets"), format!("{} is outside 1..=100", n.value));
            None
        }
    };
    let payload_size = match r.opt_integer(f, "payload_size") {
        None => Some(DEFAULT_PAYLOAD_SIZE),
        Some(n) if (0..=65_000).contains(&n.value) => Some(n.value as u16),
        Some(n) => {
            r.error(n.pos, f.key_path("payload_size"), format!("{} bytes is outside 0..=65000", n.value));
            None
        }
    };
    let ip = parsed::<IpProtocol>(r, f, "ip_protocol")?;
    let ok = check_literal_family(r, f, target.as_ref().map(|t| t.value.as_str()), ip);
    if !ok {
        return None;
    }
    Some(IcmpSpec {
        packets: packets?,
        payload_size: payload_size?,
        ip_protocol: ip.unwrap_or_default(),
        ..IcmpSpec::new(target?.value)
    })
}

fn read_grpc(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<GrpcSpec> {
    let target = read_target(r, f);
    let service = r.opt_string(f, "service").map(|s| s.value).unwrap_or_default();
    let tls = r.opt_bool(f, "tls").unwrap_or(true);
    let tls_verify = r.opt_bool(f, "tls_verify").unwrap_or(true);
    let server_name = read_server_name(r, f);
    let ca_file = read_path(r, f, "ca_file");
    let ip_protocol = read_ip_protocol(r, f, target.as_ref());
    let mut ok = true;
    if !tls {
        for key in ["tls_verify", "server_name", "ca_file"] {
            if let Some(v) = f.get(key) {
                ok = false;
                r.error(v.span().start, f.key_path(key), "is only used with tls = true; drop it or turn tls on");
            }
        }
    }
    if !ok {
        return None;
    }
    Some(GrpcSpec {
        service,
        tls,
        tls_verify,
        server_name: server_name?,
        ca_file: ca_file?,
        ip_protocol: ip_protocol?,
        ..GrpcSpec::new(target?)
    })
}

/// An optional key read with its type's `FromStr`: `Some(None)` when absent, `None`
/// when present and wrong (the error recorded).
fn parsed<T: std::str::FromStr<Err = String>>(r: &mut Reader<'_>, f: &Fields<'_, '_>, key: &str) -> Option<Option<T>> {
    let Some(v) = f.get(key) else { return Some(None) };
    let s = r.string(v, &f.key_path(key))?;
    match s.value.parse::<T>() {
        Ok(t) => Some(Some(t)),
        Err(e) => {
            r.error(s.pos, f.key_path(key), e);
            None
        }
    }
}

/// A file path on the agent host: checked for shape only, since the collector's host
/// is not the agent's.
fn read_path(r: &mut Reader<'_>, f: &Fields<'_, '_>, key: &str) -> Option<Option<String>> {
    let Some(v) = f.get(key) else { return Some(None) };
    let s = r.string(v, &f.key_path(key))?;
    if s.value.trim().is_empty() {
        r.error(s.pos, f.key_path(key), "is empty; give the path of a PEM file on the agent host");
        return None;
    }
    Some(Some(s.value))
}

fn read_server_name(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<Option<String>> {
    let Some(v) = f.get("server_name") else { return Some(None) };
    let s = r.string(v, &f.key_path("server_name"))?;
    if valid_host(&s.value) {
        Some(Some(s.value))
    } else {
        r.error(s.pos, f.key_path("server_name"), format!("\"{}\" is not a host name", s.value));
        None
    }
}

/// `ip_protocol`, refusing one an IP-literal target can never satisfy.
fn read_ip_protocol(r: &mut Reader<'_>, f: &Fields<'_, '_>, target: Option<&HostPort>) -> Option<IpProtocol> {
    let ip = parsed::<IpProtocol>(r, f, "ip_protocol")?;
    if check_literal_family(r, f, target.map(|t| t.host.as_str()), ip) {
        ip.map_or(Some(IpProtocol::Any), Some)
    } else {
        None
    }
}

/// False (with the error recorded) when `host` is an IP literal outside `ip`.
fn check_literal_family(r: &mut Reader<'_>, f: &Fields<'_, '_>, host: Option<&str>, ip: Option<IpProtocol>) -> bool {
    let (Some(host), Some(ip)) = (host, ip) else { return true };
    let Ok(literal) = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() else {
        return true;
    };
    if ip.allows(literal) {
        return true;
    }
    let pos = f.get("ip_protocol").map_or(f.pos, |v| v.span().start);
    r.error(pos, f.key_path("ip_protocol"), format!("\"{}\" excludes the target's address {literal}", ip.as_str()));
    false
}

/// The host part of a URL's `host[:port]/path` remainder.
fn url_host(rest: &str) -> Option<&str> {
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.starts_with('[') {
        authority.split_once(']').map(|(h, _)| h.trim_start_matches('['))
    } else {
        Some(authority.split(':').next().unwrap_or(authority))
    }
}

fn valid_header_name(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn read_target(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<HostPort> {
    let t = r.req_string(f, "target")?;
    match t.value.parse::<HostPort>() {
        Ok(hp) => Some(hp),
        Err(e) => {
            r.error(t.pos, f.key_path("target"), e);
            None
        }
    }
}

fn read_dns(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<DnsSpec> {
    let name = r.req_string(f, "name").and_then(|n| {
        let trimmed = n.value.trim_end_matches('.');
        if trimmed.is_empty() || !valid_host(trimmed) || trimmed.contains(':') {
            r.error(n.pos, f.key_path("name"), format!("\"{}\" is not a DNS name", n.value));
            None
        } else {
            Some(n.value)
        }
    });
    let record = match r.opt_string(f, "record") {
        None => Some(RecordType::A),
        Some(s) => match s.value.parse::<RecordType>() {
            Ok(t) => Some(t),
            Err(e) => {
                r.error(s.pos, f.key_path("record"), e);
                None
            }
        },
    };
    let server = match r.opt_string(f, "server") {
        None => Some(None),
        Some(s) => match parse_dns_server(&s.value) {
            Ok(a) => Some(Some(a)),
            Err(e) => {
                r.error(s.pos, f.key_path("server"), e);
                None
            }
        },
    };
    let expect = r.opt_string_list(f, "expect").unwrap_or_default().into_iter().map(|s| s.value).collect();
    let transport = parsed::<DnsTransport>(r, f, "transport");
    let recursion = r.opt_bool(f, "recursion").unwrap_or(true);
    Some(DnsSpec {
        server: server?,
        expect,
        transport: transport?.unwrap_or_default(),
        recursion,
        ..DnsSpec::new(name?, record?)
    })
}

fn read_tls(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<TlsSpec> {
    let target = read_target(r, f);
    let server_name = r.opt_string(f, "server_name").and_then(|s| {
        if valid_host(&s.value) {
            Some(s.value)
        } else {
            r.error(s.pos, f.key_path("server_name"), format!("\"{}\" is not a host name", s.value));
            None
        }
    });
    let server_name_ok = server_name.is_some() || f.get("server_name").is_none();
    let min_days = match r.opt_integer(f, "min_days_valid") {
        None => Some(DEFAULT_MIN_DAYS_VALID),
        Some(d) if (0..=3650).contains(&d.value) => Some(d.value as u32),
        Some(d) => {
            r.error(d.pos, f.key_path("min_days_valid"), format!("{} is outside 0..=3650 days", d.value));
            None
        }
    };
    let ip_protocol = read_ip_protocol(r, f, target.as_ref());
    let ca_file = read_path(r, f, "ca_file");
    if !server_name_ok {
        return None;
    }
    Some(TlsSpec {
        server_name,
        min_days_valid: min_days?,
        ip_protocol: ip_protocol?,
        ca_file: ca_file?,
        ..TlsSpec::new(target?)
    })
}

pub(super) fn resolve_probe(
    r: &mut Reader<'_>,
    p: RawProbe,
    all_agents: &[Id],
    agent_pos: &HashMap<String, usize>,
) -> Option<Probe> {
    let timeout = match &p.timeout {
        Some(t) => {
            if t.value > p.interval {
                r.error(
                    t.pos,
                    format!("{}.timeout", p.path),
                    format!("{} is longer than interval {}", format_duration(t.value), format_duration(p.interval)),
                );
            }
            t.value
        }
        None => DEFAULT_TIMEOUT.min(p.interval),
    };
    let agents: Vec<Id> = match &p.agents {
        None => all_agents.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for a in list {
                match all_agents.iter().find(|id| id.as_str() == a.value) {
                    Some(id) if out.contains(id) => {
                        r.error(a.pos, format!("{}.agents", p.path), format!("agent \"{}\" is listed twice", a.value))
                    }
                    Some(id) => out.push(id.clone()),
                    None => {
                        let known: Vec<&str> = agent_pos.keys().map(String::as_str).collect();
                        let hint =
                            if known.is_empty() { String::from("; no [[agents]] are defined") } else { String::new() };
                        r.error(a.pos, format!("{}.agents", p.path), format!("unknown agent \"{}\"{hint}", a.value));
                    }
                }
            }
            if list.is_empty() {
                r.error(
                    p.agents_pos,
                    format!("{}.agents", p.path),
                    "is empty; list at least one agent or leave the key out for every agent",
                );
            }
            out
        }
    };
    if p.agents.is_none() && agents.is_empty() {
        r.error(
            p.agents_pos,
            format!("{}.agents", p.path),
            "no agent can run this probe: define [[agents]] or enable [embedded_agent]",
        );
    }
    let quorum = match &p.quorum {
        None => agents.len() / 2 + 1,
        Some(q) => {
            if q.value < 1 || q.value as usize > agents.len().max(1) {
                r.error(
                    q.pos,
                    format!("{}.quorum", p.path),
                    format!("{} is outside 1..={} (the number of assigned agents)", q.value, agents.len()),
                );
            }
            q.value.max(1) as usize
        }
    };
    Some(Probe { id: p.id?.value, interval: p.interval, timeout, agents, quorum, spec: p.spec? })
}
