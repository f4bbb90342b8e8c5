//! The `dns` probe against a small authoritative server started here on one port for
//! UDP and TCP: a TXT set too large for UDP (truncated there, whole over TCP), an MX
//! record, and a record of whether each query asked for recursion.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use probity_agent::probe::{Outcome, run_spec};
use probity_config::probe::ProbeSpec;
use probity_config::wire::ErrorKind;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What the server saw: (transport, recursion desired) per query.
type Seen = Arc<Mutex<Vec<(&'static str, bool)>>>;

/// Ten TXT strings of 200 characters: about 2 KB, over any UDP payload we offer.
fn big_txt() -> Vec<String> {
    (0..10).map(|i| format!("v=spf{i} {}", "x".repeat(200 - 7))).collect()
}

fn answer(query: &Message, tcp: bool) -> Message {
    let q = query.queries[0].clone();
    let name = q.name().to_string().to_lowercase();
    let mut response = Message::response(query.metadata.id, OpCode::Query);
    response.metadata.message_type = MessageType::Response;
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.add_query(q.clone());
    let owner = q.name().clone();
    match (name.as_str(), q.query_type()) {
        ("big.test.", RecordType::TXT) => {
            for s in big_txt() {
                response.add_answer(Record::from_rdata(owner.clone(), 60, RData::TXT(TXT::new(vec![s]))));
            }
        }
        ("mail.test.", RecordType::MX) => {
            let exchange = Name::from_ascii("mx1.mail.test.").unwrap();
            response.add_answer(Record::from_rdata(owner, 60, RData::MX(MX::new(10, exchange))));
        }
        ("ok.test.", RecordType::A) => {
            response.add_answer(Record::from_rdata(owner, 60, RData::A(A::new(192, 0, 2, 1))));
        }
        _ => response.metadata.response_code = ResponseCode::NXDomain,
    }
    let bytes = response.to_vec().unwrap();
    // What an authoritative server does when the answer does not fit the client's UDP
    // payload: the header and question only, with TC set.
    if !tcp && bytes.len() > usize::from(query.max_payload().max(512)) {
        let mut cut = Message::response(query.metadata.id, OpCode::Query);
        cut.metadata.message_type = MessageType::Response;
        cut.metadata.truncation = true;
        cut.add_query(query.queries[0].clone());
        return cut;
    }
    response
}

async fn authoritative_server() -> (SocketAddr, Seen) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).await.unwrap();
    let seen: Seen = Arc::default();
    let udp_seen = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            udp_seen.lock().unwrap().push(("udp", query.metadata.recursion_desired));
            let _ = udp.send_to(&answer(&query, false).to_vec().unwrap(), peer).await;
        }
    });
    let tcp_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = tcp.accept().await.unwrap();
            let seen = tcp_seen.clone();
            tokio::spawn(async move {
                let Ok(len) = conn.read_u16().await else { return };
                let mut buf = vec![0u8; usize::from(len)];
                if conn.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let query = Message::from_vec(&buf).unwrap();
                seen.lock().unwrap().push(("tcp", query.metadata.recursion_desired));
                let bytes = answer(&query, true).to_vec().unwrap();
                let _ = conn.write_u16(bytes.len() as u16).await;
                let _ = conn.write_all(&bytes).await;
            });
        }
    });
    (addr, seen)
}

async fn run(v: serde_json::Value) -> Outcome {
    let spec: ProbeSpec = serde_json::from_value(v).unwrap();
    run_spec(&spec, Duration::from_secs(5)).await
}

