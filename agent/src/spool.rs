//! The durable outbox. A result is written and fsynced here and given its `seq` in the
//! same step; only then does it count as produced. The shipper reads it back in order
//! and deletes only what the collector acknowledged.
//!
//! On disk, under `spool_dir`:
//!
//! ```text
//! instance                 the agent instance (SPEC §15): random hex made with the spool;
//!                          a new spool is a new instance, whose seqs start again
//! seq                      decimal; no seq below it will ever be handed out again
//! acked                    decimal; delivered through here (a hint, so a restart resends less)
//! results/<first seq>.seg  append-only segment, 20-digit zero-padded first seq in the name
//! ```
//!
//! A segment is a run of records, each framed as
//! `len: u32 LE | crc32: u32 LE | seq: u64 LE | payload (len bytes)`, where the crc
//! covers the seq bytes and the payload, and the payload is the result's wire JSON.
//! Seqs are consecutive within and across segments.
//!
//! Invariants:
//! - Every batch of records is fsynced before any of its seqs is visible to readers.
//! - `seq` is rewritten durably (write, fsync, rename, fsync dir) whenever a new segment
//!   starts, with that segment's first seq; segments are deleted only once a newer one
//!   exists, so the counter never falls behind a seq that left the disk. At open,
//!   the next seq is the largest of that file, every segment name and every record + 1.
//! - A torn or corrupt tail (bad length or crc) is cut off at open and logged; the
//!   records before it are kept, and the seqs the lost bytes could have held are
//!   skipped (a gap, never a reuse). It never stops the agent.
//! - Over `spool_max` bytes, whole oldest segments are dropped and the unacknowledged
//!   results in them counted; the collector sees the loss as a seq gap.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::{info, warn};

/// Header bytes before each payload.
const HEADER: usize = 16;
/// A payload larger than this is corruption, not a result.
const MAX_PAYLOAD: usize = 1 << 24;

/// One result as stored: its seq and its wire JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub json: Vec<u8>,
}

/// Depth figures for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Results not yet acknowledged.
    pub depth: u64,
    /// Bytes of segment files on disk.
    pub bytes: u64,
    /// Results dropped over `spool_max` since open.
    pub dropped: u64,
}

pub struct Spool {
    dir: PathBuf,
    instance: String,
    max_bytes: u64,
    segment_max: u64,
    state: Mutex<State>,
}

struct State {
    segments: VecDeque<Segment>,
    /// The active (last) segment's file, open for appending.
    active: Option<File>,
    next_seq: u64,
    /// Every seq at or below this is acknowledged (or dropped).
    acked: u64,
    dropped: u64,
    /// Where the last read stopped: (seq read through, segment first seq, byte offset).
    cursor: Option<(u64, u64, u64)>,
}

