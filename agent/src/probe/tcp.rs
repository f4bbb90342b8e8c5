//! The `tcp` probe: resolve, connect; then, as asked, TLS right away (`tls`) or after
//! the protocol's own upgrade (`starttls`: SMTP `STARTTLS`, IMAP `STARTTLS`, POP3
//! `STLS`); `send` some bytes; read until the reply matches `expect` (blackbox_exporter's
//! `query_response`). Up when every step did; a reply that does not match is `answer`.

use probity_config::probe::{StartTls, TcpSpec};
use probity_config::units::format_duration;
use probity_config::wire::ErrorKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::net::{self, Clock, TlsOptions, failure};
use super::{Details, Failure, Outcome};

/// More reply than any banner or health answer needs; a reply is judged on this much.
const REPLY_KEEP: usize = 64 * 1024;

pub async fn run(spec: &TcpSpec, deadline: Instant) -> Outcome {
    let clock = Clock::start(deadline);
    let mut details = Details::default();
    let result = probe(&clock, spec, &mut details).await;
    clock.finish(details, result)
}

async fn probe(clock: &Clock, spec: &TcpSpec, details: &mut Details) -> Result<(), Failure> {
    let (addrs, dns_us) = net::resolve(clock, &spec.target.host, spec.target.port, spec.ip_protocol).await?;
    details.phases.dns_us = dns_us;
    let (mut stream, connect_us) = net::connect(clock, &addrs).await?;
    details.phases.connect_us = Some(connect_us);
    if !spec.uses_tls() {
        return converse(clock, spec, &mut stream, Vec::new(), details).await;
    }
    let mut reply = Vec::new();
    if let Some(protocol) = spec.starttls {
        upgrade(clock, spec, protocol, &mut stream, &mut reply, details).await?;
    }
    let name = spec.effective_server_name().trim_start_matches('[').trim_end_matches(']');
    let options = TlsOptions { ca_file: spec.ca_file.as_deref(), ..TlsOptions::new(name) };
    let (mut tls, _) = net::tls_handshake_recorded(clock, stream, options, details).await?;
    converse(clock, spec, &mut tls, Vec::new(), details).await
}

/// `send`, then read until `expect` matches.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    clock: &Clock,
    spec: &TcpSpec,
    stream: &mut S,
    mut reply: Vec<u8>,
    details: &mut Details,
) -> Result<(), Failure> {
    let target = &spec.target;
    if let Some(send) = &spec.send {
        clock.within(&format!("could not send to {target}"), stream.write_all(send.as_bytes())).await?.map_err(
            |e| failure(ErrorKind::Connect, format!("connect: sending to {target} failed: {}", net::io_reason(&e))),
        )?;
    }
    let Some(pattern) = &spec.expect else { return Ok(()) };
    let got = read_until(clock, stream, &mut reply, details, |text| pattern.is_match(text)).await;
    details.answers = vec![shown(&reply)];
    match got {
        Ok(()) => Ok(()),
        Err(Ended::Timeout) if reply.is_empty() => Err(failure(
            ErrorKind::Timeout,
            format!("timeout: no reply from {target} within {}", format_duration(clock.timeout())),
        )),
        Err(Ended::Failed(f)) => Err(f),
        Err(_) => Err(failure(
            ErrorKind::Answer,
            format!("answer: reply from {target} does not match /{}/; got \"{}\"", pattern.as_str(), shown(&reply)),
        )),
    }
}

/// Why reading stopped short.
enum Ended {
    Timeout,
    Closed,
    Full,
    Failed(Failure),
}

/// Reads into `reply` until `done` holds for the text so far. The first byte's arrival is
/// `first_byte_us`.
async fn read_until<S: AsyncRead + Unpin>(
    clock: &Clock,
    stream: &mut S,
    reply: &mut Vec<u8>,
    details: &mut Details,
    done: impl Fn(&str) -> bool,
) -> Result<(), Ended> {
    let mut buf = [0u8; 4096];
    loop {
        if done(&String::from_utf8_lossy(reply)) {
            return Ok(());
        }
        if reply.len() >= REPLY_KEEP {
            return Err(Ended::Full);
        }
        let n = match clock.within("", stream.read(&mut buf)).await {
            Err(_) => return Err(Ended::Timeout),
            Ok(Err(e)) => {
                return Err(Ended::Failed(failure(
                    ErrorKind::Connect,
                    format!("connect: reading the reply failed: {}", net::io_reason(&e)),
                )));
            }
            Ok(Ok(0)) => return Err(Ended::Closed),
            Ok(Ok(n)) => n,
        };
        if details.phases.first_byte_us.is_none() {
            details.phases.first_byte_us = Some(clock.mark());
        }
        reply.extend_from_slice(&buf[..n.min(REPLY_KEEP - reply.len())]);
    }
}

