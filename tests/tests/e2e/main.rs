//! probity's end-to-end test binary: one binary, one module per area.

mod cli;
mod tidy;