struct Segment {
    first_seq: u64,
    /// Last seq stored; `first_seq - 1` when empty.
    last_seq: u64,
    bytes: u64,
    path: PathBuf,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, recovering from whatever a crash left.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        let results = dir.join("results");
        fs::create_dir_all(&results)?;
        let instance = open_instance(&dir.join("instance"))?;
        let mut next_seq = read_seq_file(&dir.join("seq"))?;
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&results)? {
            let path = entry?.path();
            let first = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok());
            match first {
                Some(first) => names.push((first, path)),
                None if path.extension().is_some_and(|e| e == "tmp") => fs::remove_file(&path)?,
                None => warn!(path = %path.display(), "spool: ignoring a file that is not a segment"),
            }
        }
        names.sort();
        let mut segments = VecDeque::new();
        for (first_seq, path) in names {
            next_seq = next_seq.max(first_seq);
            let (records, valid_len, file_len) = scan(&path)?;
            if valid_len < file_len {
                warn!(
                    path = %path.display(),
                    offset = valid_len,
                    skipped_bytes = file_len - valid_len,
                    "spool: corrupt or torn tail cut off"
                );
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid_len)?;
                f.sync_all()?;
            }
            // Bytes past the intact records may have held results that were delivered
            // before the damage: skip every seq they could have held, so none is reused.
            let could_have_held = (file_len - valid_len).div_ceil(HEADER as u64 + 1);
            let last_intact = records.last().map_or(first_seq.saturating_sub(1), |r| r.seq);
            next_seq = next_seq.max(last_intact + 1 + could_have_held);
            let Some(last_seq) = records.last().map(|r| r.seq) else {
                fs::remove_file(&path)?;
                continue;
            };
            segments.push_back(Segment { first_seq: records[0].seq, last_seq, bytes: valid_len, path });
        }
        let next_seq = next_seq.max(1);
        let oldest_kept = segments.front().map_or(next_seq - 1, |s| s.first_seq - 1);
        let acked = read_acked_file(&dir.join("acked")).clamp(oldest_kept, next_seq - 1);
        let segment_max = (max_bytes / 16).clamp(64 << 10, 4 << 20);
        let spool = Spool {
            dir: dir.to_path_buf(),
            instance,
            max_bytes,
            segment_max,
            state: Mutex::new(State { segments, active: None, next_seq, acked, dropped: 0, cursor: None }),
        };
        {
            let mut state = spool.state.lock().expect("spool lock");
            spool.start_segment(&mut state)?;
            let depth = state.next_seq - 1 - state.acked;
            if depth > 0 {
                info!(results = depth, next_seq = state.next_seq, "spool: undelivered results found");
            }
        }
        Ok(spool)
    }

    /// Writes `payloads` (each made by `make(seq)`) durably, in order, one fsync for
    /// all; returns the seqs given. Only after this returns do the results exist.
    pub fn append<F>(&self, count: usize, mut make: F) -> io::Result<Vec<u64>>
    where
        F: FnMut(usize, u64) -> Vec<u8>,
    {
        let mut state = self.state.lock().expect("spool lock");
        let mut seqs = Vec::with_capacity(count);
        let mut buf = Vec::new();
        for i in 0..count {
            let seq = state.next_seq + i as u64;
            let json = make(i, seq);
            frame(&mut buf, seq, &json);
            seqs.push(seq);
        }
        if seqs.is_empty() {
            return Ok(seqs);
        }
        let active_bytes = state.segments.back().map_or(0, |s| s.bytes);
        if active_bytes > 0 && active_bytes + buf.len() as u64 > self.segment_max {
            state.next_seq = seqs[0];
            self.start_segment(&mut state)?;
        }
        let file = state.active.as_mut().expect("an active segment is always open");
        if let Err(e) = file.write_all(&buf).and_then(|()| file.sync_data()) {
            // Whatever reached the file is cut off at the next open; drop the handle so
            // nothing is appended after a partial write.
            state.active = None;
            let _ = self.start_segment(&mut state);
            return Err(e);
        }
        let last = *seqs.last().expect("not empty");
        let segment = state.segments.back_mut().expect("an active segment");
        segment.last_seq = last;
        segment.bytes += buf.len() as u64;
        state.next_seq = last + 1;
        self.enforce_max(&mut state)?;
        Ok(seqs)
    }

    /// Up to `max_records` records (and roughly `max_bytes`) with seq above `after` and
    /// not yet acknowledged, in order.
    pub fn read_after(&self, after: u64, max_records: usize, max_bytes: usize) -> io::Result<Vec<Record>> {
        let mut state = self.state.lock().expect("spool lock");
        let after = after.max(state.acked);
        let mut out = Vec::new();
        let mut size = 0;
        let cursor = state.cursor;
        let mut new_cursor = None;
        for segment in state.segments.iter().filter(|s| s.last_seq > after) {
            let start = match cursor {
                Some((seq, first, offset)) if seq == after && first == segment.first_seq => offset,
                _ => 0,
            };
            let mut file = File::open(&segment.path)?;
            file.seek(SeekFrom::Start(start))?;
            let mut bytes = Vec::new();
            file.take(segment.bytes - start).read_to_end(&mut bytes)?;
            let mut offset = 0;
            while let Some((record, used)) = parse(&bytes[offset..]) {
                offset += used;
                if record.seq <= after {
                    continue;
                }
                size += record.json.len();
                new_cursor = Some((record.seq, segment.first_seq, start + offset as u64));
                out.push(record);
                if out.len() >= max_records || size >= max_bytes {
                    state.cursor = new_cursor;
                    return Ok(out);
                }
            }
        }
        if new_cursor.is_some() {
            state.cursor = new_cursor;
        }
        Ok(out)
    }

    /// Everything through `seq` was acknowledged: forget it, deleting whole segments.
    pub fn ack(&self, seq: u64) -> io::Result<()> {
        let mut state = self.state.lock().expect("spool lock");
        if seq <= state.acked {
            return Ok(());
        }
        state.acked = seq;
        // Not fsynced: losing it only means the collector sees duplicates, which it
        // acknowledges and does not count twice.
        let tmp = self.dir.join("acked.tmp");
        fs::write(&tmp, format!("{seq}\n"))?;
        fs::rename(&tmp, self.dir.join("acked"))?;
        while state.segments.len() > 1 && state.segments[0].last_seq <= state.acked {
            let segment = state.segments.pop_front().expect("len > 1");
            fs::remove_file(&segment.path)?;
        }
        Ok(())
    }

    /// Highest seq acknowledged (or dropped); shipping resumes after it.
    pub fn acked(&self) -> u64 {
        self.state.lock().expect("spool lock").acked
    }

    /// The seq the next result will get.
    /// The instance id this spool's seqs belong to.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn next_seq(&self) -> u64 {
        self.state.lock().expect("spool lock").next_seq
    }

    pub fn stats(&self) -> SpoolStats {
        let state = self.state.lock().expect("spool lock");
        SpoolStats {
            depth: (state.next_seq - 1).saturating_sub(state.acked),
            bytes: state.segments.iter().map(|s| s.bytes).sum(),
            dropped: state.dropped,
        }
    }

    /// Starts a new active segment at `next_seq`, recording the counter first.
    fn start_segment(&self, state: &mut State) -> io::Result<()> {
        write_seq_file(&self.dir.join("seq"), state.next_seq)?;
        if state.segments.back().is_some_and(|s| s.last_seq < s.first_seq) {
            // The active segment is empty: reuse it rather than leave an empty file.
            let seg = state.segments.pop_back().expect("checked");
            let _ = fs::remove_file(&seg.path);
        }
        let path = self.dir.join("results").join(format!("{:020}.seg", state.next_seq));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        sync_dir(&self.dir.join("results"))?;
        state.segments.push_back(Segment {
            first_seq: state.next_seq,
            last_seq: state.next_seq - 1,
            bytes: file.metadata()?.len(),
            path,
        });
        state.active = Some(file);
        Ok(())
    }

    fn enforce_max(&self, state: &mut State) -> io::Result<()> {
        let mut total: u64 = state.segments.iter().map(|s| s.bytes).sum();
        let mut dropped = 0;
        while total > self.max_bytes && state.segments.len() > 1 {
            let segment = state.segments.pop_front().expect("len > 1");
            fs::remove_file(&segment.path)?;
            total -= segment.bytes;
            if segment.last_seq > state.acked {
                dropped += segment.last_seq - segment.first_seq.max(state.acked + 1) + 1;
                state.acked = segment.last_seq;
            }
        }
        if dropped > 0 {
            state.dropped += dropped;
            warn!(
                dropped,
                dropped_total = state.dropped,
                spool_max = self.max_bytes,
                "spool: full, oldest undelivered results dropped"
            );
        }
        Ok(())
    }
}

