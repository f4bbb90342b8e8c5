//! The scheduler: one task holding every assigned probe's next due time in a heap.
//! Each probe runs every `interval`, phase-spread over the interval by a stable hash
//! of (agent id, probe id); a run still going when its next tick comes makes that tick
//! a skipped one (counted), so a probe never runs twice at once. Durations come from
//! `tokio::time::Instant`, so tests drive it under `tokio::time::pause()`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use probity_config::wire::Assignment;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::metrics::Metrics;
use crate::probe::{self, Outcome};

/// A finished run on its way to the spool.
pub type Finished = (Arc<str>, Outcome);

/// One scheduled probe. It points into the current assignment rather than holding a
/// copy: with 10,000 probes, one copy of the specs is a few megabytes saved.
struct Slot {
    assignment: Arc<Assignment>,
    index: usize,
    id: Arc<str>,
    interval: Duration,
    next_due: Instant,
    running: Arc<AtomicBool>,
}

/// Runs the assignment in `assignments` until `stop` turns true, then waits for the
/// runs in flight (each bounded by its timeout) and returns.
pub async fn run(
    agent: String,
    mut assignments: watch::Receiver<Option<Arc<Assignment>>>,
    results: mpsc::UnboundedSender<Finished>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    let mut by_id: HashMap<String, u64> = HashMap::new();
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut next_key = 0u64;
    let mut in_flight = JoinSet::new();
    let mut apply = |assignment: &Arc<Assignment>,
                     slots: &mut HashMap<u64, Slot>,
                     by_id: &mut HashMap<String, u64>,
                     heap: &mut BinaryHeap<Reverse<(Instant, u64)>>| {
        let wanted: HashMap<&str, usize> =
            assignment.probes.iter().enumerate().map(|(i, p)| (p.id.as_str(), i)).collect();
        by_id.retain(|id, key| {
            let slot = slots.get_mut(key).expect("by_id and slots agree");
            match wanted.get(id.as_str()) {
                // Unchanged: keeps its schedule, now pointing into the new assignment.
                Some(&i) if assignment.probes[i] == slot.assignment.probes[slot.index] => {
                    slot.assignment = assignment.clone();
                    slot.index = i;
                    true
                }
                _ => {
                    slots.remove(key);
                    false
                }
            }
        });
        let now = Instant::now();
        let wall_ms = wall_ms();
        for (index, probe) in assignment.probes.iter().enumerate() {
            if by_id.contains_key(&probe.id) {
                continue;
            }
            let interval = Duration::from_millis(probe.interval_ms.max(1));
            let next_due = now + first_delay(&agent, &probe.id, interval, wall_ms);
            let key = next_key;
            next_key += 1;
            slots.insert(
                key,
                Slot {
                    assignment: assignment.clone(),
                    index,
                    id: Arc::from(probe.id.as_str()),
                    interval,
                    next_due,
                    running: Arc::new(AtomicBool::new(false)),
                },
            );
            by_id.insert(probe.id.clone(), key);
            heap.push(Reverse((next_due, key)));
        }
        // Stale heap entries (removed or replaced probes) are skipped when popped, but
        // a heap that churns for days should not grow without bound.
        if heap.len() > 2 * slots.len() + 1024 {
            heap.retain(|Reverse((due, key))| slots.get(key).is_some_and(|s| s.next_due == *due));
        }
        info!(probes = slots.len(), "schedule updated");
    };
    if let Some(a) = assignments.borrow_and_update().clone() {
        apply(&a, &mut slots, &mut by_id, &mut heap);
    }
    loop {
        let next = heap.peek().map(|Reverse((due, _))| *due);
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            changed = assignments.changed() => {
                if changed.is_err() {
                    break;
                }
                if let Some(a) = assignments.borrow_and_update().clone() {
                    apply(&a, &mut slots, &mut by_id, &mut heap);
                }
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = sleep_until_opt(next) => {
                let Some(Reverse((due, key))) = heap.pop() else { continue };
                let Some(slot) = slots.get_mut(&key) else { continue };
                if slot.next_due != due {
                    continue;
                }
                if slot.running.load(Relaxed) {
                    metrics.skipped_ticks.fetch_add(1, Relaxed);
                    debug!(probe = %slot.id, "previous run still going; tick skipped");
                } else {
                    slot.running.store(true, Relaxed);
                    in_flight.spawn(run_once(slot.assignment.clone(), slot.index, slot.id.clone(), slot.running.clone(), results.clone(), metrics.clone()));
                }
                slot.next_due += slot.interval;
                let now = Instant::now();
                if slot.next_due <= now {
                    // The runtime fell behind by whole intervals: those ticks are skipped too.
                    let behind = (now - slot.next_due).as_nanos() / slot.interval.as_nanos() + 1;
                    metrics.skipped_ticks.fetch_add(behind as u64, Relaxed);
                    slot.next_due += slot.interval * behind as u32;
                }
                heap.push(Reverse((slot.next_due, key)));
            }
        }
    }
    debug!(in_flight = in_flight.len(), "scheduler stopping; waiting for runs in flight");
    while in_flight.join_next().await.is_some() {}
}

