//! The stream catalog's share of the meta group's state machine (group 0), wrapped in
//! `MetaCommand::StreamCatalog` / `MetaQuery::StreamCatalog`: one `StreamRecord` per
//! stream name, and the counter that hands out incarnations.
//!
//! A stream lives in the catalog alone until its first put: shard logs are created by
//! their first append, so CreateStream is one meta write and the stream is ACTIVE at once.
//! DeleteStream removes the record; the logs of the dead incarnation are dropped by the
//! stream worker of each data group's leader. Incarnations come from a counter in this
//! state, so they are never reused, and every command that acts on an existing stream's
//! shards names the incarnation it read: a stream recreated in between is not touched.
//!
//! Enhanced fan-out consumers are rows of their own under their stream's name
//! (`[tag, KIND_CONSUMER, stream, 0, consumer]`; names never hold a zero byte), so a
//! stream record's encoding is unchanged by them. Registering checks the stream exists
//! and has fewer than 20; deleting a stream removes its consumers in the same batch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalog::{ReshardRequest, StreamMode, StreamRecord, StreamStatus};
use super::consumer::{
    consumer_not_found, ConsumerName, ConsumerRecord, MAX_CONSUMERS_PER_STREAM, MAX_LIST_CONSUMERS,
};
use super::model::{Incarnation, SequenceNumber, StreamError, StreamName, ACCOUNT_ID};
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

