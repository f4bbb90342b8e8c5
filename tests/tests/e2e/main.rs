//! probity's end-to-end test binary: one binary, one module per area.

mod cli;
mod clock;
mod dashboard;
mod disk;
mod evidence;
mod files;
mod history;
mod install;
mod maintenance;
mod metrics;
mod probing;
mod reports;
mod storage;
mod tidy;
mod tls;
