//! Probe specifications: the kinds and their keys, shared by the collector's catalogue
//! and the agent's assignment (serialised with the config's key names).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What to probe and how to judge it. One closed enum: adding a kind is one arm here
/// and one file in the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProbeSpec {
    Http(HttpSpec),
    Tcp(TcpSpec),
    Dns(DnsSpec),
    Tls(TlsSpec),
    Icmp(IcmpSpec),
    Grpc(GrpcSpec),
}

impl ProbeSpec {
    /// Every kind's name, in the order `kind()` numbers them.
    pub const KINDS: [&'static str; 6] = ["http", "tcp", "dns", "tls", "icmp", "grpc"];

    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Dns(_) => "dns",
            ProbeSpec::Tls(_) => "tls",
            ProbeSpec::Icmp(_) => "icmp",
            ProbeSpec::Grpc(_) => "grpc",
        }
    }

    /// A one-line description of the target, for logs and reports.
    pub fn target(&self) -> String {
        match self {
            ProbeSpec::Http(s) => format!("{} {}", s.method, s.url),
            ProbeSpec::Tcp(s) => s.target.to_string(),
            ProbeSpec::Dns(s) => match &s.server {
                Some(server) => format!("{} {} @{server}", s.name, s.record),
                None => format!("{} {}", s.name, s.record),
            },
            ProbeSpec::Tls(s) => s.target.to_string(),
            ProbeSpec::Icmp(s) => s.target.clone(),
            ProbeSpec::Grpc(s) if s.service.is_empty() => s.target.to_string(),
            ProbeSpec::Grpc(s) => format!("{} service \"{}\"", s.target, s.service),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSpec {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default = "default_expect_status")]
    pub expect_status: Vec<StatusRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// A regex the body must match (searched in its first MiB, like `body_contains`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<Pattern>,
    /// Header name (any case) → regex its value must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expect_headers: BTreeMap<String, Pattern>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub http_version: HttpVersion,
    /// PEM roots trusted for this probe, besides the system's (a path on the agent host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// PEM certificate chain and key presented to the server (paths on the agent host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ip_protocol: IpProtocol,
    /// Down when the final response did not come over TLS (a redirect to `http://`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail_if_not_tls: bool,
}

impl Default for HttpSpec {
    fn default() -> Self {
        HttpSpec {
            url: String::new(),
            method: default_method(),
            headers: BTreeMap::new(),
            body: None,
            expect_status: default_expect_status(),
            body_contains: None,
            follow_redirects: true,
            tls_verify: true,
            body_regex: None,
            expect_headers: BTreeMap::new(),
            http_version: HttpVersion::Any,
            ca_file: None,
            client_cert: None,
            client_key: None,
            ip_protocol: IpProtocol::Any,
            fail_if_not_tls: false,
        }
    }
}

