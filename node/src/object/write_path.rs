//! Writing an object's (or a part's) bytes: from the client's body stream to durable
//! shards on the chosen nodes, or inline bytes for the metadata (ARCHITECTURE.md §4).
//!
//! The body is read once, a stripe at a time. Each stripe is hashed (MD5 for the ETag, and
//! the requested `x-amz-checksum-*` algorithm) and Reed–Solomon coded on a blocking thread,
//! then its pieces go to one bounded channel per shard, each drained by that shard's
//! `ShardIo::put_shard` stream. Memory per write is a few stripes whatever the object size:
//! the stripe being read, the encoder's buffer and `queue_pieces` pieces per shard.
//!
//! Guarantees:
//! - Success means at least `data_shards + 1` shards are durable; the others are reported
//!   in `ErasureRef::missing` for repair. A shard whose node fails or stalls is dropped
//!   while the rest go on; when fewer than `data_shards + 1` shard writes remain, the write
//!   stops early with `Unavailable`.
//! - Content-MD5, the expected checksum and Content-Length are checked after the last byte
//!   and before any shard is finished: a body that fails them is abandoned (every shard
//!   write is aborted, so nothing becomes durable) and reported as `BadDigest`,
//!   `ChecksumMismatch` or `IncompleteBody`.
//! - A write that fails leaves no shard behind, as far as the nodes can be reached: shard
//!   writes that did finish are deleted before the error is returned; what cannot be
//!   deleted is left to the orphan sweep (`gc`).
//!
//! Bodies up to `inline_max_bytes` are returned inline (for the metadata command); that is
//! known only after reading up to that much, unless Content-Length says so first.
//!
//! Not here: committing the metadata (`service`), choosing nodes (`placement`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::stream::{self, FuturesUnordered, StreamExt};
use md5::{Digest, Md5};
use tokio::sync::mpsc;

use super::erasure::{EncodedStripe, Encoder, ErasureLayout};
use super::gc;
use super::model::{Checksum, ChecksumAlgorithm, DataRef, ETag, ErasureRef, ObjectError};
use super::placement::ShardPlan;
use super::service::{BodyStream, ServiceError};
use super::shard_io::{PieceStream, ShardIo, ShardIoError};
use crate::store::chunks::{ShardId, ShardStat};

/// S3's largest single PUT and largest part: 5 GiB.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// How patient a write is with slow shards.
#[derive(Debug, Clone)]
pub struct WriteTuning {
    /// Pieces queued per shard ahead of its writer.
    pub queue_pieces: usize,
    /// A shard that cannot take a piece for this long is dropped (recorded missing).
    pub stall_timeout: Duration,
    /// After the last piece, how long to wait for shard writes to become durable.
    pub finish_timeout: Duration,
}

impl Default for WriteTuning {
    fn default() -> Self {
        WriteTuning {
            queue_pieces: 2,
            stall_timeout: Duration::from_secs(30),
            finish_timeout: Duration::from_secs(30),
        }
    }
}

/// What the client declared about its body.
#[derive(Debug, Clone)]
pub struct BodyChecks {
    pub content_length: Option<u64>,
    pub content_md5: Option<[u8; 16]>,
    /// Verified against the bytes when set (its algorithm is also computed and stored).
    pub expected_checksum: Option<Checksum>,
    /// Computed and stored when set.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub max_bytes: u64,
}

impl BodyChecks {
    /// Only Content-Length is known (copies, tests).
    pub fn length(content_length: Option<u64>) -> Self {
        BodyChecks {
            content_length,
            content_md5: None,
            expected_checksum: None,
            checksum_algorithm: None,
            max_bytes: MAX_PUT_BYTES,
        }
    }

    /// The algorithm to compute: the expected checksum's, which must agree with the named one.
    pub fn algorithm(&self) -> Result<Option<ChecksumAlgorithm>, ServiceError> {
        match (&self.expected_checksum, self.checksum_algorithm) {
            (Some(expected), Some(named)) if expected.algorithm != named => {
                Err(ServiceError::Object(ObjectError::InvalidRequest(format!(
                    "Value for x-amz-sdk-checksum-algorithm header is invalid: {} was named \
                     but {} was sent",
                    named.as_str(),
                    expected.algorithm.header_name()
                ))))
            }
            (Some(expected), _) => Ok(Some(expected.algorithm)),
            (None, named) => Ok(named),
        }
    }

    fn verify(&self, md5: &[u8; 16], checksum: Option<&Checksum>) -> Result<(), ServiceError> {
        if self.content_md5.is_some_and(|declared| &declared != md5) {
            return Err(ServiceError::BadDigest);
        }
        if let Some(expected) = &self.expected_checksum {
            if checksum.is_none_or(|c| c.value_b64 != expected.value_b64) {
                return Err(ServiceError::ChecksumMismatch(format!(
                    "The {} you specified did not match the calculated checksum.",
                    expected.algorithm.as_str()
                )));
            }
        }
        Ok(())
    }
}