fn frame(buf: &mut Vec<u8>, seq: u64, json: &[u8]) {
    let seq_bytes = seq.to_le_bytes();
    let crc = crc32_update(crc32_update(!0, &seq_bytes), json) ^ !0;
    buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&seq_bytes);
    buf.extend_from_slice(json);
}

/// One record at the start of `bytes` and the bytes it takes, or `None` when what is
/// there is not a whole, intact record.
fn parse(bytes: &[u8]) -> Option<(Record, usize)> {
    if bytes.len() < HEADER {
        return None;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().ok()?);
    if len > MAX_PAYLOAD || bytes.len() < HEADER + len {
        return None;
    }
    let seq_bytes = &bytes[8..16];
    let json = &bytes[HEADER..HEADER + len];
    if crc32_update(crc32_update(!0, seq_bytes), json) ^ !0 != crc {
        return None;
    }
    let seq = u64::from_le_bytes(seq_bytes.try_into().ok()?);
    Some((Record { seq, json: json.to_vec() }, HEADER + len))
}

/// The intact records of a segment, the length they cover and the file's length.
fn scan(path: &Path) -> io::Result<(Vec<Record>, u64, u64)> {
    let bytes = fs::read(path)?;
    let mut records: Vec<Record> = Vec::new();
    let mut offset = 0;
    while let Some((record, used)) = parse(&bytes[offset..]) {
        // Seqs only grow; a record that goes back is corruption too.
        if records.last().is_some_and(|r| r.seq >= record.seq) {
            break;
        }
        records.push(record);
        offset += used;
    }
    Ok((records, offset as u64, bytes.len() as u64))
}

