//! Node configuration: a TOML file, then environment overrides, then validation.
//!
//! Every field can be set by an environment variable `STRATUS_<FIELD>`, with `__` between
//! nested names: `STRATUS_NODE_ID=2`, `STRATUS_RAFT__HEARTBEAT_MS=50`,
//! `STRATUS_CREDENTIALS__SECRET_KEY=...`. A value is read as a TOML value when it parses
//! as one (numbers, booleans, arrays such as
//! `STRATUS_PEERS='[{id=1, zone="az-a", grpc="n1:7000", http="n1:4566"}]'`) and as a
//! string otherwise. Unknown fields and bad values are errors that name the field.

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cluster::NodeInfo;

pub const ENV_PREFIX: &str = "STRATUS_";
const TOP_LEVEL_FIELDS: [&str; 15] = [
    "node_id",
    "zone",
    "data_dir",
    "cluster_name",
    "grpc_listen",
    "http_listen",
    "data_groups",
    "peers",
    "credentials",
    "raft",
    "limits",
    "request_timeout_ms",
    "object",
    "stream",
    "quorum",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node_id: u64,
    pub zone: String,
    pub data_dir: PathBuf,
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// Where this node's gRPC server listens (node-to-node and clients).
    #[serde(default = "default_grpc_listen")]
    pub grpc_listen: String,
    /// Where the HTTP edge listens (AWS-compatible APIs, /_stratus/health, /_stratus/metrics).
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
    /// Number of data groups, fixed when the cluster is created.
    #[serde(default = "default_data_groups")]
    pub data_groups: u64,
    /// Every node of the cluster, this one included, with the addresses others dial.
    pub peers: Vec<PeerConfig>,
    /// Root credentials of the AWS-compatible APIs.
    pub credentials: Option<Credentials>,
    #[serde(default)]
    pub raft: RaftSettings,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// The object store's background workers (repair, scrub, orphan sweep).
    #[serde(default)]
    pub object: ObjectConfig,
    /// The stream store (Kinesis): retention clock and worker pacing.
    #[serde(default)]
    pub stream: StreamConfig,
    /// Quorum storage (volumes): segment gossip pacing and automatic segment replacement.
    #[serde(default)]
    pub quorum: QuorumConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: u64,
    pub zone: String,
    /// host:port other nodes and clients dial for gRPC.
    pub grpc: String,
    /// host:port of the node's HTTP edge.
    pub http: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSettings {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many log entries since the last one.
    pub snapshot_logs: u64,
    /// Log entries kept below a snapshot (followers that lag less catch up from the log).
    pub keep_logs_after_snapshot: u64,
    pub snapshot_chunk_bytes: u64,
    pub install_snapshot_timeout_ms: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_ms: 100,
            election_timeout_min_ms: 800,
            election_timeout_max_ms: 1600,
            snapshot_logs: 20_000,
            keep_logs_after_snapshot: 1_000,
            snapshot_chunk_bytes: 4 * 1024 * 1024,
            install_snapshot_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_value_bytes: usize,
    /// Refuse stream writes over 1 MiB/s or 1,000 records/s per shard
    /// (ProvisionedThroughputExceededException), as Kinesis does.
    pub enforce_shard_throughput: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_bytes: crate::kv::model::DEFAULT_MAX_VALUE_BYTES,
            enforce_shard_throughput: false,
        }
    }
}

/// `[stream]`: the stream store's clock and worker (`stream::worker`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Seconds in a retention hour: 3600, or less to make retention pass quickly in tests.
    pub seconds_per_hour: u64,
    /// How often each data group's leader trims records past retention and drops the
    /// logs of deleted streams (and the meta leader finishes stalled reshards).
    pub worker_interval_ms: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            seconds_per_hour: 3600,
            worker_interval_ms: 60_000,
        }
    }
}