/// The bytes of a body, stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenBody {
    pub data: DataRef,
    pub size_bytes: u64,
    pub md5: [u8; 16],
    pub checksum: Option<Checksum>,
}

impl WrittenBody {
    pub fn etag(&self) -> ETag {
        ETag::from_md5(&self.md5)
    }
}

/// A full-object checksum computed on the fly, as S3 returns it (base64 of the big-endian
/// CRC or of the digest).
pub struct ChecksumHasher(Hasher);

enum Hasher {
    Crc32(crc32fast::Hasher),
    Crc32c(crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl ChecksumHasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        ChecksumHasher(match algorithm {
            ChecksumAlgorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => {
                Hasher::Crc32c(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
            }
            ChecksumAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Hasher::Crc32(h) => h.update(data),
            Hasher::Crc32c(h) => h.update(data),
            Hasher::Sha1(h) => Digest::update(h, data),
            Hasher::Sha256(h) => Digest::update(h, data),
        }
    }

    pub fn finish(self) -> Checksum {
        let (algorithm, digest): (ChecksumAlgorithm, Vec<u8>) = match self.0 {
            Hasher::Crc32(h) => (
                ChecksumAlgorithm::Crc32,
                h.finalize().to_be_bytes().to_vec(),
            ),
            Hasher::Crc32c(h) => (
                ChecksumAlgorithm::Crc32c,
                (h.finalize() as u32).to_be_bytes().to_vec(),
            ),
            Hasher::Sha1(h) => (ChecksumAlgorithm::Sha1, h.finalize().to_vec()),
            Hasher::Sha256(h) => (ChecksumAlgorithm::Sha256, h.finalize().to_vec()),
        };
        Checksum {
            algorithm,
            value_b64: base64::engine::general_purpose::STANDARD.encode(digest),
        }
    }
}

/// The checksum of a whole buffer.
pub fn checksum_of(algorithm: ChecksumAlgorithm, data: &[u8]) -> Checksum {
    let mut h = ChecksumHasher::new(algorithm);
    h.update(data);
    h.finish()
}

/// MD5 and the optional checksum of everything fed to it.
struct BodyDigest {
    md5: Md5,
    checksum: Option<ChecksumHasher>,
}

impl BodyDigest {
    fn new(algorithm: Option<ChecksumAlgorithm>) -> Self {
        BodyDigest {
            md5: Md5::new(),
            checksum: algorithm.map(ChecksumHasher::new),
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some(c) = &mut self.checksum {
            c.update(data);
        }
    }

    fn finish(self) -> ([u8; 16], Option<Checksum>) {
        (
            self.md5.finalize().into(),
            self.checksum.map(|c| c.finish()),
        )
    }
}

/// The client's body with its declared length and the size limit enforced.
struct BodyReader {
    body: BodyStream,
    declared: Option<u64>,
    max_bytes: u64,
    read: u64,
    done: bool,
}

impl BodyReader {
    fn new(body: BodyStream, checks: &BodyChecks) -> Self {
        BodyReader {
            body,
            declared: checks.content_length,
            max_bytes: checks.max_bytes,
            read: 0,
            done: false,
        }
    }

    /// The next non-empty chunk, or `None` at a complete end.
    async fn next(&mut self) -> Result<Option<Bytes>, ServiceError> {
        while !self.done {
            match self.body.next().await {
                None => {
                    self.done = true;
                    if self.declared.is_some_and(|d| self.read < d) {
                        return Err(ServiceError::IncompleteBody);
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Err(body_error(e));
                }
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => {
                    self.read += chunk.len() as u64;
                    if self.declared.is_some_and(|d| self.read > d) {
                        self.done = true;
                        return Err(ServiceError::Object(ObjectError::InvalidRequest(
                            "The request body is longer than its declared Content-Length".into(),
                        )));
                    }
                    if self.read > self.max_bytes {
                        self.done = true;
                        return Err(too_large(self.max_bytes));
                    }
                    return Ok(Some(chunk));
                }
            }
        }
        Ok(None)
    }
}

fn too_large(max_bytes: u64) -> ServiceError {
    ServiceError::Object(ObjectError::EntityTooLarge(format!(
        "the largest allowed upload is {max_bytes} bytes"
    )))
}

/// A body that failed: our own read path's errors (a copy's source) keep their meaning,
/// a cut connection is an incomplete body, anything else is the edge's to explain.
fn body_error(e: std::io::Error) -> ServiceError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return ServiceError::IncompleteBody;
    }
    if e.get_ref().is_some_and(|inner| inner.is::<ServiceError>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(service) = inner.downcast::<ServiceError>() {
                return *service;
            }
        }
        return ServiceError::Internal("a body error lost its cause".into());
    }
    ServiceError::Body(e)
}

fn internal(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("{what}: {e}"))
}

