//! Enhanced fan-out subscriptions (SubscribeToShard), wire-agnostic: who may subscribe
//! (`SubscriptionLedger`, Kinesis's "same consumer and shard again within 5 seconds" rule)
//! and what a subscription pushes (`Subscription::next_event`).
//!
//! A subscription polls its shard's log through the service, as GetRecords reads it
//! (after the router's read-index check, so it never shows a record before it is
//! acknowledged nor skips one), every `POLL_INTERVAL` while caught up. It yields an event
//! per page of records, an empty event after `HEARTBEAT` without records (which carries
//! the continuation sequence number and lets the subscription notice a deleted stream or
//! a deregistered consumer), a last event with the `ChildShards` when a closed shard was
//! read to its end, an error if the stream or consumer went away, and nothing more after
//! `SUBSCRIPTION_LIFETIME` (five minutes, as on Kinesis).
//!
//! The ledger is node-local: a second subscription through another node inside the five
//! seconds is not refused (docs/kinesis-compatibility.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::catalog::{ShardRecord, StreamRecord};
use super::consumer::ConsumerRecord;
use super::log::ReadRecord;
use super::model::{SequenceNumber, ShardId, StreamError, MAX_GET_RECORDS};
use super::service::{ServiceError, StreamService};

/// How long a subscription pushes records before it ends.
pub const SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// A consumer may not subscribe to the same shard again sooner than this.
pub const RESUBSCRIBE_AFTER_MS: u64 = 5_000;
/// How often a caught-up subscription looks for new records.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The longest a subscription stays silent.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Bytes of records in one event (Kinesis pushes up to 2 MiB per second per consumer).
pub const MAX_EVENT_BYTES: usize = 2 * 1024 * 1024;
/// Subscriptions the ledger remembers before forgetting expired ones.
const LEDGER_PRUNE_ABOVE: usize = 4_096;

/// When each (consumer ARN, shard) last subscribed through this node.
#[derive(Debug, Default)]
pub struct SubscriptionLedger {
    started_ms: HashMap<(String, ShardId), u64>,
}

impl SubscriptionLedger {
    /// Record a subscription of `consumer_arn` to `shard` at `now_ms`, or refuse it when
    /// the same pair subscribed less than five seconds ago.
    pub fn start(
        &mut self,
        consumer_arn: &str,
        shard: ShardId,
        now_ms: u64,
    ) -> Result<(), StreamError> {
        if self.started_ms.len() > LEDGER_PRUNE_ABOVE {
            self.started_ms
                .retain(|_, at| now_ms.saturating_sub(*at) < RESUBSCRIBE_AFTER_MS);
        }
        let key = (consumer_arn.to_string(), shard);
        if let Some(&at) = self.started_ms.get(&key) {
            if now_ms.saturating_sub(at) < RESUBSCRIBE_AFTER_MS && now_ms >= at {
                return Err(StreamError::ResourceInUse(format!(
                    "Another active subscription exists for consumer {consumer_arn} and shard {shard}; a consumer may subscribe to a shard again {} seconds after its last SubscribeToShard.",
                    RESUBSCRIBE_AFTER_MS / 1000
                )));
            }
        }
        self.started_ms.insert(key, now_ms);
        Ok(())
    }
}

/// What a subscription pushes.
#[derive(Debug, Clone)]
pub enum SubscriptionEvent {
    Records {
        records: Vec<ReadRecord>,
        /// Where to resubscribe with AFTER_SEQUENCE_NUMBER; absent in the last event of a
        /// closed shard.
        continuation: Option<SequenceNumber>,
        millis_behind_latest: u64,
        /// Set in the last event of a closed shard read to its end.
        child_shards: Option<Vec<ShardRecord>>,
    },
    /// The subscription cannot go on (its stream or consumer is gone, or the cluster
    /// failed it); the last event.
    Failed(ServiceError),
}

/// The sequence number to resubscribe after, for a reader whose next position is `next`.
pub fn continuation_of(shard: ShardId, next: u64) -> SequenceNumber {
    SequenceNumber {
        shard: shard.0,
        position: next.saturating_sub(1),
    }
}

/// One subscription's position and schedule.
pub struct Subscription {
    service: Arc<StreamService>,
    record: StreamRecord,
    consumer: ConsumerRecord,
    shard: ShardId,
    position: u64,
    started: Instant,
    last_event: Instant,
    finished: bool,
}

