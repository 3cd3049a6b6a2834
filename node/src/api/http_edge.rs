//! The HTTP edge (port 4566): for now `/_stratus/health` (the cluster as this node sees it),
//! `/_stratus/health/node` (this node only) and `/_stratus/metrics`. The
//! AWS-compatible APIs (S3, SQS, Kinesis, STS/IAM) mount here as they land.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;

use crate::cluster::Directory;
use crate::metrics::RpcMetrics;
use crate::raft::host::GroupHost;
use crate::status::{cluster_view, render_raft_metrics};

#[derive(Clone)]
pub struct EdgeState {
    pub host: Arc<GroupHost>,
    pub directory: Arc<Directory>,
    pub rpc_metrics: Arc<RpcMetrics>,
}

pub fn router(state: EdgeState) -> axum::Router {
    axum::Router::new()
        .route("/_stratus/health", get(health))
        .route("/_stratus/health/node", get(node_health))
        .route("/_stratus/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn health(State(s): State<EdgeState>) -> Json<crate::status::ClusterView> {
    Json(cluster_view(&s.host, &s.directory).await)
}

/// This node alone: answers 200 with its own groups whenever it is serving (a container
/// healthcheck asks this; the cluster-wide view is `/_stratus/health`).
async fn node_health(State(s): State<EdgeState>) -> Json<crate::status::NodeReport> {
    Json(crate::status::local_report(&s.host, &s.directory))
}

async fn metrics(State(s): State<EdgeState>) -> Response {
    let mut out = String::new();
    render_raft_metrics(&s.host, &mut out);
    s.rpc_metrics.render(s.host.node_id(), &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({
            "error": "NotFound",
            "message": "no such endpoint on this node; see /_stratus/health",
        })),
    )
        .into_response()
}
