//! One running node: opens its store, starts the Raft groups it is a voter of, serves gRPC
//! and the HTTP edge, and records the cluster in the meta group. `stratusd run` runs one;
//! `stratusd dev` runs several in one process.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use stratus_proto::cluster::cluster_server::ClusterServer;
use stratus_proto::kv::kv_server::KvServer;
use stratus_proto::raft::group_router_server::GroupRouterServer;
use stratus_proto::raft::raft_transport_server::RaftTransportServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::grpc_chunk::ChunkApi;
use crate::api::grpc_cluster::ClusterApi;
use crate::api::grpc_kv::KvApi;
use crate::api::grpc_queue::{GrpcRemoteWait, QueueWaitApi};
use crate::api::grpc_segments::SegmentsApi;
use crate::api::grpc_volumes::VolumesApi;
use crate::api::http_edge::{self, EdgeState};
use crate::api::kinesis::KinesisApi;
use crate::api::s3::access::{Authorizer, RootOnly};
use crate::api::s3::auth::{AccessKeys, RootKeys};
use crate::api::sqs::SqsApi;
use crate::cluster::routing::stable_hash;
use crate::cluster::{Directory, GroupKind, META_GROUP};
use crate::config::NodeConfig;
use crate::data_group::DataGroupState;
use crate::kv::KvService;
use crate::meta::state::MetaState;
use crate::meta::{ClusterRecord, MetaCommand, MetaReply};
use crate::metrics::RpcMetrics;
use crate::object::service::{ObjectService, ObjectSettings};
use crate::object::shard_io::{GrpcShardIo, ShardIo};
use crate::queue::redrive::QueueWorker;
use crate::queue::service::QueueService;
use crate::queue::signals::QueueSignals;
use crate::quorum::catalog::VolumeCatalog;
use crate::quorum::gossip::SegmentWorker;
use crate::quorum::repair::{GrpcSegmentPeers, RepairWorker, SegmentPeers};
use crate::quorum::segment_host::SegmentHost;
use crate::quorum::QuorumSettings;
use crate::raft::codec;
use crate::raft::host::{GroupHost, GroupSpec};
use crate::raft::network::PeerChannels;
use crate::raft::router::Router;
use crate::raft::transport::TransportService;
use crate::raft::ServiceState;
use crate::store::chunks::{ChunkStore, FsChunkStore};
use crate::store::identity::FORMAT_VERSION;
use crate::store::layout::DataLayout;
use crate::store::{Identity, IdentityCheck, NodeStore};
use crate::stream::iterator::TokenKey;
use crate::stream::service::{StreamService, StreamSettings};
use crate::stream::worker::StreamWorker;

/// Largest gRPC message a client may send (a value of up to 16 MiB plus its key).
const MAX_CLIENT_MESSAGE_BYTES: usize = 17 * 1024 * 1024;

