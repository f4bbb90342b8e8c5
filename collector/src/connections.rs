//! The accept loop and its limits (SPEC §15), with hyper's own machinery: a timer on the
//! connection builder for the header deadline, `tokio::time::timeout` around the TLS
//! handshake, a semaphore for `[server] max_connections`, and `TCP_NODELAY` on every
//! socket (neither `axum::serve` nor axum-server sets it; small requests then stall ~40 ms
//! on delayed ACKs).
//!
//! Plain HTTP is served as HTTP/1.1 only: hyper's header timer starts as soon as an HTTP/1
//! connection waits for a request, but the auto builder's HTTP/2 sniffing waits for the
//! first bytes without any deadline, so a client that connects and sends nothing would be
//! kept for ever. HTTPS offers `h2` and `http/1.1` by ALPN and serves what was agreed.
//! Because the header timer runs whenever an HTTP/1 connection waits for a request, the
//! header deadline also closes idle keep-alive connections (sooner than the 60 s bound).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// How long and how many connections are kept.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this, counted from when the connection
    /// starts waiting for them (so an idle keep-alive connection is closed after it too).
    pub header_read_timeout: Duration,
    /// A TLS handshake must be done within this.
    pub tls_handshake_timeout: Duration,
    /// HTTP/2 keep-alive pings: sent after this long without frames, and the connection
    /// closed when one is not answered within it.
    pub http2_keep_alive: Duration,
    /// Connections served at once; more wait in the kernel's accept backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            http2_keep_alive: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// Serves `app` on every connection `listener` accepts until `shutdown` resolves, then
/// stops accepting. The returned handle drains the connections still open.
pub async fn serve_connections(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> GracefulShutdown {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A slot first, then accept: at the limit, new connections wait in the backlog
        // instead of being accepted and starved.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                warn!(max_connections = limits.max_connections, "connection limit reached; new connections wait");
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            warn!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let result = match tls {
                Some(acceptor) => {
                    let tls_stream =
                        match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                debug!(%peer, error = %e, "tls handshake failed");
                                return;
                            }
                            Err(_) => {
                                debug!(%peer, timeout = ?limits.tls_handshake_timeout, "tls handshake timed out");
                                return;
                            }
                        };
                    let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    let builder = builder(&limits, h2);
                    watcher.watch(builder.serve_connection(TokioIo::new(tls_stream), service)).await
                }
                None => {
                    let builder = builder(&limits, false);
                    watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    info!("no longer accepting connections");
    drop(listener);
    graceful
}

/// One protocol's connection builder with its timers.
fn builder(limits: &ConnectionLimits, h2: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder = if h2 { builder.http2_only() } else { builder.http1_only() };
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keep_alive)
        .keep_alive_timeout(limits.http2_keep_alive);
    builder
}
