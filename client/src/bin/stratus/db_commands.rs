//! `stratus db ...`: the key-value database on a quorum-storage volume (default `db`,
//! created on first use). `put`, `del` and `mput` open the volume as its writer (a
//! recovery and a new epoch), commit and close; `get` reads through a read replica, or
//! with `--consistent` through a writer at its durable point.

use std::io::Write;
use std::time::Duration;

use stratus_client::quorum::{Db, DbReader, VolumeCatalog, VolumeSpec, WriterOptions};
use stratus_client::ClientConfig;

use crate::cli::{DbArgs, DbCommand};
use crate::escape::escape_bytes;
use crate::kv_commands::Verdict;

pub async fn run(
    config: ClientConfig,
    args: DbArgs,
    out: &mut impl Write,
) -> anyhow::Result<Verdict> {
    let timeout = config.call_timeout;
    let options = WriterOptions {
        commit_timeout: timeout,
        read_timeout: timeout,
        open_timeout: timeout.max(Duration::from_secs(5)),
        ..WriterOptions::default()
    };
    let volume = args.volume;
    match args.command {
        DbCommand::Put { key, value } => {
            let db = Db::open(config, &volume, options).await?;
            let lsn = db.put(key.as_bytes(), value.as_bytes()).await?;
            db.close().await?;
            writeln!(out, "ok: lsn {lsn}")?;
            Ok(Verdict::Done)
        }
        DbCommand::Del { key } => {
            let db = Db::open(config, &volume, options).await?;
            let lsn = db.del(key.as_bytes()).await?;
            db.close().await?;
            writeln!(out, "ok: lsn {lsn}")?;
            Ok(Verdict::Done)
        }
        DbCommand::Mput { pairs } => {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = pairs
                .into_iter()
                .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
                .collect();
            let db = Db::open(config, &volume, options).await?;
            let lsn = db.mput(&pairs).await?;
            db.close().await?;
            writeln!(out, "ok: {} keys, lsn {lsn}", pairs.len())?;
            Ok(Verdict::Done)
        }
        DbCommand::Get { key, consistent } => {
            let value = if consistent {
                let db = Db::open(config, &volume, options).await?;
                let value = db.get(key.as_bytes()).await?;
                db.close().await?;
                value
            } else {
                let catalog = VolumeCatalog::connect(config.clone()).await?;
                catalog.ensure(&volume, VolumeSpec::default()).await?;
                DbReader::open(config, &volume, timeout)
                    .await?
                    .get(key.as_bytes())
                    .await?
            };
            match value {
                Some(value) => {
                    out.write_all(&value)?;
                    Ok(Verdict::Done)
                }
                None => Ok(Verdict::Negative(format!(
                    "key not found: {}",
                    escape_bytes(key.as_bytes())
                ))),
            }
        }
    }
}
