//! The network steps probes share, each timed and each turning its failure into a
//! `Failure` a person can act on: resolve (within `ip_protocol`), connect, TLS handshake
//! (with the peer's chain kept even when verification fails, so expiry can be reported;
//! per-probe `ca_file` roots and client certificates, loaded once per file version).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use probity_config::probe::IpProtocol;
use probity_config::time::rfc3339;
use probity_config::units::format_duration;
use probity_config::wire::ErrorKind;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
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
            failure(ErrorKind::Timeout, format!("timeout: {waiting_for} within {}", format_duration(self.timeout())))
        })
    }
}

pub(crate) fn failure(kind: ErrorKind, message: impl Into<String>) -> Failure {
    Failure { kind, message: message.into() }
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Resolves `host` to addresses of the families `ip` allows, with the end of the lookup
/// (`Clock::mark`); `None` for that when it is already an IP literal.
pub(crate) async fn resolve(
    clock: &Clock,
    host: &str,
    port: u16,
    ip: IpProtocol,
) -> Result<(Vec<SocketAddr>, Option<u64>), Failure> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(literal) = bare.parse::<IpAddr>() {
        if !ip.allows(literal) {
            return Err(failure(
                ErrorKind::Internal,
                format!("internal: {bare} is not an {} address (ip_protocol = \"{}\")", family(ip), ip.as_str()),
            ));
        }
        return Ok((vec![SocketAddr::new(literal, port)], None));
    }
    let addrs = match system_resolver(ip) {
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
    let addrs: Vec<SocketAddr> = addrs.into_iter().filter(|a| ip.allows(a.ip())).collect();
    if addrs.is_empty() {
        return Err(match ip {
            IpProtocol::Any => failure(ErrorKind::Dns, format!("dns: no address for {host}")),
            _ => failure(
                ErrorKind::Dns,
                format!("dns: no {} address for {host} (ip_protocol = \"{}\")", family(ip), ip.as_str()),
            ),
        });
    }
    Ok((addrs, Some(clock.mark())))
}

fn family(ip: IpProtocol) -> &'static str {
    match ip {
        IpProtocol::Ip6 => "IPv6",
        _ => "IPv4",
    }
}

/// The system configuration (resolv.conf), read once.
pub(crate) fn system_conf() -> Option<(ResolverConfig, ResolverOpts)> {
    static SYSTEM: OnceLock<Option<(ResolverConfig, ResolverOpts)>> = OnceLock::new();
    SYSTEM.get_or_init(|| hickory_resolver::system_conf::read_system_conf().ok()).clone()
}

/// A fresh resolver on the system configuration, with no cache so `dns_us` is honest.
/// Built per lookup: a resolver's connections belong to the runtime that made them.
fn system_resolver(ip: IpProtocol) -> Option<TokioResolver> {
    let (config, mut opts) = system_conf()?;
    opts.ip_strategy = match ip {
        IpProtocol::Any => LookupIpStrategy::Ipv4AndIpv6,
        IpProtocol::Ip4 => LookupIpStrategy::Ipv4Only,
        IpProtocol::Ip6 => LookupIpStrategy::Ipv6Only,
    };
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
            Err(e) => last = Some(connect_failure(&e, *addr)),
        }
    }
    Err(last.unwrap_or_else(|| failure(ErrorKind::Connect, "connect: no address to connect to")))
}

/// `connect: network is unreachable (192.0.2.1:53)`: how every kind says it could not
/// reach an address, whether over TCP, UDP or ICMP.
pub(crate) fn connect_failure(e: &std::io::Error, addr: SocketAddr) -> Failure {
    failure(ErrorKind::Connect, format!("connect: {} ({addr})", io_reason(e)))
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
    /// The peer's chain as sent, end entity first (DER).
    pub chain: Vec<Vec<u8>>,
    /// The protocol ALPN settled on, if any.
    pub alpn: Option<Vec<u8>>,
}

/// Why a TLS handshake failed, with the peer's chain when one was seen.
pub(crate) struct HandshakeFailure {
    pub failure: Failure,
    pub not_after: Option<i64>,
    pub chain: Vec<Vec<u8>>,
}

/// [`tls_handshake`] with what it learnt of the peer recorded in `details` whether or not it
/// succeeded: the chain and its expiry, and when the handshake completed. Returns the stream
/// and the protocol ALPN settled on.
pub(crate) async fn tls_handshake_recorded<S: AsyncRead + AsyncWrite + Unpin>(
    clock: &Clock,
    tcp: S,
    options: TlsOptions<'_>,
    details: &mut super::Details,
) -> Result<(TlsStream<S>, Option<Vec<u8>>), Failure> {
    match tls_handshake(clock, tcp, options).await {
        Ok(h) => {
            details.phases.tls_us = Some(h.tls_us);
            details.cert_not_after = h.not_after;
            details.chain = h.chain;
            Ok((h.stream, h.alpn))
        }
        Err(f) => {
            details.cert_not_after = f.not_after;
            details.chain = f.chain;
            Err(f.failure)
        }
    }
}

