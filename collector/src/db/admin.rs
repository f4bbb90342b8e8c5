//! The running collector's admin socket, `data_dir/admin.sock`: how `db check` and
//! `db backup` reach a database that sled has locked for the collector. A Unix socket
//! rather than an HTTP route: only a process on the same host, running as the
//! collector's user (or root), can connect — data_dir is 0700 and the socket 0600, and
//! the peer's uid is checked besides — so there is no token to configure, leak or
//! rotate, and nothing is exposed to the network.
//!
//! Protocol: the client sends one line, `check` or `backup`. For `check` the collector
//! answers with the report's lines and a last line `status 0` or `status 1`; for
//! `backup`, with the backup's bytes (`store/backup.rs`), ending in its checked end mark,
//! or a failure frame.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tracing::{info, warn};

use super::DbError;
use crate::store::{Store, write_failure};

/// The socket's path inside a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.sock")
}

/// Serves the admin socket until `stop`; `None` (with a warning) when it cannot be bound,
/// in which case `db backup` cannot reach this collector.
pub fn spawn(
    store: Arc<Store>,
    data_dir: &Path,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = socket_path(data_dir);
    // A socket left by a collector that was killed: this process holds the database's
    // lock, so no other collector can be serving it.
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot serve the admin socket; db check and db backup cannot reach this collector");
            return None;
        }
    };
    // A socket is made 0777 less the umask (0700 under ours); only the owner connects,
    // and connecting needs write permission only, so it is 0600 like every other file.
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        warn!(path = %path.display(), error = %e, "cannot make the admin socket 0600");
    }
    let owner = std::fs::metadata(&path).map(|m| m.uid()).ok();
    let ledger = data_dir.join("ledger");
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(handle(stream, store.clone(), ledger.clone(), owner));
                    }
                    Err(e) => warn!(error = %e, "admin socket accept failed"),
                },
                _ = stop.changed() => break,
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

async fn handle(mut stream: UnixStream, store: Arc<Store>, ledger: PathBuf, owner: Option<u32>) {
    let peer = stream.peer_cred().ok().map(|c| c.uid());
    if peer.is_none() || (peer != owner && peer != Some(0)) {
        warn!(peer_uid = ?peer, "admin socket: refused a process of another user");
        return;
    }
    let command = match tokio::time::timeout(Duration::from_secs(10), read_line(&mut stream)).await {
        Ok(Ok(line)) => line,
        _ => return,
    };
    let Ok(stream) = stream.into_std() else { return };
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    info!(command = %command, "admin request");
    let done = tokio::task::spawn_blocking(move || answer(&command, &store, &ledger, stream)).await;
    match done {
        Ok(Ok(())) => info!("admin request answered"),
        Ok(Err(e)) => warn!(error = %e, "admin request failed"),
        Err(e) => warn!(error = %e, "admin request panicked"),
    }
}

/// One line, without its `\n`, at most 64 bytes.
async fn read_line(stream: &mut UnixStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 64 {
        if stream.read(&mut byte).await? == 0 || byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).trim().to_string())
}

fn answer(command: &str, store: &Store, ledger: &Path, stream: StdUnixStream) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, stream);
    match command {
        "check" => {
            let ok = super::check_store(store, ledger, &mut out)?;
            writeln!(out, "status {}", if ok { 0 } else { 1 })?;
            out.flush()
        }
        "backup" => match store.backup(&mut out) {
            Ok(_) => out.flush(),
            Err(e) => {
                let message = e.to_string();
                let _ = write_failure(&mut out, &message);
                Err(io::Error::other(message))
            }
        },
        other => writeln!(out, "unknown command {other:?}; this collector answers check and backup"),
    }
}

/// A connection to the running collector's socket; `None` when no collector serves it
/// (no socket, or one left by a collector that is gone).
pub fn connect(socket: &Path) -> Result<Option<StdUnixStream>, DbError> {
    match StdUnixStream::connect(socket) {
        Ok(s) => Ok(Some(s)),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => Ok(None),
        Err(source) => Err(DbError::Unreachable { socket: socket.display().to_string(), source }),
    }
}

/// `check` through the socket: copies the report to `out`; the collector's verdict.
pub fn ask_check(mut stream: StdUnixStream, out: &mut dyn Write) -> Result<bool, DbError> {
    let cut = |_| DbError::CutOff;
    stream.write_all(b"check\n").map_err(cut)?;
    for line in BufReader::new(stream).lines() {
        let line = line.map_err(cut)?;
        match line.strip_prefix("status ") {
            Some(status) => return Ok(status.trim() == "0"),
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    Err(DbError::CutOff)
}

/// `backup` through the socket: copies the backup's bytes to `to`, the file `path` (the
/// caller checks them).
pub fn ask_backup(mut stream: StdUnixStream, to: &mut impl Write, path: &Path) -> Result<(), DbError> {
    stream.write_all(b"backup\n").map_err(|_| DbError::CutOff)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stream.read(&mut buf).map_err(|_| DbError::CutOff)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).map_err(|source| DbError::Io {
            what: "cannot write",
            path: path.display().to_string(),
            source,
        })?;
    }
}
