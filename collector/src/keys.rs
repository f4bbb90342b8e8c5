//! Every sled key and value encoding in one place, each with a round-trip test, so the
//! on-disk layout (ARCHITECTURE.md, "collector storage layout") is read and written by
//! exactly one piece of code. Keys are big-endian so that byte order is time order. Every
//! value below is stored with a checksum after it (`sealed`, schema 3 on).

use probity_config::wire::ErrorKind;

/// Numeric handle of an interned probe or agent id (see the `names` tree).
pub type Num = u32;

/// 3: every record ends with its checksum (`sealed`); 2 had none, and kept the version
/// as a plain `u32`; 1 kept minute histograms one key per minute (`hist_min`). Older
/// schemas are migrated on open (`store/schema.rs`).
pub const SCHEMA_VERSION: u32 = 3;
pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
/// `meta` key present while a collector has the database open: found at open, the last
/// run did not close it, and the hours still pending are derived again from raw.
pub const OPEN_KEY: &[u8] = b"open";

/// Milliseconds in a minute, an hour, a day: the histogram levels.
pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Signed instants sort correctly as unsigned big-endian once the sign bit is flipped.
fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from(b: &[u8]) -> i64 {
    (u64::from_be_bytes(b.try_into().expect("8 bytes")) ^ (1 << 63)) as i64
}

fn num_from(b: &[u8]) -> Num {
    u32::from_be_bytes(b.try_into().expect("4 bytes"))
}

/// `(probe, agent)` prefix shared by `raw`, `runs`, `hist_*` and `last` keys.
pub fn pair_prefix(probe: Num, agent: Num) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&probe.to_be_bytes());
    k[4..].copy_from_slice(&agent.to_be_bytes());
    k
}

pub fn probe_prefix(probe: Num) -> [u8; 4] {
    probe.to_be_bytes()
}

pub fn decode_pair(k: &[u8]) -> (Num, Num) {
    (num_from(&k[..4]), num_from(&k[4..8]))
}

/// `raw` key of a block: probe, agent, first at (ms), first seq: 24 bytes; ordered by
/// (probe, agent, time, seq). A block holds one batch's results of one (probe, agent)
/// within one UTC hour, so a scan from `from` starts at the hour of `from`.
pub fn raw_key(probe: Num, agent: Num, at: i64, seq: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&pair_prefix(probe, agent));
    k[8..16].copy_from_slice(&time_bytes(at));
    k[16..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// (probe, agent, at, seq) of a `raw` key.
pub fn decode_raw_key(k: &[u8]) -> (Num, Num, i64, u64) {
    let (p, a) = decode_pair(k);
    (p, a, time_from(&k[8..16]), u64::from_be_bytes(k[16..24].try_into().expect("8 bytes")))
}

/// A key of the (probe, agent, instant) shape used by `runs`, `hist_minutes`, `hist_hour`,
/// `hist_day` and (after a one-byte level tag) `rollup_pending`.
pub fn pair_time_key(probe: Num, agent: Num, t: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&pair_prefix(probe, agent));
    k[8..].copy_from_slice(&time_bytes(t));
    k
}

pub fn decode_pair_time_key(k: &[u8]) -> (Num, Num, i64) {
    let (p, a) = decode_pair(k);
    (p, a, time_from(&k[8..16]))
}

/// Rollup level tags in `rollup_pending`.
pub const LEVEL_HOUR: u8 = b'h';
pub const LEVEL_DAY: u8 = b'd';

pub fn pending_key(level: u8, probe: Num, agent: Num, t: i64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = level;
    k[1..].copy_from_slice(&pair_time_key(probe, agent, t));
    k
}

pub fn decode_pending_key(k: &[u8]) -> (u8, Num, Num, i64) {
    let (p, a, t) = decode_pair_time_key(&k[1..]);
    (k[0], p, a, t)
}

/// `names` tree: `p<id>`/`a<id>`/`i<instance name>` → number, and `#p<num>`/`#a<num>`/
/// `#i<num>` → id.
pub const KIND_PROBE: u8 = b'p';
pub const KIND_AGENT: u8 = b'a';
pub const KIND_INSTANCE: u8 = b'i';

/// The instance number of an agent's requests without `instance` (agents that predate
/// instances): never interned, so no named instance can take it.
pub const LEGACY_INSTANCE: Num = 0;

/// The interned name of an agent instance: instance ids are per agent, so the agent's
/// number comes first (`12:9f2c…`).
pub fn instance_name(agent: Num, instance: &str) -> String {
    format!("{agent}:{instance}")
}

/// The instance id inside an interned instance name.
pub fn instance_from_name(name: &str) -> Option<&str> {
    name.split_once(':').map(|(_, instance)| instance)
}