/// How one probe's TLS client is set up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TlsOptions<'a> {
    pub server_name: &'a str,
    pub verify: bool,
    /// ALPN protocols offered, most preferred first (empty: none offered).
    pub alpn: &'a [&'a [u8]],
    /// PEM roots trusted besides the system's.
    pub ca_file: Option<&'a str>,
    /// PEM certificate chain and private key to present.
    pub client_cert: Option<(&'a str, &'a str)>,
}

impl<'a> TlsOptions<'a> {
    pub(crate) fn new(server_name: &'a str) -> TlsOptions<'a> {
        TlsOptions { server_name, verify: true, alpn: &[], ca_file: None, client_cert: None }
    }
}

/// Handshakes over `tcp`, verifying the chain unless `verify` is off. An expired
/// certificate is `cert_expiry` here, so every kind that handshakes says it alike.
pub(crate) async fn tls_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    clock: &Clock,
    tcp: S,
    options: TlsOptions<'_>,
) -> Result<Handshake<S>, HandshakeFailure> {
    let server_name = options.server_name;
    let plain = |failure| HandshakeFailure { failure, not_after: None, chain: Vec::new() };
    let name = ServerName::try_from(server_name.to_string()).map_err(|_| {
        plain(failure(ErrorKind::Internal, format!("internal: \"{server_name}\" is not a valid TLS server name")))
    })?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let inner = match (options.verify, options.ca_file) {
        (false, _) => None,
        (true, None) => Some(webpki_verifier()),
        (true, Some(path)) => Some(ca_file_verifier(path).map_err(plain)?),
    };
    let verifier = Arc::new(Recording { inner, seen: seen.clone() });
    let builder = ClientConfig::builder().dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match options.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let (chain, private) = client_identity(cert, key).map_err(plain)?;
            builder.with_client_auth_cert(chain, private).map_err(|e| {
                plain(failure(ErrorKind::Internal, format!("internal: client_cert {cert} with client_key {key}: {e}")))
            })?
        }
    };
    config.alpn_protocols = options.alpn.iter().map(|p| p.to_vec()).collect();
    let result = clock
        .within(
            &format!("no TLS handshake with {server_name}"),
            TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .map_err(plain)?;
    let chain = std::mem::take(&mut *seen.lock().expect("lock"));
    let not_after = chain.first().and_then(|der| cert_not_after(der));
    match result {
        Ok(stream) => {
            let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            Ok(Handshake { stream, tls_us: clock.mark(), not_after, chain, alpn })
        }
        Err(e) => {
            let expired = matches!(
                e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. }
                ))
            );
            let failure = match (expired, not_after) {
                (true, Some(t)) => failure(
                    ErrorKind::CertExpiry,
                    format!("cert_expiry: certificate of {server_name} {}", expiry_words(t, unix_now())),
                ),
                _ => failure(
                    ErrorKind::Tls,
                    format!("tls: handshake with {server_name} failed: {}", tls_reason(&e, options.alpn)),
                ),
            };
            Err(HandshakeFailure { failure, not_after, chain })
        }
    }
}

fn tls_reason(e: &std::io::Error, alpn: &[&[u8]]) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)) => {
            let offered: Vec<String> = alpn.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
            format!("the server speaks none of the protocols offered ({})", offered.join(", "))
        }
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

pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Whole days from `now` to `not_after`, rounded toward zero: what "expires in N days"
/// and "expired N days ago" count, everywhere.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now) / 86_400
}

/// `expires in 12 days (not after 2026-12-14T10:00:00Z)` or `expired 3 days ago (not
/// after …)`: the one wording every probe kind and `probity-agent probe` use.
pub fn expiry_words(not_after: i64, now: i64) -> String {
    let when = unix_seconds_rfc3339(not_after);
    if not_after < now {
        format!("expired {} days ago (not after {when})", -days_left(not_after, now))
    } else {
        format!("expires in {} days (not after {when})", days_left(not_after, now))
    }
}

/// A certificate instant (Unix seconds, as x509 gives it) as RFC 3339.
pub(crate) fn unix_seconds_rfc3339(t: i64) -> String {
    rfc3339(t.saturating_mul(1000))
}

/// The end-entity certificate's `notAfter`, Unix seconds.
pub(crate) fn cert_not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

static EXTRA_ROOTS: RwLock<Vec<CertificateDer<'static>>> = RwLock::new(Vec::new());
static VERIFIER: RwLock<Option<Arc<WebPkiServerVerifier>>> = RwLock::new(None);

/// A file's identity for the caches below: a changed file (a renewed certificate) is
/// read again on the next probe.
type FileStamp = (std::path::PathBuf, Option<SystemTime>, u64);

fn stamp(path: &str, key: &str) -> Result<FileStamp, Failure> {
    let meta = std::fs::metadata(path)
        .map_err(|e| failure(ErrorKind::Internal, format!("internal: cannot read {key} {path}: {}", io_reason(&e))))?;
    Ok((path.into(), meta.modified().ok(), meta.len()))
}

