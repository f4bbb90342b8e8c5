//! The `icmp` probe: `packets` echo requests of `payload_size` bytes through surge-ping,
//! which opens an unprivileged datagram ICMP socket where `net.ipv4.ping_group_range`
//! admits our group and a raw one (CAP_NET_RAW) otherwise. Up when an echo reply came
//! back in time; no socket at all is `internal`, with how to allow one.
//!
//! Each packet waits for its share of what is left of the timeout, so a lost packet
//! cannot starve the ones after it. On a raw socket an ICMP error about our request
//! (destination unreachable, time exceeded) is `connect`; an unprivileged socket keeps
//! those to itself, so there an unreachable host is a `timeout`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};

use probity_config::probe::IcmpSpec;
use probity_config::units::format_duration;
use probity_config::wire::ErrorKind;
use socket2::Type as SockType;
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};
use tokio::time::Instant;

use super::net::{self, Clock, failure};
use super::{Details, Failure, Outcome};

pub async fn run(spec: &IcmpSpec, deadline: Instant) -> Outcome {
    let clock = Clock::start(deadline);
    let mut details = Details::default();
    let result = probe(&clock, spec, deadline, &mut details).await;
    clock.finish(details, result)
}

async fn probe(clock: &Clock, spec: &IcmpSpec, deadline: Instant, details: &mut Details) -> Result<(), Failure> {
    let (addrs, dns_us) = net::resolve(clock, &spec.target, 0, spec.ip_protocol).await?;
    details.phases.dns_us = dns_us;
    let ip = addrs[0].ip();
    let client = open(ip)?;
    let mut pinger = client.pinger(ip, identifier()).await;
    let payload = vec![0x5a_u8; usize::from(spec.payload_size)];
    let mut replies = 0u32;
    let mut last_error = None;
    for seq in 0..spec.packets {
        let left = deadline.saturating_duration_since(Instant::now());
        let share = left / (spec.packets - seq);
        if share.is_zero() {
            break;
        }
        pinger.timeout(share);
        match pinger.ping(PingSequence(seq as u16), &payload).await {
            Ok((packet, rtt)) => match reply_kind(&packet) {
                Reply::Echo => {
                    replies += 1;
                    details.answers.push(format!("reply from {ip}: icmp_seq={seq} time={}", format_duration(rtt)));
                    if details.phases.first_byte_us.is_none() {
                        details.phases.first_byte_us = Some(clock.mark());
                    }
                }
                // A raw socket also hands over the ICMP errors routers send about our request.
                Reply::Error { from, what } => {
                    details.answers.push(format!("{what} from {from}: icmp_seq={seq}"));
                    last_error = Some(failure(ErrorKind::Connect, format!("connect: {ip}: {what} (from {from})")));
                }
            },
            Err(SurgeError::Timeout { .. }) => {
                details.answers.push(format!("no reply from {ip}: icmp_seq={seq}"));
            }
            Err(SurgeError::IOError(e)) => {
                details.answers.push(format!("send failed to {ip}: icmp_seq={seq}"));
                last_error = Some(net::connect_failure(&e, std::net::SocketAddr::new(ip, 0)));
            }
            Err(other) => {
                last_error = Some(failure(ErrorKind::Internal, format!("internal: ping {ip}: {other}")));
            }
        }
    }
    if replies > 0 {
        return Ok(());
    }
    Err(last_error.unwrap_or_else(|| {
        failure(
            ErrorKind::Timeout,
            format!(
                "timeout: no echo reply from {ip} to {} packet{} within {}",
                spec.packets,
                if spec.packets == 1 { "" } else { "s" },
                format_duration(clock.timeout())
            ),
        )
    }))
}

/// What came back for an echo request.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Echo,
    Error { from: IpAddr, what: String },
}

