//! What the database holds of every agent instance's acknowledged seqs, compared with the
//! ledger at start, and a loss recorded when the operator accepts one.

use super::*;

impl Store {
    pub(super) fn load_committed(&self) -> Result<(), StoreError> {
        let mut committed = BTreeMap::new();
        for kv in self.agents.iter() {
            let (k, v) = kv?;
            let (a, i) = keys::decode_seq_key(&k).ok_or(StoreError::Corrupt { tree: "agents" })?;
            let ranges = keys::decode_seq_ranges(&v).ok_or(StoreError::Corrupt { tree: "agents" })?;
            let agent = self.name_of(keys::KIND_AGENT, a)?.ok_or(StoreError::Corrupt { tree: "names" })?;
            committed.insert((agent, self.instance_id(i)?), ranges);
        }
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = committed;
        Ok(())
    }

    /// What the database holds of every agent instance's seqs: the acknowledged ledger's
    /// content once the writes so far are flushed.
    pub fn acknowledged(&self) -> Vec<crate::ledger::LedgerEntry> {
        let committed = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        committed
            .iter()
            .map(|((agent, instance), ranges)| crate::ledger::LedgerEntry {
                agent: agent.clone(),
                instance: instance.clone(),
                ranges: ranges.clone(),
            })
            .collect()
    }

    /// The ledger's instances this database holds less of, with the seqs it lacks.
    pub fn held_less_than(
        &self,
        ledger: &[crate::ledger::LedgerEntry],
    ) -> Vec<(crate::ledger::LedgerEntry, Vec<(u64, u64)>)> {
        let committed = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for e in ledger {
            let held = committed.get(&(e.agent.clone(), e.instance.clone())).map_or(&[][..], Vec::as_slice);
            let missing = crate::ledger::missing(&e.ranges, held);
            if !missing.is_empty() {
                out.push((e.clone(), missing));
            }
        }
        out
    }

    /// Records acknowledged results the database lost (`--accept-loss`): their seqs join
    /// the instance's seq state (answered for, never re-sent) and count as lost results.
    pub fn record_loss(&self, agent: &str, instance: Option<&str>, missing: &[(u64, u64)]) -> Result<(), StoreError> {
        let a = self.intern(keys::KIND_AGENT, agent)?;
        let i = match instance {
            None => keys::LEGACY_INSTANCE,
            Some(name) => self.intern(keys::KIND_INSTANCE, &keys::instance_name(a, name))?,
        };
        let state = self.agent_state(a)?;
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let mut seqs = state.instances.get(&i).cloned().unwrap_or_default();
        let mut lost = self.recorded_loss(a, i)?;
        for &(lo, hi) in missing {
            seqs.insert_range(lo, hi);
            lost += hi - lo + 1;
        }
        self.agents.insert(keys::seq_key(a, i), keys::encode_seq_ranges(seqs.ranges()))?;
        self.meta.insert(keys::loss_key(a, i), keys::encode_u64(lost))?;
        self.db.flush()?;
        self.committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((agent.to_string(), instance.map(str::to_string)), seqs.ranges().to_vec());
        state.instances.insert(i, seqs);
        Ok(())
    }

    /// Results recorded as lost with `--accept-loss` for an instance.
    pub(super) fn recorded_loss(&self, a: Num, i: Num) -> Result<u64, StoreError> {
        Ok(self.meta.get(keys::loss_key(a, i))?.and_then(|v| keys::decode_u64(&v)).unwrap_or(0))
    }

    /// The id of instance number `i` (`None`: legacy).
    pub(super) fn instance_id(&self, i: Num) -> Result<Option<String>, StoreError> {
        if i == keys::LEGACY_INSTANCE {
            return Ok(None);
        }
        let name = self.name_of(keys::KIND_INSTANCE, i)?.ok_or(StoreError::Corrupt { tree: "names" })?;
        Ok(Some(keys::instance_from_name(&name).ok_or(StoreError::Corrupt { tree: "names" })?.to_string()))
    }
}
