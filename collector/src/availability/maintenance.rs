//! Maintenance windows as they count for one agreement (SPEC §11): a window is declared,
//! then perhaps ended early or extended; each declaration says when it was made. With a
//! `maintenance_notice`, a part of a window counts only from max(its start, when it was
//! declared + notice); the rest is ordinary service time. Pure: declarations in, the
//! counted intervals and each window's figures out.
//!
//! A change that *adds* time (an extension, or a start moved earlier) is a declaration of
//! that added part, made when the change was made: extending a running window by an hour
//! an hour before it ends gives that hour no notice, whatever the notice of the original
//! window. A change that removes time (ending early) only clips what was declared.

use probity_config::calendar::{Calendar, normalize, subtract};

use super::intervals::{Interval, intersect, overlaps, total};

/// One declaration of a window's extent `[start_ms, end_ms)`, made at `at_ms`: the
/// window's first declaration, then each change of its start or end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Declaration {
    pub start_ms: i64,
    pub end_ms: i64,
    pub at_ms: i64,
}

/// A window as its declarations (oldest first, never empty) give it.
#[derive(Clone, Copy, Debug)]
pub struct WindowInput<'a> {
    pub declarations: &'a [Declaration],
    /// A cancelled window excludes nothing.
    pub cancelled: bool,
}

/// What one window means for one agreement over one period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowFigures {
    /// The parts of the window that count as maintenance for the agreement (sorted, disjoint).
    pub counted: Vec<Interval>,
    /// |counted ∩ period ∩ service hours|, in ms.
    pub counted_ms: i64,
    /// Whether the window's extent meets the period's service hours at all (a report lists
    /// the windows that do, counted or not).
    pub in_service_hours: bool,
    /// `None` without a notice rule; else whether every part of the window was declared at
    /// least the notice before it began.
    pub notice_met: Option<bool>,
    /// Some part of the window began before it was declared (for a window never changed:
    /// `start < declared_at`).
    pub retroactive: bool,
}

/// The window's extent now, each part with when it was declared: later declarations clip
/// what earlier ones said and add what they did not cover.
pub fn declared_parts(declarations: &[Declaration]) -> Vec<(Interval, i64)> {
    let mut parts: Vec<(Interval, i64)> = Vec::new();
    for d in declarations {
        let extent = [(d.start_ms, d.end_ms.max(d.start_ms))];
        let mut kept: Vec<(Interval, i64)> = Vec::new();
        for &(iv, at) in &parts {
            kept.extend(intersect(&[iv], &extent).into_iter().map(|c| (c, at)));
        }
        let covered = normalize(kept.iter().map(|&(iv, _)| iv).collect());
        kept.extend(subtract(&extent, &covered).into_iter().map(|iv| (iv, d.at_ms)));
        kept.sort_unstable();
        parts = kept;
    }
    parts
}