/// Regression: a valid TXT set over 1,500 bytes was an outage ("response was truncated;
/// TCP already tried or no other transport available"); `kdig` retries over TCP.
#[tokio::test]
async fn a_large_answer_truncated_over_udp_is_fetched_over_tcp() {
    let (server, seen) = authoritative_server().await;
    let expected = &big_txt()[9];
    let ok = run(
        json!({"kind": "dns", "name": "big.test", "record": "TXT", "server": server.to_string(), "expect": [expected]}),
    )
    .await;
    assert!(ok.is_up(), "{:?}", ok.result);
    assert_eq!(ok.details.answers.len(), 10, "{:?}", ok.details.answers);
    let attempts = &ok.details.attempts;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!((attempts[0].transport, attempts[0].truncated), ("udp", true));
    assert_eq!((attempts[1].transport, attempts[1].truncated), ("tcp", false));
    assert!(attempts[1].bytes > 1500, "{attempts:?}");
    // Both attempts are timed from the probe's start, in order, within the probe.
    let connect = attempts[1].connect_us.expect("a TCP attempt has its connect time");
    assert!(attempts[0].answer_us <= connect && connect <= attempts[1].answer_us, "{attempts:?}");
    assert!(ok.details.phases.dns_us.unwrap() >= attempts[1].answer_us);
    assert!(ok.details.phases.dns_us.unwrap() <= ok.duration.as_micros() as u64);
    assert_eq!(*seen.lock().unwrap(), vec![("udp", true), ("tcp", true)]);
    // `probity-agent probe` prints both queries and every answer.
    let spec: ProbeSpec = serde_json::from_value(
        json!({"kind": "dns", "name": "big.test", "record": "TXT", "server": server.to_string()}),
    )
    .unwrap();
    let printed = probity_agent::adhoc::render(&spec, &ok);
    assert!(printed.contains("\nquery       udp answer ") && printed.contains("bytes, truncated)\n"), "{printed}");
    assert!(printed.contains("\nquery       tcp connected "), "{printed}");
    assert_eq!(printed.matches("\nanswer      TXT v=spf").count(), 10, "{printed}");
}

#[tokio::test]
async fn transport_tcp_asks_over_tcp_only_and_recursion_can_be_turned_off() {
    let (server, seen) = authoritative_server().await;
    let ok = run(json!({
        "kind": "dns", "name": "ok.test", "server": server.to_string(), "transport": "tcp",
        "recursion": false, "expect": ["192.0.2.1"]
    }))
    .await;
    assert!(ok.is_up(), "{:?}", ok.result);
    assert_eq!(ok.details.attempts.len(), 1);
    assert_eq!(ok.details.attempts[0].transport, "tcp");
    assert_eq!(*seen.lock().unwrap(), vec![("tcp", false)]);

    let (kind, message) = failed(
        &run(json!({"kind": "dns", "name": "nope.test", "server": server.to_string(), "transport": "tcp"})).await,
    );
    assert_eq!(kind, ErrorKind::Dns);
    assert_eq!(message, format!("dns: NXDOMAIN for nope.test A from {server}"));
}

/// Regression: an MX `expect` had to carry the preference (`"10 mail.t.test"`).
#[tokio::test]
async fn an_mx_expectation_matches_the_exchange_with_or_without_its_preference() {
    let (server, _) = authoritative_server().await;
    let mx = |expect: &str| json!({"kind": "dns", "name": "mail.test", "record": "MX", "server": server.to_string(), "expect": [expect]});
    for expect in ["mx1.mail.test", "mx1.mail.test.", "10 mx1.mail.test"] {
        let ok = run(mx(expect)).await;
        assert!(ok.is_up(), "{expect}: {:?}", ok.result);
        assert_eq!(ok.details.answers, vec!["MX 10 mx1.mail.test"]);
    }
    let (kind, message) = failed(&run(mx("mx2.mail.test")).await);
    assert_eq!(kind, ErrorKind::Answer);
    assert_eq!(message, format!("answer: mail.test MX lacks mx2.mail.test; got [10 mx1.mail.test] from {server}"));
}

/// Regression: a DNS server that could not be reached said "no connections available"
/// where the tcp probe to the same address said why; now both say it in the same words.
#[tokio::test]
async fn an_unreachable_dns_server_is_described_as_the_tcp_probe_describes_it() {
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let dns = run(json!({"kind": "dns", "name": "ok.test", "server": closed.to_string()})).await;
    let tcp = run(json!({"kind": "tcp", "target": closed.to_string()})).await;
    let (dns_kind, dns_message) = failed(&dns);
    let (tcp_kind, tcp_message) = failed(&tcp);
    assert_eq!((dns_kind, tcp_kind), (ErrorKind::Connect, ErrorKind::Connect));
    assert_eq!(dns_message, format!("connect: connection refused ({closed})"));
    assert_eq!(dns_message, tcp_message);
}

fn failed(o: &Outcome) -> (ErrorKind, String) {
    let f = o.result.as_ref().expect_err("the probe should fail");
    (f.kind, f.message.clone())
}
