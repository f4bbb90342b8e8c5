//! When a response really arrived: a TCP stream that asks the kernel for the receive
//! timestamp of the data each read returns (`SO_TIMESTAMPNS`), as `ping` does, so a
//! measured latency is the network's and the server's, not the time this host took to
//! schedule the probe's task after the bytes were already waiting in the socket.
//!
//! The kernel stamps with the wall clock; a stamp becomes a monotonic `Instant` by
//! subtracting how long the data had waited (wall now − stamp, read at once) from the
//! monotonic now. A wall-clock step can only shrink that wait to nothing, never move an
//! arrival before the probe or after the read. Where the kernel gives no stamp (another
//! OS, a socket option refused), the arrival is the moment the read returned, as before.
//!
//! Linux switches receive stamping on for the whole host only while some socket wants
//! it, and switches it on *lazily* (from a work queue) when the first one asks: a probe
//! whose socket was the only one would see its first packets unstamped. So the process
//! keeps one loopback connection with the option set for as long as it runs, and
//! `arm_receive_stamps` (called as the agent starts) waits until stamps actually flow.

use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A wait longer than this between the kernel's stamp and the read is not believed (the
/// wall clock was stepped): the read's own time is used.
const MAX_BELIEVED_WAIT: Duration = Duration::from_secs(10);

/// The arrival of the data most recently read, shared between the stream (which a TLS
/// or HTTP layer owns) and the probe that reads it out.
#[derive(Clone, Debug, Default)]
pub(crate) struct Arrivals(Arc<Mutex<Option<Instant>>>);

impl Arrivals {
    /// When the data returned by the latest read reached this host; `None` before any data.
    pub(crate) fn last(&self) -> Option<Instant> {
        *self.0.lock().expect("lock")
    }

    fn record(&self, at: Instant) {
        *self.0.lock().expect("lock") = Some(at);
    }
}

/// A `TcpStream` whose reads record when their data arrived.
pub(crate) struct StampedStream {
    inner: TcpStream,
    arrivals: Arrivals,
    /// Whether the kernel agreed to stamp received data.
    stamped: bool,
}

/// Switches the host's receive stamping on for the life of this process and waits (up to
/// a second) until the kernel stamps; `false` where it does not (then reads are timed
/// when they return). Blocks: call it once, before probing.
pub fn arm_receive_stamps() -> bool {
    sys::arm()
}

impl StampedStream {
    pub(crate) fn new(inner: TcpStream) -> (StampedStream, Arrivals) {
        let stamped = sys::enable(&inner);
        let arrivals = Arrivals::default();
        (StampedStream { inner, arrivals: arrivals.clone(), stamped }, arrivals)
    }
}

/// The monotonic instant of a wall-clock kernel stamp, given the wall and monotonic
/// clocks read together just after the data was taken.
fn arrival(kernel: SystemTime, wall_now: SystemTime, now: Instant) -> Instant {
    match wall_now.duration_since(kernel) {
        Ok(waited) if waited <= MAX_BELIEVED_WAIT => now.checked_sub(waited).unwrap_or(now),
        _ => now,
    }
}

