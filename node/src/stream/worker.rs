//! The per-node stream worker. On the data groups this node leads it trims records past
//! their stream's retention and drops the logs of streams that are gone (deleted, or
//! recreated under a new incarnation); on the meta group, when this node leads it, it
//! finishes reshard plans whose runner stopped half way (a node died between closing a
//! parent's log and recording the step, or an UpdateShardCount's background task ended).
//!
//! Every action is a Raft command of bounded size, idempotent, and taken only on what a
//! linearizable read of the catalog says: a log is dropped only when the catalog answered
//! that its incarnation is gone, never on an error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::catalog_state::{PendingReshard, StreamCatalogQuery, StreamCatalogReply};
use super::log::{LogSummary, ShardLogId};
use super::model::{Incarnation, StreamError, StreamName};
use super::service::{now_ms, ServiceError, StreamService};
use super::state::{StreamCommand, StreamQuery, StreamQueryReply, StreamReply};
use crate::cluster::META_GROUP;
use crate::data_group::{DataCommand, DataQuery};
use crate::meta::{MetaQuery, MetaReply};
use crate::raft::codec;
use crate::raft::host::GroupHost;
use crate::raft::router::Router;
use crate::raft::GroupId;

/// A reshard that recorded no step for this long is finished by the worker.
const STALLED_RESHARD_MS: u64 = 10_000;
/// Logs read per listing query.
const LOG_PAGE: u32 = 500;

pub struct StreamWorker {
    service: Arc<StreamService>,
    router: Arc<Router>,
    host: Arc<GroupHost>,
    interval: Duration,
}

/// What the catalog says of a log's stream.
enum Fate {
    Keep { retention_ms: u64 },
    Drop,
}

impl StreamWorker {
    pub fn new(
        service: Arc<StreamService>,
        router: Arc<Router>,
        host: Arc<GroupHost>,
        interval: Duration,
    ) -> Self {
        StreamWorker {
            service,
            router,
            host,
            interval,
        }
    }

    pub fn spawn(self, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            for handle in self.host.groups() {
                if handle.metrics().current_leader != Some(self.host.node_id()) {
                    continue;
                }
                let result = if handle.id == META_GROUP {
                    self.finish_stalled_reshards().await
                } else if handle.kind == "data" {
                    self.tend_logs(handle.id).await
                } else {
                    Ok(())
                };
                if let Err(e) = result {
                    tracing::debug!("stream upkeep of group {} deferred: {e}", handle.id);
                }
            }
        }
    }

    async fn finish_stalled_reshards(&self) -> Result<(), ServiceError> {
        let bytes = self
            .router
            .read(
                META_GROUP,
                codec::encode(&MetaQuery::StreamCatalog(StreamCatalogQuery::Reshards)),
            )
            .await?;
        let pending: Vec<PendingReshard> = match codec::decode::<MetaReply>(&bytes) {
            Ok(MetaReply::StreamCatalog(Ok(StreamCatalogReply::Reshards(p)))) => p,
            other => {
                return Err(ServiceError::Internal(format!(
                    "unexpected reshard listing: {other:?}"
                )))
            }
        };
        let now = now_ms();
        for p in pending {
            if now.saturating_sub(p.updated_ms) < STALLED_RESHARD_MS {
                continue;
            }
            let record = match self.service.stream(&p.name).await {
                Ok(r) if r.incarnation == p.incarnation => r,
                Ok(_) | Err(ServiceError::Stream(StreamError::StreamNotFound(_))) => continue,
                Err(e) => return Err(e),
            };
            tracing::info!(stream = %p.name, "finishing a stalled reshard");
            self.service.finish_reshard(record).await?;
        }
        Ok(())
    }

    async fn logs(
        &self,
        group: GroupId,
        after: Option<ShardLogId>,
    ) -> Result<Vec<LogSummary>, ServiceError> {
        let query = DataQuery::Stream(StreamQuery::Logs {
            after,
            limit: LOG_PAGE,
        });
        let bytes = self.router.read(group, codec::encode(&query)).await?;
        match codec::decode(&bytes).map_err(ServiceError::Internal)? {
            StreamQueryReply::Logs(logs) => Ok(logs),
            other => Err(ServiceError::Internal(format!(
                "unexpected log listing: {other:?}"
            ))),
        }
    }

    async fn command(
        &self,
        group: GroupId,
        command: StreamCommand,
    ) -> Result<StreamReply, ServiceError> {
        let envelope = codec::encode(&DataCommand::Stream(Box::new(command)));
        let bytes = self.router.write(group, envelope).await?;
        codec::decode(&bytes).map_err(ServiceError::Internal)
    }

    async fn fate(
        &self,
        cache: &mut HashMap<StreamName, Option<(Incarnation, u64)>>,
        log: &ShardLogId,
    ) -> Result<Fate, ServiceError> {
        if !cache.contains_key(&log.stream) {
            let entry = match self.service.stream(&log.stream).await {
                Ok(r) => Some((
                    r.incarnation,
                    self.service.settings().retention_ms(r.retention_hours),
                )),
                Err(ServiceError::Stream(StreamError::StreamNotFound(_))) => None,
                Err(e) => return Err(e),
            };
            cache.insert(log.stream.clone(), entry);
        }
        Ok(match cache.get(&log.stream).copied().flatten() {
            Some((incarnation, retention_ms)) if incarnation == log.incarnation => {
                Fate::Keep { retention_ms }
            }
            _ => Fate::Drop,
        })
    }

    /// Trim and drop the logs of one data group this node leads.
    async fn tend_logs(&self, group: GroupId) -> Result<(), ServiceError> {
        let mut cache = HashMap::new();
        let mut after = None;
        loop {
            let logs = self.logs(group, after.clone()).await?;
            let Some(last) = logs.last() else {
                return Ok(());
            };
            after = Some(last.id.clone());
            let full_page = logs.len() == LOG_PAGE as usize;
            for summary in logs {
                let log = summary.id.clone();
                match self.fate(&mut cache, &log).await? {
                    // One command each: a range delete removes the records, however many.
                    Fate::Drop => {
                        self.command(group, StreamCommand::Drop { log: log.clone() })
                            .await?;
                    }
                    Fate::Keep { retention_ms } => {
                        let before_ms = now_ms().saturating_sub(retention_ms);
                        if summary.oldest_arrival_ms.is_none_or(|t| t >= before_ms) {
                            continue;
                        }
                        self.command(
                            group,
                            StreamCommand::Trim {
                                log: log.clone(),
                                before_ms,
                            },
                        )
                        .await?;
                    }
                }
            }
            if !full_page {
                return Ok(());
            }
        }
    }
}
