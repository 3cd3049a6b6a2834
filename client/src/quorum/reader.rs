//! Read replicas: [`VolumeReader`] reads pages with no writer state and no fencing
//! (docs/quorum-storage.md, "Reads").
//!
//! A read asks one segment of the page's PG for the page at the newest point it can serve
//! (its readable point: a VDL a writer told it and its chain covers), at least the
//! reader's last read point. So a reader never goes back in time, and never sees part of
//! a mini-transaction (segments only serve VDLs). It tries the six members in turn, and
//! when none can serve yet (gossip or the writer's heartbeat has not reached them), waits
//! and tries again until the deadline. It does not see commits that are durable but whose
//! VDL has not reached the segments yet: replica reads are eventually consistent, not
//! linearizable.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::catalog::{CatalogService, Volume, VolumeCatalog};
use super::recovery::segment_of;
use super::transport::{GrpcTransport, Outcome, SegmentTransport};
use super::{Lsn, QuorumError};
use crate::ClientConfig;

/// A read replica of one volume.
pub struct VolumeReader {
    catalog: Arc<dyn CatalogService>,
    transport: Arc<dyn SegmentTransport>,
    volume: Mutex<Volume>,
    last_read: AtomicU64,
    next_member: AtomicUsize,
    read_timeout: Duration,
}

impl std::fmt::Debug for VolumeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeReader")
            .field("read_point", &self.read_point())
            .finish()
    }
}

impl VolumeReader {
    /// A reader of `name` on the cluster at `config`'s endpoints.
    pub async fn open(
        config: ClientConfig,
        name: &str,
        read_timeout: Duration,
    ) -> Result<Self, QuorumError> {
        let call_timeout = config.read_attempt_timeout.min(Duration::from_secs(2));
        let catalog = VolumeCatalog::connect(config).await?;
        let transport = Arc::new(GrpcTransport::new(catalog.cluster_name(), call_timeout));
        Self::open_with(Arc::new(catalog), transport, name, read_timeout).await
    }

    pub async fn open_with(
        catalog: Arc<dyn CatalogService>,
        transport: Arc<dyn SegmentTransport>,
        name: &str,
        read_timeout: Duration,
    ) -> Result<Self, QuorumError> {
        let volume = catalog.describe(name).await?;
        Ok(VolumeReader {
            catalog,
            transport,
            volume: Mutex::new(volume),
            last_read: AtomicU64::new(0),
            next_member: AtomicUsize::new(0),
            read_timeout,
        })
    }

    /// The volume as described when the reader opened (or last reloaded it).
    pub fn volume(&self) -> Volume {
        self.volume
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The newest point this reader has read at (reads never go below it).
    pub fn read_point(&self) -> Lsn {
        self.last_read.load(Ordering::Acquire)
    }

    /// Page `page`'s entries (key order) and the point they are as of.
    pub async fn read_page(
        &self,
        page: u64,
    ) -> Result<(Lsn, Vec<(Vec<u8>, Vec<u8>)>), QuorumError> {
        let deadline = Instant::now() + self.read_timeout;
        let mut backoff = Duration::from_millis(20);
        let mut last_problem = String::from("no segment answered");
        let mut rounds = 0u32;
        loop {
            let volume = self.volume();
            let page_count = u64::from(volume.pg_count) * u64::from(volume.pages_per_pg);
            if page >= page_count {
                return Err(QuorumError::InvalidArgument(format!(
                    "page {page} is outside the volume ({page_count} pages)"
                )));
            }
            let pg = (page % u64::from(volume.pg_count)) as u32;
            let places = volume.pg(pg).map(|m| m.all_places()).unwrap_or_default();
            let min_read = self.read_point();
            let start = self.next_member.load(Ordering::Relaxed);
            for i in 0..places.len() {
                let index = (start + i) % places.len();
                let place = &places[index];
                let segment = segment_of(&volume, pg, place);
                match self
                    .transport
                    .read_page(place, segment, page, 0, 0, min_read)
                    .await
                {
                    Ok(reply) if reply.outcome == Outcome::Ok && reply.read_lsn >= min_read => {
                        self.next_member.store(index, Ordering::Relaxed);
                        self.last_read.fetch_max(reply.read_lsn, Ordering::AcqRel);
                        return Ok((reply.read_lsn, reply.entries));
                    }
                    Ok(reply) => {
                        last_problem = format!(
                            "node {}: {:?} at read point {}",
                            place.node_id, reply.outcome, reply.read_lsn
                        )
                    }
                    Err(e) => last_problem = e.to_string(),
                }
            }
            rounds += 1;
            if Instant::now() + backoff >= deadline {
                return Err(QuorumError::Unavailable(format!(
                    "volume {}: no segment of PG {pg} could serve page {page} at or above \
                     LSN {min_read} within {:?} (last: {last_problem})",
                    volume.name, self.read_timeout
                )));
            }
            if rounds.is_multiple_of(4) {
                // The membership may have changed under us.
                if let Ok(fresh) = self.catalog.describe(&volume.name).await {
                    *self.volume.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}