impl HttpSpec {
    pub fn status_expected(&self, status: u16) -> bool {
        self.expect_status.iter().any(|r| r.contains(status))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSpec {
    pub target: HostPort,
    /// Bytes to send once connected (and after TLS), escapes already decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// A regex the reply must match; read until it does, the peer closes, or the deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Pattern>,
    /// TLS right after connect.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls: bool,
    /// Plain text first, then the protocol's upgrade to TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<StartTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ip_protocol: IpProtocol,
}

impl TcpSpec {
    pub fn new(target: HostPort) -> TcpSpec {
        TcpSpec {
            target,
            send: None,
            expect: None,
            tls: false,
            starttls: None,
            ca_file: None,
            server_name: None,
            ip_protocol: IpProtocol::Any,
        }
    }

    /// Whether a TLS handshake happens at all (directly or after STARTTLS).
    pub fn uses_tls(&self) -> bool {
        self.tls || self.starttls.is_some()
    }

    pub fn effective_server_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.target.host)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsSpec {
    pub name: String,
    #[serde(default)]
    pub record: RecordType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub transport: DnsTransport,
    /// The RD bit: ask the server to recurse (off to check an authoritative server).
    #[serde(default = "yes")]
    pub recursion: bool,
}

impl DnsSpec {
    pub fn new(name: impl Into<String>, record: RecordType) -> DnsSpec {
        DnsSpec {
            name: name.into(),
            record,
            server: None,
            expect: Vec::new(),
            transport: DnsTransport::Udp,
            recursion: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSpec {
    pub target: HostPort,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default = "default_min_days_valid")]
    pub min_days_valid: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ip_protocol: IpProtocol,
    /// PEM roots trusted for this probe, besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

impl TlsSpec {
    pub fn new(target: HostPort) -> TlsSpec {
        TlsSpec {
            target,
            server_name: None,
            min_days_valid: DEFAULT_MIN_DAYS_VALID,
            ip_protocol: IpProtocol::Any,
            ca_file: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcmpSpec {
    /// A host name or an IP literal.
    pub target: String,
    #[serde(default = "default_packets")]
    pub packets: u32,
    /// Bytes of payload after the 8-byte ICMP header (56, as `ping`).
    #[serde(default = "default_payload_size")]
    pub payload_size: u16,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ip_protocol: IpProtocol,
}

impl IcmpSpec {
    pub fn new(target: impl Into<String>) -> IcmpSpec {
        IcmpSpec {
            target: target.into(),
            packets: DEFAULT_PACKETS,
            payload_size: DEFAULT_PAYLOAD_SIZE,
            ip_protocol: IpProtocol::Any,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcSpec {
    pub target: HostPort,
    /// The service asked about (`grpc.health.v1.Health/Check`); "" is the whole server.
    #[serde(default)]
    pub service: String,
    #[serde(default = "yes")]
    pub tls: bool,
    #[serde(default = "yes")]
    pub tls_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ip_protocol: IpProtocol,
}

impl GrpcSpec {
    pub fn new(target: HostPort) -> GrpcSpec {
        GrpcSpec {
            target,
            service: String::new(),
            tls: true,
            tls_verify: true,
            server_name: None,
            ca_file: None,
            ip_protocol: IpProtocol::Any,
        }
    }

    pub fn effective_server_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.target.host)
    }
}

/// Which address families a probe may connect over (blackbox_exporter's
/// `preferred_ip_protocol` with no fallback): `any` tries every address in the order
/// the resolver gave them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpProtocol {
    #[default]
    Any,
    Ip4,
    Ip6,
}

impl IpProtocol {
    pub const NAMES: &'static str = "any, ip4 or ip6";

    pub fn allows(self, ip: std::net::IpAddr) -> bool {
        match self {
            IpProtocol::Any => true,
            IpProtocol::Ip4 => ip.is_ipv4(),
            IpProtocol::Ip6 => ip.is_ipv6(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IpProtocol::Any => "any",
            IpProtocol::Ip4 => "ip4",
            IpProtocol::Ip6 => "ip6",
        }
    }
}

impl FromStr for IpProtocol {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "any" => Ok(IpProtocol::Any),
            "ip4" => Ok(IpProtocol::Ip4),
            "ip6" => Ok(IpProtocol::Ip6),
            _ => Err(format!("\"{text}\" is not an IP protocol; use {}", IpProtocol::NAMES)),
        }
    }
}

/// The HTTP version an `http` probe speaks: `any` offers h2 and http/1.1 over TLS
/// (ALPN) and speaks 1.1 in the clear; `2` insists on HTTP/2 (ALPN over TLS, prior
/// knowledge in the clear).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
    #[default]
    #[serde(rename = "any")]
    Any,
    #[serde(rename = "1.1")]
    Http1,
    #[serde(rename = "2")]
    Http2,
}

impl FromStr for HttpVersion {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "any" => Ok(HttpVersion::Any),
            "1.1" => Ok(HttpVersion::Http1),
            "2" => Ok(HttpVersion::Http2),
            _ => Err(format!("\"{text}\" is not an HTTP version; use \"any\", \"1.1\" or \"2\"")),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsTransport {
    /// UDP, retried over TCP when the answer comes back truncated.
    #[default]
    Udp,
    Tcp,
}

impl FromStr for DnsTransport {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "udp" => Ok(DnsTransport::Udp),
            "tcp" => Ok(DnsTransport::Tcp),
            _ => Err(format!(
                "\"{text}\" is not a DNS transport; use \"udp\" (retried over TCP when truncated) or \"tcp\""
            )),
        }
    }
}

/// The plain-text protocols whose upgrade to TLS a `tcp` probe can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    Smtp,
    Imap,
    Pop3,
}

impl StartTls {
    pub fn as_str(self) -> &'static str {
        match self {
            StartTls::Smtp => "smtp",
            StartTls::Imap => "imap",
            StartTls::Pop3 => "pop3",
        }
    }
}

impl FromStr for StartTls {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "smtp" => Ok(StartTls::Smtp),
            "imap" => Ok(StartTls::Imap),
            "pop3" => Ok(StartTls::Pop3),
            _ => Err(format!("\"{text}\" is not a STARTTLS protocol; use smtp, imap or pop3")),
        }
    }
}

