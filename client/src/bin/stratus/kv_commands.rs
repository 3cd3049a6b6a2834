//! `stratus kv ...`: runs one key-value command against the cluster and writes its
//! result. Data goes to `out` (stdout); answers that are "no" (absent key, failed
//! compare) are returned as [`Verdict::Negative`] with a message for stderr.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use stratus_client::Client;

use crate::cli::{CasArgs, KvCommand};
use crate::escape::escape_bytes;

/// How a command that ran without error turned out.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It did what was asked.
    Done,
    /// The cluster answered "no" (key absent, compare failed); the message explains.
    Negative(String),
}

pub async fn run(
    client: &Client,
    command: KvCommand,
    out: &mut impl Write,
) -> anyhow::Result<Verdict> {
    match command {
        KvCommand::Put { key, value, file } => {
            let value = match (value, file) {
                (Some(value), _) => value.into_bytes(),
                (None, Some(path)) => read_value_file(&path)?,
                (None, None) => anyhow::bail!("put needs a VALUE or --file PATH"),
            };
            let version = client.put(&key, &value).await?;
            writeln!(out, "{version}")?;
            Ok(Verdict::Done)
        }
        KvCommand::Get { key } => match client.get(&key).await? {
            Some((value, _version)) => {
                out.write_all(&value)?;
                Ok(Verdict::Done)
            }
            None => Ok(Verdict::Negative(format!(
                "key not found: {}",
                escape_bytes(key.as_bytes())
            ))),
        },
        KvCommand::Del { key } => {
            let existed = client.delete(&key).await?;
            writeln!(
                out,
                "{}",
                if existed {
                    "deleted"
                } else {
                    "not found (nothing deleted)"
                }
            )?;
            Ok(Verdict::Done)
        }
        KvCommand::Cas(args) => run_cas(client, args, out).await,
        KvCommand::Scan {
            prefix,
            limit,
            start_after,
        } => {
            let max_entries = usize::try_from(limit).unwrap_or(usize::MAX);
            let (entries, more) = client
                .scan_up_to(
                    &prefix,
                    start_after.as_deref().map(str::as_bytes),
                    max_entries,
                )
                .await?;
            for entry in &entries {
                writeln!(
                    out,
                    "{}\t{}",
                    escape_bytes(&entry.key),
                    escape_bytes(&entry.value)
                )?;
            }
            if more {
                if let Some(last) = entries.last() {
                    eprintln!(
                        "stratus: more keys match; continue with --start-after {}",
                        escape_bytes(&last.key)
                    );
                }
            }
            Ok(Verdict::Done)
        }
    }
}

async fn run_cas(client: &Client, args: CasArgs, out: &mut impl Write) -> anyhow::Result<Verdict> {
    let outcome = client
        .compare_and_set(&args.key, args.expected.bytes(), args.replacement.bytes())
        .await?;
    if outcome.succeeded {
        match outcome.current {
            Some((_, version)) => writeln!(out, "ok: version {version}")?,
            None => writeln!(out, "ok: deleted")?,
        }
        return Ok(Verdict::Done);
    }
    let reason = match outcome.current {
        Some((value, version)) => format!(
            "current value is {:?} (version {version})",
            escape_bytes(&value)
        ),
        None => "key is absent".to_string(),
    };
    Ok(Verdict::Negative(format!("compare failed: {reason}")))
}

/// The contents of `path`, or of standard input for `-`.
fn read_value_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut value = Vec::new();
        std::io::stdin()
            .read_to_end(&mut value)
            .context("reading the value from standard input")?;
        return Ok(value);
    }
    std::fs::read(path).with_context(|| format!("reading the value from {}", path.display()))
}
