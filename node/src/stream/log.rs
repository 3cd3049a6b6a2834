//! One shard's record log, kept in the data group the (stream, shard) pair hashes to.
//!
//! Records get consecutive positions at apply time, so sequence numbers are strictly
//! increasing within a shard and every replica assigns the same ones; arrival times come
//! from the command's clock. A closed log (its shard was split or merged) refuses puts;
//! reads go on until its end. Trimming removes records older than the retention.
//!
//! Pure over a key-value transaction: no clock, no I/O of its own.

use serde::{Deserialize, Serialize};

use super::model::{SequenceNumber, ShardId, StreamError, StreamName};
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

/// First byte of every stream key in a data group (0 Raft host, 1 KV, 2 objects, 3 queues).
pub const STREAM_TAG: u8 = 4;
const KIND_LOG: u8 = 1;
const KIND_RECORD: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub next_position: u64,
    /// The last position a closed log will ever have (0 when it closed empty).
    pub closed_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub partition_key: String,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub arrival_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRecord {
    pub sequence: SequenceNumber,
    pub record: StoredRecord,
}

fn space(kind: u8, stream: &StreamName, shard: ShardId) -> Vec<u8> {
    let name = stream.as_str().as_bytes();
    let mut k = Vec::with_capacity(8 + name.len() + 8);
    k.push(STREAM_TAG);
    k.push(kind);
    k.push(name.len() as u8);
    k.extend_from_slice(name);
    k.extend_from_slice(&shard.0.to_be_bytes());
    k
}

fn record_key(stream: &StreamName, shard: ShardId, position: u64) -> Vec<u8> {
    let mut k = space(KIND_RECORD, stream, shard);
    k.extend_from_slice(&position.to_be_bytes());
    k
}