/// Store `body`: inline when it is at most `inline_max_bytes` (`None`: never inline),
/// else erasure coded onto `plan`'s nodes.
pub async fn write_body(
    io: &dyn ShardIo,
    plan: &ShardPlan,
    inline_max_bytes: Option<usize>,
    body: BodyStream,
    checks: &BodyChecks,
    tuning: &WriteTuning,
) -> Result<WrittenBody, ServiceError> {
    let algorithm = checks.algorithm()?;
    if checks
        .content_length
        .is_some_and(|len| len > checks.max_bytes)
    {
        return Err(too_large(checks.max_bytes));
    }
    let mut reader = BodyReader::new(body, checks);
    let mut digest = BodyDigest::new(algorithm);
    let mut head = Vec::new();
    if let Some(max) = inline_max_bytes {
        let may_fit = checks.content_length.is_none_or(|len| len <= max as u64);
        let mut held = 0usize;
        while may_fit && held <= max {
            match reader.next().await? {
                Some(chunk) => {
                    held += chunk.len();
                    head.push(chunk);
                }
                None => {
                    let mut data = Vec::with_capacity(held);
                    for chunk in &head {
                        data.extend_from_slice(chunk);
                    }
                    digest.update(&data);
                    let (md5, checksum) = digest.finish();
                    checks.verify(&md5, checksum.as_ref())?;
                    return Ok(WrittenBody {
                        data: DataRef::Inline(data),
                        size_bytes: held as u64,
                        md5,
                        checksum,
                    });
                }
            }
        }
    }
    write_erasure(io, plan, reader, head, digest, checks, tuning).await
}

/// One shard's end of the write: the channel its writer drains, and whether the write
/// finished properly (only then does the piece stream end cleanly).
struct ShardSink {
    tx: Option<mpsc::Sender<Bytes>>,
    sealed: Arc<AtomicBool>,
    dropped: Option<String>,
}

impl ShardSink {
    fn drop_shard(&mut self, why: &str) {
        // Without the seal, the writer's stream ends in an error: the shard is discarded.
        self.tx = None;
        self.dropped.get_or_insert_with(|| why.to_string());
    }

    fn seal(&mut self) -> bool {
        match self.tx.take() {
            Some(tx) => {
                self.sealed.store(true, Ordering::Release);
                drop(tx);
                true
            }
            None => false,
        }
    }
}

/// The pieces a shard writer receives: what is queued, then a clean end if the sink was
/// sealed, or an error (the write is abandoned) if it was dropped.
fn piece_stream(rx: mpsc::Receiver<Bytes>, sealed: Arc<AtomicBool>) -> PieceStream {
    stream::unfold(Some(rx), move |state| {
        let sealed = sealed.clone();
        async move {
            let mut rx = state?;
            match rx.recv().await {
                Some(piece) => Some((Ok(piece), Some(rx))),
                None if sealed.load(Ordering::Acquire) => None,
                None => Some((
                    Err(ShardIoError::Aborted(
                        "the object write was abandoned".into(),
                    )),
                    None,
                )),
            }
        }
    })
    .boxed()
}

/// The encoder and the digests travel together to a blocking thread, a stripe at a time.
struct StripeCoder {
    encoder: Encoder,
    digest: BodyDigest,
}

impl StripeCoder {
    fn code(
        mut self,
        chunks: Vec<Bytes>,
    ) -> (
        Self,
        Result<Vec<EncodedStripe>, super::erasure::ErasureError>,
    ) {
        let mut out = Vec::new();
        for chunk in &chunks {
            self.digest.update(chunk);
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                match self.encoder.push(&mut rest) {
                    Ok(Some(stripe)) => out.push(stripe),
                    Ok(None) => {}
                    Err(e) => return (self, Err(e)),
                }
            }
        }
        (self, Ok(out))
    }
}

/// What feeding the body produced.
struct Fed {
    stripes: u64,
    size_bytes: u64,
    md5: [u8; 16],
    checksum: Option<Checksum>,
}

