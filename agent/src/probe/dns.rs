//! The `dns` probe: one query through hickory-resolver against `server` (UDP) or the
//! system configuration, no cache. An error rcode is `dns`, an answer without the
//! records or values asked for is `answer`, silence is `timeout`.

use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType as WireType};
use probity_config::probe::{DnsSpec, RecordType};
use probity_config::wire::ErrorKind;
use tokio::time::Instant;

use super::net::{self, Clock, failure, human};
use super::{Details, Failure, Outcome};

pub async fn run(spec: &DnsSpec, deadline: Instant) -> Outcome {
    let clock = Clock::start(deadline);
    let mut details = Details::default();
    let result = query(&clock, spec, deadline, &mut details).await;
    clock.finish(details, result)
}

async fn query(clock: &Clock, spec: &DnsSpec, deadline: Instant, details: &mut Details) -> Result<(), Failure> {
    let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let (config, mut opts, server) = match spec.server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            let mut opts = ResolverOpts::default();
            opts.use_hosts_file = ResolveHosts::Never;
            (ResolverConfig::from_name_servers(vec![ns]), opts, addr.to_string())
        }
        None => match hickory_resolver::system_conf::read_system_conf() {
            Ok((config, opts)) => (config, opts, "the system resolver".to_string()),
            Err(e) => return Err(failure(ErrorKind::Internal, format!("internal: cannot read resolv.conf: {e}"))),
        },
    };
    opts.timeout = remaining;
    opts.attempts = 1;
    let resolver = net::build_resolver(config, opts);
    let mut name = spec.name.clone();
    if spec.server.is_some() && !name.ends_with('.') {
        // Asked of a named server, the name is absolute: no search domains.
        name.push('.');
    }
    let what = format!("{} {}", spec.name, spec.record);
    let looked_up = clock
        .within(&format!("no answer for {what} from {server}"), resolver.lookup(name.as_str(), wire_type(spec.record)))
        .await?;
    details.phases.dns_us = Some(clock.mark());
    let lookup = looked_up.map_err(|e| lookup_failure(&e, &what, &server, clock.timeout()))?;
    let values: Vec<String> =
        lookup.answers().iter().filter(|r| r.record_type() == wire_type(spec.record)).map(|r| value(&r.data)).collect();
    if values.is_empty() {
        return Err(failure(
            ErrorKind::Answer,
            format!("answer: no {} records for {} from {server}", spec.record, spec.name),
        ));
    }
    let missing: Vec<&String> = spec.expect.iter().filter(|e| !values.iter().any(|v| same_value(v, e))).collect();
    if !missing.is_empty() {
        let missing = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        return Err(failure(
            ErrorKind::Answer,
            format!("answer: {what} lacks {missing}; got [{}] from {server}", values.join(", ")),
        ));
    }
    Ok(())
}

fn lookup_failure(e: &NetError, what: &str, server: &str, timeout: Duration) -> Failure {
    match e {
        NetError::Timeout => failure(
            ErrorKind::Timeout,
            format!("timeout: no answer for {what} from {server} within {}", human(timeout)),
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
            format!("timeout: no answer for {what} from {server} within {}", human(timeout)),
        ),
        NetError::Io(io) => failure(ErrorKind::Dns, format!("dns: {what}: {} ({server})", net::io_reason(io))),
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

/// An answer as `expect` writes it: names without their final dot, MX as
/// `10 mail.example.com`, SOA as its primary name server.
fn value(data: &RData) -> String {
    let text = match data {
        RData::SOA(soa) => soa.mname.to_string(),
        other => other.to_string(),
    };
    text.trim_end_matches('.').to_string()
}

fn same_value(got: &str, expected: &str) -> bool {
    let expected = expected.trim_end_matches('.');
    if let (Ok(a), Ok(b)) = (got.parse::<std::net::IpAddr>(), expected.parse::<std::net::IpAddr>()) {
        return a == b;
    }
    got.eq_ignore_ascii_case(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_values_compare_as_operators_write_them() {
        assert!(same_value("192.0.2.1", "192.0.2.1"));
        assert!(same_value("2001:db8::1", "2001:0db8:0:0::1"));
        assert!(same_value("mail.example.com", "Mail.Example.com."));
        assert!(!same_value("192.0.2.1", "192.0.2.10"));
    }
}