impl AsyncRead for StampedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.stamped {
            let before = buf.filled().len();
            ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
            if buf.filled().len() > before {
                self.arrivals.record(Instant::now());
            }
            return Poll::Ready(Ok(()));
        }
        loop {
            ready!(self.inner.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match self.inner.try_io(tokio::io::Interest::READABLE, || sys::recv_stamped(self.inner.as_fd(), unfilled)) {
                Ok((n, kernel)) => {
                    buf.advance(n);
                    if n > 0 {
                        let (wall_now, now) = (SystemTime::now(), Instant::now());
                        self.arrivals.record(kernel.map_or(now, |k| arrival(k, wall_now, now)));
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for StampedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io::{self, IoSliceMut, Write};
    use std::net::{TcpListener, TcpStream as StdStream};
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, SystemTime};

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
    use tokio::net::TcpStream;

    pub(super) fn enable(stream: &TcpStream) -> bool {
        keeper();
        setsockopt(stream, sockopt::ReceiveTimestampns, &true).is_ok()
    }

    /// A loopback connection (writer, stamped reader) held for the life of the process
    /// (see the module note), also used to see whether stamps flow.
    fn keeper() -> Option<&'static Mutex<(StdStream, StdStream)>> {
        static KEEPER: OnceLock<Option<Mutex<(StdStream, StdStream)>>> = OnceLock::new();
        KEEPER
            .get_or_init(|| {
                let listener = TcpListener::bind("127.0.0.1:0").ok()?;
                let writer = StdStream::connect(listener.local_addr().ok()?).ok()?;
                let (reader, _) = listener.accept().ok()?;
                setsockopt(&reader, sockopt::ReceiveTimestampns, &true).ok()?;
                Some(Mutex::new((writer, reader)))
            })
            .as_ref()
    }

    pub(super) fn arm() -> bool {
        let Some(keeper) = keeper() else { return false };
        let (writer, reader) = &mut *keeper.lock().expect("lock");
        let mut buf = [0u8; 64];
        for _ in 0..1000 {
            if writer.write_all(b".").is_err() {
                return false;
            }
            // Loopback delivers within the write; a short wait covers a slow softirq.
            for _ in 0..10 {
                match recv_stamped(reader.as_fd(), &mut buf) {
                    Ok((_, Some(_))) => return true,
                    Ok((_, None)) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_micros(100)),
                    Err(_) => return false,
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// One `recvmsg`: the bytes read and the kernel's receive stamp of the last of them.
    pub(super) fn recv_stamped(stream: BorrowedFd<'_>, into: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
        let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let mut iov = [IoSliceMut::new(into)];
        let message = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut control), MsgFlags::MSG_DONTWAIT)
            .map_err(io::Error::from)?;
        let mut stamp = None;
        for cmsg in message.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmTimestampns(ts) = cmsg {
                let since_epoch = Duration::from(ts);
                if !since_epoch.is_zero() {
                    stamp = Some(SystemTime::UNIX_EPOCH + since_epoch);
                }
            }
        }
        Ok((message.bytes, stamp))
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::os::fd::BorrowedFd;
    use std::time::SystemTime;

    use tokio::net::TcpStream;

    pub(super) fn enable(_: &TcpStream) -> bool {
        false
    }

    pub(super) fn arm() -> bool {
        false
    }

    pub(super) fn recv_stamped(_: BorrowedFd<'_>, _: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_becomes_the_instant_the_data_had_waited_since() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let at = arrival(wall - Duration::from_millis(3), wall, now);
        assert_eq!(now - at, Duration::from_millis(3));
    }

    #[test]
    fn a_stepped_wall_clock_never_moves_an_arrival_outside_the_read() {
        let now = Instant::now();
        let wall = SystemTime::now();
        // Stamp "after" the read: the clock was stepped back in between.
        assert_eq!(arrival(wall + Duration::from_secs(1), wall, now), now);
        // A wait of an hour: the clock was stepped forward.
        assert_eq!(arrival(wall - Duration::from_secs(3600), wall, now), now);
    }

    #[tokio::test]
    async fn reads_report_when_the_bytes_reached_the_socket_not_when_they_were_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let armed = arm_receive_stamps();
        assert_eq!(armed, cfg!(target_os = "linux"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // Answer only once asked, as servers do: the client is stamping by then.
            let mut ask = [0u8; 1];
            s.read_exact(&mut ask).await.unwrap();
            s.write_all(b"hello").await.unwrap();
            s
        });
        let (mut stream, arrivals) = StampedStream::new(TcpStream::connect(addr).await.unwrap());
        stream.write_all(b"?").await.unwrap();
        let _server_side = server.await.unwrap();
        assert_eq!(arrivals.last(), None, "nothing read yet");
        // The bytes are in the socket now; read them 50 ms later.
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.unwrap();
        let read_at = Instant::now();
        assert_eq!(&buf, b"hello");
        let arrived = arrivals.last().expect("a read with data records an arrival");
        if cfg!(target_os = "linux") {
            assert!(
                read_at - arrived >= Duration::from_millis(45),
                "the arrival is when the kernel got the bytes ({:?} before the read)",
                read_at - arrived
            );
        }
        assert!(arrived <= read_at);
    }
}