pub struct RunningNode {
    pub id: u64,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub data_dir: std::path::PathBuf,
    pub fresh: bool,
    host: Arc<GroupHost>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// A fingerprint of what the cluster was created with: ids, zones and data groups.
fn topology_fingerprint(config: &NodeConfig) -> u64 {
    let mut peers: Vec<String> = config
        .peers
        .iter()
        .map(|p| format!("{}@{}", p.id, p.zone))
        .collect();
    peers.sort();
    stable_hash(format!("{};groups={}", peers.join(","), config.data_groups).as_bytes())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl RunningNode {
    pub async fn start(config: NodeConfig) -> anyhow::Result<RunningNode> {
        config.validate()?;
        let raft_config = config.openraft_config()?;
        let directory = Arc::new(Directory::build(
            &config.cluster_name,
            config.nodes(),
            config.data_groups,
        )?);

        let layout = DataLayout::of(&config.data_dir)?;
        let store = NodeStore::open(&layout.db)?;
        let chunks = Arc::new(FsChunkStore::open(&layout.chunks).with_context(|| {
            format!("cannot open the chunk store in {}", layout.chunks.display())
        })?);
        match chunks.sweep_temp() {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} unfinished shard files left by a crash"),
            Err(e) => tracing::warn!("cannot sweep unfinished shard files: {e}"),
        }
        let identity = Identity {
            cluster_name: config.cluster_name.clone(),
            node_id: config.node_id,
            topology: topology_fingerprint(&config),
            format_version: FORMAT_VERSION,
        };
        let fresh = store.check_identity(&identity)? == IdentityCheck::Fresh;

        let grpc_listener = TcpListener::bind(&config.grpc_listen)
            .await
            .with_context(|| format!("cannot listen for gRPC on {}", config.grpc_listen))?;
        let http_listener = TcpListener::bind(&config.http_listen)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", config.http_listen))?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;

        let addrs: BTreeMap<u64, String> = directory
            .nodes
            .values()
            .map(|n| (n.id, n.grpc_addr.clone()))
            .collect();
        let rpc_metrics = Arc::new(RpcMetrics::default());
        let peers = Arc::new(PeerChannels::new(
            config.cluster_name.clone(),
            addrs
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect::<HashMap<_, _>>(),
            rpc_metrics.clone(),
        ));
        let host = Arc::new(GroupHost::new(
            config.node_id,
            store.clone(),
            peers,
            raft_config,
        ));

        let queue_signals = QueueSignals::new();
        for placement in directory.groups_of(config.node_id) {
            let service: Arc<dyn ServiceState> = match placement.kind {
                GroupKind::Meta => Arc::new(MetaState),
                GroupKind::Data => {
                    Arc::new(DataGroupState::new(placement.id, queue_signals.clone()))
                }
            };
            let spec = GroupSpec {
                id: placement.id,
                kind: placement.kind.label(),
                voters: placement.voters.clone(),
                service,
                initialize: placement.voters[0] == config.node_id,
            };
            host.start_group(spec, &addrs).await?;
        }

        let timeout = Duration::from_millis(config.request_timeout_ms);
        let router = Arc::new(Router::new(host.clone(), directory.clone(), timeout));
        let kv = Arc::new(KvService::new(
            router.clone(),
            config.limits.max_value_bytes,
        ));
        let shard_io: Arc<dyn ShardIo> = Arc::new(GrpcShardIo::new(
            config.cluster_name.clone(),
            addrs.iter().map(|(k, v)| (*k, v.clone())).collect(),
        ));
        // Object background workers (repair, scrub, orphan sweep): object::workers.
        let object_workers = crate::object::workers::ObjectWorkers::new(
            (&config.object).into(),
            host.clone(),
            router.clone(),
            directory.clone(),
            chunks.clone(),
            shard_io,
        );
        let objects = Arc::new(ObjectService::new(
            router.clone(),
            object_workers.watched_io(),
            directory.clone(),
            ObjectSettings::default(),
        ));
        let credentials = config
            .credentials
            .clone()
            .context("credentials are required (credentials.access_key / secret_key)")?;
        // Shard iterators and list tokens are sealed with a key every node of the cluster
        // derives alike: from the root secret key and the cluster name (`stream::iterator`).
        let token_key = TokenKey::derive(&config.cluster_name, &credentials.secret_key);
        let access_keys: Arc<dyn AccessKeys> = Arc::new(RootKeys {
            access_key: credentials.access_key,
            secret_key: credentials.secret_key,
        });
        let authorizer: Arc<dyn Authorizer> = Arc::new(RootOnly);
        let s3 = crate::api::s3::build_service(objects, access_keys.clone(), authorizer.clone());
        let queues = Arc::new(QueueService::new(
            router.clone(),
            directory.clone(),
            host.clone(),
            queue_signals.clone(),
            Arc::new(GrpcRemoteWait::new(host.peers().clone())),
        ));
        let sqs = Arc::new(SqsApi::new(
            queues.clone(),
            access_keys.clone(),
            authorizer.clone(),
        ));
        let streams = Arc::new(StreamService::new(
            router.clone(),
            directory.clone(),
            token_key,
            StreamSettings {
                enforce_shard_throughput: config.limits.enforce_shard_throughput,
                seconds_per_hour: config.stream.seconds_per_hour,
                ..StreamSettings::default()
            },
        ));
        let kinesis = Arc::new(KinesisApi::new(streams.clone(), access_keys, authorizer));

        // Quorum storage segments (`quorum`): not Raft; the writer library counts 4/6 acks.
        let quorum_settings = QuorumSettings::from(&config.quorum);
        let segments =
            SegmentHost::open(store.clone(), config.cluster_name.clone(), config.node_id)
                .context("cannot open this node's quorum segments")?;
        // The volume catalog (meta group) and its repair worker (meta leader only).
        let segment_peers: Arc<dyn SegmentPeers> = Arc::new(GrpcSegmentPeers::new(
            config.cluster_name.clone(),
            directory.clone(),
        ));
        let volumes = Arc::new(VolumeCatalog::new(
            router.clone(),
            directory.clone(),
            segment_peers.clone(),
        ));

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        let transport = Arc::new(TransportService::new(host.clone()));
        let grpc = tonic::transport::Server::builder()
            .add_service(
                RaftTransportServer::from_arc(transport.clone())
                    .max_decoding_message_size(codec::MAX_MESSAGE_BYTES as usize)
                    .max_encoding_message_size(codec::MAX_MESSAGE_BYTES as usize),
            )
            .add_service(
                GroupRouterServer::from_arc(transport)
                    .max_decoding_message_size(codec::MAX_MESSAGE_BYTES as usize)
                    .max_encoding_message_size(codec::MAX_MESSAGE_BYTES as usize),
            )
            .add_service(
                KvServer::new(KvApi::new(kv))
                    .max_decoding_message_size(MAX_CLIENT_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_CLIENT_MESSAGE_BYTES),
            )
            .add_service(ChunkApi::new(config.cluster_name.clone(), chunks.clone()).into_server())
            .add_service(
                QueueWaitApi::new(config.cluster_name.clone(), host.clone(), queue_signals)
                    .into_server(),
            )
            .add_service(SegmentsApi::new(segments.clone()).into_server())
            .add_service(
                VolumesApi::new(config.cluster_name.clone(), volumes.clone()).into_server(),
            )
            .add_service(ClusterServer::new(ClusterApi::new(
                host.clone(),
                directory.clone(),
            )));
        let mut rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            // Without TCP_NODELAY a response written in two pieces (headers, then data)
            // waits for the peer's delayed ACK: ~40 ms on every read of a 4 KiB value.
            let incoming =
                tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = grpc.serve_with_incoming_shutdown(incoming, stop).await {
                tracing::error!("gRPC server stopped: {e}");
            }
        }));

        let edge = http_edge::router(
            EdgeState {
                host: host.clone(),
                directory: directory.clone(),
                rpc_metrics,
            },
            s3,
            sqs,
            kinesis,
        );
        let mut rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            use axum::serve::ListenerExt;
            let http_listener = http_listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY on an edge connection: {e}");
                }
            });
            if let Err(e) = axum::serve(http_listener, edge)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!("HTTP edge stopped: {e}");
            }
        }));

        tasks.extend(object_workers.spawn(shutdown_rx.clone()));
        tasks.push(QueueWorker::new(queues, host.clone()).spawn(shutdown_rx.clone()));
        tasks
            .push(SegmentWorker::new(segments, quorum_settings.clone()).spawn(shutdown_rx.clone()));
        tasks.push(
            RepairWorker::new(
                volumes,
                segment_peers,
                host.clone(),
                directory.clone(),
                quorum_settings,
            )
            .spawn(shutdown_rx.clone()),
        );
        tasks.push(
            StreamWorker::new(
                streams,
                router.clone(),
                host.clone(),
                Duration::from_millis(config.stream.worker_interval_ms),
            )
            .spawn(shutdown_rx.clone()),
        );
        tasks.push(tokio::spawn(record_cluster(
            router,
            directory.clone(),
            shutdown_rx,
        )));

        tracing::info!(
            node = config.node_id,
            zone = %config.zone,
            grpc = %grpc_addr,
            http = %http_addr,
            data_dir = %config.data_dir.display(),
            fresh,
            "node started"
        );
        Ok(RunningNode {
            id: config.node_id,
            grpc_addr,
            http_addr,
            data_dir: config.data_dir.clone(),
            fresh,
            host,
            shutdown,
            tasks,
        })
    }

    pub fn host(&self) -> &Arc<GroupHost> {
        &self.host
    }

    /// Stop serving, stop every Raft group and close the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.host.shutdown().await;
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Record the cluster directory in the meta group (idempotent). A node whose configuration
/// disagrees with the recorded cluster logs it loudly: its routing would be wrong.
async fn record_cluster(
    router: Arc<Router>,
    directory: Arc<Directory>,
    mut stop: watch::Receiver<bool>,
) {
    let command = codec::encode(&MetaCommand::RecordCluster(ClusterRecord {
        directory: (*directory).clone(),
        created_ms: now_ms(),
    }));
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = router.write(META_GROUP, command.clone());
        let result = tokio::select! {
            r = attempt => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        match result
            .map_err(|e| anyhow!(e))
            .and_then(|b| codec::decode::<MetaReply>(&b).map_err(|e| anyhow!(e)))
        {
            Ok(MetaReply::Recorded { created }) => {
                tracing::info!(created, "cluster recorded in the meta group");
                return;
            }
            Ok(MetaReply::Conflict(reason)) => {
                tracing::error!(
                    "this node's configuration conflicts with the cluster record: {reason}"
                );
                return;
            }
            Ok(other) => {
                tracing::error!("unexpected meta reply {other:?}");
                return;
            }
            Err(e) => tracing::debug!("recording the cluster: {e}; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
