//! Writes suspended (SPEC §15 "Disk"): below `[server] min_free_disk` on data_dir's
//! filesystem, or after a write error, ingest answers 503 with `Retry-After` and the
//! reason, `/readyz` answers 503 with the same reason, and reads go on. The watch here
//! reads the free space once a second (statvfs, no I/O on the disk) and lifts the
//! suspension by itself once space is back and a probe write reaches the disk.
//!
//! Why a watermark and not just the write errors: sled 0.34 keeps the first I/O error
//! of a database handle for the handle's life (every later write fails, and reads of
//! pages written after it fail too), and one of its error paths sets that error without
//! waking the threads waiting for a flush, which is how a full disk used to hang every
//! request. Stopping writes while there is still room means sled never meets ENOSPC.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use probity_config::units::format_byte_size;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::state::AppState;
use crate::store::StoreError;

/// The `Retry-After` of a 503 from a suspended collector: the watch looks every second,
/// so an agent coming back after this finds writes resumed soon after space is freed,
/// and thousands of agents make a few requests a second between them.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How often the free space is read.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);
/// A write or flush that takes longer than this is taken for a storage failure: the
/// request answers 503 instead of waiting for ever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why writes are suspended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Free space on data_dir's filesystem is below `min_free_disk`.
    LowDisk,
    /// A write, a flush or the ledger failed.
    WriteError,
}

/// A suspension of writes, with the reason ingest and `/readyz` answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspension {
    pub cause: Cause,
    pub reason: String,
}

/// Whether the store takes writes; shared by ingest, `/readyz`, the jobs and the watch.
#[derive(Debug, Default)]
pub struct Writes {
    suspended: RwLock<Option<Suspension>>,
    /// Free bytes on data_dir's filesystem at the last look (`u64::MAX` before the first).
    free_bytes: AtomicU64,
    probing: AtomicBool,
    unreadable_logged: AtomicBool,
}

impl Writes {
    pub fn new() -> Arc<Writes> {
        Arc::new(Writes { free_bytes: AtomicU64::new(u64::MAX), ..Writes::default() })
    }

    /// `Err` with the suspension while writes are suspended.
    pub fn check(&self) -> Result<(), Suspension> {
        match &*self.suspended.read().unwrap_or_else(|e| e.into_inner()) {
            Some(s) => Err(s.clone()),
            None => Ok(()),
        }
    }

    pub fn is_writable(&self) -> bool {
        self.check().is_ok()
    }

    /// Suspends writes (logged when the state or the reason changes, not on every call).
    pub fn suspend(&self, cause: Cause, reason: String) -> Suspension {
        let suspension = Suspension { cause, reason };
        let mut slot = self.suspended.write().unwrap_or_else(|e| e.into_inner());
        // A write error is the stronger news: a low-disk reason does not replace it
        // (space may be back while the database still refuses writes).
        let keep = matches!(&*slot, Some(s) if s.cause == Cause::WriteError && cause == Cause::LowDisk);
        if keep {
            return slot.clone().expect("checked above");
        }
        // Logged when the cause changes; the reason's figures (free bytes) change silently.
        if slot.as_ref().map(|s| s.cause) != Some(cause) {
            warn!(reason = %suspension.reason, retry_after_s = RETRY_AFTER.as_secs(), "writes suspended: ingest answers 503 and /readyz is not ready; reads go on");
        }
        *slot = Some(suspension.clone());
        suspension
    }

    /// Suspends writes after `error` from the store, the group commit or the ledger.
    pub fn suspend_on_error(&self, error: &dyn std::fmt::Display) -> Suspension {
        self.suspend(
            Cause::WriteError,
            format!(
                "the database cannot write ({error}); ingest resumes by itself once a probe write succeeds (free \
                 disk space, check the disk and the collector's log)"
            ),
        )
    }

    /// Lifts the suspension.
    pub fn resume(&self) {
        let mut slot = self.suspended.write().unwrap_or_else(|e| e.into_inner());
        if let Some(was) = slot.take() {
            info!(was = %was.reason, "writes resumed: ingest accepted again");
        }
    }

    pub fn free_bytes(&self) -> Option<u64> {
        Some(self.free_bytes.load(Ordering::Relaxed)).filter(|b| *b != u64::MAX)
    }

    /// `probity_storage_writable` and `probity_storage_free_bytes`, in the exposition format.
    pub fn render_metrics(&self) -> String {
        let mut out = format!(
            "# HELP probity_storage_writable 1 while ingest takes writes, 0 while they are suspended (low disk \
             space or a write error; /readyz says why).\n# TYPE probity_storage_writable gauge\n\
             probity_storage_writable {}\n",
            u8::from(self.is_writable())
        );
        if let Some(free) = self.free_bytes() {
            out += &format!(
                "# HELP probity_storage_free_bytes Free space on data_dir's filesystem (for the collector's user).\n\
                 # TYPE probity_storage_free_bytes gauge\nprobity_storage_free_bytes {free}\n"
            );
        }
        out
    }
}

/// True when `e` is the storage failing (sled, an injected fault), not damage or a bug.
pub fn is_write_failure(e: &StoreError) -> bool {
    matches!(e, StoreError::Sled(_) | StoreError::Injected { .. })
}

/// Free bytes for an unprivileged user on the filesystem holding `dir` (statvfs).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok((stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64))
}

