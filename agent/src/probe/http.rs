//! The `http` probe, on hyper with a timed connector: a fresh connection per probe,
//! phases `dns_us`, `connect_us`, `tls_us` (https) and `first_byte_us`, then the status
//! and body checks. Redirects are followed (up to 10) when `follow_redirects` is on.
//!
//! Phases count from the probe's start, as `curl -w` does: `connect_us` is when the
//! connection was up, `first_byte_us` when the response head arrived. With redirects,
//! they are the final hop's, still counted from the start of the first.
//!
//! "Arrived" is the kernel's receive stamp of the bytes (`arrival`), and the probe's
//! duration ends when the last byte of the body arrived: neither includes the time this
//! host took to get round to reading what was already there.
//!
//! HTTP/2 is spoken when ALPN settles on `h2` (offered with `http_version = "any"` or
//! `"2"`), or with prior knowledge over plain `http://` when `http_version = "2"`.

use bytes::Bytes;
use http::header::{HOST, LOCATION, USER_AGENT};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use probity_config::probe::{HttpSpec, HttpVersion};
use probity_config::wire::ErrorKind;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use url::Url;

use super::arrival::{Arrivals, StampedStream};
use super::net::{self, Clock, TlsOptions, failure};
use super::{Details, Failure, Outcome};

const MAX_REDIRECTS: usize = 10;
/// Enough for any health page; the rest of a body is read and discarded.
const BODY_KEEP: usize = 1 << 20;

pub async fn run(spec: &HttpSpec, deadline: Instant) -> Outcome {
    let clock = Clock::start(deadline);
    let mut details = Details::default();
    let mut end = None;
    let result = probe(&clock, spec, &mut details, &mut end).await;
    clock.finish_at(end, details, result)
}

/// Runs the probe; `end` is set to the arrival of the final response's last byte once
/// the whole of it has been read.
async fn probe(
    clock: &Clock,
    spec: &HttpSpec,
    details: &mut Details,
    end: &mut Option<Instant>,
) -> Result<(), Failure> {
    let mut url = Url::parse(&spec.url)
        .map_err(|e| failure(ErrorKind::Internal, format!("internal: \"{}\" is not a URL: {e}", spec.url)))?;
    let mut method = Method::from_bytes(spec.method.as_bytes())
        .map_err(|_| failure(ErrorKind::Internal, format!("internal: \"{}\" is not an HTTP method", spec.method)))?;
    let mut body = spec.body.clone().map(Bytes::from).unwrap_or_default();
    for hop in 0..=MAX_REDIRECTS {
        *details = Details::default();
        let (response, mut connection, arrivals) = exchange(clock, spec, &url, &method, body.clone(), details).await?;
        let status = response.status();
        details.status = Some(status.as_u16());
        if spec.follow_redirects
            && status.is_redirection()
            && let Some(location) = response.headers().get(LOCATION).and_then(|v| v.to_str().ok())
        {
            if hop == MAX_REDIRECTS {
                return Err(failure(ErrorKind::Status, format!("status: more than {MAX_REDIRECTS} redirects")));
            }
            let next = url.join(location).map_err(|e| {
                failure(ErrorKind::Status, format!("status: {status} with a bad Location \"{location}\": {e}"))
            })?;
            // As browsers do: 303 always, and 301/302 after a POST, continue as GET.
            if status == StatusCode::SEE_OTHER || (method == Method::POST && matches!(status.as_u16(), 301 | 302)) {
                method = Method::GET;
                body = Bytes::new();
            }
            url = next;
            continue;
        }
        details.http_version = Some(version_name(response.version()));
        details.headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let keep = spec.body_contains.is_some() || spec.body_regex.is_some();
        let headers = response.headers().clone();
        let version = response.version();
        let kept = read_body(clock, response.into_body(), &mut connection, keep).await?;
        *end = arrivals.last();
        if spec.fail_if_not_tls && url.scheme() != "https" {
            return Err(failure(
                ErrorKind::Tls,
                format!("tls: the final response came over plain HTTP ({url}) and fail_if_not_tls is set"),
            ));
        }
        if spec.http_version == HttpVersion::Http2 && version != http::Version::HTTP_2 {
            return Err(failure(
                ErrorKind::Status,
                format!("status: answered over {}, http_version requires HTTP/2 ({url})", version_name(version)),
            ));
        }
        if !spec.status_expected(status.as_u16()) {
            let expected = spec.expect_status.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            return Err(failure(ErrorKind::Status, format!("status: got {status}, expected {expected} ({url})")));
        }
        for (name, pattern) in &spec.expect_headers {
            let values: Vec<String> = headers
                .get_all(name.as_str())
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            if values.is_empty() {
                return Err(failure(
                    ErrorKind::Status,
                    format!("status: no {name} header, expected one matching /{}/ ({url})", pattern.as_str()),
                ));
            }
            if !values.iter().any(|v| pattern.is_match(v)) {
                return Err(failure(
                    ErrorKind::Status,
                    format!(
                        "status: header {name} \"{}\" does not match /{}/ ({url})",
                        values.join(", "),
                        pattern.as_str()
                    ),
                ));
            }
        }
        if let Some(pattern) = &spec.body_regex
            && !pattern.is_match_bytes(&kept)
        {
            return Err(failure(
                ErrorKind::Body,
                format!("body: does not match /{}/ (first {} bytes read)", pattern.as_str(), kept.len()),
            ));
        }
        if let Some(needle) = &spec.body_contains
            && !contains(&kept, needle.as_bytes())
        {
            return Err(failure(
                ErrorKind::Body,
                format!("body: does not contain \"{needle}\" (first {} bytes read)", kept.len()),
            ));
        }
        return Ok(());
    }
    unreachable!("the loop returns on its last hop")
}

