//! Reading and writing shards on other nodes: the `ShardIo` seam between the object
//! service and the network (ARCHITECTURE.md §4).
//!
//! - [`GrpcShardIo`] streams shards to and from each node's `stratus.chunk.Chunks` gRPC
//!   service (served by `api::grpc_chunk`). Shard traffic has its own lazily connected
//!   channel per node, separate from the Raft transport's, so bulk data never queues
//!   heartbeats behind it on one HTTP/2 connection.
//! - [`LocalShardIo`] calls chunk stores in this process directly: many "nodes" in one
//!   test, with nodes that can be marked down.
//!
//! Guarantees: `put_shard` returns only once the shard is durable on that node; a piece
//! stream that yields an error, or a put future that is dropped, leaves no shard behind.
//! `read_blocks` yields only verified bytes: a block whose stored CRC fails comes back as
//! [`ShardIoError::Corrupt`], and over gRPC every block's CRC is checked again on arrival.
//!
//! The trait returns boxed futures (no `async_trait` macro, no extra dependency) so it
//! stays object-safe: the object service holds an `Arc<dyn ShardIo>`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use stratus_proto::chunk as wire;
use stratus_proto::chunk::chunks_client::ChunksClient;
use tonic::transport::{Channel, Endpoint};

use crate::cluster::directory::NodeId;
use crate::store::chunks::{
    ChunkError, ChunkStore, ShardFormat, ShardId, ShardReader, ShardStat, ShardWriter,
    MAX_PIECE_BYTES,
};

/// Largest gRPC message of the chunk protocol: one piece and its framing.
pub const MAX_CHUNK_MESSAGE_BYTES: usize = MAX_PIECE_BYTES as usize + 64 * 1024;

/// Pieces to write, in stripe order. An `Err` item aborts the write.
pub type PieceStream = BoxStream<'static, Result<Bytes, ShardIoError>>;

/// Verified block pieces, in block order.
pub type BlockStream = BoxStream<'static, Result<Bytes, ShardIoError>>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ShardIoError {
    #[error("node {node} has no shard {id}")]
    NotFound { node: NodeId, id: ShardId },
    /// The node's copy is bad (or arrived damaged): rebuild from other shards.
    #[error("node {node}: shard {id} is corrupt: {detail}")]
    Corrupt {
        node: NodeId,
        id: ShardId,
        detail: String,
    },
    #[error("node {0} is not a member of this cluster")]
    UnknownNode(NodeId),
    /// The node could not be reached or did not answer: try another shard.
    #[error("node {node} is unavailable: {detail}")]
    Unavailable { node: NodeId, detail: String },
    /// The request was refused as malformed; retrying will not help.
    #[error("node {node} refused the request: {detail}")]
    Invalid { node: NodeId, detail: String },
    /// The caller's piece stream failed; nothing was written.
    #[error("shard write aborted: {0}")]
    Aborted(String),
    #[error("node {node}: {detail}")]
    Failed { node: NodeId, detail: String },
}

