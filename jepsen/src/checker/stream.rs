//! The stream checker: producers put records whose data are values unique in the run to a
//! sharded stream (Kinesis), consumers read every shard from its start by following shard
//! iterators, and after the faults are healed a drain reads every shard to its end.
//!
//! What a history holds: puts ([`Op::PutRecords`], each record's outcome: appended at a
//! shard and sequence number, refused, or unknown), reads ([`Op::GetRecords`], each
//! naming its reader and the sequence number it must continue after), iterator requests,
//! listings ([`Op::ListShards`]), reshards, and the drain ([`Op::Drain`] around reads by
//! [`DRAIN_READER`]). The drain's reads of a shard, concatenated, are the shard's *final
//! contents*: what every other read is compared with.
//!
//! [`check`] judges, shard by shard, what Kinesis promises:
//! - lost: a record a put acknowledged that is not in its shard's final contents at the
//!   sequence number the put returned, and nowhere else either (without a successful drain
//!   such records are *unconfirmed* and the verdict is unknown);
//! - misplaced: acknowledged at one shard and sequence number, read at another;
//! - unexpected: a record read whose value no put invoked before that read completed
//!   carried (data that is not a value of the workload included);
//! - failed but read: a value every put of which surely failed (refused by a 4xx or a
//!   503, a refused connection, or a per-record refusal), read;
//! - duplicate: a value read at more distinct places (shard and sequence number) than
//!   puts of it could have appended;
//! - reordered: within one reader's read of a shard (and the drain's), sequence numbers
//!   that do not strictly increase;
//! - skipped: a page whose first record (or any record) is not the record that follows,
//!   in the final contents, the last one the reader had read: records in between were
//!   skipped;
//! - divergent: a read that returned a record the final contents do not hold at that
//!   sequence number, or hold with other data;
//! - early end: a read that reported the end of a closed shard (no NextShardIterator)
//!   before every record of the shard's final contents, or records past a closed shard's
//!   ending sequence number;
//! - child before parent: a reader that touched a child shard before it had read each of
//!   its parents to the end (the lineage comes from ChildShards and ListShards);
//! - parent after child: a put acknowledged in a parent that was invoked after a put to
//!   one of its children had been acknowledged (a consumer reading parents first would
//!   then see them out of order);
//! - misrouted: a record acknowledged in a shard whose hash-key range does not hold the
//!   record's hash key (its explicit hash key, or the MD5 of its partition key);
//! - corrupt: a record read with another partition key than its put sent.
//!
//! Not judged: how far behind consumers were, or whether a record of unknown outcome
//! appeared (counted as *recovered*).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::checker::{CheckError, Validity};
use crate::history::{
    History, Op, OpId, OpResult, Operation, Outcome, PutEntry, ShardInfo, StreamPut, StreamRecord,
    Tick, Value,
};

/// The reader the drain's reads are recorded under.
pub const DRAIN_READER: u64 = u64::MAX;

/// How many anomalies of one kind a report keeps (all are counted).
pub const ANOMALIES_KEPT: usize = 100;

/// How many values an anomaly lists.
const VALUES_LISTED: usize = 10;

/// Orders two sequence numbers as the decimal numbers they are (Kinesis's are up to 128
/// digits, more than any integer type holds).
pub fn compare_sequences(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The hash key Kinesis routes a record by: its explicit hash key, else the MD5 of its
/// partition key read as a big-endian 128-bit number. `None` for an explicit hash key
/// that is not a number in [0, 2^128).
pub fn hash_key_of(put: &StreamPut) -> Option<u128> {
    use md5::Digest;
    match &put.explicit_hash_key {
        Some(text) => text.parse().ok(),
        None => Some(u128::from_be_bytes(
            md5::Md5::digest(put.partition_key.as_bytes()).into(),
        )),
    }
}

/// The kinds of anomaly (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyKind {
    Lost,
    Misplaced,
    Unexpected,
    FailedButRead,
    Duplicate,
    Reordered,
    Skipped,
    Divergent,
    EarlyEnd,
    ChildBeforeParent,
    ParentAfterChild,
    Misrouted,
    Corrupt,
}

impl AnomalyKind {
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Lost => "lost",
            AnomalyKind::Misplaced => "misplaced",
            AnomalyKind::Unexpected => "unexpected",
            AnomalyKind::FailedButRead => "failed-but-read",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::Reordered => "reordered",
            AnomalyKind::Skipped => "skipped",
            AnomalyKind::Divergent => "divergent",
            AnomalyKind::EarlyEnd => "early-end",
            AnomalyKind::ChildBeforeParent => "child-before-parent",
            AnomalyKind::ParentAfterChild => "parent-after-child",
            AnomalyKind::Misrouted => "misrouted",
            AnomalyKind::Corrupt => "corrupt",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One anomaly: what kind, where, the values and operations that show it, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub shard: Option<String>,
    pub values: Vec<Value>,
    pub ops: Vec<OpId>,
    pub what: String,
}

/// What a stream history shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// The drain the final contents come from.
    pub drain: Option<OpId>,
    /// Distinct values some put carried.
    pub attempted: usize,
    /// Of those, values a put acknowledged.
    pub acknowledged: usize,
    /// Values every put of which surely failed.
    pub refused: usize,
    /// Values whose puts were all of unknown outcome (or refused), none acknowledged.
    pub unknown: usize,
    /// Of those, values that were read.
    pub recovered: usize,
    /// Distinct values read.
    pub read_values: usize,
    /// Records returned by every GetRecords, the drain's included.
    pub records_read: usize,
    /// Successful GetRecords checked.
    pub pages: usize,
    /// (reader, shard) read chains checked, the drain's included.
    pub chains: usize,
    /// Shards the drain read, and the records it found in them.
    pub final_shards: usize,
    pub final_records: usize,
    /// Each child shard with its parents, as the history shows them.
    pub lineage: BTreeMap<String, BTreeSet<String>>,
    /// Acknowledged, not read, and no drain to say they are gone.
    pub unconfirmed: Vec<Value>,
    /// Every anomaly counted by kind; at most [`ANOMALIES_KEPT`] of each kind kept.
    pub counts: BTreeMap<AnomalyKind, usize>,
    pub anomalies: Vec<Anomaly>,
}

impl StreamReport {
    pub fn validity(&self) -> Validity {
        if self.counts.values().any(|c| *c > 0) {
            Validity::Invalid
        } else if !self.unconfirmed.is_empty() || (self.drain.is_none() && self.attempted > 0) {
            Validity::Unknown
        } else {
            Validity::Valid
        }
    }

