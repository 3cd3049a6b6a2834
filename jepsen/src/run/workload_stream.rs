//! The `stream` workload: clients drive Kinesis Data Streams on the nodes' HTTP edges (the
//! official AWS SDK, a random edge per request) against one stream of [`STREAM_SHARDS`]
//! shards made for the run.
//!
//! Producers put records whose data are values unique in the run (decimal text): a
//! PutRecord of one value (40%) or a PutRecords of 2–[`MAX_PUT_BATCH`], each record with
//! one of [`PARTITION_KEYS`] partition keys (so every shard gets records), one in
//! [`EXPLICIT_HASH_ONE_IN`] routed by a random ExplicitHashKey instead. One attempt per
//! request: a put of unknown outcome is not sent again, so a value is put at most once
//! and any second copy comes from the server.
//!
//! Consumers (the last third of the clients, at least one when there are two clients or
//! more) each read the whole stream: every shard from TRIM_HORIZON, a page of 1–
//! [`MAX_READ_LIMIT`] records at a time, round robin over the shards they are reading,
//! following NextShardIterator. When a GetShardIterator or GetRecords fails (an expired or
//! refused iterator, a timeout) the consumer asks for a new iterator AFTER_SEQUENCE_NUMBER
//! of the last record it read of that shard (TRIM_HORIZON if none). When a shard ends (no
//! NextShardIterator) its ChildShards are read next, each once all of its parents have
//! ended. Every GetRecords is recorded with the sequence number it must continue after,
//! so the checker can tell a skip from a slow reader.
//!
//! Halfway through the run the first producer splits one shard at the middle of its hash
//! range or merges two adjacent shards (`--reshard`), and once ListShards shows the
//! children (a reshard of unknown outcome may finish later, by the nodes' stream worker)
//! the nemesis's leader-targeted faults aim at the groups of every shard, the children's
//! included.
//!
//! After the faults are healed a drain (recorded as a `drain` operation around its
//! requests) lists the shards and reads each to its end (a closed shard until
//! NextShardIterator is absent, an open one until a page comes back empty), parents before
//! children, listing again until nothing is left: its reads are the final contents the
//! checker compares everything with.
//!
//! Checking: [`crate::checker::stream`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ChildShard, PutRecordsRequestEntry, Shard, ShardIteratorType};
use aws_sdk_kinesis::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::checker::stream::{self, StreamReport, DRAIN_READER};
use crate::checker::CheckError;
use crate::history::{
    History, Op, OpResult, Outcome, ProcessId, ShardInfo, StreamPut, StreamRecord,
};
use crate::run::cluster_view::Focus;
use crate::run::kinesis_request::{outcome, put_entry, KinesisProcess};
use crate::run::placement::shard_group;
use crate::run::request::ClientContext;
use crate::run::s3_request::{bounded, S3Failure};
use crate::run::target::S3Access;
use crate::run::workload_queue::{body, decode, DRAINER};
use crate::run::workload_register::FINAL_READER;

/// Shards of the run's stream.
pub const STREAM_SHARDS: i32 = 4;

/// Partition keys in use (`k0`..).
pub const PARTITION_KEYS: usize = 16;

/// One record in this many is routed by an explicit hash key.
pub const EXPLICIT_HASH_ONE_IN: u32 = 5;

/// Most records in one PutRecords.
pub const MAX_PUT_BATCH: usize = 20;

/// Most records a consumer asks one GetRecords for (small pages: many continuations).
pub const MAX_READ_LIMIT: i32 = 100;

/// Records the drain asks one GetRecords for (Kinesis's maximum).
pub const DRAIN_READ_LIMIT: i32 = 10_000;

/// How long a client waits after a refused request.
pub const FAILURE_PAUSE: Duration = Duration::from_millis(100);

/// How often the producer that resharded looks for the children until they are listed.
pub const AIM_RETRY: Duration = Duration::from_secs(1);

/// How long a consumer waits after a page that came back empty.
pub const EMPTY_PAGE_PAUSE: Duration = Duration::from_millis(50);

/// Whether (and how) the stream is resharded halfway through the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReshardChoice {
    None,
    Split,
    Merge,
    /// Split for an odd seed, merge for an even one.
    Either,
}

