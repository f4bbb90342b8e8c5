//! The ingest path: one agent instance's batch checked against its seq state, then raw
//! results, seq state and pending marks in one transaction (the acknowledgement), and the
//! derived data written after it.

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

    /// Two steps. First the acknowledgement: the raw results, the instance's seq state and a
    /// pending mark on every hour touched, in one transaction. Then what is derived from
    /// them (runs, minute histograms, `last`), which a crash or a storage error can leave
    /// behind: the pending marks make the next open (or the agent's next batch, or the
    /// hour's rollup) derive those hours again from raw. A replayed batch is a duplicate by
    /// then, so nothing is ever counted twice.
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
        let mut by_probe: BTreeMap<Num, ProbeBatch> = BTreeMap::new();
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
            by_probe.entry(p).or_insert_with(|| (interval_ms, Vec::new())).1.push(BlockEntry {
                at: r.at,
                seq: r.seq,
                value,
            });
        }
        let marker = if by_probe.is_empty() { Vec::new() } else { keys::encode_u64(self.db.generate_id()?).to_vec() };
        let mut blocks = raw::BlockWrites::default();
        let mut marks: Vec<[u8; 17]> = Vec::new();
        for (&p, (interval_ms, items)) in &by_probe {
            self.ensure_interval(p, *interval_ms)?;
            raw::blocks(&self.raw, p, a, items.clone(), &mut blocks)?;
            let mut hours: Vec<i64> = items.iter().map(|e| raw::hour_of(e.at)).collect();
            hours.sort_unstable();
            hours.dedup();
            marks.extend(hours.into_iter().map(|h| keys::pending_key(keys::LEVEL_HOUR, p, a, h)));
        }
        let seq_key = keys::seq_key(a, i);
        let seq_value = self.agents.seal(&seq_key, &keys::encode_seq_ranges(seqs.ranges()));
        let inserts: Vec<([u8; 24], Vec<u8>)> = blocks.insert.iter().map(|(k, v)| (*k, self.raw.seal(k, v))).collect();
        let marks: Vec<([u8; 17], Vec<u8>)> = marks.iter().map(|m| (*m, self.pending.seal(m, &marker))).collect();
        self.raw.will_write()?;
        (self.raw.sled(), self.agents.sled(), self.pending.sled())
            .transaction(|(raw, agents, pending)| {
                for k in &blocks.remove {
                    raw.remove(k)?;
                }
                for (k, v) in &inserts {
                    raw.insert(&k[..], v.as_slice())?;
                }
                agents.insert(&seq_key[..], seq_value.as_slice())?;
                for (m, v) in &marks {
                    pending.insert(&m[..], v.as_slice())?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => StoreError::Corrupt { tree: "raw" },
            })?;
        summary.seq = seqs.summary();
        state.instances.insert(i, seqs);
        if let Err(e) = self.derive_batch(a, &mut state.pairs, by_probe, &mut summary.latest) {
            state.repair = true;
            return Err(e);
        }
        Ok(summary)
    }

    /// The derived half of an ingest: runs, minute histograms and `last` of the batch's
    /// pairs, from the cached pair state (raw already holds the batch).
    pub(super) fn derive_batch(
        &self,
        a: Num,
        pairs: &mut HashMap<Num, PairState>,
        by_probe: BTreeMap<Num, ProbeBatch>,
        latest: &mut Vec<(String, LastResult)>,
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
            if let (Some(name), Some(l)) = (self.name_of(keys::KIND_PROBE, p)?, pair.last) {
                latest.push((name, l));
            }
        }
        Ok(())
    }
}
