//! `stratusd dev`: an embedded cluster of several nodes over three zones on 127.0.0.1, in
//! one process, each node with its own RocksDB, gRPC port and HTTP port.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::{Credentials, Limits, NodeConfig, PeerConfig, RaftSettings};
use crate::node::RunningNode;

pub const DEV_CLUSTER_NAME: &str = "stratus-dev";
pub const DEV_ACCESS_KEY: &str = "test";
pub const DEV_SECRET_KEY: &str = "test";
pub const ZONES: [&str; 3] = ["az-a", "az-b", "az-c"];

#[derive(Debug, Clone)]
pub struct DevOptions {
    pub nodes: u64,
    pub data_dir: PathBuf,
    pub http_port: u16,
    pub grpc_port: u16,
    pub data_groups: u64,
}

pub fn default_data_dir() -> PathBuf {
    std::env::temp_dir().join("stratus-dev")
}

/// The configuration of every node of a dev cluster: node i (from 1) is in zone
/// `ZONES[(i-1) % 3]`, listens on `grpc_port + i - 1` and `http_port + i - 1`.
pub fn dev_configs(opts: &DevOptions) -> anyhow::Result<Vec<NodeConfig>> {
    anyhow::ensure!(
        (1..=64).contains(&opts.nodes),
        "--nodes must be between 1 and 64"
    );
    let port = |base: u16, i: u64| -> anyhow::Result<u16> {
        base.checked_add((i - 1) as u16)
            .with_context(|| format!("port {base} + {} is past 65535", i - 1))
    };
    let mut peers = Vec::new();
    for i in 1..=opts.nodes {
        peers.push(PeerConfig {
            id: i,
            zone: ZONES[(i as usize - 1) % ZONES.len()].to_string(),
            grpc: format!("127.0.0.1:{}", port(opts.grpc_port, i)?),
            http: format!("127.0.0.1:{}", port(opts.http_port, i)?),
        });
    }
    Ok(peers
        .iter()
        .map(|p| NodeConfig {
            node_id: p.id,
            zone: p.zone.clone(),
            data_dir: opts.data_dir.join(format!("node-{}", p.id)),
            cluster_name: DEV_CLUSTER_NAME.into(),
            grpc_listen: p.grpc.clone(),
            http_listen: p.http.clone(),
            data_groups: opts.data_groups,
            peers: peers.clone(),
            credentials: Some(Credentials {
                access_key: DEV_ACCESS_KEY.into(),
                secret_key: DEV_SECRET_KEY.into(),
            }),
            raft: RaftSettings::default(),
            limits: Limits::default(),
            request_timeout_ms: 10_000,
            object: crate::config::ObjectConfig::default(),
            stream: crate::config::StreamConfig::default(),
            quorum: crate::config::QuorumConfig::default(),
        })
        .collect())
}

pub async fn start_dev_cluster(opts: &DevOptions) -> anyhow::Result<Vec<RunningNode>> {
    let configs = dev_configs(opts)?;
    let mut nodes = Vec::new();
    for config in configs {
        let id = config.node_id;
        match RunningNode::start(config).await {
            Ok(node) => nodes.push(node),
            Err(e) => {
                for n in nodes {
                    n.shutdown().await;
                }
                return Err(e.context(format!("starting dev node {id}")));
            }
        }
    }
    Ok(nodes)
}

/// Wait until every group hosted by these nodes knows a leader.
pub async fn wait_for_leaders(nodes: &[RunningNode], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let all_led = nodes
            .iter()
            .flat_map(|n| n.host().groups())
            .all(|g| g.metrics().current_leader.is_some());
        if all_led {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_nodes_two_per_zone_on_consecutive_ports() {
        let opts = DevOptions {
            nodes: 6,
            data_dir: "/tmp/d".into(),
            http_port: 4566,
            grpc_port: 7000,
            data_groups: 6,
        };
        let configs = dev_configs(&opts).unwrap();
        assert_eq!(configs.len(), 6);
        for zone in ZONES {
            assert_eq!(configs.iter().filter(|c| c.zone == zone).count(), 2);
        }
        assert_eq!(configs[5].grpc_listen, "127.0.0.1:7005");
        assert_eq!(configs[0].http_listen, "127.0.0.1:4566");
        for c in &configs {
            c.validate().unwrap();
        }
        let too_high = DevOptions {
            grpc_port: 65535,
            ..opts
        };
        assert!(dev_configs(&too_high).is_err());
    }
}
