//! `probity-agent probe TARGET`: one probe from the command line, printed with its
//! phase timings the way `curl -w` would, for operators debugging from a host.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use probity_config::probe::{
    DnsSpec, GrpcSpec, HttpSpec, IcmpSpec, IpProtocol, Pattern, ProbeSpec, RecordType, StartTls, StatusRange, TcpSpec,
    TlsSpec, parse_dns_server, unescape,
};
use probity_config::units::format_duration;

use crate::probe::{Outcome, expiry_words};

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

/// The checks a catalogue probe can make, as flags of `probity-agent probe` (each
/// applies to the kinds whose key it sets; the key's name is in its help).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ProbeFlags {
    /// Print everything that came back (HTTP response headers, TCP reply).
    #[arg(short, long)]
    pub verbose: bool,
    /// dns: a value the answer must hold (repeat for several); tcp: a regex the reply must match.
    #[arg(long, value_name = "VALUE")]
    pub expect: Vec<String>,
    /// http: an expected status or range, e.g. 200-299 (repeatable; default 200-399).
    #[arg(long, value_name = "RANGE")]
    pub expect_status: Vec<String>,
    /// http: text the body must contain.
    #[arg(long, value_name = "TEXT")]
    pub body_contains: Option<String>,
    /// http: a regex the body must match.
    #[arg(long, value_name = "REGEX")]
    pub body_regex: Option<String>,
    /// http: NAME=REGEX, a header the response must have with a matching value (repeatable).
    #[arg(long = "expect-header", value_name = "NAME=REGEX")]
    pub expect_headers: Vec<String>,
    /// http: any, 1.1 or 2.
    #[arg(long, value_name = "VERSION")]
    pub http_version: Option<String>,
    /// http: do not follow redirects.
    #[arg(long)]
    pub no_follow: bool,
    /// http: down unless the final response came over TLS.
    #[arg(long)]
    pub fail_if_not_tls: bool,
    /// http, grpc: accept any certificate (tls_verify = false).
    #[arg(long)]
    pub insecure: bool,
    /// http, tcp, tls, grpc: a PEM file of extra trusted roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<String>,
    /// http: a PEM client certificate chain (with --client-key).
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<String>,
    /// http: the PEM private key of --client-cert.
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<String>,
    /// http, tcp, tls, icmp, grpc: any, ip4 or ip6.
    #[arg(long, value_name = "FAMILY")]
    pub ip_protocol: Option<String>,
    /// dns: udp (retried over TCP when truncated) or tcp.
    #[arg(long, value_name = "TRANSPORT")]
    pub transport: Option<String>,
    /// dns: ask without the recursion-desired bit (for an authoritative server).
    #[arg(long)]
    pub no_recursion: bool,
    /// tcp: text to send once connected; \n, \r, \t, \0, \\ and \xNN are decoded.
    #[arg(long, value_name = "TEXT")]
    pub send: Option<String>,
    /// tcp: TLS right after connecting.
    #[arg(long)]
    pub tls: bool,
    /// tcp: smtp, imap or pop3, upgraded to TLS with the protocol's own command.
    #[arg(long, value_name = "PROTOCOL")]
    pub starttls: Option<String>,
    /// tcp, tls, grpc: the name the certificate must match.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// tls: fewer days left than this is down (default 14).
    #[arg(long, value_name = "DAYS")]
    pub min_days_valid: Option<u32>,
    /// icmp: echo requests to send (default 1).
    #[arg(long, value_name = "N")]
    pub packets: Option<u32>,
    /// icmp: payload bytes per request (default 56).
    #[arg(long, value_name = "BYTES")]
    pub payload_size: Option<u16>,
    /// grpc: the service asked about (default "", the whole server).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// grpc: HTTP/2 in the clear (tls = false).
    #[arg(long)]
    pub plaintext: bool,
}

