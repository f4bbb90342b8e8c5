//! Probe specifications: the four kinds and their keys, shared by the collector's
//! catalogue and the agent's assignment (serialised with the config's key names).

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
}

impl ProbeSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Dns(_) => "dns",
            ProbeSpec::Tls(_) => "tls",
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
}

impl HttpSpec {
    pub fn status_expected(&self, status: u16) -> bool {
        self.expect_status.iter().any(|r| r.contains(status))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSpec {
    pub target: HostPort,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSpec {
    pub target: HostPort,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default = "default_min_days_valid")]
    pub min_days_valid: u32,
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
        assert_eq!(
            dns,
            ProbeSpec::Dns(DnsSpec {
                name: "localhost".into(),
                record: RecordType::Aaaa,
                server: None,
                expect: vec![]
            })
        );
    }
}
