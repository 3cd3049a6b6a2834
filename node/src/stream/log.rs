//! One shard's record log, kept in the data group its (stream, shard) pair hashes to
//! (`cluster::routing::group_for_shard`).
//!
//! Records get consecutive positions at apply time, so sequence numbers are strictly
//! increasing within a shard and every replica assigns the same ones. Arrival times come
//! from the command's clock, never below the log's last one, so they never decrease along
//! the log (AT_TIMESTAMP finds its place by bisection). A closed log (its shard was split
//! or merged) refuses puts; reads go on until its end. Trimming removes the oldest records
//! past retention and moves `first_position` up, so reads and trims start at the first
//! record that exists instead of walking over deleted keys.
//!
//! Keys carry the stream's incarnation: a stream deleted and created again under its name
//! writes and reads other keys, and the dead incarnation's logs are dropped by the worker.
//!
//! Pure over a key-value transaction: no clock, no I/O of its own.

use serde::{Deserialize, Serialize};

use super::model::{
    Incarnation, SequenceNumber, ShardId, StreamError, StreamName, SHARD_WRITE_BYTES_PER_SECOND,
    SHARD_WRITE_RECORDS_PER_SECOND,
};
use crate::store::{decode, encode, StateRead, StateTxn, StoreError};

/// First byte of every stream key in a data group (0 Raft host, 1 KV, 2 objects, 3 queues).
pub const STREAM_TAG: u8 = 4;
const KIND_LOG: u8 = 1;
const KIND_RECORD: u8 = 2;

/// One shard of one incarnation of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardLogId {
    pub stream: StreamName,
    pub incarnation: Incarnation,
    pub shard: ShardId,
}

/// Writes counted in the current second, for the per-shard write limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteWindow {
    pub second: u64,
    pub bytes: u64,
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub next_position: u64,
    /// The lowest position not trimmed away.
    pub first_position: u64,
    /// The last position a closed log will ever have (0 when it closed empty).
    pub closed_at: Option<u64>,
    pub last_arrival_ms: u64,
    pub window: WriteWindow,
}

