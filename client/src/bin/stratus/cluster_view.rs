//! `stratus cluster status`: the cluster as readable tables, or as JSON.

use stratus_client::{ClusterStatus, GroupStatus, NodeStatus};

use crate::table;

/// The status as a summary line followed by a node table and a group table, sorted by id.
pub fn render_tables(status: &ClusterStatus) -> String {
    let mut nodes: Vec<&NodeStatus> = status.nodes.iter().collect();
    nodes.sort_by_key(|n| n.id);
    let mut groups: Vec<&GroupStatus> = status.groups.iter().collect();
    groups.sort_by_key(|g| g.id);

    let nodes_up = nodes.iter().filter(|n| n.up).count();
    let groups_led = groups.iter().filter(|g| g.leader.is_some()).count();
    let mut out = format!(
        "cluster {} (answered by node {}): {nodes_up}/{} nodes up, {groups_led}/{} groups with a leader\n\n",
        display_or_dash(&status.cluster_name),
        status.responder,
        nodes.len(),
        groups.len(),
    );

    let node_rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                display_or_dash(&n.zone),
                display_or_dash(&n.grpc_addr),
                display_or_dash(&n.http_addr),
                if n.up { "up" } else { "DOWN" }.to_string(),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &["NODE", "ZONE", "GRPC", "HTTP", "STATE"],
        &node_rows,
    ));
    out.push('\n');

    let group_rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.id.to_string(),
                display_or_dash(&g.kind),
                voter_list(&g.voters),
                g.leader
                    .map_or_else(|| "none".to_string(), |l| l.to_string()),
                g.term.to_string(),
                g.last_log_index.to_string(),
                g.applied_index.to_string(),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "GROUP", "KIND", "VOTERS", "LEADER", "TERM", "LAST LOG", "APPLIED",
        ],
        &group_rows,
    ));
    out
}

/// The status as pretty-printed JSON (the client's domain types, `leader` null when none).
pub fn render_json(status: &ClusterStatus) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(status)?;
    text.push('\n');
    Ok(text)
}

fn voter_list(voters: &[u64]) -> String {
    if voters.is_empty() {
        return "-".to_string();
    }
    voters
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn display_or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClusterStatus {
        ClusterStatus {
            cluster_name: "dev".to_string(),
            responder: 1,
            nodes: vec![
                NodeStatus {
                    id: 2,
                    zone: "zone-b".to_string(),
                    grpc_addr: "127.0.0.1:7001".to_string(),
                    http_addr: "127.0.0.1:4567".to_string(),
                    up: false,
                },
                NodeStatus {
                    id: 1,
                    zone: "zone-a".to_string(),
                    grpc_addr: "127.0.0.1:7000".to_string(),
                    http_addr: "127.0.0.1:4566".to_string(),
                    up: true,
                },
            ],
            groups: vec![
                GroupStatus {
                    id: 1,
                    kind: "data".to_string(),
                    voters: vec![1, 2, 3],
                    leader: None,
                    term: 4,
                    last_log_index: 10,
                    applied_index: 9,
                    snapshot_index: 0,
                },
                GroupStatus {
                    id: 0,
                    kind: "meta".to_string(),
                    voters: vec![1, 2, 3],
                    leader: Some(1),
                    term: 3,
                    last_log_index: 120,
                    applied_index: 120,
                    snapshot_index: 100,
                },
            ],
        }
    }

    #[test]
    fn tables_show_nodes_and_groups_sorted_with_a_summary() {
        let expected = "\
cluster dev (answered by node 1): 1/2 nodes up, 1/2 groups with a leader

NODE  ZONE    GRPC            HTTP            STATE
1     zone-a  127.0.0.1:7000  127.0.0.1:4566  up
2     zone-b  127.0.0.1:7001  127.0.0.1:4567  DOWN

GROUP  KIND  VOTERS  LEADER  TERM  LAST LOG  APPLIED
0      meta  1,2,3   1       3     120       120
1      data  1,2,3   none    4     10        9
";
        assert_eq!(render_tables(&sample()), expected);
    }

    #[test]
    fn empty_fields_show_a_dash() {
        let status = ClusterStatus {
            cluster_name: String::new(),
            responder: 7,
            nodes: vec![NodeStatus {
                id: 7,
                zone: String::new(),
                grpc_addr: "h:1".to_string(),
                http_addr: String::new(),
                up: true,
            }],
            groups: vec![],
        };
        let text = render_tables(&status);
        assert!(text.starts_with("cluster - (answered by node 7): 1/1 nodes up, 0/0 groups"));
        assert!(text.contains("7     -     h:1   -     up\n"), "{text}");
    }

    #[test]
    fn json_has_every_field_and_null_for_no_leader() {
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&sample()).unwrap()).unwrap();
        assert_eq!(json["cluster_name"], "dev");
        assert_eq!(json["nodes"][0]["id"], 2);
        assert_eq!(json["nodes"][0]["up"], false);
        assert_eq!(json["groups"][0]["leader"], serde_json::Value::Null);
        assert_eq!(json["groups"][1]["leader"], 1);
        assert_eq!(json["groups"][1]["snapshot_index"], 100);
    }
}
