//! Report periods (`2026-11`, `2026-Q4`, `2026-W47`, `2026`, or `from`/`to`), read in a
//! calendar's zone and clipped to now for a period still running.
