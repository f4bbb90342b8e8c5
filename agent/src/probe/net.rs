//! The network steps probes share, each timed and each turning its failure into a
//! `Failure` a person can act on: resolve, connect, TLS handshake (with the peer
//! certificate kept even when verification fails, so expiry can be reported).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use probity_config::wire::ErrorKind;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Details, Failure, Outcome};

/// The start of one probe run and its deadline; makes the `Outcome`.
pub(crate) struct Clock {
    at: SystemTime,
    start: Instant,
    deadline: Instant,
}

impl Clock {
    pub(crate) fn start(deadline: Instant) -> Clock {
        Clock { at: SystemTime::now(), start: Instant::now(), deadline }
    }

    pub(crate) fn finish(&self, details: Details, result: Result<(), Failure>) -> Outcome {
        self.finish_at(None, details, result)
    }

    /// As `finish`, with the probe over at `end` (when the last byte of the answer
    /// arrived) rather than now, when one is known.
    pub(crate) fn finish_at(&self, end: Option<Instant>, details: Details, result: Result<(), Failure>) -> Outcome {
        let end = end.filter(|e| *e >= self.start).unwrap_or_else(Instant::now);
        Outcome { at: self.at, duration: end - self.start, details, result }
    }

    /// Microseconds from the probe's start to now: the end of a phase, as the `phases`
    /// fields count it (like `curl -w`'s `time_connect` and friends, each from the start).
    pub(crate) fn mark(&self) -> u64 {
        self.since_start(Instant::now())
    }

    /// Microseconds from the probe's start to `at`.
    pub(crate) fn since_start(&self, at: Instant) -> u64 {
        micros(at.saturating_duration_since(self.start))
    }

    /// The whole time allowed, for messages.
    pub(crate) fn timeout(&self) -> Duration {
        // The deadline was set a few microseconds before this clock started: round
        // so messages say "5s", as configured.
        let d = self.deadline.saturating_duration_since(self.start);
        Duration::from_millis(((d.as_micros() + 500) / 1000) as u64)
    }

    /// Runs `step`, failing with a `timeout` that says what was being waited for.
    pub(crate) async fn within<T>(&self, waiting_for: &str, step: impl Future<Output = T>) -> Result<T, Failure> {
        tokio::time::timeout_at(self.deadline, step).await.map_err(|_| {
            failure(ErrorKind::Timeout, format!("timeout: {waiting_for} within {}", human(self.timeout())))
        })
    }
}

pub(crate) fn failure(kind: ErrorKind, message: impl Into<String>) -> Failure {
    Failure { kind, message: message.into() }
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `1.5s`, `250ms`, `3µs`: durations as operators read them.
pub fn human(d: Duration) -> String {
    let us = d.as_micros();
    if us >= 1_000_000 {
        let s = d.as_secs_f64();
        if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{s:.3}s") }
    } else if us >= 1_000 {
        if us.is_multiple_of(1000) { format!("{}ms", us / 1000) } else { format!("{:.3}ms", us as f64 / 1000.0) }
    } else {
        format!("{us}µs")
    }
}

/// Resolves `host` to addresses, with the end of the lookup (`Clock::mark`); `None`
/// for that when it is already an IP literal.
pub(crate) async fn resolve(clock: &Clock, host: &str, port: u16) -> Result<(Vec<SocketAddr>, Option<u64>), Failure> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok((vec![SocketAddr::new(ip, port)], None));
    }
    let addrs = match system_resolver() {
        Some(resolver) => {
            let lookup = clock.within(&format!("no address for {host}"), resolver.lookup_ip(host)).await?;
            match lookup {
                Ok(ips) => ips.iter().map(|ip| SocketAddr::new(ip, port)).collect::<Vec<_>>(),
                Err(e) if e.is_nx_domain() || e.is_no_records_found() => {
                    return Err(failure(ErrorKind::Dns, format!("dns: no such host {host}")));
                }
                Err(e) => return Err(failure(ErrorKind::Dns, format!("dns: cannot resolve {host}: {e}"))),
            }
        }
        // No usable resolv.conf: fall back to the C library.
        None => match clock.within(&format!("no address for {host}"), tokio::net::lookup_host((host, port))).await? {
            Ok(addrs) => addrs.collect(),
            Err(e) => return Err(failure(ErrorKind::Dns, format!("dns: cannot resolve {host}: {e}"))),
        },
    };
    if addrs.is_empty() {
        return Err(failure(ErrorKind::Dns, format!("dns: no address for {host}")));
    }
    Ok((addrs, Some(clock.mark())))
}

/// A fresh resolver on the system configuration, with no cache so `dns_us` is honest.
/// Built per lookup: a resolver's connections belong to the runtime that made them.
fn system_resolver() -> Option<TokioResolver> {
    static SYSTEM: OnceLock<Option<(ResolverConfig, ResolverOpts)>> = OnceLock::new();
    let (config, opts) = SYSTEM.get_or_init(|| hickory_resolver::system_conf::read_system_conf().ok()).clone()?;
    Some(build_resolver(config, opts))
}

pub(crate) fn build_resolver(config: ResolverConfig, mut opts: ResolverOpts) -> TokioResolver {
    opts.cache_size = 0;
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    *builder.options_mut() = opts;
    builder.build().expect("a resolver without TLS or DNSSEC always builds")
}

