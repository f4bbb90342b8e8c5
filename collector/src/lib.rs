//! `probity-collector` as a library: the pieces the binary wires together, exposed so
//! that tests and benchmarks drive them directly.

pub mod agents;
pub mod api;
pub mod availability;
pub mod cli;
pub mod commit;
pub mod connections;
pub mod db;
pub mod disk;
pub mod embedded;
pub mod evidence;
pub mod history;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod ledger;
pub mod maintenance;
pub mod metrics;
pub mod period;
pub mod reload;
pub mod report;
pub mod runs;
pub mod serve;
pub mod sources;
pub mod state;
pub mod store;
pub mod views;

pub use api::app;
pub use state::AppState;
