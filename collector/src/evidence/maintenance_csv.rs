//! `maintenance.csv`: the report's `maintenance_windows` (SPEC §11), one row per window
//! that meets the period's service hours, with the same columns and values as the JSON
//! (`notice_met` empty when the agreement sets no notice), so a retroactive or late
//! window is in the bundle's data as well as in its prose.

use std::io::{self, Write};

use crate::report::MaintenanceWindowReport;
use crate::views::MaintenanceWindowReportView;

pub(super) const HEADER: [&str; 10] = [
    "id",
    "start",
    "end",
    "counted_seconds",
    "reason",
    "ticket",
    "declared_at",
    "declared_by",
    "retroactive",
    "notice_met",
];

pub(super) fn write(out: &mut dyn Write, windows: &[MaintenanceWindowReport]) -> io::Result<()> {
    let mut w = super::csv_writer(out);
    w.write_record(HEADER)?;
    for window in windows {
        let v = MaintenanceWindowReportView::from(window);
        w.write_record([
            v.id.to_string(),
            v.start,
            v.end,
            v.counted_seconds.to_string(),
            v.reason.to_string(),
            v.ticket.unwrap_or_default().to_string(),
            v.declared_at,
            v.declared_by.to_string(),
            v.retroactive.to_string(),
            v.notice_met.map(|m| m.to_string()).unwrap_or_default(),
        ])?;
    }
    w.flush()
}
