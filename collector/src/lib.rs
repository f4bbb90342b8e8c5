//! `probity-collector` as a library: the pieces the binary wires together, exposed so
//! that tests and benchmarks drive them directly.

pub mod availability;
pub mod cli;
pub mod evidence;
pub mod period;
pub mod report;
pub mod runs;