/// One request on a fresh connection, up to the response head.
async fn exchange(
    clock: &Clock,
    spec: &HttpSpec,
    url: &Url,
    method: &Method,
    body: Bytes,
    details: &mut Details,
) -> Result<(http::Response<Incoming>, Connection, Arrivals), Failure> {
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(failure(ErrorKind::Internal, format!("internal: cannot probe {other}:// URLs"))),
    };
    let host = url.host_str().ok_or_else(|| failure(ErrorKind::Internal, format!("internal: {url} has no host")))?;
    let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
    let (addrs, dns_us) = net::resolve(clock, host, port, spec.ip_protocol).await?;
    details.phases.dns_us = dns_us;
    let (tcp, connect_us) = net::connect(clock, &addrs).await?;
    details.phases.connect_us = Some(connect_us);
    let (tcp, arrivals) = StampedStream::new(tcp);
    let mut target = url.path().to_string();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let alpn: &[&[u8]] = match spec.http_version {
        HttpVersion::Any => &[b"h2", b"http/1.1"],
        HttpVersion::Http1 => &[b"http/1.1"],
        HttpVersion::Http2 => &[b"h2"],
    };
    let (io, h2): (Box<dyn Io>, bool) = if https {
        let server = host.trim_start_matches('[').trim_end_matches(']');
        let options = TlsOptions {
            verify: spec.tls_verify,
            alpn,
            ca_file: spec.ca_file.as_deref(),
            client_cert: spec.client_cert.as_deref().zip(spec.client_key.as_deref()),
            ..TlsOptions::new(server)
        };
        let (stream, alpn) = net::tls_handshake_recorded(clock, tcp, options, details).await?;
        (Box::new(stream), alpn.as_deref() == Some(b"h2"))
    } else {
        (Box::new(tcp), spec.http_version == HttpVersion::Http2)
    };
    // HTTP/2 carries the authority in the request's URI (`:authority`), not a Host header.
    let mut request = if h2 {
        Request::builder().method(method.clone()).uri(url.as_str())
    } else {
        Request::builder().method(method.clone()).uri(target).header(HOST, authority)
    };
    if !spec.headers.keys().any(|k| k.eq_ignore_ascii_case("user-agent")) {
        request = request.header(USER_AGENT, concat!("probity-agent/", env!("CARGO_PKG_VERSION")));
    }
    for (name, value) in &spec.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| failure(ErrorKind::Internal, format!("internal: cannot build the request: {e}")))?;
    send(clock, io, h2, request, url, arrivals, details).await
}

