//! The availability arithmetic of SPEC §7: agent view runs, calendars and maintenance in,
//! exact figures out. Pure: no I/O, no clock.
