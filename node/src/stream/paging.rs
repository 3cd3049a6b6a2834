//! Which shards a listing shows (ListShards' ShardFilter, DescribeStream's pages) and the
//! NextToken of ListShards and ListStreams.
//!
//! Closed shards whose every record is past retention are expired: Kinesis stops listing
//! them, and so do we (a closed shard with a reader still on it can be read to its end).
//! A ListShards NextToken names the stream's incarnation, the last shard listed and the
//! filter, sealed like iterators (`iterator::TokenKey`) and valid for five minutes, as
//! Kinesis's are; a ListStreams NextToken names the last stream listed.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::catalog::{ShardRecord, StreamRecord};
use super::consumer::ConsumerName;
use super::iterator::{TokenKey, KIND_LIST_SHARDS};
use super::model::{Incarnation, ShardId, StreamError, StreamName};

/// How long a ListShards NextToken is good for.
pub const LIST_TOKEN_TTL_MS: u64 = 300_000;
const KIND_LIST_STREAMS: u8 = 3;
const KIND_LIST_CONSUMERS: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardFilter {
    AfterShardId(ShardId),
    AtTrimHorizon,
    FromTrimHorizon,
    AtLatest,
    AtTimestamp(u64),
    FromTimestamp(u64),
}

/// The shards a listing shows, in id order, after `exclusive_start`.
pub fn select(
    record: &StreamRecord,
    filter: ShardFilter,
    exclusive_start: Option<ShardId>,
    now_ms: u64,
    retention_ms: u64,
) -> Vec<&ShardRecord> {
    let horizon = now_ms.saturating_sub(retention_ms);
    let mut after = exclusive_start;
    let keep: Box<dyn Fn(&ShardRecord) -> bool> = match filter {
        ShardFilter::AfterShardId(id) => {
            after = Some(after.map_or(id, |a| a.max(id)));
            Box::new(move |s: &ShardRecord| s.open_during(horizon, u64::MAX))
        }
        ShardFilter::FromTrimHorizon => {
            Box::new(move |s: &ShardRecord| s.open_during(horizon, u64::MAX))
        }
        ShardFilter::AtTrimHorizon => {
            let at = horizon.max(record.created_ms);
            Box::new(move |s: &ShardRecord| s.open_during(at, at))
        }
        ShardFilter::AtLatest => Box::new(|s: &ShardRecord| s.is_open()),
        ShardFilter::AtTimestamp(t) => {
            let at = t.max(record.created_ms);
            Box::new(move |s: &ShardRecord| s.open_during(at, at))
        }
        ShardFilter::FromTimestamp(t) => {
            let from = t.max(horizon);
            Box::new(move |s: &ShardRecord| s.open_during(from, u64::MAX))
        }
    };
    let mut shards: Vec<&ShardRecord> = record
        .shards
        .iter()
        .filter(|s| after.is_none_or(|a| s.id > a))
        .filter(|s| keep(s))
        .collect();
    shards.sort_by_key(|s| s.id);
    shards
}

/// Where the next page of ListShards starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListShardsToken {
    pub stream: StreamName,
    pub incarnation: Incarnation,
    pub after: ShardId,
    pub filter: ShardFilter,
    pub issued_ms: u64,
}

impl ListShardsToken {
    pub fn encode(&self, key: &TokenKey) -> String {
        seal_token(KIND_LIST_SHARDS, self, key)
    }

    pub fn decode(
        token: &str,
        key: &TokenKey,
        now_ms: u64,
    ) -> Result<ListShardsToken, StreamError> {
        open_token(
            token,
            KIND_LIST_SHARDS,
            key,
            now_ms,
            |t: &ListShardsToken| t.issued_ms,
        )
    }
}

/// Seals `value` as a NextToken of `kind` (a listing's position, opaque to clients).
fn seal_token<T: Serialize>(kind: u8, value: &T, key: &TokenKey) -> String {
    let mut p = vec![kind];
    p.extend_from_slice(&crate::raft::codec::encode(value));
    key.seal(&p)
}

/// Opens a NextToken of `kind`: refused as invalid when it was not sealed by this
/// cluster for this kind, as expired when issued more than [`LIST_TOKEN_TTL_MS`] ago.
fn open_token<T: DeserializeOwned>(
    token: &str,
    kind: u8,
    key: &TokenKey,
    now_ms: u64,
    issued_ms: impl Fn(&T) -> u64,
) -> Result<T, StreamError> {
    let invalid = || StreamError::invalid(format!("Invalid NextToken {token}"));
    let p = key.open(token).ok_or_else(invalid)?;
    let (&[sealed_kind], rest) = p.split_first_chunk::<1>().ok_or_else(invalid)?;
    if sealed_kind != kind {
        return Err(invalid());
    }
    let t: T = crate::raft::codec::decode(rest).map_err(|_| invalid())?;
    let issued = issued_ms(&t);
    if now_ms > issued.saturating_add(LIST_TOKEN_TTL_MS) {
        return Err(StreamError::ExpiredNextToken(format!(
            "The timestamp of the NextToken ({issued}) is more than {} seconds old.",
            LIST_TOKEN_TTL_MS / 1000
        )));
    }
    Ok(t)
}

