//! `stratus-jepsen`: checks a recorded history offline.
//!
//! `stratus-jepsen check --history FILE --model register|set` reads a JSON-lines history
//! (as written by `History::save`), prints the verdict and exits 0 when valid, 1 when
//! invalid and 2 when unknown (search budget exhausted) or on any error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use stratus_jepsen::checker::linearizable::{self, CheckOptions, DEFAULT_MAX_STEPS};
use stratus_jepsen::checker::{set, Validity};
use stratus_jepsen::history::History;

#[derive(Parser)]
#[command(
    name = "stratus-jepsen",
    version,
    about = "Jepsen-style checks for Stratus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a recorded history against a model.
    Check(CheckArgs),
}

#[derive(Args)]
struct CheckArgs {
    /// JSON-lines history file.
    #[arg(long)]
    history: PathBuf,
    /// What the operations act on.
    #[arg(long, value_enum)]
    model: ModelKind,
    /// Register model: give up (exit 2) after this many search steps per key.
    #[arg(long, default_value_t = DEFAULT_MAX_STEPS)]
    max_steps: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelKind {
    /// Read/write/compare-and-set registers, each key checked for linearizability.
    Register,
    /// Unique adds and a final read of one set.
    Set,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check(&args),
    };
    match result {
        Ok(Validity::Valid) => ExitCode::SUCCESS,
        Ok(Validity::Invalid) => ExitCode::from(1),
        Ok(Validity::Unknown) => ExitCode::from(2),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<Validity> {
    let history = History::load(&args.history)
        .with_context(|| format!("reading history {}", args.history.display()))?;
    let validity = match args.model {
        ModelKind::Register => {
            let options = CheckOptions {
                max_steps: args.max_steps,
                ..CheckOptions::default()
            };
            let report = linearizable::check_keys(&history, &options)?;
            print!("{report}");
            report.validity()
        }
        ModelKind::Set => {
            let report = set::check(&history)?;
            print!("{report}");
            report.validity()
        }
    };
    println!("{validity}");
    Ok(validity)
}
