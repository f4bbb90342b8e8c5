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
    /// Check, rebuild, back up or restore the database in data_dir (SPEC §15).
    #[command(subcommand)]
    Db(DbCommand),
    /// Declare, list, end or cancel maintenance windows on a running collector (SPEC §11),
    /// e.g. from a deploy pipeline. Prints the collector's JSON answer; exits 1 when the
    /// collector refuses (its message on stderr), 2 when nothing could be sent.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
}

/// Where the collector is, for the `maintenance` subcommands.
#[derive(clap::Args)]
struct MaintenanceTarget {
    /// The collector's base URL, e.g. https://collector.example.com:7878.
    #[arg(long)]
    url: String,
    /// A file holding an API token: an operator's or manager's for writes, scoped to the
    /// services named (a reader's is enough for list).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// An extra root certificate (PEM) for a collector with a private CA.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum MaintenanceCommand {
    /// Declare a window: POST /api/v1/maintenance (declared_by is the token's id).
    Add {
        /// A service the window covers (repeatable).
        #[arg(long = "service", required = true)]
        services: Vec<String>,
        /// When it starts: RFC 3339, `now`, or `+DURATION` from now (`+10m`).
        #[arg(long)]
        start: String,
        /// When it ends: RFC 3339, `now`, or `+DURATION` from now (`+2h`).
        #[arg(long)]
        end: String,
        /// What the maintenance is for.
        #[arg(long)]
        reason: String,
        /// The change ticket.
        #[arg(long)]
        ticket: Option<String>,
        /// The window's id; left out, the collector makes one.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        target: MaintenanceTarget,
    },
    /// List windows: GET /api/v1/maintenance.
    List {
        /// Only windows covering this service.
        #[arg(long)]
        service: Option<String>,
        /// Only windows ending after this instant (RFC 3339, now, +DURATION).
        #[arg(long)]
        from: Option<String>,
        /// Only windows starting before this instant (RFC 3339, now, +DURATION).
        #[arg(long)]
        to: Option<String>,
        /// Cancelled windows too.
        #[arg(long)]
        include_cancelled: bool,
        #[command(flatten)]
        target: MaintenanceTarget,
    },
    /// Give a window a new end: PATCH /api/v1/maintenance/ID (`--end now` ends it now).
    End {
        /// The window's id.
        id: String,
        /// The new end: RFC 3339, `now`, or `+DURATION` from now. Default: now.
        #[arg(long, default_value = "now")]
        end: String,
        #[command(flatten)]
        target: MaintenanceTarget,
    },
    /// Cancel a window (kept, excluding nothing): DELETE /api/v1/maintenance/ID.
    Cancel {
        /// The window's id.
        id: String,
        #[command(flatten)]
        target: MaintenanceTarget,
    },
}

