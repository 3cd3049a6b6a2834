//! Wake-ups for long polls. Every replica of a data group applies each send; after it does,
//! it publishes the queue's send counter here. A long poll that found the queue empty
//! waits until the counter passes what its receive saw (or a message's visibility comes
//! due, or its deadline): it is woken, not polling.
//!
//! Only nodes that replicate the queue's group see its sends; an edge on another node asks
//! one that does (`api::grpc_queue`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::model::QueueName;
use crate::raft::GroupId;

/// Per queue: (send counter, nudges). A nudge is any other change that may make a message
/// receivable (a visibility set to 0, a move given back).
type Signal = (u64, u64);

#[derive(Default)]
pub struct QueueSignals {
    queues: Mutex<HashMap<(GroupId, QueueName), watch::Sender<Signal>>>,
}

impl QueueSignals {
    pub fn new() -> Arc<QueueSignals> {
        Arc::new(QueueSignals::default())
    }

    fn sender(&self, group: GroupId, queue: &QueueName) -> watch::Sender<Signal> {
        let mut map = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((group, queue.clone()))
            .or_insert_with(|| watch::channel((0, 0)).0)
            .clone()
    }

    /// A send to `queue` was applied; `next_seq` is the queue's send counter after it.
    pub fn publish(&self, group: GroupId, queue: &QueueName, next_seq: u64) {
        self.sender(group, queue)
            .send_modify(|v| v.0 = v.0.max(next_seq));
    }

    /// Something other than a send may have made a message of `queue` receivable.
    pub fn nudge(&self, group: GroupId, queue: &QueueName) {
        self.sender(group, queue).send_modify(|v| v.1 += 1);
    }

    /// Forget a deleted queue's signal.
    pub fn forget(&self, group: GroupId, queue: &QueueName) {
        let mut map = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(group, queue.clone()));
    }

    /// Wait until `queue`'s send counter passes `seen` or it is nudged, or `timeout`.
    /// Returns whether it woke before the timeout.
    pub async fn wait_past(
        &self,
        group: GroupId,
        queue: &QueueName,
        seen: u64,
        timeout: Duration,
    ) -> bool {
        let mut rx = self.sender(group, queue).subscribe();
        let nudges = rx.borrow().1;
        let woke = tokio::time::timeout(timeout, rx.wait_for(|v| v.0 > seen || v.1 > nudges)).await;
        matches!(woke, Ok(Ok(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_on_a_later_send_and_times_out_without_one() {
        let s = QueueSignals::new();
        let q = QueueName::parse("q").unwrap();
        s.publish(1, &q, 5);
        assert!(s.wait_past(1, &q, 4, Duration::from_millis(10)).await);
        assert!(!s.wait_past(1, &q, 5, Duration::from_millis(10)).await);
        let s2 = s.clone();
        let q2 = q.clone();
        let waiter =
            tokio::spawn(async move { s2.wait_past(1, &q2, 5, Duration::from_secs(30)).await });
        tokio::task::yield_now().await;
        s.publish(1, &q, 6);
        assert!(waiter.await.unwrap());
        let s3 = s.clone();
        let q3 = q.clone();
        let waiter =
            tokio::spawn(async move { s3.wait_past(1, &q3, 6, Duration::from_secs(30)).await });
        tokio::task::yield_now().await;
        s.nudge(1, &q);
        assert!(waiter.await.unwrap());
        // Another group's queue of the same name is another queue.
        assert!(!s.wait_past(2, &q, 0, Duration::from_millis(10)).await);
    }
}
