//! The stream service: Kinesis operations over the catalog (meta group) and the shard logs
//! (data groups), wire-agnostic.
//!
//! Requests read the stream's catalog record linearizably (the router's read-index check),
//! except PutRecord(s), GetRecords and GetShardIterator, which use this node's leased copy
//! of it (`catalog_cache`: why that never acts on a deleted stream's incarnation or misses
//! a reshard that was acknowledged is argued there; DeleteStream and CreateStream wait
//! for the copies to expire before they answer). Puts are grouped by shard and proposed as one command per shard,
//! concurrently; a shard whose log closed under a split or merge answers `Closed`, and its
//! records are routed again over the catalog as it is once the step is recorded. Reads go
//! to the shard's group after the read-index check, so GetRecords sees every acknowledged
//! put. Resharding runs its plan step by step (close the parents' logs, record the step):
//! SplitShard and MergeShards before they answer, UpdateShardCount in the background, and
//! the stream worker finishes any plan its runner abandoned (`worker`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::catalog::{ReshardRequest, ShardRecord, StreamMode, StreamRecord, ON_DEMAND_SHARDS};
use super::catalog_cache::{CatalogCache, CATALOG_LEASE, LEASE_MARGIN};
use super::catalog_state::{
    StreamCatalogCommand, StreamCatalogQuery, StreamCatalogReply, StreamSummary,
};
use super::consumer::{ConsumerArn, ConsumerName, ConsumerRecord, MAX_CONSUMERS_PER_STREAM};
use super::iterator::{ShardIterator, TokenKey};
use super::log::{AppendOutcome, LogRecord, NewRecord, ReadPage, ReadRecord, ShardLogId};
use super::model::{
    check_partition_key, hash_key_of, Incarnation, SequenceNumber, ShardId, StreamError,
    StreamName, ACCOUNT_ID, MAX_GET_RECORDS, MAX_GET_RECORDS_BYTES, MAX_PUT_RECORDS_BYTES,
    MAX_PUT_RECORDS_ENTRIES, MAX_RECORD_BYTES,
};
use super::read_limit::{ReadLimiter, Throttled};
use super::state::{StreamCommand, StreamQuery, StreamQueryReply, StreamReply};
use crate::cluster::routing::group_for_shard;
use crate::cluster::{Directory, META_GROUP};
use crate::data_group::{DataCommand, DataQuery};
use crate::meta::{MetaCommand, MetaQuery, MetaReply};
use crate::raft::codec;
use crate::raft::router::{RouteError, Router};
use crate::raft::GroupId;

/// A failure of a stream request: Kinesis's own error, or the cluster's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// Surely not applied: the request may be sent again.
    #[error("the stream's group is unavailable: {0}")]
    Unavailable(String),
    /// May or may not have been applied.
    #[error("{0}")]
    OutcomeUnknown(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RouteError> for ServiceError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::UnknownGroup(_) => ServiceError::Internal(e.to_string()),
            RouteError::OutcomeUnknown(_) => ServiceError::OutcomeUnknown(e.to_string()),
            _ => ServiceError::Unavailable(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, ServiceError>;

/// The stream store's settings (config `[stream]` and `limits.enforce_shard_throughput`).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Refuse writes over 1 MiB/s or 1,000 records/s per shard.
    pub enforce_shard_throughput: bool,
    /// How many seconds a retention "hour" lasts (3600; tests compress it).
    pub seconds_per_hour: u64,
    /// How long a put keeps re-routing records whose shard is being split or merged.
    pub reroute_timeout: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            enforce_shard_throughput: false,
            seconds_per_hour: 3600,
            reroute_timeout: Duration::from_secs(10),
        }
    }
}

impl StreamSettings {
    pub fn retention_ms(&self, hours: u32) -> u64 {
        u64::from(hours)
            .saturating_mul(self.seconds_per_hour)
            .saturating_mul(1000)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One record of a put, as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct PutEntry {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Vec<u8>,
}

/// Where a put record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutResult {
    pub shard: ShardId,
    pub sequence: SequenceNumber,
}

/// Where GetShardIterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorStart {
    TrimHorizon,
    Latest,
    AtSequence(String),
    AfterSequence(String),
    AtTimestamp(u64),
}

/// GetRecords' answer.
#[derive(Debug, Clone)]
pub struct RecordsPage {
    pub records: Vec<ReadRecord>,
    /// Absent once a closed shard was read to its end.
    pub next_iterator: Option<String>,
    pub millis_behind_latest: u64,
    /// The shards to read next, once a closed shard was read to its end.
    pub child_shards: Option<Vec<ShardRecord>>,
}

