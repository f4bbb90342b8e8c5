//! The ingest path: one agent instance's batch checked against its seq state, then the
//! batch's journal record, seq state and pending marks in one transaction (the
//! acknowledgement); raw blocks and the derived data follow when the journal is merged
//! (`journal.rs`).

use super::*;

impl Store {
    /// Stores one batch of an agent instance (`None`: a request without `instance`, the
    /// legacy instance). `check` validates a result and returns its probe's interval (ms)
    /// or a reject reason. Duplicates (a seq this instance was answered for) are found
    /// before validation; rejected seqs join the seq state (answered for, so not lost) but
    /// nothing else is stored. Not durable until `flush`/the group commit.
    pub fn ingest<R>(
        &self,
        agent: &str,
        instance: Option<&str>,
        results: &[ProbeResult],
        check: impl Fn(&ProbeResult) -> Result<i64, R>,
    ) -> Result<IngestSummary<R>, StoreError> {
        let a = self.intern(keys::KIND_AGENT, agent)?;
        let i = match instance {
            None => keys::LEGACY_INSTANCE,
            Some(name) => self.intern(keys::KIND_INSTANCE, &keys::instance_name(a, name))?,
        };
        let state = self.agent_state(a)?;
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        if state.repair {
            state.pairs.clear();
            self.settle_locked(a, &mut state)?;
            self.repair_agent(a)?;
            state.pairs.clear();
            state.repair = false;
        }
        let reset = !state.instances.contains_key(&i) && !state.instances.is_empty();
        let result = self.ingest_locked(a, i, &mut state, results, check);
        if result.is_err() {
            state.pairs.clear();
        }
        // Committed or not (a derived write may fail after the raw transaction), what the
        // state says is what sled holds.
        if let Some(seqs) = state.instances.get(&i) {
            let mut committed = self.committed.lock().unwrap_or_else(|e| e.into_inner());
            let key = (agent.to_string(), instance.map(str::to_string));
            match committed.get_mut(&key) {
                Some(ranges) => {
                    ranges.clear();
                    ranges.extend_from_slice(seqs.ranges());
                }
                None => {
                    committed.insert(key, seqs.ranges().to_vec());
                }
            }
        }
        result.map(|mut summary| {
            summary.reset = reset;
            summary
        })
    }