pub trait ShardIo: Send + Sync {
    /// Write shard `id` on `node` from `pieces`; resolves once it is durable there.
    fn put_shard(
        &self,
        node: NodeId,
        id: ShardId,
        format: ShardFormat,
        pieces: PieceStream,
    ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>>;

    /// Stream blocks `first..first + count` of shard `id` on `node` (`count: None`: through
    /// the last block). A range past the shard's end is refused before any block is sent.
    fn read_blocks(
        &self,
        node: NodeId,
        id: ShardId,
        first: u64,
        count: Option<u64>,
    ) -> BoxFuture<'_, Result<BlockStream, ShardIoError>>;

    fn stat_shard(
        &self,
        node: NodeId,
        id: ShardId,
    ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>>;

    /// Remove a shard; resolves to whether it existed.
    fn delete_shard(&self, node: NodeId, id: ShardId) -> BoxFuture<'_, Result<bool, ShardIoError>>;
}

/// The blocks a read of `first`/`count` covers in a shard of `blocks`, or why it is invalid.
pub fn block_range(blocks: u64, first: u64, count: Option<u64>) -> Result<Range<u64>, String> {
    let end = match count {
        None => blocks.max(first),
        Some(n) => first
            .checked_add(n)
            .ok_or_else(|| format!("block range {first}+{n} overflows"))?,
    };
    if end > blocks {
        return Err(format!(
            "blocks {first}..{end} requested, the shard has {blocks}"
        ));
    }
    Ok(first..end)
}

/// Map a chunk store error on `node` into the shard I/O vocabulary.
pub fn from_chunk_error(node: NodeId, e: ChunkError) -> ShardIoError {
    match e {
        ChunkError::NotFound(id) => ShardIoError::NotFound { node, id },
        ChunkError::Corrupt { id, .. } => ShardIoError::Corrupt {
            node,
            id,
            detail: e.to_string(),
        },
        ChunkError::BlockOutOfRange { .. } | ChunkError::Invalid { .. } => ShardIoError::Invalid {
            node,
            detail: e.to_string(),
        },
        ChunkError::UnsupportedVersion { .. } | ChunkError::Io { .. } => ShardIoError::Failed {
            node,
            detail: e.to_string(),
        },
    }
}

async fn blocking<T, F>(node: NodeId, f: F) -> Result<T, ShardIoError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ChunkError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ShardIoError::Failed {
            node,
            detail: format!("chunk store task failed: {e}"),
        })?
        .map_err(|e| from_chunk_error(node, e))
}

/// Drop an unfinished writer off the async threads (it removes its temporary file).
fn abandon(writer: Box<dyn ShardWriter>) {
    tokio::task::spawn_blocking(move || drop(writer));
}

/// Write `pieces` into a chunk store, off the async threads.
pub async fn write_shard(
    store: Arc<dyn ChunkStore>,
    node: NodeId,
    id: ShardId,
    format: ShardFormat,
    mut pieces: PieceStream,
) -> Result<ShardStat, ShardIoError> {
    let mut writer = blocking(node, move || store.create(id, format)).await?;
    while let Some(piece) = pieces.next().await {
        let piece = match piece {
            Ok(piece) => piece,
            Err(e) => {
                abandon(writer);
                return Err(ShardIoError::Aborted(e.to_string()));
            }
        };
        writer = blocking(node, move || {
            writer.append(&piece)?;
            Ok(writer)
        })
        .await?;
    }
    blocking(node, move || writer.finish()).await
}

/// Open a shard in a chunk store and stream the verified blocks of a range.
pub async fn read_shard_blocks(
    store: Arc<dyn ChunkStore>,
    node: NodeId,
    id: ShardId,
    first: u64,
    count: Option<u64>,
) -> Result<BlockStream, ShardIoError> {
    let reader = blocking(node, move || store.open(id)).await?;
    let range = block_range(reader.stat().blocks, first, count)
        .map_err(|detail| ShardIoError::Invalid { node, detail })?;
    let state: (Option<Box<dyn ShardReader>>, Range<u64>) = (Some(reader), range);
    Ok(
        stream::unfold(state, move |(reader, mut range)| async move {
            let mut reader = reader?;
            let index = range.next()?;
            let read = tokio::task::spawn_blocking(move || {
                let block = reader.read_block(index);
                (reader, block)
            })
            .await;
            match read {
                Ok((reader, Ok(piece))) => Some((Ok(piece), (Some(reader), range))),
                Ok((_, Err(e))) => Some((Err(from_chunk_error(node, e)), (None, range))),
                Err(e) => Some((
                    Err(ShardIoError::Failed {
                        node,
                        detail: format!("chunk store task failed: {e}"),
                    }),
                    (None, range),
                )),
            }
        })
        .boxed(),
    )
}

/// Shard I/O against chunk stores in this process, keyed by node id.
#[derive(Default)]
pub struct LocalShardIo {
    nodes: RwLock<HashMap<NodeId, Arc<dyn ChunkStore>>>,
    down: Mutex<HashSet<NodeId>>,
}

impl LocalShardIo {
    pub fn new(nodes: HashMap<NodeId, Arc<dyn ChunkStore>>) -> Self {
        LocalShardIo {
            nodes: RwLock::new(nodes),
            down: Mutex::new(HashSet::new()),
        }
    }