impl Subscription {
    pub fn new(
        service: Arc<StreamService>,
        record: StreamRecord,
        consumer: ConsumerRecord,
        shard: ShardId,
        position: u64,
    ) -> Self {
        let now = Instant::now();
        Subscription {
            service,
            record,
            consumer,
            shard,
            position,
            started: now,
            last_event: now,
            finished: false,
        }
    }

    /// The next event, waiting for records; `None` once the subscription is over.
    pub async fn next_event(&mut self) -> Option<SubscriptionEvent> {
        if self.finished {
            return None;
        }
        let event = self.poll().await;
        if !matches!(
            event,
            Some(SubscriptionEvent::Records {
                child_shards: None,
                ..
            })
        ) {
            self.finished = true;
        }
        self.last_event = Instant::now();
        event
    }

    async fn poll(&mut self) -> Option<SubscriptionEvent> {
        loop {
            if self.started.elapsed() >= SUBSCRIPTION_LIFETIME {
                return None;
            }
            let page = match self
                .service
                .read_shard(
                    &self.record,
                    self.shard,
                    self.position,
                    MAX_GET_RECORDS,
                    MAX_EVENT_BYTES,
                )
                .await
            {
                Ok(page) => page,
                Err(e) => return Some(SubscriptionEvent::Failed(e)),
            };
            if page.at_end && page.records.is_empty() {
                return Some(self.last_of_closed_shard().await);
            }
            let has_records = !page.records.is_empty();
            if has_records {
                self.position = page.next;
            }
            if has_records || self.last_event.elapsed() >= HEARTBEAT {
                if !has_records {
                    if let Err(e) = self.still_registered().await {
                        return Some(SubscriptionEvent::Failed(e));
                    }
                }
                return Some(SubscriptionEvent::Records {
                    records: page.records,
                    continuation: Some(continuation_of(self.shard, self.position)),
                    millis_behind_latest: page.millis_behind_latest,
                    child_shards: None,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The stream (this incarnation) and the consumer (this registration) still exist.
    async fn still_registered(&mut self) -> Result<(), ServiceError> {
        let record = self.service.stream(&self.record.name).await?;
        if record.incarnation != self.record.incarnation {
            return Err(StreamError::not_found(&self.record.name).into());
        }
        let consumer = self
            .service
            .consumer(&self.consumer.stream, &self.consumer.name)
            .await?;
        if consumer.created_ms / 1000 != self.consumer.created_ms / 1000 {
            return Err(super::consumer::consumer_not_found(
                &self.consumer.stream,
                self.consumer.name.as_str(),
            )
            .into());
        }
        self.record = record;
        Ok(())
    }

    /// The closed shard's last event: its children, once the catalog shows them (the log
    /// closes a moment before the split or merge is recorded).
    async fn last_of_closed_shard(&mut self) -> SubscriptionEvent {
        loop {
            let children: Vec<ShardRecord> = self
                .record
                .children_of(self.shard)
                .into_iter()
                .cloned()
                .collect();
            if !children.is_empty() || self.started.elapsed() >= SUBSCRIPTION_LIFETIME {
                return SubscriptionEvent::Records {
                    records: Vec::new(),
                    continuation: None,
                    millis_behind_latest: 0,
                    child_shards: Some(children),
                };
            }
            tokio::time::sleep(POLL_INTERVAL).await;
            if let Err(e) = self.still_registered().await {
                return SubscriptionEvent::Failed(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_resubscribes_to_a_shard_only_after_five_seconds() {
        let mut l = SubscriptionLedger::default();
        l.start("arn-a", ShardId(0), 10_000).unwrap();
        let again = l.start("arn-a", ShardId(0), 14_999).unwrap_err();
        assert_eq!(again.code(), "ResourceInUseException");
        // Another shard, another consumer: no conflict.
        l.start("arn-a", ShardId(1), 14_999).unwrap();
        l.start("arn-b", ShardId(0), 14_999).unwrap();
        l.start("arn-a", ShardId(0), 15_000).unwrap();
        // A clock that went back does not lock the pair out.
        l.start("arn-a", ShardId(0), 1_000).unwrap();
    }

    #[test]
    fn the_continuation_is_the_last_position_read() {
        assert_eq!(
            continuation_of(ShardId(3), 8),
            SequenceNumber {
                shard: 3,
                position: 7
            }
        );
        // A fresh log's reader (next position 1) continues after the shard's start.
        assert_eq!(continuation_of(ShardId(0), 1).position, 0);
        assert_eq!(continuation_of(ShardId(0), 0).position, 0);
    }
}
