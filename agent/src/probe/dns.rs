//! The `dns` probe: one query, no cache. Against a named `server` the query is ours
//! (hickory-proto messages on a socket we time): UDP first and, when the answer comes
//! back truncated, the same query again over TCP, as `dig` and `kdig` do; or TCP only
//! (`transport = "tcp"`). Without a `server`, hickory-resolver asks the system's
//! resolvers (resolv.conf, hosts file), which also retries truncated answers over TCP.
//!
//! An error rcode is `dns`, an answer without the records or values asked for is
//! `answer`, silence is `timeout`, a server that cannot be reached is `connect` in the
//! same words the `tcp` probe uses.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType as WireType};
use hickory_resolver::config::{ResolveHosts, ResolverConfig};
use hickory_resolver::net::{DnsError, NetError};
use probity_config::probe::{DnsSpec, DnsTransport, RecordType};
use probity_config::units::format_duration;
use probity_config::wire::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::net::{self, Clock, failure};
use super::{Attempt, Details, Failure, Outcome};

/// What we advertise over UDP with EDNS: the size DNS Flag Day 2020 settled on, so a
/// larger answer comes back truncated rather than fragmented.
const UDP_PAYLOAD: u16 = 1232;

pub async fn run(spec: &DnsSpec, deadline: Instant) -> Outcome {
    let clock = Clock::start(deadline);
    let mut details = Details::default();
    let result = match spec.server {
        Some(server) => ask_server(&clock, spec, server, &mut details).await,
        None => ask_system(&clock, spec, deadline, &mut details).await,
    };
    let result = result.and_then(|records| judge(spec, &records, &server_name(spec), &mut details));
    clock.finish(details, result)
}

fn server_name(spec: &DnsSpec) -> String {
    spec.server.map_or_else(|| "the system resolver".to_string(), |s| s.to_string())
}

fn what(spec: &DnsSpec) -> String {
    format!("{} {}", spec.name, spec.record)
}

/// Our own query to `server`: UDP, then TCP if truncated; or TCP only.
async fn ask_server(
    clock: &Clock,
    spec: &DnsSpec,
    server: SocketAddr,
    details: &mut Details,
) -> Result<Vec<Record>, Failure> {
    let name = Name::from_ascii(&spec.name)
        .map(|mut n| {
            // Asked of a named server, the name is absolute: no search domains.
            n.set_fqdn(true);
            n
        })
        .map_err(|e| failure(ErrorKind::Internal, format!("internal: \"{}\" is not a DNS name: {e}", spec.name)))?;
    let mut query = Message::query();
    query.add_query(Query::query(name, wire_type(spec.record)));
    query.metadata.recursion_desired = spec.recursion;
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD);
    query.set_edns(edns);
    let id = query.metadata.id;
    let bytes = query.to_vec().map_err(|e| {
        failure(ErrorKind::Internal, format!("internal: cannot encode the query for {}: {e}", what(spec)))
    })?;
    let answer = match spec.transport {
        DnsTransport::Tcp => over_tcp(clock, spec, server, &bytes, id, details).await?,
        DnsTransport::Udp => {
            let answer = over_udp(clock, spec, server, &bytes, id, details).await?;
            if answer.metadata.truncation { over_tcp(clock, spec, server, &bytes, id, details).await? } else { answer }
        }
    };
    details.phases.dns_us = Some(clock.mark());
    let code = answer.metadata.response_code;
    if code != ResponseCode::NoError {
        return Err(failure(ErrorKind::Dns, format!("dns: {} for {} from {server}", rcode(code), what(spec))));
    }
    if answer.metadata.truncation {
        return Err(failure(
            ErrorKind::Answer,
            format!("answer: {} from {server} came back truncated even over TCP", what(spec)),
        ));
    }
    if answer.answers.is_empty() {
        return Err(failure(
            ErrorKind::Answer,
            format!("answer: no records for {} from {server} (NOERROR, empty answer)", what(spec)),
        ));
    }
    Ok(answer.answers)
}

async fn over_udp(
    clock: &Clock,
    spec: &DnsSpec,
    server: SocketAddr,
    query: &[u8],
    id: u16,
    details: &mut Details,
) -> Result<Message, Failure> {
    let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let unreachable = |e: std::io::Error| net::connect_failure(&e, server);
    let socket = UdpSocket::bind(local).await.map_err(|e| {
        failure(ErrorKind::Internal, format!("internal: cannot open a UDP socket: {}", net::io_reason(&e)))
    })?;
    socket.connect(server).await.map_err(unreachable)?;
    socket.send(query).await.map_err(unreachable)?;
    let mut buf = vec![0u8; 65_535];
    let waiting_for = format!("no answer for {} from {server}", what(spec));
    loop {
        let n = clock.within(&waiting_for, socket.recv(&mut buf)).await?.map_err(unreachable)?;
        let answer_us = clock.mark();
        // A stray datagram (an old query's late answer) is not ours: keep waiting.
        let Ok(message) = Message::from_vec(&buf[..n]) else { continue };
        if message.metadata.id != id || message.metadata.message_type != MessageType::Response {
            continue;
        }
        let truncated = message.metadata.truncation;
        details.attempts.push(Attempt { transport: "udp", connect_us: None, answer_us, bytes: n, truncated });
        return Ok(message);
    }
}

