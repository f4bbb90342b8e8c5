//! The acknowledged ledger (SPEC §15): outside the database, per agent instance, the seqs
//! the collector has answered for (highest, count, and the ranges themselves). The group
//! commit rewrites it after each database flush and before the `200`s that flush covers,
//! so it never claims more than the database holds. At start a database holding less
//! than the ledger (damaged, truncated, emptied, removed, an old backup) is refused.
//!
//! `data_dir/ledger`, text, one line per instance after a header:
//! `agent TAB instance (- for legacy) TAB highest TAB count TAB lo-hi,lo-hi…`, then
//! `sha256 HEX` of everything before it. Written whole: temporary file, fsync, rename.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

const HEADER: &str = "# probity acknowledged ledger (SPEC §15): what the collector answered 200 for; do not edit\n";

/// One agent instance's acknowledged seqs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub agent: String,
    /// `None`: the legacy instance (requests without `instance`).
    pub instance: Option<String>,
    /// Sorted, disjoint inclusive ranges.
    pub ranges: Vec<(u64, u64)>,
}

impl LedgerEntry {
    pub fn highest(&self) -> u64 {
        self.ranges.last().map_or(0, |r| r.1)
    }

    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|(lo, hi)| hi - lo + 1).sum()
    }

    /// `agent lon-1 instance 9f2c…` (or `legacy instance`).
    pub fn label(&self) -> String {
        match &self.instance {
            Some(i) => format!("agent {} instance {i}", self.agent),
            None => format!("agent {} (legacy instance)", self.agent),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot read the ledger {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "the ledger {path} is damaged ({reason}); it only guards the database: move it aside to start without that guard"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot write the ledger {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// The ledger file and what was last written to it.
pub struct Ledger {
    path: PathBuf,
    last: Mutex<Vec<LedgerEntry>>,
}

impl Ledger {
    pub fn new(path: PathBuf) -> Ledger {
        Ledger { path, last: Mutex::default() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ledger's entries; `None` when there is no ledger file (a first start).
    pub fn read(&self) -> Result<Option<Vec<LedgerEntry>>, LedgerError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LedgerError::Read { path: self.path.clone(), source }),
        };
        parse(&text).map(Some).map_err(|reason| LedgerError::Damaged { path: self.path.clone(), reason })
    }

    /// Writes `entries` (sorted) durably, unless they are what was written last.
    pub fn write(&self, entries: Vec<LedgerEntry>) -> Result<(), LedgerError> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if *last == entries {
            return Ok(());
        }
        let text = render(&entries);
        write_durably(&self.path, text.as_bytes())
            .map_err(|source| LedgerError::Write { path: self.path.clone(), source })?;
        *last = entries;
        Ok(())
    }
}

/// The ledger's text for `entries` (sorted), its checksum line included.
pub fn render(entries: &[LedgerEntry]) -> String {
    let mut body = String::from(HEADER);
    for e in entries {
        let ranges: Vec<String> = e.ranges.iter().map(|(lo, hi)| format!("{lo}-{hi}")).collect();
        let _ = writeln!(
            body,
            "{}\t{}\t{}\t{}\t{}",
            e.agent,
            e.instance.as_deref().unwrap_or("-"),
            e.highest(),
            e.count(),
            ranges.join(",")
        );
    }
    let sum = hex::encode(Sha256::digest(body.as_bytes()));
    let _ = writeln!(body, "sha256 {sum}");
    body
}

/// The entries of a ledger's text; `Err` says what is damaged.
pub fn parse(text: &str) -> Result<Vec<LedgerEntry>, String> {
    let body_end = text.rfind("sha256 ").ok_or("no checksum line")?;
    let (body, sum) = text.split_at(body_end);
    let sum = sum.trim_start_matches("sha256 ").trim();
    if hex::encode(Sha256::digest(body.as_bytes())) != sum {
        return Err("its checksum does not match".into());
    }
    let mut out = Vec::new();
    for (n, line) in body.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.is_empty()) {
        let bad = |what: &str| format!("line {}: {what}", n + 1);
        let fields: Vec<&str> = line.split('\t').collect();
        let [agent, instance, highest, count, ranges] = fields[..] else { return Err(bad("not 5 fields")) };
        let mut parsed = Vec::new();
        for r in ranges.split(',').filter(|r| !r.is_empty()) {
            let (lo, hi) = r.split_once('-').ok_or_else(|| bad("a range is not lo-hi"))?;
            let (lo, hi): (u64, u64) =
                (lo.parse().map_err(|_| bad("bad seq"))?, hi.parse().map_err(|_| bad("bad seq"))?);
            parsed.push((lo, hi));
        }
        let entry = LedgerEntry {
            agent: agent.to_string(),
            instance: (instance != "-").then(|| instance.to_string()),
            ranges: parsed,
        };
        if highest.parse::<u64>().ok() != Some(entry.highest()) || count.parse::<u64>().ok() != Some(entry.count()) {
            return Err(bad("highest or count disagrees with the ranges"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// The seqs in `ledger` that `held` lacks, as ranges.
pub fn missing(ledger: &[(u64, u64)], held: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(lo, hi) in ledger {
        let mut at = lo;
        for &(hlo, hhi) in held.iter().filter(|(hlo, hhi)| *hhi >= lo && *hlo <= hi) {
            if hlo > at {
                out.push((at, hlo - 1));
            }
            at = at.max(hhi.saturating_add(1));
        }
        if at <= hi {
            out.push((at, hi));
        }
    }
    out
}

/// Writes a whole file so that a crash leaves the old content or the new: a ledger left
/// behind by a lost rename only claims less, which is safe.
fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(agent: &str, instance: Option<&str>, ranges: &[(u64, u64)]) -> LedgerEntry {
        LedgerEntry { agent: agent.into(), instance: instance.map(str::to_string), ranges: ranges.to_vec() }
    }

    #[test]
    fn a_ledger_round_trips_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger"));
        assert_eq!(ledger.read().unwrap(), None);
        let entries = vec![entry("lon-1", None, &[(1, 1742), (1744, 1899)]), entry("lon-1", Some("9f2c"), &[(1, 5)])];
        ledger.write(entries.clone()).unwrap();
        assert_eq!(ledger.read().unwrap(), Some(entries));
        let text = fs::read_to_string(ledger.path()).unwrap();
        assert!(text.contains("lon-1\t-\t1899\t1898\t1-1742,1744-1899"), "{text}");
        fs::write(ledger.path(), text.replace("1899\t1898", "1899\t1899")).unwrap();
        assert!(matches!(ledger.read(), Err(LedgerError::Damaged { .. })));
        fs::write(ledger.path(), &text[..text.len() - 10]).unwrap();
        assert!(matches!(ledger.read(), Err(LedgerError::Damaged { .. })));
    }

    #[test]
    fn missing_seqs_are_the_ledgers_ranges_less_what_is_held() {
        assert_eq!(missing(&[(1, 100)], &[(1, 100)]), vec![]);
        assert_eq!(missing(&[(1, 100)], &[(1, 60)]), vec![(61, 100)]);
        assert_eq!(missing(&[(1, 100)], &[]), vec![(1, 100)]);
        assert_eq!(missing(&[(1, 10), (20, 30)], &[(3, 4), (8, 25)]), vec![(1, 2), (5, 7), (26, 30)]);
        assert_eq!(missing(&[(5, 6)], &[(1, 100)]), vec![]);
    }
}
