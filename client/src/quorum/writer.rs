//! The single writer of a volume (docs/quorum-storage.md, "Writes: 4 of 6" and "Reads").
//!
//! [`VolumeWriter::open`] runs recovery (a new epoch; see [`super::recovery`]) and then
//! serves commits. A commit is a [`MiniTransaction`]: its records get consecutive LSNs under
//! one lock, with per-PG backlinks and a CRC each, the last one a consistency point (CPL).
//! Each record goes onto the send queue of every member of its PG; one sender task per
//! segment sends whatever is queued as one `Append` (client-side group commit), retries
//! with backoff, and piggybacks the writer's VDL and the PG's tail. The commit resolves
//! when VDL reaches its CPL: 4 of 6 acknowledgements per record, never waiting for the
//! slowest two segments.
//!
//! Segment answers: `NEEDS_FENCE` (or NOT_FOUND) → `Fence` with the full history, then
//! retry; `STALE_MEMBERSHIP` → reload the catalog and adopt the new sets; `FENCED` → this
//! writer is dead and every pending and later commit fails with [`QuorumError::Fenced`].
//!
//! Failure semantics: a commit that fails after its records were queued is "outcome
//! unknown" — some segments may hold them and a later writer's recovery may keep the
//! mini-transaction (whole) or void it (whole). Dropping a writer without
//! [`VolumeWriter::close`] stops its tasks at once, like a crash.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::{watch, Notify};

use super::catalog::{CatalogService, PgMembership, SegmentPlace, Truncation, VolumeCatalog};
use super::durability::{DurabilityTracker, MemberKey, QuorumSet};
use super::record::{LogRecord, PageOp};
use super::recovery::{self, member_of, Recovered, RecoveryLimits};
use super::transport::{
    AppendArgs, GrpcTransport, Outcome, SegmentId, SegmentTransport, TransportError,
};
use super::{Epoch, Lsn, QuorumError};
use crate::ClientConfig;

/// How a writer behaves.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// LSN allocation limit: at most this many LSNs above VDL.
    pub lal: u64,
    /// How long a commit may wait (for LAL room, then for durability).
    pub commit_timeout: Duration,
    /// How long recovery may take.
    pub open_timeout: Duration,
    /// How long a page read may wait for a segment that can serve it.
    pub read_timeout: Duration,
    /// Bound on each segment call.
    pub segment_call_timeout: Duration,
    /// An idle sender sends an empty `Append` this long after VDL moved.
    pub heartbeat: Duration,
    /// Payload per `Append`.
    pub batch_bytes: u64,
    /// Records queued for one segment above which durable ones are dropped from its
    /// queue (the segment then fills those holes by gossip).
    pub max_backlog: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            lal: 10_000,
            commit_timeout: Duration::from_secs(10),
            open_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(10),
            segment_call_timeout: Duration::from_secs(2),
            heartbeat: Duration::from_millis(50),
            batch_bytes: 1 << 20,
            max_backlog: 4096,
        }
    }
}

/// An ordered list of (page, redo ops), committed all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MiniTransaction {
    pages: Vec<(u64, Vec<PageOp>)>,
}

impl MiniTransaction {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one record: `ops` applied to `page`.
    pub fn push(&mut self, page: u64, ops: Vec<PageOp>) -> &mut Self {
        self.pages.push((page, ops));
        self
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The records in commit order: (page, ops).
    pub fn records(&self) -> &[(u64, Vec<PageOp>)] {
        &self.pages
    }
}

/// Why a writer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Fenced { newer_epoch: Epoch },
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    vdl: Lsn,
    end: Option<End>,
}

struct MemberQueue {
    place: SegmentPlace,
    records: VecDeque<Arc<LogRecord>>,
    notify: Arc<Notify>,
    active: bool,
    latency: Duration,
}