fn position_of(key: &[u8]) -> Option<u64> {
    let b: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

pub fn load(
    state: &dyn StateRead,
    stream: &StreamName,
    shard: ShardId,
) -> Result<LogRecord, StoreError> {
    Ok(match state.get(&space(KIND_LOG, stream, shard))? {
        Some(b) => decode("shard log", &b)?,
        // Positions start at 1: position 0 is the shard's starting sequence number.
        None => LogRecord {
            next_position: 1,
            closed_at: None,
        },
    })
}

fn save(txn: &mut dyn StateTxn, stream: &StreamName, shard: ShardId, log: &LogRecord) {
    txn.put(&space(KIND_LOG, stream, shard), encode(log));
}

/// Append records; returns their sequence numbers in order.
pub fn append(
    txn: &mut dyn StateTxn,
    stream: &StreamName,
    shard: ShardId,
    records: Vec<(String, Vec<u8>)>,
    now_ms: u64,
) -> Result<Result<Vec<SequenceNumber>, StreamError>, StoreError> {
    let mut log = load(txn, stream, shard)?;
    if log.closed_at.is_some() {
        return Ok(Err(StreamError::ResourceInUse(format!(
            "Shard {shard} in stream {stream} is closed: it was split or merged"
        ))));
    }
    let mut out = Vec::with_capacity(records.len());
    for (partition_key, data) in records {
        let position = log.next_position;
        log.next_position += 1;
        let record = StoredRecord {
            partition_key,
            data,
            arrival_ms: now_ms,
        };
        txn.put(&record_key(stream, shard, position), encode(&record));
        out.push(SequenceNumber {
            shard: shard.0,
            position,
        });
    }
    save(txn, stream, shard, &log);
    Ok(Ok(out))
}

/// Close the log; returns its ending sequence number. Idempotent.
pub fn close(
    txn: &mut dyn StateTxn,
    stream: &StreamName,
    shard: ShardId,
) -> Result<SequenceNumber, StoreError> {
    let mut log = load(txn, stream, shard)?;
    let last = *log.closed_at.get_or_insert(log.next_position - 1);
    save(txn, stream, shard, &log);
    Ok(SequenceNumber {
        shard: shard.0,
        position: last,
    })
}

/// Up to `limit` records from `from_position` on, at most `max_bytes` of data (at least
/// one record if any). Returns them and the position to read next.
pub fn read(
    state: &dyn StateRead,
    stream: &StreamName,
    shard: ShardId,
    from_position: u64,
    limit: usize,
    max_bytes: usize,
) -> Result<(Vec<ReadRecord>, u64), StoreError> {
    let prefix = space(KIND_RECORD, stream, shard);
    let from = record_key(stream, shard, from_position);
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut next = from_position;
    for (key, value) in state.scan(&prefix, &from, limit)? {
        let record: StoredRecord = decode("stream record", &value)?;
        bytes += record.data.len() + record.partition_key.len();
        if bytes > max_bytes && !out.is_empty() {
            break;
        }
        let Some(position) = position_of(&key) else {
            continue;
        };
        next = position + 1;
        out.push(ReadRecord {
            sequence: SequenceNumber {
                shard: shard.0,
                position,
            },
            record,
        });
    }
    // With nothing at or after `from_position` the reader waits there; records trimmed
    // below it are skipped because the scan starts at the first key that still exists.
    Ok((out, next))
}

/// Remove records that arrived before `before_ms` (at most `limit`); returns how many.
pub fn trim(
    txn: &mut dyn StateTxn,
    stream: &StreamName,
    shard: ShardId,
    before_ms: u64,
    limit: usize,
) -> Result<usize, StoreError> {
    let prefix = space(KIND_RECORD, stream, shard);
    let mut removed = 0;
    for (key, value) in txn.scan(&prefix, &prefix, limit)? {
        let record: StoredRecord = decode("stream record", &value)?;
        if record.arrival_ms >= before_ms {
            break;
        }
        txn.delete(&key);
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemState;

    fn s() -> StreamName {
        StreamName::parse("clicks").unwrap()
    }

    fn recs(n: usize) -> Vec<(String, Vec<u8>)> {
        (0..n)
            .map(|i| (format!("pk{i}"), vec![i as u8; 10]))
            .collect()
    }

    #[test]
    fn appends_get_increasing_sequence_numbers_and_read_back_in_order() {
        let mut st = MemState::default();
        let a = append(&mut st, &s(), ShardId(2), recs(3), 100)
            .unwrap()
            .unwrap();
        let b = append(&mut st, &s(), ShardId(2), recs(2), 200)
            .unwrap()
            .unwrap();
        let all: Vec<_> = a.iter().chain(&b).collect();
        assert!(all
            .windows(2)
            .all(|w| w[0] < w[1] && w[0].render() < w[1].render()));
        let (got, next) = read(&st, &s(), ShardId(2), 1, 10, 1 << 20).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[3].record.arrival_ms, 200);
        assert_eq!(next, 6);
        let (page, next) = read(&st, &s(), ShardId(2), 2, 2, 1 << 20).unwrap();
        assert_eq!((page.len(), page[0].sequence.position, next), (2, 2, 4));
        // A byte cap still returns at least one record.
        let (one, _) = read(&st, &s(), ShardId(2), 1, 10, 1).unwrap();
        assert_eq!(one.len(), 1);
        // Another shard's log is separate.
        assert!(read(&st, &s(), ShardId(3), 1, 10, 1 << 20)
            .unwrap()
            .0
            .is_empty());
    }

    #[test]
    fn a_closed_log_refuses_puts_and_reports_its_end() {
        let mut st = MemState::default();
        append(&mut st, &s(), ShardId(0), recs(4), 1)
            .unwrap()
            .unwrap();
        let end = close(&mut st, &s(), ShardId(0)).unwrap();
        assert_eq!(end.position, 4);
        assert_eq!(close(&mut st, &s(), ShardId(0)).unwrap(), end);
        assert!(matches!(
            append(&mut st, &s(), ShardId(0), recs(1), 2).unwrap(),
            Err(StreamError::ResourceInUse(_))
        ));
        assert_eq!(close(&mut st, &s(), ShardId(9)).unwrap().position, 0);
    }

    #[test]
    fn trimming_removes_only_records_past_retention() {
        let mut st = MemState::default();
        append(&mut st, &s(), ShardId(0), recs(2), 10)
            .unwrap()
            .unwrap();
        append(&mut st, &s(), ShardId(0), recs(2), 20)
            .unwrap()
            .unwrap();
        assert_eq!(trim(&mut st, &s(), ShardId(0), 15, 100).unwrap(), 2);
        let (left, _) = read(&st, &s(), ShardId(0), 1, 10, 1 << 20).unwrap();
        assert_eq!(
            left.iter().map(|r| r.sequence.position).collect::<Vec<_>>(),
            [3, 4]
        );
    }
}
