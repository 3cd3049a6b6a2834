//! The state machine of a data group: each service's share of the group's state, chosen
//! by the command's envelope. New services (objects, queues, streams) add a variant here.

use serde::{Deserialize, Serialize};

use crate::kv::model::{KvCommand, KvQuery, KvReply};
use crate::raft::{codec, ApplyContext, ServiceState};
use crate::store::{StateRead, StateTxn, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataCommand {
    Kv(KvCommand),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataQuery {
    Kv(KvQuery),
}

pub struct DataGroupState;

impl ServiceState for DataGroupState {
    fn apply(
        &self,
        txn: &mut dyn StateTxn,
        command: &[u8],
        ctx: &ApplyContext,
    ) -> Result<Vec<u8>, StoreError> {
        let reply = match codec::decode::<DataCommand>(command) {
            Ok(DataCommand::Kv(cmd)) => crate::kv::state::apply(txn, cmd, ctx.log_index)?,
            Err(e) => KvReply::Rejected(e),
        };
        Ok(codec::encode(&reply))
    }

    fn read(&self, state: &dyn StateRead, query: &[u8]) -> Result<Vec<u8>, StoreError> {
        let reply = match codec::decode::<DataQuery>(query) {
            Ok(DataQuery::Kv(q)) => crate::kv::state::read(state, q)?,
            Err(e) => KvReply::Rejected(e),
        };
        Ok(codec::encode(&reply))
    }
}
