//! The HTTP edge (port 4566): `/_stratus/health` (the cluster as this node sees it),
//! `/_stratus/health/node` (this node only), `/_stratus/metrics`, and every other request
//! to the S3 API (`api::s3`), except requests whose `X-Amz-Target` names SQS
//! (`api::sqs`) or Kinesis (`api::kinesis`). STS/IAM will be told apart the same way.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;

use s3s::service::S3Service;

use crate::api::kinesis::KinesisApi;
use crate::api::sqs::SqsApi;
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

pub fn router(
    state: EdgeState,
    s3: S3Service,
    sqs: Arc<SqsApi>,
    kinesis: Arc<KinesisApi>,
) -> axum::Router {
    axum::Router::new()
        .route("/_stratus/health", get(health))
        .route("/_stratus/health/node", get(node_health))
        .route("/_stratus/metrics", get(metrics))
        .with_state(state)
        .fallback(move |req: Request| {
            let (s3, sqs, kinesis) = (s3.clone(), sqs.clone(), kinesis.clone());
            async move {
                if SqsApi::claims(&req) {
                    sqs.handle(req).await
                } else if KinesisApi::claims(&req) {
                    kinesis.handle(req).await
                } else {
                    serve_s3(s3, req).await
                }
            }
        })
}

/// Hands a request to s3s, which answers every failure as an S3 XML error itself; an
/// error here means the connection's HTTP could not be processed at all.
async fn serve_s3(s3: S3Service, req: Request) -> Response {
    match tower::ServiceExt::oneshot(s3, req).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => {
            tracing::warn!("S3 request failed before it could be answered: {e:?}");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
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
    crate::object::worker_metrics::render(s.host.node_id(), &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