async fn sleep_until_opt(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn run_once(
    assignment: Arc<Assignment>,
    index: usize,
    id: Arc<str>,
    running: Arc<AtomicBool>,
    results: mpsc::UnboundedSender<Finished>,
    metrics: Arc<Metrics>,
) {
    let probe = &assignment.probes[index];
    // Boxed so an idle probe costs only its slot, not the largest probe's future.
    let outcome = Box::pin(probe::run_spec(&probe.spec, Duration::from_millis(probe.timeout_ms))).await;
    metrics.probe_ran(probe.spec.kind(), outcome.result.as_ref().err().map(|f| f.kind));
    running.store(false, Relaxed);
    // Closed only once everything stopped; a result then has nowhere to go.
    let _ = results.send((id, outcome));
}

fn wall_ms() -> u128 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// FNV-1a: stable across runs, platforms and Rust versions, unlike `DefaultHasher`.
fn stable_hash(agent: &str, probe: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in agent.bytes().chain([0u8]).chain(probe.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The wait before a probe's first run so that it fires at wall-clock instants
/// `hash mod interval` into each interval: spread, and the same after a restart.
fn first_delay(agent: &str, probe: &str, interval: Duration, wall_ms: u128) -> Duration {
    let interval_ms = interval.as_millis().max(1);
    let phase = u128::from(stable_hash(agent, probe)) % interval_ms;
    let into = wall_ms % interval_ms;
    Duration::from_millis(((phase + interval_ms - into) % interval_ms) as u64)
}

#[cfg(test)]
mod tests {
    use probity_config::probe::{DnsSpec, ProbeSpec, RecordType};
    use probity_config::wire::AssignedProbe;
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_overrun_skips_ticks_and_never_runs_twice_at_once() {
        // A DNS server that never answers: every run lasts its whole 250 ms timeout,
        // longer than the 100 ms interval.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let probe = AssignedProbe {
            id: "slow".into(),
            interval_ms: 100,
            timeout_ms: 250,
            spec: ProbeSpec::Dns(DnsSpec {
                server: Some(silent.local_addr().unwrap()),
                ..DnsSpec::new("slow.test", RecordType::A)
            }),
        };
        let assignment = Arc::new(Assignment { agent: "a".into(), probes: vec![probe] });
        let (_assign_tx, assign_rx) = watch::channel(Some(assignment));
        let (results_tx, mut results_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let scheduler = tokio::spawn(run("a".into(), assign_rx, results_tx, metrics.clone(), stop_rx));
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop_tx.send(true).unwrap();
        scheduler.await.unwrap();
        let mut runs = 0u64;
        while let Ok((id, outcome)) = results_rx.try_recv() {
            assert_eq!(&*id, "slow");
            assert_eq!(outcome.result.unwrap_err().kind, probity_config::wire::ErrorKind::Timeout);
            runs += 1;
        }
        let skipped = metrics.skipped_ticks.load(Relaxed);
        // 30 ticks in 3 s; each run spans three of them, so about 10 runs and 20 skips.
        assert!((8..=12).contains(&runs), "runs {runs}");
        assert!(skipped >= 2 * (runs - 1), "runs {runs}, skipped {skipped}");
        assert!(runs + skipped <= 31, "runs {runs}, skipped {skipped}");
    }

    fn silent_probe(id: &str, interval_ms: u64, server: std::net::SocketAddr) -> AssignedProbe {
        AssignedProbe {
            id: id.into(),
            interval_ms,
            timeout_ms: 100,
            spec: ProbeSpec::Dns(DnsSpec { server: Some(server), ..DnsSpec::new(format!("{id}.test"), RecordType::A) }),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_untouched_probe_keeps_its_schedule_when_others_come_and_go() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = silent.local_addr().unwrap();
        let a = silent_probe("a", 1000, server);
        let first = Arc::new(Assignment { agent: "x".into(), probes: vec![a.clone()] });
        let (assign_tx, assign_rx) = watch::channel(Some(first));
        let (results_tx, mut results_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let scheduler = tokio::spawn(run("x".into(), assign_rx, results_tx, metrics, stop_rx));
        let mut a_times = Vec::new();
        let mut b_runs = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(8) {
            let elapsed = start.elapsed();
            if elapsed >= Duration::from_millis(2500) && assign_tx.borrow().as_ref().unwrap().probes.len() == 1 {
                let b = silent_probe("b", 700, server);
                assign_tx.send(Some(Arc::new(Assignment { agent: "x".into(), probes: vec![b, a.clone()] }))).unwrap();
            }
            if elapsed >= Duration::from_millis(5500) && assign_tx.borrow().as_ref().unwrap().probes.len() == 2 {
                assign_tx.send(Some(Arc::new(Assignment { agent: "x".into(), probes: vec![a.clone()] }))).unwrap();
            }
            tokio::select! {
                Some((id, _)) = results_rx.recv() => {
                    if &*id == "a" { a_times.push(Instant::now()) } else { b_runs += 1 }
                }
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        stop_tx.send(true).unwrap();
        scheduler.await.unwrap();
        assert!(b_runs >= 2, "b never ran ({b_runs})");
        assert!(a_times.len() >= 7, "{}", a_times.len());
        for pair in a_times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap.abs_diff(Duration::from_secs(1)) <= Duration::from_millis(2), "a's schedule moved: {gap:?}");
        }
    }

    #[test]
    fn phases_are_stable_and_spread() {
        let interval = Duration::from_secs(30);
        assert_eq!(first_delay("lon-1", "p", interval, 0), first_delay("lon-1", "p", interval, 0));
        assert_eq!(
            first_delay("lon-1", "p", interval, 0).saturating_sub(Duration::from_millis(1000)),
            first_delay("lon-1", "p", interval, 1000),
        );
        let mut buckets = [0u32; 10];
        for i in 0..1000 {
            let d = first_delay("lon-1", &format!("probe-{i}"), interval, 12_345);
            assert!(d < interval);
            buckets[(d.as_millis() * 10 / interval.as_millis()) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 50), "{buckets:?}");
    }
}