/// First byte of every stream-catalog key in the meta group's state (1 is the cluster
/// record, 2 the bucket catalog).
pub const STREAM_CATALOG_TAG: u8 = 3;
const KIND_COUNTER: u8 = 0;
const KIND_STREAM: u8 = 1;
const KIND_CONSUMER: u8 = 2;
/// Largest page of ListStreams.
pub const MAX_LIST_STREAMS: u32 = 10_000;
/// Catalog rows the reshard query reads.
const RESHARD_SCAN_BUDGET: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamCatalogCommand {
    Create {
        name: StreamName,
        shard_count: u32,
        mode: StreamMode,
        tags: BTreeMap<String, String>,
        now_ms: u64,
    },
    Delete {
        name: StreamName,
    },
    SetRetention {
        name: StreamName,
        hours: u32,
        increase: bool,
    },
    AddTags {
        name: StreamName,
        tags: BTreeMap<String, String>,
    },
    RemoveTags {
        name: StreamName,
        keys: Vec<String>,
    },
    BeginReshard {
        name: StreamName,
        incarnation: Incarnation,
        request: ReshardRequest,
        now_ms: u64,
    },
    RecordStep {
        name: StreamName,
        incarnation: Incarnation,
        index: usize,
        endings: Vec<SequenceNumber>,
        now_ms: u64,
    },
    // New variants go last: commands are stored in Raft logs by variant index.
    /// DeleteStream without EnforceConsumerDeletion: refused while consumers exist.
    DeleteWithoutConsumers {
        name: StreamName,
    },
    RegisterConsumer {
        stream: StreamName,
        name: ConsumerName,
        now_ms: u64,
    },
    /// Remove a consumer; with `created_seconds`, only that registration (a ConsumerARN).
    DeregisterConsumer {
        stream: StreamName,
        name: ConsumerName,
        created_seconds: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamCatalogQuery {
    Get {
        name: StreamName,
    },
    /// Streams in name order after `after`.
    List {
        after: Option<StreamName>,
        limit: u32,
    },
    /// Streams with a reshard under way.
    Reshards,
    Consumer {
        stream: StreamName,
        name: ConsumerName,
    },
    /// A stream's consumers in name order after `after`.
    Consumers {
        stream: StreamName,
        after: Option<ConsumerName>,
        limit: u32,
    },
}

/// A stream as ListStreams shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    pub name: StreamName,
    pub incarnation: Incarnation,
    pub mode: StreamMode,
    pub status: StreamStatus,
    pub created_ms: u64,
    pub open_shards: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReshard {
    pub name: StreamName,
    pub incarnation: Incarnation,
    pub updated_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamCatalogReply {
    Stream(Box<StreamRecord>),
    Deleted,
    Streams {
        streams: Vec<StreamSummary>,
        more: bool,
    },
    Reshards(Vec<PendingReshard>),
    Consumer(ConsumerRecord),
    Consumers {
        consumers: Vec<ConsumerRecord>,
        more: bool,
    },
}

pub type StreamCatalogResult = Result<StreamCatalogReply, StreamError>;

fn counter_key() -> [u8; 2] {
    [STREAM_CATALOG_TAG, KIND_COUNTER]
}

fn stream_key(name: &StreamName) -> Vec<u8> {
    let mut k = vec![STREAM_CATALOG_TAG, KIND_STREAM];
    k.extend_from_slice(name.as_str().as_bytes());
    k
}

/// Every consumer row of `stream` starts with this.
fn consumers_prefix(stream: &StreamName) -> Vec<u8> {
    let mut k = vec![STREAM_CATALOG_TAG, KIND_CONSUMER];
    k.extend_from_slice(stream.as_str().as_bytes());
    k.push(0);
    k
}

fn consumer_key(stream: &StreamName, name: &ConsumerName) -> Vec<u8> {
    let mut k = consumers_prefix(stream);
    k.extend_from_slice(name.as_str().as_bytes());
    k
}

fn load_consumer(
    state: &dyn StateRead,
    stream: &StreamName,
    name: &ConsumerName,
) -> Result<Option<ConsumerRecord>, StoreError> {
    match state.get(&consumer_key(stream, name))? {
        Some(b) => Ok(Some(decode("stream consumer record", &b)?)),
        None => Ok(None),
    }
}

/// Up to `limit` consumers of `stream` after `after`, in name order.
fn scan_consumers(
    state: &dyn StateRead,
    stream: &StreamName,
    after: Option<&ConsumerName>,
    limit: usize,
) -> Result<Vec<ConsumerRecord>, StoreError> {
    let prefix = consumers_prefix(stream);
    let from = match after {
        Some(name) => {
            let mut k = consumer_key(stream, name);
            k.push(0);
            k
        }
        None => prefix.clone(),
    };
    state
        .scan(&prefix, &from, limit)?
        .into_iter()
        .map(|(_, v)| decode("stream consumer record", &v))
        .collect()
}

fn delete_stream(
    txn: &mut dyn StateTxn,
    name: &StreamName,
    keep_if_consumers: bool,
) -> Result<StreamCatalogResult, StoreError> {
    if load(txn, name)?.is_none() {
        return Ok(Err(StreamError::not_found(name)));
    }
    let consumers = scan_consumers(txn, name, None, MAX_CONSUMERS_PER_STREAM + 1)?;
    if keep_if_consumers && !consumers.is_empty() {
        return Ok(Err(StreamError::ResourceInUse(format!(
            "Stream {name} under account {ACCOUNT_ID} has {} registered consumers; deregister them or set EnforceConsumerDeletion.",
            consumers.len()
        ))));
    }
    for c in consumers {
        txn.delete(&consumer_key(name, &c.name));
    }
    txn.delete(&stream_key(name));
    Ok(Ok(StreamCatalogReply::Deleted))
}

pub fn load(state: &dyn StateRead, name: &StreamName) -> Result<Option<StreamRecord>, StoreError> {
    match state.get(&stream_key(name))? {
        Some(b) => Ok(Some(decode("stream catalog record", &b)?)),
        None => Ok(None),
    }
}

fn save(txn: &mut dyn StateTxn, record: &StreamRecord) {
    txn.put(&stream_key(&record.name), encode(record));
}

fn next_incarnation(txn: &mut dyn StateTxn) -> Result<Incarnation, StoreError> {
    let current: u64 = match txn.get(&counter_key())? {
        Some(b) => decode("stream incarnation counter", &b)?,
        None => 0,
    };
    let next = current + 1;
    txn.put(&counter_key(), encode(&next));
    Ok(next)
}

/// Change an existing stream (of `incarnation`, when given) with `change`.
fn update(
    txn: &mut dyn StateTxn,
    name: &StreamName,
    incarnation: Option<Incarnation>,
    change: impl FnOnce(&mut StreamRecord) -> Result<(), StreamError>,
) -> Result<StreamCatalogResult, StoreError> {
    let Some(mut record) = load(txn, name)? else {
        return Ok(Err(StreamError::not_found(name)));
    };
    if incarnation.is_some_and(|i| i != record.incarnation) {
        return Ok(Err(StreamError::not_found(name)));
    }
    if let Err(e) = change(&mut record) {
        return Ok(Err(e));
    }
    save(txn, &record);
    Ok(Ok(StreamCatalogReply::Stream(Box::new(record))))
}

pub fn apply(
    txn: &mut dyn StateTxn,
    command: StreamCatalogCommand,
) -> Result<StreamCatalogResult, StoreError> {
    match command {
        StreamCatalogCommand::Create {
            name,
            shard_count,
            mode,
            tags,
            now_ms,
        } => {
            if load(txn, &name)?.is_some() {
                return Ok(Err(StreamError::ResourceInUse(format!(
                    "Stream {name} under account {ACCOUNT_ID} already exists."
                ))));
            }
            let check = StreamRecord::new(name.clone(), 0, shard_count, mode, now_ms)
                .and_then(|mut r| r.add_tags(tags).map(|()| r));
            let mut record = match check {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            record.incarnation = next_incarnation(txn)?;
            save(txn, &record);
            Ok(Ok(StreamCatalogReply::Stream(Box::new(record))))
        }
        StreamCatalogCommand::Delete { name } => delete_stream(txn, &name, false),
        StreamCatalogCommand::DeleteWithoutConsumers { name } => delete_stream(txn, &name, true),
        StreamCatalogCommand::RegisterConsumer {
            stream,
            name,
            now_ms,
        } => {
            if load(txn, &stream)?.is_none() {
                return Ok(Err(StreamError::not_found(&stream)));
            }
            if let Some(existing) = load_consumer(txn, &stream, &name)? {
                return Ok(Err(StreamError::ResourceInUse(format!(
                    "Consumer {} under account {ACCOUNT_ID} already exists.",
                    existing.arn()
                ))));
            }
            let count = scan_consumers(txn, &stream, None, MAX_CONSUMERS_PER_STREAM)?.len();
            if count >= MAX_CONSUMERS_PER_STREAM {
                return Ok(Err(StreamError::LimitExceeded(format!(
                    "Stream {stream} under account {ACCOUNT_ID} already has {count} registered consumers, the limit is {MAX_CONSUMERS_PER_STREAM}."
                ))));
            }
            let record = ConsumerRecord {
                stream: stream.clone(),
                name: name.clone(),
                created_ms: now_ms,
            };
            txn.put(&consumer_key(&stream, &name), encode(&record));
            Ok(Ok(StreamCatalogReply::Consumer(record)))
        }
        StreamCatalogCommand::DeregisterConsumer {
            stream,
            name,
            created_seconds,
        } => match load_consumer(txn, &stream, &name)? {
            Some(c) if created_seconds.is_none_or(|s| s == c.created_seconds()) => {
                txn.delete(&consumer_key(&stream, &name));
                Ok(Ok(StreamCatalogReply::Consumer(c)))
            }
            _ => Ok(Err(consumer_not_found(&stream, name.as_str()))),
        },
        StreamCatalogCommand::SetRetention {
            name,
            hours,
            increase,
        } => update(txn, &name, None, |r| r.set_retention(hours, increase)),
        StreamCatalogCommand::AddTags { name, tags } => {
            update(txn, &name, None, |r| r.add_tags(tags))
        }
        StreamCatalogCommand::RemoveTags { name, keys } => update(txn, &name, None, |r| {
            r.remove_tags(&keys);
            Ok(())
        }),
        StreamCatalogCommand::BeginReshard {
            name,
            incarnation,
            request,
            now_ms,
        } => update(txn, &name, Some(incarnation), |r| {
            r.begin_reshard(request, now_ms)
        }),
        StreamCatalogCommand::RecordStep {
            name,
            incarnation,
            index,
            endings,
            now_ms,
        } => update(txn, &name, Some(incarnation), |r| {
            r.record_step(index, &endings, now_ms)
        }),
    }
}

pub fn read(
    state: &dyn StateRead,
    query: StreamCatalogQuery,
) -> Result<StreamCatalogResult, StoreError> {
    let prefix = [STREAM_CATALOG_TAG, KIND_STREAM];
    match query {
        StreamCatalogQuery::Get { name } => Ok(match load(state, &name)? {
            Some(r) => Ok(StreamCatalogReply::Stream(Box::new(r))),
            None => Err(StreamError::not_found(&name)),
        }),
        StreamCatalogQuery::List { after, limit } => {
            let limit = limit.clamp(1, MAX_LIST_STREAMS) as usize;
            let from = match &after {
                Some(name) => {
                    let mut k = stream_key(name);
                    k.push(0);
                    k
                }
                None => prefix.to_vec(),
            };
            let rows = state.scan(&prefix, &from, limit + 1)?;
            let more = rows.len() > limit;
            let mut streams = Vec::with_capacity(rows.len().min(limit));
            for (_, value) in rows.into_iter().take(limit) {
                let r: StreamRecord = decode("stream catalog record", &value)?;
                streams.push(StreamSummary {
                    open_shards: r.open_shard_count(),
                    name: r.name,
                    incarnation: r.incarnation,
                    mode: r.mode,
                    status: r.status,
                    created_ms: r.created_ms,
                });
            }
            Ok(Ok(StreamCatalogReply::Streams { streams, more }))
        }
        StreamCatalogQuery::Reshards => {
            let mut out = Vec::new();
            for (_, value) in state.scan(&prefix, &prefix, RESHARD_SCAN_BUDGET)? {
                let r: StreamRecord = decode("stream catalog record", &value)?;
                if let Some(p) = &r.pending {
                    out.push(PendingReshard {
                        updated_ms: p.updated_ms,
                        name: r.name,
                        incarnation: r.incarnation,
                    });
                }
            }
            Ok(Ok(StreamCatalogReply::Reshards(out)))
        }
        StreamCatalogQuery::Consumer { stream, name } => {
            Ok(match load_consumer(state, &stream, &name)? {
                Some(c) => Ok(StreamCatalogReply::Consumer(c)),
                None if load(state, &stream)?.is_none() => Err(StreamError::not_found(&stream)),
                None => Err(consumer_not_found(&stream, name.as_str())),
            })
        }
        StreamCatalogQuery::Consumers {
            stream,
            after,
            limit,
        } => {
            if load(state, &stream)?.is_none() {
                return Ok(Err(StreamError::not_found(&stream)));
            }
            let limit = limit.clamp(1, MAX_LIST_CONSUMERS) as usize;
            let mut consumers = scan_consumers(state, &stream, after.as_ref(), limit + 1)?;
            let more = consumers.len() > limit;
            consumers.truncate(limit);
            Ok(Ok(StreamCatalogReply::Consumers { consumers, more }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemState;
    use crate::stream::model::ShardId;

    fn name(s: &str) -> StreamName {
        StreamName::parse(s).unwrap()
    }

    fn create(st: &mut MemState, n: &str, shards: u32) -> StreamCatalogResult {
        apply(
            st,
            StreamCatalogCommand::Create {
                name: name(n),
                shard_count: shards,
                mode: StreamMode::Provisioned,
                tags: BTreeMap::new(),
                now_ms: 10,
            },
        )
        .unwrap()
    }

    fn get(st: &MemState, n: &str) -> Result<StreamRecord, StreamError> {
        match read(st, StreamCatalogQuery::Get { name: name(n) }).unwrap()? {
            StreamCatalogReply::Stream(r) => Ok(*r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_recreated_stream_gets_a_new_incarnation() {
        let mut st = MemState::default();
        create(&mut st, "a", 2).unwrap();
        let first = get(&st, "a").unwrap().incarnation;
        assert_eq!(
            create(&mut st, "a", 2).unwrap_err().code(),
            "ResourceInUseException"
        );
        apply(&mut st, StreamCatalogCommand::Delete { name: name("a") })
            .unwrap()
            .unwrap();
        assert_eq!(
            get(&st, "a").unwrap_err().code(),
            "ResourceNotFoundException"
        );
        create(&mut st, "a", 1).unwrap();
        let second = get(&st, "a").unwrap();
        assert!(second.incarnation > first);
        // A reshard planned against the old incarnation finds no stream.
        let stale = apply(
            &mut st,
            StreamCatalogCommand::BeginReshard {
                name: name("a"),
                incarnation: first,
                request: ReshardRequest::Scale { target: 2 },
                now_ms: 11,
            },
        )
        .unwrap();
        assert_eq!(stale.unwrap_err().code(), "ResourceNotFoundException");
        // A create that fails its checks takes no incarnation and leaves nothing.
        assert!(create(&mut st, "b", 0).is_err());
        assert!(get(&st, "b").is_err());
    }

    #[test]
    fn streams_list_in_pages_and_reshards_are_found() {
        let mut st = MemState::default();
        for n in ["c", "a", "b"] {
            create(&mut st, n, 1).unwrap();
        }
        let list = |after: Option<&str>, limit| match read(
            &st,
            StreamCatalogQuery::List {
                after: after.map(name),
                limit,
            },
        )
        .unwrap()
        .unwrap()
        {
            StreamCatalogReply::Streams { streams, more } => (
                streams
                    .into_iter()
                    .map(|s| s.name.to_string())
                    .collect::<Vec<_>>(),
                more,
            ),
            other => panic!("{other:?}"),
        };
        assert_eq!(list(None, 2), (vec!["a".into(), "b".into()], true));
        assert_eq!(list(Some("b"), 2), (vec!["c".into()], false));
        let inc = get(&st, "b").unwrap().incarnation;
        apply(
            &mut st,
            StreamCatalogCommand::BeginReshard {
                name: name("b"),
                incarnation: inc,
                request: ReshardRequest::Split {
                    shard: ShardId(0),
                    new_starting_hash_key: 5,
                },
                now_ms: 20,
            },
        )
        .unwrap()
        .unwrap();
        let StreamCatalogReply::Reshards(pending) =
            read(&st, StreamCatalogQuery::Reshards).unwrap().unwrap()
        else {
            panic!()
        };
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].name.as_str(), pending[0].updated_ms), ("b", 20));
        apply(
            &mut st,
            StreamCatalogCommand::RecordStep {
                name: name("b"),
                incarnation: inc,
                index: 0,
                endings: vec![SequenceNumber::default()],
                now_ms: 21,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(get(&st, "b").unwrap().open_shard_count(), 2);
    }

    fn consumer(n: &str) -> ConsumerName {
        ConsumerName::parse(n).unwrap()
    }

    fn register(st: &mut MemState, s: &str, c: &str, now_ms: u64) -> StreamCatalogResult {
        apply(
            st,
            StreamCatalogCommand::RegisterConsumer {
                stream: name(s),
                name: consumer(c),
                now_ms,
            },
        )
        .unwrap()
    }

    fn consumers(st: &MemState, s: &str, after: Option<&str>, limit: u32) -> (Vec<String>, bool) {
        match read(
            st,
            StreamCatalogQuery::Consumers {
                stream: name(s),
                after: after.map(consumer),
                limit,
            },
        )
        .unwrap()
        .unwrap()
        {
            StreamCatalogReply::Consumers { consumers, more } => (
                consumers.into_iter().map(|c| c.name.to_string()).collect(),
                more,
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn consumers_register_list_and_deregister_within_their_limits() {
        let mut st = MemState::default();
        assert_eq!(
            register(&mut st, "a", "c", 1).unwrap_err().code(),
            "ResourceNotFoundException"
        );
        create(&mut st, "a", 1).unwrap();
        create(&mut st, "ab", 1).unwrap();
        for i in 0..MAX_CONSUMERS_PER_STREAM {
            register(&mut st, "a", &format!("c{i:02}"), 5_000).unwrap();
        }
        assert_eq!(
            register(&mut st, "a", "c00", 6_000).unwrap_err().code(),
            "ResourceInUseException"
        );
        assert_eq!(
            register(&mut st, "a", "one-more", 6_000)
                .unwrap_err()
                .code(),
            "LimitExceededException"
        );
        // Another stream (whose name extends this one's) has its own consumers.
        register(&mut st, "ab", "c00", 7_000).unwrap();
        assert_eq!(consumers(&st, "ab", None, 100), (vec!["c00".into()], false));
        let (first, more) = consumers(&st, "a", None, 15);
        assert_eq!((first.len(), more), (15, true));
        let (rest, more) = consumers(&st, "a", Some(&first[14]), 15);
        assert_eq!((rest.len(), more, rest[0].as_str()), (5, false, "c15"));
        // A ConsumerARN names one registration.
        let stale = apply(
            &mut st,
            StreamCatalogCommand::DeregisterConsumer {
                stream: name("a"),
                name: consumer("c03"),
                created_seconds: Some(4),
            },
        )
        .unwrap();
        assert_eq!(stale.unwrap_err().code(), "ResourceNotFoundException");
        apply(
            &mut st,
            StreamCatalogCommand::DeregisterConsumer {
                stream: name("a"),
                name: consumer("c03"),
                created_seconds: Some(5),
            },
        )
        .unwrap()
        .unwrap();
        let gone = read(
            &st,
            StreamCatalogQuery::Consumer {
                stream: name("a"),
                name: consumer("c03"),
            },
        )
        .unwrap();
        assert_eq!(gone.unwrap_err().code(), "ResourceNotFoundException");
        register(&mut st, "a", "one-more", 8_000).unwrap();
    }

    #[test]
    fn deleting_a_stream_removes_its_consumers_or_is_refused_while_it_has_some() {
        let mut st = MemState::default();
        create(&mut st, "a", 1).unwrap();
        register(&mut st, "a", "c", 1_000).unwrap();
        let refused = apply(
            &mut st,
            StreamCatalogCommand::DeleteWithoutConsumers { name: name("a") },
        )
        .unwrap();
        assert_eq!(refused.unwrap_err().code(), "ResourceInUseException");
        apply(&mut st, StreamCatalogCommand::Delete { name: name("a") })
            .unwrap()
            .unwrap();
        create(&mut st, "a", 1).unwrap();
        assert_eq!(consumers(&st, "a", None, 10), (vec![], false));
        apply(
            &mut st,
            StreamCatalogCommand::DeleteWithoutConsumers { name: name("a") },
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            read(
                &st,
                StreamCatalogQuery::Consumers {
                    stream: name("a"),
                    after: None,
                    limit: 10
                }
            )
            .unwrap()
            .unwrap_err()
            .code(),
            "ResourceNotFoundException"
        );
    }

    #[test]
    fn settings_change_in_place() {
        let mut st = MemState::default();
        create(&mut st, "a", 1).unwrap();
        apply(
            &mut st,
            StreamCatalogCommand::SetRetention {
                name: name("a"),
                hours: 48,
                increase: true,
            },
        )
        .unwrap()
        .unwrap();
        apply(
            &mut st,
            StreamCatalogCommand::AddTags {
                name: name("a"),
                tags: BTreeMap::from([("k".into(), "v".into())]),
            },
        )
        .unwrap()
        .unwrap();
        let r = get(&st, "a").unwrap();
        assert_eq!((r.retention_hours, r.tags.len()), (48, 1));
        let missing = apply(
            &mut st,
            StreamCatalogCommand::RemoveTags {
                name: name("zz"),
                keys: vec![],
            },
        )
        .unwrap();
        assert!(missing.is_err());
    }
}