/// `agents` key of an agent instance's seq state: the agent's number alone for the legacy
/// instance (schema 2's key, so old stores need no migration), agent and instance
/// numbers otherwise.
pub fn seq_key(agent: Num, instance: Num) -> Vec<u8> {
    let mut k = agent.to_be_bytes().to_vec();
    if instance != LEGACY_INSTANCE {
        k.extend_from_slice(&instance.to_be_bytes());
    }
    k
}

/// `meta` key of the results recorded as lost for an agent instance (`--accept-loss`:
/// acknowledged, then lost with the database), a `u64`.
pub fn loss_key(agent: Num, instance: Num) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(b"loss");
    k[4..8].copy_from_slice(&agent.to_be_bytes());
    k[8..].copy_from_slice(&instance.to_be_bytes());
    k
}

pub fn decode_seq_key(k: &[u8]) -> Option<(Num, Num)> {
    match k.len() {
        4 => Some((num_from(k), LEGACY_INSTANCE)),
        8 => Some((num_from(&k[..4]), num_from(&k[4..]))),
        _ => None,
    }
}

pub fn name_key(kind: u8, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(kind);
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn num_key(kind: u8, num: Num) -> [u8; 6] {
    let mut k = [0u8; 6];
    k[0] = b'#';
    k[1] = kind;
    k[2..].copy_from_slice(&num.to_be_bytes());
    k
}

pub fn encode_num(n: Num) -> [u8; 4] {
    n.to_be_bytes()
}

pub fn decode_num(v: &[u8]) -> Num {
    num_from(v)
}

/// `meta` key holding the interval (ms) a probe's runs were computed with.
pub fn interval_key(probe: Num) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(b"interval");
    k[8..].copy_from_slice(&probe.to_be_bytes());
    k
}

pub fn encode_u64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

pub fn decode_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

/// Outcome byte: 0 up, 1 + index in `ErrorKind::ALL` down.
pub fn outcome_byte(down: Option<ErrorKind>) -> u8 {
    match down {
        None => 0,
        Some(k) => 1 + ErrorKind::ALL.iter().position(|x| *x == k).expect("closed enum") as u8,
    }
}

pub fn outcome_from(b: u8) -> Option<Option<ErrorKind>> {
    match b {
        0 => Some(None),
        n => ErrorKind::ALL.get(n as usize - 1).map(|k| Some(*k)),
    }
}

/// What a raw result keeps: what reports and evidence read (`results.csv`:
/// at, agent, probe, ok, duration_us, error_kind, status). The error message and the
/// phase timings are not stored: they are diagnostics, not evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawValue {
    pub down: Option<ErrorKind>,
    pub duration_us: u64,
    pub status: Option<u16>,
}

/// `raw` value: outcome byte (bit 7 set when a status follows), varint duration, status.
pub fn encode_raw_value(v: &RawValue, out: &mut Vec<u8>) {
    let flag = if v.status.is_some() { 0x80 } else { 0 };
    out.push(outcome_byte(v.down) | flag);
    put_varint(out, v.duration_us);
    if let Some(s) = v.status {
        out.extend_from_slice(&s.to_be_bytes());
    }
}

pub fn decode_raw_value(b: &[u8]) -> Option<RawValue> {
    let (&first, rest) = b.split_first()?;
    let down = outcome_from(first & 0x7f)?;
    let (duration_us, n) = get_varint(rest)?;
    let status = if first & 0x80 != 0 { Some(u16::from_be_bytes(rest.get(n..n + 2)?.try_into().ok()?)) } else { None };
    Some(RawValue { down, duration_us, status })
}

/// One result inside a raw block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    pub at: i64,
    pub seq: u64,
    pub value: RawValue,
}

/// How many results a `raw` block holds, read from its first bytes.
pub fn block_len(b: &[u8]) -> Option<u64> {
    get_varint(b).map(|(n, _)| n)
}

/// `raw` block value: count, then per result (sorted by at, seq) the zigzag deltas of `at`
/// and `seq` from the previous one (the first from the key), then its `RawValue`.
pub fn encode_block(entries: &[BlockEntry], out: &mut Vec<u8>) {
    put_varint(out, entries.len() as u64);
    let (mut at, mut seq) = entries.first().map_or((0, 0), |e| (e.at, e.seq));
    for e in entries {
        put_varint(out, zigzag(e.at.wrapping_sub(at)));
        put_varint(out, zigzag(e.seq.wrapping_sub(seq) as i64));
        encode_raw_value(&e.value, out);
        (at, seq) = (e.at, e.seq);
    }
}

/// Decodes a block whose key holds `first_at`/`first_seq`, appending to `out`.
pub fn decode_block(first_at: i64, first_seq: u64, b: &[u8], out: &mut Vec<BlockEntry>) -> Option<()> {
    let (count, mut pos) = get_varint(b)?;
    let (mut at, mut seq) = (first_at, first_seq);
    for _ in 0..count {
        let (d_at, n) = get_varint(&b[pos..])?;
        pos += n;
        let (d_seq, n) = get_varint(&b[pos..])?;
        pos += n;
        at = at.wrapping_add(unzigzag(d_at));
        seq = seq.wrapping_add(unzigzag(d_seq) as u64);
        let rest = b.get(pos..)?;
        let value = decode_raw_value(rest)?;
        pos += raw_value_len(rest)?;
        out.push(BlockEntry { at, seq, value });
    }
    Some(())
}