/// The plain-text dialogue up to the point where TLS starts.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    clock: &Clock,
    spec: &TcpSpec,
    protocol: StartTls,
    stream: &mut S,
    reply: &mut Vec<u8>,
    details: &mut Details,
) -> Result<(), Failure> {
    let target = &spec.target;
    let name = protocol.as_str();
    let mut step = async |what: &str,
                          send: Option<&str>,
                          done: &(dyn Fn(&str) -> bool + Sync)|
           -> Result<String, Failure> {
        if let Some(line) = send {
            clock
                .within(&format!("{name} server {target} did not take {what}"), stream.write_all(line.as_bytes()))
                .await?
                .map_err(|e| failure(ErrorKind::Connect, format!("connect: {name} {what}: {}", net::io_reason(&e))))?;
        }
        reply.clear();
        match read_until(clock, stream, reply, details, done).await {
            Ok(()) => Ok(String::from_utf8_lossy(reply).into_owned()),
            Err(Ended::Failed(f)) => Err(f),
            Err(Ended::Timeout) => Err(failure(
                ErrorKind::Timeout,
                format!("timeout: no {what} from {name} server {target} within {}", format_duration(clock.timeout())),
            )),
            Err(_) => Err(failure(
                ErrorKind::Tls,
                format!("tls: {name} server {target} ended the dialogue before {what}; got \"{}\"", shown(reply)),
            )),
        }
    };
    let refused = |what: &str, got: &str| {
        failure(ErrorKind::Tls, format!("tls: {name} server {target} {what}; got \"{}\"", shown(got.as_bytes())))
    };
    match protocol {
        StartTls::Smtp => {
            let greeting = step("a greeting", None, &smtp_reply_complete).await?;
            if !greeting.starts_with("220") {
                return Err(refused("did not greet with 220", &greeting));
            }
            let ehlo = step("an EHLO reply", Some("EHLO probity-agent\r\n"), &smtp_reply_complete).await?;
            if !ehlo.starts_with("250") {
                return Err(refused("refused EHLO", &ehlo));
            }
            if !ehlo.lines().any(|l| l.get(4..).is_some_and(|ext| ext.trim().eq_ignore_ascii_case("STARTTLS"))) {
                return Err(refused("does not offer STARTTLS", &ehlo));
            }
            let go = step("a STARTTLS reply", Some("STARTTLS\r\n"), &smtp_reply_complete).await?;
            if !go.starts_with("220") {
                return Err(refused("refused STARTTLS", &go));
            }
        }
        StartTls::Imap => {
            let greeting = step("a greeting", None, &line_complete).await?;
            if !greeting.starts_with("* OK") {
                return Err(refused("did not greet with * OK", &greeting));
            }
            let tagged = |t: &str| t.lines().any(|l| l.starts_with("p1 ")) && t.ends_with('\n');
            let go = step("a STARTTLS reply", Some("p1 STARTTLS\r\n"), &tagged).await?;
            if !go.lines().any(|l| l.starts_with("p1 OK")) {
                return Err(refused("refused STARTTLS", &go));
            }
        }
        StartTls::Pop3 => {
            let greeting = step("a greeting", None, &line_complete).await?;
            if !greeting.starts_with("+OK") {
                return Err(refused("did not greet with +OK", &greeting));
            }
            let go = step("an STLS reply", Some("STLS\r\n"), &line_complete).await?;
            if !go.starts_with("+OK") {
                return Err(refused("refused STLS", &go));
            }
        }
    }
    reply.clear();
    Ok(())
}

fn line_complete(text: &str) -> bool {
    text.ends_with('\n')
}

/// An SMTP reply ends with a line whose code is followed by a space (`250 ok`), not a
/// dash (`250-STARTTLS`).
fn smtp_reply_complete(text: &str) -> bool {
    text.ends_with('\n') && text.lines().last().is_some_and(|l| l.len() >= 3 && l.as_bytes().get(3) != Some(&b'-'))
}

/// A reply as a message shows it: lossy text, escapes for line breaks, at most 200 chars.
fn shown(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    let mut out: String = text.chars().take(200).collect::<String>().escape_debug().to_string();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_replies_end_on_a_line_without_a_dash() {
        assert!(!smtp_reply_complete("250-mail.example.com\r\n250-STARTTLS\r\n"));
        assert!(smtp_reply_complete("250-mail.example.com\r\n250 STARTTLS\r\n"));
        assert!(!smtp_reply_complete("220 mail.example.com ESMTP"));
        assert!(smtp_reply_complete("220 mail.example.com ESMTP\r\n"));
    }

    #[test]
    fn replies_show_escaped_and_short() {
        assert_eq!(shown(b"220 ok\r\n"), "220 ok\\r\\n");
        assert_eq!(shown(&[b'a'; 300]).chars().count(), 201);
    }
}