/// Records read from a shard for an enhanced fan-out subscription.
#[derive(Debug, Clone)]
pub struct ShardPage {
    pub records: Vec<ReadRecord>,
    /// The position to read from next.
    pub next: u64,
    pub millis_behind_latest: u64,
    /// The shard is closed and was read to its end.
    pub at_end: bool,
}

pub struct StreamService {
    router: Arc<Router>,
    directory: Arc<Directory>,
    key: TokenKey,
    settings: StreamSettings,
    /// GetRecords' per-shard read limits on this node (`read_limit`).
    read_limiter: Mutex<ReadLimiter>,
    /// Leased copies of catalog records for the record operations (`catalog_cache`).
    catalog_cache: CatalogCache,
}

fn unexpected(reply: impl std::fmt::Debug) -> ServiceError {
    ServiceError::Internal(format!("unexpected reply: {reply:?}"))
}

/// Check a put's entries as Kinesis does before anything is written: each partition key,
/// explicit hash key and record size, then the request's total.
/// Give every entry still waiting for a shard the error that stopped the wait.
fn fail_all(
    waiting: &mut Vec<usize>,
    outcomes: &mut [Option<Result<PutResult>>],
    e: &ServiceError,
) {
    for i in waiting.drain(..) {
        outcomes[i] = Some(Err(e.clone()));
    }
}

fn check_entries(entries: &[PutEntry], batch: bool) -> Result<Vec<u128>> {
    if batch && entries.is_empty() {
        return Err(StreamError::constraint(
            "records",
            "[]",
            "Member must have length greater than or equal to 1",
        )
        .into());
    }
    if entries.len() > MAX_PUT_RECORDS_ENTRIES {
        return Err(StreamError::validation(format!(
            "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to {MAX_PUT_RECORDS_ENTRIES} (it has {})",
            entries.len()
        ))
        .into());
    }
    let mut total = 0usize;
    let mut hashes = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let field = |name: &str| {
            if batch {
                format!("records.{}.member.{name}", i + 1)
            } else {
                name.to_string()
            }
        };
        check_partition_key(&e.partition_key)?;
        if e.data.len() > MAX_RECORD_BYTES {
            return Err(StreamError::validation(format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}",
                field("data")
            ))
            .into());
        }
        let size = e.data.len() + e.partition_key.len();
        if size > MAX_RECORD_BYTES {
            return Err(StreamError::invalid(format!(
                "Record size {size} bytes (data plus partition key) exceeds the limit of {MAX_RECORD_BYTES} bytes."
            ))
            .into());
        }
        total += size;
        hashes.push(match &e.explicit_hash_key {
            Some(h) => super::model::parse_hash_key(h)?,
            None => hash_key_of(&e.partition_key),
        });
    }
    if total > MAX_PUT_RECORDS_BYTES {
        return Err(StreamError::invalid(format!(
            "Records size exceeds the request limit of {MAX_PUT_RECORDS_BYTES} bytes (data plus partition keys): {total} bytes."
        ))
        .into());
    }
    Ok(hashes)
}

/// The shard a client named, or ResourceNotFound as Kinesis answers an unknown one.
pub fn shard_named<'a>(record: &'a StreamRecord, shard: &str) -> Result<&'a ShardRecord> {
    let not_found = || {
        ServiceError::Stream(StreamError::ResourceNotFound(format!(
            "Shard {shard} in stream {} under account {ACCOUNT_ID} does not exist",
            record.name
        )))
    };
    let id = ShardId::parse(shard).map_err(|_| not_found())?;
    record.shard(id).map_err(|_| not_found())
}

impl StreamService {
    pub fn new(
        router: Arc<Router>,
        directory: Arc<Directory>,
        key: TokenKey,
        settings: StreamSettings,
    ) -> Self {
        StreamService {
            router,
            directory,
            key,
            settings,
            read_limiter: Mutex::new(ReadLimiter::default()),
            catalog_cache: CatalogCache::default(),
        }
    }

    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    pub fn token_key(&self) -> &TokenKey {
        &self.key
    }

    pub fn group_of(&self, log: &ShardLogId) -> GroupId {
        group_for_shard(
            log.stream.as_str(),
            &log.shard.to_string(),
            self.directory.data_groups,
        )
    }

    // ---- the catalog, in the meta group ----

    async fn catalog_write(&self, command: StreamCatalogCommand) -> Result<StreamCatalogReply> {
        let bytes = self
            .router
            .write(
                META_GROUP,
                codec::encode(&MetaCommand::StreamCatalog(command)),
            )
            .await?;
        match codec::decode::<MetaReply>(&bytes).map_err(ServiceError::Internal)? {
            MetaReply::StreamCatalog(result) => Ok(result?),
            other => Err(unexpected(other)),
        }
    }

