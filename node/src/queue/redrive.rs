//! Moving messages between queues: to a dead-letter queue when a receive finds a message
//! over its maxReceiveCount, and out of one with a message move task (StartMessageMoveTask).
//!
//! The source has already marked the message moving (`state`), so it is no longer
//! delivered. The mover then enqueues a copy in the destination under a request id derived
//! from the message and its mark, so a retried enqueue is applied once (the group's
//! request-id window), and finally removes it from the source. A destination that is gone
//! gives the message back to the source. If the mover dies between the steps, the
//! worker on the source group's leader finds the mark (`StalledMoves`) and finishes it.
//!
//! The worker (one per node, acting on the data groups this node leads) also sweeps
//! expired messages and deduplication rows, and drives running move tasks at their rate.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::errors::QueueError;
use super::model::QueueName;
use super::service::{QueueService, ServiceError};
use super::state::{Moving, QueueCommand, QueueQuery, QueueQueryReply, QueueReply};
use crate::cluster::routing::{group_for_queue, stable_hash};
use crate::cluster::Directory;
use crate::raft::router::Router;

/// A move marked this long ago without finishing is taken over by the worker.
const STALLED_AFTER_MS: u64 = 10_000;
/// How often the worker sweeps every queue of the groups this node leads.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Messages a move task takes per second when the task names no rate.
const DEFAULT_MOVE_RATE: u32 = 100;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A move task's handle: names the source queue (CancelMessageMoveTask gives only the
/// handle) and a random task id.
pub fn task_handle(source: &QueueName, id: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("1:{id:016x}:{}", source.as_str()))
}

pub fn task_source(handle: &str) -> Option<QueueName> {
    let raw = URL_SAFE_NO_PAD.decode(handle.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("1"), Some(_), Some(name)) => QueueName::parse(name).ok(),
        _ => None,
    }
}

/// Carries marked messages to their destination.
#[derive(Clone)]
pub struct Mover {
    router: Arc<Router>,
    directory: Arc<Directory>,
}

impl Mover {
    pub fn new(router: Arc<Router>, directory: Arc<Directory>) -> Self {
        Mover { router, directory }
    }

    async fn write(
        &self,
        queue: &QueueName,
        command: QueueCommand,
        request_id: Option<u128>,
    ) -> Result<QueueReply, ServiceError> {
        let group = group_for_queue(queue.as_str(), self.directory.data_groups);
        super::service::propose(&self.router, group, command, request_id).await
    }

    /// Enqueue in the destination, then remove from the source.
    pub async fn complete(&self, m: Moving) -> Result<(), ServiceError> {
        let mut copy = m.message.clone();
        copy.receipt_nonce = 0;
        copy.received_ms = 0;
        if m.task.is_none() {
            // Dead-lettered: remember where from (DeadLetterQueueSourceArn, redrive back);
            // the receive count goes along, as SQS keeps it.
            copy.dead_letter_source = Some(m.queue.clone());
        } else {
            // Redriven out of a dead-letter queue: a fresh start, or the source's
            // maxReceiveCount would send it straight back.
            copy.dead_letter_source = None;
            copy.receive_count = 0;
            copy.first_receive_ms = None;
        }
        let key = format!(
            "move/{}/{}/{}/{}",
            m.queue, m.seq, m.message.message_id, m.message.receipt_nonce
        );
        let request_id = (u128::from(stable_hash(key.as_bytes())) << 64)
            | u128::from(stable_hash(format!("{key}/2").as_bytes()));
        let enqueue = QueueCommand::Enqueue {
            name: m.destination.clone(),
            message: copy,
        };
        match self.write(&m.destination, enqueue, Some(request_id)).await {
            Ok(_) => {
                self.write(
                    &m.queue,
                    QueueCommand::FinishMove {
                        name: m.queue.clone(),
                        seq: m.seq,
                    },
                    None,
                )
                .await?;
            }
            Err(ServiceError::Queue(QueueError::QueueDoesNotExist)) => {
                self.write(
                    &m.queue,
                    QueueCommand::AbortMove {
                        name: m.queue.clone(),
                        seq: m.seq,
                        reason: format!("the destination queue {} does not exist", m.destination),
                    },
                    None,
                )
                .await?;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// Move `moves` in the background (a receive does not wait for its dead letters).
pub fn spawn_moves(mover: Mover, moves: Vec<Moving>) {
    tokio::spawn(async move {
        for m in moves {
            if let Err(e) = mover.complete(m).await {
                tracing::debug!("dead-letter move left for the worker: {e}");
            }
        }
    });
}

/// The per-node queue worker.
pub struct QueueWorker {
    service: Arc<QueueService>,
    host: Arc<crate::raft::host::GroupHost>,
}

impl QueueWorker {
    pub fn new(service: Arc<QueueService>, host: Arc<crate::raft::host::GroupHost>) -> Self {
        QueueWorker { service, host }
    }

    pub fn spawn(self, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_sweep = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            let sweep = last_sweep.elapsed() >= SWEEP_EVERY;
            if sweep {
                last_sweep = tokio::time::Instant::now();
            }
            for handle in self.host.groups() {
                let leads = handle.metrics().current_leader == Some(self.host.node_id());
                if handle.kind != "data" || !leads {
                    continue;
                }
                if let Err(e) = self.tend(handle.id, sweep).await {
                    tracing::debug!("queue upkeep of group {} deferred: {e}", handle.id);
                }
            }
        }
    }

    async fn tend(&self, group: u64, sweep: bool) -> Result<(), ServiceError> {
        let mover = self.service.mover();
        let stalled = QueueQuery::StalledMoves {
            marked_before_ms: now_ms().saturating_sub(STALLED_AFTER_MS),
            limit: 256,
        };
        if let QueueQueryReply::Moves(moves) = self.service.query_in(group, stalled).await? {
            for m in moves {
                mover.complete(m).await?;
            }
        }
        let QueueQueryReply::Maintenance {
            queues,
            running_tasks,
        } = self
            .service
            .query_in(group, QueueQuery::Maintenance)
            .await?
        else {
            return Ok(());
        };
        for (queue, handle, rate) in running_tasks {
            let take = QueueCommand::TakeForMoveTask {
                name: queue,
                handle,
                max: rate.unwrap_or(DEFAULT_MOVE_RATE),
            };
            if let QueueReply::Taken(moves) = self.service.command_in(group, take).await? {
                for m in moves {
                    mover.complete(m).await?;
                }
            }
        }
        if sweep {
            for queue in queues {
                self.service
                    .command_in(group, QueueCommand::Sweep { name: queue })
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_handles_name_their_source() {
        let q = QueueName::parse("dlq-1").unwrap();
        let h = task_handle(&q, 7);
        assert_eq!(task_source(&h), Some(q));
        assert_eq!(task_source("garbage"), None);
        assert_eq!(task_source(""), None);
    }
}