/// Connects to the first address that answers, with the moment it did (`Clock::mark`).
pub(crate) async fn connect(clock: &Clock, addrs: &[SocketAddr]) -> Result<(TcpStream, u64), Failure> {
    let mut last = None;
    for addr in addrs {
        match clock.within(&format!("no connection to {addr}"), TcpStream::connect(addr)).await? {
            Ok(stream) => {
                let connected = clock.mark();
                let _ = stream.set_nodelay(true);
                return Ok((stream, connected));
            }
            Err(e) => last = Some(failure(ErrorKind::Connect, format!("connect: {} ({addr})", io_reason(&e)))),
        }
    }
    Err(last.unwrap_or_else(|| failure(ErrorKind::Connect, "connect: no address to connect to")))
}

/// `connection refused` rather than `Connection refused (os error 111)`.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        std::io::ErrorKind::TimedOut => "timed out".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text,
            }
        }
    }
}

/// What a TLS handshake established.
pub(crate) struct Handshake<S> {
    pub stream: TlsStream<S>,
    /// When it completed, from the probe's start.
    pub tls_us: u64,
    pub not_after: Option<i64>,
}

/// Why a TLS handshake failed, with the peer certificate's expiry when one was seen.
pub(crate) struct HandshakeFailure {
    pub failure: Failure,
    pub expired: bool,
    pub not_after: Option<i64>,
}

/// Handshakes over `tcp`, verifying the chain against the trusted roots unless `verify` is off.
pub(crate) async fn tls_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    clock: &Clock,
    tcp: S,
    server_name: &str,
    verify: bool,
    alpn_http1: bool,
) -> Result<Handshake<S>, HandshakeFailure> {
    let plain = |failure| HandshakeFailure { failure, expired: false, not_after: None };
    let name = ServerName::try_from(server_name.to_string()).map_err(|_| {
        plain(failure(ErrorKind::Internal, format!("tls: \"{server_name}\" is not a valid server name")))
    })?;
    let seen = Arc::new(Mutex::new(None));
    let verifier = Arc::new(Recording { inner: verify.then(webpki_verifier), seen: seen.clone() });
    let mut config =
        ClientConfig::builder().dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    if alpn_http1 {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    let result = clock
        .within(
            &format!("no TLS handshake with {server_name}"),
            TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .map_err(plain)?;
    let not_after = seen.lock().expect("lock").as_deref().and_then(cert_not_after);
    match result {
        Ok(stream) => Ok(Handshake { stream, tls_us: clock.mark(), not_after }),
        Err(e) => {
            let expired = matches!(
                e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. }
                ))
            );
            let message = match (expired, not_after) {
                (true, Some(t)) => format!("tls: certificate of {server_name} expired {}", since(t)),
                _ => format!("tls: handshake with {server_name} failed: {}", tls_reason(&e)),
            };
            Err(HandshakeFailure { failure: failure(ErrorKind::Tls, message), expired, not_after })
        }
    }
}

fn tls_reason(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(c)) => format!("invalid certificate: {}", cert_reason(c)),
        Some(other) => other.to_string(),
        None => io_reason(e),
    }
}

fn cert_reason(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => "unknown issuer (not signed by a trusted root)".into(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "not valid for this name".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "not valid yet".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// `3 days ago (2026-11-19T10:00:00Z)`.
fn since(not_after: i64) -> String {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let days = (now - not_after) / 86_400;
    format!("{days} days ago (not after {})", unix_to_rfc3339(not_after))
}

pub(crate) fn unix_to_rfc3339(t: i64) -> String {
    // Civil-from-days (Howard Hinnant): UTC only, so no calendar library is needed here.
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// The end-entity certificate's `notAfter`, Unix seconds.
pub(crate) fn cert_not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

static EXTRA_ROOTS: RwLock<Vec<CertificateDer<'static>>> = RwLock::new(Vec::new());
static VERIFIER: RwLock<Option<Arc<WebPkiServerVerifier>>> = RwLock::new(None);

/// Trusts one more root certificate (DER) for every probe in this process, beside the
/// system's roots and the Mozilla bundle. Tests use it for their own CA.
pub fn trust_extra_root(der: Vec<u8>) {
    EXTRA_ROOTS.write().expect("lock").push(CertificateDer::from(der));
    *VERIFIER.write().expect("lock") = None;
}

fn webpki_verifier() -> Arc<WebPkiServerVerifier> {
    if let Some(v) = VERIFIER.read().expect("lock").as_ref() {
        return v.clone();
    }
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    roots.add_parsable_certificates(EXTRA_ROOTS.read().expect("lock").iter().cloned());
    let verifier = WebPkiServerVerifier::builder(Arc::new(roots)).build().expect("the root store is not empty");
    *VERIFIER.write().expect("lock") = Some(verifier.clone());
    verifier
}

/// Verifies with webpki (or not at all, for `tls_verify = false`) and records the
/// end-entity certificate either way.
#[derive(Debug)]
struct Recording {
    inner: Option<Arc<WebPkiServerVerifier>>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().expect("lock") = Some(end_entity.to_vec());
        match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    crate::install_crypto_provider();
    rustls::crypto::CryptoProvider::get_default().expect("installed above").clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_operators_write_them() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_millis(1500)), "1.500s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_micros(1250)), "1.250ms");
        assert_eq!(human(Duration::from_micros(3)), "3µs");
    }

    #[test]
    fn unix_seconds_print_as_utc() {
        assert_eq!(unix_to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(unix_to_rfc3339(1_763_812_800), "2025-11-22T12:00:00Z");
        assert_eq!(unix_to_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn io_errors_lose_their_os_error_suffix() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&e), "connection refused");
    }
}