fn raw_value_len(b: &[u8]) -> Option<usize> {
    let (&first, rest) = b.split_first()?;
    let (_, n) = get_varint(rest)?;
    Some(1 + n + if first & 0x80 != 0 { 2 } else { 0 })
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// `journal` key of one acknowledged batch of an agent not yet merged into `raw` blocks:
/// the agent, then the batch's generation (sled's `generate_id`, increasing), 12 bytes.
pub fn journal_key(agent: Num, generation: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&agent.to_be_bytes());
    k[4..].copy_from_slice(&generation.to_be_bytes());
    k
}

pub fn decode_journal_key(k: &[u8]) -> Option<(Num, u64)> {
    let k: &[u8; 12] = k.try_into().ok()?;
    Some((num_from(&k[..4]), u64::from_be_bytes(k[4..].try_into().ok()?)))
}

/// `journal` value: count, then per result (in the batch's order) the varint probe number,
/// the zigzag deltas of `at` and `seq` from the previous result (the first from 0), and
/// its `RawValue`: about as small as a block, written once and removed once merged.
pub fn encode_journal(entries: &[(Num, BlockEntry)], out: &mut Vec<u8>) {
    put_varint(out, entries.len() as u64);
    let (mut at, mut seq) = (0i64, 0u64);
    for (p, e) in entries {
        put_varint(out, u64::from(*p));
        put_varint(out, zigzag(e.at.wrapping_sub(at)));
        put_varint(out, zigzag(e.seq.wrapping_sub(seq) as i64));
        encode_raw_value(&e.value, out);
        (at, seq) = (e.at, e.seq);
    }
}

pub fn decode_journal(b: &[u8]) -> Option<Vec<(Num, BlockEntry)>> {
    let (count, mut pos) = get_varint(b)?;
    let mut out = Vec::with_capacity(count.min(1 << 16) as usize);
    let (mut at, mut seq) = (0i64, 0u64);
    for _ in 0..count {
        let mut next = || {
            let (v, n) = get_varint(b.get(pos..)?)?;
            pos += n;
            Some(v)
        };
        let p = Num::try_from(next()?).ok()?;
        at = at.wrapping_add(unzigzag(next()?));
        seq = seq.wrapping_add(unzigzag(next()?) as u64);
        let rest = b.get(pos..)?;
        let value = decode_raw_value(rest)?;
        pos += raw_value_len(rest)?;
        out.push((p, BlockEntry { at, seq, value }));
    }
    (pos == b.len()).then_some(out)
}

/// One stored view run of the `runs` tree; the key holds `start`.
pub fn encode_run_value(end: i64, down: Option<ErrorKind>) -> [u8; 9] {
    let mut v = [0u8; 9];
    v[..8].copy_from_slice(&time_bytes(end));
    v[8] = outcome_byte(down);
    v
}

pub fn decode_run_value(b: &[u8]) -> Option<(i64, Option<ErrorKind>)> {
    if b.len() != 9 {
        return None;
    }
    Some((time_from(&b[..8]), outcome_from(b[8])?))
}

/// The latest result of a (probe, agent): the `last` tree's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastResult {
    pub at: i64,
    pub seq: u64,
    pub value: RawValue,
}

pub fn encode_last(l: &LastResult) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&time_bytes(l.at));
    out.extend_from_slice(&l.seq.to_be_bytes());
    encode_raw_value(&l.value, &mut out);
    out
}

pub fn decode_last(b: &[u8]) -> Option<LastResult> {
    if b.len() < 17 {
        return None;
    }
    Some(LastResult {
        at: time_from(&b[..8]),
        seq: u64::from_be_bytes(b[8..16].try_into().ok()?),
        value: decode_raw_value(&b[16..])?,
    })
}

/// Histogram values (`hist_hour`, `hist_day`; schema 1's `hist_min`): varint count of every result
/// in the bucket (ok or not), then the successful results' durations as an HDR histogram
/// (µs, 3 significant digits) serialised V2+deflate; empty when none succeeded.
pub fn encode_hist_value(total: u64, hist: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + hist.len());
    put_varint(&mut out, total);
    out.extend_from_slice(hist);
    out
}

pub fn decode_hist_value(b: &[u8]) -> Option<(u64, &[u8])> {
    let (total, n) = get_varint(b)?;
    Some((total, &b[n..]))
}

/// One minute of an hour's `hist_minutes` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinuteHist {
    /// Minute of the hour, 0..=59.
    pub minute: u8,
    /// Every result received in the minute, ok or not.
    pub total: u64,
    /// The successful results' durations as an HDR histogram (µs, 3 significant digits)
    /// in any hdrhistogram serialisation (V2, or V2+deflate as schema 1 stored it); empty
    /// when none succeeded.
    pub hist: Vec<u8>,
}

