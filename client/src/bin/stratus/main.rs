//! `stratus`: the command-line client. Parses arguments (clap), runs one command through
//! `stratus_client::Client`, and turns the result into output and an exit code:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | the answer is "no": `kv get` / `db get` of an absent key, `kv cas` whose compare failed |
//! | 2 | bad command line (from clap) |
//! | 3 | the request failed and was not applied |
//! | 4 | a write's outcome is unknown: it may or may not have been applied |

mod cli;
mod cluster_view;
mod db_commands;
mod escape;
mod kv_commands;
mod table;
mod volume_commands;

use std::io::{ErrorKind, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stratus_client::quorum::{QuorumError, VolumeCatalog};
use stratus_client::{Client, ClientConfig};

use crate::cli::{Cli, ClusterCommand, Command};
use crate::kv_commands::Verdict;

const EXIT_NEGATIVE: u8 = 1;
const EXIT_FAILED: u8 = 3;
const EXIT_OUTCOME_UNKNOWN: u8 = 4;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("stratus: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Verdict::Done) => ExitCode::SUCCESS,
        Ok(Verdict::Negative(message)) => {
            eprintln!("stratus: {message}");
            ExitCode::from(EXIT_NEGATIVE)
        }
        Err(err) => exit_for_error(&err),
    }
}

async fn run(cli: Cli) -> anyhow::Result<Verdict> {
    let config =
        ClientConfig::new(cli.endpoint.0).with_call_timeout(Duration::from_millis(cli.timeout_ms));
    let client = Client::with_config(config).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let verdict = match cli.command {
        Command::Cluster(ClusterCommand::Status { json }) => {
            let status = client.cluster_status().await?;
            let text = if json {
                cluster_view::render_json(&status)?
            } else {
                cluster_view::render_tables(&status)
            };
            out.write_all(text.as_bytes())?;
            Verdict::Done
        }
        Command::Kv(command) => kv_commands::run(&client, command, &mut out).await?,
        Command::Volume(command) => {
            let catalog = VolumeCatalog::connect(client.config().clone()).await?;
            volume_commands::run(&catalog, command, &mut out).await?
        }
        Command::Db(args) => db_commands::run(client.config().clone(), args, &mut out).await?,
    };
    out.flush()?;
    Ok(verdict)
}

/// Prints `err` as one line and picks the exit code. A closed stdout (`stratus ... | head`)
/// is not an error worth a message.
fn exit_for_error(err: &anyhow::Error) -> ExitCode {
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        if io.kind() == ErrorKind::BrokenPipe {
            return ExitCode::SUCCESS;
        }
    }
    eprintln!("stratus: {err:#}");
    if let Some(quorum_err) = err.downcast_ref::<QuorumError>() {
        return match quorum_err {
            e if e.is_outcome_unknown() => ExitCode::from(EXIT_OUTCOME_UNKNOWN),
            QuorumError::Client(stratus_client::Error::Transport(_)) => {
                eprintln!("stratus: hint: no node was reachable; is the cluster running?");
                ExitCode::from(EXIT_FAILED)
            }
            _ => ExitCode::from(EXIT_FAILED),
        };
    }
    match err.downcast_ref::<stratus_client::Error>() {
        Some(client_err) if client_err.is_outcome_unknown() => ExitCode::from(EXIT_OUTCOME_UNKNOWN),
        Some(stratus_client::Error::Transport(_)) => {
            eprintln!(
                "stratus: hint: no node was reachable; is the cluster running (`stratusd dev`), \
                 and does --endpoint / STRATUS_ENDPOINT point at it?"
            );
            ExitCode::from(EXIT_FAILED)
        }
        _ => ExitCode::from(EXIT_FAILED),
    }
}
