//! Outward faces of a node: gRPC services (KV, cluster status, node-to-node transport) and
//! the HTTP edge. Wire types are converted to domain types here and nowhere else.

pub mod aws_json;
pub mod cbor;
pub mod grpc_chunk;
pub mod grpc_cluster;
pub mod grpc_kv;
pub mod grpc_queue;
pub mod grpc_segments;
pub mod grpc_volumes;
pub mod http_edge;
pub mod kinesis;
pub mod s3;
pub mod sigv4;
pub mod sqs;