impl ReshardChoice {
    pub fn parse(name: &str) -> Option<ReshardChoice> {
        match name {
            "none" => Some(ReshardChoice::None),
            "split" => Some(ReshardChoice::Split),
            "merge" => Some(ReshardChoice::Merge),
            "either" => Some(ReshardChoice::Either),
            _ => None,
        }
    }

    /// What a run of `seed` does.
    fn resolve(self, seed: u64) -> ReshardChoice {
        match self {
            ReshardChoice::Either if seed % 2 == 1 => ReshardChoice::Split,
            ReshardChoice::Either => ReshardChoice::Merge,
            other => other,
        }
    }
}

/// A shard as the history records it.
fn shard_info(shard: &Shard) -> ShardInfo {
    let range = shard.hash_key_range();
    ShardInfo {
        shard: shard.shard_id().to_string(),
        parents: shard
            .parent_shard_id()
            .into_iter()
            .chain(shard.adjacent_parent_shard_id())
            .map(str::to_string)
            .collect(),
        starting_hash_key: range
            .map(|r| r.starting_hash_key().to_string())
            .unwrap_or_default(),
        ending_hash_key: range
            .map(|r| r.ending_hash_key().to_string())
            .unwrap_or_default(),
        ending_sequence: shard
            .sequence_number_range()
            .and_then(|r| r.ending_sequence_number())
            .map(str::to_string),
    }
}

/// A child shard (GetRecords' ChildShards) as the history records it.
fn child_info(child: &ChildShard) -> ShardInfo {
    let range = child.hash_key_range();
    ShardInfo {
        shard: child.shard_id().to_string(),
        parents: child.parent_shards().to_vec(),
        starting_hash_key: range
            .map(|r| r.starting_hash_key().to_string())
            .unwrap_or_default(),
        ending_hash_key: range
            .map(|r| r.ending_hash_key().to_string())
            .unwrap_or_default(),
        ending_sequence: None,
    }
}

/// Where a reader is in one shard.
#[derive(Debug, Clone, Default)]
struct Cursor {
    /// The iterator to read with next; `None`: ask for one.
    iterator: Option<String>,
    /// The last record read.
    after: Option<String>,
}

/// What one read step did.
enum Step {
    Page {
        records: usize,
        /// ChildShards, when the shard ended.
        end: Option<Vec<ShardInfo>>,
    },
    Failed(Outcome),
}

/// A consumer's progress through the stream.
#[derive(Debug, Default)]
struct Reading {
    cursors: BTreeMap<String, Cursor>,
    /// Shards being read, round robin.
    active: Vec<String>,
    next: usize,
    ended: BTreeSet<String>,
    /// Children seen, with their parents.
    parents: BTreeMap<String, BTreeSet<String>>,
}

impl Reading {
    fn start(shards: &[ShardInfo]) -> Reading {
        let mut reading = Reading::default();
        for shard in shards.iter().filter(|s| s.parents.is_empty()) {
            reading.begin(&shard.shard);
        }
        reading
    }

    fn begin(&mut self, shard: &str) {
        if !self.cursors.contains_key(shard) {
            self.cursors.insert(shard.to_string(), Cursor::default());
            self.active.push(shard.to_string());
        }
    }

    /// The next shard to read.
    fn pick(&mut self) -> Option<String> {
        if self.active.is_empty() {
            return None;
        }
        let shard = self.active[self.next % self.active.len()].clone();
        self.next += 1;
        Some(shard)
    }

    /// `shard` ended with these children: begin each whose parents have all ended.
    fn ended(&mut self, shard: &str, children: &[ShardInfo]) {
        self.ended.insert(shard.to_string());
        self.active.retain(|s| s != shard);
        for child in children {
            let parents = self.parents.entry(child.shard.clone()).or_default();
            parents.extend(child.parents.iter().cloned());
            parents.insert(shard.to_string());
        }
        let ready: Vec<String> = self
            .parents
            .iter()
            .filter(|(child, parents)| {
                !self.cursors.contains_key(*child) && parents.iter().all(|p| self.ended.contains(p))
            })
            .map(|(child, _)| child.clone())
            .collect();
        for child in ready {
            self.begin(&child);
        }
    }
}

