//! The availability arithmetic of SPEC §7: agent view runs, calendars and maintenance in,
//! exact figures out. Pure: no I/O, no clock. Every seconds figure the collector shows
//! (reports, compliance, evidence) comes from [`compute`] and [`daily_breakdown`].
//!
//! The pipeline, all in integer Unix milliseconds over half-open intervals `[start, end)`:
//!
//! 1. [`probe_timeline`]: per probe, sweep over the agents' view runs (already stale-aware,
//!    see [`crate::runs`]) and apply the quorum rule.
//! 2. [`service_timeline`]: combine the probes (down beats unknown beats up), turn down runs
//!    shorter than `min_outage` to up, and describe each remaining down run as an [`Outage`].
//! 3. [`compute`]: intersect with service hours minus maintenance over the period, apply the
//!    unknown policy and the target.
//!
//! **Context window.** Whether a down run is shorter than `min_outage`, and where an outage
//! truly starts and ends, depends on time outside the period. So the timeline is built over
//! a *context* window wider than the period ([`context_window`]): the period padded by
//! [`CONTEXT_PADDING_MS`] (or `min_outage` if longer) on each side, and never past `now`.
//! Stopping at `now` means an ongoing outage ends at `now` and a down run still younger than
//! `min_outage` is not (yet) an outage, which is what is known at `now`. A down run that
//! reaches the edge of the context is cut there; the padding makes that matter only for
//! outages longer than a week, whose `start` then reads as the context's start.
//!
//! Files by job: `intervals.rs` (half-open interval lists: intersection, length, the
//! latency minutes), `timeline.rs` (probe and service timelines, quorum, `min_outage`,
//! outages, the context window) and `figures.rs` (coverage, the SPEC §7 figures, budget,
//! burn rate, daily rows), `verdict.rs` (coverage and the verdict), `attribution.rs`
//! (downtime attributed to dependencies), `period_view.rs` (a period as the dashboard draws
//! it: state runs with service hours and maintenance laid over them, hour or day buckets for
//! a latency series), `maintenance.rs` (which part of each maintenance window counts for an
//! agreement under its notice rule) and `completeness.rs` (results expected,
//! received and the largest gap, for evidence). The brute-force model the property tests check them against is
//! `model.rs`; `fixtures.rs` holds the hand-written cases' shorthand.

mod attribution;
mod completeness;
mod figures;
mod intervals;
mod maintenance;
mod period_view;
mod timeline;
mod verdict;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod model;

pub use attribution::attribute_downtime;
pub use completeness::{Completeness, ResultTally, expected_results};
pub use figures::{
    Attribution, BURN_WINDOW_LONG_MS, BURN_WINDOW_SHORT_MS, BURN_WINDOWS, BurnRates, Coverage, DailyRow, FigureMillis,
    Figures, FiguresSpec, OutageReport, compute, coverage, daily_breakdown, daily_row_count, daily_rows,
};
pub use intervals::{Interval, intersect, latency_minute_ranges, share_of, total};
pub use maintenance::{Declaration, WindowFigures, WindowInput, declared_parts, window_figures};
pub use period_view::{
    Bucket, RunState, StateRun, Step, ViewCoverage, state_runs, step_buckets, step_count, view_coverage,
};
pub use timeline::{
    CONTEXT_PADDING_MS, Outage, ProbeViews, Segment, ServiceInput, ServiceTimeline, State, context_window,
    probe_timeline, service_timeline,
};
pub use verdict::{LatencyOutcome, Verdict, VerdictSpec, coverage_percent, verdict};
