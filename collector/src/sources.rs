//! The sled `Store` as the source of reports and evidence: the two small traits of
//! `report` and `evidence::export` implemented over the store's queries.

use std::io;

use hdrhistogram::Histogram;

use crate::availability::Interval;
use crate::evidence::export::{EvidenceSource, InstanceLoss, RawResult};
use crate::report::{ReportSource, SourceError};
use crate::runs::ViewRun;
use crate::store::Store;

impl ReportSource for Store {
    fn view_runs(&self, probe: &str, agent: &str, from_ms: i64, to_ms: i64) -> Result<Vec<ViewRun>, SourceError> {
        Ok(Store::view_runs(self, probe, agent, from_ms, to_ms)?)
    }

    fn latency(&self, probe: &str, minute_ranges: &[Interval]) -> Result<Histogram<u64>, SourceError> {
        Ok(Store::latency(self, probe, minute_ranges)?.histogram)
    }

    fn maintenance(&self, service: &str) -> Result<Vec<crate::maintenance::Window>, SourceError> {
        Ok(crate::maintenance::windows_of(self, service)?)
    }
}

impl EvidenceSource for Store {
    fn each_result(
        &self,
        probe: &str,
        from_ms: i64,
        to_ms: i64,
        f: &mut dyn FnMut(RawResult<'_>) -> io::Result<()>,
    ) -> Result<(), SourceError> {
        for row in self.raw_results(probe, from_ms, to_ms)? {
            let row = row?;
            f(RawResult {
                at: row.at,
                agent: &row.agent,
                probe: &row.probe,
                ok: row.ok,
                duration_us: row.duration_us,
                error_kind: row.error_kind,
                status: row.status,
            })?;
        }
        Ok(())
    }

    /// Lost results are known per instance over its whole history (seq gaps carry no time).
    fn instances(&self, agent: &str) -> Result<Vec<InstanceLoss>, SourceError> {
        let Some(seen) = self.agent_instances(agent)? else { return Ok(Vec::new()) };
        Ok(seen.instances.into_iter().map(|(instance, seqs)| InstanceLoss { instance, lost: seqs.lost }).collect())
    }
}
