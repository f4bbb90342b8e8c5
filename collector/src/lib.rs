//! `probity-collector` as a library: the pieces the binary wires together, exposed so
//! that tests and benchmarks drive them directly.

pub mod availability;
pub mod cli;
pub mod keys;
pub mod period;
pub mod runs;
pub mod store;
