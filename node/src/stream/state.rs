//! The stream store's share of a data group's state machine: the commands and queries of
//! shard logs (`log`), wrapped in `DataCommand::Stream` / `DataQuery::Stream`.
//!
//! Every replica applies the same commands in log order with the proposer's clock
//! (`ApplyContext::now_ms`), so sequence numbers, arrival times and write-limit decisions
//! are the same everywhere. Queries are answered from applied state after the router's
//! read-index check, so a read sees every acknowledged put.

use serde::{Deserialize, Serialize};

use super::log::{self, AppendOutcome, LogRecord, LogSummary, NewRecord, ReadPage, ShardLogId};
use super::model::SequenceNumber;
use crate::raft::ApplyContext;
use crate::store::{StateRead, StateTxn, StoreError};

/// Logs one listing returns.
pub const MAX_LOGS_LISTED: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamCommand {
    Append {
        log: ShardLogId,
        records: Vec<NewRecord>,
        enforce_limits: bool,
    },
    /// Close a shard's log before its split or merge is recorded in the catalog.
    Close { log: ShardLogId },
    /// Remove records that arrived before `before_ms` (retention), all in one command.
    Trim { log: ShardLogId, before_ms: u64 },
    /// Remove a log whose incarnation is gone from the catalog, all in one command.
    Drop { log: ShardLogId },
    /// Appends to several logs of one data group (one PutRecords' shards there), each
    /// applied as `Append` would be, its outcome independent of the others'. Answered
    /// with `AppendedMany`, one outcome per append, in order.
    AppendMany {
        appends: Vec<(ShardLogId, Vec<NewRecord>)>,
        enforce_limits: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamReply {
    Appended(AppendOutcome),
    Closed(SequenceNumber),
    /// Records removed.
    Trimmed(u64),
    /// Always `gone: true` (a Drop removes the whole log).
    Dropped {
        gone: bool,
    },
    AppendedMany(Vec<AppendOutcome>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamQuery {
    Read {
        log: ShardLogId,
        from: u64,
        limit: u32,
        max_bytes: u64,
    },
    Log {
        log: ShardLogId,
    },
    PositionAt {
        log: ShardLogId,
        at_ms: u64,
    },
    Logs {
        after: Option<ShardLogId>,
        limit: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamQueryReply {
    Page(Box<ReadPage>),
    Log(LogRecord),
    Position(u64),
    Logs(Vec<LogSummary>),
}

pub fn apply(
    txn: &mut dyn StateTxn,
    command: StreamCommand,
    ctx: &ApplyContext,
) -> Result<StreamReply, StoreError> {
    Ok(match command {
        StreamCommand::Append {
            log,
            records,
            enforce_limits,
        } => StreamReply::Appended(log::append(txn, &log, records, ctx.now_ms, enforce_limits)?),
        StreamCommand::Close { log } => StreamReply::Closed(log::close(txn, &log)?),
        StreamCommand::Trim { log, before_ms } => {
            StreamReply::Trimmed(log::trim(txn, &log, before_ms)?)
        }
        StreamCommand::Drop { log } => {
            log::drop_log(txn, &log);
            StreamReply::Dropped { gone: true }
        }
        StreamCommand::AppendMany {
            appends,
            enforce_limits,
        } => StreamReply::AppendedMany(
            appends
                .into_iter()
                .map(|(log, records)| log::append(txn, &log, records, ctx.now_ms, enforce_limits))
                .collect::<Result<_, _>>()?,
        ),
    })
}

pub fn read(state: &dyn StateRead, query: StreamQuery) -> Result<StreamQueryReply, StoreError> {
    Ok(match query {
        StreamQuery::Read {
            log,
            from,
            limit,
            max_bytes,
        } => StreamQueryReply::Page(Box::new(log::read(
            state,
            &log,
            from,
            limit as usize,
            usize::try_from(max_bytes).unwrap_or(usize::MAX),
        )?)),
        StreamQuery::Log { log } => StreamQueryReply::Log(log::load(state, &log)?),
        StreamQuery::PositionAt { log, at_ms } => {
            StreamQueryReply::Position(log::position_at(state, &log, at_ms)?)
        }
        StreamQuery::Logs { after, limit } => StreamQueryReply::Logs(log::list(
            state,
            after.as_ref(),
            (limit as usize).min(MAX_LOGS_LISTED),
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemState;
    use crate::stream::model::{ShardId, StreamName};

    #[test]
    fn commands_and_queries_round_trip_through_the_state() {
        let mut st = MemState::default();
        let log = ShardLogId {
            stream: StreamName::parse("s").unwrap(),
            incarnation: 1,
            shard: ShardId(0),
        };
        let ctx = ApplyContext {
            log_index: 1,
            now_ms: 1_000,
        };
        let append = StreamCommand::Append {
            log: log.clone(),
            records: vec![NewRecord {
                partition_key: "k".into(),
                data: b"x".to_vec(),
            }],
            enforce_limits: false,
        };
        let StreamReply::Appended(AppendOutcome::Appended(out)) =
            apply(&mut st, append, &ctx).unwrap()
        else {
            panic!()
        };
        assert_eq!(out[0].as_ref().unwrap().position, 1);
        let q = StreamQuery::Read {
            log: log.clone(),
            from: 0,
            limit: 10,
            max_bytes: 100,
        };
        let StreamQueryReply::Page(page) = read(&st, q).unwrap() else {
            panic!()
        };
        assert_eq!(page.records[0].record.arrival_ms, 1_000);
        let StreamReply::Closed(end) =
            apply(&mut st, StreamCommand::Close { log: log.clone() }, &ctx).unwrap()
        else {
            panic!()
        };
        assert_eq!(end.position, 1);
        let StreamReply::Trimmed(n) = apply(
            &mut st,
            StreamCommand::Trim {
                log: log.clone(),
                before_ms: 2_000,
            },
            &ctx,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(n, 1);
        assert_eq!(
            apply(&mut st, StreamCommand::Drop { log }, &ctx).unwrap(),
            StreamReply::Dropped { gone: true }
        );
    }

    #[test]
    fn append_many_applies_each_log_on_its_own() {
        let mut st = MemState::default();
        let log_of = |shard| ShardLogId {
            stream: StreamName::parse("s").unwrap(),
            incarnation: 1,
            shard: ShardId(shard),
        };
        let (open, closed) = (log_of(0), log_of(1));
        let ctx = ApplyContext {
            log_index: 1,
            now_ms: 1_000,
        };
        let records = |n: usize| {
            (0..n)
                .map(|i| NewRecord {
                    partition_key: format!("k{i}"),
                    data: vec![b'x'; 10],
                })
                .collect::<Vec<_>>()
        };
        // One record already in the open log, then the other closed.
        apply(
            &mut st,
            StreamCommand::Append {
                log: open.clone(),
                records: records(1),
                enforce_limits: false,
            },
            &ctx,
        )
        .unwrap();
        apply(
            &mut st,
            StreamCommand::Close {
                log: closed.clone(),
            },
            &ctx,
        )
        .unwrap();
        let reply = apply(
            &mut st,
            StreamCommand::AppendMany {
                appends: vec![(closed.clone(), records(2)), (open.clone(), records(2))],
                enforce_limits: true,
            },
            &ctx,
        )
        .unwrap();
        let seq = |position| Ok(SequenceNumber { shard: 0, position });
        assert_eq!(
            reply,
            StreamReply::AppendedMany(vec![
                AppendOutcome::Closed,
                AppendOutcome::Appended(vec![seq(2), seq(3)]),
            ])
        );
        let StreamQueryReply::Log(l) = read(&st, StreamQuery::Log { log: closed }).unwrap() else {
            panic!()
        };
        assert_eq!(l.next_position, 1);
        let StreamQueryReply::Log(l) = read(&st, StreamQuery::Log { log: open }).unwrap() else {
            panic!()
        };
        assert_eq!(l.next_position, 4);
    }
}