fn reply_kind(packet: &IcmpPacket) -> Reply {
    let (ty, code, from) = match packet {
        IcmpPacket::V4(p) => (p.get_icmp_type().0, p.get_icmp_code().0, IpAddr::V4(p.get_source())),
        IcmpPacket::V6(p) => (p.get_icmpv6_type().0, p.get_icmpv6_code().0, IpAddr::V6(p.get_source())),
    };
    let v4 = matches!(packet, IcmpPacket::V4(_));
    error_words(v4, ty, code).map_or(Reply::Echo, |what| Reply::Error { from, what })
}

/// `None` for an echo reply; otherwise the ICMP error in words.
fn error_words(v4: bool, ty: u8, code: u8) -> Option<String> {
    let unreachable = |why: &str| Some(format!("destination unreachable ({why})"));
    match (v4, ty, code) {
        (true, 0, _) | (false, 129, _) => None,
        (true, 3, 0) | (false, 1, 0) => unreachable("no route"),
        (true, 3, 1) | (false, 1, 3) => unreachable("host unreachable"),
        (true, 3, 3) | (false, 1, 4) => unreachable("port unreachable"),
        (true, 3, 9 | 10 | 13) | (false, 1, 1) => unreachable("administratively prohibited"),
        (true, 3, c) | (false, 1, c) => unreachable(&format!("code {c}")),
        (true, 11, _) | (false, 3, _) => Some("time to live exceeded".into()),
        (_, t, c) => Some(format!("ICMP type {t} code {c}")),
    }
}

/// A client on a fresh socket for `ip`'s family: unprivileged first, raw otherwise.
fn open(ip: IpAddr) -> Result<Client, Failure> {
    let kind = if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 };
    let config = Config::builder().kind(kind).sock_type_hint(SockType::DGRAM).build();
    Client::new(&config).map_err(|e| no_socket(ip, &e))
}

fn no_socket(ip: IpAddr, e: &std::io::Error) -> Failure {
    let v = if ip.is_ipv4() { "4" } else { "6" };
    let reason = net::io_reason(e);
    let reason = reason.lines().last().unwrap_or(&reason).trim().trim_start_matches("original error: ");
    failure(
        ErrorKind::Internal,
        format!(
            "internal: cannot open an ICMP socket ({reason}): allow unprivileged ping with \
             `sysctl -w net.ipv{v}.ping_group_range=\"0 2147483647\"`, or give the agent CAP_NET_RAW \
             (AmbientCapabilities=CAP_NET_RAW in its systemd unit, or `setcap cap_net_raw+ep probity-agent`)"
        ),
    )
}

/// Echo identifiers, distinct per probe run in this process (the kernel replaces them
/// on an unprivileged socket, where it tells replies apart itself).
fn identifier() -> PingIdentifier {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = (std::process::id() as u16).wrapping_mul(7919);
    PingIdentifier(base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_errors_are_not_echo_replies() {
        assert_eq!(error_words(true, 0, 0), None);
        assert_eq!(error_words(false, 129, 0), None);
        assert_eq!(error_words(true, 3, 1).as_deref(), Some("destination unreachable (host unreachable)"));
        assert_eq!(error_words(false, 1, 3).as_deref(), Some("destination unreachable (host unreachable)"));
        assert_eq!(error_words(true, 11, 0).as_deref(), Some("time to live exceeded"));
        assert_eq!(error_words(true, 5, 1).as_deref(), Some("ICMP type 5 code 1"));
    }

    #[test]
    fn without_a_socket_the_message_says_how_to_allow_one() {
        let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let f = no_socket("192.0.2.1".parse().unwrap(), &e);
        assert_eq!(f.kind, ErrorKind::Internal);
        assert!(f.message.starts_with("internal: cannot open an ICMP socket (permission denied): "), "{}", f.message);
        assert!(f.message.contains("net.ipv4.ping_group_range"), "{}", f.message);
        assert!(f.message.contains("CAP_NET_RAW"), "{}", f.message);
    }
}