/// The suspension for `free` bytes below `min`, or `None` when there is enough.
pub fn low_disk(dir: &Path, free: u64, min: u64) -> Option<Suspension> {
    (free < min).then(|| Suspension {
        cause: Cause::LowDisk,
        reason: format!(
            "{} free on {} is below [server] min_free_disk ({}); ingest resumes by itself once more is free",
            format_byte_size(free),
            dir.display(),
            format_byte_size(min)
        ),
    })
}

/// Reads the free space every [`WATCH_EVERY`] until `stop` (see [`look`]).
pub async fn watch(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => look(&state).await,
            _ = stop.changed() => return,
        }
    }
}

/// One look: suspends writes below the watermark; while suspended, once there is room,
/// tries a probe write (a small `meta` write and a flush through the group commit) and
/// resumes when it reaches the disk.
pub async fn look(state: &AppState) {
    let config = state.config();
    let dir = config.server.data_dir.clone();
    let min = config.server.min_free_disk;
    let read = dir.clone();
    let writes = state.writes();
    match tokio::task::spawn_blocking(move || free_bytes(&read)).await {
        Ok(Ok(free)) => {
            writes.free_bytes.store(free, Ordering::Relaxed);
            if let Some(low) = low_disk(&dir, free, min) {
                writes.suspend(low.cause, low.reason);
                return;
            }
        }
        // The watermark cannot be judged; write errors still suspend writes.
        Ok(Err(e)) => {
            if !writes.unreadable_logged.swap(true, Ordering::Relaxed) {
                warn!(data_dir = %dir.display(), error = %e, "cannot read the free space of data_dir; min_free_disk is not enforced");
            }
        }
        Err(_) => {}
    }
    if !writes.is_writable() {
        probe(state).await;
    }
}

/// One probe write, never two at once (a wedged one is not piled upon).
async fn probe(state: &AppState) {
    let writes = state.writes().clone();
    if writes.probing.swap(true, Ordering::SeqCst) {
        return;
    }
    let store = state.store().clone();
    let written = tokio::time::timeout(
        WRITE_TIMEOUT,
        tokio::task::spawn_blocking(move || store.write_probe(crate::api::now_ms())),
    )
    .await;
    let result = match written {
        Ok(Ok(Ok(()))) => match tokio::time::timeout(WRITE_TIMEOUT, state.commit().commit()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("a flush did not finish within {}s", WRITE_TIMEOUT.as_secs())),
        },
        // sled keeps a handle's first I/O error for the handle's life: with room on the
        // disk again, only a restart (a fresh open, which repairs as after a crash) writes.
        Ok(Ok(Err(StoreError::Sled(e)))) => {
            writes.probing.store(false, Ordering::SeqCst);
            writes.suspend(Cause::WriteError, needs_restart(&e));
            return;
        }
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(format!("the probe write panicked: {e}")),
        Err(_) => Err(format!("a probe write did not finish within {}s", WRITE_TIMEOUT.as_secs())),
    };
    writes.probing.store(false, Ordering::SeqCst);
    match result {
        Ok(()) => writes.resume(),
        // Space is back but the write still fails: the write error is the reason now.
        Err(e) => {
            writes.suspend_on_error(&e);
        }
    }
}

/// The reason while the database handle keeps a storage error that space coming back
/// does not clear.
fn needs_restart(e: &dyn std::fmt::Display) -> String {
    format!(
        "the database met a storage error ({e}) and keeps refusing writes until the collector restarts: once the \
         disk has room (and is healthy), restart it (systemctl restart probity-collector); nothing acknowledged is \
         lost, agents keep the rest spooled"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_error_is_not_replaced_by_a_low_disk_reason_and_resume_lifts_both() {
        let w = Writes::new();
        assert!(w.is_writable());
        let low = low_disk(Path::new("/data"), 10 << 20, 1 << 30).unwrap();
        assert_eq!(
            low.reason,
            "10MiB free on /data is below [server] min_free_disk (1GiB); ingest resumes by itself once more is free"
        );
        w.suspend(low.cause, low.reason.clone());
        assert_eq!(w.check(), Err(low.clone()));
        let error = w.suspend_on_error(&"No space left on device");
        assert_eq!(w.check().unwrap_err().cause, Cause::WriteError);
        assert_eq!(w.suspend(Cause::LowDisk, low.reason), error, "the write error stays the reason");
        w.resume();
        assert!(w.is_writable());
        assert!(low_disk(Path::new("/data"), 1 << 30, 1 << 30).is_none(), "at the watermark is enough");
    }

    #[test]
    fn a_storage_error_that_only_a_restart_clears_says_so() {
        let reason = needs_restart(&"IO error: No space left on device");
        assert!(reason.contains("(IO error: No space left on device)") && reason.contains("restart"), "{reason}");
    }

    #[test]
    fn the_metrics_say_whether_writes_are_taken() {
        let w = Writes::new();
        assert!(w.render_metrics().contains("\nprobity_storage_writable 1\n"));
        assert!(!w.render_metrics().contains("probity_storage_free_bytes"), "not before the first look");
        w.free_bytes.store(42, Ordering::Relaxed);
        w.suspend_on_error(&"disk on fire");
        let text = w.render_metrics();
        assert!(
            text.contains("\nprobity_storage_writable 0\n") && text.contains("\nprobity_storage_free_bytes 42\n"),
            "{text}"
        );
    }

    #[test]
    fn free_space_is_read_from_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