const MINUTES_FORMAT: u8 = 1;

/// An hour's minute histograms (`hist_minutes` value, key (probe, agent, hour)): a format
/// byte (1), then one zlib stream of, per minute present in ascending order, the minute
/// of the hour (one byte), varint results, varint histogram length and the histogram.
/// Sixty small histograms share one deflate window, so their identical V2 headers cost
/// almost nothing, and an hour is one sled key instead of sixty.
pub fn encode_minutes(minutes: &[MinuteHist], out: &mut Vec<u8>) {
    thread_local! {
        static PLAIN_AND_DEFLATE: std::cell::RefCell<(Vec<u8>, flate2::Compress)> =
            std::cell::RefCell::new((Vec::new(), flate2::Compress::new(flate2::Compression::fast(), true)));
    }
    PLAIN_AND_DEFLATE.with(|cell| {
        let (plain, deflate) = &mut *cell.borrow_mut();
        plain.clear();
        for m in minutes {
            plain.push(m.minute);
            put_varint(plain, m.total);
            put_varint(plain, m.hist.len() as u64);
            plain.extend_from_slice(&m.hist);
        }
        out.push(MINUTES_FORMAT);
        deflate.reset();
        loop {
            out.reserve(plain.len() / 2 + 64);
            let consumed = deflate.total_in() as usize;
            let status = deflate
                .compress_vec(&plain[consumed..], out, flate2::FlushCompress::Finish)
                .expect("deflating into a growing Vec cannot fail");
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
    });
}

/// The minutes of an hour's `hist_minutes` value; `None` when it is not one.
pub fn decode_minutes(b: &[u8]) -> Option<Vec<MinuteHist>> {
    let (&format, stream) = b.split_first()?;
    if format != MINUTES_FORMAT {
        return None;
    }
    let mut plain = Vec::with_capacity(stream.len() * 4);
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(stream), &mut plain).ok()?;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < plain.len() {
        let minute = plain[pos];
        pos += 1;
        let (total, n) = get_varint(&plain[pos..])?;
        pos += n;
        let (len, n) = get_varint(&plain[pos..])?;
        pos += n;
        let end = pos.checked_add(usize::try_from(len).ok()?)?;
        let hist = plain.get(pos..end)?.to_vec();
        pos = end;
        if minute >= 60 || out.last().is_some_and(|m: &MinuteHist| m.minute >= minute) {
            return None;
        }
        out.push(MinuteHist { minute, total, hist });
    }
    Some(out)
}

/// The seqs an agent has been answered for, as sorted disjoint inclusive ranges
/// (`agents` tree value): count, then per range the delta from the previous range's end
/// and the length, all varints.
pub fn encode_seq_ranges(ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + ranges.len() * 4);
    put_varint(&mut out, ranges.len() as u64);
    let mut prev = 0u64;
    for &(lo, hi) in ranges {
        put_varint(&mut out, lo - prev);
        put_varint(&mut out, hi - lo);
        prev = hi;
    }
    out
}