    /// How many anomalies of `kind` were found.
    pub fn count(&self, kind: AnomalyKind) -> usize {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// The anomalies of `kind` kept.
    pub fn of_kind(&self, kind: AnomalyKind) -> impl Iterator<Item = &Anomaly> {
        self.anomalies.iter().filter(move |a| a.kind == kind)
    }

    fn push(&mut self, anomaly: Anomaly) {
        let count = self.counts.entry(anomaly.kind).or_default();
        *count += 1;
        if *count <= ANOMALIES_KEPT {
            self.anomalies.push(anomaly);
        }
    }
}

impl fmt::Display for StreamReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stream: {}", self.validity())?;
        match self.drain {
            Some(id) => writeln!(
                f,
                "  final contents (drain #{}): {} records in {} shards",
                id.0, self.final_records, self.final_shards
            )?,
            None => writeln!(f, "  no successful drain: nothing can be called lost")?,
        }
        writeln!(
            f,
            "  values: {} put, {} acknowledged, {} refused, {} unknown ({} of them read); {} \
             read",
            self.attempted,
            self.acknowledged,
            self.refused,
            self.unknown,
            self.recovered,
            self.read_values
        )?;
        writeln!(
            f,
            "  reads: {} pages, {} records, {} reader chains",
            self.pages, self.records_read, self.chains
        )?;
        for (child, parents) in &self.lineage {
            writeln!(f, "  {child} comes from {parents:?}")?;
        }
        if !self.unconfirmed.is_empty() {
            let shown: Vec<Value> = self
                .unconfirmed
                .iter()
                .copied()
                .take(VALUES_LISTED)
                .collect();
            writeln!(
                f,
                "  unconfirmed (acknowledged, never read, no drain): {} {shown:?}",
                self.unconfirmed.len()
            )?;
        }
        for (kind, count) in &self.counts {
            writeln!(f, "  {kind}: {count}")?;
            for a in self.of_kind(*kind).take(VALUES_LISTED) {
                writeln!(f, "    {}", a.what)?;
            }
        }
        Ok(())
    }
}

/// What became of one record of a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryState<'a> {
    Applied { shard: &'a str, sequence: &'a str },
    Refused,
    Unknown,
}

/// One record of a put, where.
#[derive(Debug, Clone, Copy)]
struct PutAt<'a> {
    op: &'a Operation,
    put: &'a StreamPut,
    state: EntryState<'a>,
}

/// A successful GetRecords.
#[derive(Debug, Clone, Copy)]
struct ReadAt<'a> {
    op: &'a Operation,
    shard: &'a str,
    reader: u64,
    after: Option<&'a str>,
    records: &'a [StreamRecord],
    children: Option<&'a [ShardInfo]>,
}

impl ReadAt<'_> {
    fn completed(&self) -> Tick {
        self.op.completed_at.unwrap_or(Tick::MAX)
    }
}

/// A history's stream operations.
#[derive(Debug, Default)]
struct StreamIndex<'a> {
    puts: BTreeMap<Value, Vec<PutAt<'a>>>,
    /// Successful GetRecords, in history order.
    reads: Vec<ReadAt<'a>>,
    /// When each reader first touched each shard (GetShardIterator or GetRecords, whatever
    /// their outcome).
    first_touch: BTreeMap<(u64, &'a str), Tick>,
    /// The successful ListShards invoked last.
    listing: Option<&'a [ShardInfo]>,
    /// The successful drain invoked last.
    drain: Option<&'a Operation>,
}

impl<'a> StreamIndex<'a> {
    fn of(history: &'a History) -> Result<StreamIndex<'a>, CheckError> {
        let mut index = StreamIndex::default();
        let mut listed_at: Option<Tick> = None;
        for op in history.ops() {
            match (&op.op, &op.outcome) {
                (Op::PutRecords(puts), outcome) => {
                    let states: Vec<EntryState<'a>> = match outcome {
                        Outcome::Ok(OpResult::Put(entries)) => {
                            if entries.len() != puts.len() {
                                return Err(CheckError::Malformed {
                                    id: op.id,
                                    model: "stream",
                                    what: format!(
                                        "a put of {} records answered for {}",
                                        puts.len(),
                                        entries.len()
                                    ),
                                });
                            }
                            entries
                                .iter()
                                .map(|e| match e {
                                    PutEntry::Ok { shard, sequence } => EntryState::Applied {
                                        shard: shard.as_str(),
                                        sequence: sequence.as_str(),
                                    },
                                    PutEntry::Refused { .. } => EntryState::Refused,
                                    PutEntry::Unknown { .. } => EntryState::Unknown,
                                })
                                .collect()
                        }
                        Outcome::Ok(_) | Outcome::Info => vec![EntryState::Unknown; puts.len()],
                        Outcome::Fail => vec![EntryState::Refused; puts.len()],
                    };
                    for (put, state) in puts.iter().zip(states) {
                        index
                            .puts
                            .entry(put.value)
                            .or_default()
                            .push(PutAt { op, put, state });
                    }
                }
                (
                    Op::GetRecords {
                        shard,
                        reader,
                        after,
                    },
                    outcome,
                ) => {
                    index.touch(*reader, shard, op.invoked_at);
                    if let Outcome::Ok(OpResult::Records {
                        records, children, ..
                    }) = outcome
                    {
                        index.reads.push(ReadAt {
                            op,
                            shard,
                            reader: *reader,
                            after: after.as_deref(),
                            records,
                            children: children.as_deref(),
                        });
                    }
                }
                (Op::GetShardIterator { shard, reader, .. }, _) => {
                    index.touch(*reader, shard, op.invoked_at);
                }
                (Op::ListShards, Outcome::Ok(OpResult::Shards(shards))) => {
                    if listed_at.is_none_or(|t| op.invoked_at > t) {
                        listed_at = Some(op.invoked_at);
                        index.listing = Some(shards);
                    }
                }
                (Op::Drain, Outcome::Ok(_)) => {
                    if index.drain.is_none_or(|d| op.invoked_at > d.invoked_at) {
                        index.drain = Some(op);
                    }
                }
                (
                    Op::ListShards
                    | Op::Drain
                    | Op::SplitShard { .. }
                    | Op::MergeShards { .. }
                    | Op::Nemesis(_),
                    _,
                ) => {}
                _ => {
                    return Err(CheckError::UnsupportedOp {
                        id: op.id,
                        op: op.op.clone(),
                        model: "stream",
                    })
                }
            }
        }
        Ok(index)
    }

    fn touch(&mut self, reader: u64, shard: &'a str, at: Tick) {
        let first = self.first_touch.entry((reader, shard)).or_insert(at);
        *first = (*first).min(at);
    }

    /// Every shard the history describes (listing and ChildShards), by id.
    fn shard_infos(&self) -> BTreeMap<&'a str, &'a ShardInfo> {
        let mut infos: BTreeMap<&str, &ShardInfo> = BTreeMap::new();
        for read in &self.reads {
            for child in read.children.into_iter().flatten() {
                infos.insert(child.shard.as_str(), child);
            }
        }
        // The listing has what ChildShards lacks (ending sequence numbers): it wins.
        for shard in self.listing.into_iter().flatten() {
            infos.insert(shard.shard.as_str(), shard);
        }
        infos
    }

