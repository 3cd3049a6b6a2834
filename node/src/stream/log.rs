//! One shard's record log, kept in the data group its (stream, shard) pair hashes to
//! (`cluster::routing::group_for_shard`).
//!
//! Records get consecutive positions at apply time, so sequence numbers are strictly
//! increasing within a shard and every replica assigns the same ones. The records one
//! command appends to a shard are stored together, as one or more *batches* of at most
//! [`BATCH_MAX_BYTES`] each, keyed by the position of their last record: a read from any
//! position seeks to the first batch whose last position is at or after it, and one key
//! per batch (not per record) is what the state machine, RocksDB's memtables and its
//! compactions handle. A batch's records share its arrival time. Arrival times come
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
/// Kind 2 held one record per key before batches; no code writes or reads it any more.
const KIND_BATCH: u8 = 3;
/// Record bytes (data and partition keys) one stored batch holds, at most (a single larger
/// record gets a batch of its own), so a read from the middle of a batch decodes little.
pub const BATCH_MAX_BYTES: usize = 256 * 1024;
/// Batches one read fetches from the store at a time.
const READ_CHUNK_BATCHES: usize = 16;

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

/// The key of the batch whose last record is at `last`.
fn batch_key(log: &ShardLogId, last: u64) -> Vec<u8> {
    let mut k = space(KIND_BATCH, log);
    k.extend_from_slice(&last.to_be_bytes());
    k
}

/// A stored batch's value: `first position (8) | arrival ms (8) | bincode Vec<NewRecord>`.
/// The fixed header lets trims and timestamp searches skip decoding the records.
const BATCH_HEADER: usize = 16;

struct BatchHeader {
    first: u64,
    last: u64,
    arrival_ms: u64,
}

fn encode_batch(first: u64, arrival_ms: u64, records: &[NewRecord]) -> Vec<u8> {
    let body = encode(&records);
    let mut value = Vec::with_capacity(BATCH_HEADER + body.len());
    value.extend_from_slice(&first.to_be_bytes());
    value.extend_from_slice(&arrival_ms.to_be_bytes());
    value.extend_from_slice(&body);
    value
}

fn batch_header(key: &[u8], value: &[u8]) -> Result<BatchHeader, StoreError> {
    let corrupt = || StoreError::corrupt("stream batch", "short key or value");
    let last = position_of(key).ok_or_else(corrupt)?;
    let (Some(first), Some(arrival)) = (value.get(..8), value.get(8..BATCH_HEADER)) else {
        return Err(corrupt());
    };
    let first = u64::from_be_bytes(first.try_into().map_err(|_| corrupt())?);
    let arrival_ms = u64::from_be_bytes(arrival.try_into().map_err(|_| corrupt())?);
    if first > last || first == 0 {
        return Err(StoreError::corrupt(
            "stream batch",
            format!("positions {first}..={last}"),
        ));
    }
    Ok(BatchHeader {
        first,
        last,
        arrival_ms,
    })
}