/// `[quorum]`: quorum storage (`quorum`), converted into `quorum::QuorumSettings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuorumConfig {
    /// How often each segment compares itself with its peers, materializes pages and
    /// collects garbage; the catalog's repair worker runs every two intervals.
    pub gossip_interval_ms: u64,
    /// Replace a segment whose node has answered nothing for this long (0: never on its own).
    pub replace_after_ms: u64,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        let settings = crate::quorum::QuorumSettings::default();
        QuorumConfig {
            gossip_interval_ms: settings.gossip_interval_ms,
            replace_after_ms: settings.replace_after_ms,
        }
    }
}

impl From<&QuorumConfig> for crate::quorum::QuorumSettings {
    fn from(c: &QuorumConfig) -> Self {
        crate::quorum::QuorumSettings {
            gossip_interval_ms: c.gossip_interval_ms,
            replace_after_ms: c.replace_after_ms,
        }
    }
}

/// `[object]`: pacing of the object store's background workers (`object::workers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectConfig {
    /// How often the leader of a data group looks for shards to rebuild or move.
    pub repair_interval_ms: u64,
    /// Shard bytes the scrubber verifies per second on this node; 0 turns it off.
    pub scrub_bytes_per_second: u64,
    /// Pause between two scrub passes over this node's shards.
    pub scrub_interval_ms: u64,
    /// Pause between two orphan sweeps over this node's shards.
    pub gc_interval_ms: u64,
    /// A shard nothing points to is deleted only once it has been seen so for this long,
    /// so an upload whose metadata is not committed yet keeps its shards.
    pub orphan_grace_ms: u64,
}

impl Default for ObjectConfig {
    fn default() -> Self {
        ObjectConfig {
            repair_interval_ms: 30_000,
            scrub_bytes_per_second: 8 * 1024 * 1024,
            scrub_interval_ms: 24 * 3_600_000,
            gc_interval_ms: 600_000,
            orphan_grace_ms: 3_600_000,
        }
    }
}

fn default_cluster_name() -> String {
    "stratus".into()
}
fn default_grpc_listen() -> String {
    "0.0.0.0:7000".into()
}
fn default_http_listen() -> String {
    "0.0.0.0:4566".into()
}
fn default_data_groups() -> u64 {
    6
}
fn default_request_timeout_ms() -> u64 {
    10_000
}