    /// Each child shard's parents, from ChildShards and the listing.
    fn lineage(&self) -> BTreeMap<&'a str, BTreeSet<&'a str>> {
        let mut lineage: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for read in &self.reads {
            for child in read.children.into_iter().flatten() {
                let parents = lineage.entry(child.shard.as_str()).or_default();
                parents.extend(child.parents.iter().map(String::as_str));
                // A ChildShards entry names the shard it ends as a parent even if the
                // server left ParentShards empty.
                parents.insert(read.shard);
            }
        }
        for shard in self.listing.into_iter().flatten() {
            if !shard.parents.is_empty() {
                lineage
                    .entry(shard.shard.as_str())
                    .or_default()
                    .extend(shard.parents.iter().map(String::as_str));
            }
        }
        lineage
    }
}

/// One shard's final contents: the drain's reads of it, concatenated.
#[derive(Debug, Default)]
struct FinalShard<'a> {
    records: Vec<(&'a StreamRecord, &'a Operation)>,
    /// Position of each sequence number in `records` (the first, if repeated).
    by_sequence: HashMap<&'a str, usize>,
}

impl<'a> FinalShard<'a> {
    fn push(&mut self, record: &'a StreamRecord, op: &'a Operation) {
        self.by_sequence
            .entry(record.sequence.as_str())
            .or_insert(self.records.len());
        self.records.push((record, op));
    }

    /// Where a read that continues after `after` must start.
    fn position_after(&self, after: Option<&str>) -> usize {
        match after {
            None => 0,
            Some(after) => match self.by_sequence.get(after) {
                Some(i) => i + 1,
                None => self
                    .records
                    .iter()
                    .take_while(|(r, _)| compare_sequences(&r.sequence, after) != Ordering::Greater)
                    .count(),
            },
        }
    }
}

/// Checks a stream history (see the module docs).
pub fn check(history: &History) -> Result<StreamReport, CheckError> {
    let index = StreamIndex::of(history)?;
    let mut report = StreamReport {
        drain: index.drain.map(|d| d.id),
        ..StreamReport::default()
    };
    let finals = index.drain.map(|_| final_contents(&index));
    if let Some(finals) = &finals {
        report.final_shards = finals.len();
        report.final_records = finals.values().map(|f| f.records.len()).sum();
    }
    check_chains(&index, finals.as_ref(), &mut report)?;
    check_values(&index, finals.as_ref(), &mut report);
    check_lineage(&index, &mut report);
    check_closed_ends(&index, finals.as_ref(), &mut report);
    report.lineage = index
        .lineage()
        .into_iter()
        .map(|(child, parents)| {
            (
                child.to_string(),
                parents.into_iter().map(str::to_string).collect(),
            )
        })
        .collect();
    Ok(report)
}

/// Every shard's final contents: the drain's reads, in order, by shard.
fn final_contents<'a>(index: &StreamIndex<'a>) -> BTreeMap<&'a str, FinalShard<'a>> {
    let mut finals: BTreeMap<&str, FinalShard<'_>> = BTreeMap::new();
    for shard in index.listing.into_iter().flatten() {
        finals.entry(shard.shard.as_str()).or_default();
    }
    for read in index.reads.iter().filter(|r| r.reader == DRAIN_READER) {
        let shard = finals.entry(read.shard).or_default();
        for record in read.records {
            shard.push(record, read.op);
        }
    }
    finals
}