async fn over_tcp(
    clock: &Clock,
    spec: &DnsSpec,
    server: SocketAddr,
    query: &[u8],
    id: u16,
    details: &mut Details,
) -> Result<Message, Failure> {
    let (mut stream, connect_us) = net::connect(clock, &[server]).await?;
    let lost = |e: std::io::Error| net::connect_failure(&e, server);
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(lost)?;
    let waiting_for = format!("no answer for {} from {server} over TCP", what(spec));
    let message = clock
        .within(&waiting_for, async {
            let len = stream.read_u16().await? as usize;
            let mut buf = vec![0u8; len];
            stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        })
        .await?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => failure(
                ErrorKind::Dns,
                format!("dns: {server} closed the TCP connection before answering {}", what(spec)),
            ),
            _ => lost(e),
        })?;
    let answer_us = clock.mark();
    let bytes = message.len();
    let message = Message::from_vec(&message).map_err(|e| {
        failure(ErrorKind::Dns, format!("dns: {server} answered {} over TCP with a malformed message: {e}", what(spec)))
    })?;
    if message.metadata.id != id {
        return Err(failure(ErrorKind::Dns, format!("dns: {server} answered another query over TCP")));
    }
    let truncated = message.metadata.truncation;
    details.attempts.push(Attempt { transport: "tcp", connect_us: Some(connect_us), answer_us, bytes, truncated });
    Ok(message)
}

/// The system's resolvers through hickory-resolver, which retries truncated UDP answers
/// over TCP itself.
async fn ask_system(
    clock: &Clock,
    spec: &DnsSpec,
    deadline: Instant,
    details: &mut Details,
) -> Result<Vec<Record>, Failure> {
    let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let Some((config, mut opts)) = net::system_conf() else {
        return Err(failure(ErrorKind::Internal, "internal: cannot read resolv.conf for the system resolver"));
    };
    let mut servers = config.name_servers().to_vec();
    if spec.transport == DnsTransport::Tcp {
        for s in &mut servers {
            s.connections.retain(|c| matches!(c.protocol, hickory_resolver::config::ProtocolConfig::Tcp));
        }
    }
    let config = ResolverConfig::from_parts(config.domain().cloned(), config.search().to_vec(), servers);
    opts.timeout = remaining;
    opts.attempts = 1;
    opts.recursion_desired = spec.recursion;
    if opts.use_hosts_file == ResolveHosts::Never {
        opts.use_hosts_file = ResolveHosts::Auto;
    }
    let resolver = net::build_resolver(config, opts);
    let server = server_name(spec);
    let looked_up = clock
        .within(
            &format!("no answer for {} from {server}", what(spec)),
            resolver.lookup(spec.name.as_str(), wire_type(spec.record)),
        )
        .await?;
    details.phases.dns_us = Some(clock.mark());
    let lookup = looked_up.map_err(|e| lookup_failure(&e, &what(spec), &server, clock.timeout()))?;
    Ok(lookup.answers().to_vec())
}

/// The records of the asked type, then `expect`.
fn judge(spec: &DnsSpec, records: &[Record], server: &str, details: &mut Details) -> Result<(), Failure> {
    details.answers = records.iter().map(|r| format!("{} {}", r.record_type(), value(&r.data))).collect();
    let wanted: Vec<&RData> =
        records.iter().filter(|r| r.record_type() == wire_type(spec.record)).map(|r| &r.data).collect();
    if wanted.is_empty() {
        return Err(failure(
            ErrorKind::Answer,
            format!("answer: no {} records for {} from {server}", spec.record, spec.name),
        ));
    }
    let missing: Vec<&String> = spec.expect.iter().filter(|e| !wanted.iter().any(|d| matches_expected(d, e))).collect();
    if !missing.is_empty() {
        let missing = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        let got = wanted.iter().map(|d| value(d)).collect::<Vec<_>>().join(", ");
        return Err(failure(
            ErrorKind::Answer,
            format!("answer: {} lacks {missing}; got [{got}] from {server}", what(spec)),
        ));
    }
    Ok(())
}