fn batch_records(header: &BatchHeader, value: &[u8]) -> Result<Vec<NewRecord>, StoreError> {
    let records: Vec<NewRecord> = decode("stream batch", &value[BATCH_HEADER..])?;
    if records.len() as u64 != header.last - header.first + 1 {
        return Err(StoreError::corrupt(
            "stream batch",
            format!(
                "{} records for positions {}..={}",
                records.len(),
                header.first,
                header.last
            ),
        ));
    }
    Ok(records)
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

/// The header of the first stored batch ending at or after `position` (the one holding
/// it, when it is stored).
fn batch_from(
    state: &dyn StateRead,
    log: &ShardLogId,
    position: u64,
) -> Result<Option<BatchHeader>, StoreError> {
    let prefix = space(KIND_BATCH, log);
    match state
        .scan(&prefix, &batch_key(log, position), 1)?
        .into_iter()
        .next()
    {
        Some((key, value)) => Ok(Some(batch_header(&key, &value)?)),
        None => Ok(None),
    }
}

/// Append records; with `enforce_limits`, records past the shard's write limit in the
/// current second are refused one by one (ProvisionedThroughputExceeded), the others
/// appended in order, in batches of at most [`BATCH_MAX_BYTES`].
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
    let mut batch: Vec<NewRecord> = Vec::new();
    let mut batch_bytes = 0;
    let flush = |txn: &mut dyn StateTxn, batch: &mut Vec<NewRecord>, next: u64| {
        if !batch.is_empty() {
            let first = next - batch.len() as u64;
            txn.put(
                &batch_key(log, next - 1),
                encode_batch(first, arrival_ms, batch),
            );
            batch.clear();
        }
    };
    for record in records {
        let size = record.size_bytes();
        if enforce_limits
            && (state.window.records + 1 > SHARD_WRITE_RECORDS_PER_SECOND
                || state.window.bytes + size as u64 > SHARD_WRITE_BYTES_PER_SECOND)
        {
            out.push(Err(StreamError::ProvisionedThroughputExceeded(
                log.shard.to_string(),
                log.stream.to_string(),
            )));
            continue;
        }
        if !batch.is_empty() && batch_bytes + size > BATCH_MAX_BYTES {
            flush(txn, &mut batch, state.next_position);
            batch_bytes = 0;
        }
        state.window.records += 1;
        state.window.bytes += size as u64;
        out.push(Ok(SequenceNumber {
            shard: log.shard.0,
            position: state.next_position,
        }));
        state.next_position += 1;
        batch_bytes += size;
        batch.push(record);
    }
    flush(txn, &mut batch, state.next_position);
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
    let mut next = start;
    let prefix = space(KIND_BATCH, log);
    'pages: while next < record.next_position && records.len() < limit {
        // A batch holds at least one record: never more batches than records wanted.
        let want = (limit - records.len()).min(READ_CHUNK_BATCHES);
        let chunk = state.scan(&prefix, &batch_key(log, next), want)?;
        if chunk.is_empty() {
            next = gap_end(state, log, next, None)?;
            continue;
        }
        for (key, value) in chunk {
            let header = batch_header(&key, &value)?;
            if header.first > next {
                next = gap_end(state, log, next, Some(header.first))?;
                continue 'pages;
            }
            let arrival_ms = header.arrival_ms;
            let skip = (next - header.first) as usize;
            for (offset, r) in batch_records(&header, &value)?
                .into_iter()
                .enumerate()
                .skip(skip)
            {
                bytes += r.size_bytes();
                if records.len() >= limit || (bytes > max_bytes && !records.is_empty()) {
                    break 'pages;
                }
                let position = header.first + offset as u64;
                next = position + 1;
                records.push(ReadRecord {
                    sequence: SequenceNumber {
                        shard: log.shard.0,
                        position,
                    },
                    record: StoredRecord {
                        partition_key: r.partition_key,
                        data: r.data,
                        arrival_ms,
                    },
                });
            }
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

/// Where a read that found nothing stored at `next` goes on: a trim that ran since the read
/// loaded the log moved its first position past `next` (go on from there, to `found` at
/// most); anything else is a hole in the log, which is corruption.
fn gap_end(
    state: &dyn StateRead,
    log: &ShardLogId,
    next: u64,
    found: Option<u64>,
) -> Result<u64, StoreError> {
    let now = load(state, log)?;
    if now.first_position > next {
        return Ok(found.map_or(now.first_position, |f| f.min(now.first_position)));
    }
    Err(StoreError::corrupt(
        "stream log",
        format!(
            "shard log {}/{} has no record at position {next} (first {}, next {}): a hole, \
             or a log written before 2026-11-24, when each record had its own key",
            log.stream, log.shard, now.first_position, now.next_position
        ),
    ))
}

fn position_of(key: &[u8]) -> Option<u64> {
    let b: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// The first position whose record arrived at or after `at_ms` (the log's next position
/// when none did). Arrival times never decrease along the log, so batches are bisected by
/// position, reading only their headers.
pub fn position_at(state: &dyn StateRead, log: &ShardLogId, at_ms: u64) -> Result<u64, StoreError> {
    first_arrived_at(state, log, &load(state, log)?, at_ms)
}

/// [`position_at`] over a log whose record is already loaded.
fn first_arrived_at(
    state: &dyn StateRead,
    log: &ShardLogId,
    record: &LogRecord,
    at_ms: u64,
) -> Result<u64, StoreError> {
    let (mut lo, mut hi) = (record.first_position, record.next_position);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match batch_from(state, log, mid)? {
            // Every record of the batch holding `mid` arrived with it.
            Some(b) if b.first <= mid && b.arrival_ms >= at_ms => hi = b.first.max(lo),
            Some(b) if b.first <= mid => lo = b.last + 1,
            // Nothing stored at `mid` (a trim raced this read): treat it as older.
            _ => lo = mid + 1,
        }
    }
    Ok(lo)
}

/// Remove the records that arrived before `before_ms`; returns how many went. Whole
/// batches go (a batch's records share its arrival time), with one range delete whatever
/// their number, so the command stays small and its apply cheap.
pub fn trim(txn: &mut dyn StateTxn, log: &ShardLogId, before_ms: u64) -> Result<u64, StoreError> {
    let mut state = load(txn, log)?;
    let cut = first_arrived_at(txn, log, &state, before_ms)?;
    if cut <= state.first_position {
        return Ok(0);
    }
    // Every batch ending below `cut` arrived before `before_ms`; `cut` starts a batch.
    txn.delete_range(&batch_key(log, 0), &batch_key(log, cut));
    let removed = cut - state.first_position;
    state.first_position = cut;
    save(txn, log, &state);
    Ok(removed)
}

/// Remove a dead incarnation's log, its records and then the log itself, with one range
/// delete (positions count up from 1 and never reach `u64::MAX`).
pub fn drop_log(txn: &mut dyn StateTxn, log: &ShardLogId) {
    txn.delete_range(&batch_key(log, 0), &batch_key(log, u64::MAX));
    txn.delete(&log_key(log));
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
            batch_from(state, &id, log.first_position)?.map(|b| b.arrival_ms)
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
        assert_eq!(trim(&mut st, &id(0), 15).unwrap(), 2);
        assert_eq!(trim(&mut st, &id(0), 15).unwrap(), 0);
        let page = read(&st, &id(0), 1, 10, 1 << 20).unwrap();
        assert_eq!(
            page.records
                .iter()
                .map(|r| r.sequence.position)
                .collect::<Vec<_>>(),
            [3, 4]
        );
        assert_eq!(page.log.first_position, 3);
        // A read from a trimmed position starts at the first record kept.
        assert_eq!(
            read(&st, &id(0), 1, 1, 1 << 20).unwrap().records[0]
                .sequence
                .position,
            3
        );
        assert_eq!(trim(&mut st, &id(0), 100).unwrap(), 2);
        assert!(read(&st, &id(0), 0, 10, 1 << 20)
            .unwrap()
            .records
            .is_empty());
        // Sequence numbers go on after a trim.
        assert_eq!(put(&mut st, &id(0), 1, 30)[0].position, 5);
    }

    #[test]
    fn logs_are_listed_and_dropped() {
        let mut st = MemState::default();
        for _ in 0..5 {
            put(&mut st, &id(0), 1, 10);
        }
        put(&mut st, &id(1), 1, 12);
        let logs = list(&st, None, 10).unwrap();
        assert_eq!(
            logs.iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
            [id(0), id(1)]
        );
        assert_eq!(logs[0].oldest_arrival_ms, Some(10));
        assert_eq!(list(&st, Some(&id(0)), 10).unwrap()[0].id, id(1));
        drop_log(&mut st, &id(0));
        assert_eq!(list(&st, None, 10).unwrap().len(), 1);
        assert!(batch_keys(&st, &id(0)).is_empty());
        assert_eq!(batch_keys(&st, &id(1)), [1]);
        assert!(read(&st, &id(0), 0, 10, 1 << 20)
            .unwrap()
            .records
            .is_empty());
    }

    fn big(n: usize, size: usize) -> Vec<NewRecord> {
        (0..n)
            .map(|i| NewRecord {
                partition_key: format!("k{i}"),
                data: vec![i as u8; size],
            })
            .collect()
    }

    fn batch_keys(st: &MemState, log: &ShardLogId) -> Vec<u64> {
        let prefix = space(KIND_BATCH, log);
        st.scan(&prefix, &prefix, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(k, _)| position_of(&k).unwrap())
            .collect()
    }

    #[test]
    fn one_append_is_stored_as_few_batches_and_read_from_any_position() {
        let mut st = MemState::default();
        put(&mut st, &id(0), 500, 10);
        // 500 small records: one key, ending at the last position.
        assert_eq!(batch_keys(&st, &id(0)), [500]);
        // 100 KiB records: at most BATCH_MAX_BYTES per batch, one record at least.
        let AppendOutcome::Appended(out) =
            append(&mut st, &id(0), big(5, 100 * 1024), 20, false).unwrap()
        else {
            panic!()
        };
        assert_eq!(out.len(), 5);
        assert_eq!(batch_keys(&st, &id(0)), [500, 502, 504, 505]);
        append(&mut st, &id(0), big(1, 600 * 1024), 30, false).unwrap();
        assert_eq!(batch_keys(&st, &id(0)), [500, 502, 504, 505, 506]);
        // From the middle of a batch, across batches, a record limit and a byte cap.
        let page = read(&st, &id(0), 250, 300, 1 << 30).unwrap();
        let positions: Vec<_> = page.records.iter().map(|r| r.sequence.position).collect();
        assert_eq!(positions, (250..=506).collect::<Vec<_>>());
        assert_eq!(page.records[0].record.partition_key, "pk249");
        assert_eq!(page.records[251].record.data, vec![0u8; 100 * 1024]);
        assert_eq!(page.records[251].record.arrival_ms, 20);
        assert_eq!(page.next, 507);
        let page = read(&st, &id(0), 499, 3, 1 << 30).unwrap();
        assert_eq!(page.records.len(), 3);
        assert_eq!(page.next, 502);
        let page = read(&st, &id(0), 501, 100, 150 * 1024).unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.next, 502);
        // Timestamps find the first record of the batch that arrived at or after them.
        assert_eq!(position_at(&st, &id(0), 10).unwrap(), 1);
        assert_eq!(position_at(&st, &id(0), 11).unwrap(), 501);
        assert_eq!(position_at(&st, &id(0), 25).unwrap(), 506);
        assert_eq!(position_at(&st, &id(0), 31).unwrap(), 507);
    }

    #[test]
    fn refused_records_leave_no_gap_in_positions_or_batches() {
        let mut st = MemState::default();
        let mut records = big(3, 400 * 1024);
        records.insert(
            1,
            NewRecord {
                partition_key: "x".into(),
                data: vec![7; 10],
            },
        );
        // The window has 1 MiB: the third 400 KiB record is refused, the small one is not.
        let AppendOutcome::Appended(out) = append(&mut st, &id(0), records, 5_000, true).unwrap()
        else {
            panic!()
        };
        let ok: Vec<_> = out
            .iter()
            .map(|r| r.as_ref().map(|s| s.position).ok())
            .collect();
        assert_eq!(ok, [Some(1), Some(2), Some(3), None]);
        let page = read(&st, &id(0), 1, 10, 1 << 30).unwrap();
        assert_eq!(page.records.len(), 3);
        assert_eq!(page.records[1].record.data, vec![7; 10]);
    }

    #[test]
    fn a_hole_in_the_log_is_reported_as_corruption_not_skipped() {
        let mut st = MemState::default();
        put(&mut st, &id(0), 2, 10);
        put(&mut st, &id(0), 2, 20);
        put(&mut st, &id(0), 2, 30);
        st.delete(&batch_key(&id(0), 4));
        let err = read(&st, &id(0), 1, 10, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("no record at position 3"), "{err}");
        let err = read(&st, &id(0), 3, 10, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("no record at position 3"), "{err}");
        // Bad stored bytes are an error too, never a panic.
        st.put(&batch_key(&id(0), 4), vec![0, 1, 2]);
        assert!(read(&st, &id(0), 3, 10, 1 << 20).is_err());
        st.put(&batch_key(&id(0), 4), encode_batch(3, 20, &recs(1)));
        let err = read(&st, &id(0), 3, 10, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("1 records for positions 3..=4"), "{err}");
    }

    #[test]
    fn trims_of_large_logs_remove_whole_batches_in_one_command() {
        let mut st = MemState::default();
        for t in 0..10 {
            put(&mut st, &id(0), 100, t);
        }
        assert_eq!(trim(&mut st, &id(0), 3).unwrap(), 300);
        assert_eq!(load(&st, &id(0)).unwrap().first_position, 301);
        assert_eq!(batch_keys(&st, &id(0)).first(), Some(&400));
        assert_eq!(trim(&mut st, &id(0), 3).unwrap(), 0);
        assert_eq!(list(&st, None, 10).unwrap()[0].oldest_arrival_ms, Some(3));
        assert_eq!(trim(&mut st, &id(0), 1_000).unwrap(), 700);
        assert!(batch_keys(&st, &id(0)).is_empty());
        assert_eq!(list(&st, None, 10).unwrap()[0].oldest_arrival_ms, None);
    }
}