struct State {
    tracker: DurabilityTracker,
    /// Last allocated LSN of each PG: the next record's backlink.
    pg_last: Vec<Lsn>,
    history: Vec<Truncation>,
    memberships: Vec<PgMembership>,
    queues: HashMap<MemberKey, MemberQueue>,
    /// Records above VCL, for members that join during a membership change.
    inflight: BTreeMap<Lsn, Arc<LogRecord>>,
    end: Option<End>,
}

struct Shared {
    name: String,
    volume_id: u64,
    pg_count: u32,
    pages_per_pg: u32,
    epoch: Epoch,
    transport: Arc<dyn SegmentTransport>,
    catalog: Arc<dyn CatalogService>,
    options: WriterOptions,
    state: Mutex<State>,
    progress: watch::Sender<Progress>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// The writer of one volume. Commits may run concurrently (`&self`).
pub struct VolumeWriter {
    shared: Arc<Shared>,
    recovered_before_replication: bool,
}

impl std::fmt::Debug for VolumeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeWriter")
            .field("volume", &self.shared.name)
            .field("epoch", &self.shared.epoch)
            .finish()
    }
}

impl VolumeWriter {
    /// Opens `name` on the cluster at `config`'s endpoints: recovery, then ready.
    pub async fn open(
        config: ClientConfig,
        name: &str,
        options: WriterOptions,
    ) -> Result<Self, QuorumError> {
        let catalog = VolumeCatalog::connect(config).await?;
        let transport = Arc::new(GrpcTransport::new(
            catalog.cluster_name(),
            options.segment_call_timeout,
        ));
        Self::open_with(Arc::new(catalog), transport, name, options).await
    }

    /// Opens `name` over an explicit catalog and segment transport (tests inject faults
    /// through the transport).
    pub async fn open_with(
        catalog: Arc<dyn CatalogService>,
        transport: Arc<dyn SegmentTransport>,
        name: &str,
        options: WriterOptions,
    ) -> Result<Self, QuorumError> {
        let limits = RecoveryLimits {
            deadline: Instant::now() + options.open_timeout,
            batch_bytes: options.batch_bytes,
        };
        let recovered =
            recovery::recover(catalog.as_ref(), transport.as_ref(), name, limits).await?;
        Ok(Self::serve(catalog, transport, name, options, recovered))
    }

    fn serve(
        catalog: Arc<dyn CatalogService>,
        transport: Arc<dyn SegmentTransport>,
        name: &str,
        options: WriterOptions,
        recovered: Recovered,
    ) -> Self {
        let Recovered {
            volume,
            epoch,
            vdl,
            tails,
            scls,
            completed_before_replication,
        } = recovered;
        let mut memberships = volume.pgs.clone();
        memberships.sort_by_key(|m| m.pg);
        let sets = memberships.iter().map(QuorumSet::from_membership).collect();
        let mut tracker = DurabilityTracker::new(vdl, tails.clone(), sets, options.lal);
        for (member, scl) in scls {
            tracker.note_scl(member, scl);
        }
        let mut queues = HashMap::new();
        for m in &memberships {
            for place in m.all_places() {
                queues.insert(member_of(m.pg, &place), new_queue(place));
            }
        }
        let members: Vec<MemberKey> = queues.keys().copied().collect();
        let (progress, _) = watch::channel(Progress { vdl, end: None });
        let shared = Arc::new(Shared {
            name: name.to_string(),
            volume_id: volume.volume_id,
            pg_count: volume.pg_count,
            pages_per_pg: volume.pages_per_pg,
            epoch,
            transport,
            catalog,
            options,
            state: Mutex::new(State {
                tracker,
                pg_last: tails,
                history: volume.history.clone(),
                memberships,
                queues,
                inflight: BTreeMap::new(),
                end: None,
            }),
            progress,
            tasks: Mutex::new(Vec::new()),
        });
        for member in members {
            spawn_sender(&shared, member);
        }
        VolumeWriter {
            shared,
            recovered_before_replication: completed_before_replication,
        }
    }

    /// This writer's epoch.
    pub fn epoch(&self) -> Epoch {
        self.shared.epoch
    }

