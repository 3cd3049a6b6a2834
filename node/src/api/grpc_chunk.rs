//! gRPC face of this node's chunk store (`stratus.chunk.Chunks`): other nodes write, read,
//! stat and delete shards here (client side: `object::shard_io::GrpcShardIo`).
//!
//! Every request is checked before the store is touched: the cluster name (another
//! cluster's request is FAILED_PRECONDITION), a 16-byte blob id, shard counts that fit a
//! byte, an index inside the layout, a piece size of at most `MAX_PIECE_BYTES` (else
//! INVALID_ARGUMENT). Messages are bounded by `MAX_CHUNK_MESSAGE_BYTES`. A piece whose CRC
//! does not match, or a stored block that fails its CRC, is DATA_LOSS; a missing shard is
//! NOT_FOUND; blocks past the end are OUT_OF_RANGE. Store calls block, so they run on
//! `spawn_blocking`; a read streams through a small channel so at most a few blocks per
//! request are in memory.

use std::sync::Arc;

use bytes::Bytes;
use stratus_proto::chunk::chunks_server::{Chunks, ChunksServer};
use stratus_proto::chunk::put_shard_chunk::Item;
use stratus_proto::chunk::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::object::shard_io::{block_range, MAX_CHUNK_MESSAGE_BYTES};
use crate::store::chunks::{self, ChunkError, ChunkStore, ShardReader, ShardWriter};

/// Blocks read ahead of a slow receiver, per GetShard stream.
const READ_AHEAD_BLOCKS: usize = 2;

pub struct ChunkApi {
    cluster: String,
    store: Arc<dyn ChunkStore>,
}

impl ChunkApi {
    pub fn new(cluster: String, store: Arc<dyn ChunkStore>) -> Self {
        ChunkApi { cluster, store }
    }

    /// The tonic service, with message sizes bounded for shard pieces.
    pub fn into_server(self) -> ChunksServer<ChunkApi> {
        ChunksServer::new(self)
            .max_decoding_message_size(MAX_CHUNK_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_CHUNK_MESSAGE_BYTES)
    }

    fn check_cluster(&self, cluster: &str) -> Result<(), Status> {
        if cluster != self.cluster {
            return Err(Status::failed_precondition(format!(
                "chunk request for cluster '{cluster}' reached a node of cluster '{}'",
                self.cluster
            )));
        }
        Ok(())
    }
}

fn status(e: ChunkError) -> Status {
    match e {
        ChunkError::NotFound(_) => Status::not_found(e.to_string()),
        ChunkError::Corrupt { .. } => Status::data_loss(e.to_string()),
        ChunkError::BlockOutOfRange { .. } => Status::out_of_range(e.to_string()),
        ChunkError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        ChunkError::UnsupportedVersion { .. } => Status::failed_precondition(e.to_string()),
        ChunkError::Io { .. } => Status::internal(e.to_string()),
    }
}

async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ChunkError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("chunk store task failed: {e}")))?
        .map_err(status)
}

fn shard_id(wire: Option<ShardId>) -> Result<chunks::ShardId, Status> {
    let wire = wire.ok_or_else(|| Status::invalid_argument("missing shard id"))?;
    let blob: [u8; 16] = wire.blob.as_ref().try_into().map_err(|_| {
        Status::invalid_argument(format!("blob id must be 16 bytes, got {}", wire.blob.len()))
    })?;
    let index = u8::try_from(wire.index).map_err(|_| {
        Status::invalid_argument(format!("shard index {} is out of range", wire.index))
    })?;
    Ok(chunks::ShardId::new(u128::from_be_bytes(blob), index))
}