async fn write_erasure(
    io: &dyn ShardIo,
    plan: &ShardPlan,
    mut reader: BodyReader,
    head: Vec<Bytes>,
    digest: BodyDigest,
    checks: &BodyChecks,
    tuning: &WriteTuning,
) -> Result<WrittenBody, ServiceError> {
    let layout = plan.layout;
    let total = usize::from(layout.total_shards());
    let needed = (usize::from(layout.data_shards) + 1).min(total);
    if plan.nodes.len() != total {
        return Err(ServiceError::Internal(format!(
            "a plan of {} nodes for {total} shards",
            plan.nodes.len()
        )));
    }
    let encoder = Encoder::new(layout).map_err(|e| internal("erasure layout", e))?;
    let format = layout.shard_format();

    let mut sinks = Vec::with_capacity(total);
    let mut puts = FuturesUnordered::new();
    for (index, &node) in plan.nodes.iter().enumerate() {
        let (tx, rx) = mpsc::channel(tuning.queue_pieces.max(1));
        let sealed = Arc::new(AtomicBool::new(false));
        let put = io.put_shard(
            node,
            ShardId::new(plan.blob, index as u8),
            format,
            piece_stream(rx, sealed.clone()),
        );
        puts.push(async move { (index, put.await) });
        sinks.push(ShardSink {
            tx: Some(tx),
            sealed,
            dropped: None,
        });
    }
    let mut results: Vec<Option<Result<ShardStat, ShardIoError>>> =
        (0..total).map(|_| None).collect();

    // Feed the body while the shard writers run; a writer that fails drops its receiver,
    // which the feeder notices on its next send.
    let fed = {
        let feeding = feed(
            &mut reader,
            head,
            StripeCoder { encoder, digest },
            layout,
            &mut sinks,
            needed,
            checks,
            tuning,
        );
        tokio::pin!(feeding);
        loop {
            tokio::select! {
                fed = &mut feeding => break fed,
                Some((index, result)) = puts.next(), if !puts.is_empty() => {
                    results[index] = Some(result);
                }
            }
        }
    };
    let fed = match fed {
        Ok(fed) => fed,
        Err(e) => {
            // Unsealed sinks make every writer still running fail; dropping them cancels
            // the rest. Nothing was finished, so nothing is left behind.
            let reasons = failure_summary(&sinks, &results);
            drop(sinks);
            drop(puts);
            return Err(match e {
                ServiceError::Unavailable(what) => {
                    ServiceError::Unavailable(format!("{what} ({reasons})"))
                }
                other => other,
            });
        }
    };

    let sealed: Vec<bool> = sinks.iter_mut().map(ShardSink::seal).collect();
    let deadline = tokio::time::Instant::now() + tuning.finish_timeout;
    while !puts.is_empty() {
        match tokio::time::timeout_at(deadline, puts.next()).await {
            Ok(Some((index, result))) => results[index] = Some(result),
            Ok(None) => break,
            Err(_) => {
                for (index, sink) in sinks.iter_mut().enumerate() {
                    if results[index].is_none() {
                        sink.dropped
                            .get_or_insert_with(|| "not durable before the deadline".into());
                    }
                }
                break;
            }
        }
    }
    drop(puts);

    let durable: Vec<bool> = (0..total)
        .map(|i| sealed[i] && matches!(&results[i], Some(Ok(stat)) if stat.blocks == fed.stripes))
        .collect();
    let durable_count = durable.iter().filter(|d| **d).count();
    if durable_count < needed {
        let reasons = failure_summary(&sinks, &results);
        gc::collect(
            io,
            &[ErasureRef {
                blob: plan.blob,
                layout: layout.into(),
                shard_nodes: plan.nodes.clone(),
                missing: Vec::new(),
            }],
            "failed write",
        )
        .await;
        return Err(ServiceError::Unavailable(format!(
            "only {durable_count} of {total} shards became durable, {needed} are needed ({reasons})"
        )));
    }
    let missing: Vec<u8> = (0..total)
        .filter(|i| !durable[*i])
        .map(|i| i as u8)
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            blob = %format!("{:032x}", plan.blob),
            ?missing,
            "object written with missing shards, left for repair ({})",
            failure_summary(&sinks, &results)
        );
    }
    Ok(WrittenBody {
        data: DataRef::Erasure(ErasureRef {
            blob: plan.blob,
            layout: layout.into(),
            shard_nodes: plan.nodes.clone(),
            missing,
        }),
        size_bytes: fed.size_bytes,
        md5: fed.md5,
        checksum: fed.checksum,
    })
}

/// Why shards were dropped, for logs and errors.
fn failure_summary(
    sinks: &[ShardSink],
    results: &[Option<Result<ShardStat, ShardIoError>>],
) -> String {
    let mut parts = Vec::new();
    for (index, sink) in sinks.iter().enumerate() {
        match (&results[index], &sink.dropped) {
            (Some(Err(e)), _) => parts.push(format!("shard {index}: {e}")),
            (_, Some(why)) => parts.push(format!("shard {index}: {why}")),
            _ => {}
        }
    }
    if parts.is_empty() {
        "no shard failed".into()
    } else {
        parts.join("; ")
    }
}