impl NodeConfig {
    /// Load from an optional TOML file, overlay `STRATUS_*` variables from `env`, validate.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (mut table, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let table: toml::Table =
                    text.parse()
                        .map_err(|e: toml::de::Error| ConfigError::Parse {
                            origin: path.display().to_string(),
                            message: e.to_string(),
                        })?;
                (table, path.display().to_string())
            }
            None => (toml::Table::new(), "from environment".to_string()),
        };
        apply_env(&mut table, env)?;
        let config: NodeConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    origin,
                    message: e.to_string().trim().to_string(),
                })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.node_id == 0 {
            return invalid("node_id must be 1 or more".into());
        }
        if self.cluster_name.trim().is_empty() {
            return invalid("cluster_name must not be empty".into());
        }
        if self.zone.trim().is_empty() {
            return invalid("zone must not be empty".into());
        }
        let Some(me) = self.peers.iter().find(|p| p.id == self.node_id) else {
            return invalid(format!(
                "peers does not list this node (node_id {})",
                self.node_id
            ));
        };
        if me.zone != self.zone {
            return invalid(format!(
                "zone is '{}' but peers lists node {} in zone '{}'",
                self.zone, self.node_id, me.zone
            ));
        }
        let mut ids: Vec<u64> = self.peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return invalid(format!("peers lists node {} twice", w[0]));
        }
        for p in &self.peers {
            if p.id == 0 {
                return invalid("peer ids must be 1 or more".into());
            }
            check_host_port(&format!("peers[id={}].grpc", p.id), &p.grpc)?;
            check_host_port(&format!("peers[id={}].http", p.id), &p.http)?;
        }
        check_listen("grpc_listen", &self.grpc_listen)?;
        check_listen("http_listen", &self.http_listen)?;
        if !(1..=1024).contains(&self.data_groups) {
            return invalid(format!(
                "data_groups must be between 1 and 1024, got {}",
                self.data_groups
            ));
        }
        match &self.credentials {
            None => {
                return invalid(
                    "credentials are required: set [credentials] access_key and secret_key \
                     (or STRATUS_CREDENTIALS__ACCESS_KEY / STRATUS_CREDENTIALS__SECRET_KEY)"
                        .into(),
                )
            }
            Some(c) if c.access_key.is_empty() || c.secret_key.is_empty() => {
                return invalid(
                    "credentials.access_key and credentials.secret_key must not be empty".into(),
                )
            }
            Some(_) => {}
        }
        let r = &self.raft;
        if r.heartbeat_ms == 0 || r.heartbeat_ms >= r.election_timeout_min_ms {
            return invalid(format!(
                "raft.heartbeat_ms ({}) must be above 0 and below raft.election_timeout_min_ms ({})",
                r.heartbeat_ms, r.election_timeout_min_ms
            ));
        }
        if r.election_timeout_min_ms >= r.election_timeout_max_ms {
            return invalid(
                "raft.election_timeout_min_ms must be below raft.election_timeout_max_ms".into(),
            );
        }
        if r.snapshot_logs == 0 || r.snapshot_chunk_bytes < 1024 {
            return invalid(
                "raft.snapshot_logs must be above 0 and raft.snapshot_chunk_bytes at least 1024"
                    .into(),
            );
        }
        if self.limits.max_value_bytes == 0 || self.limits.max_value_bytes > 16 * 1024 * 1024 {
            return invalid("limits.max_value_bytes must be between 1 and 16777216".into());
        }
        if self.request_timeout_ms < 100 {
            return invalid("request_timeout_ms must be at least 100".into());
        }
        if self.stream.seconds_per_hour == 0 || self.stream.worker_interval_ms < 100 {
            return invalid(
                "stream.seconds_per_hour must be at least 1 and stream.worker_interval_ms at least 100"
                    .into(),
            );
        }
        let q = &self.quorum;
        if !(10..=60_000).contains(&q.gossip_interval_ms) {
            return invalid(format!(
                "quorum.gossip_interval_ms must be between 10 and 60000, got {}",
                q.gossip_interval_ms
            ));
        }
        if q.replace_after_ms != 0 && q.replace_after_ms < 2 * q.gossip_interval_ms {
            return invalid(format!(
                "quorum.replace_after_ms must be 0 (never) or at least twice \
                 quorum.gossip_interval_ms ({} ms), got {}",
                2 * q.gossip_interval_ms,
                q.replace_after_ms
            ));
        }
        let o = &self.object;
        if o.repair_interval_ms < 100 || o.gc_interval_ms < 100 || o.scrub_interval_ms < 100 {
            return invalid(
                "object.repair_interval_ms, object.scrub_interval_ms and object.gc_interval_ms \
                 must be at least 100"
                    .into(),
            );
        }
        if o.orphan_grace_ms < 1_000 {
            return invalid(
                "object.orphan_grace_ms must be at least 1000 (an hour or more in production: \
                 uploads in flight keep their shards for that long)"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.peers
            .iter()
            .map(|p| NodeInfo {
                id: p.id,
                zone: p.zone.clone(),
                grpc_addr: p.grpc.clone(),
                http_addr: p.http.clone(),
            })
            .collect()
    }

    pub fn openraft_config(&self) -> Result<openraft::Config, ConfigError> {
        let r = &self.raft;
        openraft::Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: r.heartbeat_ms,
            election_timeout_min: r.election_timeout_min_ms,
            election_timeout_max: r.election_timeout_max_ms,
            install_snapshot_timeout: r.install_snapshot_timeout_ms,
            snapshot_max_chunk_size: r.snapshot_chunk_bytes,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(r.snapshot_logs),
            max_in_snapshot_log_to_keep: r.keep_logs_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ConfigError::Invalid(format!("raft settings: {e}")))
    }
}

fn check_host_port(field: &str, value: &str) -> Result<(), ConfigError> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(ConfigError::Invalid(format!(
            "{field} must be host:port, got '{value}'"
        ))),
    }
}

fn check_listen(field: &str, value: &str) -> Result<(), ConfigError> {
    check_host_port(field, value)?;
    value
        .to_socket_addrs()
        .map(|_| ())
        .map_err(|e| ConfigError::Invalid(format!("{field} '{value}' does not resolve: {e}")))
}