pub fn decode_seq_ranges(b: &[u8]) -> Option<Vec<(u64, u64)>> {
    let (count, mut pos) = get_varint(b)?;
    let mut ranges = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut prev = 0u64;
    for _ in 0..count {
        let (delta, n) = get_varint(&b[pos..])?;
        pos += n;
        let (len, n) = get_varint(&b[pos..])?;
        pos += n;
        let lo = prev.checked_add(delta)?;
        let hi = lo.checked_add(len)?;
        ranges.push((lo, hi));
        prev = hi;
    }
    Some(ranges)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// History records (`catalogue_versions`, `revisions`): what the collector told a reader,
/// stored once and never rewritten. A record is a format byte, the sha256 of the payload,
/// then the payload (canonical JSON), so a damaged record is refused, not misread.
pub const RECORD_FORMAT: u8 = 1;

pub fn encode_record(payload: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut out = Vec::with_capacity(33 + payload.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&sha2::Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

/// The payload of a record whose checksum holds.
pub fn decode_record(b: &[u8]) -> Option<&[u8]> {
    use sha2::Digest;
    let (&format, rest) = b.split_first()?;
    let (sum, payload) = rest.split_at_checked(32)?;
    (format == RECORD_FORMAT && sha2::Sha256::digest(payload).as_slice() == sum).then_some(payload)
}

/// `catalogue_versions` key: the version number, big-endian (1, 2, …).
pub fn catalogue_version_key(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}

pub fn decode_catalogue_version_key(k: &[u8]) -> Option<u32> {
    k.try_into().ok().map(u32::from_be_bytes)
}

/// `maintenance` keys of one window: its id, then 0 (ids never hold a 0 byte).
pub fn maintenance_prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 5);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

/// `maintenance` key of one change of a window: id, 0, change number big-endian (1 is the
/// declaration), so a window's changes are adjacent and in order.
pub fn maintenance_change_key(id: &str, change: u32) -> Vec<u8> {
    let mut k = maintenance_prefix(id);
    k.extend_from_slice(&change.to_be_bytes());
    k
}

pub fn decode_maintenance_change_key(k: &[u8]) -> Option<(String, u32)> {
    let (head, number) = k.split_at_checked(k.len().checked_sub(4)?)?;
    let id = head.strip_suffix(&[0])?;
    let id = std::str::from_utf8(id).ok().filter(|id| !id.is_empty() && !id.contains('\0'))?;
    Some((id.to_string(), u32::from_be_bytes(number.try_into().ok()?)))
}

/// `revisions` keys of one agreement period: agreement id, 0, period label, 0 (ids and
/// labels never hold a 0 byte), then the revision number big-endian.
pub fn revision_prefix(agreement: &str, label: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(agreement.len() + label.len() + 6);
    k.extend_from_slice(agreement.as_bytes());
    k.push(0);
    k.extend_from_slice(label.as_bytes());
    k.push(0);
    k
}

pub fn revision_key(agreement: &str, label: &str, number: u32) -> Vec<u8> {
    let mut k = revision_prefix(agreement, label);
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// The agreement id and period label of a `revisions` prefix (the `restatements` key).
pub fn decode_revision_prefix(k: &[u8]) -> Option<(String, String)> {
    let body = k.strip_suffix(&[0])?;
    let zero = body.iter().position(|&b| b == 0)?;
    let agreement = std::str::from_utf8(&body[..zero]).ok()?;
    let label = std::str::from_utf8(&body[zero + 1..]).ok()?;
    Some((agreement.to_string(), label.to_string()))
}

/// The revision number at the end of a `revisions` key.
pub fn decode_revision_number(k: &[u8]) -> Option<u32> {
    k.get(k.len().checked_sub(4)?..)?.try_into().ok().map(u32::from_be_bytes)
}

/// Bytes of the checksum that ends every stored value (schema 3 on).
pub const CHECKSUM_LEN: usize = 4;

/// CRC-32 (IEEE, `crc32fast`) of a record's key and value, little-endian: covering the key
/// too means a damaged key is caught as well as a damaged value.
fn checksum(key: &[u8], value: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = crc32fast::Hasher::new();
    h.update(key);
    h.update(value);
    h.finalize().to_le_bytes()
}

/// What sled stores for `value` under `key`: the value, then its checksum. Every tree's
/// records are sealed (`store/tree.rs` does it on every write and checks it on every
/// read), so each encoding below is the part before the checksum.
pub fn sealed(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + CHECKSUM_LEN);
    out.extend_from_slice(value);
    out.extend_from_slice(&checksum(key, value));
    out
}

/// The value of a sealed record whose checksum holds; `None` when it does not.
pub fn unseal<'v>(key: &[u8], stored: &'v [u8]) -> Option<&'v [u8]> {
    let (value, sum) = stored.split_at_checked(stored.len().checked_sub(CHECKSUM_LEN)?)?;
    (checksum(key, value) == sum).then_some(value)
}