fn lookup_failure(e: &NetError, what: &str, server: &str, timeout: Duration) -> Failure {
    match e {
        NetError::Timeout => failure(
            ErrorKind::Timeout,
            format!("timeout: no answer for {what} from {server} within {}", format_duration(timeout)),
        ),
        NetError::Dns(DnsError::NoRecordsFound(nr)) if nr.response_code == ResponseCode::NoError => {
            failure(ErrorKind::Answer, format!("answer: no records for {what} from {server} (NOERROR, empty answer)"))
        }
        NetError::Dns(DnsError::NoRecordsFound(nr)) => {
            failure(ErrorKind::Dns, format!("dns: {} for {what} from {server}", rcode(nr.response_code)))
        }
        NetError::Dns(DnsError::ResponseCode(code)) => {
            failure(ErrorKind::Dns, format!("dns: {} for {what} from {server}", rcode(*code)))
        }
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => failure(
            ErrorKind::Timeout,
            format!("timeout: no answer for {what} from {server} within {}", format_duration(timeout)),
        ),
        NetError::Io(io) => failure(ErrorKind::Connect, format!("connect: {} ({server})", net::io_reason(io))),
        // hickory keeps the OS's reason to itself here; say what is known, as `connect`.
        NetError::NoConnections => {
            failure(ErrorKind::Connect, format!("connect: no name server of {server} could be reached"))
        }
        other => failure(ErrorKind::Dns, format!("dns: {what} from {server}: {other}")),
    }
}

/// `NXDOMAIN`, `SERVFAIL`, as `dig` prints them.
fn rcode(code: ResponseCode) -> String {
    match code {
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

fn wire_type(r: RecordType) -> WireType {
    match r {
        RecordType::A => WireType::A,
        RecordType::Aaaa => WireType::AAAA,
        RecordType::Cname => WireType::CNAME,
        RecordType::Mx => WireType::MX,
        RecordType::Ns => WireType::NS,
        RecordType::Txt => WireType::TXT,
        RecordType::Srv => WireType::SRV,
        RecordType::Soa => WireType::SOA,
    }
}

/// An answer as `dig +short` prints it, names without their final dot: MX as
/// `10 mail.example.com`, SRV as `10 5 443 host`, SOA as its primary name server,
/// TXT as its strings joined.
fn value(data: &RData) -> String {
    let text = match data {
        RData::SOA(soa) => soa.mname.to_string(),
        RData::TXT(txt) => {
            return txt.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect::<Vec<_>>().join("");
        }
        other => other.to_string(),
    };
    text.trim_end_matches('.').to_string()
}

/// The name a record points at, for `expect` written without preference or priority
/// (`"mail.example.com"` matches `10 mail.example.com`).
fn target_name(data: &RData) -> Option<String> {
    match data {
        RData::MX(mx) => Some(mx.exchange.to_string()),
        RData::SRV(srv) => Some(srv.target.to_string()),
        _ => None,
    }
}

fn matches_expected(data: &RData, expected: &str) -> bool {
    same_value(&value(data), expected)
        || target_name(data).is_some_and(|t| same_value(t.trim_end_matches('.'), expected))
}

fn same_value(got: &str, expected: &str) -> bool {
    let expected = expected.trim_end_matches('.');
    if let (Ok(a), Ok(b)) = (got.parse::<std::net::IpAddr>(), expected.parse::<std::net::IpAddr>()) {
        return a == b;
    }
    // Spaces between fields, as operators type them: `10  mail.example.com`.
    let got: Vec<&str> = got.split_whitespace().collect();
    let expected: Vec<&str> = expected.split_whitespace().collect();
    got.len() == expected.len()
        && got.iter().zip(&expected).all(|(g, e)| g.trim_end_matches('.').eq_ignore_ascii_case(e.trim_end_matches('.')))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::rdata::{MX, SRV};

    use super::*;

    #[test]
    fn expected_values_compare_as_operators_write_them() {
        assert!(same_value("192.0.2.1", "192.0.2.1"));
        assert!(same_value("2001:db8::1", "2001:0db8:0:0::1"));
        assert!(same_value("mail.example.com", "Mail.Example.com."));
        assert!(!same_value("192.0.2.1", "192.0.2.10"));
    }

    /// Regression: an MX `expect` had to carry the preference (`"10 mail.t.test"`).
    #[test]
    fn mx_and_srv_expectations_match_with_or_without_their_numbers() {
        let mx = RData::MX(MX::new(10, Name::from_str("mail.example.com.").unwrap()));
        assert!(matches_expected(&mx, "mail.example.com"));
        assert!(matches_expected(&mx, "mail.example.com."));
        assert!(matches_expected(&mx, "10 mail.example.com"));
        assert!(!matches_expected(&mx, "20 mail.example.com"));
        assert!(!matches_expected(&mx, "mx.example.com"));
        let srv = RData::SRV(SRV::new(1, 5, 443, Name::from_str("api.example.com.").unwrap()));
        assert!(matches_expected(&srv, "api.example.com"));
        assert!(matches_expected(&srv, "1 5 443 api.example.com"));
    }
}