fn read_acked_file(path: &Path) -> u64 {
    fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

fn read_seq_file(path: &Path) -> io::Result<u64> {
    match fs::read_to_string(path) {
        Ok(text) => match text.trim().parse() {
            Ok(n) => Ok(n),
            Err(_) => {
                warn!(path = %path.display(), "spool: seq file unreadable; continuing from the segments");
                Ok(1)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(1),
        Err(e) => Err(e),
    }
}

/// The spool's instance id, made (16 random bytes as hex, written durably) when the
/// spool has none: a fresh spool, a deleted one, or one from a version before instances.
fn open_instance(path: &Path) -> io::Result<String> {
    match fs::read_to_string(path) {
        Ok(text) if probity_config::wire::check_instance(text.trim()).is_ok() => return Ok(text.trim().to_string()),
        Ok(_) => warn!(path = %path.display(), "spool: instance file unreadable; starting a new instance"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no random bytes from the OS: {e}")))?;
    let instance: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_durably(path, format!("{instance}\n").as_bytes())?;
    info!(instance, "spool: new agent instance (the collector counts it as an agent reset)");
    Ok(instance)
}

fn write_seq_file(path: &Path, next: u64) -> io::Result<()> {
    write_durably(path, format!("{next}\n").as_bytes())
}

/// Writes a whole file so that a crash leaves either the old content or the new.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// CRC-32 (IEEE), the zlib one; start with `!0` and finish with `^ !0`.
fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(spool: &Spool, n: usize) -> Vec<u64> {
        spool.append(n, |i, seq| format!("{{\"seq\":{seq},\"i\":{i}}}").into_bytes()).unwrap()
    }

    #[test]
    fn crc32_matches_the_zlib_check_value() {
        assert_eq!(crc32_update(!0, b"123456789") ^ !0, 0xCBF4_3926);
    }

    #[test]
    fn seqs_continue_across_reopen_and_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(put(&spool, 3), [1, 2, 3]);
        spool.ack(3).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(put(&spool, 2), [4, 5]);
        assert_eq!(spool.read_after(0, 100, 1 << 20).unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(spool.stats().depth, 2);
    }

    #[test]
    fn the_instance_is_kept_across_reopen_and_a_new_spool_is_a_new_instance() {
        let dir = tempfile::tempdir().unwrap();
        let first = Spool::open(dir.path(), 1 << 30).unwrap().instance().to_string();
        assert_eq!(first.len(), 32);
        probity_config::wire::check_instance(&first).unwrap();
        assert_eq!(Spool::open(dir.path(), 1 << 30).unwrap().instance(), first);
        fs::remove_dir_all(dir.path()).unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_ne!(spool.instance(), first, "a deleted spool comes back as a new instance");
        assert_eq!(put(&spool, 1), [1], "whose seqs start again");
    }

    #[test]
    fn seq_survives_every_segment_being_acknowledged_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for _ in 0..200 {
            put(&spool, 50);
        }
        spool.ack(spool.next_seq() - 1).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.next_seq(), 10_001);
        assert!(spool.read_after(0, 10, 1 << 20).unwrap().is_empty());
    }

    #[test]
    fn reads_resume_where_they_stopped_and_span_segments() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for _ in 0..100 {
            put(&spool, 100);
        }
        let mut after = 0;
        let mut seen = 0;
        loop {
            let batch = spool.read_after(after, 777, 1 << 20).unwrap();
            if batch.is_empty() {
                break;
            }
            for r in &batch {
                assert_eq!(r.seq, after + 1);
                after = r.seq;
                seen += 1;
            }
        }
        assert_eq!(seen, 10_000);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_the_spool_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        put(&spool, 5);
        drop(spool);
        let seg = dir.path().join("results").join(format!("{:020}.seg", 1));
        let mut bytes = fs::read(&seg).unwrap();
        let whole = bytes.len();
        // A torn write: half a record's header and payload.
        let mut extra = Vec::new();
        frame(&mut extra, 6, b"{\"seq\":6}");
        bytes.extend_from_slice(&extra[..extra.len() - 3]);
        fs::write(&seg, &bytes).unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(fs::metadata(&seg).unwrap().len() as usize, whole);
        let next = put(&spool, 1)[0];
        assert!(next > 6, "{next}");
        let seqs: Vec<u64> = spool.read_after(0, 100, 1 << 20).unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, next]);
    }

    #[test]
    fn a_flipped_byte_ends_the_segment_without_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        put(&spool, 4);
        drop(spool);
        let seg = dir.path().join("results").join(format!("{:020}.seg", 1));
        let mut bytes = fs::read(&seg).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let seqs: Vec<u64> = spool.read_after(0, 100, 1 << 20).unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        // Seq 4 may have been delivered before the damage: it is never given again.
        assert!(put(&spool, 1)[0] > 4);
    }

    #[test]
    fn over_spool_max_the_oldest_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let payload = vec![b'x'; 1000];
        for _ in 0..300 {
            spool.append(10, |_, _| payload.clone()).unwrap();
        }
        let stats = spool.stats();
        assert!(stats.bytes <= 1 << 20, "{stats:?}");
        assert!(stats.dropped > 0);
        assert_eq!(stats.dropped + stats.depth, 3000);
        let first = spool.read_after(0, 1, 1 << 20).unwrap()[0].seq;
        assert_eq!(first, stats.dropped + 1);
    }
}