/// The config file that names data_dir, for the `db` subcommands.
#[derive(clap::Args)]
struct DbConfig {
    /// Collector configuration file; its [server] data_dir is the database's directory
    /// (a relative data_dir is taken from the current directory, as the collector does).
    #[arg(long, short, default_value = "probity-collector.toml")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Verify the database: every record, derived data against raw results, the ledger.
    ///
    /// Reads every stored record back (checksums where records carry them), derives runs,
    /// minute histograms, hour rollups and the latest result of every probe and agent
    /// again from the raw results and compares them with what is stored, and checks that
    /// the database holds every result the acknowledged ledger (data_dir/ledger) says was
    /// answered 200. Each difference is printed on its own line naming the tree, probe,
    /// agent and hour; when all agrees, one summary line (records checked, results, time).
    ///
    /// Safe at any time. While the collector runs it does the check itself, asked through
    /// data_dir/admin.sock (run this as the collector's user); ingest goes on, one agent
    /// waiting while its own results are compared. With no collector running this opens
    /// the database as the collector would, including the recovery after an unclean stop.
    ///
    /// Exit codes: 0 everything agrees; 1 something is damaged or differs (printed);
    /// 2 the check could not run (config, permissions, a collector that does not answer).
    Check(DbConfig),
    /// Derive every derived record again from the raw results.
    ///
    /// Rewrites view runs, minute histograms, hour and day rollups and the latest result
    /// of every probe and agent from the raw results, as ingest and the rollup job would
    /// have written them, and removes derived records no raw result accounts for. Raw
    /// results, seq state and history records are not touched; what lies before the
    /// oldest raw result kept (past raw_retention) is left as it is. Run it when db check
    /// reports differences, then run db check again.
    ///
    /// Safe only with the collector stopped: it refuses to run while one holds data_dir.
    ///
    /// Exit codes: 0 rebuilt; 1 the database cannot be read (restore a backup);
    /// 2 it could not run (a collector running, config, permissions).
    Rebuild(DbConfig),
    /// Write a consistent copy of the database (and its ledger) to DEST.
    ///
    /// The copy holds every tree of the database; each agent's raw results and seq state
    /// are copied together under that agent's ingest lock, so the backup holds exactly the
    /// results its own ledger claims. It is written to DEST.partial, read back and checked
    /// (sha256 over the whole file), then renamed to DEST; an existing DEST is never
    /// overwritten. The evidence signing key is not in it: back that up once, separately.
    ///
    /// Safe while the collector runs and ingests: it is then made by the running collector,
    /// asked through data_dir/admin.sock (run this as the collector's user). With no
    /// collector running it opens the database itself.
    ///
    /// Exit codes: 0 written and checked; 1 the database cannot be read; 2 it could not
    /// run (DEST exists or cannot be written, config, permissions).
    Backup {
        /// The file to write (must not exist), e.g. /var/backups/probity/collector-2026-12-02.backup.
        dest: PathBuf,
        #[command(flatten)]
        config: DbConfig,
    },
    /// Replace the database with the backup SRC.
    ///
    /// Checks SRC whole (a damaged or truncated backup is refused and nothing changes),
    /// loads it into data_dir/db.restoring, derives all derived data again from its raw
    /// results, then moves the current database aside (data_dir/db.replaced-TIME, kept
    /// until you remove it) and puts the restored one in its place. The data_dir's ledger
    /// is kept and joined with the backup's: if the collector acknowledged results after
    /// the backup was made, they are listed, and the next start refuses until you accept
    /// that loss (--accept-loss) or restore a newer backup. Into an empty data_dir the
    /// restored database starts as it is.
    ///
    /// Safe only with the collector stopped: it refuses to run while one holds data_dir.
    ///
    /// Exit codes: 0 restored (warnings printed); 1 SRC is damaged or of another schema;
    /// 2 it could not run (a collector running, SRC unreadable, config, permissions).
    Restore {
        /// The backup file written by db backup.
        src: PathBuf,
        #[command(flatten)]
        config: DbConfig,
    },
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
        Some(Command::Db(command)) => db(command),
        Some(Command::Maintenance(command)) => maintenance(command),
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

fn db(command: DbCommand) -> ExitCode {
    use probity_collector::db;
    let config = match &command {
        DbCommand::Check(c) | DbCommand::Rebuild(c) => &c.config,
        DbCommand::Backup { config, .. } | DbCommand::Restore { config, .. } => &config.config,
    };
    let paths = match probity_config::load_collector_config(config) {
        Ok(c) => db::DbPaths::new(&c.server.data_dir),
        Err(e) => {
            eprintln!("{}", error_chain(&e));
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let done = match &command {
        DbCommand::Check(_) => db::check(&paths, &mut out).map(|ok| if ok { 0 } else { 1 }),
        DbCommand::Rebuild(_) => db::rebuild(&paths, &mut out).map(|()| 0),
        DbCommand::Backup { dest, .. } => db::backup(&paths, dest, &mut out).map(|()| 0),
        DbCommand::Restore { src, .. } => db::restore(&paths, src, &mut out).map(|()| 0),
    };
    match done {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

fn maintenance(command: MaintenanceCommand) -> ExitCode {
    use probity_collector::maintenance::client::{self, Request};
    let now = probity_collector::api::now_ms();
    let resolved = (|| {
        Ok(match &command {
            MaintenanceCommand::Add { services, start, end, reason, ticket, id, target } => {
                let mut body = serde_json::json!({
                    "services": services,
                    "start": client::instant(start, now)?,
                    "end": client::instant(end, now)?,
                    "reason": reason,
                });
                if let Some(t) = ticket {
                    body["ticket"] = t.as_str().into();
                }
                if let Some(i) = id {
                    body["id"] = i.as_str().into();
                }
                (target, Request::Add { body })
            }
            MaintenanceCommand::List { service, from, to, include_cancelled, target } => {
                let mut query = Vec::new();
                if let Some(s) = service {
                    query.push(("service".to_string(), s.clone()));
                }
                for (key, value) in [("from", from), ("to", to)] {
                    if let Some(v) = value {
                        query.push((key.to_string(), client::instant(v, now)?));
                    }
                }
                if *include_cancelled {
                    query.push(("include_cancelled".to_string(), "true".to_string()));
                }
                (target, Request::List { query })
            }
            MaintenanceCommand::End { id, end, target } => {
                (target, Request::End { id: id.clone(), end: client::instant(end, now)? })
            }
            MaintenanceCommand::Cancel { id, target } => (target, Request::Cancel { id: id.clone() }),
        })
    })();
    let done = resolved.and_then(|(t, request)| {
        let target = client::Target { url: &t.url, token_file: t.token_file.as_deref(), ca_file: t.ca_file.as_deref() };
        client::run(&target, &request)
    });
    match done {
        Ok(answer) => {
            println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn serve(config: &std::path::Path, accept_loss: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    // Before the runtime starts its threads, so that they all leave the signals to it.
    let termination =
        probity_collector::serve::Termination::listen().context("cannot listen for SIGTERM and SIGINT")?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let served = runtime.block_on(probity_collector::serve::run(config, accept_loss, termination));
    // A blocking task stuck on a wedged disk must not hold the exit (SPEC §15: SIGTERM ends
    // the process within 10 s); `serve` has flushed what it could.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    Ok(served?)
}
