//! gRPC `QueueWait`: a replica of a queue's data group waits for the queue's next send on
//! behalf of a long poll received by a node that is not a replica (`queue::signals`). Also
//! the client side of the same call, as the queue service's [`RemoteWait`].

use std::sync::Arc;
use std::time::Duration;

use stratus_proto::queue::queue_wait_client::QueueWaitClient;
use stratus_proto::queue::queue_wait_server::{QueueWait, QueueWaitServer};
use stratus_proto::queue::{WaitReply, WaitRequest};
use tonic::{Request, Response, Status};

use crate::queue::model::QueueName;
use crate::queue::service::RemoteWait;
use crate::queue::signals::QueueSignals;
use crate::raft::host::GroupHost;
use crate::raft::network::PeerChannels;
use crate::raft::GroupId;

/// The longest wait a request may ask for (SQS's longest poll).
const MAX_WAIT: Duration = Duration::from_secs(20);

pub struct QueueWaitApi {
    cluster: String,
    host: Arc<GroupHost>,
    signals: Arc<QueueSignals>,
}

impl QueueWaitApi {
    pub fn new(cluster: String, host: Arc<GroupHost>, signals: Arc<QueueSignals>) -> Self {
        QueueWaitApi {
            cluster,
            host,
            signals,
        }
    }

    pub fn into_server(self) -> QueueWaitServer<QueueWaitApi> {
        QueueWaitServer::new(self)
    }
}

#[tonic::async_trait]
impl QueueWait for QueueWaitApi {
    async fn wait_for_messages(
        &self,
        request: Request<WaitRequest>,
    ) -> Result<Response<WaitReply>, Status> {
        let r = request.into_inner();
        if r.cluster != self.cluster {
            return Err(Status::failed_precondition(format!(
                "queue wait for cluster '{}' reached a node of cluster '{}'",
                r.cluster, self.cluster
            )));
        }
        let queue = QueueName::parse(&r.queue)
            .map_err(|e| Status::invalid_argument(format!("queue name: {e}")))?;
        if self.host.group(r.group).is_none() {
            return Err(Status::not_found(format!(
                "this node does not replicate group {}",
                r.group
            )));
        }
        let timeout = Duration::from_millis(r.timeout_ms).min(MAX_WAIT);
        let woken = self
            .signals
            .wait_past(r.group, &queue, r.seen_next_seq, timeout)
            .await;
        Ok(Response::new(WaitReply { woken }))
    }
}

/// Asks a replica of the queue's group to wait, over the node's peer channels.
pub struct GrpcRemoteWait {
    peers: Arc<PeerChannels>,
}

impl GrpcRemoteWait {
    pub fn new(peers: Arc<PeerChannels>) -> Self {
        GrpcRemoteWait { peers }
    }
}

#[async_trait::async_trait]
impl RemoteWait for GrpcRemoteWait {
    async fn wait(
        &self,
        group: GroupId,
        voters: &[u64],
        queue: &QueueName,
        seen: u64,
        timeout: Duration,
    ) -> bool {
        for node in voters {
            let Ok(channel) = self.peers.channel(*node) else {
                continue;
            };
            let mut request = Request::new(WaitRequest {
                cluster: self.peers.cluster().to_string(),
                group,
                queue: queue.as_str().to_string(),
                seen_next_seq: seen,
                timeout_ms: timeout.as_millis() as u64,
            });
            request.set_timeout(timeout + Duration::from_secs(2));
            if QueueWaitClient::new(channel)
                .wait_for_messages(request)
                .await
                .is_ok()
            {
                return true;
            }
        }
        false
    }
}
