//! `probity-agent probe TARGET`: one probe from the command line, printed with its
//! phase timings the way `curl -w` would, for operators debugging from a host.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use probity_config::probe::{
    DnsSpec, GrpcSpec, HttpSpec, IcmpSpec, ProbeSpec, RecordType, TcpSpec, TlsSpec, parse_dns_server,
};

use crate::probe::{Outcome, expiry_words, human};

const SCHEMES: &str = "http(s)://, tcp://, dns://, tls://, icmp:// or grpc://";

/// Reads `https://…`, `tcp://HOST:PORT`, `dns://NAME[/TYPE][@SERVER]`, `tls://HOST:PORT`,
/// `icmp://HOST` or `grpc://HOST:PORT`.
pub fn parse_target(target: &str) -> Result<ProbeSpec, String> {
    let (scheme, rest) =
        target.split_once("://").ok_or_else(|| format!("\"{target}\" has no scheme; write {SCHEMES}"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {
            let url = url::Url::parse(target).map_err(|e| format!("\"{target}\" is not a URL: {e}"))?;
            if url.host_str().is_none() {
                return Err(format!("\"{target}\" has no host"));
            }
            Ok(ProbeSpec::Http(HttpSpec { url: target.to_string(), ..HttpSpec::default() }))
        }
        "tcp" => Ok(ProbeSpec::Tcp(TcpSpec::new(rest.trim_end_matches('/').parse()?))),
        "tls" => Ok(ProbeSpec::Tls(TlsSpec::new(rest.trim_end_matches('/').parse()?))),
        "dns" => {
            let (rest, server) = match rest.rsplit_once('@') {
                Some((r, s)) => (r, Some(parse_dns_server(s)?)),
                None => (rest, None),
            };
            let (name, record) = match rest.split_once('/') {
                Some((n, t)) if !t.is_empty() => (n, t.parse::<RecordType>()?),
                Some((n, _)) => (n, RecordType::A),
                None => (rest, RecordType::A),
            };
            if name.is_empty() {
                return Err(format!("\"{target}\" names nothing to look up; write dns://example.com/A"));
            }
            Ok(ProbeSpec::Dns(DnsSpec { server, ..DnsSpec::new(name, record) }))
        }
        "icmp" => {
            let host = rest.trim_end_matches('/').trim_start_matches('[').trim_end_matches(']');
            if !probity_config::probe::valid_host(host) {
                return Err(format!("\"{target}\" names no host; write icmp://HOST"));
            }
            Ok(ProbeSpec::Icmp(IcmpSpec::new(host)))
        }
        "grpc" => Ok(ProbeSpec::Grpc(GrpcSpec::new(rest.trim_end_matches('/').parse()?))),
        other => Err(format!("cannot probe {other}://; write {SCHEMES}")),
    }
}

/// The outcome as an operator reads it: result line, one line per phase, then what came
/// back (DNS answers and each query's transport, the certificate chain; HTTP headers
/// with `verbose`).
pub fn render(spec: &ProbeSpec, outcome: &Outcome) -> String {
    render_with(spec, outcome, false)
}

pub fn render_with(spec: &ProbeSpec, outcome: &Outcome, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "probe       {} {}", spec.kind(), spec.target());
    match &outcome.result {
        Ok(()) => {
            let _ = writeln!(out, "result      up");
        }
        Err(f) => {
            let _ = writeln!(out, "result      down ({}): {}", f.kind, f.message);
        }
    }
    let d = &outcome.details;
    if let Some(status) = d.status {
        match d.http_version {
            Some(v) => writeln!(out, "status      {status} ({v})"),
            None => writeln!(out, "status      {status}"),
        }
        .ok();
    }
    let p = &d.phases;
    for (name, value) in
        [("dns", p.dns_us), ("connect", p.connect_us), ("tls", p.tls_us), ("first byte", p.first_byte_us)]
    {
        if let Some(us) = value {
            let _ = writeln!(out, "{name:<11} {}", human(Duration::from_micros(us)));
        }
    }
    let _ = writeln!(out, "total       {}", human(outcome.duration));
    for a in &d.attempts {
        let connect =
            a.connect_us.map(|c| format!("connected {}, ", human(Duration::from_micros(c)))).unwrap_or_default();
        let cut = if a.truncated { ", truncated" } else { "" };
        let _ = writeln!(
            out,
            "query       {} {connect}answer {} ({} bytes{cut})",
            a.transport,
            human(Duration::from_micros(a.answer_us)),
            a.bytes
        );
    }
    for answer in &d.answers {
        let _ = writeln!(out, "answer      {answer}");
    }
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if d.chain.is_empty()
        && let Some(t) = d.cert_not_after
    {
        let _ = writeln!(out, "cert        {}", expiry_words(t, now));
    }
    for (i, der) in d.chain.iter().enumerate() {
        let label = if i == 0 { "cert" } else { "  issued by" };
        match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => {
                let _ = writeln!(
                    out,
                    "{label:<11} {} — {}",
                    cert.subject(),
                    expiry_words(cert.validity().not_after.timestamp(), now)
                );
                if i + 1 == d.chain.len() {
                    let _ = writeln!(out, "  issued by {}", cert.issuer());
                }
            }
            Err(_) => {
                let _ = writeln!(out, "{label:<11} (a certificate that could not be read, {} bytes)", der.len());
            }
        }
    }
    if verbose {
        for (name, value) in &d.headers {
            let _ = writeln!(out, "< {name}: {value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(target: &str, expected: &str) {
        match parse_target(target) {
            Ok(spec) => assert_eq!(format!("{} {}", spec.kind(), spec.target()), expected, "{target}"),
            Err(e) => assert_eq!(format!("error: {e}"), expected, "{target}"),
        }
    }

    #[test]
    fn ad_hoc_targets_parse() {
        check("https://example.com/", "http GET https://example.com/");
        check("tcp://127.0.0.1:9", "tcp 127.0.0.1:9");
        check("tls://example.com:443", "tls example.com:443");
        check("dns://example.com", "dns example.com A");
        check("dns://example.com/MX@192.0.2.53", "dns example.com MX @192.0.2.53:53");
        check("dns://example.com/aaaa@127.0.0.1:5353", "dns example.com AAAA @127.0.0.1:5353");
        check("icmp://192.0.2.1", "icmp 192.0.2.1");
        check("icmp://[2001:db8::1]", "icmp 2001:db8::1");
        check("grpc://api.example.com:50051", "grpc api.example.com:50051");
        check(
            "grpc://api.example.com",
            "error: \"api.example.com\" is not host:port; write e.g. \"db.example.com:5432\" or \"[::1]:443\"",
        );
        check("ftp://x", "error: cannot probe ftp://; write http(s)://, tcp://, dns://, tls://, icmp:// or grpc://");
        check(
            "example.com",
            "error: \"example.com\" has no scheme; write http(s)://, tcp://, dns://, tls://, icmp:// or grpc://",
        );
    }
}