    /// The volume durable point now.
    pub fn vdl(&self) -> Lsn {
        self.shared.progress.borrow().vdl
    }

    pub fn pg_count(&self) -> u32 {
        self.shared.pg_count
    }

    pub fn pages_per_pg(&self) -> u32 {
        self.shared.pages_per_pg
    }

    /// Whether recovery had to record the truncation before re-replicating (see
    /// [`super::recovery`]).
    pub fn recovered_before_replication(&self) -> bool {
        self.recovered_before_replication
    }

    /// Commits `mtx`; returns its CPL once VDL reached it (durable on a write quorum).
    pub async fn commit(&self, mtx: MiniTransaction) -> Result<Lsn, QuorumError> {
        let shared = &self.shared;
        let page_count = u64::from(shared.pg_count) * u64::from(shared.pages_per_pg);
        if mtx.is_empty() {
            return Err(QuorumError::InvalidArgument(
                "a mini-transaction needs at least one record".into(),
            ));
        }
        if let Some((page, _)) = mtx.pages.iter().find(|(p, _)| *p >= page_count) {
            return Err(QuorumError::InvalidArgument(format!(
                "page {page} is outside the volume ({page_count} pages)"
            )));
        }
        let deadline = tokio::time::Instant::now() + shared.options.commit_timeout;
        let mut progress = shared.progress.subscribe();
        let count = mtx.len() as u64;
        let mut mtx = Some(mtx);
        let (cpl, notifies) = loop {
            {
                let mut state = shared.lock();
                if let Some(end) = state.end {
                    return Err(shared.end_error(end, false));
                }
                if state.tracker.can_allocate(count) {
                    if let Some(mtx) = mtx.take() {
                        break shared.allocate(&mut state, mtx);
                    }
                }
            }
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(QuorumError::Unavailable(format!(
                    "volume {}: {} LSNs in flight above VDL (the LAL) for {:?}; nothing was sent",
                    shared.name, shared.options.lal, shared.options.commit_timeout
                )))
                }
            }
        };
        for n in notifies {
            n.notify_one();
        }
        loop {
            let now = *progress.borrow_and_update();
            if now.vdl >= cpl {
                return Ok(cpl);
            }
            if let Some(end) = now.end {
                return Err(shared.end_error(end, true));
            }
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(QuorumError::OutcomeUnknown(format!(
                        "volume {}: the commit at LSN {cpl} did not reach a write quorum within \
                         {:?} (VDL {}); it may still become durable",
                        shared.name,
                        shared.options.commit_timeout,
                        self.vdl()
                    )))
                }
            }
        }
    }

    /// Page `page`'s entries (key order) as of the current VDL.
    pub async fn read_page(&self, page: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>, QuorumError> {
        let shared = &self.shared;
        let pg = (page % u64::from(shared.pg_count)) as u32;
        let deadline = Instant::now() + shared.options.read_timeout;
        let mut backoff = Duration::from_millis(20);
        let mut last_problem = String::from("no segment answered");
        loop {
            let (vdl, tail, candidates) = {
                let state = shared.lock();
                if let Some(End::Fenced { newer_epoch }) = state.end {
                    return Err(QuorumError::Fenced {
                        epoch: shared.epoch,
                        newer_epoch,
                        outcome_unknown: false,
                    });
                }
                let vdl = state.tracker.vdl();
                let tail = state.tracker.pg_tail(pg);
                let mut candidates: Vec<(bool, Duration, SegmentPlace)> = state
                    .memberships
                    .get(pg as usize)
                    .map(PgMembership::all_places)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|place| {
                        let member = member_of(pg, &place);
                        let complete = state.tracker.scl(&member) >= tail;
                        let latency = state
                            .queues
                            .get(&member)
                            .map_or(Duration::MAX, |q| q.latency);
                        (!complete, latency, place)
                    })
                    .collect();
                candidates.sort_by_key(|c| (c.0, c.1));
                (vdl, tail, candidates)
            };
            for (_, _, place) in candidates {
                let segment = shared.segment(pg, &place);
                match shared
                    .transport
                    .read_page(&place, segment, page, vdl, tail, 0)
                    .await
                {
                    Ok(reply) if reply.outcome == Outcome::Ok => return Ok(reply.entries),
                    Ok(reply) => {
                        last_problem = format!("node {}: {:?}", place.node_id, reply.outcome)
                    }
                    Err(e) => last_problem = e.to_string(),
                }
            }
            if Instant::now() + backoff >= deadline {
                return Err(QuorumError::Unavailable(format!(
                    "volume {}: no segment of PG {pg} could serve page {page} at VDL {vdl} \
                     within {:?} (last: {last_problem})",
                    shared.name, shared.options.read_timeout
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// Stops the writer after telling every segment the final VDL (an empty `Append`),
    /// so replicas can read everything committed.
    pub async fn close(self) -> Result<(), QuorumError> {
        let shared = self.shared.clone();
        let calls: Vec<_> = {
            let state = shared.lock();
            let vdl = state.tracker.vdl();
            state
                .queues
                .iter()
                .filter(|(_, q)| q.active)
                .map(|(member, q)| {
                    let args = AppendArgs {
                        epoch: shared.epoch,
                        membership_epoch: state
                            .memberships
                            .get(member.pg as usize)
                            .map_or(0, |m| m.membership_epoch),
                        vdl,
                        pg_tail: state.tracker.pg_tail(member.pg),
                        records: Vec::new(),
                    };
                    (q.place.clone(), shared.segment(member.pg, &q.place), args)
                })
                .collect()
        };
        join_all(calls.into_iter().map(|(place, segment, args)| {
            let transport = shared.transport.clone();
            async move { transport.append(&place, segment, args).await }
        }))
        .await;
        shared.end(End::Closed);
        Ok(())
    }
}

impl Drop for VolumeWriter {
    fn drop(&mut self) {
        for task in self
            .shared
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

fn new_queue(place: SegmentPlace) -> MemberQueue {
    MemberQueue {
        place,
        records: VecDeque::new(),
        notify: Arc::new(Notify::new()),
        active: true,
        latency: Duration::from_millis(1),
    }
}

fn spawn_sender(shared: &Arc<Shared>, member: MemberKey) {
    let task = tokio::spawn(run_sender(shared.clone(), member));
    shared
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(task.abort_handle());
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn segment(&self, pg: u32, place: &SegmentPlace) -> SegmentId {
        SegmentId {
            volume_id: self.volume_id,
            pg,
            slot: place.slot,
        }
    }

    fn end_error(&self, end: End, outcome_unknown: bool) -> QuorumError {
        match end {
            End::Fenced { newer_epoch } => QuorumError::Fenced {
                epoch: self.epoch,
                newer_epoch,
                outcome_unknown,
            },
            End::Closed => QuorumError::Closed,
        }
    }

    fn end(&self, end: End) {
        {
            let mut state = self.lock();
            if state.end.is_none() {
                state.end = Some(end);
            }
            for q in state.queues.values() {
                q.notify.notify_one();
            }
        }
        self.progress.send_modify(|p| {
            if p.end.is_none() {
                p.end = Some(end);
            }
        });
    }

    /// Numbers and queues a mini-transaction's records; returns its CPL and the senders
    /// to wake.
    fn allocate(&self, state: &mut State, mtx: MiniTransaction) -> (Lsn, Vec<Arc<Notify>>) {
        let last = mtx.pages.len() - 1;
        let mut cpl = 0;
        let mut notifies: Vec<Arc<Notify>> = Vec::new();
        for (i, (page, ops)) in mtx.pages.into_iter().enumerate() {
            let pg = (page % u64::from(self.pg_count)) as u32;
            let lsn = state.tracker.allocate(pg, i == last);
            let prev_lsn = std::mem::replace(&mut state.pg_last[pg as usize], lsn);
            let record = Arc::new(
                LogRecord {
                    lsn,
                    prev_lsn,
                    epoch: self.epoch,
                    pg,
                    page,
                    cpl: i == last,
                    ops,
                    crc32: 0,
                }
                .seal(),
            );
            state.inflight.insert(lsn, record.clone());
            let members = state
                .tracker
                .quorum_set(pg)
                .map(QuorumSet::all)
                .unwrap_or_default();
            for member in members {
                if let Some(q) = state.queues.get_mut(&member) {
                    q.records.push_back(record.clone());
                    if !notifies.iter().any(|n| Arc::ptr_eq(n, &q.notify)) {
                        notifies.push(q.notify.clone());
                    }
                }
            }
            cpl = lsn;
        }
        (cpl, notifies)
    }

    /// Fences one member with this writer's epoch and the full history.
    async fn fence(&self, member: MemberKey) -> bool {
        let (place, history, membership) = {
            let state = self.lock();
            let Some(q) = state.queues.get(&member) else {
                return false;
            };
            let Some(m) = state.memberships.get(member.pg as usize) else {
                return false;
            };
            (q.place.clone(), state.history.clone(), m.clone())
        };
        let segment = self.segment(member.pg, &place);
        match self
            .transport
            .fence(&place, segment, self.epoch, &history, &membership)
            .await
        {
            Ok(r) if r.outcome == Outcome::Ok => true,
            Ok(r) if r.outcome == Outcome::Fenced => {
                self.end(End::Fenced {
                    newer_epoch: r.epoch.max(r.status.epoch),
                });
                false
            }
            _ => false,
        }
    }

    /// Re-reads the catalog and adopts newer memberships (start or end of a change).
    async fn reload_membership(self: &Arc<Self>) {
        let Ok(volume) = self.catalog.describe(&self.name).await else {
            return;
        };
        let mut spawn = Vec::new();
        let moved = {
            let mut state = self.lock();
            let mut moved = false;
            for m in volume.pgs {
                let pg = m.pg;
                let Some(current) = state.memberships.get(pg as usize) else {
                    continue;
                };
                if m.membership_epoch <= current.membership_epoch {
                    continue;
                }
                let set = QuorumSet::from_membership(&m);
                let wanted = set.all();
                let pending: Vec<Arc<LogRecord>> = state
                    .inflight
                    .values()
                    .filter(|r| r.pg == pg)
                    .cloned()
                    .collect();
                for place in m.all_places() {
                    let member = member_of(pg, &place);
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        state.queues.entry(member)
                    {
                        let mut q = new_queue(place);
                        q.records.extend(pending.iter().cloned());
                        slot.insert(q);
                        spawn.push(member);
                    }
                }
                for (member, q) in state.queues.iter_mut() {
                    if member.pg == pg && !wanted.contains(member) {
                        q.active = false;
                        q.notify.notify_one();
                    }
                }
                state.queues.retain(|k, q| q.active || k.pg != pg);
                if let Some(slot) = state.memberships.get_mut(pg as usize) {
                    *slot = m;
                }
                moved |= state.tracker.set_membership(pg, set);
            }
            if moved {
                prune_inflight(&mut state);
            }
            moved.then(|| state.tracker.vdl())
        };
        if let Some(vdl) = moved {
            self.progress.send_modify(|p| p.vdl = p.vdl.max(vdl));
        }
        for member in spawn {
            spawn_sender(self, member);
        }
    }
}

fn prune_inflight(state: &mut State) {
    let vcl = state.tracker.vcl();
    while let Some(entry) = state.inflight.first_entry() {
        if *entry.key() > vcl {
            break;
        }
        entry.remove();
    }
}

/// What one sender sends next.
struct Batch {
    place: SegmentPlace,
    notify: Arc<Notify>,
    args: AppendArgs,
}

/// One segment's sender: batches its queue into appends until the writer ends or the
/// segment leaves the PG.
async fn run_sender(shared: Arc<Shared>, member: MemberKey) {
    let options = shared.options.clone();
    let mut last_sent_vdl: Option<Lsn> = None;
    let mut last_send_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(20);
    loop {
        let Some(batch) = take_batch(&shared, member, &options) else {
            return;
        };
        if batch.args.records.is_empty() {
            // Nothing to send: a heartbeat only when VDL moved since the last append and
            // that append is at least `heartbeat` old.
            let since = last_send_at.map_or(Duration::MAX, |t| t.elapsed());
            let wait = if last_sent_vdl == Some(batch.args.vdl) {
                Some(options.heartbeat)
            } else {
                options.heartbeat.checked_sub(since)
            };
            if let Some(wait) = wait.filter(|w| !w.is_zero()) {
                tokio::select! {
                    _ = batch.notify.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        }
        let vdl = batch.args.vdl;
        last_send_at = Some(Instant::now());
        let lsns: Vec<Lsn> = batch.args.records.iter().map(|r| r.lsn).collect();
        let segment = shared.segment(member.pg, &batch.place);
        let started = Instant::now();
        let result = shared
            .transport
            .append(&batch.place, segment, batch.args)
            .await;
        let retry_now = match result {
            Ok(reply) => match reply.outcome {
                Outcome::Ok => {
                    acknowledge(&shared, member, &lsns, reply.scl, started.elapsed());
                    last_sent_vdl = Some(vdl);
                    backoff = Duration::from_millis(20);
                    true
                }
                Outcome::Fenced => {
                    shared.end(End::Fenced {
                        newer_epoch: reply.epoch,
                    });
                    return;
                }
                Outcome::NeedsFence => shared.fence(member).await,
                Outcome::StaleMembership => {
                    shared.reload_membership().await;
                    false
                }
                Outcome::NotComplete => false,
            },
            Err(TransportError::NotFound(_)) => shared.fence(member).await,
            Err(_) => false,
        };
        if !retry_now {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

fn take_batch(shared: &Shared, member: MemberKey, options: &WriterOptions) -> Option<Batch> {
    let mut state = shared.lock();
    if state.end.is_some() {
        return None;
    }
    let vdl = state.tracker.vdl();
    let vcl = state.tracker.vcl();
    let pg_tail = state.tracker.pg_tail(member.pg);
    let membership_epoch = state
        .memberships
        .get(member.pg as usize)
        .map_or(0, |m| m.membership_epoch);
    let q = state.queues.get_mut(&member)?;
    if !q.active {
        return None;
    }
    if q.records.len() > options.max_backlog {
        // A segment that has fallen far behind: what is durable elsewhere it can get by
        // gossip; keep only what still needs its acknowledgement.
        while q.records.front().is_some_and(|r| r.lsn <= vcl) {
            q.records.pop_front();
        }
    }
    let mut records = Vec::new();
    let mut size = 0u64;
    for r in &q.records {
        let len = r.size_bytes() as u64;
        if !records.is_empty() && size + len > options.batch_bytes {
            break;
        }
        size += len;
        records.push(r.clone());
    }
    Some(Batch {
        place: q.place.clone(),
        notify: q.notify.clone(),
        args: AppendArgs {
            epoch: shared.epoch,
            membership_epoch,
            vdl,
            pg_tail,
            records,
        },
    })
}

fn acknowledge(shared: &Shared, member: MemberKey, lsns: &[Lsn], scl: Lsn, latency: Duration) {
    let moved = {
        let mut state = shared.lock();
        if let Some(q) = state.queues.get_mut(&member) {
            if let Some(&last) = lsns.last() {
                while q.records.front().is_some_and(|r| r.lsn <= last) {
                    q.records.pop_front();
                }
            }
            q.latency = (q.latency * 3 + latency) / 4;
        }
        state.tracker.note_scl(member, scl);
        let moved = state.tracker.ack(member, lsns.iter().copied());
        if moved {
            prune_inflight(&mut state);
        }
        moved.then(|| state.tracker.vdl())
    };
    if let Some(vdl) = moved {
        shared.progress.send_modify(|p| p.vdl = p.vdl.max(vdl));
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