/// A regular expression (Rust `regex` syntax), compiled once when the spec is read.
#[derive(Clone, Debug)]
pub struct Pattern(regex::Regex);

impl Pattern {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }

    pub fn is_match_bytes(&self, bytes: &[u8]) -> bool {
        // Bodies need not be UTF-8: match the lossy text, as a person reading it would.
        self.0.is_match(&String::from_utf8_lossy(bytes))
    }
}

impl FromStr for Pattern {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        regex::RegexBuilder::new(text).size_limit(1 << 20).build().map(Pattern).map_err(|e| {
            let detail = e.to_string();
            // The regex crate's message spans lines with a caret diagram; keep its last line.
            let last = detail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid");
            format!("\"{text}\" is not a valid regex: {}", last.trim().trim_start_matches("error: "))
        })
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Decodes `\n`, `\r`, `\t`, `\0`, `\\` and `\xNN` (ASCII) in a `send` text, as
/// blackbox_exporter's `query_response` and `printf` read them.
pub fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 && b.is_ascii() => out.push(char::from(b)),
                    _ => return Err(format!("\\x{hex} is not an ASCII byte; write \\x00 to \\x7f")),
                }
            }
            Some(other) => {
                return Err(format!("\\{other} is not an escape; use \\n, \\r, \\t, \\0, \\\\ or \\xNN"));
            }
            None => return Err("ends with a lone \\; write \\\\ for a backslash".into()),
        }
    }
    Ok(out)
}

pub const DEFAULT_PACKETS: u32 = 1;
pub const DEFAULT_PAYLOAD_SIZE: u16 = 56;

fn default_packets() -> u32 {
    DEFAULT_PACKETS
}

fn default_payload_size() -> u16 {
    DEFAULT_PAYLOAD_SIZE
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl TlsSpec {
    /// The name the certificate must match: `server_name`, else the target's host.
    pub fn effective_server_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.target.host)
    }
}

pub const DEFAULT_MIN_DAYS_VALID: u32 = 14;

fn default_method() -> String {
    "GET".into()
}

pub fn default_expect_status() -> Vec<StatusRange> {
    vec![StatusRange { lo: 200, hi: 399 }]
}

fn yes() -> bool {
    true
}

fn default_min_days_valid() -> u32 {
    DEFAULT_MIN_DAYS_VALID
}

/// An inclusive range of HTTP status codes, written `"200-299"` or `"204"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    pub fn contains(&self, status: u16) -> bool {
        (self.lo..=self.hi).contains(&status)
    }
}

impl FromStr for StatusRange {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("\"{text}\" is not a status or status range; write e.g. \"200-299\" or \"204\"");
        let code = |s: &str| -> Result<u16, String> {
            let n: u16 = s.trim().parse().map_err(|_| bad())?;
            if (100..=599).contains(&n) {
                Ok(n)
            } else {
                Err(format!("\"{text}\": {n} is not an HTTP status (100-599)"))
            }
        };
        let (lo, hi) = match text.split_once('-') {
            Some((a, b)) => (code(a)?, code(b)?),
            None => (code(text)?, code(text)?),
        };
        if lo > hi {
            return Err(format!("\"{text}\" starts above where it ends"));
        }
        Ok(StatusRange { lo, hi })
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi { write!(f, "{}", self.lo) } else { write!(f, "{}-{}", self.lo, self.hi) }
    }
}

impl Serialize for StatusRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A `host:port` target (`[::1]:443` for IPv6 literals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl FromStr for HostPort {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("\"{text}\" is not host:port; write e.g. \"db.example.com:5432\" or \"[::1]:443\"");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host = if let Some(inner) = host.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(bad)?;
            inner.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            inner
        } else {
            host
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 || host.is_empty() || !valid_host(host) {
            return Err(bad());
        }
        Ok(HostPort { host: host.to_string(), port })
    }
}

/// Hostnames and IP literals: letters, digits, '-', '.', and ':' for IPv6.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ':' || c == '_')
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for HostPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// DNS record types a `dns` probe can ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    #[default]
    A,
    Aaaa,
    Cname,
    Mx,
    Ns,
    Txt,
    Srv,
    Soa,
}

impl RecordType {
    pub const ALL: [RecordType; 8] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::Mx,
        RecordType::Ns,
        RecordType::Txt,
        RecordType::Srv,
        RecordType::Soa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Mx => "MX",
            RecordType::Ns => "NS",
            RecordType::Txt => "TXT",
            RecordType::Srv => "SRV",
            RecordType::Soa => "SOA",
        }
    }
}