fn read_certs(path: &str, key: &str) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let bad = |what: String| failure(ErrorKind::Internal, format!("internal: {key} {path}: {what}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// The default roots plus `path`'s, for one probe's `ca_file`.
fn ca_file_verifier(path: &str) -> Result<Arc<WebPkiServerVerifier>, Failure> {
    static CACHE: Mutex<Option<HashMap<FileStamp, Arc<WebPkiServerVerifier>>>> = Mutex::new(None);
    let key = stamp(path, "ca_file")?;
    if let Some(v) = CACHE.lock().expect("lock").get_or_insert_default().get(&key) {
        return Ok(v.clone());
    }
    let mut roots = default_roots();
    let (added, _) = roots.add_parsable_certificates(read_certs(path, "ca_file")?);
    if added == 0 {
        return Err(failure(ErrorKind::Internal, format!("internal: ca_file {path}: no usable CA certificate in it")));
    }
    let verifier = WebPkiServerVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| failure(ErrorKind::Internal, format!("internal: ca_file {path}: {e}")))?;
    let mut cache = CACHE.lock().expect("lock");
    let cache = cache.get_or_insert_default();
    cache.retain(|(p, _, _), _| p.as_path() != key.0.as_path());
    cache.insert(key, verifier.clone());
    Ok(verifier)
}

type Identity = (Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>);

/// A client certificate chain and its key, for mutual TLS.
fn client_identity(cert: &str, key: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Failure> {
    static CACHE: Mutex<Option<HashMap<(FileStamp, FileStamp), Identity>>> = Mutex::new(None);
    let stamps = (stamp(cert, "client_cert")?, stamp(key, "client_key")?);
    if let Some((chain, k)) = CACHE.lock().expect("lock").get_or_insert_default().get(&stamps) {
        return Ok((chain.clone(), k.clone_key()));
    }
    let chain = read_certs(cert, "client_cert")?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        failure(ErrorKind::Internal, format!("internal: client_key {key}: {e} (a PEM private key is expected)"))
    })?;
    let mut cache = CACHE.lock().expect("lock");
    let cache = cache.get_or_insert_default();
    cache.retain(|(c, k), _| c.0 != stamps.0.0 || k.0 != stamps.1.0);
    cache.insert(stamps, (chain.clone(), Arc::new(private.clone_key())));
    Ok((chain, private))
}

/// Trusts one more root certificate (DER) for every probe in this process, beside the
/// system's roots and the Mozilla bundle. Tests use it for their own CA.
pub fn trust_extra_root(der: Vec<u8>) {
    EXTRA_ROOTS.write().expect("lock").push(CertificateDer::from(der));
    *VERIFIER.write().expect("lock") = None;
}

/// The Mozilla bundle, the system's roots and the process's extra roots.
fn default_roots() -> RootCertStore {
    static NATIVE: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    roots.add_parsable_certificates(NATIVE.get_or_init(|| rustls_native_certs::load_native_certs().certs).clone());
    roots.add_parsable_certificates(EXTRA_ROOTS.read().expect("lock").iter().cloned());
    roots
}

fn webpki_verifier() -> Arc<WebPkiServerVerifier> {
    if let Some(v) = VERIFIER.read().expect("lock").as_ref() {
        return v.clone();
    }
    let roots = default_roots();
    let verifier = WebPkiServerVerifier::builder(Arc::new(roots)).build().expect("the root store is not empty");
    *VERIFIER.write().expect("lock") = Some(verifier.clone());
    verifier
}

/// Verifies with webpki (or not at all, for `tls_verify = false`) and records the
/// peer's chain either way.
#[derive(Debug)]
struct Recording {
    inner: Option<Arc<WebPkiServerVerifier>>,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
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
        let mut seen = self.seen.lock().expect("lock");
        seen.clear();
        seen.push(end_entity.to_vec());
        seen.extend(intermediates.iter().map(|c| c.to_vec()));
        drop(seen);
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
    fn unix_seconds_print_as_utc() {
        assert_eq!(unix_seconds_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(unix_seconds_rfc3339(1_763_812_800), "2025-11-22T12:00:00Z");
        assert_eq!(unix_seconds_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(unix_seconds_rfc3339(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn expiry_reads_the_same_in_every_kind() {
        let now = 1_800_000_000;
        assert_eq!(days_left(now - 3 * 86_400 - 5, now), -3);
        assert!(expiry_words(now - 3 * 86_400 - 5, now).starts_with("expired 3 days ago (not after "));
        assert!(expiry_words(now + 12 * 86_400 + 5, now).starts_with("expires in 12 days (not after "));
        assert!(expiry_words(now + 5, now).starts_with("expires in 0 days"));
    }

    #[test]
    fn an_unreachable_network_reads_alike_for_every_kind() {
        let e = std::io::Error::from_raw_os_error(101);
        let f = connect_failure(&e, "192.0.2.1:53".parse().unwrap());
        assert_eq!(
            (f.kind, f.message.as_str()),
            (ErrorKind::Connect, "connect: network is unreachable (192.0.2.1:53)")
        );
    }

    #[test]
    fn io_errors_lose_their_os_error_suffix() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&e), "connection refused");
    }
}