/// A connection's byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// One side of a client connection that sends requests, in either version.
enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<http::Response<Incoming>, hyper::Error> {
        match self {
            Sender::Http1(s) => s.send_request(request).await,
            Sender::Http2(s) => s.send_request(request).await,
        }
    }
}

fn version_name(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

async fn send(
    clock: &Clock,
    io: Box<dyn Io>,
    h2: bool,
    request: Request<Full<Bytes>>,
    url: &Url,
    arrivals: Arrivals,
    details: &mut Details,
) -> Result<(http::Response<Incoming>, Connection, Arrivals), Failure> {
    let failed =
        |e: hyper::Error| failure(ErrorKind::Connect, format!("connect: HTTP handshake with {url} failed: {e}"));
    // The connection is driven inside this task rather than spawned: the response is
    // then seen in the same poll that reads it off the socket, with no hop between
    // threads inflating `first_byte_us`. Dropped with the probe, it leaves nothing behind.
    let (mut sender, mut connection): (Sender, Connection) = if h2 {
        let (sender, connection) = clock
            .within(
                "no HTTP/2 connection",
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)),
            )
            .await?
            .map_err(failed)?;
        (
            Sender::Http2(sender),
            Box::pin(async move {
                let _ = connection.await;
            }),
        )
    } else {
        let (sender, connection) = clock
            .within("no HTTP connection", hyper::client::conn::http1::handshake(TokioIo::new(io)))
            .await?
            .map_err(failed)?;
        (
            Sender::Http1(sender),
            Box::pin(async move {
                let _ = connection.await;
            }),
        )
    };
    let sent = Instant::now();
    let refused = |e: hyper::Error| failure(ErrorKind::Connect, format!("connect: {url}: {}", hyper_reason(&e)));
    let exchange = async {
        let mut sending = std::pin::pin!(sender.send(request));
        tokio::select! {
            biased;
            response = &mut sending => response.map_err(refused),
            () = &mut connection => {
                // The driver may have finished *because* it read the whole response and the
                // server then closed (`Connection: close`): the response, or hyper's reason
                // for not having one, is already waiting. The finished driver must not be
                // polled again, so a never-ready one takes its place for the body.
                connection = Box::pin(std::future::pending());
                sending.await.map_err(refused)
            }
        }
    };
    let response = clock.within("no response", exchange).await??;
    // The read that completed the head is the latest one (a TLS session ticket read
    // before it does not count); a server that answered before being asked counts as 0.
    let head = arrivals.last().filter(|at| *at >= sent).unwrap_or(sent);
    details.phases.first_byte_us = Some(clock.since_start(head));
    Ok((response, connection, arrivals))
}

/// A client connection's driver, polled by the probe while it waits.
type Connection = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn hyper_reason(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "the server closed the connection before answering".into()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }
}

/// Reads the body to its end (the transfer is part of the probe), keeping the first
/// `BODY_KEEP` bytes when they are to be searched.
async fn read_body(
    clock: &Clock,
    mut body: Incoming,
    connection: &mut Connection,
    keep: bool,
) -> Result<Vec<u8>, Failure> {
    let mut kept = Vec::new();
    let mut driving = true;
    loop {
        let next = async {
            loop {
                tokio::select! {
                    biased;
                    frame = body.frame() => return frame,
                    () = &mut *connection, if driving => driving = false,
                }
            }
        };
        let frame = clock.within("the body did not arrive", next).await?;
        match frame {
            None => return Ok(kept),
            Some(Err(e)) => {
                return Err(failure(ErrorKind::Body, format!("body: reading failed: {}", hyper_reason(&e))));
            }
            Some(Ok(frame)) => {
                if let (true, Ok(data)) = (keep, frame.into_data()) {
                    let room = BODY_KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_search_finds_text_anywhere() {
        assert!(contains(b"status: ok\n", b"ok"));
        assert!(!contains(b"status: down", b"ok"));
        assert!(contains(b"", b""));
    }
}
