//! The `grpc` probe: one `grpc.health.v1.Health/Check` call over HTTP/2 (TLS with ALPN
//! `h2`, or prior knowledge with `tls = false`) on hyper, the client the `http` probe
//! already carries. The health messages are two one-field protobufs, encoded here
//! rather than through a code generator: that keeps tonic and prost out of the agent.
//!
//! Up when the answer is `SERVING`; any other answer or a non-zero `grpc-status` is
//! `status`, with what the server said.

use bytes::{Buf, Bytes};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use probity_config::probe::GrpcSpec;
use probity_config::wire::ErrorKind;
use tokio::time::Instant;

use super::net::{self, Clock, TlsOptions, failure};
use super::{Details, Failure, Outcome};

const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// A health answer is a few bytes; more than this is not one.
const MAX_ANSWER: usize = 64 * 1024;

pub async fn run(spec: &GrpcSpec, deadline: Instant) -> Outcome {
    let clock = Clock::start(deadline);
    let mut details = Details::default();
    let result = probe(&clock, spec, &mut details).await;
    clock.finish(details, result)
}

async fn probe(clock: &Clock, spec: &GrpcSpec, details: &mut Details) -> Result<(), Failure> {
    let target = &spec.target;
    let (addrs, dns_us) = net::resolve(clock, &target.host, target.port, spec.ip_protocol).await?;
    details.phases.dns_us = dns_us;
    let (tcp, connect_us) = net::connect(clock, &addrs).await?;
    details.phases.connect_us = Some(connect_us);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}://{target}{CHECK_PATH}", if spec.tls { "https" } else { "http" }))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", concat!("probity-agent/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(encode_request(&spec.service)))
        .map_err(|e| failure(ErrorKind::Internal, format!("internal: cannot build the health request: {e}")))?;
    if spec.tls {
        let name = spec.effective_server_name().trim_start_matches('[').trim_end_matches(']');
        let options = TlsOptions {
            verify: spec.tls_verify,
            alpn: &[b"h2"],
            ca_file: spec.ca_file.as_deref(),
            ..TlsOptions::new(name)
        };
        let (stream, _) = net::tls_handshake_recorded(clock, tcp, options, details).await?;
        check(clock, spec, stream, request, details).await
    } else {
        check(clock, spec, tcp, request, details).await
    }
}