    /// Two steps. First the acknowledgement: the batch's accepted results as one `journal`
    /// record, the instance's seq state and a pending mark on every hour touched (unless
    /// this agent's earlier batch marked it and no rollup cleared it since), in one
    /// transaction. The batch then joins the agent's journal in memory; once that holds
    /// `journal_limit` results (or before anything reads the store) it is merged into raw
    /// blocks and what is derived from them (runs, minute histograms, `last`) in one step
    /// per pair, which a crash or a storage error can leave behind: the journal left on
    /// disk is merged at the next open and the pending marks make it derive those hours
    /// again from raw. A replayed batch is a duplicate by then, so nothing is ever counted
    /// twice.
    pub(super) fn ingest_locked<R>(
        &self,
        a: Num,
        i: Num,
        state: &mut AgentState,
        results: &[ProbeResult],
        check: impl Fn(&ProbeResult) -> Result<i64, R>,
    ) -> Result<IngestSummary<R>, StoreError> {
        let mut summary = IngestSummary {
            accepted: 0,
            duplicates: 0,
            rejected: Vec::new(),
            seq: SeqSummary::default(),
            reset: false,
            latest: Vec::new(),
        };
        // Worked on a copy until the transaction commits: otherwise a storage error would
        // leave this call's seqs marked as seen and the agent's retry taken for a duplicate.
        let mut seqs = state.instances.get(&i).cloned().unwrap_or_default();
        let mut accepted: Vec<(Num, BlockEntry)> = Vec::with_capacity(results.len());
        let mut probes: BTreeMap<Num, (i64, &str)> = BTreeMap::new();
        for r in results {
            if !seqs.insert(r.seq) {
                summary.duplicates += 1;
                continue;
            }
            let interval_ms = match check(r) {
                Ok(i) => i,
                Err(reason) => {
                    summary.rejected.push((r.seq, reason));
                    continue;
                }
            };
            let p = self.intern(keys::KIND_PROBE, &r.probe)?;
            let value =
                RawValue { down: r.error.as_ref().map(|e| e.kind), duration_us: r.duration_us, status: r.status };
            summary.accepted += 1;
            probes.insert(p, (interval_ms, &r.probe));
            accepted.push((p, BlockEntry { at: r.at, seq: r.seq, value }));
        }
        let mut marks: Vec<(Num, i64)> =
            accepted.iter().map(|(p, e)| (*p, raw::hour_of(e.at))).filter(|m| !state.marked.contains(m)).collect();
        marks.sort_unstable();
        marks.dedup();
        for (&p, &(interval_ms, _)) in &probes {
            self.ensure_interval(p, interval_ms)?;
        }
        let seq_key = keys::seq_key(a, i);
        let seq_value = self.agents.seal(&seq_key, &keys::encode_seq_ranges(seqs.ranges()));
        let journal = if accepted.is_empty() {
            None
        } else {
            let generation = self.db.generate_id()?;
            let key = keys::journal_key(a, generation);
            let mut value = Vec::with_capacity(4 + accepted.len() * 10);
            keys::encode_journal(&accepted, &mut value);
            let marker = keys::encode_u64(generation);
            let marks: Vec<([u8; 17], Vec<u8>)> = marks
                .iter()
                .map(|&(p, h)| {
                    let k = keys::pending_key(keys::LEVEL_HOUR, p, a, h);
                    (k, self.pending.seal(&k, &marker))
                })
                .collect();
            Some((key, self.journal.seal(&key, &value), marks))
        };
        self.journal.will_write()?;
        (self.journal.sled(), self.agents.sled(), self.pending.sled())
            .transaction(|(journal_tree, agents, pending)| {
                if let Some((key, value, marks)) = &journal {
                    journal_tree.insert(&key[..], value.as_slice())?;
                    for (m, v) in marks {
                        pending.insert(&m[..], v.as_slice())?;
                    }
                }
                agents.insert(&seq_key[..], seq_value.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => StoreError::Corrupt { tree: "journal" },
            })?;
        summary.seq = seqs.summary();
        state.instances.insert(i, seqs);
        state.marked.extend(marks);
        if let Some((key, _, _)) = journal {
            let AgentState { journal, pairs, .. } = state;
            self.journaled.fetch_add(accepted.len() as u64, std::sync::atomic::Ordering::Relaxed);
            journal.add(key, &probes, accepted);
            // The newest result of each probe touched: what is stored, or newer in the journal.
            for (p, (_, name)) in probes {
                let stored = self.pair_state(pairs, p, a)?.last;
                let newest = journal.newest(p).into_iter().chain(stored).max_by_key(|l| (l.at, l.seq));
                if let Some(l) = newest {
                    summary.latest.push((name.to_string(), l));
                }
            }
        }
        if state.journal.results() >= self.journal_limit.load(std::sync::atomic::Ordering::Relaxed) {
            self.settle_locked(a, state)?;
        }
        Ok(summary)
    }

    /// The derived half of a journal merge: runs, minute histograms and `last` of the
    /// merged pairs, from the cached pair state (raw already holds the results).
    pub(super) fn derive_batch(
        &self,
        a: Num,
        pairs: &mut HashMap<Num, PairState>,
        by_probe: BTreeMap<Num, ProbeBatch>,
    ) -> Result<(), StoreError> {
        for (p, (interval_ms, items)) in by_probe {
            let pair = self.pair_state(pairs, p, a)?;
            let newest_before = pair.last.map(|l| (l.at, l.seq));
            let observations =
                items.iter().map(|e| NewObservation { at: e.at, seq: e.seq, down: e.value.down }).collect();
            let mut lookup = raw::RawLookup::new(&self.raw, p, a);
            timeline::apply(&self.runs, &mut lookup, p, a, interval_ms, newest_before, observations)?;
            self.add_to_minutes(p, a, pair, &items)?;
            let newest = items.iter().max_by_key(|e| (e.at, e.seq)).expect("non-empty");
            let candidate = LastResult { at: newest.at, seq: newest.seq, value: newest.value };
            if pair.last.is_none_or(|l| (l.at, l.seq) < (candidate.at, candidate.seq)) {
                self.last.insert(keys::pair_prefix(p, a), keys::encode_last(&candidate))?;
                pair.last = Some(candidate);
            }
        }
        Ok(())
    }
}
