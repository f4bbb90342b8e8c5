//! `daily.csv`: one row per local day of the agreement's calendar, as
//! `availability::daily_rows` computes them; the rows sum to `summary.json`.

use std::io::{self, Write};

use crate::availability::DailyRow;

pub(super) const HEADER: [&str; 6] = [
    "date",
    "service_hours_seconds",
    "maintenance_seconds",
    "unknown_seconds",
    "downtime_seconds",
    "availability_percent",
];

/// Writes the rows as they come, so a long period is never held as text.
pub(super) fn write(out: &mut dyn Write, rows: impl IntoIterator<Item = DailyRow>) -> io::Result<()> {
    let mut w = super::csv_writer(out);
    w.write_record(HEADER)?;
    for r in rows {
        w.write_record([
            r.date.to_string(),
            r.service_hours_seconds.to_string(),
            r.maintenance_seconds.to_string(),
            r.unknown_seconds.to_string(),
            r.downtime_seconds.to_string(),
            r.availability_percent.map(|a| a.to_string()).unwrap_or_default(),
        ])?;
    }
    w.flush()
}
