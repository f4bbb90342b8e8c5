//! The `probity-collector` binary: argument parsing and dispatch, nothing more.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use probity_agent::logging::LogFormat;
use probity_collector::cli;
use probity_config::error_chain;

/// probity collector: ingests probe results from agents, computes availability within
/// agreed service hours, and reports compliance against SLAs, OLAs and underpinning contracts.
#[derive(Parser)]
#[command(name = "probity-collector", version, about, long_about = None)]
struct Args {
    /// Collector configuration file (serve mode).
    #[arg(long, short, default_value = "probity-collector.toml", global = false)]
    config: PathBuf,
    /// Start even if the database holds less than the collector acknowledged (its ledger
    /// says so: a damaged, emptied or older database), recording the missing results as
    /// lost; without it such a database is refused.
    #[arg(long)]
    accept_loss: bool,
    /// Log filter, e.g. `info`, `debug`, `probity_collector=trace`; `RUST_LOG` is used when unset.
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Log lines as text (coloured only on a terminal) or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a collector config: print every error (exit 1), or a summary and the
    /// structural gaps between agreements as warnings (exit 0).
    CheckConfig {
        /// The config file to check.
        file: PathBuf,
    },
    /// Print a fresh agent token (32 random bytes) and the [[agents]] entry holding its sha256.
    NewAgent {
        /// The agent's id, e.g. `lon-1` ([a-z0-9][a-z0-9_-]{0,62}).
        id: String,
    },
    /// Print a fresh API token and the [[api.tokens]] entry holding its sha256. Roles:
    /// reader (the read API), operator (reader + maintenance writes), manager (operator +
    /// restating closed periods). Once any token is configured every read endpoint needs one.
    NewToken {
        /// The token's id, shown as `by` in revisions and in logs, e.g. `acme-review`.
        id: String,
        /// reader, operator or manager.
        #[arg(long)]
        role: String,
        /// Limit the token to these agreements (repeatable).
        #[arg(long = "agreement")]
        agreements: Vec<String>,
        /// Limit the token to these services (repeatable).
        #[arg(long = "service")]
        services: Vec<String>,
    },
    /// Evidence bundles for underpinning-contract reviews.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Print the API's OpenAPI 3.1 document (what GET /api/v1/openapi.json answers).
    Openapi,
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Check a bundle offline: signature, every file's sha256, nothing missing or added.
    /// Exits 1 naming the first file that fails.
    Verify {
        /// The bundle (.zip) to verify.
        bundle: PathBuf,
        /// Pin the signer: the public key as hex, or a file holding it.
        #[arg(long)]
        public_key: Option<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The database, the signing key and everything else the collector writes: 0600 / 0700.
    probity_agent::hardening::private_umask();
    if let Err(e) = probity_agent::logging::init(args.log_level.as_deref(), args.log_format) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match args.command {
        Some(Command::CheckConfig { file }) => match cli::check_config(&file) {
            Ok(summary) => {
                print!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}", error_chain(&e));
                ExitCode::FAILURE
            }
        },
        Some(Command::NewAgent { id }) => match cli::new_agent(&id) {
            Ok(a) => {
                println!("# token for agent \"{id}\": put it in the agent's token_file (shown only once)");
                println!("{}", a.token);
                println!();
                println!("# add this to the collector config and reload it (SIGHUP):");
                print!("{}", a.entry);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::NewToken { id, role, agreements, services }) => {
            match cli::new_token(&id, &role, &agreements, &services) {
                Ok(t) => {
                    println!("# API token \"{id}\": give it to its holder (shown only once)");
                    println!("{}", t.token);
                    println!();
                    println!("# add this to the collector config and reload it (SIGHUP):");
                    print!("{}", t.entry);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Evidence(EvidenceCommand::Verify { bundle, public_key })) => {
            let (report, ok) = cli::verify_evidence(&bundle, public_key.as_deref());
            print!("{report}");
            if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Some(Command::Openapi) => {
            println!("{}", probity_collector::api::openapi::document_json());
            ExitCode::SUCCESS
        }
        None => match serve(&args.config, args.accept_loss) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // Once, through the log, so that a JSON log stays JSON.
                tracing::error!("{}", error_chain(e.as_ref()));
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(config: &std::path::Path, accept_loss: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    Ok(runtime.block_on(probity_collector::serve::run(config, accept_loss))?)
}
