//! `results.csv`: every raw result of the service's probes in the period, streamed from
//! storage row by row (a quarter of results is never held in memory); each result is also
//! handed to `seen`, so completeness is counted in the same pass.

use std::fmt::Write as _;
use std::io::{self, Write};

use probity_config::time::rfc3339;

use super::export::{EvidenceSource, RawResult};
use crate::period::Period;
use crate::report::SourceError;

pub(super) const HEADER: [&str; 7] = ["at", "agent", "probe", "ok", "duration_us", "error_kind", "status"];

/// Why writing `results.csv` stopped: storage, or the zip.
pub(super) enum ResultsError {
    Source(SourceError),
    Io(io::Error),
}

impl From<io::Error> for ResultsError {
    fn from(e: io::Error) -> Self {
        ResultsError::Io(e)
    }
}

impl From<csv::Error> for ResultsError {
    fn from(e: csv::Error) -> Self {
        ResultsError::Io(e.into())
    }
}

pub(super) fn write<'p>(
    out: &mut dyn Write,
    source: &dyn EvidenceSource,
    probes: impl IntoIterator<Item = &'p str>,
    period: &Period,
    seen: &mut dyn FnMut(&RawResult<'_>),
) -> Result<(), ResultsError> {
    let mut w = super::csv_writer(out);
    w.write_record(HEADER)?;
    // One buffer for the numbers of every row: a quarter is millions of rows.
    let mut number = String::new();
    let mut source_error = None;
    for probe in probes {
        let mut each = |r: RawResult<'_>| -> io::Result<()> {
            seen(&r);
            w.write_field(rfc3339(r.at))?;
            w.write_field(r.agent)?;
            w.write_field(r.probe)?;
            w.write_field(if r.ok { "true" } else { "false" })?;
            number.clear();
            let _ = write!(number, "{}", r.duration_us);
            w.write_field(&number)?;
            w.write_field(r.error_kind.map(|k| k.as_str()).unwrap_or(""))?;
            number.clear();
            if let Some(status) = r.status {
                let _ = write!(number, "{status}");
            }
            w.write_field(&number)?;
            w.write_record(None::<&[u8]>)?;
            Ok(())
        };
        if let Err(e) = source.each_result(probe, period.from_ms, period.to_ms, &mut each) {
            source_error = Some(e);
            break;
        }
    }
    match source_error {
        Some(e) => Err(ResultsError::Source(e)),
        None => Ok(w.flush()?),
    }
}