/// Read the body a stripe at a time, code it and hand each piece to its shard; check the
/// body against what the client declared before returning.
#[allow(clippy::too_many_arguments)]
async fn feed(
    reader: &mut BodyReader,
    head: Vec<Bytes>,
    mut coder: StripeCoder,
    layout: ErasureLayout,
    sinks: &mut [ShardSink],
    needed: usize,
    checks: &BodyChecks,
    tuning: &WriteTuning,
) -> Result<Fed, ServiceError> {
    let stripe_bytes = layout.stripe_bytes as usize;
    let mut pending: VecDeque<Bytes> = head.into();
    let mut stripes = 0u64;
    let mut ended = false;
    while !ended {
        // One stripe's worth of body (less at the end), split off bigger chunks.
        let mut batch = Vec::new();
        let mut batch_len = 0usize;
        while batch_len < stripe_bytes {
            let mut chunk = match pending.pop_front() {
                Some(chunk) => chunk,
                None => match reader.next().await? {
                    Some(chunk) => chunk,
                    None => {
                        ended = true;
                        break;
                    }
                },
            };
            let room = stripe_bytes - batch_len;
            if chunk.len() > room {
                pending.push_front(chunk.split_off(room));
            }
            batch_len += chunk.len();
            batch.push(chunk);
        }
        if batch.is_empty() {
            break;
        }
        let (back, coded) = tokio::task::spawn_blocking(move || coder.code(batch))
            .await
            .map_err(|e| internal("stripe coding task", e))?;
        coder = back;
        for stripe in coded.map_err(|e| internal("erasure coding", e))? {
            send_stripe(sinks, stripe, needed, tuning).await?;
            stripes += 1;
        }
    }
    let StripeCoder { encoder, digest } = coder;
    if let Some(last) = encoder
        .finish()
        .map_err(|e| internal("erasure coding", e))?
    {
        send_stripe(sinks, last, needed, tuning).await?;
        stripes += 1;
    }
    let (md5, checksum) = digest.finish();
    checks.verify(&md5, checksum.as_ref())?;
    Ok(Fed {
        stripes,
        size_bytes: reader.read,
        md5,
        checksum,
    })
}