    pub fn add_node(&self, node: NodeId, store: Arc<dyn ChunkStore>) {
        self.nodes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, store);
    }

    /// Make a node unreachable (or reachable again), as if it or its zone were down.
    pub fn set_down(&self, node: NodeId, down: bool) {
        let mut set = self.down_set();
        if down {
            set.insert(node);
        } else {
            set.remove(&node);
        }
    }

    fn down_set(&self) -> MutexGuard<'_, HashSet<NodeId>> {
        self.down.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self, node: NodeId) -> Result<Arc<dyn ChunkStore>, ShardIoError> {
        if self.down_set().contains(&node) {
            return Err(ShardIoError::Unavailable {
                node,
                detail: "marked down".into(),
            });
        }
        self.nodes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .cloned()
            .ok_or(ShardIoError::UnknownNode(node))
    }
}

impl ShardIo for LocalShardIo {
    fn put_shard(
        &self,
        node: NodeId,
        id: ShardId,
        format: ShardFormat,
        pieces: PieceStream,
    ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
        Box::pin(async move { write_shard(self.store(node)?, node, id, format, pieces).await })
    }

    fn read_blocks(
        &self,
        node: NodeId,
        id: ShardId,
        first: u64,
        count: Option<u64>,
    ) -> BoxFuture<'_, Result<BlockStream, ShardIoError>> {
        Box::pin(async move { read_shard_blocks(self.store(node)?, node, id, first, count).await })
    }

    fn stat_shard(
        &self,
        node: NodeId,
        id: ShardId,
    ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
        Box::pin(async move {
            let store = self.store(node)?;
            blocking(node, move || store.stat(id)).await
        })
    }

    fn delete_shard(&self, node: NodeId, id: ShardId) -> BoxFuture<'_, Result<bool, ShardIoError>> {
        Box::pin(async move {
            let store = self.store(node)?;
            blocking(node, move || store.delete(id)).await
        })
    }
}

/// Shard I/O over gRPC to each node's `Chunks` service.
pub struct GrpcShardIo {
    cluster: String,
    addrs: HashMap<NodeId, String>,
    channels: Mutex<HashMap<NodeId, Channel>>,
}

impl GrpcShardIo {
    /// `addrs`: each node's gRPC address (`host:port`).
    pub fn new(cluster: String, addrs: HashMap<NodeId, String>) -> Self {
        GrpcShardIo {
            cluster,
            addrs,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, node: NodeId) -> Result<ChunksClient<Channel>, ShardIoError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let channel = match channels.get(&node) {
            Some(ch) => ch.clone(),
            None => {
                let addr = self
                    .addrs
                    .get(&node)
                    .ok_or(ShardIoError::UnknownNode(node))?;
                let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| ShardIoError::Invalid {
                        node,
                        detail: format!("bad address {addr}: {e}"),
                    })?
                    .connect_timeout(Duration::from_millis(500))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(5))
                    .keep_alive_timeout(Duration::from_secs(5));
                let ch = endpoint.connect_lazy();
                channels.insert(node, ch.clone());
                ch
            }
        };
        Ok(ChunksClient::new(channel)
            .max_decoding_message_size(MAX_CHUNK_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_CHUNK_MESSAGE_BYTES))
    }
}

fn shard_to_wire(id: ShardId) -> wire::ShardId {
    wire::ShardId {
        blob: Bytes::copy_from_slice(&id.blob.to_be_bytes()),
        index: u32::from(id.index),
    }
}

fn from_status(node: NodeId, id: ShardId, status: tonic::Status) -> ShardIoError {
    let detail = status.message().to_string();
    match status.code() {
        tonic::Code::NotFound => ShardIoError::NotFound { node, id },
        tonic::Code::DataLoss => ShardIoError::Corrupt { node, id, detail },
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            ShardIoError::Unavailable { node, detail }
        }
        tonic::Code::InvalidArgument
        | tonic::Code::OutOfRange
        | tonic::Code::FailedPrecondition => ShardIoError::Invalid { node, detail },
        code => ShardIoError::Failed {
            node,
            detail: format!("{code:?}: {detail}"),
        },
    }
}

