//! `stratus volume ...`: the quorum-storage volume catalog (create, list, describe,
//! delete), printed as tables.

use std::io::Write;

use stratus_client::quorum::{Volume, VolumeCatalog, VolumeSpec};

use crate::cli::VolumeCommand;
use crate::kv_commands::Verdict;
use crate::table;

pub async fn run(
    catalog: &VolumeCatalog,
    command: VolumeCommand,
    out: &mut impl Write,
) -> anyhow::Result<Verdict> {
    match command {
        VolumeCommand::Create {
            name,
            pgs,
            pages_per_pg,
        } => {
            let spec = VolumeSpec {
                pg_count: pgs.unwrap_or(0),
                pages_per_pg: pages_per_pg.unwrap_or(0),
            };
            let volume = catalog.create(&name, spec).await?;
            writeln!(
                out,
                "created volume {} (id {}): {} PGs of {} pages",
                volume.name, volume.volume_id, volume.pg_count, volume.pages_per_pg
            )?;
        }
        VolumeCommand::List => {
            let mut rows = Vec::new();
            for v in catalog.list().await? {
                rows.push(vec![
                    v.name.clone(),
                    v.volume_id.to_string(),
                    v.pg_count.to_string(),
                    v.pages_per_pg.to_string(),
                    v.epoch.to_string(),
                    last_truncation(&v),
                ]);
            }
            let headers = ["NAME", "ID", "PGS", "PAGES/PG", "EPOCH", "TRUNCATED ABOVE"];
            out.write_all(table::render(&headers, &rows).as_bytes())?;
        }
        VolumeCommand::Describe { name } => {
            use stratus_client::quorum::CatalogService;
            let v = catalog.describe(&name).await?;
            writeln!(
                out,
                "volume {} (id {}): {} PGs of {} pages, epoch {}, truncated above {}",
                v.name,
                v.volume_id,
                v.pg_count,
                v.pages_per_pg,
                v.epoch,
                last_truncation(&v)
            )?;
            let mut rows = Vec::new();
            for m in &v.pgs {
                let sets = [("current", &m.members), ("next", &m.next_members)];
                for (set, places) in sets {
                    for p in places.iter() {
                        rows.push(vec![
                            m.pg.to_string(),
                            m.membership_epoch.to_string(),
                            p.slot.to_string(),
                            p.node_id.to_string(),
                            p.zone.clone(),
                            p.grpc_addr.clone(),
                            set.to_string(),
                        ]);
                    }
                }
            }
            let headers = ["PG", "MEMBERSHIP", "SLOT", "NODE", "ZONE", "ADDRESS", "SET"];
            out.write_all(table::render(&headers, &rows).as_bytes())?;
        }
        VolumeCommand::Delete { name } => {
            catalog.delete(&name).await?;
            writeln!(out, "deleted volume {name}")?;
        }
    }
    Ok(Verdict::Done)
}

fn last_truncation(v: &Volume) -> String {
    v.history
        .last()
        .map_or_else(|| "-".to_string(), |t| t.truncated_above.to_string())
}
