//! Counters and latency histograms for node-to-node RPCs, rendered as Prometheus text.
//! Raft-state gauges (terms, indexes, lag) are read from openraft's metrics at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS_S.len()],
    count: u64,
    sum_s: f64,
}

/// Key: (group, rpc name, outcome).
type RpcKey = (u64, &'static str, &'static str);

#[derive(Debug, Default)]
pub struct RpcMetrics {
    rpcs: Mutex<BTreeMap<RpcKey, Histogram>>,
}

impl RpcMetrics {
    pub fn record(&self, group: u64, rpc: &'static str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        let secs = elapsed.as_secs_f64();
        let mut rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        let h = rpcs.entry((group, rpc, outcome)).or_default();
        h.count += 1;
        h.sum_s += secs;
        for (i, bound) in BUCKETS_S.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
    }

    /// Append the RPC series to a Prometheus text exposition.
    pub fn render(&self, node_id: u64, out: &mut String) {
        let rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            out,
            "# HELP stratus_rpc_total Node-to-node RPCs sent, by group, rpc and outcome."
        );
        let _ = writeln!(out, "# TYPE stratus_rpc_total counter");
        for ((group, rpc, outcome), h) in rpcs.iter() {
            let _ = writeln!(
                out,
                "stratus_rpc_total{{node=\"{node_id}\",group=\"{group}\",rpc=\"{rpc}\",outcome=\"{outcome}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP stratus_rpc_seconds Latency of node-to-node RPCs."
        );
        let _ = writeln!(out, "# TYPE stratus_rpc_seconds histogram");
        for ((group, rpc, outcome), h) in rpcs.iter() {
            let labels =
                format!("node=\"{node_id}\",group=\"{group}\",rpc=\"{rpc}\",outcome=\"{outcome}\"");
            for (bound, count) in BUCKETS_S.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "stratus_rpc_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "stratus_rpc_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "stratus_rpc_seconds_sum{{{labels}}} {}", h.sum_s);
            let _ = writeln!(out, "stratus_rpc_seconds_count{{{labels}}} {}", h.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = RpcMetrics::default();
        m.record(3, "append", true, Duration::from_millis(2));
        m.record(3, "append", true, Duration::from_millis(200));
        let mut out = String::new();
        m.render(1, &mut out);
        assert!(out
            .contains("stratus_rpc_total{node=\"1\",group=\"3\",rpc=\"append\",outcome=\"ok\"} 2"));
        assert!(out.contains("le=\"0.0025\"} 1"), "{out}");
        assert!(out.contains("le=\"0.25\"} 2"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 2"));
    }
}