/// A ListStreams NextToken: the last stream listed.
pub fn list_streams_token(last: &StreamName, key: &TokenKey) -> String {
    let mut p = vec![KIND_LIST_STREAMS];
    p.extend_from_slice(last.as_str().as_bytes());
    key.seal(&p)
}

/// Where the next page of ListStreamConsumers starts: the stream's incarnation and the
/// last consumer listed; valid for five minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListConsumersToken {
    pub stream: StreamName,
    pub incarnation: Incarnation,
    pub after: ConsumerName,
    pub issued_ms: u64,
}

impl ListConsumersToken {
    pub fn encode(&self, key: &TokenKey) -> String {
        seal_token(KIND_LIST_CONSUMERS, self, key)
    }

    pub fn decode(
        token: &str,
        key: &TokenKey,
        now_ms: u64,
    ) -> Result<ListConsumersToken, StreamError> {
        open_token(
            token,
            KIND_LIST_CONSUMERS,
            key,
            now_ms,
            |t: &ListConsumersToken| t.issued_ms,
        )
    }
}

pub fn open_list_streams_token(token: &str, key: &TokenKey) -> Result<StreamName, StreamError> {
    let invalid = || StreamError::invalid(format!("Invalid NextToken {token}"));
    let p = key.open(token).ok_or_else(invalid)?;
    match p.split_first() {
        Some((&KIND_LIST_STREAMS, name)) => std::str::from_utf8(name)
            .ok()
            .and_then(|n| StreamName::parse(n).ok())
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::catalog::{ReshardRequest, StreamMode};
    use crate::stream::model::SequenceNumber;

    /// Shards 0, 1 at t=0; 0 split at t=100 into 2, 3.
    fn stream() -> StreamRecord {
        let mut s = StreamRecord::new(
            StreamName::parse("s").unwrap(),
            1,
            2,
            StreamMode::Provisioned,
            0,
        )
        .unwrap();
        s.begin_reshard(
            ReshardRequest::Split {
                shard: ShardId(0),
                new_starting_hash_key: 10,
            },
            100,
        )
        .unwrap();
        s.record_step(0, &[SequenceNumber::default()], 100).unwrap();
        s
    }

    fn ids(v: Vec<&ShardRecord>) -> Vec<u32> {
        v.iter().map(|s| s.id.0).collect()
    }

    #[test]
    fn filters_pick_shards_as_kinesis_describes() {
        let s = stream();
        let sel = |f, now, ret| ids(select(&s, f, None, now, ret));
        assert_eq!(sel(ShardFilter::FromTrimHorizon, 200, 1_000), [0, 1, 2, 3]);
        // Shard 0 closed at 100: past a retention of 50 at time 200, it is expired.
        assert_eq!(sel(ShardFilter::FromTrimHorizon, 200, 50), [1, 2, 3]);
        assert_eq!(sel(ShardFilter::AtLatest, 200, 1_000), [1, 2, 3]);
        assert_eq!(sel(ShardFilter::AtTrimHorizon, 200, 1_000), [0, 1]);
        assert_eq!(sel(ShardFilter::AtTrimHorizon, 200, 50), [1, 2, 3]);
        assert_eq!(sel(ShardFilter::AtTimestamp(50), 200, 1_000), [0, 1]);
        assert_eq!(sel(ShardFilter::AtTimestamp(150), 200, 1_000), [1, 2, 3]);
        assert_eq!(sel(ShardFilter::FromTimestamp(150), 200, 1_000), [1, 2, 3]);
        assert_eq!(
            sel(ShardFilter::AfterShardId(ShardId(1)), 200, 1_000),
            [2, 3]
        );
        assert_eq!(
            ids(select(
                &s,
                ShardFilter::FromTrimHorizon,
                Some(ShardId(2)),
                200,
                1_000
            )),
            [3]
        );
    }

    #[test]
    fn list_tokens_round_trip_expire_and_refuse_forgery() {
        let key = TokenKey::derive("c", "k");
        let t = ListShardsToken {
            stream: StreamName::parse("s").unwrap(),
            incarnation: 4,
            after: ShardId(9),
            filter: ShardFilter::AtTimestamp(5),
            issued_ms: 1_000,
        };
        let enc = t.encode(&key);
        assert_eq!(ListShardsToken::decode(&enc, &key, 1_000).unwrap(), t);
        assert_eq!(
            ListShardsToken::decode(&enc, &key, 1_001 + LIST_TOKEN_TTL_MS)
                .unwrap_err()
                .code(),
            "ExpiredNextTokenException"
        );
        assert_eq!(
            ListShardsToken::decode("garbage", &key, 1_000)
                .unwrap_err()
                .code(),
            "InvalidArgumentException"
        );
        let name = StreamName::parse("abc").unwrap();
        let lt = list_streams_token(&name, &key);
        assert_eq!(open_list_streams_token(&lt, &key).unwrap(), name);
        assert!(open_list_streams_token(&enc, &key).is_err());
        assert!(ListShardsToken::decode(&lt, &key, 1_000).is_err());
    }
}