    async fn catalog_read(&self, query: StreamCatalogQuery) -> Result<StreamCatalogReply> {
        let bytes = self
            .router
            .read(META_GROUP, codec::encode(&MetaQuery::StreamCatalog(query)))
            .await?;
        match codec::decode::<MetaReply>(&bytes).map_err(ServiceError::Internal)? {
            MetaReply::StreamCatalog(result) => Ok(result?),
            other => Err(unexpected(other)),
        }
    }

    async fn catalog_record(&self, command: StreamCatalogCommand) -> Result<StreamRecord> {
        let sent = Instant::now();
        match self.catalog_write(command).await? {
            StreamCatalogReply::Stream(r) => {
                // The write's answer is the record as of its commit, after `sent`.
                self.catalog_cache.put(&r, sent);
                Ok(*r)
            }
            other => Err(unexpected(other)),
        }
    }

    /// The stream's catalog record now (a linearizable read; it refreshes this node's
    /// copy).
    pub async fn stream(&self, name: &StreamName) -> Result<StreamRecord> {
        let sent = Instant::now();
        match self
            .catalog_read(StreamCatalogQuery::Get { name: name.clone() })
            .await
        {
            Ok(StreamCatalogReply::Stream(r)) => {
                self.catalog_cache.put(&r, sent);
                Ok(*r)
            }
            Ok(other) => Err(unexpected(other)),
            Err(e) => {
                if matches!(e, ServiceError::Stream(StreamError::StreamNotFound(_))) {
                    self.catalog_cache.forget(name);
                }
                Err(e)
            }
        }
    }

    /// The stream's record from this node's leased copy, or read linearizably when there
    /// is none (`catalog_cache`). Only for the record operations, which go back to
    /// `stream` when a data group or the copy itself says it is out of date.
    async fn stream_cached(&self, name: &StreamName) -> Result<StreamRecord> {
        match self.catalog_cache.get(name, Instant::now()) {
            Some(record) => Ok(record),
            None => self.stream(name).await,
        }
    }

    /// Wait until every leased copy of a catalog record taken before now has expired on
    /// every node: DeleteStream and CreateStream answer only then (`catalog_cache`).
    async fn outlast_leases(&self) {
        tokio::time::sleep(CATALOG_LEASE + LEASE_MARGIN).await;
    }

    /// The stream's record, if it is still the given incarnation.
    async fn incarnation(
        &self,
        name: &StreamName,
        incarnation: Incarnation,
    ) -> Result<StreamRecord> {
        let record = self.stream(name).await?;
        if record.incarnation != incarnation {
            return Err(StreamError::not_found(name).into());
        }
        Ok(record)
    }

    // ---- shard logs, in data groups ----

    async fn shard_write(&self, log: &ShardLogId, command: StreamCommand) -> Result<StreamReply> {
        self.group_write(self.group_of(log), command).await
    }

    async fn group_write(&self, group: GroupId, command: StreamCommand) -> Result<StreamReply> {
        let envelope = codec::encode(&DataCommand::Stream(Box::new(command)));
        let bytes = self.router.write(group, envelope).await?;
        codec::decode(&bytes).map_err(ServiceError::Internal)
    }

    async fn shard_read(&self, log: &ShardLogId, query: StreamQuery) -> Result<StreamQueryReply> {
        let envelope = codec::encode(&DataQuery::Stream(query));
        let bytes = self.router.read(self.group_of(log), envelope).await?;
        codec::decode(&bytes).map_err(ServiceError::Internal)
    }

    async fn log_state(&self, log: &ShardLogId) -> Result<LogRecord> {
        match self
            .shard_read(log, StreamQuery::Log { log: log.clone() })
            .await?
        {
            StreamQueryReply::Log(l) => Ok(l),
            other => Err(unexpected(other)),
        }
    }

    fn log_of(record: &StreamRecord, shard: ShardId) -> ShardLogId {
        ShardLogId {
            stream: record.name.clone(),
            incarnation: record.incarnation,
            shard,
        }
    }

    // ---- streams ----

    pub async fn create_stream(
        &self,
        name: StreamName,
        shard_count: Option<u32>,
        mode: Option<StreamMode>,
        tags: BTreeMap<String, String>,
    ) -> Result<()> {
        let mode = mode.unwrap_or(StreamMode::Provisioned);
        let shard_count = match (mode, shard_count) {
            (StreamMode::OnDemand, _) => ON_DEMAND_SHARDS,
            (StreamMode::Provisioned, Some(n)) => n,
            (StreamMode::Provisioned, None) => {
                return Err(StreamError::invalid(
                    "ShardCount is required for streams in PROVISIONED mode.",
                )
                .into())
            }
        };
        self.catalog_record(StreamCatalogCommand::Create {
            name,
            shard_count,
            mode,
            tags,
            now_ms: now_ms(),
        })
        .await?;
        // A node may still hold a copy of a deleted incarnation of this name.
        self.outlast_leases().await;
        Ok(())
    }