/// Each reader's reads of each shard: sequence numbers strictly increase, every page
/// continues where the reader was, and (against the final contents) nothing is skipped,
/// nothing differs and no end comes early.
fn check_chains(
    index: &StreamIndex<'_>,
    finals: Option<&BTreeMap<&str, FinalShard<'_>>>,
    report: &mut StreamReport,
) -> Result<(), CheckError> {
    let mut chains: BTreeMap<(u64, &str), Vec<&ReadAt<'_>>> = BTreeMap::new();
    for read in &index.reads {
        chains
            .entry((read.reader, read.shard))
            .or_default()
            .push(read);
    }
    report.chains = chains.len();
    let empty = FinalShard::default();
    for ((reader, shard), reads) in chains {
        let full = finals.map(|f| f.get(shard).unwrap_or(&empty));
        let compare = full.filter(|_| reader != DRAIN_READER);
        let mut last: Option<&StreamRecord> = None;
        for read in reads {
            report.pages += 1;
            report.records_read += read.records.len();
            if read.after != last.map(|r| r.sequence.as_str()) {
                return Err(CheckError::Malformed {
                    id: read.op.id,
                    model: "stream",
                    what: format!(
                        "reader {reader} read {shard} after {:?}, but the last record it had \
                         read there is {:?}",
                        read.after,
                        last.map(|r| &r.sequence)
                    ),
                });
            }
            let mut position = compare.map(|full| full.position_after(read.after));
            for record in read.records {
                if let Some(previous) = last {
                    if compare_sequences(&record.sequence, &previous.sequence) != Ordering::Greater
                    {
                        report.push(Anomaly {
                            kind: AnomalyKind::Reordered,
                            shard: Some(shard.to_string()),
                            values: vec![previous.value, record.value],
                            ops: vec![read.op.id],
                            what: format!(
                                "{shard}: #{} (reader {}) returned {} at {} after {} at {}",
                                read.op.id.0,
                                reader_name(reader),
                                record.value,
                                record.sequence,
                                previous.value,
                                previous.sequence
                            ),
                        });
                    }
                }
                last = Some(record);
                let (Some(full), Some(expected)) = (compare, position.as_mut()) else {
                    continue;
                };
                match full.by_sequence.get(record.sequence.as_str()) {
                    None => report.push(Anomaly {
                        kind: AnomalyKind::Divergent,
                        shard: Some(shard.to_string()),
                        values: vec![record.value],
                        ops: vec![read.op.id],
                        what: format!(
                            "{shard}: #{} (reader {}) returned {} at {}, which the final \
                             contents of the shard do not hold",
                            read.op.id.0,
                            reader_name(reader),
                            record.value,
                            record.sequence
                        ),
                    }),
                    Some(&at) => {
                        let (held, drain_op) = full.records[at];
                        if (held.value, &held.partition_key)
                            != (record.value, &record.partition_key)
                        {
                            report.push(Anomaly {
                                kind: AnomalyKind::Divergent,
                                shard: Some(shard.to_string()),
                                values: vec![record.value, held.value],
                                ops: vec![read.op.id, drain_op.id],
                                what: format!(
                                    "{shard}: #{} (reader {}) returned {} (key {}) at {}, \
                                     the drain #{} {} (key {})",
                                    read.op.id.0,
                                    reader_name(reader),
                                    record.value,
                                    record.partition_key,
                                    record.sequence,
                                    drain_op.id.0,
                                    held.value,
                                    held.partition_key
                                ),
                            });
                        }
                        if at > *expected {
                            let skipped = &full.records[*expected..at];
                            report.push(Anomaly {
                                kind: AnomalyKind::Skipped,
                                shard: Some(shard.to_string()),
                                values: skipped
                                    .iter()
                                    .map(|(r, _)| r.value)
                                    .take(VALUES_LISTED)
                                    .collect(),
                                ops: vec![read.op.id],
                                what: format!(
                                    "{shard}: #{} (reader {}, after {}) returned {} at {} \
                                     but skipped {} records from {} at {}",
                                    read.op.id.0,
                                    reader_name(reader),
                                    read.after.unwrap_or("the start"),
                                    record.value,
                                    record.sequence,
                                    skipped.len(),
                                    skipped[0].0.value,
                                    skipped[0].0.sequence
                                ),
                            });
                        }
                        *expected = (*expected).max(at + 1);
                    }
                }
            }
            if let (Some(full), Some(expected), Some(_)) = (compare, position, read.children) {
                if expected < full.records.len() {
                    let next = full.records[expected].0;
                    report.push(Anomaly {
                        kind: AnomalyKind::EarlyEnd,
                        shard: Some(shard.to_string()),
                        values: full.records[expected..]
                            .iter()
                            .map(|(r, _)| r.value)
                            .take(VALUES_LISTED)
                            .collect(),
                        ops: vec![read.op.id],
                        what: format!(
                            "{shard}: #{} (reader {}) reported the end of the shard after {}, \
                             but it holds {} more records from {} at {}",
                            read.op.id.0,
                            reader_name(reader),
                            last.map(|r| r.sequence.as_str()).unwrap_or("its start"),
                            full.records.len() - expected,
                            next.value,
                            next.sequence
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// A place a value was read: shard, sequence number, and the read.
type Place<'a> = (&'a str, &'a str);

/// Lost, misplaced, unexpected, failed but read, duplicates, corrupt and misrouted,
/// value by value.
fn check_values(
    index: &StreamIndex<'_>,
    finals: Option<&BTreeMap<&str, FinalShard<'_>>>,
    report: &mut StreamReport,
) {
    let mut reads_of: BTreeMap<Value, Vec<(&ReadAt<'_>, &StreamRecord)>> = BTreeMap::new();
    for read in &index.reads {
        for record in read.records {
            reads_of
                .entry(record.value)
                .or_default()
                .push((read, record));
        }
    }
    let infos = index.shard_infos();
    let values: BTreeSet<Value> = index.puts.keys().chain(reads_of.keys()).copied().collect();
    let none = Vec::new();
    for value in values {
        let puts = index.puts.get(&value).unwrap_or(&none);
        let reads = reads_of.get(&value).map(Vec::as_slice).unwrap_or(&[]);
        let applied: Vec<&PutAt<'_>> = puts
            .iter()
            .filter(|p| matches!(p.state, EntryState::Applied { .. }))
            .collect();
        let refused = puts.iter().all(|p| p.state == EntryState::Refused);
        report.attempted += usize::from(!puts.is_empty());
        report.read_values += usize::from(!reads.is_empty());
        if !applied.is_empty() {
            report.acknowledged += 1;
        } else if !puts.is_empty() && refused {
            report.refused += 1;
        } else if !puts.is_empty() {
            report.unknown += 1;
            report.recovered += usize::from(!reads.is_empty());
        }
        let places: BTreeMap<Place<'_>, OpId> = reads
            .iter()
            .map(|(read, record)| ((read.shard, record.sequence.as_str()), read.op.id))
            .fold(BTreeMap::new(), |mut places, (place, op)| {
                places.entry(place).or_insert(op);
                places
            });
        // Unexpected: read before any put of it was invoked (or never put).
        let first_put = puts.iter().map(|p| p.op.invoked_at).min();
        if let Some((read, _)) = reads
            .iter()
            .filter(|(read, _)| first_put.is_none_or(|t| read.completed() < t))
            .min_by_key(|(read, _)| read.completed())
        {
            report.push(Anomaly {
                kind: AnomalyKind::Unexpected,
                shard: Some(read.shard.to_string()),
                values: vec![value],
                ops: vec![read.op.id],
                what: format!(
                    "{value} read by #{} in {} {}",
                    read.op.id.0,
                    read.shard,
                    match first_put {
                        Some(_) => "before any put of it was invoked",
                        None => "but never put",
                    }
                ),
            });
        }
        if !reads.is_empty() && !puts.is_empty() && refused {
            let (read, record) = reads[0];
            report.push(Anomaly {
                kind: AnomalyKind::FailedButRead,
                shard: Some(read.shard.to_string()),
                values: vec![value],
                ops: puts.iter().map(|p| p.op.id).chain([read.op.id]).collect(),
                what: format!(
                    "{value}: every put of it surely failed (#{}), read by #{} in {} at {}",
                    puts[0].op.id.0, read.op.id.0, read.shard, record.sequence
                ),
            });
        }
        // Duplicates: more places than puts that may have appended it.
        let may_append = puts
            .iter()
            .filter(|p| p.state != EntryState::Refused)
            .count()
            .max(1);
        if places.len() > may_append {
            let shown: Vec<String> = places
                .iter()
                .map(|((shard, sequence), op)| format!("{shard} at {sequence} (#{})", op.0))
                .collect();
            report.push(Anomaly {
                kind: AnomalyKind::Duplicate,
                shard: places.keys().next().map(|(s, _)| s.to_string()),
                values: vec![value],
                ops: places.values().copied().collect(),
                what: format!(
                    "{value}: put {} time(s), read at {} places: {}",
                    may_append,
                    places.len(),
                    shown.join(", ")
                ),
            });
        }
        // Corrupt: another partition key than the put sent.
        if let Some(put) = puts.first() {
            if let Some((read, record)) = reads
                .iter()
                .find(|(_, r)| r.partition_key != put.put.partition_key)
            {
                report.push(Anomaly {
                    kind: AnomalyKind::Corrupt,
                    shard: Some(read.shard.to_string()),
                    values: vec![value],
                    ops: vec![put.op.id, read.op.id],
                    what: format!(
                        "{value} put by #{} with key {}, read by #{} with key {}",
                        put.op.id.0, put.put.partition_key, read.op.id.0, record.partition_key
                    ),
                });
            }
        }
        for put in applied {
            let EntryState::Applied { shard, sequence } = put.state else {
                continue;
            };
            check_acknowledged(
                value,
                put,
                (shard, sequence),
                &places,
                finals,
                index.drain,
                report,
            );
            check_route(value, put, shard, &infos, report);
        }
    }
}

/// An acknowledged record must be in its shard's final contents where the put said.
fn check_acknowledged(
    value: Value,
    put: &PutAt<'_>,
    (shard, sequence): Place<'_>,
    places: &BTreeMap<Place<'_>, OpId>,
    finals: Option<&BTreeMap<&str, FinalShard<'_>>>,
    drain: Option<&Operation>,
    report: &mut StreamReport,
) {
    let held = match finals {
        Some(finals) => finals.get(shard).is_some_and(|full| {
            full.by_sequence
                .get(sequence)
                .is_some_and(|at| full.records[*at].0.value == value)
        }),
        None => places.contains_key(&(shard, sequence)),
    };
    if held {
        return;
    }
    if let Some(((other_shard, other_sequence), op)) = places
        .iter()
        .find(|(place, _)| **place != (shard, sequence))
    {
        report.push(Anomaly {
            kind: AnomalyKind::Misplaced,
            shard: Some(shard.to_string()),
            values: vec![value],
            ops: vec![put.op.id, *op],
            what: format!(
                "{value}: #{} acknowledged it in {shard} at {sequence}, #{} read it in \
                 {other_shard} at {other_sequence}",
                put.op.id.0, op.0
            ),
        });
        return;
    }
    let acknowledged = put.op.completed_at.unwrap_or(Tick::MAX);
    match drain {
        Some(drain) if finals.is_some() && acknowledged < drain.invoked_at => {
            report.push(Anomaly {
                kind: AnomalyKind::Lost,
                shard: Some(shard.to_string()),
                values: vec![value],
                ops: vec![put.op.id, drain.id],
                what: format!(
                    "{value}: #{} acknowledged it in {shard} at {sequence}; the drain #{} did \
                     not find it{}",
                    put.op.id.0,
                    drain.id.0,
                    if places.is_empty() {
                        ", nor did any read"
                    } else {
                        " (an earlier read did)"
                    }
                ),
            });
        }
        _ => report.unconfirmed.push(value),
    }
}

/// An acknowledged record's shard must hold its hash key.
fn check_route(
    value: Value,
    put: &PutAt<'_>,
    shard: &str,
    infos: &BTreeMap<&str, &ShardInfo>,
    report: &mut StreamReport,
) {
    let (Some(info), Some(hash)) = (infos.get(shard), hash_key_of(put.put)) else {
        return;
    };
    let (Ok(start), Ok(end)) = (
        info.starting_hash_key.parse::<u128>(),
        info.ending_hash_key.parse::<u128>(),
    ) else {
        return;
    };
    if !(start..=end).contains(&hash) {
        report.push(Anomaly {
            kind: AnomalyKind::Misrouted,
            shard: Some(shard.to_string()),
            values: vec![value],
            ops: vec![put.op.id],
            what: format!(
                "{value}: #{} acknowledged it in {shard} (hash keys {start}..={end}), its hash \
                 key is {hash}",
                put.op.id.0
            ),
        });
    }
}

/// Parents before children: no reader touches a child before reading each parent to its
/// end, and no put is acknowledged in a parent after it was invoked later than a put
/// acknowledged in one of its children.
fn check_lineage(index: &StreamIndex<'_>, report: &mut StreamReport) {
    let lineage = index.lineage();
    // When each reader reached the end of each shard.
    let mut ended: BTreeMap<(u64, &str), Tick> = BTreeMap::new();
    for read in index.reads.iter().filter(|r| r.children.is_some()) {
        let at = ended.entry((read.reader, read.shard)).or_insert(Tick::MAX);
        *at = (*at).min(read.completed());
    }
    for (&(reader, shard), &touched) in &index.first_touch {
        for parent in lineage.get(shard).into_iter().flatten() {
            let end = ended.get(&(reader, *parent)).copied();
            if end.is_none_or(|end| end >= touched) {
                report.push(Anomaly {
                    kind: AnomalyKind::ChildBeforeParent,
                    shard: Some(shard.to_string()),
                    values: Vec::new(),
                    ops: Vec::new(),
                    what: format!(
                        "reader {} read {shard} (at tick {touched}) before the end of its \
                         parent {parent} ({})",
                        reader_name(reader),
                        match end {
                            Some(end) => format!("reached at tick {end}"),
                            None => "never reached".into(),
                        }
                    ),
                });
            }
        }
    }
    // Acknowledged puts by shard.
    let mut applied: BTreeMap<&str, Vec<&PutAt<'_>>> = BTreeMap::new();
    for put in index.puts.values().flatten() {
        if let EntryState::Applied { shard, .. } = put.state {
            applied.entry(shard).or_default().push(put);
        }
    }
    for (child, parents) in &lineage {
        let Some(first_child) = applied
            .get(child)
            .into_iter()
            .flatten()
            .filter(|p| p.op.completed_at.is_some())
            .min_by_key(|p| p.op.completed_at)
        else {
            continue;
        };
        let child_acknowledged = first_child.op.completed_at.unwrap_or(Tick::MAX);
        for parent in parents {
            for late in applied
                .get(parent)
                .into_iter()
                .flatten()
                .filter(|p| p.op.invoked_at > child_acknowledged)
            {
                report.push(Anomaly {
                    kind: AnomalyKind::ParentAfterChild,
                    shard: Some(parent.to_string()),
                    values: vec![first_child.put.value, late.put.value],
                    ops: vec![first_child.op.id, late.op.id],
                    what: format!(
                        "#{} appended {} to {parent} although it began after #{} had \
                         appended {} to its child {child}",
                        late.op.id.0, late.put.value, first_child.op.id.0, first_child.put.value
                    ),
                });
            }
        }
    }
}

/// A closed shard (as the listing shows it) holds nothing past its ending sequence number,
/// in its final contents or in any acknowledged put.
fn check_closed_ends(
    index: &StreamIndex<'_>,
    finals: Option<&BTreeMap<&str, FinalShard<'_>>>,
    report: &mut StreamReport,
) {
    for info in index.listing.into_iter().flatten() {
        let Some(ending) = info.ending_sequence.as_deref() else {
            continue;
        };
        let shard = info.shard.as_str();
        let beyond = |sequence: &str| compare_sequences(sequence, ending) == Ordering::Greater;
        let mut values: Vec<Value> = Vec::new();
        let mut ops: Vec<OpId> = Vec::new();
        if let Some(full) = finals.and_then(|f| f.get(shard)) {
            for (record, op) in full.records.iter().filter(|(r, _)| beyond(&r.sequence)) {
                values.push(record.value);
                ops.push(op.id);
            }
        }
        for put in index.puts.values().flatten() {
            if let EntryState::Applied { shard: s, sequence } = put.state {
                if s == shard && beyond(sequence) && !values.contains(&put.put.value) {
                    values.push(put.put.value);
                    ops.push(put.op.id);
                }
            }
        }
        if !values.is_empty() {
            let count = values.len();
            values.truncate(VALUES_LISTED);
            ops.truncate(VALUES_LISTED);
            report.push(Anomaly {
                kind: AnomalyKind::EarlyEnd,
                shard: Some(shard.to_string()),
                values: values.clone(),
                ops,
                what: format!(
                    "{shard} closed at {ending}, yet {count} records lie past it: {values:?}"
                ),
            });
        }
    }
}

fn reader_name(reader: u64) -> String {
    if reader == DRAIN_READER {
        "drain".into()
    } else {
        reader.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Key, ProcessId, WallClock};

    const S0: &str = "shardId-000000000000";
    const S1: &str = "shardId-000000000001";
    const S2: &str = "shardId-000000000002";
    const S3: &str = "shardId-000000000003";

    /// A sequence number of shard `shard` at `position`, as the nodes render them.
    fn seq(shard: u32, position: u64) -> String {
        format!("49{shard:010}{position:044}")
    }

    fn info(
        shard: &str,
        parents: &[&str],
        range: (u128, u128),
        ending: Option<String>,
    ) -> ShardInfo {
        ShardInfo {
            shard: shard.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            starting_hash_key: range.0.to_string(),
            ending_hash_key: range.1.to_string(),
            ending_sequence: ending,
        }
    }

    const HALF: u128 = u128::MAX / 2;
    const QUARTER: u128 = u128::MAX / 4;

    /// Builds hand-made stream histories: every event takes the next tick.
    #[derive(Default)]
    struct Builder {
        ops: Vec<Operation>,
        tick: Tick,
        /// Each reader's last record read of each shard.
        last: BTreeMap<(u64, String), String>,
    }

    impl Builder {
        fn push(&mut self, op: Op, outcome: Outcome) -> OpId {
            let id = OpId(self.ops.len() as u64);
            let invoked_at = self.tick;
            let completed_at = self.tick + 1;
            self.tick += 2;
            self.ops.push(Operation {
                id,
                process: ProcessId(0),
                key: Key::new(),
                op,
                invoked_at,
                completed_at: Some(completed_at),
                outcome,
                wall: WallClock::default(),
            });
            id
        }

        /// A put of (value, explicit hash key) answered with `entries`.
        fn put(&mut self, records: &[(Value, u128)], outcome: Outcome) -> OpId {
            let op = Op::PutRecords(
                records
                    .iter()
                    .map(|(value, hash)| StreamPut {
                        value: *value,
                        partition_key: format!("k{value}"),
                        explicit_hash_key: Some(hash.to_string()),
                    })
                    .collect(),
            );
            self.push(op, outcome)
        }

        /// A put of `value` by hash `hash`, acknowledged at `shard`/`sequence`.
        fn put_ok(&mut self, value: Value, hash: u128, shard: &str, sequence: String) -> OpId {
            self.put(
                &[(value, hash)],
                Outcome::Ok(OpResult::Put(vec![PutEntry::Ok {
                    shard: shard.into(),
                    sequence,
                }])),
            )
        }

        /// A GetRecords by `reader` on `shard` continuing where the reader was, returning
        /// (value, sequence) and, with `children`, the end of the shard.
        fn read(
            &mut self,
            reader: u64,
            shard: &str,
            got: &[(Value, String)],
            children: Option<Vec<ShardInfo>>,
        ) -> OpId {
            let key = (reader, shard.to_string());
            let after = self.last.get(&key).cloned();
            if let Some((_, sequence)) = got.last() {
                self.last.insert(key, sequence.clone());
            }
            let records = got
                .iter()
                .map(|(value, sequence)| StreamRecord {
                    value: *value,
                    sequence: sequence.clone(),
                    partition_key: format!("k{value}"),
                })
                .collect();
            self.push(
                Op::GetRecords {
                    shard: shard.into(),
                    reader,
                    after,
                },
                Outcome::Ok(OpResult::Records {
                    records,
                    children,
                    behind_ms: 0,
                }),
            )
        }

        fn list(&mut self, shards: Vec<ShardInfo>) -> OpId {
            self.push(Op::ListShards, Outcome::Ok(OpResult::Shards(shards)))
        }

        fn drain(&mut self) -> OpId {
            self.push(Op::Drain, Outcome::Ok(OpResult::Done))
        }

        fn history(&self) -> History {
            History::from_ops(self.ops.clone()).unwrap()
        }

        fn check(&self) -> StreamReport {
            check(&self.history()).unwrap()
        }
    }

    /// Two shards; shard 0 is split into 2 and 3 halfway; consumer 0 reads everything in
    /// small pages (parents first), the drain reads it all again.
    fn valid_history() -> Builder {
        let mut b = Builder::default();
        let low = QUARTER; // in shard 0, then in shard 2
        let high = HALF + 7; // in shard 1
        let upper_low = QUARTER + QUARTER / 2; // in shard 0, then in shard 3
        b.put_ok(1, low, S0, seq(0, 0));
        b.put_ok(2, high, S1, seq(1, 0));
        b.put(
            &[(3, low), (4, high), (5, upper_low)],
            Outcome::Ok(OpResult::Put(vec![
                PutEntry::Ok {
                    shard: S0.into(),
                    sequence: seq(0, 1),
                },
                PutEntry::Refused {
                    code: "ProvisionedThroughputExceededException".into(),
                },
                PutEntry::Ok {
                    shard: S0.into(),
                    sequence: seq(0, 2),
                },
            ])),
        );
        b.put(&[(6, high)], Outcome::Fail);
        b.put(&[(7, high)], Outcome::Info); // happened: read below
        b.put(&[(8, low)], Outcome::Info); // did not
        b.read(0, S0, &[(1, seq(0, 0))], None);
        b.read(0, S1, &[(2, seq(1, 0)), (7, seq(1, 1))], None);
        b.read(0, S0, &[], None);
        let children = vec![
            info(S2, &[S0], (0, QUARTER + 1), None),
            info(S3, &[S0], (QUARTER + 2, HALF), None),
        ];
        b.push(
            Op::SplitShard {
                shard: S0.into(),
                hash_key: (QUARTER + 2).to_string(),
            },
            Outcome::Ok(OpResult::Done),
        );
        b.put_ok(9, low, S2, seq(2, 0));
        b.put_ok(10, upper_low, S3, seq(3, 0));
        b.read(
            0,
            S0,
            &[(3, seq(0, 1)), (5, seq(0, 2))],
            Some(children.clone()),
        );
        b.read(0, S2, &[(9, seq(2, 0))], None);
        b.read(0, S3, &[], None);
        b.drain();
        b.list(vec![
            info(S0, &[], (0, HALF), Some(seq(0, 2))),
            info(S1, &[], (HALF + 1, u128::MAX), None),
            info(S2, &[S0], (0, QUARTER + 1), None),
            info(S3, &[S0], (QUARTER + 2, HALF), None),
        ]);
        let d = DRAIN_READER;
        b.read(
            d,
            S0,
            &[(1, seq(0, 0)), (3, seq(0, 1)), (5, seq(0, 2))],
            Some(children),
        );
        b.read(d, S1, &[(2, seq(1, 0)), (7, seq(1, 1))], None);
        b.read(d, S1, &[], None);
        b.read(d, S2, &[(9, seq(2, 0))], None);
        b.read(d, S3, &[(10, seq(3, 0))], None);
        b
    }

    #[test]
    fn a_complete_history_read_in_order_is_valid() {
        let report = valid_history().check();
        assert_eq!(report.validity(), Validity::Valid, "{report}");
        assert_eq!(report.attempted, 10);
        assert_eq!(report.acknowledged, 6);
        assert_eq!(report.refused, 2);
        assert_eq!(report.unknown, 2);
        assert_eq!(report.recovered, 1);
        assert_eq!(report.read_values, 7);
        assert_eq!((report.final_shards, report.final_records), (4, 7));
        assert_eq!(report.chains, 8);
        assert_eq!(
            report.lineage[S2],
            BTreeSet::from([S0.to_string()]),
            "{report}"
        );
        assert!(report.to_string().contains("stream: valid"), "{report}");
    }

    #[test]
    fn an_acknowledged_record_the_drain_does_not_find_is_lost() {
        let mut b = Builder::default();
        b.put_ok(1, 5, S0, seq(0, 0));
        b.put_ok(2, 5, S0, seq(0, 1));
        b.read(0, S0, &[(1, seq(0, 0))], None);
        // Without a drain it is only unconfirmed.
        let report = b.check();
        assert_eq!(report.validity(), Validity::Unknown, "{report}");
        assert_eq!(report.unconfirmed, vec![2]);
        b.drain();
        b.read(DRAIN_READER, S0, &[(1, seq(0, 0))], None);
        let report = b.check();
        assert_eq!(report.validity(), Validity::Invalid, "{report}");
        assert_eq!(report.count(AnomalyKind::Lost), 1, "{report}");
        assert_eq!(
            report.of_kind(AnomalyKind::Lost).next().unwrap().values,
            [2]
        );
    }

    #[test]
    fn a_record_at_two_sequence_numbers_is_a_duplicate() {
        let mut b = Builder::default();
        b.put_ok(1, 5, S0, seq(0, 0));
        b.put_ok(2, 5, S0, seq(0, 1));
        b.drain();
        b.read(
            DRAIN_READER,
            S0,
            &[(1, seq(0, 0)), (2, seq(0, 1)), (1, seq(0, 2))],
            None,
        );
        let report = b.check();
        assert_eq!(report.validity(), Validity::Invalid, "{report}");
        assert_eq!(report.count(AnomalyKind::Duplicate), 1, "{report}");
        let duplicate = report.of_kind(AnomalyKind::Duplicate).next().unwrap();
        assert_eq!(duplicate.values, [1]);
        assert!(duplicate.what.contains("read at 2 places"), "{report}");
        // A put of unknown outcome that the server applied twice is a duplicate too.
        let mut b = Builder::default();
        b.put(&[(1, 5)], Outcome::Info);
        b.drain();
        b.read(DRAIN_READER, S0, &[(1, seq(0, 0)), (1, seq(0, 1))], None);
        assert_eq!(b.check().count(AnomalyKind::Duplicate), 1);
    }

    #[test]
    fn sequence_numbers_going_backwards_are_reordered() {
        let mut b = Builder::default();
        b.put_ok(1, 5, S0, seq(0, 0));
        b.put_ok(2, 5, S0, seq(0, 1));
        b.put_ok(3, 5, S0, seq(0, 2));
        b.read(0, S0, &[(1, seq(0, 0)), (3, seq(0, 2))], None);
        b.read(0, S0, &[(2, seq(0, 1))], None);
        b.drain();
        b.read(
            DRAIN_READER,
            S0,
            &[(1, seq(0, 0)), (2, seq(0, 1)), (3, seq(0, 2))],
            None,
        );
        let report = b.check();
        assert_eq!(report.validity(), Validity::Invalid, "{report}");
        assert_eq!(report.count(AnomalyKind::Reordered), 1, "{report}");
        assert_eq!(
            report
                .of_kind(AnomalyKind::Reordered)
                .next()
                .unwrap()
                .values,
            [3, 2]
        );
        // The first page skipped 2 on its way to 3.
        assert_eq!(report.count(AnomalyKind::Skipped), 1, "{report}");
        // Numbers compare as numbers, not as text.
        assert_eq!(compare_sequences("10", "9"), Ordering::Greater);
        assert_eq!(compare_sequences("0009", "9"), Ordering::Equal);
    }

    #[test]
    fn a_page_that_does_not_continue_the_previous_one_skipped_records() {
        let mut b = Builder::default();
        for (value, position) in [(1, 0), (2, 1), (3, 2), (4, 3)] {
            b.put_ok(value, 5, S0, seq(0, position));
        }
        b.read(0, S0, &[(1, seq(0, 0))], None);
        // 2 and 3 are never returned to reader 0: its next page starts at 4.
        b.read(0, S0, &[(4, seq(0, 3))], None);
        b.drain();
        b.read(
            DRAIN_READER,
            S0,
            &[
                (1, seq(0, 0)),
                (2, seq(0, 1)),
                (3, seq(0, 2)),
                (4, seq(0, 3)),
            ],
            None,
        );
        let report = b.check();
        assert_eq!(report.validity(), Validity::Invalid, "{report}");
        assert_eq!(report.count(AnomalyKind::Skipped), 1, "{report}");
        let skip = report.of_kind(AnomalyKind::Skipped).next().unwrap();
        assert_eq!(skip.values, [2, 3]);
        assert!(skip.what.contains("skipped 2 records"), "{report}");
        // A first page that does not start at the shard's first record skipped too.
        let mut b = Builder::default();
        b.put_ok(1, 5, S0, seq(0, 0));
        b.put_ok(2, 5, S0, seq(0, 1));
        b.read(1, S0, &[(2, seq(0, 1))], None);
        b.drain();
        b.read(DRAIN_READER, S0, &[(1, seq(0, 0)), (2, seq(0, 1))], None);
        assert_eq!(b.check().count(AnomalyKind::Skipped), 1);
    }

    #[test]
    fn an_end_of_shard_before_its_last_record_is_flagged() {
        let mut b = Builder::default();
        b.put_ok(1, 5, S0, seq(0, 0));
        b.read(0, S0, &[], Some(vec![info(S2, &[S0], (0, 9), None)]));
        b.put_ok(2, 5, S0, seq(0, 1));
        b.drain();
        b.read(
            DRAIN_READER,
            S0,
            &[(1, seq(0, 0)), (2, seq(0, 1))],
            Some(vec![info(S2, &[S0], (0, 9), None)]),
        );
        let report = b.check();
        assert_eq!(report.count(AnomalyKind::EarlyEnd), 1, "{report}");
        // Reader 0 also skipped 1: it got no record before the end.
        assert!(report.validity() == Validity::Invalid);
        // A put acknowledged in S0 after S2 had one is a parent written after its child.
        assert_eq!(report.count(AnomalyKind::ParentAfterChild), 0);
        let mut b = Builder::default();
        b.put_ok(1, 5, S2, seq(2, 0));
        b.put_ok(2, 5, S0, seq(0, 0));
        b.read(
            0,
            S0,
            &[(2, seq(0, 0))],
            Some(vec![info(S2, &[S0], (0, 9), None)]),
        );
        b.read(0, S2, &[(1, seq(2, 0))], None);
        b.drain();
        b.read(
            DRAIN_READER,
            S0,
            &[(2, seq(0, 0))],
            Some(vec![info(S2, &[S0], (0, 9), None)]),
        );
        b.read(DRAIN_READER, S2, &[(1, seq(2, 0))], None);
        let report = b.check();
        assert_eq!(report.count(AnomalyKind::ParentAfterChild), 1, "{report}");
    }

    #[test]
    fn reading_a_child_before_its_parent_ends_is_flagged() {
        let mut b = Builder::default();
        b.put_ok(1, 5, S2, seq(2, 0));
        b.read(0, S2, &[(1, seq(2, 0))], None);
        b.read(0, S0, &[], Some(vec![info(S2, &[S0], (0, 9), None)]));
        b.drain();
        b.read(
            DRAIN_READER,
            S0,
            &[],
            Some(vec![info(S2, &[S0], (0, 9), None)]),
        );
        b.read(DRAIN_READER, S2, &[(1, seq(2, 0))], None);
        let report = b.check();
        assert_eq!(report.count(AnomalyKind::ChildBeforeParent), 1, "{report}");
    }

    #[test]
    fn refused_unknown_and_invented_records_are_told_apart() {
        let mut b = Builder::default();
        b.read(0, S0, &[(9, seq(0, 0))], None); // before any put of 9
        b.put_ok(9, 5, S0, seq(0, 0));
        b.put(&[(1, 5)], Outcome::Fail);
        b.put(
            &[(2, 5), (3, 5)],
            Outcome::Ok(OpResult::Put(vec![
                PutEntry::Refused {
                    code: "ProvisionedThroughputExceededException".into(),
                },
                PutEntry::Unknown {
                    code: "InternalFailure".into(),
                },
            ])),
        );
        b.drain();
        b.read(
            DRAIN_READER,
            S0,
            &[
                (9, seq(0, 0)),
                (1, seq(0, 1)),
                (2, seq(0, 2)),
                (3, seq(0, 3)),
                (77, seq(0, 4)),
            ],
            None,
        );
        let report = b.check();
        assert_eq!(report.validity(), Validity::Invalid);
        let values = |kind| -> Vec<Value> {
            report
                .of_kind(kind)
                .flat_map(|a| a.values.clone())
                .collect()
        };
        assert_eq!(values(AnomalyKind::Unexpected), [9, 77], "{report}");
        assert_eq!(values(AnomalyKind::FailedButRead), [1, 2], "{report}");
        assert_eq!(report.recovered, 1);
    }

    #[test]
    fn records_in_the_wrong_place_are_misplaced_divergent_or_misrouted() {
        let mut b = Builder::default();
        b.put_ok(1, 5, S0, seq(0, 0));
        // Acknowledged in S1, but hash 5 is in S0's range.
        b.put_ok(2, 5, S1, seq(1, 0));
        b.read(0, S0, &[(1, seq(0, 0)), (4, seq(0, 1))], None);
        b.put(&[(4, 5)], Outcome::Info);
        b.drain();
        b.list(vec![
            info(S0, &[], (0, HALF), None),
            info(S1, &[], (HALF + 1, u128::MAX), None),
        ]);
        b.read(DRAIN_READER, S0, &[(1, seq(0, 0)), (2, seq(0, 5))], None);
        b.read(DRAIN_READER, S1, &[], None);
        let report = b.check();
        assert_eq!(report.count(AnomalyKind::Misplaced), 1, "{report}");
        assert_eq!(report.count(AnomalyKind::Misrouted), 1, "{report}");
        // Reader 0 saw 4 at a place the final contents do not hold; 4 was read before its
        // put began, too.
        assert_eq!(report.count(AnomalyKind::Divergent), 1, "{report}");
        assert_eq!(report.count(AnomalyKind::Unexpected), 1, "{report}");
    }

    #[test]
    fn a_reader_whose_pages_do_not_follow_each_other_is_a_harness_error() {
        let mut b = Builder::default();
        b.read(0, S0, &[(1, seq(0, 0))], None);
        b.last.clear();
        b.read(0, S0, &[(2, seq(0, 1))], None);
        assert!(matches!(
            check(&b.history()),
            Err(CheckError::Malformed {
                model: "stream",
                ..
            })
        ));
        let mut b = Builder::default();
        b.push(Op::Read, Outcome::Ok(OpResult::Read(None)));
        assert!(matches!(
            check(&b.history()),
            Err(CheckError::UnsupportedOp {
                model: "stream",
                ..
            })
        ));
    }

    #[test]
    fn the_listing_s_ending_sequence_number_bounds_a_closed_shard() {
        let mut b = Builder::default();
        b.put_ok(1, 5, S0, seq(0, 0));
        b.put_ok(2, 5, S0, seq(0, 1));
        b.drain();
        b.list(vec![info(S0, &[], (0, u128::MAX), Some(seq(0, 0)))]);
        b.read(
            DRAIN_READER,
            S0,
            &[(1, seq(0, 0)), (2, seq(0, 1))],
            Some(vec![]),
        );
        let report = b.check();
        assert_eq!(report.count(AnomalyKind::EarlyEnd), 1, "{report}");
        assert_eq!(
            report.of_kind(AnomalyKind::EarlyEnd).next().unwrap().values,
            [2]
        );
    }

    #[test]
    fn partition_keys_hash_as_kinesis_hashes_them() {
        let put = |key: &str, explicit: Option<&str>| StreamPut {
            value: 0,
            partition_key: key.into(),
            explicit_hash_key: explicit.map(str::to_string),
        };
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(
            hash_key_of(&put("a", None)),
            Some(0x0cc1_75b9_c0f1_b6a8_31c3_99e2_6977_2661)
        );
        assert_eq!(hash_key_of(&put("a", Some("17"))), Some(17));
        assert_eq!(hash_key_of(&put("a", Some("x"))), None);
    }
}
