//! The shipper: reads the spool in seq order, posts batches to the collector, and
//! acknowledges (deletes) only what a 200 covered. Failures back off exponentially
//! with jitter; a 503 (the collector cannot store now: a full disk, a write error) is
//! retried no sooner than its `Retry-After` and logged once a minute, the results kept
//! spooled; after an outage everything still spooled is delivered, in order.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, warn};

use crate::client::{CallError, Collector};
use crate::metrics::Metrics;
use crate::spool::Spool;

pub struct Shipper {
    pub collector: Arc<Collector>,
    pub spool: Arc<Spool>,
    pub metrics: Arc<Metrics>,
    /// Signalled by the spool writer after each commit.
    pub written: Arc<Notify>,
    pub batch_max: usize,
    /// How long to gather results before sending (results arrive in bursts).
    pub linger: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

const BATCH_BYTES: usize = 8 << 20;

impl Shipper {
    /// Delivers until `stop` turns true; then keeps delivering until the spool is empty
    /// or a delivery fails (the caller bounds that with a timeout).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut batch_max = self.batch_max.max(1);
        let mut backoff = self.retry_initial;
        let mut rng = Jitter::new();
        let mut rejections = RejectionLog::default();
        let mut clock = ClockWatch::default();
        let mut unavailable = UnavailableLog::default();
        loop {
            let stopping = *stop.borrow();
            let batch = match self.read(batch_max) {
                Ok(b) => b,
                Err(e) => {
                    error!(error = %e, "spool unreadable; retrying");
                    if self.wait(&mut stop, self.retry_max, stopping).await {
                        return;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                self.metrics.delivery_lag_ms.store(0, Relaxed);
                if stopping {
                    return;
                }
                tokio::select! {
                    () = self.written.notified() => {}
                    _ = stop.changed() => {}
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                if !*stop.borrow() {
                    tokio::time::sleep(self.linger).await;
                }
                continue;
            }
            self.update_lag(&batch);
            let first = batch[0].seq;
            let last = batch[batch.len() - 1].seq;
            let payloads: Vec<&[u8]> = batch.iter().map(|r| r.json.as_slice()).collect();
            match self.collector.ingest(self.spool.instance(), &payloads).await {
                Ok(response) => {
                    let now = tokio::time::Instant::now();
                    if let Some(due) = rejections.add(&response.rejected, now) {
                        due.log(self.collector.clock_offset_ms());
                    }
                    clock.check(self.collector.clock_offset_ms(), now);
                    self.metrics.rejected.fetch_add(response.rejected.len() as u64, Relaxed);
                    self.metrics.delivered.fetch_add(batch.len() as u64, Relaxed);
                    if let Err(e) = self.spool.ack(last) {
                        error!(error = %e, "cannot delete delivered results from the spool");
                    }
                    debug!(first, last, accepted = response.accepted, duplicates = response.duplicates, "delivered");
                    if let Some(refused) = unavailable.recovered() {
                        info!(refused, through = last, "collector stores results again; delivering the backlog");
                    } else if backoff > self.retry_initial {
                        info!(through = last, "collector reachable again; delivering the backlog");
                    }
                    backoff = self.retry_initial;
                    batch_max = (batch_max * 2).min(self.batch_max.max(1));
                }
                Err(CallError::Status { status, .. })
                    if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE && batch.len() > 1 =>
                {
                    batch_max = (batch.len() / 2).max(1);
                    warn!(batch = batch.len(), next = batch_max, "collector says the batch is too large; halving it");
                }
                Err(CallError::Unavailable { retry_after, body }) if !stopping => {
                    // Not our fault and not the network's: the collector says when to come
                    // back (a full disk, say); everything stays spooled meanwhile.
                    self.metrics.delivery_failures.fetch_add(1, Relaxed);
                    let wait = match retry_after {
                        Some(hint) => after_hint(hint, &mut rng),
                        None => {
                            let wait = rng.jitter(backoff);
                            backoff = (backoff * 2).min(self.retry_max);
                            wait
                        }
                    };
                    if let Some(refused) = unavailable.add(tokio::time::Instant::now()) {
                        let spooled = self.spool.stats().depth;
                        warn!(reason = %body, refused, retry_in = ?wait, spooled, "collector cannot store results now; keeping them spooled");
                    }
                    if self.wait(&mut stop, wait, stopping).await {
                        return;
                    }
                }
                Err(e) => {
                    self.metrics.delivery_failures.fetch_add(1, Relaxed);
                    if stopping {
                        warn!(error = %e, undelivered = self.spool.stats().depth, "cannot deliver at shutdown; results stay spooled");
                        return;
                    }
                    let wait = rng.jitter(backoff);
                    match &e {
                        CallError::Auth { .. } => error!(error = %e, retry_in = ?wait, "delivery refused"),
                        _ => warn!(error = %e, retry_in = ?wait, first, last, "delivery failed"),
                    }
                    backoff = (backoff * 2).min(self.retry_max);
                    if self.wait(&mut stop, wait, stopping).await {
                        return;
                    }
                }
            }
        }
    }

    fn read(&self, batch_max: usize) -> std::io::Result<Vec<crate::spool::Record>> {
        self.spool.read_after(0, batch_max, BATCH_BYTES)
    }

    /// Sleeps `d`, waking early when a stop is asked for; true when it is time to return.
    async fn wait(&self, stop: &mut watch::Receiver<bool>, d: Duration, stopping: bool) -> bool {
        if stopping {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => false,
            _ = stop.changed() => false,
        }
    }

    fn update_lag(&self, batch: &[crate::spool::Record]) {
        #[derive(serde::Deserialize)]
        struct At {
            at: i64,
        }
        if let Ok(first) = serde_json::from_slice::<At>(&batch[0].json) {
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            self.metrics.delivery_lag_ms.store((now - first.at).max(0) as u64, Relaxed);
        }
    }
}

/// How often rejections are summed up in the log: once a minute with counts, so an agent
/// whose clock is 10 minutes fast logs one line a minute, not one per result.
const REJECTION_LOG_EVERY: Duration = Duration::from_secs(60);
/// The collector's default `[server] max_clock_offset`; the agent warns past it.
const CLOCK_WARN_MS: u64 = 2_000;
/// While the clock stays off, the warning is repeated this often.
const CLOCK_WARN_EVERY: Duration = Duration::from_secs(3600);

/// Rejections counted between log lines: results refused for an `at` in the future (this
/// host's clock is ahead) apart from the others, each with one example reason.
#[derive(Default)]
struct RejectionLog {
    since: Option<tokio::time::Instant>,
    future: u64,
    other: u64,
    example: Option<String>,
}

impl RejectionLog {
    /// Counts `rejected`; the counts to log when a line is due (the first rejection at
    /// once, later ones once the minute is up).
    fn add(&mut self, rejected: &[probity_config::wire::Rejected], now: tokio::time::Instant) -> Option<RejectionLog> {
        for r in rejected {
            // The collector's reason for a future `at` (SPEC §6) says "in the future".
            if r.reason.contains("in the future") {
                self.future += 1;
            } else {
                self.other += 1;
                if self.example.is_none() {
                    self.example = Some(format!("seq {}: {}", r.seq, r.reason));
                }
            }
        }
        if self.future + self.other == 0 || self.since.is_some_and(|s| now.duration_since(s) < REJECTION_LOG_EVERY) {
            return None;
        }
        Some(std::mem::replace(self, RejectionLog { since: Some(now), ..RejectionLog::default() }))
    }

    fn log(&self, clock_offset_ms: Option<i64>) {
        if self.future > 0 {
            warn!(
                rejected = self.future,
                clock_offset_ms,
                "collector rejected results timed in the future: this host's clock is ahead (check NTP)"
            );
        }
        if self.other > 0 {
            warn!(rejected = self.other, example = self.example.as_deref().unwrap_or(""), "collector rejected results");
        }
    }
}

/// Warns when this host's clock goes more than [`CLOCK_WARN_MS`] off the collector's,
/// again every [`CLOCK_WARN_EVERY`] while it stays off, and once when it is back.
#[derive(Default)]
struct ClockWatch {
    warned_at: Option<tokio::time::Instant>,
}

impl ClockWatch {
    fn check(&mut self, offset_ms: Option<i64>, now: tokio::time::Instant) {
        let Some(offset) = offset_ms else { return };
        let off = offset.unsigned_abs() > CLOCK_WARN_MS;
        match (off, self.warned_at) {
            (true, Some(at)) if now.duration_since(at) < CLOCK_WARN_EVERY => {}
            (true, _) => {
                warn!(clock_offset_ms = offset, "this host's clock is more than 2s off the collector's (check NTP)");
                self.warned_at = Some(now);
            }
            (false, Some(_)) => {
                info!(clock_offset_ms = offset, "this host's clock is back in line with the collector's");
                self.warned_at = None;
            }
            (false, None) => {}
        }
    }
}

/// The longest `Retry-After` honoured as given; a longer one is taken as this (a collector
/// back sooner should not wait for an agent told to sleep for days).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// When to come back after a 503 with `Retry-After: hint`: never sooner than the hint,
/// and up to half as late again, so that agents told the same thing do not return together.
fn after_hint(hint: Duration, rng: &mut Jitter) -> Duration {
    let hint = hint.min(MAX_RETRY_AFTER);
    hint + rng.jitter(hint / 2)
}

/// 503s counted between log lines: the first is logged at once, later ones once a minute
/// with their count, so a collector suspended for an hour costs 60 lines, not thousands.
#[derive(Default)]
struct UnavailableLog {
    since: Option<tokio::time::Instant>,
    /// Refusals since the last line.
    pending: u64,
    /// Refusals since the last delivery.
    total: u64,
}

impl UnavailableLog {
    /// Counts one 503; the refusals to report when a line is due.
    fn add(&mut self, now: tokio::time::Instant) -> Option<u64> {
        self.pending += 1;
        self.total += 1;
        if self.since.is_some_and(|s| now.duration_since(s) < REJECTION_LOG_EVERY) {
            return None;
        }
        self.since = Some(now);
        Some(std::mem::take(&mut self.pending))
    }

    /// A delivery succeeded: the refusals since the last one, if there were any.
    fn recovered(&mut self) -> Option<u64> {
        let total = self.total;
        *self = UnavailableLog::default();
        (total > 0).then_some(total)
    }
}

/// Full jitter over the upper half: waits in `[d/2, d)`, so retries from many agents
/// after one collector outage do not arrive together.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        Jitter(seed | 1)
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let half = d / 2;
        half + Duration::from_nanos(self.0 % (half.as_nanos() as u64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use probity_config::wire::Rejected;

    use super::*;

    fn future(n: u64) -> Vec<Rejected> {
        (0..n).map(|seq| Rejected { seq, reason: "at 1 is more than 5 minutes in the future".into() }).collect()
    }

    #[test]
    fn rejected_as_future_is_logged_once_a_minute_with_a_count() {
        let start = tokio::time::Instant::now();
        let mut log = RejectionLog::default();
        assert!(log.add(&[], start).is_none(), "nothing rejected, nothing logged");
        let first = log.add(&future(3), start).expect("the first rejection is logged at once");
        assert_eq!((first.future, first.other), (3, 0));
        // A result a second for the rest of the minute: no line until the minute is up.
        for s in 1..60 {
            assert!(log.add(&future(1), start + Duration::from_secs(s)).is_none(), "second {s}");
        }
        let other = [Rejected { seq: 9, reason: "unknown probe 'x'".into() }];
        let due = log.add(&other, start + Duration::from_secs(60)).expect("a line a minute");
        assert_eq!((due.future, due.other), (59, 1), "the minute's results, counted");
        assert_eq!(due.example.as_deref(), Some("seq 9: unknown probe 'x'"));
        assert!(log.add(&future(1), start + Duration::from_secs(61)).is_none());
    }

    #[test]
    fn the_clock_warning_is_given_once_and_again_hourly_while_off() {
        let start = tokio::time::Instant::now();
        let mut clock = ClockWatch::default();
        clock.check(Some(500), start);
        assert!(clock.warned_at.is_none());
        clock.check(Some(-7_200_000), start);
        assert_eq!(clock.warned_at, Some(start));
        clock.check(Some(-7_200_000), start + Duration::from_secs(60));
        assert_eq!(clock.warned_at, Some(start), "not again within the hour");
        clock.check(Some(-7_200_000), start + CLOCK_WARN_EVERY);
        assert_eq!(clock.warned_at, Some(start + CLOCK_WARN_EVERY));
        clock.check(Some(10), start + CLOCK_WARN_EVERY);
        assert!(clock.warned_at.is_none(), "back in line");
    }

    #[test]
    fn a_503_is_logged_at_once_then_once_a_minute_and_its_hint_is_never_cut_short() {
        let start = tokio::time::Instant::now();
        let mut log = UnavailableLog::default();
        assert_eq!(log.add(start), Some(1), "the first refusal at once");
        for s in 1..60 {
            assert_eq!(log.add(start + Duration::from_secs(s)), None, "second {s}");
        }
        assert_eq!(log.add(start + Duration::from_secs(60)), Some(60), "a line a minute, with the count");
        assert_eq!(log.recovered(), Some(61));
        assert_eq!(log.recovered(), None, "nothing refused since");
        assert_eq!(log.add(start + Duration::from_secs(61)), Some(1), "a new outage is logged at once");

        let mut rng = Jitter::new();
        for hint in [1, 10, 120] {
            let hint = Duration::from_secs(hint);
            for _ in 0..100 {
                let w = after_hint(hint, &mut rng);
                assert!(w >= hint && w < hint * 3 / 2, "{w:?} for {hint:?}");
            }
        }
        assert!(after_hint(Duration::from_secs(86_400 * 30), &mut rng) < MAX_RETRY_AFTER * 2);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let mut j = Jitter::new();
        for _ in 0..1000 {
            let w = j.jitter(Duration::from_secs(8));
            assert!(w >= Duration::from_secs(4) && w < Duration::from_secs(8), "{w:?}");
        }
    }
}
