//! The seqs an agent has been answered for, as sorted disjoint ranges: the duplicate
//! check of SPEC §6 and the lost-result count (gaps between ranges).

/// Sorted, disjoint, non-touching inclusive ranges of seqs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqSet {
    ranges: Vec<(u64, u64)>,
}

/// What the seq state says about an agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqSummary {
    /// Highest seq answered for (0: none yet).
    pub highest: u64,
    /// Seqs answered for (accepted, duplicate-checked or rejected).
    pub received: u64,
    /// Seqs missing between the lowest and the highest received: lost results.
    pub lost: u64,
    /// The longest run of missing seqs.
    pub largest_gap: u64,
}

/// One agent's instances (SPEC §15) and what their seq states say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentInstances {
    pub agent: String,
    /// In the order they were first seen; `None` is the legacy instance (requests without
    /// `instance`, from agents that predate instances).
    pub instances: Vec<(Option<String>, SeqSummary)>,
}

impl AgentInstances {
    /// The instance first seen last: the agent's current one (`None`: legacy).
    pub fn current(&self) -> Option<&str> {
        self.instances.last().and_then(|(i, _)| i.as_deref())
    }

    /// Agent resets: every instance after the first.
    pub fn resets(&self) -> u64 {
        self.instances.len().saturating_sub(1) as u64
    }

    /// Lost results (seq gaps) over every instance.
    pub fn lost(&self) -> u64 {
        self.instances.iter().map(|(_, s)| s.lost).sum()
    }

    /// Every instance summed up: the current instance's highest seq, results received
    /// and lost over all of them, the largest gap of any.
    pub fn summary(&self) -> SeqSummary {
        SeqSummary {
            highest: self.instances.last().map_or(0, |(_, s)| s.highest),
            received: self.instances.iter().map(|(_, s)| s.received).sum(),
            lost: self.lost(),
            largest_gap: self.instances.iter().map(|(_, s)| s.largest_gap).max().unwrap_or(0),
        }
    }
}

impl SeqSet {
    pub fn from_ranges(ranges: Vec<(u64, u64)>) -> SeqSet {
        SeqSet { ranges }
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    pub fn contains(&self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < seq);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= seq)
    }

    /// Adds `seq`; false when it was already there.
    pub fn insert(&mut self, seq: u64) -> bool {
        // Fast path: the next seq of an agent sending in order.
        if let Some(last) = self.ranges.last_mut()
            && last.1.checked_add(1) == Some(seq)
        {
            last.1 = seq;
            return true;
        }
        let i = self.ranges.partition_point(|&(_, hi)| hi < seq);
        if self.ranges.get(i).is_some_and(|&(lo, _)| lo <= seq) {
            return false;
        }
        let joins_left = i > 0 && self.ranges[i - 1].1 + 1 == seq;
        let joins_right = self.ranges.get(i).is_some_and(|&(lo, _)| lo == seq + 1);
        match (joins_left, joins_right) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = seq,
            (false, true) => self.ranges[i].0 = seq,
            (false, false) => self.ranges.insert(i, (seq, seq)),
        }
        true
    }

    /// Adds every seq of `lo..=hi`.
    pub fn insert_range(&mut self, lo: u64, hi: u64) {
        self.ranges.push((lo, hi));
        self.ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len());
        for &(lo, hi) in &self.ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        self.ranges = merged;
    }

    pub fn summary(&self) -> SeqSummary {
        let received = self.ranges.iter().map(|&(lo, hi)| hi - lo + 1).sum();
        let gaps = self.ranges.windows(2).map(|w| w[1].0 - w[0].1 - 1);
        let (lost, largest_gap) = gaps.fold((0, 0), |(sum, max), g| (sum + g, max.max(g)));
        SeqSummary { highest: self.ranges.last().map_or(0, |r| r.1), received, lost, largest_gap }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_seqs_make_one_range_and_no_loss() {
        let mut s = SeqSet::default();
        for seq in 1..=100 {
            assert!(s.insert(seq));
        }
        assert!(!s.insert(50));
        assert_eq!(s.ranges(), &[(1, 100)]);
        assert_eq!(s.summary(), SeqSummary { highest: 100, received: 100, lost: 0, largest_gap: 0 });
    }

    #[test]
    fn gaps_count_as_lost_until_they_are_filled() {
        let mut s = SeqSet::default();
        for seq in [1, 2, 5, 9, 10] {
            s.insert(seq);
        }
        assert_eq!(s.summary(), SeqSummary { highest: 10, received: 5, lost: 5, largest_gap: 3 });
        for seq in [3, 4, 6, 8, 7] {
            assert!(s.insert(seq));
        }
        assert_eq!(s.ranges(), &[(1, 10)]);
        assert!(s.contains(7) && !s.contains(11) && !s.contains(0));
    }

    #[test]
    fn ranges_insert_and_merge() {
        let mut s = SeqSet::from_ranges(vec![(1, 5), (20, 30)]);
        s.insert_range(6, 10);
        s.insert_range(25, 40);
        s.insert_range(50, 50);
        assert_eq!(s.ranges(), &[(1, 10), (20, 40), (50, 50)]);
    }

    #[test]
    fn random_inserts_agree_with_a_plain_set() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut s = SeqSet::default();
        let mut plain = std::collections::BTreeSet::new();
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let seq = x % 300;
            assert_eq!(s.insert(seq), plain.insert(seq));
        }
        for seq in 0..310 {
            assert_eq!(s.contains(seq), plain.contains(&seq));
        }
        assert_eq!(s.summary().received, plain.len() as u64);
    }
}