fn shard_format(
    id: chunks::ShardId,
    wire: Option<ShardFormat>,
) -> Result<chunks::ShardFormat, Status> {
    let wire = wire.ok_or_else(|| Status::invalid_argument("missing shard format"))?;
    let count = |what: &str, n: u32| {
        u8::try_from(n).map_err(|_| Status::invalid_argument(format!("{what} {n} is out of range")))
    };
    let format = chunks::ShardFormat {
        data_shards: count("data_shards", wire.data_shards)?,
        parity_shards: count("parity_shards", wire.parity_shards)?,
        piece_bytes: wire.piece_bytes,
    };
    format.validate_for(id).map_err(status)?;
    Ok(format)
}

fn format_to_wire(f: chunks::ShardFormat) -> ShardFormat {
    ShardFormat {
        data_shards: u32::from(f.data_shards),
        parity_shards: u32::from(f.parity_shards),
        piece_bytes: f.piece_bytes,
    }
}

/// Drop an unfinished writer off the async threads (it removes its temporary file).
fn abandon(writer: Box<dyn ShardWriter>) {
    tokio::task::spawn_blocking(move || drop(writer));
}

impl ChunkApi {
    /// Receive pieces into `writer` until the end message, then finish it.
    async fn receive(
        mut writer: Box<dyn ShardWriter>,
        inbound: &mut Streaming<PutShardChunk>,
    ) -> Result<PutShardReply, (Option<Box<dyn ShardWriter>>, Status)> {
        let mut blocks = 0u64;
        loop {
            let item = match inbound.message().await {
                Ok(Some(msg)) => msg.item,
                Ok(None) => {
                    let status = Status::aborted(format!(
                        "stream ended after {blocks} pieces without its end message; nothing written"
                    ));
                    return Err((Some(writer), status));
                }
                Err(status) => return Err((Some(writer), status)),
            };
            match item {
                Some(Item::Piece(piece)) => {
                    if crc32fast::hash(&piece.data) != piece.crc32 {
                        let status =
                            Status::data_loss(format!("piece {blocks} failed its CRC in transit"));
                        return Err((Some(writer), status));
                    }
                    let data: Bytes = piece.data;
                    writer = blocking(move || {
                        writer.append(&data)?;
                        Ok(writer)
                    })
                    .await
                    .map_err(|s| (None, s))?;
                    blocks += 1;
                }
                Some(Item::End(end)) => {
                    if end.blocks != blocks {
                        let status = Status::invalid_argument(format!(
                            "end message counts {} pieces, {blocks} arrived",
                            end.blocks
                        ));
                        return Err((Some(writer), status));
                    }
                    let stat = blocking(move || writer.finish())
                        .await
                        .map_err(|s| (None, s))?;
                    return Ok(PutShardReply {
                        blocks: stat.blocks,
                        bytes: stat.bytes,
                    });
                }
                Some(Item::Start(_)) | None => {
                    let status = Status::invalid_argument("expected a piece or the end message");
                    return Err((Some(writer), status));
                }
            }
        }
    }
}

#[tonic::async_trait]
impl Chunks for ChunkApi {
    async fn put_shard(
        &self,
        req: Request<Streaming<PutShardChunk>>,
    ) -> Result<Response<PutShardReply>, Status> {
        let mut inbound = req.into_inner();
        let start = match inbound.message().await? {
            Some(PutShardChunk {
                item: Some(Item::Start(start)),
            }) => start,
            Some(_) => return Err(Status::invalid_argument("the first message must be start")),
            None => return Err(Status::invalid_argument("empty PutShard stream")),
        };
        self.check_cluster(&start.cluster)?;
        let id = shard_id(start.shard)?;
        let format = shard_format(id, start.format)?;
        let store = self.store.clone();
        let writer = blocking(move || store.create(id, format)).await?;
        match Self::receive(writer, &mut inbound).await {
            Ok(reply) => Ok(Response::new(reply)),
            Err((writer, status)) => {
                if let Some(w) = writer {
                    abandon(w);
                }
                Err(status)
            }
        }
    }

    type GetShardStream = ReceiverStream<Result<ShardBlock, Status>>;

