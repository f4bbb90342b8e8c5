//! The `probity-agent` binary: argument parsing and dispatch, nothing more.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// probity agent: pulls its probe assignment from the collector, runs every probe on
/// schedule, and delivers each result durably (it keeps probing from its cache and
/// spools results while the collector is away).
#[derive(Parser)]
#[command(name = "probity-agent", version, about, long_about = None)]
struct Args {
    /// Agent configuration file.
    #[arg(long, short, default_value = "probity-agent.toml")]
    config: PathBuf,
    /// Log filter, e.g. `info`, `debug`; `RUST_LOG` is used when unset.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate an agent config: print every error (exit 1) or a one-line summary (exit 0).
    CheckConfig {
        /// The config file to check.
        file: PathBuf,
    },
    /// Run one ad-hoc probe and print its outcome and phase timings (exit 0 up, 1 down).
    Probe {
        /// `https://host/path`, `tcp://HOST:PORT`, `dns://NAME[/TYPE][@SERVER]` or `tls://HOST:PORT`.
        target: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_level.as_deref());
    match args.command {
        Some(Command::CheckConfig { file }) => match probity_config::load_agent_config(&file) {
            Ok(c) => {
                println!(
                    "ok: agent {} reports to {}, spool {} (max {} bytes)",
                    c.id,
                    c.collector,
                    c.spool_dir.display(),
                    c.spool_max
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Probe { target }) => {
            eprintln!("error: ad-hoc probes are not built yet ({target})");
            ExitCode::from(2)
        }
        None => {
            eprintln!("error: the agent run loop is not built yet (config {})", args.config.display());
            ExitCode::from(2)
        }
    }
}

fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