impl Default for LogRecord {
    fn default() -> Self {
        // Positions start at 1: position 0 is the shard's starting sequence number.
        LogRecord {
            next_position: 1,
            first_position: 1,
            closed_at: None,
            last_arrival_ms: 0,
            window: WriteWindow::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecord {
    pub partition_key: String,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl NewRecord {
    /// Bytes the record counts toward the shard's write limit.
    pub fn size_bytes(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
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

/// A put's outcome for one record.
pub type RecordOutcome = Result<SequenceNumber, StreamError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// One outcome per record, in order.
    Appended(Vec<RecordOutcome>),
    /// The shard was split or merged: nothing was appended.
    Closed,
}

/// A page of records and where the log stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPage {
    pub records: Vec<ReadRecord>,
    /// The position to read next.
    pub next: u64,
    pub log: LogRecord,
}

/// A log as the worker sees it when it tends the logs of its group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSummary {
    pub id: ShardLogId,
    pub log: LogRecord,
    /// Arrival of the oldest record kept, if any.
    pub oldest_arrival_ms: Option<u64>,
}

fn space(kind: u8, log: &ShardLogId) -> Vec<u8> {
    let name = log.stream.as_str().as_bytes();
    let mut k = Vec::with_capacity(3 + name.len() + 8 + 4 + 8);
    k.push(STREAM_TAG);
    k.push(kind);
    k.push(name.len() as u8);
    k.extend_from_slice(name);
    k.extend_from_slice(&log.incarnation.to_be_bytes());
    k.extend_from_slice(&log.shard.0.to_be_bytes());
    k
}

fn log_key(log: &ShardLogId) -> Vec<u8> {
    space(KIND_LOG, log)
}

fn record_key(log: &ShardLogId, position: u64) -> Vec<u8> {
    let mut k = space(KIND_RECORD, log);
    k.extend_from_slice(&position.to_be_bytes());
    k
}

/// The log a `KIND_LOG` key names.
fn parse_log_key(key: &[u8]) -> Option<ShardLogId> {
    let (&[tag, kind, len], rest) = key.split_first_chunk::<3>()?;
    if tag != STREAM_TAG || kind != KIND_LOG {
        return None;
    }
    let len = usize::from(len);
    let name = std::str::from_utf8(rest.get(..len)?).ok()?;
    let rest = &rest[len..];
    if rest.len() != 12 {
        return None;
    }
    Some(ShardLogId {
        stream: StreamName::parse(name).ok()?,
        incarnation: u64::from_be_bytes(rest[..8].try_into().ok()?),
        shard: ShardId(u32::from_be_bytes(rest[8..].try_into().ok()?)),
    })
}

pub fn load(state: &dyn StateRead, log: &ShardLogId) -> Result<LogRecord, StoreError> {
    Ok(match state.get(&log_key(log))? {
        Some(b) => decode("shard log", &b)?,
        None => LogRecord::default(),
    })
}

fn save(txn: &mut dyn StateTxn, log: &ShardLogId, record: &LogRecord) {
    txn.put(&log_key(log), encode(record));
}

fn get_record(
    state: &dyn StateRead,
    log: &ShardLogId,
    position: u64,
) -> Result<Option<StoredRecord>, StoreError> {
    match state.get(&record_key(log, position))? {
        Some(b) => Ok(Some(decode("stream record", &b)?)),
        None => Ok(None),
    }
}

/// Append records; with `enforce_limits`, records past the shard's write limit in the
/// current second are refused one by one (ProvisionedThroughputExceeded), the others
/// appended in order.
pub fn append(
    txn: &mut dyn StateTxn,
    log: &ShardLogId,
    records: Vec<NewRecord>,
    now_ms: u64,
    enforce_limits: bool,
) -> Result<AppendOutcome, StoreError> {
    let mut state = load(txn, log)?;
    if state.closed_at.is_some() {
        return Ok(AppendOutcome::Closed);
    }
    let arrival_ms = now_ms.max(state.last_arrival_ms);
    let second = arrival_ms / 1000;
    if state.window.second != second {
        state.window = WriteWindow {
            second,
            bytes: 0,
            records: 0,
        };
    }
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let size = record.size_bytes() as u64;
        if enforce_limits
            && (state.window.records + 1 > SHARD_WRITE_RECORDS_PER_SECOND
                || state.window.bytes + size > SHARD_WRITE_BYTES_PER_SECOND)
        {
            out.push(Err(StreamError::ProvisionedThroughputExceeded(
                log.shard.to_string(),
                log.stream.to_string(),
            )));
            continue;
        }
        state.window.records += 1;
        state.window.bytes += size;
        let position = state.next_position;
        state.next_position += 1;
        let stored = StoredRecord {
            partition_key: record.partition_key,
            data: record.data,
            arrival_ms,
        };
        txn.put(&record_key(log, position), encode(&stored));
        out.push(Ok(SequenceNumber {
            shard: log.shard.0,
            position,
        }));
    }
    state.last_arrival_ms = arrival_ms;
    save(txn, log, &state);
    Ok(AppendOutcome::Appended(out))
}

/// Close the log; returns its ending sequence number. Idempotent.
pub fn close(txn: &mut dyn StateTxn, log: &ShardLogId) -> Result<SequenceNumber, StoreError> {
    let mut state = load(txn, log)?;
    let last = *state.closed_at.get_or_insert(state.next_position - 1);
    save(txn, log, &state);
    Ok(SequenceNumber {
        shard: log.shard.0,
        position: last,
    })
}

/// Up to `limit` records from `from_position` on, at most `max_bytes` of data and keys (at
/// least one record if any). Records trimmed below `from_position` are skipped.
pub fn read(
    state: &dyn StateRead,
    log: &ShardLogId,
    from_position: u64,
    limit: usize,
    max_bytes: usize,
) -> Result<ReadPage, StoreError> {
    let record = load(state, log)?;
    let start = from_position.max(record.first_position);
    let mut records = Vec::new();
    let mut bytes = 0;
    let mut next = from_position;
    if start < record.next_position && limit > 0 {
        let prefix = space(KIND_RECORD, log);
        let from = record_key(log, start);
        // Positions from `first_position` on are dense: the scan meets no deleted keys.
        let want = limit.min((record.next_position - start) as usize);
        for (key, value) in state.scan(&prefix, &from, want)? {
            let Some(position) = position_of(&key) else {
                continue;
            };
            let stored: StoredRecord = decode("stream record", &value)?;
            bytes += stored.data.len() + stored.partition_key.len();
            if bytes > max_bytes && !records.is_empty() {
                break;
            }
            next = position + 1;
            records.push(ReadRecord {
                sequence: SequenceNumber {
                    shard: log.shard.0,
                    position,
                },
                record: stored,
            });
        }
    }
    if records.is_empty() {
        next = start;
    }
    Ok(ReadPage {
        records,
        next,
        log: record,
    })
}

fn position_of(key: &[u8]) -> Option<u64> {
    let b: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// The first position whose record arrived at or after `at_ms` (the log's next position
/// when none did).
pub fn position_at(state: &dyn StateRead, log: &ShardLogId, at_ms: u64) -> Result<u64, StoreError> {
    let record = load(state, log)?;
    let (mut lo, mut hi) = (record.first_position, record.next_position);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match get_record(state, log, mid)? {
            Some(r) if r.arrival_ms >= at_ms => hi = mid,
            Some(_) => lo = mid + 1,
            // A hole would mean a trim raced this read; treat it as older.
            None => lo = mid + 1,
        }
    }
    Ok(lo)
}

/// Remove records that arrived before `before_ms` (at most `limit`); returns how many.
pub fn trim(
    txn: &mut dyn StateTxn,
    log: &ShardLogId,
    before_ms: u64,
    limit: usize,
) -> Result<usize, StoreError> {
    let mut state = load(txn, log)?;
    let mut removed = 0;
    while removed < limit && state.first_position < state.next_position {
        let position = state.first_position;
        match get_record(txn, log, position)? {
            Some(r) if r.arrival_ms >= before_ms => break,
            Some(_) => {
                txn.delete(&record_key(log, position));
                removed += 1;
            }
            None => {}
        }
        state.first_position += 1;
    }
    if removed > 0 {
        save(txn, log, &state);
    }
    Ok(removed)
}

/// Remove a dead incarnation's log: up to `limit` records, then the log itself. Returns
/// whether the log is gone.
pub fn drop_log(
    txn: &mut dyn StateTxn,
    log: &ShardLogId,
    limit: usize,
) -> Result<bool, StoreError> {
    let mut state = load(txn, log)?;
    let mut removed = 0;
    while removed < limit && state.first_position < state.next_position {
        txn.delete(&record_key(log, state.first_position));
        state.first_position += 1;
        removed += 1;
    }
    if state.first_position < state.next_position {
        save(txn, log, &state);
        return Ok(false);
    }
    txn.delete(&log_key(log));
    Ok(true)
}

/// The logs of this group after `after` (in key order), up to `limit`.
pub fn list(
    state: &dyn StateRead,
    after: Option<&ShardLogId>,
    limit: usize,
) -> Result<Vec<LogSummary>, StoreError> {
    let prefix = [STREAM_TAG, KIND_LOG];
    let from = match after {
        Some(id) => {
            let mut k = log_key(id);
            k.push(0);
            k
        }
        None => prefix.to_vec(),
    };
    let mut out = Vec::new();
    for (key, value) in state.scan(&prefix, &from, limit)? {
        let Some(id) = parse_log_key(&key) else {
            continue;
        };
        let log: LogRecord = decode("shard log", &value)?;
        let oldest_arrival_ms = if log.first_position < log.next_position {
            get_record(state, &id, log.first_position)?.map(|r| r.arrival_ms)
        } else {
            None
        };
        out.push(LogSummary {
            id,
            log,
            oldest_arrival_ms,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemState;

    fn id(shard: u32) -> ShardLogId {
        ShardLogId {
            stream: StreamName::parse("clicks").unwrap(),
            incarnation: 7,
            shard: ShardId(shard),
        }
    }

    fn recs(n: usize) -> Vec<NewRecord> {
        (0..n)
            .map(|i| NewRecord {
                partition_key: format!("pk{i}"),
                data: vec![i as u8; 10],
            })
            .collect()
    }

    fn put(st: &mut MemState, log: &ShardLogId, n: usize, now: u64) -> Vec<SequenceNumber> {
        match append(st, log, recs(n), now, false).unwrap() {
            AppendOutcome::Appended(v) => v.into_iter().map(Result::unwrap).collect(),
            AppendOutcome::Closed => panic!("closed"),
        }
    }

    #[test]
    fn appends_get_increasing_sequence_numbers_and_read_back_in_order() {
        let mut st = MemState::default();
        let a = put(&mut st, &id(2), 3, 100);
        let b = put(&mut st, &id(2), 2, 200);
        let all: Vec<_> = a.iter().chain(&b).collect();
        assert!(all
            .windows(2)
            .all(|w| w[0] < w[1] && w[0].render() < w[1].render()));
        let page = read(&st, &id(2), 1, 10, 1 << 20).unwrap();
        assert_eq!(page.records.len(), 5);
        assert_eq!(page.records[3].record.arrival_ms, 200);
        assert_eq!((page.next, page.log.next_position), (6, 6));
        let page = read(&st, &id(2), 2, 2, 1 << 20).unwrap();
        assert_eq!(
            (page.records.len(), page.records[0].sequence.position),
            (2, 2)
        );
        assert_eq!(page.next, 4);
        // A byte cap still returns at least one record.
        assert_eq!(read(&st, &id(2), 1, 10, 1).unwrap().records.len(), 1);
        // At the tip: nothing, and the reader stays there.
        let page = read(&st, &id(2), 6, 10, 1 << 20).unwrap();
        assert!(page.records.is_empty());
        assert_eq!(page.next, 6);
        // Another shard's log, or another incarnation's, is separate.
        assert!(read(&st, &id(3), 1, 10, 1 << 20)
            .unwrap()
            .records
            .is_empty());
        let other = ShardLogId {
            incarnation: 8,
            ..id(2)
        };
        assert!(read(&st, &other, 1, 10, 1 << 20)
            .unwrap()
            .records
            .is_empty());
    }

    #[test]
    fn arrival_times_never_go_back() {
        let mut st = MemState::default();
        put(&mut st, &id(0), 1, 500);
        put(&mut st, &id(0), 1, 400);
        let page = read(&st, &id(0), 1, 10, 1 << 20).unwrap();
        assert_eq!(page.records[1].record.arrival_ms, 500);
        put(&mut st, &id(0), 2, 900);
        assert_eq!(position_at(&st, &id(0), 0).unwrap(), 1);
        assert_eq!(position_at(&st, &id(0), 501).unwrap(), 3);
        assert_eq!(position_at(&st, &id(0), 900).unwrap(), 3);
        assert_eq!(position_at(&st, &id(0), 901).unwrap(), 5);
    }

    #[test]
    fn a_closed_log_refuses_puts_and_reports_its_end() {
        let mut st = MemState::default();
        put(&mut st, &id(0), 4, 1);
        let end = close(&mut st, &id(0)).unwrap();
        assert_eq!(end.position, 4);
        assert_eq!(close(&mut st, &id(0)).unwrap(), end);
        assert_eq!(
            append(&mut st, &id(0), recs(1), 2, false).unwrap(),
            AppendOutcome::Closed
        );
        assert_eq!(close(&mut st, &id(9)).unwrap().position, 0);
    }

    #[test]
    fn write_limits_refuse_records_past_the_second_s_budget() {
        let mut st = MemState::default();
        let many = |n| {
            (0..n)
                .map(|_| NewRecord {
                    partition_key: "k".into(),
                    data: vec![],
                })
                .collect::<Vec<_>>()
        };
        let AppendOutcome::Appended(out) =
            append(&mut st, &id(0), many(1001), 5_000, true).unwrap()
        else {
            panic!()
        };
        assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 1000);
        assert_eq!(
            out[1000].as_ref().unwrap_err().code(),
            "ProvisionedThroughputExceededException"
        );
        // The next second starts a new budget; without enforcement nothing is refused.
        let AppendOutcome::Appended(out) = append(&mut st, &id(0), many(1), 6_000, true).unwrap()
        else {
            panic!()
        };
        assert!(out[0].is_ok());
        let big = vec![NewRecord {
            partition_key: "k".into(),
            data: vec![0; 600 * 1024],
        }];
        append(&mut st, &id(1), big.clone(), 1, true).unwrap();
        let AppendOutcome::Appended(out) = append(&mut st, &id(1), big.clone(), 2, true).unwrap()
        else {
            panic!()
        };
        assert!(out[0].is_err());
        let AppendOutcome::Appended(out) = append(&mut st, &id(1), big, 3, false).unwrap() else {
            panic!()
        };
        assert!(out[0].is_ok());
    }

    #[test]
    fn trimming_removes_only_records_past_retention() {
        let mut st = MemState::default();
        put(&mut st, &id(0), 2, 10);
        put(&mut st, &id(0), 2, 20);
        assert_eq!(trim(&mut st, &id(0), 15, 100).unwrap(), 2);
        assert_eq!(trim(&mut st, &id(0), 15, 100).unwrap(), 0);
        let page = read(&st, &id(0), 1, 10, 1 << 20).unwrap();
        assert_eq!(
            page.records
                .iter()
                .map(|r| r.sequence.position)
                .collect::<Vec<_>>(),
            [3, 4]
        );
        assert_eq!(page.log.first_position, 3);
        // A bounded trim goes on where it stopped.
        assert_eq!(trim(&mut st, &id(0), 100, 1).unwrap(), 1);
        assert_eq!(trim(&mut st, &id(0), 100, 1).unwrap(), 1);
        assert!(read(&st, &id(0), 0, 10, 1 << 20)
            .unwrap()
            .records
            .is_empty());
        // Sequence numbers go on after a trim.
        assert_eq!(put(&mut st, &id(0), 1, 30)[0].position, 5);
    }

    #[test]
    fn logs_are_listed_and_dropped_in_batches() {
        let mut st = MemState::default();
        put(&mut st, &id(0), 5, 10);
        put(&mut st, &id(1), 1, 12);
        let logs = list(&st, None, 10).unwrap();
        assert_eq!(
            logs.iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
            [id(0), id(1)]
        );
        assert_eq!(logs[0].oldest_arrival_ms, Some(10));
        assert_eq!(list(&st, Some(&id(0)), 10).unwrap()[0].id, id(1));
        assert!(!drop_log(&mut st, &id(0), 3).unwrap());
        assert!(drop_log(&mut st, &id(0), 3).unwrap());
        assert_eq!(list(&st, None, 10).unwrap().len(), 1);
        assert!(read(&st, &id(0), 0, 10, 1 << 20)
            .unwrap()
            .records
            .is_empty());
    }
}