/// Says which record a key of `tree` is (probe, agent, hour, …) for an error or a
/// `db check` line; `name` turns an interned number into its id where it can.
pub fn describe_record(tree: &str, key: &[u8], name: &dyn Fn(u8, Num) -> Option<String>) -> String {
    let id = |kind: u8, n: Num| match name(kind, n) {
        Some(id) => format!("{id} (#{n})"),
        None => format!("#{n}"),
    };
    let at = probity_config::time::rfc3339;
    let pair = |k: &[u8]| {
        let (p, a) = decode_pair(k);
        format!("probe {}, agent {}", id(KIND_PROBE, p), id(KIND_AGENT, a))
    };
    let instance = |a: Num, i: Num| match i {
        LEGACY_INSTANCE => format!("agent {}, legacy instance", id(KIND_AGENT, a)),
        i => format!(
            "agent {}, instance {}",
            id(KIND_AGENT, a),
            name(KIND_INSTANCE, i).as_deref().and_then(instance_from_name).map_or(format!("#{i}"), str::to_string)
        ),
    };
    match (tree, key.len()) {
        ("raw", 24) => {
            let (_, _, first, seq) = decode_raw_key(key);
            let hour = first.saturating_sub(first.rem_euclid(HOUR_MS));
            format!("{}, hour {}, block from {} seq {seq}", pair(key), at(hour), at(first))
        }
        ("runs", 16) => format!("{}, run from {}", pair(key), at(decode_pair_time_key(key).2)),
        ("hist_minutes" | "hist_hour", 16) => format!("{}, hour {}", pair(key), at(decode_pair_time_key(key).2)),
        ("hist_day", 16) => format!("{}, day {}", pair(key), at(decode_pair_time_key(key).2)),
        ("last", 8) => pair(key),
        ("journal", 12) => {
            let (a, generation) = decode_journal_key(key).expect("12 bytes");
            format!("agent {}, batch {generation}", id(KIND_AGENT, a))
        }
        ("agents", 4 | 8) => {
            let (a, i) = decode_seq_key(key).expect("4 or 8 bytes");
            instance(a, i)
        }
        ("rollup_pending", 17) => {
            let (level, _, _, t) = decode_pending_key(key);
            let what = if level == LEVEL_DAY { "day" } else { "hour" };
            format!("{}, {what} {} pending", pair(&key[1..]), at(t))
        }
        ("names", 6) if key[0] == b'#' => format!("the id of {} number {}", kind_name(key[1]), num_from(&key[2..])),
        ("names", n) if n > 1 => {
            format!("the number of {} {:?}", kind_name(key[0]), String::from_utf8_lossy(&key[1..]))
        }
        ("meta", 12) if key.starts_with(b"interval") => {
            format!("interval of probe {}", id(KIND_PROBE, num_from(&key[8..])))
        }
        ("meta", 12) if key.starts_with(b"loss") => {
            format!("lost results of {}", instance(num_from(&key[4..8]), num_from(&key[8..])))
        }
        ("catalogue_versions", 4) => format!("catalogue version {}", num_from(key)),
        ("revisions", _) => {
            let mut parts = key.splitn(3, |&b| b == 0);
            let (agreement, label) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            let number = decode_revision_number(key).unwrap_or_default();
            format!(
                "agreement {}, period {}, revision {number}",
                String::from_utf8_lossy(agreement),
                String::from_utf8_lossy(label)
            )
        }
        ("maintenance", _) => match decode_maintenance_change_key(key) {
            Some((id, change)) => format!("maintenance window {id}, change {change}"),
            None => format!("key 0x{}", hex::encode(key)),
        },
        _ if !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic()) => {
            format!("key {:?}", String::from_utf8_lossy(key))
        }
        _ => format!("key 0x{}", hex::encode(key)),
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_PROBE => "probe",
        KIND_AGENT => "agent",
        KIND_INSTANCE => "instance",
        _ => "unknown kind",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys_round_trip_and_sort_by_probe_agent_time_seq() {
        let cases = [
            (1, 2, -5_000i64, 9u64),
            (1, 2, 0, 1),
            (1, 2, 1_763_812_800_123, 7),
            (1, 3, i64::MIN, 0),
            (2, 0, i64::MAX, u64::MAX),
        ];
        let keys: Vec<[u8; 24]> = cases.iter().map(|&(p, a, t, s)| raw_key(p, a, t, s)).collect();
        for (k, c) in keys.iter().zip(cases) {
            assert_eq!(decode_raw_key(k), c);
        }
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "byte order is (probe, agent, at, seq) order");
    }

    #[test]
    fn pair_time_and_pending_keys_round_trip() {
        for t in [i64::MIN, -1, 0, 1, 1_763_812_800_000, i64::MAX] {
            assert_eq!(decode_pair_time_key(&pair_time_key(7, 9, t)), (7, 9, t));
            assert_eq!(decode_pending_key(&pending_key(LEVEL_DAY, 7, 9, t)), (LEVEL_DAY, 7, 9, t));
        }
        assert!(pair_time_key(1, 1, -1) < pair_time_key(1, 1, 0));
    }

    #[test]
    fn raw_values_round_trip() {
        for v in [
            RawValue { down: None, duration_us: 0, status: None },
            RawValue { down: None, duration_us: 48_210, status: Some(200) },
            RawValue { down: Some(ErrorKind::Timeout), duration_us: 5_000_000, status: None },
            RawValue { down: Some(ErrorKind::Internal), duration_us: u64::MAX, status: Some(u16::MAX) },
        ] {
            let mut b = Vec::new();
            encode_raw_value(&v, &mut b);
            assert_eq!(decode_raw_value(&b), Some(v));
        }
        let mut b = Vec::new();
        encode_raw_value(&RawValue { down: None, duration_us: 100, status: Some(200) }, &mut b);
        assert_eq!(b.len(), 4, "a typical result's value is four bytes");
    }

    #[test]
    fn an_hours_minutes_round_trip_and_damage_is_refused() {
        let minutes = vec![
            MinuteHist { minute: 0, total: 6, hist: vec![0x1c, 0x84, 0x93, 0x03, 1, 2, 3] },
            MinuteHist { minute: 1, total: 1, hist: vec![] },
            MinuteHist { minute: 59, total: 300, hist: (0..=255).collect() },
        ];
        let mut out = Vec::new();
        encode_minutes(&minutes, &mut out);
        assert_eq!(decode_minutes(&out), Some(minutes.clone()));
        let mut empty = Vec::new();
        encode_minutes(&[], &mut empty);
        assert_eq!(decode_minutes(&empty), Some(vec![]));
        // Another format, a truncated stream, minutes out of order: not an hour's minutes.
        assert_eq!(decode_minutes(&[2, 0, 0]), None);
        assert_eq!(decode_minutes(&out[..out.len() - 3]), None);
        let mut swapped = minutes;
        swapped.swap(0, 2);
        let mut bad = Vec::new();
        encode_minutes(&swapped, &mut bad);
        assert_eq!(decode_minutes(&bad), None);
    }

    #[test]
    fn raw_blocks_round_trip() {
        let entries = vec![
            BlockEntry {
                at: 1_763_812_800_000,
                seq: 10,
                value: RawValue { down: None, duration_us: 48_210, status: Some(200) },
            },
            BlockEntry {
                at: 1_763_812_800_000,
                seq: 12,
                value: RawValue { down: Some(ErrorKind::Tls), duration_us: 0, status: None },
            },
            BlockEntry {
                at: 1_763_812_810_000,
                seq: 11,
                value: RawValue { down: None, duration_us: u64::MAX, status: None },
            },
            BlockEntry {
                at: 1_763_812_899_999,
                seq: 9,
                value: RawValue { down: Some(ErrorKind::Internal), duration_us: 7, status: Some(0) },
            },
        ];
        let mut b = Vec::new();
        encode_block(&entries, &mut b);
        let mut out = Vec::new();
        decode_block(entries[0].at, entries[0].seq, &b, &mut out).unwrap();
        assert_eq!(out, entries);
        assert_eq!(decode_block(0, 0, &b[..b.len() - 1], &mut Vec::new()), None);
        for v in [0i64, 1, -1, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn journal_entries_round_trip() {
        let entries = vec![
            (
                3,
                BlockEntry {
                    at: 1_763_812_800_000,
                    seq: 10,
                    value: RawValue { down: None, duration_us: 48_210, status: Some(200) },
                },
            ),
            (
                1,
                BlockEntry {
                    at: 1_763_812_799_000,
                    seq: 11,
                    value: RawValue { down: Some(ErrorKind::Tls), duration_us: 0, status: None },
                },
            ),
            (
                70_000,
                BlockEntry { at: -5, seq: 9, value: RawValue { down: None, duration_us: u64::MAX, status: None } },
            ),
        ];
        let mut b = Vec::new();
        encode_journal(&entries, &mut b);
        assert_eq!(decode_journal(&b), Some(entries));
        assert_eq!(decode_journal(&b[..b.len() - 1]), None);
        assert_eq!(decode_journal_key(&journal_key(7, 1 << 40)), Some((7, 1 << 40)));
        assert!(journal_key(7, 2) < journal_key(7, 10) && journal_key(7, u64::MAX) < journal_key(8, 0));
    }

    #[test]
    fn outcomes_round_trip_for_every_error_kind() {
        assert_eq!(outcome_from(outcome_byte(None)), Some(None));
        for k in ErrorKind::ALL {
            assert_eq!(outcome_from(outcome_byte(Some(k))), Some(Some(k)));
            assert_eq!(decode_run_value(&encode_run_value(-3, Some(k))), Some((-3, Some(k))));
        }
        assert_eq!(outcome_from(42), None);
    }

    #[test]
    fn last_results_round_trip() {
        let l = LastResult {
            at: 1_763_812_800_123,
            seq: 42,
            value: RawValue { down: Some(ErrorKind::Dns), duration_us: 9, status: None },
        };
        assert_eq!(decode_last(&encode_last(&l)), Some(l));
    }

    #[test]
    fn seq_keys_and_instance_names_round_trip() {
        assert_eq!(decode_seq_key(&seq_key(7, LEGACY_INSTANCE)), Some((7, LEGACY_INSTANCE)));
        assert_eq!(seq_key(7, LEGACY_INSTANCE), encode_num(7), "the legacy key is schema 2's");
        assert_eq!(decode_seq_key(&seq_key(7, 9)), Some((7, 9)));
        assert!(seq_key(7, 9).starts_with(&encode_num(7)), "an agent's instances share its prefix");
        assert_eq!(decode_seq_key(b"abc"), None);
        assert_eq!(instance_from_name(&instance_name(12, "9f2c")), Some("9f2c"));
    }

    #[test]
    fn names_numbers_and_intervals_round_trip() {
        assert_eq!(decode_num(&encode_num(77)), 77);
        assert_eq!(name_key(KIND_PROBE, "web"), b"pweb");
        assert_eq!(&num_key(KIND_AGENT, 5)[..2], b"#a");
        assert_eq!(decode_u64(&encode_u64(30_000)), Some(30_000));
        assert_ne!(&interval_key(1)[..], SCHEMA_VERSION_KEY);
    }

    #[test]
    fn hist_values_and_seq_ranges_round_trip() {
        let v = encode_hist_value(300, b"hist");
        assert_eq!(decode_hist_value(&v), Some((300, &b"hist"[..])));
        for ranges in [vec![], vec![(1, 1)], vec![(1, 100), (102, 5000), (u64::MAX - 1, u64::MAX)]] {
            assert_eq!(decode_seq_ranges(&encode_seq_ranges(&ranges)), Some(ranges));
        }
        assert_eq!(decode_seq_ranges(&[0x80]), None);
    }

    #[test]
    fn history_records_round_trip_and_refuse_damage() {
        let rec = encode_record(b"{\"version\":1}");
        assert_eq!(decode_record(&rec), Some(&b"{\"version\":1}"[..]));
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x40;
            assert_eq!(decode_record(&bad), None, "byte {i} flipped");
        }
        assert_eq!(decode_record(&rec[..rec.len() - 1]), None);
        assert_eq!(decode_record(&[]), None);
    }

    #[test]
    fn sealed_records_open_and_any_damage_to_key_or_value_is_refused() {
        let key = raw_key(3, 5, 1_763_812_800_000, 12);
        let record = sealed(&key, b"block");
        assert_eq!(record.len(), 5 + CHECKSUM_LEN);
        assert_eq!(unseal(&key, &record), Some(&b"block"[..]));
        for i in 0..record.len() {
            let mut bad = record.clone();
            bad[i] ^= 0x01;
            assert_eq!(unseal(&key, &bad), None, "value byte {i} flipped");
        }
        for i in 0..key.len() {
            let mut bad = key;
            bad[i] ^= 0x80;
            assert_eq!(unseal(&bad, &record), None, "key byte {i} flipped");
        }
        assert_eq!(unseal(&key, &record[..3]), None);
        assert_eq!(unseal(b"k", &sealed(b"k", b"")), Some(&b""[..]));
    }

    #[test]
    fn a_record_is_described_by_what_its_key_holds() {
        let name = |kind: u8, n: Num| (kind == KIND_PROBE && n == 3).then(|| "web".to_string());
        let check = |tree: &str, key: &[u8], expected: &str| assert_eq!(describe_record(tree, key, &name), expected);
        check(
            "raw",
            &raw_key(3, 5, 1_763_812_805_000, 12),
            "probe web (#3), agent #5, hour 2025-11-22T12:00:00Z, block from 2025-11-22T12:00:05Z seq 12",
        );
        check(
            "hist_day",
            &pair_time_key(3, 5, 1_763_769_600_000),
            "probe web (#3), agent #5, day 2025-11-22T00:00:00Z",
        );
        check("agents", &seq_key(5, 9), "agent #5, instance #9");
        check("names", &num_key(KIND_AGENT, 5), "the id of agent number 5");
        check("meta", &interval_key(3), "interval of probe web (#3)");
        check("revisions", &revision_key("web-sla", "2026-Q4", 2), "agreement web-sla, period 2026-Q4, revision 2");
        check("maintenance", &maintenance_change_key("chg-7", 2), "maintenance window chg-7, change 2");
        check("raw", b"\x01", "key 0x01");
    }

    #[test]
    fn maintenance_keys_round_trip_and_keep_a_windows_changes_together_in_order() {
        let k = maintenance_change_key("chg-1042", 3);
        assert_eq!(decode_maintenance_change_key(&k), Some(("chg-1042".to_string(), 3)));
        assert!(k.starts_with(&maintenance_prefix("chg-1042")));
        // "chg-1" and "chg-10" never interleave: the 0 ends the id.
        assert!(!maintenance_change_key("chg-10", 1).starts_with(&maintenance_prefix("chg-1")));
        assert!(maintenance_change_key("a", 2) < maintenance_change_key("a", 10));
        assert_eq!(decode_maintenance_change_key(b"abc"), None);
        assert_eq!(decode_maintenance_change_key(&[0, 0, 0, 0, 1]), None);
    }

    #[test]
    fn history_keys_round_trip_and_order_by_number() {
        assert_eq!(decode_catalogue_version_key(&catalogue_version_key(258)), Some(258));
        assert!(catalogue_version_key(2) < catalogue_version_key(10));
        let (one, two) = (revision_key("web-sla", "2026-Q4", 1), revision_key("web-sla", "2026-Q4", 256));
        assert!(one.starts_with(&revision_prefix("web-sla", "2026-Q4")) && one < two);
        assert_eq!((decode_revision_number(&one), decode_revision_number(&two)), (Some(1), Some(256)));
        // One agreement's periods never share a prefix with another's.
        assert!(!revision_key("web", "2026-11", 1).starts_with(&revision_prefix("web", "2026-1")));
        let prefix = revision_prefix("web-sla", "2026-Q4");
        assert_eq!(decode_revision_prefix(&prefix), Some(("web-sla".to_string(), "2026-Q4".to_string())));
        assert_eq!(decode_revision_prefix(b"web-sla\x002026"), None);
        assert!(!revision_key("web-sla", "2026-11", 1).starts_with(&revision_prefix("web", "2026-11")));
    }
}