    async fn get_shard(
        &self,
        req: Request<GetShardRequest>,
    ) -> Result<Response<Self::GetShardStream>, Status> {
        let r = req.into_inner();
        self.check_cluster(&r.cluster)?;
        let id = shard_id(r.shard)?;
        let store = self.store.clone();
        let reader = blocking(move || store.open(id)).await?;
        let count = (r.block_count > 0).then_some(r.block_count);
        let range = block_range(reader.stat().blocks, r.first_block, count)
            .map_err(Status::out_of_range)?;

        let (tx, rx) = mpsc::channel(READ_AHEAD_BLOCKS);
        tokio::spawn(async move {
            let mut reader: Box<dyn ShardReader> = reader;
            for index in range {
                let read = tokio::task::spawn_blocking(move || {
                    let block = reader.read_block(index);
                    (reader, block)
                })
                .await;
                let (next_reader, block) = match read {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx
                            .send(Err(Status::internal(format!(
                                "chunk store task failed: {e}"
                            ))))
                            .await;
                        return;
                    }
                };
                reader = next_reader;
                let msg = match block {
                    Ok(data) => Ok(ShardBlock {
                        index,
                        crc32: crc32fast::hash(&data),
                        data,
                    }),
                    Err(e) => Err(status(e)),
                };
                let failed = msg.is_err();
                // A closed channel means the client went away: stop reading.
                if tx.send(msg).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn delete_shard(
        &self,
        req: Request<DeleteShardRequest>,
    ) -> Result<Response<DeleteShardReply>, Status> {
        let r = req.into_inner();
        self.check_cluster(&r.cluster)?;
        let id = shard_id(r.shard)?;
        let store = self.store.clone();
        let existed = blocking(move || store.delete(id)).await?;
        Ok(Response::new(DeleteShardReply { existed }))
    }

    async fn stat_shard(
        &self,
        req: Request<StatShardRequest>,
    ) -> Result<Response<StatShardReply>, Status> {
        let r = req.into_inner();
        self.check_cluster(&r.cluster)?;
        let id = shard_id(r.shard)?;
        let store = self.store.clone();
        let stat = blocking(move || store.stat(id)).await?;
        Ok(Response::new(StatShardReply {
            format: Some(format_to_wire(stat.format)),
            blocks: stat.blocks,
            bytes: stat.bytes,
            last_piece_bytes: stat.last_piece_bytes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use futures::stream::{self, StreamExt};
    use stratus_proto::chunk::chunks_client::ChunksClient;
    use tokio::net::TcpListener;

    use super::*;
    use crate::object::shard_io::{GrpcShardIo, ShardIo, ShardIoError};
    use crate::store::chunks::FsChunkStore;

    const CLUSTER: &str = "test-cluster";

    struct Server {
        _dir: tempfile::TempDir,
        store: Arc<FsChunkStore>,
        addr: std::net::SocketAddr,
    }

    async fn serve() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsChunkStore::open(&dir.path().join("chunks")).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = ChunkApi::new(CLUSTER.into(), store.clone() as Arc<dyn ChunkStore>);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(api.into_server())
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Server {
            _dir: dir,
            store,
            addr,
        }
    }

    fn io(cluster: &str, server: &Server) -> GrpcShardIo {
        GrpcShardIo::new(
            cluster.into(),
            HashMap::from([(1, server.addr.to_string())]),
        )
    }

    fn format() -> chunks::ShardFormat {
        chunks::ShardFormat {
            data_shards: 4,
            parity_shards: 2,
            piece_bytes: 64 * 1024,
        }
    }

    fn pieces() -> Vec<Bytes> {
        (0..5u8)
            .map(|i| {
                let len = if i == 4 { 1000 } else { 64 * 1024 };
                Bytes::from((0..len).map(|j| (j as u8) ^ i).collect::<Vec<u8>>())
            })
            .collect()
    }

    async fn read_all(io: &GrpcShardIo, id: chunks::ShardId) -> Result<Vec<Bytes>, ShardIoError> {
        io.read_blocks(1, id, 0, None)
            .await?
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    #[tokio::test]
    async fn put_read_corrupt_over_grpc() {
        let server = serve().await;
        let io = io(CLUSTER, &server);
        let id = chunks::ShardId::new(0x0123_4567_89ab_cdef_0011_2233_4455_6677, 2);
        let stream = stream::iter(pieces().into_iter().map(Ok)).boxed();
        let stat = io.put_shard(1, id, format(), stream).await.unwrap();
        assert_eq!(
            (stat.blocks, stat.bytes, stat.last_piece_bytes),
            (5, 4 * 65536 + 1000, 1000)
        );
        assert_eq!(io.stat_shard(1, id).await.unwrap(), stat);
        assert_eq!(read_all(&io, id).await.unwrap(), pieces());
        let middle: Vec<Bytes> = io
            .read_blocks(1, id, 1, Some(2))
            .await
            .unwrap()
            .map(|b| b.unwrap())
            .collect()
            .await;
        assert_eq!(middle, pieces()[1..3]);

        // Flip one byte of block 3 on disk: blocks before it still stream, then DATA_LOSS.
        let path = server.store.shard_path(id);
        let mut bytes = std::fs::read(&path).unwrap();
        let offset = 64 + 3 * (65536 + 4) + 100;
        bytes[offset] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let results: Vec<_> = io
            .read_blocks(1, id, 0, None)
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(results.len(), 4);
        assert!(results[..3].iter().all(|r| r.is_ok()));
        assert!(
            matches!(&results[3], Err(ShardIoError::Corrupt { node: 1, id: got, .. }) if *got == id),
            "{:?}",
            results[3]
        );

        assert!(io.delete_shard(1, id).await.unwrap());
        assert!(!io.delete_shard(1, id).await.unwrap());
        assert!(matches!(
            io.stat_shard(1, id).await,
            Err(ShardIoError::NotFound { node: 1, .. })
        ));
        assert!(matches!(
            io.read_blocks(1, id, 0, None).await,
            Err(ShardIoError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_file_is_data_loss() {
        let server = serve().await;
        let io = io(CLUSTER, &server);
        let id = chunks::ShardId::new(77, 0);
        let stream = stream::iter(pieces().into_iter().map(Ok)).boxed();
        io.put_shard(1, id, format(), stream).await.unwrap();
        let path = server.store.shard_path(id);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1004]).unwrap();
        assert!(matches!(
            io.stat_shard(1, id).await,
            Err(ShardIoError::Corrupt { .. })
        ));
        assert!(matches!(
            read_all(&io, id).await,
            Err(ShardIoError::Corrupt { .. })
        ));
    }

    #[tokio::test]
    async fn other_cluster_and_bad_input_are_refused() {
        let server = serve().await;
        let id = chunks::ShardId::new(5, 1);
        let stranger = io("other-cluster", &server);
        let err = stranger.stat_shard(1, id).await.unwrap_err();
        assert!(
            matches!(&err, ShardIoError::Invalid { detail, .. } if detail.contains("other-cluster")),
            "{err}"
        );
        let stream = stream::iter(pieces().into_iter().map(Ok)).boxed();
        assert!(stranger.put_shard(1, id, format(), stream).await.is_err());
        assert!(server.store.list(None, 10).unwrap().is_empty());

        let io = io(CLUSTER, &server);
        // Absurd piece size, index outside the layout.
        let huge = chunks::ShardFormat {
            piece_bytes: 1 << 30,
            ..format()
        };
        for (id, format) in [(id, huge), (chunks::ShardId::new(5, 6), format())] {
            let stream = stream::iter(pieces().into_iter().map(Ok)).boxed();
            let err = io.put_shard(1, id, format, stream).await.unwrap_err();
            assert!(matches!(err, ShardIoError::Invalid { .. }), "{err}");
        }
        // A piece larger than the format's.
        let big = vec![Ok(Bytes::from(vec![0u8; 64 * 1024 + 1]))];
        let err = io
            .put_shard(1, id, format(), stream::iter(big).boxed())
            .await
            .unwrap_err();
        assert!(matches!(err, ShardIoError::Invalid { .. }), "{err}");

        // Raw requests a well-behaved client never sends.
        let mut raw = ChunksClient::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
        let bad_blob = StatShardRequest {
            cluster: CLUSTER.into(),
            shard: Some(ShardId {
                blob: Bytes::from_static(&[1, 2, 3]),
                index: 0,
            }),
        };
        let status = raw.stat_shard(bad_blob).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("16 bytes"),
            "{}",
            status.message()
        );
        let no_id = DeleteShardRequest {
            cluster: CLUSTER.into(),
            shard: None,
        };
        assert_eq!(
            raw.delete_shard(no_id).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let wire_id = ShardId {
            blob: Bytes::copy_from_slice(&5u128.to_be_bytes()),
            index: 1,
        };
        // A piece whose CRC does not match, and a stream cut before its end message.
        let start = PutShardChunk {
            item: Some(Item::Start(PutShardStart {
                cluster: CLUSTER.into(),
                shard: Some(wire_id.clone()),
                format: Some(format_to_wire(format())),
            })),
        };
        let bad_piece = PutShardChunk {
            item: Some(Item::Piece(Piece {
                data: Bytes::from_static(b"abc"),
                crc32: 1,
            })),
        };
        let status = raw
            .put_shard(stream::iter(vec![start.clone(), bad_piece]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::DataLoss);
        let good_piece = PutShardChunk {
            item: Some(Item::Piece(Piece {
                data: Bytes::from_static(b"abc"),
                crc32: crc32fast::hash(b"abc"),
            })),
        };
        let status = raw
            .put_shard(stream::iter(vec![start.clone(), good_piece.clone()]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Aborted);
        let wrong_count = PutShardChunk {
            item: Some(Item::End(PutShardEnd { blocks: 2 })),
        };
        let status = raw
            .put_shard(stream::iter(vec![start, good_piece, wrong_count]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(server.store.list(None, 10).unwrap().is_empty());
        assert_eq!(
            server.store.sweep_temp().unwrap(),
            0,
            "abandoned writes cleaned up"
        );

        // Reads past the end.
        let stream = stream::iter(pieces().into_iter().map(Ok)).boxed();
        io.put_shard(1, id, format(), stream).await.unwrap();
        let past = GetShardRequest {
            cluster: CLUSTER.into(),
            shard: Some(wire_id),
            first_block: 4,
            block_count: 2,
        };
        assert_eq!(
            raw.get_shard(past).await.unwrap_err().code(),
            tonic::Code::OutOfRange
        );
    }

    #[tokio::test]
    async fn an_aborted_piece_stream_leaves_nothing() {
        let server = serve().await;
        let io = io(CLUSTER, &server);
        let id = chunks::ShardId::new(6, 0);
        let items = vec![
            Ok(pieces()[0].clone()),
            Err(ShardIoError::Aborted("upload failed".into())),
        ];
        let err = io
            .put_shard(1, id, format(), stream::iter(items).boxed())
            .await
            .unwrap_err();
        assert!(matches!(err, ShardIoError::Aborted(_)), "{err}");
        assert!(matches!(
            io.stat_shard(1, id).await,
            Err(ShardIoError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn an_unreachable_node_is_unavailable() {
        // Bind then drop a listener to get a port nobody listens on.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let io = GrpcShardIo::new(CLUSTER.into(), HashMap::from([(1, addr.to_string())]));
        let err = io
            .stat_shard(1, chunks::ShardId::new(1, 0))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ShardIoError::Unavailable { node: 1, .. }),
            "{err}"
        );
        assert!(matches!(
            io.stat_shard(2, chunks::ShardId::new(1, 0)).await,
            Err(ShardIoError::UnknownNode(2))
        ));
    }
}