fn stat_from_wire(node: NodeId, reply: wire::StatShardReply) -> Result<ShardStat, ShardIoError> {
    let bad = |detail: &str| ShardIoError::Failed {
        node,
        detail: format!("malformed stat reply: {detail}"),
    };
    let format = reply.format.ok_or_else(|| bad("no format"))?;
    Ok(ShardStat {
        format: ShardFormat {
            data_shards: u8::try_from(format.data_shards).map_err(|_| bad("data_shards"))?,
            parity_shards: u8::try_from(format.parity_shards).map_err(|_| bad("parity_shards"))?,
            piece_bytes: format.piece_bytes,
        },
        blocks: reply.blocks,
        bytes: reply.bytes,
        last_piece_bytes: reply.last_piece_bytes,
    })
}

/// Outgoing PutShard messages: start, a piece per item, then end. An `Err` item is kept
/// in `failure` and ends the stream without `end`, so the receiver discards the shard.
fn put_messages(
    start: wire::PutShardStart,
    pieces: PieceStream,
    failure: Arc<Mutex<Option<ShardIoError>>>,
) -> impl futures::Stream<Item = wire::PutShardChunk> + Send + 'static {
    use wire::put_shard_chunk::Item;
    let first = wire::PutShardChunk {
        item: Some(Item::Start(start)),
    };
    let rest = stream::unfold((Some(pieces), 0u64), move |(pieces, sent)| {
        let failure = failure.clone();
        async move {
            let mut pieces = pieces?;
            let item = match pieces.next().await {
                Some(Ok(data)) => {
                    let crc32 = crc32fast::hash(&data);
                    let msg = Item::Piece(wire::Piece { data, crc32 });
                    return Some((msg, (Some(pieces), sent + 1)));
                }
                Some(Err(e)) => {
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    return None;
                }
                None => Item::End(wire::PutShardEnd { blocks: sent }),
            };
            Some((item, (None, sent)))
        }
    })
    .map(|item| wire::PutShardChunk { item: Some(item) });
    stream::once(async move { first }).chain(rest)
}