    /// DeleteStream; without `enforce_consumer_deletion` a stream with registered
    /// consumers is refused (ResourceInUseException), as on Kinesis.
    pub async fn delete_stream(
        &self,
        name: &StreamName,
        enforce_consumer_deletion: bool,
    ) -> Result<()> {
        let command = if enforce_consumer_deletion {
            StreamCatalogCommand::Delete { name: name.clone() }
        } else {
            StreamCatalogCommand::DeleteWithoutConsumers { name: name.clone() }
        };
        match self.catalog_write(command).await? {
            StreamCatalogReply::Deleted => {
                self.catalog_cache.forget(name);
                // Copies of the deleted incarnation expire before the delete is
                // acknowledged.
                self.outlast_leases().await;
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    pub async fn list_streams(
        &self,
        after: Option<StreamName>,
        limit: u32,
    ) -> Result<(Vec<StreamSummary>, bool)> {
        match self
            .catalog_read(StreamCatalogQuery::List { after, limit })
            .await?
        {
            StreamCatalogReply::Streams { streams, more } => Ok((streams, more)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn set_retention(&self, name: &StreamName, hours: u32, increase: bool) -> Result<()> {
        self.catalog_record(StreamCatalogCommand::SetRetention {
            name: name.clone(),
            hours,
            increase,
        })
        .await
        .map(|_| ())
    }

    pub async fn add_tags(&self, name: &StreamName, tags: BTreeMap<String, String>) -> Result<()> {
        self.catalog_record(StreamCatalogCommand::AddTags {
            name: name.clone(),
            tags,
        })
        .await
        .map(|_| ())
    }

    pub async fn remove_tags(&self, name: &StreamName, keys: Vec<String>) -> Result<()> {
        self.catalog_record(StreamCatalogCommand::RemoveTags {
            name: name.clone(),
            keys,
        })
        .await
        .map(|_| ())
    }

    // ---- enhanced fan-out consumers ----

    pub async fn register_consumer(
        &self,
        stream: &StreamName,
        name: ConsumerName,
    ) -> Result<ConsumerRecord> {
        match self
            .catalog_write(StreamCatalogCommand::RegisterConsumer {
                stream: stream.clone(),
                name,
                now_ms: now_ms(),
            })
            .await?
        {
            StreamCatalogReply::Consumer(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// Deregister a consumer; `created_seconds` (from a ConsumerARN) names one
    /// registration.
    pub async fn deregister_consumer(
        &self,
        stream: &StreamName,
        name: ConsumerName,
        created_seconds: Option<u64>,
    ) -> Result<ConsumerRecord> {
        match self
            .catalog_write(StreamCatalogCommand::DeregisterConsumer {
                stream: stream.clone(),
                name,
                created_seconds,
            })
            .await?
        {
            StreamCatalogReply::Consumer(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    pub async fn consumer(
        &self,
        stream: &StreamName,
        name: &ConsumerName,
    ) -> Result<ConsumerRecord> {
        match self
            .catalog_read(StreamCatalogQuery::Consumer {
                stream: stream.clone(),
                name: name.clone(),
            })
            .await?
        {
            StreamCatalogReply::Consumer(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// The registration a ConsumerARN names, or ResourceNotFound.
    pub async fn consumer_by_arn(&self, arn: &ConsumerArn) -> Result<ConsumerRecord> {
        let not_found = || {
            ServiceError::Stream(super::consumer::consumer_not_found(
                &arn.stream,
                arn.name.as_str(),
            ))
        };
        match self.consumer(&arn.stream, &arn.name).await {
            Ok(c) if arn.names(&c) => Ok(c),
            Ok(_) | Err(ServiceError::Stream(StreamError::StreamNotFound(_))) => Err(not_found()),
            Err(e) => Err(e),
        }
    }

    pub async fn list_consumers(
        &self,
        stream: &StreamName,
        after: Option<ConsumerName>,
        limit: u32,
    ) -> Result<(Vec<ConsumerRecord>, bool)> {
        match self
            .catalog_read(StreamCatalogQuery::Consumers {
                stream: stream.clone(),
                after,
                limit,
            })
            .await?
        {
            StreamCatalogReply::Consumers { consumers, more } => Ok((consumers, more)),
            other => Err(unexpected(other)),
        }
    }

    /// How many consumers a stream has registered (DescribeStreamSummary).
    pub async fn consumer_count(&self, stream: &StreamName) -> Result<usize> {
        let (consumers, _) = self
            .list_consumers(stream, None, MAX_CONSUMERS_PER_STREAM as u32)
            .await?;
        Ok(consumers.len())
    }

    // ---- resharding ----

    /// Begin a reshard and run it: SplitShard and MergeShards to the end before answering,
    /// UpdateShardCount in the background (the stream shows UPDATING meanwhile). Returns
    /// the record as the reshard began.
    pub async fn reshard(
        self: &Arc<Self>,
        name: &StreamName,
        request: ReshardRequest,
    ) -> Result<StreamRecord> {
        let current = self.stream(name).await?;
        let began = self
            .catalog_record(StreamCatalogCommand::BeginReshard {
                name: name.clone(),
                incarnation: current.incarnation,
                request,
                now_ms: now_ms(),
            })
            .await?;
        if began.pending.is_none() {
            return Ok(began);
        }
        match request {
            ReshardRequest::Scale { .. } => {
                let (service, record) = (self.clone(), began.clone());
                tokio::spawn(async move {
                    if let Err(e) = service.finish_reshard(record).await {
                        tracing::info!("UpdateShardCount left for the stream worker: {e}");
                    }
                });
                Ok(began)
            }
            _ => self.finish_reshard(began.clone()).await.map(|_| began),
        }
    }

    /// Run the pending plan of `record` to its end. Every step is idempotent, so two
    /// runners of one plan agree.
    pub async fn finish_reshard(&self, mut record: StreamRecord) -> Result<StreamRecord> {
        while record.pending.is_some() {
            record = self.run_step(&record).await?;
        }
        Ok(record)
    }

    /// Run the next step of `record`'s plan: close the parents' logs (concurrently), then
    /// record the step with their ending sequence numbers.
    async fn run_step(&self, record: &StreamRecord) -> Result<StreamRecord> {
        let Some((index, step)) = record
            .pending
            .as_ref()
            .and_then(|p| p.next_step().map(|s| (p.next, s)))
        else {
            return Ok(record.clone());
        };
        let closes = step.parents().into_iter().map(|parent| {
            let log = Self::log_of(record, parent);
            async move {
                match self
                    .shard_write(&log, StreamCommand::Close { log: log.clone() })
                    .await?
                {
                    StreamReply::Closed(end) => Ok(end),
                    other => Err(unexpected(other)),
                }
            }
        });
        let endings = futures::future::join_all(closes)
            .await
            .into_iter()
            .collect::<Result<Vec<SequenceNumber>>>()?;
        self.catalog_record(StreamCatalogCommand::RecordStep {
            name: record.name.clone(),
            incarnation: record.incarnation,
            index,
            endings,
            now_ms: now_ms(),
        })
        .await
    }

    // ---- records ----

    /// PutRecords: one outcome per entry, in order. Entries are checked first (a bad one
    /// fails the request); then each data group gets one command carrying the entries of
    /// every shard it holds (`AppendMany`, or `Append` for one shard), sent concurrently.
    pub async fn put_records(
        &self,
        name: &StreamName,
        entries: Vec<PutEntry>,
    ) -> Result<Vec<Result<PutResult>>> {
        self.put(name, entries, true).await
    }

    /// PutRecord: the one entry's outcome is the request's.
    pub async fn put_record(&self, name: &StreamName, entry: PutEntry) -> Result<PutResult> {
        let mut out = self.put(name, vec![entry], false).await?;
        out.pop()
            .unwrap_or_else(|| Err(ServiceError::Internal("a put returned no outcome".into())))
    }

    async fn put(
        &self,
        name: &StreamName,
        entries: Vec<PutEntry>,
        batch: bool,
    ) -> Result<Vec<Result<PutResult>>> {
        let hashes = check_entries(&entries, batch)?;
        let mut record = self.stream_cached(name).await?;
        let incarnation = record.incarnation;
        let mut outcomes: Vec<Option<Result<PutResult>>> = vec![None; entries.len()];
        let mut waiting: Vec<usize> = (0..entries.len()).collect();
        let deadline = Instant::now() + self.settings.reroute_timeout;
        let mut retries = 0u32;
        loop {
            // Group by the open shard that holds each entry's hash key, in entry order.
            let mut by_shard: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
            for i in waiting.drain(..) {
                match record.shard_for(hashes[i]) {
                    Some(shard) => by_shard.entry(shard.id).or_default().push(i),
                    None => {
                        outcomes[i] = Some(Err(ServiceError::Internal(format!(
                            "no open shard of stream {name} holds hash key {}",
                            hashes[i]
                        ))))
                    }
                }
            }
            // One command per data group, carrying the appends of every shard it holds:
            // a Raft command's fixed cost then falls on groups, not shards.
            let mut by_group: BTreeMap<GroupId, Vec<(ShardId, Vec<usize>)>> = BTreeMap::new();
            for (shard, idx) in by_shard {
                let group = self.group_of(&Self::log_of(&record, shard));
                by_group.entry(group).or_default().push((shard, idx));
            }
            let enforce_limits = self.settings.enforce_shard_throughput;
            let records_of = |idx: &[usize]| -> Vec<NewRecord> {
                idx.iter()
                    .map(|&i| NewRecord {
                        partition_key: entries[i].partition_key.clone(),
                        data: entries[i].data.clone(),
                    })
                    .collect()
            };
            let puts = by_group.into_iter().map(|(group, shards)| {
                let record = &record;
                async move {
                    if let [(shard, idx)] = &shards[..] {
                        let command = StreamCommand::Append {
                            log: Self::log_of(record, *shard),
                            records: records_of(idx),
                            enforce_limits,
                        };
                        let reply = self.group_write(group, command).await;
                        return vec![(*shard, idx.clone(), reply)];
                    }
                    let command = StreamCommand::AppendMany {
                        appends: shards
                            .iter()
                            .map(|(shard, idx)| (Self::log_of(record, *shard), records_of(idx)))
                            .collect(),
                        enforce_limits,
                    };
                    let reply = self.group_write(group, command).await;
                    // Spread the group's reply over its shards, each as an `Append` reply.
                    let replies: Vec<Result<StreamReply>> = match reply {
                        Ok(StreamReply::AppendedMany(outcomes))
                            if outcomes.len() == shards.len() =>
                        {
                            outcomes
                                .into_iter()
                                .map(|o| Ok(StreamReply::Appended(o)))
                                .collect()
                        }
                        Ok(other) => vec![Ok(other); shards.len()],
                        Err(e) => vec![Err(e); shards.len()],
                    };
                    shards
                        .into_iter()
                        .zip(replies)
                        .map(|((shard, idx), reply)| (shard, idx, reply))
                        .collect::<Vec<_>>()
                }
            });
            let replies = futures::future::join_all(puts).await.into_iter().flatten();
            for (shard, idx, reply) in replies {
                match reply {
                    Ok(StreamReply::Appended(AppendOutcome::Appended(results))) => {
                        for (i, r) in idx.into_iter().zip(results) {
                            outcomes[i] = Some(
                                r.map(|sequence| PutResult { shard, sequence })
                                    .map_err(ServiceError::from),
                            );
                        }
                    }
                    Ok(StreamReply::Appended(AppendOutcome::Closed)) => waiting.extend(idx),
                    Ok(other) => {
                        for i in idx {
                            outcomes[i] = Some(Err(unexpected(&other)));
                        }
                    }
                    Err(e) => {
                        for i in idx {
                            outcomes[i] = Some(Err(e.clone()));
                        }
                    }
                }
            }
            if waiting.is_empty() {
                break;
            }
            // A shard closed under a split or merge: wait for the step to be recorded,
            // then route these entries over the new shards.
            if Instant::now() >= deadline {
                let e = ServiceError::Unavailable(format!(
                    "stream {name} is resharding; its shards did not settle in time"
                ));
                fail_all(&mut waiting, &mut outcomes, &e);
                break;
            }
            waiting.sort_unstable();
            tokio::time::sleep(Duration::from_millis(20)).await;
            // From here a failure belongs to the waiting entries alone: others may already
            // be appended, so the request must still answer entry by entry.
            record = match self.incarnation(name, incarnation).await {
                Ok(record) => record,
                Err(e) => {
                    fail_all(&mut waiting, &mut outcomes, &e);
                    break;
                }
            };
            retries += 1;
            let still_open = waiting.iter().any(|&i| {
                record.shard_for(hashes[i]).is_some_and(|s| {
                    record
                        .pending
                        .as_ref()
                        .and_then(|p| p.next_step())
                        .is_some_and(|step| step.parents().contains(&s.id))
                })
            });
            if still_open && retries >= 3 {
                // The step that closed the shard is not recorded yet and its runner may be
                // gone: take the step over (it is idempotent).
                record = match self.run_step(&record).await {
                    Ok(record) => record,
                    Err(e) => {
                        fail_all(&mut waiting, &mut outcomes, &e);
                        break;
                    }
                };
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ServiceError::Internal("no outcome".into()))))
            .collect())
    }

    pub async fn get_shard_iterator(
        &self,
        name: &StreamName,
        shard: &str,
        start: IteratorStart,
    ) -> Result<String> {
        let mut record = self.stream_cached(name).await?;
        if shard_named(&record, shard).is_err() {
            // Perhaps a shard newer than the copy.
            record = self.stream(name).await?;
        }
        let shard = shard_named(&record, shard)?;
        let position = self
            .start_position(&record, shard, start, "GetShardIterator")
            .await?;
        Ok(ShardIterator {
            stream: record.name.clone(),
            incarnation: record.incarnation,
            shard: shard.id,
            position,
            issued_ms: now_ms(),
        }
        .encode(&self.key))
    }

    /// The log position a reader starting at `start` reads first (`operation` names the
    /// call in error messages).
    pub async fn start_position(
        &self,
        record: &StreamRecord,
        shard: &ShardRecord,
        start: IteratorStart,
        operation: &str,
    ) -> Result<u64> {
        let name = &record.name;
        let log = Self::log_of(record, shard.id);
        let sequence_in_shard = |text: &str| -> Result<SequenceNumber> {
            if !super::model::is_decimal(text, 129) {
                return Err(StreamError::constraint(
                    "startingSequenceNumber",
                    text,
                    "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
                )
                .into());
            }
            let seq = SequenceNumber::parse(text).map_err(|_| {
                StreamError::invalid(format!(
                    "StartingSequenceNumber {text} used in {operation} on shard {} in stream {name} under account {ACCOUNT_ID} is invalid.",
                    shard.id
                ))
            })?;
            if seq.shard != shard.id.0 {
                return Err(StreamError::invalid(format!(
                    "StartingSequenceNumber {text} used in {operation} on shard {} in stream {name} under account {ACCOUNT_ID} is invalid because it did not come from this stream.",
                    shard.id
                ))
                .into());
            }
            Ok(seq)
        };
        let position = match start {
            IteratorStart::TrimHorizon => 0,
            IteratorStart::Latest => self.log_state(&log).await?.next_position,
            IteratorStart::AtSequence(s) => sequence_in_shard(&s)?.position,
            IteratorStart::AfterSequence(s) => sequence_in_shard(&s)?.position.saturating_add(1),
            IteratorStart::AtTimestamp(at_ms) if at_ms > now_ms() => {
                return Err(StreamError::invalid(format!(
                    "The timestamp {at_ms} used in {operation} on shard {} in stream {name} under account {ACCOUNT_ID} is in the future.",
                    shard.id
                ))
                .into())
            }
            IteratorStart::AtTimestamp(at_ms) => match self
                .shard_read(
                    &log,
                    StreamQuery::PositionAt {
                        log: log.clone(),
                        at_ms,
                    },
                )
                .await?
            {
                StreamQueryReply::Position(p) => p,
                other => return Err(unexpected(other)),
            },
        };
        Ok(position)
    }

    fn lock_limiter(&self) -> std::sync::MutexGuard<'_, ReadLimiter> {
        // The limiter holds counters only; a panic elsewhere cannot leave them unusable.
        self.read_limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Take one GetRecords call of `log`'s allowance, or refuse it as Kinesis does.
    fn admit_read(&self, log: &ShardLogId, now_ms: u64) -> Result<()> {
        match self.lock_limiter().admit(log, now_ms) {
            Ok(()) => Ok(()),
            Err(Throttled::Calls | Throttled::Bytes) => {
                Err(StreamError::ProvisionedThroughputExceeded(
                    log.shard.to_string(),
                    log.stream.to_string(),
                )
                .into())
            }
        }
    }

    async fn read_log(
        &self,
        log: &ShardLogId,
        from: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<ReadPage> {
        let query = StreamQuery::Read {
            log: log.clone(),
            from,
            limit,
            max_bytes: max_bytes as u64,
        };
        match self.shard_read(log, query).await? {
            StreamQueryReply::Page(p) => Ok(*p),
            other => Err(unexpected(other)),
        }
    }

    /// Read `record`'s shard from `position` for an enhanced fan-out subscription (not
    /// counted against GetRecords' limits: a consumer has its own pipe, as on Kinesis).
    pub async fn read_shard(
        &self,
        record: &StreamRecord,
        shard: ShardId,
        position: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<ShardPage> {
        let log = Self::log_of(record, shard);
        let page = self.read_log(&log, position, limit, max_bytes).await?;
        let caught_up = page.next >= page.log.next_position;
        let millis_behind_latest = match page.records.last() {
            Some(last) if !caught_up => now_ms().saturating_sub(last.record.arrival_ms),
            _ => 0,
        };
        let at_end = page.log.closed_at.is_some_and(|last| page.next > last);
        Ok(ShardPage {
            records: page.records,
            next: page.next,
            millis_behind_latest,
            at_end,
        })
    }

    /// GetRecords from `token`; `stream`, when the client named one (StreamARN), must be
    /// the iterator's.
    pub async fn get_records(
        &self,
        token: &str,
        limit: Option<u32>,
        stream: Option<&StreamName>,
    ) -> Result<RecordsPage> {
        let limit = limit.unwrap_or(MAX_GET_RECORDS);
        if !(1..=MAX_GET_RECORDS).contains(&limit) {
            let constraint = if limit == 0 {
                "Member must have value greater than or equal to 1".to_string()
            } else {
                format!("Member must have value less than or equal to {MAX_GET_RECORDS}")
            };
            return Err(StreamError::constraint("limit", limit, &constraint).into());
        }
        let now = now_ms();
        let it = ShardIterator::decode(token, &self.key, now)?;
        if stream.is_some_and(|s| *s != it.stream) {
            return Err(StreamError::invalid(format!(
                "The shard iterator belongs to stream {}, not to the StreamARN given.",
                it.stream
            ))
            .into());
        }
        let mut record = self.stream_cached(&it.stream).await?;
        if record.incarnation != it.incarnation || record.shard(it.shard).is_err() {
            // The copy may predate the iterator's incarnation or shard: ask the catalog.
            record = self.incarnation(&it.stream, it.incarnation).await?;
        }
        let shard = record.shard(it.shard)?.clone();
        let log = Self::log_of(&record, shard.id);
        let enforce = self.settings.enforce_shard_throughput;
        if enforce {
            self.admit_read(&log, now)?;
        }
        let page = self
            .read_log(&log, it.position, limit, MAX_GET_RECORDS_BYTES)
            .await?;
        if enforce {
            let bytes: usize = page
                .records
                .iter()
                .map(|r| r.record.data.len() + r.record.partition_key.len())
                .sum();
            self.lock_limiter()
                .charge(&log, bytes as u64, now_ms().max(now));
        }
        let caught_up = page.next >= page.log.next_position;
        let millis_behind_latest = match page.records.last() {
            Some(last) if !caught_up => now.saturating_sub(last.record.arrival_ms),
            _ => 0,
        };
        let at_end = page.log.closed_at.is_some_and(|last| page.next > last);
        let (next_iterator, child_shards) = if at_end {
            // The children must be those the catalog recorded; the copy may predate them.
            let record = self.incarnation(&it.stream, it.incarnation).await?;
            let children = record
                .children_of(shard.id)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>();
            (None, Some(children))
        } else {
            let next = ShardIterator {
                position: page.next,
                issued_ms: now,
                ..it
            };
            (Some(next.encode(&self.key)), None)
        };
        Ok(RecordsPage {
            records: page.records,
            next_iterator,
            millis_behind_latest,
            child_shards,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, bytes: usize) -> PutEntry {
        PutEntry {
            partition_key: key.into(),
            explicit_hash_key: None,
            data: vec![0; bytes],
        }
    }

    #[test]
    fn put_entries_are_checked_as_kinesis_checks_them() {
        let code = |entries: &[PutEntry], batch| match check_entries(entries, batch).unwrap_err() {
            ServiceError::Stream(e) => e.code(),
            other => panic!("{other:?}"),
        };
        assert_eq!(check_entries(&[entry("a", 10)], false).unwrap().len(), 1);
        assert_eq!(code(&[], true), "ValidationException");
        assert_eq!(code(&vec![entry("a", 1); 501], true), "ValidationException");
        assert_eq!(code(&[entry("", 1)], false), "ValidationException");
        assert_eq!(
            code(&[entry(&"k".repeat(257), 1)], false),
            "ValidationException"
        );
        assert_eq!(
            code(&[entry("a", MAX_RECORD_BYTES + 1)], false),
            "ValidationException"
        );
        // 1 MiB of data plus the key is over the record limit.
        assert_eq!(
            code(&[entry("a", MAX_RECORD_BYTES)], false),
            "InvalidArgumentException"
        );
        assert!(check_entries(&[entry("a", MAX_RECORD_BYTES - 1)], false).is_ok());
        // Six records of ~1 MiB are over the request's 5 MiB.
        assert_eq!(
            code(&vec![entry("a", MAX_RECORD_BYTES - 1); 6], true),
            "InvalidArgumentException"
        );
        let mut bad = entry("a", 1);
        bad.explicit_hash_key = Some("x".into());
        assert_eq!(code(&[bad.clone()], false), "ValidationException");
        bad.explicit_hash_key = Some("340282366920938463463374607431768211456".into());
        assert_eq!(code(&[bad.clone()], false), "InvalidArgumentException");
        bad.explicit_hash_key = Some("5".into());
        assert_eq!(check_entries(&[bad], false).unwrap(), [5]);
    }

    #[test]
    fn retention_hours_follow_the_compressed_clock() {
        let s = StreamSettings {
            seconds_per_hour: 1,
            ..StreamSettings::default()
        };
        assert_eq!(s.retention_ms(24), 24_000);
        assert_eq!(StreamSettings::default().retention_ms(1), 3_600_000);
    }
}