impl FromStr for RecordType {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        RecordType::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(text)).ok_or_else(|| {
            format!("\"{text}\" is not a supported record type; use A, AAAA, CNAME, MX, NS, TXT, SRV or SOA")
        })
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a DNS server as `ip:port` or a bare `ip` (port 53).
pub fn parse_dns_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!("\"{text}\" is not a DNS server address; write ip:port such as \"192.0.2.53:53\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_parse_and_print() {
        assert_eq!("200-299".parse(), Ok(StatusRange { lo: 200, hi: 299 }));
        assert_eq!("204".parse::<StatusRange>().unwrap().to_string(), "204");
        assert!("299-200".parse::<StatusRange>().is_err());
        assert!("2xx".parse::<StatusRange>().is_err());
        assert!("700".parse::<StatusRange>().is_err());
    }

    #[test]
    fn host_port_accepts_names_and_ip_literals() {
        let hp: HostPort = "db.example.com:5432".parse().unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("db.example.com", 5432));
        let v6: HostPort = "[::1]:443".parse().unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:443");
        for bad in ["example.com", "example.com:", ":80", "a b:80", "h:0", "h:99999", "[::1:443"] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_serialises_with_config_key_names_and_defaults_fill_in() {
        let json = r#"{"kind":"http","url":"http://127.0.0.1:8080/health"}"#;
        let spec: ProbeSpec = serde_json::from_str(json).unwrap();
        let ProbeSpec::Http(http) = &spec else { panic!("not http") };
        assert_eq!(http.method, "GET");
        assert_eq!(http.expect_status, default_expect_status());
        assert!(http.follow_redirects && http.tls_verify);
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["expect_status"], serde_json::json!(["200-399"]));
        let dns: ProbeSpec = serde_json::from_str(r#"{"kind":"dns","name":"localhost","record":"AAAA"}"#).unwrap();
        assert_eq!(dns, ProbeSpec::Dns(DnsSpec::new("localhost", RecordType::Aaaa)));
    }

    #[test]
    fn send_escapes_decode_as_printf_reads_them() {
        assert_eq!(unescape(r"EHLO probity\r\n").unwrap(), "EHLO probity\r\n");
        assert_eq!(unescape(r"a\tb\\c\x41\0").unwrap(), "a\tb\\cA\0");
        assert!(unescape(r"bad\q").unwrap_err().contains(r"\q is not an escape"));
        assert!(unescape(r"\xff").is_err());
        assert!(unescape(r"\x4").is_err());
        assert!(unescape("tail\\").is_err());
    }

    #[test]
    fn patterns_compile_once_and_say_what_is_wrong() {
        let p: Pattern = "^220 .*ESMTP".parse().unwrap();
        assert!(p.is_match("220 mail.example.com ESMTP ready"));
        assert!(p.is_match_bytes(b"220 x ESMTP\xff"));
        let e = "(unclosed".parse::<Pattern>().unwrap_err();
        assert!(e.starts_with("\"(unclosed\" is not a valid regex: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn new_keys_default_as_the_spec_says() {
        let dns: ProbeSpec = serde_json::from_str(r#"{"kind":"dns","name":"example.com"}"#).unwrap();
        let ProbeSpec::Dns(dns) = dns else { panic!("not dns") };
        assert_eq!((dns.transport, dns.recursion), (DnsTransport::Udp, true));
        let icmp: ProbeSpec = serde_json::from_str(r#"{"kind":"icmp","target":"192.0.2.1"}"#).unwrap();
        assert_eq!(icmp, ProbeSpec::Icmp(IcmpSpec::new("192.0.2.1")));
        let grpc: ProbeSpec = serde_json::from_str(r#"{"kind":"grpc","target":"h:50051"}"#).unwrap();
        let ProbeSpec::Grpc(grpc) = grpc else { panic!("not grpc") };
        assert!(grpc.tls && grpc.tls_verify && grpc.service.is_empty());
        let http: ProbeSpec = serde_json::from_str(
            r#"{"kind":"http","url":"https://h/","http_version":"2","expect_headers":{"content-type":"json"}}"#,
        )
        .unwrap();
        let ProbeSpec::Http(http) = http else { panic!("not http") };
        assert_eq!(http.http_version, HttpVersion::Http2);
        assert!(http.expect_headers["content-type"].is_match("application/json"));
        let back = serde_json::to_value(ProbeSpec::Http(http)).unwrap();
        assert_eq!(back["http_version"], "2");
        assert_eq!(back["expect_headers"]["content-type"], "json");
    }
}
