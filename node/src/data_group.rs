//! The state machine of a data group: each service's share of the group's state, chosen
//! by the command's envelope. New services add a variant here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::kv::model::{KvCommand, KvQuery, KvReply};
use crate::object::state::{ObjectCommand, ObjectQuery};
use crate::queue::signals::QueueSignals;
use crate::queue::state::{QueueCommand, QueueQuery};
use crate::raft::{codec, ApplyContext, GroupId, ServiceState};
use crate::store::{StateRead, StateTxn, StoreError};
use crate::stream::state::{StreamCommand, StreamQuery};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataCommand {
    Kv(KvCommand),
    /// Answered with an `object::state::ObjectResult`.
    Object(Box<ObjectCommand>),
    /// Answered with a `queue::state::QueueResult`.
    Queue(Box<QueueCommand>),
    /// Answered with a `stream::state::StreamReply`.
    Stream(Box<StreamCommand>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataQuery {
    Kv(KvQuery),
    /// Answered with an `object::state::ObjectResult`.
    Object(ObjectQuery),
    /// Answered with a `queue::state::QueueQueryReply`.
    Queue(QueueQuery),
    /// Answered with a `stream::state::StreamQueryReply`.
    Stream(StreamQuery),
}

/// One data group's state machine. Besides applying, it tells long polls waiting on this
/// node that a queue may have something to receive (`queue::signals`).
pub struct DataGroupState {
    group: GroupId,
    signals: Arc<QueueSignals>,
}

impl DataGroupState {
    pub fn new(group: GroupId, signals: Arc<QueueSignals>) -> Self {
        DataGroupState { group, signals }
    }

    /// A state machine whose wake-ups nobody listens to (tests, tools).
    pub fn unobserved(group: GroupId) -> Self {
        DataGroupState::new(group, QueueSignals::new())
    }

    fn apply_queue(
        &self,
        txn: &mut dyn StateTxn,
        cmd: QueueCommand,
        ctx: &ApplyContext,
    ) -> Result<Vec<u8>, StoreError> {
        let queue = cmd.queue().clone();
        let sends = matches!(
            cmd,
            QueueCommand::Send { .. } | QueueCommand::Enqueue { .. }
        );
        let nudges = cmd.may_add_messages() && !sends;
        let deletes = matches!(cmd, QueueCommand::Delete { .. });
        let reply = crate::queue::state::apply(txn, cmd, ctx)?;
        if reply.is_ok() {
            if sends {
                if let Some(record) = crate::queue::state::load_queue(txn, &queue)? {
                    self.signals.publish(self.group, &queue, record.next_seq);
                }
            } else if nudges {
                self.signals.nudge(self.group, &queue);
            } else if deletes {
                self.signals.forget(self.group, &queue);
            }
        }
        Ok(codec::encode(&reply))
    }
}

impl ServiceState for DataGroupState {
    fn apply(
        &self,
        txn: &mut dyn StateTxn,
        command: &[u8],
        ctx: &ApplyContext,
    ) -> Result<Vec<u8>, StoreError> {
        // An envelope that does not decode names no service: it gets the KV rejection,
        // which an object or queue caller fails to decode as its reply and reports as
        // internal.
        Ok(match codec::decode::<DataCommand>(command) {
            Ok(DataCommand::Kv(cmd)) => {
                codec::encode(&crate::kv::state::apply(txn, cmd, ctx.log_index)?)
            }
            Ok(DataCommand::Object(cmd)) => {
                codec::encode(&crate::object::state::apply(txn, *cmd, ctx)?)
            }
            Ok(DataCommand::Queue(cmd)) => self.apply_queue(txn, *cmd, ctx)?,
            Ok(DataCommand::Stream(cmd)) => {
                codec::encode(&crate::stream::state::apply(txn, *cmd, ctx)?)
            }
            Err(e) => codec::encode(&KvReply::Rejected(e)),
        })
    }

    fn read(&self, state: &dyn StateRead, query: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(match codec::decode::<DataQuery>(query) {
            Ok(DataQuery::Kv(q)) => codec::encode(&crate::kv::state::read(state, q)?),
            Ok(DataQuery::Object(q)) => codec::encode(&crate::object::state::read(state, q)?),
            Ok(DataQuery::Queue(q)) => codec::encode(&crate::queue::state::read(state, q)?),
            Ok(DataQuery::Stream(q)) => codec::encode(&crate::stream::state::read(state, q)?),
            Err(e) => codec::encode(&KvReply::Rejected(e)),
        })
    }
}
