//! Bad input from every side — gRPC payloads, unknown groups, oversized values, HTTP
//! garbage, broken configs, a data directory from another cluster — gets a clear error and
//! never takes a node down.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use stratus_node::kv::model::KvReply;
use stratus_node::raft::{codec, Proposal};
use stratus_proto::kv::{GetRequest, PutRequest, ScanRequest};
use stratus_proto::raft::group_router_client::GroupRouterClient;
use stratus_proto::raft::raft_transport_client::RaftTransportClient;
use stratus_proto::raft::RaftMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

fn message(cluster: &str, group: u64, payload: Vec<u8>) -> RaftMessage {
    RaftMessage {
        cluster: cluster.into(),
        group_id: group,
        payload,
    }
}

async fn http_get(addr: &str, raw_request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect http");
    stream.write_all(raw_request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn malformed_requests_get_clear_errors_and_the_node_stays_up() {
    let _serial = serial().await;
    let mut c = TestCluster::start(Options {
        nodes: 3,
        data_groups: 2,
        ..Options::default()
    });
    c.wait_ready(Duration::from_secs(60)).await;
    let ep = format!("http://{}", c.node(1).grpc);
    let mut raft = RaftTransportClient::new(channel(&ep).unwrap());
    let mut router = GroupRouterClient::new(channel(&ep).unwrap());

    // Garbage where an openraft message should be.
    let e = raft
        .append_entries(message("test", 1, vec![0xff; 64]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("malformed"), "{e:?}");
    let e = raft.vote(message("test", 1, vec![])).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = raft
        .install_snapshot(message("test", 1, vec![1, 2, 3]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // A length prefix claiming gigabytes must not allocate them.
    let e = router
        .propose(message("test", 1, vec![0xff; 40]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Unknown group and foreign cluster.
    let e = raft
        .append_entries(message("test", 999, vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("999"));
    let e = raft
        .vote(message("someone-else", 1, vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("someone-else"));

    // A well-formed proposal whose command is garbage is rejected by the state machine,
    // identically on every replica, not by a crash.
    let leader = c.leader_of(1).await.unwrap();
    let mut to_leader =
        GroupRouterClient::new(channel(&format!("http://{}", c.node(leader).grpc)).unwrap());
    let proposal = Proposal {
        request_id: 42,
        now_ms: 1,
        command: vec![9, 9, 9],
    };
    let reply = to_leader
        .propose(message("test", 1, codec::encode(&proposal)))
        .await
        .unwrap()
        .into_inner();
    let reply: Result<Vec<u8>, stratus_node::raft::router::RouteError> =
        codec::decode(&reply.payload).unwrap();
    let reply: KvReply = codec::decode(&reply.unwrap()).unwrap();
    assert!(matches!(reply, KvReply::Rejected(_)), "{reply:?}");

    // KV input limits.
    let mut kv = c.client().endpoint(0);
    let put = |key: Vec<u8>, value: Vec<u8>| PutRequest {
        key,
        value,
        ..Default::default()
    };
    let e = kv.put(put(vec![], b"v".to_vec())).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("empty"));
    let e = kv
        .put(put(vec![b'k'; 4097], b"v".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = kv
        .put(put(b"k".to_vec(), vec![0; 1024 * 1024 + 1]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("limit is 1048576"), "{e:?}");
    let e = kv
        .put(put(b"k".to_vec(), vec![0; 20 * 1024 * 1024]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code(),
            Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument
        ),
        "{e:?}"
    );
    let e = kv.get(GetRequest { key: vec![] }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = kv
        .scan(ScanRequest {
            prefix: vec![],
            start_after: vec![],
            limit: 1_000_000,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // HTTP: other paths belong to the S3 API, which refuses an unsigned request with an
    // S3 error document; garbage bytes; then the real endpoints.
    let http = c.node(1).http.clone();
    let resp = http_get(
        &http,
        b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("<Code>AccessDenied</Code>"), "{resp}");
    let resp = http_get(&http, b"\x00\x01garbage\r\n\r\n").await;
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 400"),
        "{resp}"
    );
    let resp = http_get(
        &http,
        b"GET /_stratus/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.contains("\"zone\":\"az-a\"") && resp.contains("\"status\":\"ok\""),
        "{resp}"
    );
    let resp = http_get(
        &http,
        b"GET /_stratus/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        resp.contains("stratus_raft_term{node=\"1\",group=\"0\"}"),
        "{resp}"
    );
    assert!(resp.contains("stratus_rpc_total"), "{resp}");
    let resp = http_get(
        &http,
        b"GET /_stratus/health/node HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.contains("\"groups\""),
        "{resp}"
    );
    let probe = Command::new(stratusd())
        .args(["health", "--addr", &http])
        .output()
        .unwrap();
    assert!(probe.status.success(), "{probe:?}");

    // Every node is still up and serving.
    for id in 1..=3 {
        assert!(c.local_report(id).await.is_some(), "node {id} went down");
    }
    let client = c.client();
    assert!(matches!(client.put("after", b"ok").await, Outcome::Ok(_)));
    assert_eq!(client.get("after").await, Outcome::Ok(Some(b"ok".to_vec())));
    assert!(!c.log_of(1).contains("panicked"));
    c.kill(1);
    let probe = Command::new(stratusd())
        .args(["health", "--addr", &http])
        .output()
        .unwrap();
    assert!(
        !probe.status.success(),
        "a killed node must fail its healthcheck"
    );
}

fn run_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(stratusd())
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("STRATUS_CREDENTIALS__ACCESS_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn single_node_config(data_dir: &std::path::Path, cluster: &str, ports: &[u16]) -> String {
    format!(
        "node_id = 1\nzone = \"az-a\"\ndata_dir = \"{}\"\ncluster_name = \"{cluster}\"\n\
         grpc_listen = \"127.0.0.1:{g}\"\nhttp_listen = \"127.0.0.1:{h}\"\ndata_groups = 1\n\
         [credentials]\naccess_key = \"a\"\nsecret_key = \"b\"\n\
         [[peers]]\nid = 1\nzone = \"az-a\"\ngrpc = \"127.0.0.1:{g}\"\nhttp = \"127.0.0.1:{h}\"\n",
        data_dir.display(),
        g = ports[0],
        h = ports[1]
    )
}

#[test]
fn broken_configs_are_refused_with_a_clear_message() {
    let (ok, err) = run_config("node_id = [");
    assert!(!ok);
    assert!(err.contains("config") && !err.contains("panicked"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let good = single_node_config(dir.path(), "c", &free_ports(2));
    let (ok, err) = run_config(&good.replace("node_id = 1", "node_id = \"x\""));
    assert!(!ok);
    assert!(err.contains("node_id"), "{err}");

    let no_credentials = good.replace(
        "[credentials]\naccess_key = \"a\"\nsecret_key = \"b\"\n",
        "",
    );
    let (ok, err) = run_config(&no_credentials);
    assert!(!ok);
    assert!(err.contains("credentials are required"), "{err}");

    let (ok, err) = run_config(&good.replace("data_groups = 1", "data_groups = 0"));
    assert!(!ok);
    assert!(err.contains("data_groups"), "{err}");
}

#[tokio::test]
async fn a_data_dir_from_another_cluster_is_refused() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = free_ports(2);
    let config = dir.path().join("first.toml");
    std::fs::write(&config, single_node_config(&data, "first", &ports)).unwrap();
    let mut child = Command::new(stratusd())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it serves, so its identity is on disk.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        let ch = channel(&format!("http://127.0.0.1:{}", ports[0])).unwrap();
        let mut client = stratus_proto::cluster::cluster_client::ClusterClient::new(ch);
        if let Ok(r) = client
            .local_status(stratus_proto::cluster::StatusRequest {})
            .await
        {
            break r.into_inner();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "single node did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report.cluster_name, "first");
    child.kill().unwrap();
    child.wait().unwrap();

    let (ok, err) = run_config(&single_node_config(&data, "second", &free_ports(2)));
    assert!(!ok);
    assert!(
        err.contains("belongs to node 1 of cluster 'first'"),
        "{err}"
    );
}