/// Sets the flags' keys on `spec`, refusing a flag its kind does not take.
pub fn apply(spec: ProbeSpec, flags: &ProbeFlags) -> Result<ProbeSpec, String> {
    let kind = spec.kind();
    let mut used: Vec<&str> = Vec::new();
    let f = flags;
    let mut note = |set: bool, name: &'static str| {
        if set {
            used.push(name);
        }
    };
    let ip = f.ip_protocol.as_deref().map(str::parse::<IpProtocol>).transpose()?;
    let pattern = |text: &Option<String>| text.as_deref().map(str::parse::<Pattern>).transpose();
    let spec = match spec {
        ProbeSpec::Http(mut s) => {
            if !f.expect_status.is_empty() {
                s.expect_status = f.expect_status.iter().map(|r| r.parse::<StatusRange>()).collect::<Result<_, _>>()?;
            }
            s.body_contains = f.body_contains.clone();
            s.body_regex = pattern(&f.body_regex)?;
            for pair in &f.expect_headers {
                let (name, re) =
                    pair.split_once('=').ok_or_else(|| format!("--expect-header \"{pair}\": write NAME=REGEX"))?;
                s.expect_headers.insert(name.trim().to_ascii_lowercase(), re.parse()?);
            }
            if let Some(v) = &f.http_version {
                s.http_version = v.parse()?;
            }
            s.follow_redirects = !f.no_follow;
            s.fail_if_not_tls = f.fail_if_not_tls;
            s.tls_verify = !f.insecure;
            s.ca_file = f.ca_file.clone();
            if f.client_cert.is_some() != f.client_key.is_some() {
                return Err("--client-cert and --client-key go together".into());
            }
            s.client_cert = f.client_cert.clone();
            s.client_key = f.client_key.clone();
            s.ip_protocol = ip.unwrap_or_default();
            note(!f.expect.is_empty(), "--expect");
            ProbeSpec::Http(s)
        }
        ProbeSpec::Tcp(mut s) => {
            if f.expect.len() > 1 {
                return Err("a tcp probe takes one --expect regex".into());
            }
            s.expect = f.expect.first().map(|e| e.parse::<Pattern>()).transpose()?;
            s.send = f.send.as_deref().map(unescape).transpose().map_err(|e| format!("--send: {e}"))?;
            s.tls = f.tls;
            s.starttls = f.starttls.as_deref().map(str::parse::<StartTls>).transpose()?;
            if s.tls && s.starttls.is_some() {
                return Err("--tls and --starttls exclude each other: STARTTLS begins in plain text".into());
            }
            s.ca_file = f.ca_file.clone();
            s.server_name = f.server_name.clone();
            s.ip_protocol = ip.unwrap_or_default();
            ProbeSpec::Tcp(s)
        }
        ProbeSpec::Dns(mut s) => {
            s.expect = f.expect.clone();
            if let Some(t) = &f.transport {
                s.transport = t.parse()?;
            }
            s.recursion = !f.no_recursion;
            note(ip.is_some(), "--ip-protocol");
            ProbeSpec::Dns(s)
        }
        ProbeSpec::Tls(mut s) => {
            s.server_name = f.server_name.clone();
            s.min_days_valid = f.min_days_valid.unwrap_or(s.min_days_valid);
            s.ca_file = f.ca_file.clone();
            s.ip_protocol = ip.unwrap_or_default();
            note(!f.expect.is_empty(), "--expect");
            ProbeSpec::Tls(s)
        }
        ProbeSpec::Icmp(mut s) => {
            s.packets = f.packets.unwrap_or(s.packets).clamp(1, 100);
            s.payload_size = f.payload_size.unwrap_or(s.payload_size);
            s.ip_protocol = ip.unwrap_or_default();
            note(!f.expect.is_empty(), "--expect");
            note(f.ca_file.is_some(), "--ca-file");
            ProbeSpec::Icmp(s)
        }
        ProbeSpec::Grpc(mut s) => {
            s.service = f.service.clone().unwrap_or_default();
            s.tls = !f.plaintext;
            s.tls_verify = !f.insecure;
            s.server_name = f.server_name.clone();
            s.ca_file = f.ca_file.clone();
            s.ip_protocol = ip.unwrap_or_default();
            note(!f.expect.is_empty(), "--expect");
            ProbeSpec::Grpc(s)
        }
    };
    let k = spec.kind();
    note(k != "http" && !f.expect_status.is_empty(), "--expect-status");
    note(k != "http" && f.body_contains.is_some(), "--body-contains");
    note(k != "http" && f.body_regex.is_some(), "--body-regex");
    note(k != "http" && !f.expect_headers.is_empty(), "--expect-header");
    note(k != "http" && f.http_version.is_some(), "--http-version");
    note(k != "http" && f.no_follow, "--no-follow");
    note(k != "http" && f.fail_if_not_tls, "--fail-if-not-tls");
    note(k != "http" && k != "grpc" && f.insecure, "--insecure");
    note(k == "dns" && f.ca_file.is_some(), "--ca-file");
    note(k != "http" && (f.client_cert.is_some() || f.client_key.is_some()), "--client-cert/--client-key");
    note(k != "dns" && f.transport.is_some(), "--transport");
    note(k != "dns" && f.no_recursion, "--no-recursion");
    note(k != "tcp" && f.send.is_some(), "--send");
    note(k != "tcp" && f.tls, "--tls");
    note(k != "tcp" && f.starttls.is_some(), "--starttls");
    note(!matches!(k, "tcp" | "tls" | "grpc") && f.server_name.is_some(), "--server-name");
    note(k != "tls" && f.min_days_valid.is_some(), "--min-days-valid");
    note(k != "icmp" && (f.packets.is_some() || f.payload_size.is_some()), "--packets/--payload-size");
    note(k != "grpc" && (f.service.is_some() || f.plaintext), "--service/--plaintext");
    if !used.is_empty() {
        let verb = if used.len() == 1 { "does" } else { "do" };
        return Err(format!("{} {verb} not apply to {kind} probes", used.join(", ")));
    }
    Ok(spec)
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
            let _ = writeln!(out, "{name:<11} {}", format_duration(Duration::from_micros(us)));
        }
    }
    let _ = writeln!(out, "total       {}", format_duration(outcome.duration));
    for a in &d.attempts {
        let connect = a
            .connect_us
            .map(|c| format!("connected {}, ", format_duration(Duration::from_micros(c))))
            .unwrap_or_default();
        let cut = if a.truncated { ", truncated" } else { "" };
        let _ = writeln!(
            out,
            "query       {} {connect}answer {} ({} bytes{cut})",
            a.transport,
            format_duration(Duration::from_micros(a.answer_us)),
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

    fn flags(args: &[&str]) -> ProbeFlags {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            flags: ProbeFlags,
        }
        let mut argv = vec!["probe"];
        argv.extend_from_slice(args);
        <Cli as clap::Parser>::parse_from(argv).flags
    }

    #[test]
    fn flags_set_the_keys_of_their_kind_and_refuse_others() {
        let http = apply(
            parse_target("https://example.com/").unwrap(),
            &flags(&["--body-regex", "ok$", "--expect-header", "Content-Type=json", "--http-version", "2"]),
        )
        .unwrap();
        let ProbeSpec::Http(h) = http else { panic!("not http") };
        assert_eq!(h.body_regex.unwrap().as_str(), "ok$");
        assert!(h.expect_headers["content-type"].is_match("application/json"));
        assert_eq!(h.http_version, probity_config::probe::HttpVersion::Http2);

        let dns = apply(
            parse_target("dns://mail.test/MX@127.0.0.1").unwrap(),
            &flags(&["--expect", "mx1.mail.test", "--transport", "tcp"]),
        )
        .unwrap();
        let ProbeSpec::Dns(d) = dns else { panic!("not dns") };
        assert_eq!(
            (d.expect, d.transport),
            (vec!["mx1.mail.test".to_string()], probity_config::probe::DnsTransport::Tcp)
        );

        let tcp =
            apply(parse_target("tcp://127.0.0.1:25").unwrap(), &flags(&["--starttls", "smtp", "--send", r"QUIT\r\n"]))
                .unwrap();
        let ProbeSpec::Tcp(t) = tcp else { panic!("not tcp") };
        assert_eq!(t.send.as_deref(), Some("QUIT\r\n"));

        let e = apply(parse_target("icmp://127.0.0.1").unwrap(), &flags(&["--body-regex", "x", "--tls"])).unwrap_err();
        assert_eq!(e, "--body-regex, --tls do not apply to icmp probes");
        let e = apply(parse_target("tcp://h:1").unwrap(), &flags(&["--tls", "--starttls", "imap"])).unwrap_err();
        assert!(e.contains("exclude each other"), "{e}");
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
