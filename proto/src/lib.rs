//! Generated gRPC types and services for Stratus. Wire types stay at the edge: the node
//! converts them into domain types in its `api` layer.

pub mod kv {
    tonic::include_proto!("stratus.kv");
}

pub mod cluster {
    tonic::include_proto!("stratus.cluster");
}

pub mod raft {
    tonic::include_proto!("stratus.raft");
}

pub mod chunk {
    tonic::include_proto!("stratus.chunk");
}

pub mod queue {
    tonic::include_proto!("stratus.queue");
}

pub mod quorum {
    tonic::include_proto!("stratus.quorum");
}