async fn check<S>(
    clock: &Clock,
    spec: &GrpcSpec,
    io: S,
    request: Request<Full<Bytes>>,
    details: &mut Details,
) -> Result<(), Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let target = &spec.target;
    let broken =
        |e: hyper::Error| failure(ErrorKind::Connect, format!("connect: gRPC call to {target} failed: {}", reason(&e)));
    let (mut sender, connection) = clock
        .within("no HTTP/2 connection", hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)))
        .await?
        .map_err(broken)?;
    // Driven in this task, as the http probe does: nothing outlives the probe.
    let mut connection = std::pin::pin!(async move {
        let _ = connection.await;
    });
    let mut driving = true;
    let exchange = async {
        let response = {
            let mut sending = std::pin::pin!(sender.send_request(request));
            loop {
                tokio::select! {
                    biased;
                    r = &mut sending => break r.map_err(broken)?,
                    () = &mut connection, if driving => driving = false,
                }
            }
        };
        details.phases.first_byte_us = Some(clock.mark());
        let (head, mut body) = response.into_parts();
        let mut message = Vec::new();
        let mut trailers = head.headers.clone();
        loop {
            let frame = loop {
                tokio::select! {
                    biased;
                    f = body.frame() => break f,
                    () = &mut connection, if driving => driving = false,
                }
            };
            match frame {
                None => break,
                Some(Err(e)) => return Err(broken(e)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        if message.len() + data.remaining() > MAX_ANSWER {
                            return Err(failure(
                                ErrorKind::Status,
                                format!("status: {target} sent more than a health answer"),
                            ));
                        }
                        message.extend_from_slice(&data.copy_to_bytes(data.remaining()));
                    }
                    Err(frame) => {
                        if let Ok(t) = frame.into_trailers() {
                            trailers.extend(t);
                        }
                    }
                },
            }
        }
        Ok::<_, Failure>((head.status, trailers, message))
    };
    let (status, trailers, message) = clock.within(&format!("no health answer from {target}"), exchange).await??;
    details.status = Some(status.as_u16());
    if status != http::StatusCode::OK {
        return Err(failure(
            ErrorKind::Status,
            format!("status: {target} answered HTTP {status}, not a gRPC response"),
        ));
    }
    let grpc_status = trailers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
    let grpc_message = trailers.get("grpc-message").and_then(|v| v.to_str().ok()).unwrap_or("");
    match grpc_status {
        Some(0) => {}
        Some(code) => {
            let said =
                if grpc_message.is_empty() { String::new() } else { format!(": {}", percent_decoded(grpc_message)) };
            return Err(failure(
                ErrorKind::Status,
                format!("status: grpc-status {code} ({}){said} from {target}", code_name(code)),
            ));
        }
        None => {
            return Err(failure(ErrorKind::Status, format!("status: {target} sent no grpc-status")));
        }
    }
    let serving = decode_response(&message).ok_or_else(|| {
        failure(ErrorKind::Status, format!("status: {target} sent a health answer that could not be read"))
    })?;
    details.answers = vec![format!("{} {}", service_label(&spec.service), serving_name(serving))];
    if serving != SERVING {
        return Err(failure(
            ErrorKind::Status,
            format!("status: {} is {} at {target}", service_label(&spec.service), serving_name(serving)),
        ));
    }
    Ok(())
}

fn reason(e: &hyper::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

const SERVING: u64 = 1;

fn service_label(service: &str) -> String {
    if service.is_empty() { "the server".into() } else { format!("service \"{service}\"") }
}

fn serving_name(status: u64) -> &'static str {
    match status {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "an unknown status",
    }
}

fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("unknown code")
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2, "Responses").
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A gRPC frame (uncompressed, length-prefixed) holding `HealthCheckRequest { service = 1 }`.
fn encode_request(service: &str) -> Bytes {
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a); // field 1, length-delimited
        put_varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    Bytes::from(frame)
}

/// `HealthCheckResponse.status` (field 1, varint) from one gRPC frame; unknown fields
/// are skipped, and an absent status is `UNKNOWN` (0), as proto3 says.
fn decode_response(frame: &[u8]) -> Option<u64> {
    let (&compressed, rest) = frame.split_first()?;
    if compressed != 0 || rest.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
    let mut message = rest.get(4..4 + len)?;
    let mut status = 0;
    while !message.is_empty() {
        let key = take_varint(&mut message)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = take_varint(&mut message)?,
            (_, 0) => {
                take_varint(&mut message)?;
            }
            (_, 1) => message = message.get(8..)?,
            (_, 2) => {
                let n = take_varint(&mut message)? as usize;
                message = message.get(n..)?;
            }
            (_, 5) => message = message.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_messages_encode_and_decode_as_protobuf_does() {
        assert_eq!(&encode_request("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(&encode_request("db")[..], &[0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']);
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 1]), Some(SERVING));
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(decode_response(&[0, 0, 0, 0, 0]), Some(0), "proto3 leaves a zero status out");
        // An unknown field before the status is skipped.
        assert_eq!(decode_response(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 1]), Some(SERVING));
        assert_eq!(decode_response(&[1, 0, 0, 0, 2, 0x08, 1]), None, "compressed");
        assert_eq!(decode_response(&[0, 0, 0, 0, 9, 0x08]), None, "cut short");
        let mut long = Vec::new();
        put_varint(&mut long, 300);
        assert_eq!(take_varint(&mut long.as_slice()), Some(300));
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decoded("unknown%20service%3A x"), "unknown service: x");
        assert_eq!(percent_decoded("100%"), "100%");
    }
}