/// Overlay `STRATUS_*` variables onto the table.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (var, raw) in env {
        let Some(name) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = name.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if !TOP_LEVEL_FIELDS.contains(&path[0].as_str()) {
            continue; // e.g. STRATUS_ENDPOINT belongs to the CLI
        }
        let value = parse_env_value(&raw);
        let mut cursor = &mut *table;
        for (i, part) in path.iter().enumerate() {
            if part.is_empty() {
                return Err(ConfigError::Env {
                    var,
                    message: "empty name segment".into(),
                });
            }
            if i + 1 == path.len() {
                cursor.insert(part.clone(), value.clone());
            } else {
                let entry = cursor
                    .entry(part.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                cursor = match entry {
                    toml::Value::Table(t) => t,
                    _ => {
                        return Err(ConfigError::Env {
                            var,
                            message: format!("'{part}' is not a section"),
                        })
                    }
                };
            }
        }
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
node_id = 1
zone = "az-a"
data_dir = "/tmp/x"
[[peers]]
id = 1
zone = "az-a"
grpc = "127.0.0.1:7000"
http = "127.0.0.1:4566"
[credentials]
access_key = "ak"
secret_key = "sk"
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        NodeConfig::load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn a_good_file_loads_with_defaults() {
        let c = load(GOOD, &[]).unwrap();
        assert_eq!(c.cluster_name, "stratus");
        assert_eq!(c.data_groups, 6);
        assert_eq!(c.raft.heartbeat_ms, 100);
        assert!(c.openraft_config().is_ok());
    }

    #[test]
    fn the_documented_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/node.example.toml");
        let c = NodeConfig::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(c.peers.len(), 3);
        assert_eq!(c.raft, RaftSettings::default());
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn env_overrides_any_field() {
        let c = load(
            GOOD,
            &[
                ("STRATUS_DATA_GROUPS", "3"),
                ("STRATUS_RAFT__HEARTBEAT_MS", "50"),
                ("STRATUS_CREDENTIALS__SECRET_KEY", "other"),
                ("STRATUS_CLUSTER_NAME", "prod"),
                ("STRATUS_ENDPOINT", "ignored: belongs to the CLI"),
            ],
        )
        .unwrap();
        assert_eq!(c.data_groups, 3);
        assert_eq!(c.raft.heartbeat_ms, 50);
        assert_eq!(c.credentials.unwrap().secret_key, "other");
        assert_eq!(c.cluster_name, "prod");
    }

    #[test]
    fn object_workers_have_defaults_overrides_and_bounds() {
        let c = load(GOOD, &[]).unwrap();
        assert_eq!(c.object, ObjectConfig::default());
        let c = load(
            GOOD,
            &[
                ("STRATUS_OBJECT__REPAIR_INTERVAL_MS", "200"),
                ("STRATUS_OBJECT__SCRUB_BYTES_PER_SECOND", "0"),
            ],
        )
        .unwrap();
        assert_eq!(c.object.repair_interval_ms, 200);
        assert_eq!(c.object.scrub_bytes_per_second, 0);
        let err = |env: &[(&str, &str)]| load(GOOD, env).unwrap_err().to_string();
        assert!(err(&[("STRATUS_OBJECT__ORPHAN_GRACE_MS", "10")]).contains("orphan_grace_ms"));
        assert!(err(&[("STRATUS_OBJECT__GC_INTERVAL_MS", "0")]).contains("gc_interval_ms"));
        assert!(err(&[("STRATUS_OBJECT__BOGUS", "1")]).contains("bogus"));
    }

    #[test]
    fn stream_settings_have_defaults_overrides_and_bounds() {
        let c = load(GOOD, &[]).unwrap();
        assert_eq!(c.stream, StreamConfig::default());
        assert!(!c.limits.enforce_shard_throughput);
        let c = load(
            GOOD,
            &[
                ("STRATUS_STREAM__SECONDS_PER_HOUR", "1"),
                ("STRATUS_STREAM__WORKER_INTERVAL_MS", "200"),
                ("STRATUS_LIMITS__ENFORCE_SHARD_THROUGHPUT", "true"),
            ],
        )
        .unwrap();
        assert_eq!(c.stream.seconds_per_hour, 1);
        assert_eq!(c.stream.worker_interval_ms, 200);
        assert!(c.limits.enforce_shard_throughput);
        let err = load(GOOD, &[("STRATUS_STREAM__SECONDS_PER_HOUR", "0")]).unwrap_err();
        assert!(err.to_string().contains("seconds_per_hour"));
    }

    #[test]
    fn quorum_settings_have_defaults_overrides_and_bounds() {
        let c = load(GOOD, &[]).unwrap();
        assert_eq!(c.quorum, QuorumConfig::default());
        assert_eq!(
            crate::quorum::QuorumSettings::from(&c.quorum),
            crate::quorum::QuorumSettings {
                gossip_interval_ms: 500,
                replace_after_ms: 0
            }
        );
        let c = load(
            &format!("{GOOD}\n[quorum]\ngossip_interval_ms = 100\nreplace_after_ms = 5000\n"),
            &[],
        )
        .unwrap();
        assert_eq!(
            (c.quorum.gossip_interval_ms, c.quorum.replace_after_ms),
            (100, 5000)
        );
        let c = load(GOOD, &[("STRATUS_QUORUM__REPLACE_AFTER_MS", "3000")]).unwrap();
        assert_eq!(c.quorum.replace_after_ms, 3000);
        let err = |env: &[(&str, &str)]| load(GOOD, env).unwrap_err().to_string();
        for bad in ["0", "9", "60001"] {
            let e = err(&[("STRATUS_QUORUM__GOSSIP_INTERVAL_MS", bad)]);
            assert!(
                e.contains("quorum.gossip_interval_ms must be between 10 and 60000"),
                "{e}"
            );
        }
        let e = err(&[("STRATUS_QUORUM__REPLACE_AFTER_MS", "999")]);
        assert!(e.contains("quorum.replace_after_ms"), "{e}");
        assert!(err(&[("STRATUS_QUORUM__BOGUS", "1")]).contains("bogus"));
    }

    #[test]
    fn env_alone_is_a_complete_config() {
        let env = [
            ("STRATUS_NODE_ID", "2"),
            ("STRATUS_ZONE", "az-b"),
            ("STRATUS_DATA_DIR", "/data"),
            (
                "STRATUS_PEERS",
                r#"[{id=2, zone="az-b", grpc="n2:7000", http="n2:4566"}]"#,
            ),
            ("STRATUS_CREDENTIALS__ACCESS_KEY", "a"),
            ("STRATUS_CREDENTIALS__SECRET_KEY", "b"),
        ];
        let c = NodeConfig::load(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        assert_eq!(c.node_id, 2);
        assert_eq!(c.peers[0].grpc, "n2:7000");
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let err = |text: &str| load(text, &[]).unwrap_err().to_string();
        assert!(err("node_id = ").contains("config"), "syntax error");
        assert!(err(&GOOD.replace("node_id = 1", "node_id = \"one\"")).contains("node_id"));
        assert!(err(&format!("{GOOD}\nbogus = 1")).contains("bogus"));
        assert!(err(&GOOD.replace(
            "[credentials]\naccess_key = \"ak\"\nsecret_key = \"sk\"",
            ""
        ))
        .contains("credentials are required"));
        assert!(
            err(&GOOD.replace("node_id = 1", "node_id = 9")).contains("does not list this node")
        );
        assert!(
            err(&GOOD.replace("grpc = \"127.0.0.1:7000\"", "grpc = \"nope\""))
                .contains("host:port")
        );
        assert!(
            err(&GOOD.replace("zone = \"az-a\"\ndata_dir", "zone = \"az-b\"\ndata_dir"))
                .contains("zone")
        );
        let missing = load("node_id = 1", &[]).unwrap_err().to_string();
        assert!(missing.contains("missing field"), "{missing}");
        let e = NodeConfig::load(Some(Path::new("/nonexistent/x.toml")), Vec::new()).unwrap_err();
        assert!(e.to_string().contains("cannot read config file"));
    }
}