/// Shared by every client of one run.
pub struct StreamWorkload {
    name: String,
    access: S3Access,
    reshard: ReshardChoice,
    time_limit: Duration,
    next_value: AtomicU64,
    /// The shards as the setup listed them.
    initial: Mutex<Vec<ShardInfo>>,
    focus: Focus,
    /// Data groups of the cluster (0: unknown, no aiming).
    data_groups: AtomicU64,
}

impl StreamWorkload {
    pub fn new(
        name: String,
        access: S3Access,
        reshard: ReshardChoice,
        seed: u64,
        time_limit: Duration,
        focus: Focus,
    ) -> Arc<Self> {
        Arc::new(StreamWorkload {
            name,
            access,
            reshard: reshard.resolve(seed),
            time_limit,
            next_value: AtomicU64::new(1),
            initial: Mutex::new(Vec::new()),
            focus,
            data_groups: AtomicU64::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn initial(&self) -> Vec<ShardInfo> {
        self.initial
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Consumers are the last third of the clients (none with a single client).
    fn is_consumer(index: usize, clients: usize) -> bool {
        let consumers = if clients < 2 { 0 } else { clients.div_ceil(3) };
        index >= clients - consumers
    }

    /// Aims the nemesis's leader faults at the groups of `shards`, in a cluster of
    /// `data_groups` data groups (0: keep the last known count). Returns the groups.
    pub fn aim(&self, shards: &[ShardInfo], data_groups: u64) -> Vec<u64> {
        if data_groups > 0 {
            self.data_groups.store(data_groups, Ordering::SeqCst);
        }
        let groups = self.data_groups.load(Ordering::SeqCst);
        if groups == 0 {
            return Vec::new();
        }
        let aimed: BTreeSet<u64> = shards
            .iter()
            .map(|s| shard_group(&self.name, &s.shard, groups))
            .collect();
        let aimed: Vec<u64> = aimed.into_iter().collect();
        self.focus.set(aimed.clone());
        aimed
    }

    /// Creates the stream, waits for it to be ACTIVE and lists its shards, trying the
    /// edges in turn until `deadline`. Not recorded: the history starts with the stream in
    /// place.
    pub async fn setup(
        &self,
        ctx: &ClientContext,
        deadline: Instant,
    ) -> Result<Vec<ShardInfo>, String> {
        let process = KinesisProcess::first(ctx, &self.access);
        if !process.has_edges() {
            return Err("the target has no HTTP edge".into());
        }
        let mut attempt = 0;
        let mut stage = 0;
        loop {
            let client = process.edge_at(attempt);
            attempt += 1;
            let step: Result<bool, String> = match stage {
                0 => {
                    let request = client
                        .create_stream()
                        .stream_name(&self.name)
                        .shard_count(STREAM_SHARDS)
                        .send();
                    match bounded(ctx.op_timeout, async {
                        request.await.map_err(|e| S3Failure::of(&e))
                    })
                    .await
                    {
                        Ok(_) => Ok(true),
                        // A create that timed out may have happened.
                        Err(e) if e.code() == Some("ResourceInUseException") => Ok(true),
                        Err(e) => Err(format!("creating stream {}: {e:?}", self.name)),
                    }
                }
                1 => {
                    let request = client
                        .describe_stream_summary()
                        .stream_name(&self.name)
                        .send();
                    bounded(ctx.op_timeout, async {
                        request.await.map_err(|e| S3Failure::of(&e))
                    })
                    .await
                    .map(|out| {
                        out.stream_description_summary().is_some_and(|s| {
                            *s.stream_status() == aws_sdk_kinesis::types::StreamStatus::Active
                        })
                    })
                    .map_err(|e| format!("describing stream {}: {e:?}", self.name))
                }
                _ => match list_shards(ctx, client, &self.name).await {
                    Ok(shards) if !shards.is_empty() => {
                        *self.initial.lock().unwrap_or_else(PoisonError::into_inner) =
                            shards.clone();
                        return Ok(shards);
                    }
                    Ok(_) => Err(format!("stream {} lists no shard", self.name)),
                    Err(e) => Err(format!("listing the shards of {}: {e:?}", self.name)),
                },
            };
            match step {
                Ok(true) => stage += 1,
                Ok(false) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(300)).await
                }
                Ok(false) => return Err(format!("stream {} never became ACTIVE", self.name)),
                Err(e) => return Err(e),
            }
        }
    }

    /// One client: a producer or a consumer until `stop`.
    pub async fn client(self: Arc<Self>, ctx: ClientContext, stop: Instant) -> Result<(), String> {
        let rng = StdRng::seed_from_u64(ctx.seed.wrapping_add(ctx.index as u64 * 7919));
        let process = KinesisProcess::first(&ctx, &self.access);
        if !process.has_edges() {
            return Err("the target has no HTTP edge".into());
        }
        if Self::is_consumer(ctx.index, ctx.clients) {
            self.consume(&ctx, process, rng, stop).await;
        } else {
            self.produce(&ctx, process, rng, stop).await;
        }
        Ok(())
    }

    async fn produce(
        &self,
        ctx: &ClientContext,
        mut process: KinesisProcess,
        mut rng: StdRng,
        stop: Instant,
    ) {
        let mut reshard_at = (ctx.index == 0 && self.reshard != ReshardChoice::None)
            .then(|| stop - self.time_limit / 2);
        // After a reshard that may have happened: when to look for the children again.
        let mut aim_at: Option<Instant> = None;
        while Instant::now() < stop {
            if aim_at.is_some_and(|at| Instant::now() >= at) {
                aim_at = self
                    .aim_at_children(ctx, process.edge(&mut rng))
                    .await
                    .then(|| Instant::now() + AIM_RETRY);
            }
            let outcome = if reshard_at.is_some_and(|at| Instant::now() >= at) {
                reshard_at = None;
                let outcome = self.reshard(ctx, &process, &mut rng).await;
                if outcome != Outcome::Fail {
                    aim_at = Some(Instant::now());
                }
                outcome
            } else {
                let count = if rng.gen_bool(0.4) {
                    1
                } else {
                    rng.gen_range(2..=MAX_PUT_BATCH)
                };
                self.put(ctx, &process, &mut rng, count).await
            };
            match outcome {
                Outcome::Fail => tokio::time::sleep(FAILURE_PAUSE).await,
                Outcome::Info => process = process.next(ctx, &self.access),
                Outcome::Ok(_) => {}
            }
        }
    }

    /// One PutRecord (one value) or PutRecords (more) of fresh values, recorded.
    async fn put(
        &self,
        ctx: &ClientContext,
        process: &KinesisProcess,
        rng: &mut StdRng,
        count: usize,
    ) -> Outcome {
        let records: Vec<StreamPut> = (0..count)
            .map(|_| StreamPut {
                value: self.next_value.fetch_add(1, Ordering::SeqCst),
                partition_key: format!("k{}", rng.gen_range(0..PARTITION_KEYS)),
                explicit_hash_key: (rng.gen_range(0..EXPLICIT_HASH_ONE_IN) == 0)
                    .then(|| rng.gen::<u128>().to_string()),
            })
            .collect();
        let id = ctx
            .recorder
            .invoke(process.id, Op::PutRecords(records.clone()));
        let client = process.edge(rng);
        let result = if let [one] = records.as_slice() {
            let request = client
                .put_record()
                .stream_name(&self.name)
                .partition_key(&one.partition_key)
                .set_explicit_hash_key(one.explicit_hash_key.clone())
                .data(Blob::new(body(one.value)))
                .send();
            bounded(ctx.op_timeout, async {
                request.await.map_err(|e| S3Failure::of(&e))
            })
            .await
            .map(|out| {
                Outcome::Ok(OpResult::Put(vec![put_entry(
                    Some(out.shard_id()),
                    Some(out.sequence_number()),
                    None,
                )]))
            })
        } else {
            let mut request = client.put_records().stream_name(&self.name);
            for record in &records {
                let entry = PutRecordsRequestEntry::builder()
                    .data(Blob::new(body(record.value)))
                    .partition_key(&record.partition_key)
                    .set_explicit_hash_key(record.explicit_hash_key.clone())
                    .build();
                match entry {
                    Ok(entry) => request = request.records(entry),
                    Err(e) => {
                        let _ = ctx.recorder.complete(id, Outcome::Fail);
                        eprintln!("building a PutRecords entry: {e}");
                        return Outcome::Fail;
                    }
                }
            }
            let sent = request.send();
            bounded(ctx.op_timeout, async {
                sent.await.map_err(|e| S3Failure::of(&e))
            })
            .await
            .map(|out| {
                if out.records().len() == records.len() {
                    Outcome::Ok(OpResult::Put(
                        out.records()
                            .iter()
                            .map(|e| put_entry(e.shard_id(), e.sequence_number(), e.error_code()))
                            .collect(),
                    ))
                } else {
                    // An answer that does not say what became of each record.
                    Outcome::Info
                }
            })
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(failure) => outcome(&failure),
        };
        let _ = ctx.recorder.complete(id, outcome.clone());
        outcome
    }

    /// Splits a random shard of the setup's at the middle of its hash range, or merges two
    /// adjacent ones; recorded. Once it is done, the nemesis aims at every shard's group.
    async fn reshard(
        &self,
        ctx: &ClientContext,
        process: &KinesisProcess,
        rng: &mut StdRng,
    ) -> Outcome {
        let mut shards: Vec<(u128, u128, String)> = self
            .initial()
            .iter()
            .filter_map(|s| {
                Some((
                    s.starting_hash_key.parse().ok()?,
                    s.ending_hash_key.parse().ok()?,
                    s.shard.clone(),
                ))
            })
            .collect();
        shards.sort();
        let client = process.edge(rng);
        let (op, result) = match self.reshard {
            ReshardChoice::Split => {
                let splittable: Vec<&(u128, u128, String)> = shards
                    .iter()
                    .filter(|(start, end, _)| end > start)
                    .collect();
                if splittable.is_empty() {
                    return Outcome::Fail;
                }
                let (start, end, shard) = splittable[rng.gen_range(0..splittable.len())];
                let hash_key = (start + (end - start) / 2 + 1).to_string();
                let request = client
                    .split_shard()
                    .stream_name(&self.name)
                    .shard_to_split(shard)
                    .new_starting_hash_key(&hash_key)
                    .send();
                let id = ctx.recorder.invoke(
                    process.id,
                    Op::SplitShard {
                        shard: shard.clone(),
                        hash_key,
                    },
                );
                let result = bounded(ctx.op_timeout, async {
                    request.await.map(|_| ()).map_err(|e| S3Failure::of(&e))
                })
                .await;
                (id, result)
            }
            ReshardChoice::Merge if shards.len() >= 2 => {
                let i = rng.gen_range(0..shards.len() - 1);
                let (shard, adjacent) = (shards[i].2.clone(), shards[i + 1].2.clone());
                let request = client
                    .merge_shards()
                    .stream_name(&self.name)
                    .shard_to_merge(&shard)
                    .adjacent_shard_to_merge(&adjacent)
                    .send();
                let id = ctx
                    .recorder
                    .invoke(process.id, Op::MergeShards { shard, adjacent });
                let result = bounded(ctx.op_timeout, async {
                    request.await.map(|_| ()).map_err(|e| S3Failure::of(&e))
                })
                .await;
                (id, result)
            }
            _ => return Outcome::Fail,
        };
        let outcome = match result {
            Ok(()) => Outcome::Ok(OpResult::Done),
            Err(failure) => {
                eprintln!("{:?} of stream {}: {failure:?}", self.reshard, self.name);
                outcome(&failure)
            }
        };
        let _ = ctx.recorder.complete(op, outcome.clone());
        outcome
    }

    /// Lists the shards (unrecorded) and, once the reshard's children are there, aims the
    /// nemesis at every shard's group. Returns whether to look again later (the children
    /// are not listed yet, or the listing failed).
    async fn aim_at_children(&self, ctx: &ClientContext, client: &Client) -> bool {
        let Ok(shards) = list_shards(ctx, client, &self.name).await else {
            return true;
        };
        if shards.len() <= self.initial().len() {
            return true;
        }
        let groups = self.aim(&shards, 0);
        eprintln!(
            "stream {} resharded: {} shards in data groups {groups:?}",
            self.name,
            shards.len()
        );
        false
    }

    async fn consume(
        &self,
        ctx: &ClientContext,
        mut process: KinesisProcess,
        mut rng: StdRng,
        stop: Instant,
    ) {
        let reader = ctx.index as u64;
        let mut reading = Reading::start(&self.initial());
        while Instant::now() < stop {
            let Some(shard) = reading.pick() else {
                tokio::time::sleep(EMPTY_PAGE_PAUSE).await;
                continue;
            };
            let limit = rng.gen_range(1..=MAX_READ_LIMIT);
            let client = process.edge(&mut rng);
            let Some(cursor) = reading.cursors.get_mut(&shard) else {
                continue;
            };
            let step = self
                .read_step(ctx, process.id, client, reader, &shard, cursor, limit)
                .await;
            match step {
                Step::Page {
                    end: Some(children),
                    ..
                } => reading.ended(&shard, &children),
                Step::Page { records: 0, .. } => tokio::time::sleep(EMPTY_PAGE_PAUSE).await,
                Step::Page { .. } => {}
                Step::Failed(Outcome::Info) => process = process.next(ctx, &self.access),
                Step::Failed(_) => tokio::time::sleep(FAILURE_PAUSE).await,
            }
        }
    }

    /// One read of `shard` by `reader`: a GetShardIterator first when the cursor has no
    /// iterator (after its last record, or from the start), then a GetRecords; both
    /// recorded. A failure drops the iterator, so the next step asks for a new one.
    #[allow(clippy::too_many_arguments)]
    async fn read_step(
        &self,
        ctx: &ClientContext,
        process: ProcessId,
        client: &Client,
        reader: u64,
        shard: &str,
        cursor: &mut Cursor,
        limit: i32,
    ) -> Step {
        let iterator = match cursor.iterator.take() {
            Some(iterator) => iterator,
            None => {
                let id = ctx.recorder.invoke(
                    process,
                    Op::GetShardIterator {
                        shard: shard.to_string(),
                        reader,
                        after: cursor.after.clone(),
                    },
                );
                let request = client
                    .get_shard_iterator()
                    .stream_name(&self.name)
                    .shard_id(shard);
                let request = match &cursor.after {
                    Some(after) => request
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .starting_sequence_number(after),
                    None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                }
                .send();
                let result = bounded(ctx.op_timeout, async {
                    request.await.map_err(|e| S3Failure::of(&e))
                })
                .await;
                match result.map(|out| out.shard_iterator().map(str::to_string)) {
                    Ok(Some(iterator)) => {
                        let _ = ctx.recorder.complete(id, Outcome::Ok(OpResult::Done));
                        iterator
                    }
                    Ok(None) => {
                        // An answer without an iterator is no iterator.
                        let _ = ctx.recorder.complete(id, Outcome::Fail);
                        return Step::Failed(Outcome::Fail);
                    }
                    Err(failure) => {
                        let outcome = outcome(&failure);
                        let _ = ctx.recorder.complete(id, outcome.clone());
                        return Step::Failed(outcome);
                    }
                }
            }
        };
        let id = ctx.recorder.invoke(
            process,
            Op::GetRecords {
                shard: shard.to_string(),
                reader,
                after: cursor.after.clone(),
            },
        );
        let request = client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send();
        let result = bounded(ctx.op_timeout, async {
            request.await.map_err(|e| S3Failure::of(&e))
        })
        .await;
        match result {
            Ok(out) => {
                let records: Vec<StreamRecord> = out
                    .records()
                    .iter()
                    .map(|r| StreamRecord {
                        value: std::str::from_utf8(r.data().as_ref())
                            .map(|text| decode(text, None))
                            .unwrap_or(crate::run::workload_queue::GARBLED),
                        sequence: r.sequence_number().to_string(),
                        partition_key: r.partition_key().unwrap_or_default().to_string(),
                    })
                    .collect();
                let end = match out.next_shard_iterator() {
                    Some(next) => {
                        cursor.iterator = Some(next.to_string());
                        None
                    }
                    None => Some(out.child_shards().iter().map(child_info).collect()),
                };
                if let Some(last) = records.last() {
                    cursor.after = Some(last.sequence.clone());
                }
                let count = records.len();
                let _ = ctx.recorder.complete(
                    id,
                    Outcome::Ok(OpResult::Records {
                        records,
                        children: end.clone(),
                        behind_ms: out
                            .millis_behind_latest()
                            .and_then(|ms| u64::try_from(ms).ok())
                            .unwrap_or(0),
                    }),
                );
                Step::Page {
                    records: count,
                    end,
                }
            }
            Err(failure) => {
                let outcome = outcome(&failure);
                let _ = ctx.recorder.complete(id, outcome.clone());
                Step::Failed(outcome)
            }
        }
    }

    /// A ListShards of every page, recorded.
    async fn list_recorded(
        &self,
        ctx: &ClientContext,
        process: ProcessId,
        client: &Client,
    ) -> Option<Vec<ShardInfo>> {
        let id = ctx.recorder.invoke(process, Op::ListShards);
        match list_shards(ctx, client, &self.name).await {
            Ok(shards) => {
                let _ = ctx
                    .recorder
                    .complete(id, Outcome::Ok(OpResult::Shards(shards.clone())));
                Some(shards)
            }
            Err(failure) => {
                let _ = ctx.recorder.complete(id, outcome(&failure));
                None
            }
        }
    }

    /// After healing: reads every shard to its end (see the module docs), all inside one
    /// `drain` operation, until a listing shows nothing left or `deadline` passes.
    pub async fn drain(
        &self,
        ctx: &ClientContext,
        deadline: Instant,
    ) -> Result<DrainResult, String> {
        let drain = ctx.recorder.invoke(DRAINER, Op::Drain);
        let process = KinesisProcess::first(ctx, &self.access);
        if !process.has_edges() {
            let _ = ctx.recorder.complete(drain, Outcome::Fail);
            return Err("the target has no HTTP edge".into());
        }
        let started = Instant::now();
        let mut result = DrainResult::default();
        let mut cursors: BTreeMap<String, Cursor> = BTreeMap::new();
        let mut ended: BTreeSet<String> = BTreeSet::new();
        let mut caught_up: BTreeSet<String> = BTreeSet::new();
        let mut attempt = 0;
        loop {
            if Instant::now() >= deadline {
                let _ = ctx.recorder.complete(drain, Outcome::Info);
                return Err(format!(
                    "the drain did not finish within {:.0?} ({} records read; shards ended: \
                     {ended:?}, caught up: {caught_up:?})",
                    started.elapsed(),
                    result.records
                ));
            }
            let Some(shards) = self
                .list_recorded(ctx, FINAL_READER, process.edge_at(attempt))
                .await
            else {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let left: Vec<&ShardInfo> = shards
                .iter()
                .filter(|s| {
                    !ended.contains(&s.shard)
                        && (s.ending_sequence.is_some() || !caught_up.contains(&s.shard))
                })
                .collect();
            if left.is_empty() {
                result.shards = shards.len();
                break;
            }
            for shard in left {
                if !shard.parents.iter().all(|p| ended.contains(p)) {
                    continue; // after its parents, on a later pass
                }
                let cursor = cursors.entry(shard.shard.clone()).or_default();
                while Instant::now() < deadline {
                    let step = self
                        .read_step(
                            ctx,
                            FINAL_READER,
                            process.edge_at(attempt),
                            DRAIN_READER,
                            &shard.shard,
                            cursor,
                            DRAIN_READ_LIMIT,
                        )
                        .await;
                    match step {
                        Step::Page {
                            end: Some(_),
                            records,
                        } => {
                            result.records += records;
                            ended.insert(shard.shard.clone());
                            break;
                        }
                        Step::Page { records: 0, .. } => {
                            caught_up.insert(shard.shard.clone());
                            break;
                        }
                        Step::Page { records, .. } => result.records += records,
                        Step::Failed(_) => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }
        }
        let _ = ctx.recorder.complete(drain, Outcome::Ok(OpResult::Done));
        result.took = started.elapsed();
        Ok(result)
    }
}

/// Every shard of stream `name`, following NextToken; unrecorded.
async fn list_shards(
    ctx: &ClientContext,
    client: &Client,
    name: &str,
) -> Result<Vec<ShardInfo>, S3Failure> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        // A NextToken names the stream itself: Kinesis refuses both at once.
        let request = match &token {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(name),
        }
        .send();
        let page = bounded(ctx.op_timeout, async {
            request.await.map_err(|e| S3Failure::of(&e))
        })
        .await?;
        shards.extend(page.shards().iter().map(shard_info));
        match page.next_token() {
            Some(next) if !page.shards().is_empty() => token = Some(next.to_string()),
            _ => return Ok(shards),
        }
    }
}

/// What the drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainResult {
    pub records: usize,
    pub shards: usize,
    pub took: Duration,
}

/// Runs the stream checker.
pub fn check(history: &History) -> Result<StreamReport, CheckError> {
    stream::check(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str]) -> ShardInfo {
        ShardInfo {
            shard: id.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            starting_hash_key: "0".into(),
            ending_hash_key: "1".into(),
            ending_sequence: None,
        }
    }

    #[test]
    fn consumers_are_the_last_third_of_the_clients() {
        let consumers = |clients| {
            (0..clients)
                .filter(|i| StreamWorkload::is_consumer(*i, clients))
                .collect::<Vec<_>>()
        };
        assert_eq!(consumers(1), Vec::<usize>::new());
        assert_eq!(consumers(2), [1]);
        assert_eq!(consumers(5), [3, 4]);
        assert_eq!(consumers(6), [4, 5]);
    }

    #[test]
    fn readers_take_children_once_every_parent_ended() {
        let mut reading = Reading::start(&[shard("a", &[]), shard("b", &[]), shard("c", &[])]);
        assert_eq!(reading.active, ["a", "b", "c"]);
        assert_eq!(reading.pick().as_deref(), Some("a"));
        assert_eq!(reading.pick().as_deref(), Some("b"));
        // A merge of a and b into m: m waits for both.
        reading.ended("a", &[shard("m", &["a", "b"])]);
        assert!(!reading.cursors.contains_key("m"));
        reading.ended("b", &[shard("m", &["a", "b"])]);
        assert_eq!(reading.active, ["c", "m"]);
        // A split of c: both children at once, even if ParentShards were left out.
        reading.ended("c", &[shard("c1", &[]), shard("c2", &["c"])]);
        assert_eq!(reading.active, ["m", "c1", "c2"]);
        // A shard ends once.
        reading.ended("c", &[shard("c1", &["c"])]);
        assert_eq!(reading.active, ["m", "c1", "c2"]);
    }

    #[test]
    fn reshard_choices_parse_and_either_follows_the_seed() {
        assert_eq!(ReshardChoice::parse("split"), Some(ReshardChoice::Split));
        assert_eq!(ReshardChoice::parse("x"), None);
        assert_eq!(ReshardChoice::Either.resolve(1), ReshardChoice::Split);
        assert_eq!(ReshardChoice::Either.resolve(2), ReshardChoice::Merge);
        assert_eq!(ReshardChoice::None.resolve(1), ReshardChoice::None);
    }

    #[test]
    fn shards_are_aimed_at_by_their_groups() {
        let workload = StreamWorkload::new(
            "s".into(),
            S3Access {
                endpoints: Vec::new(),
                access_key: String::new(),
                secret_key: String::new(),
            },
            ReshardChoice::None,
            1,
            Duration::from_secs(1),
            Focus::default(),
        );
        assert!(workload
            .aim(&[shard("shardId-000000000000", &[])], 0)
            .is_empty());
        let groups = workload.aim(
            &[
                shard("shardId-000000000000", &[]),
                shard("shardId-000000000001", &[]),
            ],
            6,
        );
        let expected: BTreeSet<u64> = [0, 1]
            .iter()
            .map(|i| shard_group("s", &format!("shardId-{i:012}"), 6))
            .collect();
        assert_eq!(groups, expected.into_iter().collect::<Vec<_>>());
        assert_eq!(workload.focus.groups(), groups);
    }
}