/// Give every live shard its piece of `stripe`, concurrently; drop shards that are gone
/// or stalled. Fails when fewer than `needed` shards are left.
async fn send_stripe(
    sinks: &mut [ShardSink],
    stripe: EncodedStripe,
    needed: usize,
    tuning: &WriteTuning,
) -> Result<(), ServiceError> {
    let stall = tuning.stall_timeout;
    let sends = sinks
        .iter_mut()
        .zip(stripe.pieces)
        .map(|(sink, piece)| async move {
            let sent = match &sink.tx {
                None => return,
                Some(tx) => tokio::time::timeout(stall, tx.send(piece)).await,
            };
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(_)) => sink.drop_shard("the shard write failed"),
                Err(_) => sink.drop_shard("the shard write stalled"),
            }
        });
    futures::future::join_all(sends).await;
    let alive = sinks.iter().filter(|s| s.tx.is_some()).count();
    if alive < needed {
        return Err(ServiceError::Unavailable(format!(
            "only {alive} of {} shard writes are alive, {needed} are needed",
            sinks.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use futures::future::BoxFuture;

    use super::*;
    use crate::cluster::directory::NodeId;
    use crate::object::shard_io::{BlockStream, LocalShardIo};
    use crate::store::chunks::{ChunkStore, MemChunkStore, ShardFormat};

    pub fn six_nodes() -> (Arc<LocalShardIo>, Vec<MemChunkStore>) {
        let stores: Vec<MemChunkStore> = (0..6).map(|_| MemChunkStore::new()).collect();
        let io = LocalShardIo::new(
            stores
                .iter()
                .enumerate()
                .map(|(i, s)| (i as NodeId + 1, Arc::new(s.clone()) as Arc<dyn ChunkStore>))
                .collect::<HashMap<_, _>>(),
        );
        (Arc::new(io), stores)
    }

    pub fn plan(layout: ErasureLayout, blob: u128) -> ShardPlan {
        ShardPlan {
            blob,
            layout,
            nodes: (1..=6).collect(),
        }
    }

    pub fn object(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 7919) as u8).collect()
    }

    /// A body delivered in uneven chunks, as from a network.
    pub fn body(data: &[u8]) -> BodyStream {
        let chunks: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(40_009)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        stream::iter(chunks).boxed()
    }

    pub fn shard_count(stores: &[MemChunkStore]) -> usize {
        stores
            .iter()
            .map(|s| s.list(None, 1000).unwrap().len())
            .sum()
    }

    fn md5_hex(md5: &[u8; 16]) -> String {
        ETag::from_md5(md5).as_str().to_string()
    }

    #[test]
    fn checksums_match_known_vectors() {
        // Computed independently (Python's zlib/hashlib and a bitwise CRC32C).
        let cases = [
            (ChecksumAlgorithm::Crc32, "hello", "NhCmhg=="),
            (ChecksumAlgorithm::Crc32c, "hello", "mnG7TA=="),
            (
                ChecksumAlgorithm::Sha1,
                "hello",
                "qvTGHdzF6KLavt4PO0gs2a6pQ00=",
            ),
            (
                ChecksumAlgorithm::Sha256,
                "hello",
                "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
            ),
            (ChecksumAlgorithm::Crc32, "", "AAAAAA=="),
            (ChecksumAlgorithm::Crc32c, "123456789", "4waSgw=="),
            (
                ChecksumAlgorithm::Sha256,
                "",
                "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            ),
        ];
        for (algorithm, input, expected) in cases {
            let got = checksum_of(algorithm, input.as_bytes());
            assert_eq!(got.value_b64, expected, "{algorithm:?} of {input:?}");
            assert!(got.validate().is_ok());
            // Fed in pieces, the same value.
            let mut h = ChecksumHasher::new(algorithm);
            for b in input.as_bytes() {
                h.update(std::slice::from_ref(b));
            }
            assert_eq!(h.finish(), got);
        }
    }

    #[tokio::test]
    async fn small_bodies_go_inline_with_their_digests() {
        let (io, stores) = six_nodes();
        let p = plan(ErasureLayout::STANDARD, 1);
        let checks = BodyChecks {
            checksum_algorithm: Some(ChecksumAlgorithm::Crc32),
            ..BodyChecks::length(None)
        };
        let empty = write_body(
            &*io,
            &p,
            Some(16),
            body(b""),
            &checks,
            &WriteTuning::default(),
        )
        .await
        .unwrap();
        assert_eq!(empty.data, DataRef::Inline(vec![]));
        assert_eq!(md5_hex(&empty.md5), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(empty.checksum.unwrap().value_b64, "AAAAAA==");
        let hello = write_body(
            &*io,
            &p,
            Some(16),
            body(b"hello"),
            &checks,
            &WriteTuning::default(),
        )
        .await
        .unwrap();
        assert_eq!(hello.data, DataRef::Inline(b"hello".to_vec()));
        assert_eq!(md5_hex(&hello.md5), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(hello.checksum.unwrap().value_b64, "NhCmhg==");
        assert_eq!(hello.size_bytes, 5);
        // Exactly the limit is inline; one more byte is not, with or without a length.
        let data = object(17);
        let at_limit = write_body(
            &*io,
            &p,
            Some(16),
            body(&data[..16]),
            &BodyChecks::length(None),
            &WriteTuning::default(),
        )
        .await
        .unwrap();
        assert!(matches!(at_limit.data, DataRef::Inline(ref d) if d.len() == 16));
        assert_eq!(shard_count(&stores), 0);
        for declared in [None, Some(17)] {
            let over = write_body(
                &*io,
                &plan(ErasureLayout::STANDARD, 2 + declared.unwrap_or(0) as u128),
                Some(16),
                body(&data),
                &BodyChecks::length(declared),
                &WriteTuning::default(),
            )
            .await
            .unwrap();
            assert!(matches!(over.data, DataRef::Erasure(ref e) if e.missing.is_empty()));
        }
        assert_eq!(shard_count(&stores), 12);
    }

    #[tokio::test]
    async fn parts_of_any_size_are_erasure_coded() {
        let (io, stores) = six_nodes();
        for (blob, len) in [(1u128, 0usize), (2, 1)] {
            let written = write_body(
                &*io,
                &plan(ErasureLayout::STANDARD, blob),
                None,
                body(&object(len)),
                &BodyChecks::length(Some(len as u64)),
                &WriteTuning::default(),
            )
            .await
            .unwrap();
            assert!(matches!(written.data, DataRef::Erasure(_)));
            assert_eq!(written.size_bytes, len as u64);
        }
        assert_eq!(shard_count(&stores), 12);
    }

    #[tokio::test]
    async fn digests_are_checked_before_anything_becomes_durable() {
        let (io, stores) = six_nodes();
        let data = object(3 * 4096 + 7);
        let layout = ErasureLayout::new(4, 2, 4096).unwrap();
        let run = |checks: BodyChecks, data: Vec<u8>| {
            let io = io.clone();
            async move {
                write_body(
                    &*io,
                    &plan(layout, 5),
                    Some(16),
                    body(&data),
                    &checks,
                    &WriteTuning::default(),
                )
                .await
            }
        };
        let bad_md5 = BodyChecks {
            content_md5: Some([0; 16]),
            ..BodyChecks::length(None)
        };
        assert!(matches!(
            run(bad_md5, data.clone()).await,
            Err(ServiceError::BadDigest)
        ));
        let bad_sum = BodyChecks {
            expected_checksum: Some(checksum_of(ChecksumAlgorithm::Sha256, b"other")),
            ..BodyChecks::length(None)
        };
        match run(bad_sum, data.clone()).await {
            Err(ServiceError::ChecksumMismatch(m)) => assert!(m.contains("SHA256"), "{m}"),
            other => panic!("{other:?}"),
        }
        let short = BodyChecks::length(Some(data.len() as u64 + 1));
        assert!(matches!(
            run(short, data.clone()).await,
            Err(ServiceError::IncompleteBody)
        ));
        let long = BodyChecks::length(Some(data.len() as u64 - 1));
        assert!(matches!(
            run(long, data.clone()).await,
            Err(ServiceError::Object(ObjectError::InvalidRequest(_)))
        ));
        let too_big = BodyChecks {
            max_bytes: 100,
            ..BodyChecks::length(None)
        };
        assert!(matches!(
            run(too_big, data.clone()).await,
            Err(ServiceError::Object(ObjectError::EntityTooLarge(_)))
        ));
        let conflicting = BodyChecks {
            expected_checksum: Some(checksum_of(ChecksumAlgorithm::Sha256, &data)),
            checksum_algorithm: Some(ChecksumAlgorithm::Crc32),
            ..BodyChecks::length(None)
        };
        assert!(matches!(
            run(conflicting, data.clone()).await,
            Err(ServiceError::Object(ObjectError::InvalidRequest(_)))
        ));
        // Nothing of the refused bodies is left on any node.
        assert_eq!(shard_count(&stores), 0);

        // The right digests pass, and the checksum is stored.
        let mut md5 = Md5::new();
        md5.update(&data);
        let good = BodyChecks {
            content_md5: Some(md5.finalize().into()),
            expected_checksum: Some(checksum_of(ChecksumAlgorithm::Crc32c, &data)),
            ..BodyChecks::length(Some(data.len() as u64))
        };
        let written = run(good.clone(), data.clone()).await.unwrap();
        assert_eq!(Some(written.md5), good.content_md5);
        assert_eq!(written.checksum, good.expected_checksum);
        assert_eq!(shard_count(&stores), 6);
    }

    #[tokio::test]
    async fn a_body_error_abandons_the_write() {
        let (io, stores) = six_nodes();
        let layout = ErasureLayout::new(4, 2, 4096).unwrap();
        let items: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(object(10_000))),
            Err(std::io::Error::other("signature mismatch")),
        ];
        let err = write_body(
            &*io,
            &plan(layout, 8),
            Some(16),
            stream::iter(items).boxed(),
            &BodyChecks::length(None),
            &WriteTuning::default(),
        )
        .await
        .unwrap_err();
        match err {
            ServiceError::Body(e) => assert_eq!(e.to_string(), "signature mismatch"),
            other => panic!("{other:?}"),
        }
        let cut: Vec<Result<Bytes, std::io::Error>> =
            vec![Err(std::io::ErrorKind::UnexpectedEof.into())];
        assert!(matches!(
            write_body(
                &*io,
                &plan(layout, 9),
                Some(16),
                stream::iter(cut).boxed(),
                &BodyChecks::length(None),
                &WriteTuning::default(),
            )
            .await,
            Err(ServiceError::IncompleteBody)
        ));
        assert_eq!(shard_count(&stores), 0);
    }

    #[tokio::test]
    async fn a_node_down_costs_one_shard_and_three_fail_the_write() {
        let (io, stores) = six_nodes();
        let layout = ErasureLayout::new(4, 2, 4096).unwrap();
        let data = object(5 * 4096 + 3);
        io.set_down(3, true);
        let written = write_body(
            &*io,
            &plan(layout, 11),
            None,
            body(&data),
            &BodyChecks::length(None),
            &WriteTuning::default(),
        )
        .await
        .unwrap();
        match &written.data {
            DataRef::Erasure(e) => assert_eq!(e.missing, vec![2]),
            other => panic!("{other:?}"),
        }
        assert_eq!(shard_count(&stores), 5);

        io.set_down(5, true);
        io.set_down(6, true);
        match write_body(
            &*io,
            &plan(layout, 12),
            None,
            body(&data),
            &BodyChecks::length(None),
            &WriteTuning::default(),
        )
        .await
        {
            Err(ServiceError::Unavailable(m)) => assert!(m.contains("marked down"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Only the first object's five shards exist.
        assert_eq!(shard_count(&stores), 5);
    }

    /// Shard I/O whose writes to some nodes fail after a number of pieces.
    pub struct FlakyWrites {
        pub inner: Arc<LocalShardIo>,
        pub fail_after: HashMap<NodeId, usize>,
    }

    impl ShardIo for FlakyWrites {
        fn put_shard(
            &self,
            node: NodeId,
            id: ShardId,
            format: ShardFormat,
            mut pieces: PieceStream,
        ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
            let Some(&limit) = self.fail_after.get(&node) else {
                return self.inner.put_shard(node, id, format, pieces);
            };
            Box::pin(async move {
                for _ in 0..limit {
                    pieces.next().await;
                }
                Err(ShardIoError::Unavailable {
                    node,
                    detail: "connection reset".into(),
                })
            })
        }

        fn read_blocks(
            &self,
            node: NodeId,
            id: ShardId,
            first: u64,
            count: Option<u64>,
        ) -> BoxFuture<'_, Result<BlockStream, ShardIoError>> {
            self.inner.read_blocks(node, id, first, count)
        }

        fn stat_shard(
            &self,
            node: NodeId,
            id: ShardId,
        ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
            self.inner.stat_shard(node, id)
        }

        fn delete_shard(
            &self,
            node: NodeId,
            id: ShardId,
        ) -> BoxFuture<'_, Result<bool, ShardIoError>> {
            self.inner.delete_shard(node, id)
        }
    }

    #[tokio::test]
    async fn a_node_failing_mid_write_is_recorded_missing() {
        let (local, stores) = six_nodes();
        let io = FlakyWrites {
            inner: local,
            fail_after: HashMap::from([(1, 2)]),
        };
        let layout = ErasureLayout::new(4, 2, 4096).unwrap();
        let written = write_body(
            &io,
            &plan(layout, 21),
            None,
            body(&object(10 * 4096)),
            &BodyChecks::length(None),
            &WriteTuning::default(),
        )
        .await
        .unwrap();
        match &written.data {
            DataRef::Erasure(e) => assert_eq!(e.missing, vec![0]),
            other => panic!("{other:?}"),
        }
        assert!(stores[0].list(None, 10).unwrap().is_empty());
        assert_eq!(shard_count(&stores), 5);
    }

    /// Shard I/O where writes to some nodes hang without ever taking a piece.
    struct Hung {
        inner: Arc<LocalShardIo>,
        hung: Vec<NodeId>,
    }

    impl ShardIo for Hung {
        fn put_shard(
            &self,
            node: NodeId,
            id: ShardId,
            format: ShardFormat,
            pieces: PieceStream,
        ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
            if !self.hung.contains(&node) {
                return self.inner.put_shard(node, id, format, pieces);
            }
            Box::pin(async move {
                let _held = pieces;
                futures::future::pending().await
            })
        }

        fn read_blocks(
            &self,
            node: NodeId,
            id: ShardId,
            first: u64,
            count: Option<u64>,
        ) -> BoxFuture<'_, Result<BlockStream, ShardIoError>> {
            self.inner.read_blocks(node, id, first, count)
        }

        fn stat_shard(
            &self,
            node: NodeId,
            id: ShardId,
        ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
            self.inner.stat_shard(node, id)
        }

        fn delete_shard(
            &self,
            node: NodeId,
            id: ShardId,
        ) -> BoxFuture<'_, Result<bool, ShardIoError>> {
            self.inner.delete_shard(node, id)
        }
    }

    fn quick() -> WriteTuning {
        WriteTuning {
            queue_pieces: 2,
            stall_timeout: Duration::from_millis(50),
            finish_timeout: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn stalled_shards_bound_memory_and_are_dropped() {
        let layout = ErasureLayout::new(4, 2, 64 * 1024).unwrap();
        let stripe = layout.stripe_bytes as u64;

        // Every node hangs: the body is read only a few stripes ahead, then the write
        // gives up instead of buffering an endless body.
        let (local, stores) = six_nodes();
        let all_hung = Hung {
            inner: local.clone(),
            hung: (1..=6).collect(),
        };
        let pulled = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = pulled.clone();
        let endless = stream::iter(0u64..)
            .map(move |_| {
                counter.fetch_add(16 * 1024, Ordering::Relaxed);
                Ok(Bytes::from(vec![1u8; 16 * 1024]))
            })
            .boxed();
        let err = write_body(
            &all_hung,
            &plan(layout, 31),
            None,
            endless,
            &BodyChecks::length(None),
            &quick(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, ServiceError::Unavailable(ref m) if m.contains("stalled")),
            "{err}"
        );
        let read = pulled.load(Ordering::Relaxed);
        assert!(
            read <= 4 * stripe,
            "read {read} bytes of body for a stalled write"
        );

        // One node hangs: it is dropped and recorded missing, the rest is durable.
        let one_hung = Hung {
            inner: local,
            hung: vec![2],
        };
        let data = object(20 * stripe as usize + 5);
        let written = write_body(
            &one_hung,
            &plan(layout, 32),
            None,
            body(&data),
            &BodyChecks::length(None),
            &quick(),
        )
        .await
        .unwrap();
        match &written.data {
            DataRef::Erasure(e) => assert_eq!(e.missing, vec![1]),
            other => panic!("{other:?}"),
        }
        assert_eq!(shard_count(&stores), 5);
    }
}