impl ShardIo for GrpcShardIo {
    fn put_shard(
        &self,
        node: NodeId,
        id: ShardId,
        format: ShardFormat,
        pieces: PieceStream,
    ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
        Box::pin(async move {
            let mut client = self.client(node)?;
            let start = wire::PutShardStart {
                cluster: self.cluster.clone(),
                shard: Some(shard_to_wire(id)),
                format: Some(wire::ShardFormat {
                    data_shards: u32::from(format.data_shards),
                    parity_shards: u32::from(format.parity_shards),
                    piece_bytes: format.piece_bytes,
                }),
            };
            let failure = Arc::new(Mutex::new(None));
            let outbound = put_messages(start, pieces, failure.clone());
            let reply = client.put_shard(outbound).await;
            if let Some(e) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(ShardIoError::Aborted(e.to_string()));
            }
            let reply = reply.map_err(|s| from_status(node, id, s))?.into_inner();
            let last_piece_bytes = match reply.blocks {
                0 => 0,
                n => {
                    let full = (n - 1).saturating_mul(u64::from(format.piece_bytes));
                    u32::try_from(reply.bytes.saturating_sub(full)).unwrap_or(u32::MAX)
                }
            };
            Ok(ShardStat {
                format,
                blocks: reply.blocks,
                bytes: reply.bytes,
                last_piece_bytes,
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
        Box::pin(async move {
            if count == Some(0) {
                return Ok(stream::empty().boxed());
            }
            let mut client = self.client(node)?;
            let request = wire::GetShardRequest {
                cluster: self.cluster.clone(),
                shard: Some(shard_to_wire(id)),
                first_block: first,
                block_count: count.unwrap_or(0),
            };
            let inbound = client
                .get_shard(request)
                .await
                .map_err(|s| from_status(node, id, s))?
                .into_inner();
            let end = count.and_then(|n| first.checked_add(n));
            let blocks = stream::unfold(Some((inbound, first)), move |state| async move {
                let (mut inbound, next) = state?;
                let failed =
                    |detail: String| Some((Err(ShardIoError::Failed { node, detail }), None));
                match inbound.message().await {
                    Ok(Some(block)) => {
                        if block.index != next || end.is_some_and(|e| next >= e) {
                            return failed(format!(
                                "sent block {} where block {next} was expected",
                                block.index
                            ));
                        }
                        if crc32fast::hash(&block.data) != block.crc32 {
                            return Some((
                                Err(ShardIoError::Corrupt {
                                    node,
                                    id,
                                    detail: format!("block {next} damaged in transit"),
                                }),
                                None,
                            ));
                        }
                        Some((Ok(block.data), Some((inbound, next + 1))))
                    }
                    Ok(None) => match end {
                        Some(e) if next < e => {
                            failed(format!("stream ended at block {next}, before block {e}"))
                        }
                        _ => None,
                    },
                    Err(status) => Some((Err(from_status(node, id, status)), None)),
                }
            });
            Ok(blocks.boxed())
        })
    }

    fn stat_shard(
        &self,
        node: NodeId,
        id: ShardId,
    ) -> BoxFuture<'_, Result<ShardStat, ShardIoError>> {
        Box::pin(async move {
            let mut client = self.client(node)?;
            let reply = client
                .stat_shard(wire::StatShardRequest {
                    cluster: self.cluster.clone(),
                    shard: Some(shard_to_wire(id)),
                })
                .await
                .map_err(|s| from_status(node, id, s))?
                .into_inner();
            stat_from_wire(node, reply)
        })
    }

    fn delete_shard(&self, node: NodeId, id: ShardId) -> BoxFuture<'_, Result<bool, ShardIoError>> {
        Box::pin(async move {
            let mut client = self.client(node)?;
            let reply = client
                .delete_shard(wire::DeleteShardRequest {
                    cluster: self.cluster.clone(),
                    shard: Some(shard_to_wire(id)),
                })
                .await
                .map_err(|s| from_status(node, id, s))?
                .into_inner();
            Ok(reply.existed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::erasure::{Decoder, Encoder, ErasureLayout};
    use crate::store::chunks::MemChunkStore;

    fn pieces(items: Vec<Bytes>) -> PieceStream {
        stream::iter(items.into_iter().map(Ok)).boxed()
    }

    async fn collect(stream: BlockStream) -> Result<Vec<Bytes>, ShardIoError> {
        stream.collect::<Vec<_>>().await.into_iter().collect()
    }

    fn six_nodes() -> (LocalShardIo, Vec<MemChunkStore>) {
        let stores: Vec<MemChunkStore> = (0..6).map(|_| MemChunkStore::new()).collect();
        let io = LocalShardIo::new(
            stores
                .iter()
                .enumerate()
                .map(|(i, s)| (i as NodeId + 1, Arc::new(s.clone()) as Arc<dyn ChunkStore>))
                .collect(),
        );
        (io, stores)
    }

    #[test]
    fn block_ranges() {
        assert_eq!(block_range(5, 0, None), Ok(0..5));
        assert_eq!(block_range(5, 2, Some(3)), Ok(2..5));
        assert_eq!(block_range(5, 5, None), Ok(5..5));
        assert_eq!(block_range(0, 0, None), Ok(0..0));
        assert!(block_range(5, 6, None).is_err());
        assert!(block_range(5, 2, Some(4)).is_err());
        assert!(block_range(5, 2, Some(u64::MAX)).is_err());
    }

    /// An object striped over six in-process nodes, read back with a node down and a
    /// corrupt block on another.
    #[tokio::test]
    async fn object_over_six_local_nodes() {
        let layout = ErasureLayout::new(4, 2, 4096).unwrap();
        let len = 3 * 4096 + 100;
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let mut enc = Encoder::new(layout).unwrap();
        let mut per_shard: Vec<Vec<Bytes>> = vec![Vec::new(); 6];
        let mut rest = &data[..];
        let mut stripes = Vec::new();
        while !rest.is_empty() {
            stripes.extend(enc.push(&mut rest).unwrap());
        }
        stripes.extend(enc.finish().unwrap());
        for s in stripes {
            for (i, p) in s.pieces.into_iter().enumerate() {
                per_shard[i].push(p);
            }
        }

        let (io, stores) = six_nodes();
        let blob = 0x5eed_u128;
        let format = layout.shard_format();
        let puts = per_shard.into_iter().enumerate().map(|(i, ps)| {
            io.put_shard(
                i as NodeId + 1,
                ShardId::new(blob, i as u8),
                format,
                pieces(ps),
            )
        });
        for stat in futures::future::join_all(puts).await {
            let stat = stat.unwrap();
            assert_eq!(stat.blocks, 4);
            assert_eq!(stat.bytes, layout.shard_bytes(len as u64));
        }

        // Node 1 (shard 0) is down, node 4 was down but is back, and shard 4's copy of
        // stripe 2 is corrupt: stripe 2 has exactly k pieces left.
        io.set_down(1, true);
        io.set_down(4, true);
        io.set_down(4, false);
        assert!(stores[4].corrupt_block(ShardId::new(blob, 4), 2));
        assert!(matches!(
            io.stat_shard(1, ShardId::new(blob, 0)).await,
            Err(ShardIoError::Unavailable { node: 1, .. })
        ));

        let dec = Decoder::new(layout).unwrap();
        let mut out = Vec::new();
        for stripe in layout.stripes(len as u64) {
            let mut slots: Vec<Option<Bytes>> = Vec::new();
            for shard in 0..6u8 {
                let node = NodeId::from(shard) + 1;
                let read = match io
                    .read_blocks(node, ShardId::new(blob, shard), stripe.index, Some(1))
                    .await
                {
                    Ok(s) => collect(s).await,
                    Err(e) => Err(e),
                };
                match read {
                    Ok(mut blocks) => slots.push(blocks.pop()),
                    Err(ShardIoError::Corrupt { node: 5, .. }) if stripe.index == 2 => {
                        slots.push(None)
                    }
                    Err(ShardIoError::Unavailable { .. }) => slots.push(None),
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            out.extend_from_slice(&dec.decode(&stripe, &slots).unwrap());
        }
        assert_eq!(out, data);

        assert!(io.delete_shard(2, ShardId::new(blob, 1)).await.unwrap());
        assert!(matches!(
            io.read_blocks(2, ShardId::new(blob, 1), 0, None).await,
            Err(ShardIoError::NotFound { node: 2, .. })
        ));
        assert!(matches!(
            io.stat_shard(9, ShardId::new(blob, 1)).await,
            Err(ShardIoError::UnknownNode(9))
        ));
    }

    #[tokio::test]
    async fn a_failed_piece_stream_writes_nothing() {
        let (io, stores) = six_nodes();
        let id = ShardId::new(1, 0);
        let format = ErasureLayout::new(4, 2, 64).unwrap().shard_format();
        let items = vec![
            Ok(Bytes::from_static(&[1; 16])),
            Err(ShardIoError::Aborted("client went away".into())),
        ];
        let err = io
            .put_shard(1, id, format, stream::iter(items).boxed())
            .await
            .unwrap_err();
        assert!(matches!(err, ShardIoError::Aborted(_)), "{err}");
        assert!(stores[0].list(None, 10).unwrap().is_empty());

        // A piece of the wrong size is refused by the store.
        let err = io
            .put_shard(1, id, format, pieces(vec![Bytes::from_static(&[1; 17])]))
            .await
            .unwrap_err();
        assert!(matches!(err, ShardIoError::Invalid { .. }), "{err}");
        assert!(matches!(
            io.read_blocks(1, id, 0, None).await,
            Err(ShardIoError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn reads_past_the_end_are_refused() {
        let (io, _stores) = six_nodes();
        let id = ShardId::new(2, 0);
        let format = ErasureLayout::new(4, 2, 64).unwrap().shard_format();
        let three = vec![Bytes::from_static(&[1; 16]); 3];
        io.put_shard(1, id, format, pieces(three)).await.unwrap();
        assert_eq!(
            collect(io.read_blocks(1, id, 1, None).await.unwrap())
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(collect(io.read_blocks(1, id, 3, None).await.unwrap())
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            io.read_blocks(1, id, 2, Some(2)).await,
            Err(ShardIoError::Invalid { .. })
        ));
    }
}
