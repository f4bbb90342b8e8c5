//! The `probity-agent` binary: argument parsing and dispatch, nothing more.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use probity_agent::logging::LogFormat;
use probity_config::error_chain;

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
    /// Log lines as text (coloured only on a terminal) or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: LogFormat,
    /// Serve Prometheus self-metrics on this address, e.g. `127.0.0.1:9464`.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate an agent config and read what it names (token_file, ca_file): print every
    /// error (exit 1) or a one-line summary (exit 0).
    CheckConfig {
        /// The config file to check.
        file: PathBuf,
    },
    /// Run one ad-hoc probe and print its outcome, phase timings and what came back
    /// (DNS answers, HTTP status, the certificate chain); exit 0 up, 1 down.
    Probe {
        /// `https://host/path`, `tcp://HOST:PORT`, `dns://NAME[/TYPE][@SERVER]`,
        /// `tls://HOST:PORT`, `icmp://HOST` or `grpc://HOST:PORT`.
        target: String,
        /// Give up after this long (`500ms`, `10s`).
        #[arg(long, default_value = "10s")]
        timeout: String,
        #[command(flatten)]
        flags: Box<probity_agent::adhoc::ProbeFlags>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The spool, its cached assignment and anything else the agent writes: 0600 / 0700.
    probity_agent::hardening::private_umask();
    if let Err(e) = probity_agent::logging::init(args.log_level.as_deref(), args.log_format) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match args.command {
        Some(Command::CheckConfig { file }) => match check_config(&file) {
            Ok(c) => {
                for warning in probity_agent::hardening::warnings(&c) {
                    eprintln!("warning: {warning}");
                }
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
                eprintln!("{}", error_chain(e.as_ref()));
                ExitCode::FAILURE
            }
        },
        Some(Command::Probe { target, timeout, flags }) => match probe(&target, &timeout, &flags) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        None => match run(&args.config, args.metrics_listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // Once, through the log, so that a JSON log stays JSON.
                tracing::error!("{}", error_chain(e.as_ref()));
                ExitCode::FAILURE
            }
        },
    }
}

/// The config, and what the agent reads at start besides it: the token file and ca_file.
fn check_config(file: &std::path::Path) -> anyhow::Result<probity_config::AgentConfig> {
    let config = probity_config::load_agent_config(file)?;
    probity_agent::client::Collector::new(&config, probity_agent::Compression::default())?;
    Ok(config)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// One ad-hoc probe; `Ok(true)` when the target is up.
fn probe(target: &str, timeout: &str, flags: &probity_agent::adhoc::ProbeFlags) -> anyhow::Result<bool> {
    let spec = probity_agent::adhoc::parse_target(target).map_err(anyhow::Error::msg)?;
    let spec = probity_agent::adhoc::apply(spec, flags).map_err(anyhow::Error::msg)?;
    let timeout = probity_config::units::parse_duration(timeout).map_err(anyhow::Error::msg).context("--timeout")?;
    probity_agent::probe::arm_receive_stamps();
    let outcome = runtime()?.block_on(probity_agent::probe::run_spec(&spec, timeout));
    print!("{}", probity_agent::adhoc::render_with(&spec, &outcome, flags.verbose));
    Ok(outcome.is_up())
}

fn run(config: &std::path::Path, metrics_listen: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let config = probity_config::load_agent_config(config)?;
    let options = probity_agent::RunOptions { metrics_listen, ..Default::default() };
    runtime()?.block_on(async move {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM can be handled");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                _ = term.recv() => tracing::info!("SIGTERM received"),
            }
        };
        Ok(probity_agent::run(config, options, shutdown).await?)
    })
}