/// Each window's figures over the period `[from, to)` for an agreement with `notice_ms`
/// (`None`: windows count whole).
pub fn window_figures(
    windows: &[WindowInput<'_>],
    notice_ms: Option<i64>,
    calendar: &Calendar,
    from: i64,
    to: i64,
) -> Vec<WindowFigures> {
    let hours = calendar.service_intervals(from, to);
    windows
        .iter()
        .map(|w| {
            let parts = declared_parts(w.declarations);
            let counts_from = |(start, _): Interval, at: i64| match notice_ms {
                None => start,
                Some(n) => start.max(at.saturating_add(n)),
            };
            let counted = if w.cancelled {
                Vec::new()
            } else {
                normalize(parts.iter().map(|&(iv, at)| (counts_from(iv, at), iv.1)).filter(|(a, b)| a < b).collect())
            };
            let extent = normalize(parts.iter().map(|&(iv, _)| iv).filter(|(a, b)| a < b).collect());
            WindowFigures {
                counted_ms: total(&intersect(&hours, &counted)),
                counted,
                in_service_hours: extent.iter().any(|&iv| overlaps(&hours, iv)),
                notice_met: notice_ms.map(|_| parts.iter().all(|&(iv, at)| counts_from(iv, at) == iv.0)),
                retroactive: parts.iter().any(|&((start, _), at)| start < at),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::fixtures::{HOUR, at, calendar};

    fn decl(start_min: i64, end_min: i64, at_min: i64) -> Declaration {
        Declaration { start_ms: at(start_min), end_ms: at(end_min), at_ms: at(at_min) }
    }

    fn always() -> Calendar {
        calendar("UTC", &["mon-sun 00:00-24:00"], &[])
    }

    fn one(decls: &[Declaration], notice_minutes: Option<i64>) -> WindowFigures {
        let w = WindowInput { declarations: decls, cancelled: false };
        window_figures(&[w], notice_minutes.map(|m| m * 60_000), &always(), at(0), at(24 * 60)).remove(0)
    }

    #[test]
    fn without_a_notice_rule_a_window_counts_whole_even_when_declared_late() {
        let w = one(&[decl(60, 120, 90)], None);
        assert_eq!(w.counted, vec![(at(60), at(120))]);
        assert_eq!((w.counted_ms, w.notice_met, w.retroactive), (HOUR, None, true));
    }

    #[test]
    fn a_notice_rule_counts_only_from_declared_at_plus_notice() {
        // Declared at 00:30 with a 60-minute notice: counts from 01:30, not from 01:00.
        let w = one(&[decl(60, 180, 30)], Some(60));
        assert_eq!(w.counted, vec![(at(90), at(180))]);
        assert_eq!((w.notice_met, w.retroactive), (Some(false), false));
        // Declared two hours ahead: counts whole, notice met.
        let w = one(&[decl(180, 240, 60)], Some(60));
        assert_eq!((w.counted_ms, w.notice_met), (HOUR, Some(true)));
        // Declared after it ended: nothing counts, but it is still listed.
        let w = one(&[decl(60, 120, 300)], Some(60));
        assert_eq!((w.counted.len(), w.counted_ms, w.in_service_hours), (0, 0, true));
        assert_eq!((w.notice_met, w.retroactive), (Some(false), true));
    }

    #[test]
    fn an_extension_is_a_new_declaration_of_the_added_part_and_ending_early_clips() {
        // 01:00-02:00 declared at 00:00 (60 min notice met), extended to 03:00 at 01:30.
        let decls = [decl(60, 120, 0), decl(60, 180, 90)];
        assert_eq!(declared_parts(&decls), vec![((at(60), at(120)), at(0)), ((at(120), at(180)), at(90))]);
        let w = one(&decls, Some(60));
        // The added hour counts from 02:30 (declared 01:30 + 60 min).
        assert_eq!(w.counted, vec![(at(60), at(120)), (at(150), at(180))]);
        assert_eq!((w.notice_met, w.retroactive), (Some(false), false));
        // Without a rule the whole extended window counts.
        assert_eq!(one(&decls, None).counted, vec![(at(60), at(180))]);
        // Ended early at 01:20: only 01:00-01:20 is left.
        let w = one(&[decl(60, 120, 0), decl(60, 80, 70)], Some(60));
        assert_eq!((w.counted, w.notice_met), (vec![(at(60), at(80))], Some(true)));
    }

    #[test]
    fn a_cancelled_window_excludes_nothing_and_service_hours_bound_the_counted_seconds() {
        let decls = [decl(60, 120, 0)];
        let w = WindowInput { declarations: &decls, cancelled: true };
        let f = window_figures(&[w], None, &always(), at(0), at(24 * 60)).remove(0);
        assert_eq!((f.counted.len(), f.counted_ms, f.in_service_hours), (0, 0, true));
        // Office hours 09:00-17:00: a window 08:00-10:00 counts 1 h in them; one at night none.
        let office = calendar("UTC", &["mon-fri 09:00-17:00"], &[]);
        let decls = [decl(8 * 60, 10 * 60, 0), decl(20 * 60, 22 * 60, 0)];
        let windows = [
            WindowInput { declarations: &decls[..1], cancelled: false },
            WindowInput { declarations: &decls[1..], cancelled: false },
        ];
        let f = window_figures(&windows, None, &office, at(0), at(24 * 60));
        assert_eq!((f[0].counted_ms, f[0].in_service_hours), (HOUR, true));
        assert_eq!((f[1].counted_ms, f[1].in_service_hours), (0, false));
    }
}
