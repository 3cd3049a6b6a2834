//! The state machine of a data group: each service's share of the group's state, chosen
//! by the command's envelope. New services (objects, queues, streams) add a variant here.

use serde::{Deserialize, Serialize};

use crate::kv::model::{KvCommand, KvQuery, KvReply};
use crate::object::state::{ObjectCommand, ObjectQuery};
use crate::raft::{codec, ApplyContext, ServiceState};
use crate::store::{StateRead, StateTxn, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataCommand {
    Kv(KvCommand),
    /// Answered with an `object::state::ObjectResult`.
    Object(Box<ObjectCommand>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataQuery {
    Kv(KvQuery),
    /// Answered with an `object::state::ObjectResult`.
    Object(ObjectQuery),
}

pub struct DataGroupState;

impl ServiceState for DataGroupState {
    fn apply(
        &self,
        txn: &mut dyn StateTxn,
        command: &[u8],
        ctx: &ApplyContext,
    ) -> Result<Vec<u8>, StoreError> {
        // An envelope that does not decode names no service: it gets the KV rejection,
        // which an object caller fails to decode as its reply and reports as internal.
        Ok(match codec::decode::<DataCommand>(command) {
            Ok(DataCommand::Kv(cmd)) => {
                codec::encode(&crate::kv::state::apply(txn, cmd, ctx.log_index)?)
            }
            Ok(DataCommand::Object(cmd)) => {
                codec::encode(&crate::object::state::apply(txn, *cmd, ctx)?)
            }
            Err(e) => codec::encode(&KvReply::Rejected(e)),
        })
    }

    fn read(&self, state: &dyn StateRead, query: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(match codec::decode::<DataQuery>(query) {
            Ok(DataQuery::Kv(q)) => codec::encode(&crate::kv::state::read(state, q)?),
            Ok(DataQuery::Object(q)) => codec::encode(&crate::object::state::read(state, q)?),
            Err(e) => codec::encode(&KvReply::Rejected(e)),
        })
    }
}
