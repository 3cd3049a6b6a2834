//! The machine-readable output: one JSON object per line on stdout, one line per result.
//! Field names carry their units (`_ms`, `_s`, `_bytes`, `ops_per_s`, `mb_per_s` in
//! 10^6 bytes per second); a value that could not be measured is `null`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::fsync::{FsyncMeasurement, FsyncProbe};
use crate::kv::PhaseOutcome;
use crate::latency::LatencySummary;

/// `{"bench":"fsync",...}`: the disk's durable-write latency.
#[derive(Debug, Clone, Serialize)]
pub struct FsyncReport {
    pub bench: &'static str,
    pub dir: String,
    pub iterations: usize,
    pub write_bytes: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub ops_per_s: f64,
}

impl FsyncReport {
    pub fn new(dir: &Path, probe: &FsyncProbe, measurement: &FsyncMeasurement) -> Self {
        let summary = LatencySummary::from_samples(measurement.samples.clone());
        Self {
            bench: "fsync",
            dir: dir.display().to_string(),
            iterations: measurement.samples.len(),
            write_bytes: probe.write_bytes,
            p50_ms: summary.map(|s| round(s.p50_ms, 3)),
            p99_ms: summary.map(|s| round(s.p99_ms, 3)),
            p999_ms: summary.map(|s| round(s.p999_ms, 3)),
            max_ms: summary.map(|s| round(s.max_ms, 3)),
            ops_per_s: round(
                rate(measurement.samples.len() as f64, measurement.elapsed),
                1,
            ),
        }
    }
}

/// `{"bench":"kv_put",...}` or `{"bench":"kv_get",...}`: one closed-loop phase.
#[derive(Debug, Clone, Serialize)]
pub struct KvReport {
    pub bench: &'static str,
    pub clients: usize,
    pub value_bytes: usize,
    pub duration_s: f64,
    /// Successful requests.
    pub ops: u64,
    pub ops_per_s: f64,
    pub mb_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Failed or timed-out requests (not counted in `ops` or the latencies).
    pub errors: u64,
    /// Gets that found no value (only for `kv_get`; should be 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub misses: Option<u64>,
    /// The fsync p50 of the same run, and this phase's p50 divided by it.
    pub fsync_p50_ms: Option<f64>,
    pub ratio_p50_vs_fsync: Option<f64>,
    /// The first error seen, to tell a down cluster from a slow one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_sample: Option<String>,
}

impl KvReport {
    pub fn new(
        bench: &'static str,
        clients: usize,
        value_bytes: usize,
        outcome: &PhaseOutcome,
        fsync_p50_ms: Option<f64>,
    ) -> Self {
        let summary = LatencySummary::from_samples(outcome.latencies.clone());
        let p50_ms = summary.map(|s| s.p50_ms);
        let ratio = match (p50_ms, fsync_p50_ms) {
            (Some(p50), Some(fsync)) if fsync > 0.0 => Some(round(p50 / fsync, 2)),
            _ => None,
        };
        let ops = outcome.ops as f64;
        Self {
            bench,
            clients,
            value_bytes,
            duration_s: round(outcome.elapsed.as_secs_f64(), 3),
            ops: outcome.ops,
            ops_per_s: round(rate(ops, outcome.elapsed), 1),
            mb_per_s: round(rate(ops * value_bytes as f64, outcome.elapsed) / 1e6, 3),
            p50_ms: p50_ms.map(|v| round(v, 3)),
            p99_ms: summary.map(|s| round(s.p99_ms, 3)),
            p999_ms: summary.map(|s| round(s.p999_ms, 3)),
            max_ms: summary.map(|s| round(s.max_ms, 3)),
            errors: outcome.errors,
            misses: (bench == "kv_get").then_some(outcome.misses),
            fsync_p50_ms,
            ratio_p50_vs_fsync: ratio,
            error_sample: outcome.error_sample.clone(),
        }
    }
}

/// Writes `line` as one JSON line to stdout and flushes it, so results appear as they come.
pub fn emit(line: &impl Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string(line)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// `count` per second over `elapsed`; 0 for an empty interval.
fn rate(count: f64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count / seconds
    } else {
        0.0
    }
}

/// `value` rounded to `decimals` places, to keep the lines readable.
fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(latencies_ms: &[u64], errors: u64, elapsed_s: u64) -> PhaseOutcome {
        PhaseOutcome {
            latencies: latencies_ms
                .iter()
                .map(|&v| Duration::from_millis(v))
                .collect(),
            ops: latencies_ms.len() as u64,
            errors,
            misses: 0,
            elapsed: Duration::from_secs(elapsed_s),
            error_sample: None,
            written_keys: Vec::new(),
        }
    }

    #[test]
    fn kv_line_has_rates_percentiles_and_the_fsync_ratio() {
        let report = KvReport::new("kv_put", 4, 1000, &outcome(&[2, 4, 6, 8], 1, 2), Some(2.0));
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["bench"], "kv_put");
        assert_eq!(json["clients"], 4);
        assert_eq!(json["value_bytes"], 1000);
        assert_eq!(json["duration_s"], 2.0);
        assert_eq!(json["ops"], 4);
        assert_eq!(json["ops_per_s"], 2.0);
        assert_eq!(json["mb_per_s"], 0.002);
        assert_eq!(json["p50_ms"], 4.0);
        assert_eq!(json["p99_ms"], 8.0);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["ratio_p50_vs_fsync"], 2.0);
        assert!(json.get("misses").is_none());
        assert!(json.get("error_sample").is_none());
        let line = serde_json::to_string(&report).unwrap();
        assert!(!line.contains('\n'));
    }

    #[test]
    fn no_successes_give_nulls_not_nans() {
        let report = KvReport::new("kv_get", 1, 100, &outcome(&[], 3, 0), None);
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ops_per_s"], 0.0);
        assert!(json["p50_ms"].is_null());
        assert!(json["ratio_p50_vs_fsync"].is_null());
        assert_eq!(json["misses"], 0);
    }

    #[test]
    fn fsync_line() {
        let measurement = FsyncMeasurement {
            samples: vec![Duration::from_millis(1), Duration::from_millis(3)],
            elapsed: Duration::from_millis(4),
        };
        let report = FsyncReport::new(Path::new("/data"), &FsyncProbe::default(), &measurement);
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["bench"], "fsync");
        assert_eq!(json["iterations"], 2);
        assert_eq!(json["p50_ms"], 1.0);
        assert_eq!(json["p99_ms"], 3.0);
        assert_eq!(json["ops_per_s"], 500.0);
        assert_eq!(json["dir"], "/data");
    }

    #[test]
    fn rounding() {
        assert_eq!(round(1.23456, 3), 1.235);
        assert_eq!(round(2.0 / 3.0, 1), 0.7);
    }
}
