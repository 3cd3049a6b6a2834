//! The machine-readable output: one JSON object per line on stdout, one line per result.
//! Field names carry their units (`_ms`, `_s`, `_bytes`, `ops_per_s`, `mb_per_s` in
//! 10^6 bytes per second); a value that could not be measured is `null`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::cpu::{self, CpuUse};
use crate::fsync::{FsyncMeasurement, FsyncProbe};
use crate::kinesis::{CatchUpOutcome, IngestOutcome, IngestSpec, LatencyOutcome, LatencySpec};
use crate::kv::PhaseOutcome;
use crate::latency::LatencySummary;
use crate::limits::Throughput;
use crate::s3::S3Outcome;
use crate::sqs::{RequestTally, SqsOutcome, SqsPhaseSpec};

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
    /// When the server's CPU was measured (the sqs scenario's probe): its CPU seconds in
    /// the phase and milliseconds of it per successful request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_ms_per_op: Option<f64>,
}

impl KvReport {
    /// Adds the server's CPU seconds over the phase.
    pub fn with_server_cpu(self, server_s: Option<f64>) -> Self {
        let ops = self.ops;
        Self {
            server_cpu_s: server_s.map(|s| round(s, 2)),
            server_cpu_ms_per_op: server_s
                .filter(|_| ops > 0)
                .map(|s| round(s * 1000.0 / ops as f64, 4)),
            ..self
        }
    }

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
            server_cpu_s: None,
            server_cpu_ms_per_op: None,
        }
    }
}

/// `{"bench":"s3_put",...}` or `{"bench":"s3_get",...}`: one closed-loop S3 phase.
#[derive(Debug, Clone, Serialize)]
pub struct S3Report {
    pub bench: &'static str,
    pub object_bytes: usize,
    pub clients: usize,
    pub endpoints: usize,
    pub duration_s: f64,
    /// Successful requests, and the object bytes they moved.
    pub ops: u64,
    pub bytes: u64,
    pub ops_per_s: f64,
    pub mb_per_s: f64,
    /// Latency to the last body byte.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Gets only: time to the response headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_p99_ms: Option<f64>,
    /// Failed or timed-out requests (not counted in `ops` or the latencies).
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_sample: Option<String>,
    /// CPU seconds the benchmark itself used in the phase.
    pub client_cpu_s: Option<f64>,
    /// CPU seconds the server process (`--server-pid`) used in the phase, and that as
    /// cores on average: on a shared machine, what the server actually got.
    pub server_cpu_s: Option<f64>,
    pub server_cores: Option<f64>,
    /// Server CPU seconds per 10^9 object bytes moved: the price of a byte through the
    /// server, independent of how much CPU the machine could spare.
    pub server_cpu_s_per_gb: Option<f64>,
    /// Seconds the server's threads were ready to run but waited for a CPU (other load,
    /// or the server's own threads outnumbering the cores); a lower bound.
    pub server_runq_wait_s: Option<f64>,
}

impl S3Report {
    pub fn new(
        bench: &'static str,
        object_bytes: usize,
        clients: usize,
        endpoints: usize,
        outcome: &S3Outcome,
        cpu: CpuUse,
    ) -> Self {
        let seconds = outcome.elapsed.as_secs_f64();
        let summary = LatencySummary::from_samples(outcome.latencies.clone());
        let first_byte = LatencySummary::from_samples(outcome.first_byte.clone());
        Self {
            bench,
            object_bytes,
            clients,
            endpoints,
            duration_s: round(outcome.elapsed.as_secs_f64(), 3),
            ops: outcome.ops,
            bytes: outcome.bytes,
            ops_per_s: round(rate(outcome.ops as f64, outcome.elapsed), 1),
            mb_per_s: round(rate(outcome.bytes as f64, outcome.elapsed) / 1e6, 3),
            p50_ms: summary.map(|s| round(s.p50_ms, 3)),
            p99_ms: summary.map(|s| round(s.p99_ms, 3)),
            p999_ms: summary.map(|s| round(s.p999_ms, 3)),
            max_ms: summary.map(|s| round(s.max_ms, 3)),
            first_byte_p50_ms: first_byte.map(|s| round(s.p50_ms, 3)),
            first_byte_p99_ms: first_byte.map(|s| round(s.p99_ms, 3)),
            errors: outcome.errors,
            error_sample: outcome.error_sample.clone(),
            client_cpu_s: cpu.client_s.map(|s| round(s, 2)),
            server_cpu_s: cpu.server_s.map(|s| round(s, 2)),
            server_cores: cpu
                .server_s
                .filter(|_| seconds > 0.0)
                .map(|s| round(s / seconds, 2)),
            server_cpu_s_per_gb: cpu
                .server_s
                .filter(|_| outcome.bytes > 0)
                .map(|s| round(s / (outcome.bytes as f64 / 1e9), 3)),
            server_runq_wait_s: cpu.server_runq_wait_s.map(|s| round(s, 2)),
        }
    }
}

/// `{"bench":"sqs",...}`: one phase of producers and consumers on one queue.
///
/// Rates count what was answered within the phase's window; `msgs_per_s` counts messages
/// whose delete was acknowledged (sent, received and deleted: end to end).
#[derive(Debug, Clone, Serialize)]
pub struct SqsReport {
    pub bench: &'static str,
    /// `standard` or `fifo`.
    pub queue_type: &'static str,
    /// Messages per send, and most per receive.
    pub batch: usize,
    /// Producers, and as many consumers.
    pub clients: usize,
    pub endpoints: usize,
    /// FIFO only: message groups the messages rotate over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_groups: Option<usize>,
    pub body_bytes: usize,
    /// Most messages producers may be ahead of consumers.
    pub max_backlog: usize,
    pub duration_s: f64,
    /// Messages received and deleted, and that per second.
    pub msgs: u64,
    pub msgs_per_s: f64,
    /// `msgs_per_s` over the first and the second half of the window.
    pub msgs_per_s_first_half: f64,
    pub msgs_per_s_second_half: f64,
    pub sent_msgs_per_s: f64,
    pub received_msgs_per_s: f64,
    pub send_requests_per_s: f64,
    pub receive_requests_per_s: f64,
    pub delete_requests_per_s: f64,
    /// Sends, receives and deletes per second: each is one Raft command of the queue's
    /// group.
    pub requests_per_s: f64,
    /// Receives answered without a message (long polls that timed out).
    pub empty_receives: u64,
    /// End to end: the producer starting the send to a consumer holding the message.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Latency of the requests themselves (receives: those that returned messages).
    pub send_p50_ms: Option<f64>,
    pub send_p99_ms: Option<f64>,
    pub receive_p50_ms: Option<f64>,
    pub receive_p99_ms: Option<f64>,
    pub delete_p50_ms: Option<f64>,
    pub delete_p99_ms: Option<f64>,
    /// Failed or timed-out requests plus failed batch entries, by kind and in all.
    pub errors: u64,
    pub send_errors: u64,
    pub receive_errors: u64,
    pub delete_errors: u64,
    /// Received messages this phase did not send (should be 0).
    pub foreign_messages: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_sample: Option<String>,
    /// The goal for this batch size (issue 5: 10,000 msg/s with batches of 10), the
    /// phase's `msgs_per_s` divided by it, and whether it was met.
    pub goal_msgs_per_s: Option<f64>,
    pub ratio_to_goal: Option<f64>,
    pub met: Option<bool>,
    /// Same-run limits: the disk's fsync p50, and closed-loop KV puts (each one Raft
    /// command) per second with as many requests in flight as this phase (2 x clients).
    pub fsync_p50_ms: Option<f64>,
    pub kv_put_ops_per_s: Option<f64>,
    pub kv_put_p50_ms: Option<f64>,
    /// Server CPU per KV put in that probe (one Raft command end to end), and per request
    /// (send, receive or delete: one Raft command each) in this phase.
    pub kv_put_server_cpu_ms_per_op: Option<f64>,
    pub server_cpu_ms_per_request: Option<f64>,
    /// CPU seconds the benchmark itself used in the window.
    pub client_cpu_s: Option<f64>,
    /// CPU the server (`--server-pid`) used in the window: seconds, cores, and
    /// milliseconds per message end to end.
    pub server_cpu_s: Option<f64>,
    pub server_cores: Option<f64>,
    pub server_cpu_ms_per_msg: Option<f64>,
    /// The same over the first and the second half of the window: a cost per message
    /// that grows while messages pass through the queue shows here, whatever the load.
    pub server_cpu_ms_per_msg_first_half: Option<f64>,
    pub server_cpu_ms_per_msg_second_half: Option<f64>,
    /// Seconds the server's threads were ready to run but waited for a CPU.
    pub server_runq_wait_s: Option<f64>,
}

/// The limits an SQS phase is read against, measured in the same run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SqsLimits {
    pub fsync_p50_ms: Option<f64>,
    pub kv_put_ops_per_s: Option<f64>,
    pub kv_put_p50_ms: Option<f64>,
    pub kv_put_server_cpu_ms_per_op: Option<f64>,
    pub goal_msgs_per_s: Option<f64>,
}

impl SqsReport {
    pub fn new(
        spec: &SqsPhaseSpec,
        endpoints: usize,
        outcome: &SqsOutcome,
        limits: SqsLimits,
    ) -> Self {
        let window = outcome.window;
        let seconds = window.as_secs_f64();
        let per_s = |count: u64| round(rate(count as f64, window), 1);
        let summary = LatencySummary::from_samples(outcome.end_to_end.clone());
        let p = |tally: &RequestTally| LatencySummary::from_samples(tally.latencies.clone());
        let (send, receive, delete) =
            (p(&outcome.sends), p(&outcome.receives), p(&outcome.deletes));
        let ms =
            |s: Option<LatencySummary>, f: fn(&LatencySummary) -> f64| s.map(|s| round(f(&s), 3));
        let msgs = outcome.completed();
        let first_half = outcome.completed_first_half;
        let requests =
            outcome.sends.requests + outcome.receives.requests + outcome.deletes.requests;
        let msgs_per_s = rate(msgs as f64, window);
        let goal = limits.goal_msgs_per_s.filter(|g| *g > 0.0);
        let cpu = outcome.cpu;
        let half = outcome.cpu_first_half;
        let per_msg = |server_s: Option<f64>, msgs: u64| {
            server_s
                .filter(|_| msgs > 0)
                .map(|s| round(s * 1000.0 / msgs as f64, 4))
        };
        Self {
            bench: "sqs",
            queue_type: spec.queue_type.as_str(),
            batch: spec.batch,
            clients: spec.clients,
            endpoints,
            message_groups: (spec.queue_type == crate::sqs::QueueType::Fifo)
                .then_some(spec.message_groups),
            body_bytes: spec.body_bytes,
            max_backlog: spec.max_backlog,
            duration_s: round(seconds, 3),
            msgs,
            msgs_per_s: round(msgs_per_s, 1),
            msgs_per_s_first_half: round(rate(first_half as f64, window / 2), 1),
            msgs_per_s_second_half: round(
                rate(msgs.saturating_sub(first_half) as f64, window / 2),
                1,
            ),
            sent_msgs_per_s: per_s(outcome.sends.messages),
            received_msgs_per_s: per_s(outcome.receives.messages),
            send_requests_per_s: per_s(outcome.sends.requests),
            receive_requests_per_s: per_s(outcome.receives.requests),
            delete_requests_per_s: per_s(outcome.deletes.requests),
            requests_per_s: per_s(requests),
            empty_receives: outcome.empty_receives,
            p50_ms: ms(summary, |s| s.p50_ms),
            p99_ms: ms(summary, |s| s.p99_ms),
            p999_ms: ms(summary, |s| s.p999_ms),
            max_ms: ms(summary, |s| s.max_ms),
            send_p50_ms: ms(send, |s| s.p50_ms),
            send_p99_ms: ms(send, |s| s.p99_ms),
            receive_p50_ms: ms(receive, |s| s.p50_ms),
            receive_p99_ms: ms(receive, |s| s.p99_ms),
            delete_p50_ms: ms(delete, |s| s.p50_ms),
            delete_p99_ms: ms(delete, |s| s.p99_ms),
            errors: outcome.errors(),
            send_errors: outcome.sends.errors,
            receive_errors: outcome.receives.errors,
            delete_errors: outcome.deletes.errors,
            foreign_messages: outcome.foreign_messages,
            error_sample: outcome.error_sample.clone(),
            goal_msgs_per_s: goal,
            ratio_to_goal: goal.map(|g| round(msgs_per_s / g, 3)),
            met: goal.map(|g| msgs_per_s >= g),
            fsync_p50_ms: limits.fsync_p50_ms,
            kv_put_ops_per_s: limits.kv_put_ops_per_s,
            kv_put_p50_ms: limits.kv_put_p50_ms,
            kv_put_server_cpu_ms_per_op: limits.kv_put_server_cpu_ms_per_op,
            server_cpu_ms_per_request: per_msg(cpu.server_s, requests),
            client_cpu_s: cpu.client_s.map(|s| round(s, 2)),
            server_cpu_s: cpu.server_s.map(|s| round(s, 2)),
            server_cores: cpu
                .server_s
                .filter(|_| seconds > 0.0)
                .map(|s| round(s / seconds, 2)),
            server_cpu_ms_per_msg: per_msg(cpu.server_s, msgs),
            server_cpu_ms_per_msg_first_half: per_msg(half.server_s, first_half),
            server_cpu_ms_per_msg_second_half: per_msg(
                cpu.server_s
                    .zip(half.server_s)
                    .map(|(all, first)| (all - first).max(0.0)),
                msgs.saturating_sub(first_half),
            ),
            server_runq_wait_s: cpu.server_runq_wait_s.map(|s| round(s, 2)),
        }
    }
}

/// The limits and goals a Kinesis phase is read against, measured in the same run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KinesisLimits {
    /// The disk's 4 KiB write + fsync p50.
    pub fsync_p50_ms: Option<f64>,
    /// One loopback TCP connection, and its CPU price for both ends (seconds per 10^9
    /// bytes, numerically milliseconds per 10^6 bytes).
    pub loopback_mb_per_s: Option<f64>,
    pub loopback_cpu_ms_per_mb: Option<f64>,
    /// Closed-loop KV puts with as many in flight as the phase has producers: each one
    /// Raft command of `kv_put_value_bytes`, as each shard's part of a PutRecords is.
    pub kv_put_value_bytes: Option<usize>,
    pub kv_put_ops_per_s: Option<f64>,
    pub kv_put_mb_per_s: Option<f64>,
    pub kv_put_server_cpu_ms_per_op: Option<f64>,
    /// The goal (issue 6: ingest >= 30 MB/s, catch-up reads >= 100 MB/s).
    pub goal_mb_per_s: Option<f64>,
}

/// Ratio `value / limit`, when both are known and the limit is not zero.
fn ratio_to(value: f64, limit: Option<f64>) -> Option<f64> {
    limit.filter(|l| *l > 0.0).map(|l| round(value / l, 4))
}

/// Server CPU per 10^6 bytes moved, in milliseconds.
fn cpu_ms_per_mb(cpu: &CpuUse, bytes: u64) -> Option<f64> {
    cpu.server_s
        .filter(|_| bytes > 0)
        .map(|s| round(s * 1000.0 / (bytes as f64 / 1e6), 3))
}

/// `{"bench":"kinesis_ingest",...}`: one PutRecords phase.
#[derive(Debug, Clone, Serialize)]
pub struct KinesisIngestReport {
    pub bench: &'static str,
    pub shards: usize,
    /// Records per PutRecords.
    pub batch: usize,
    pub producers: usize,
    pub endpoints: usize,
    pub record_bytes: usize,
    pub duration_s: f64,
    /// Records acknowledged within the window (data bytes: `records x record_bytes`).
    pub records: u64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub requests_per_s: f64,
    /// PutRecords latency.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Failed or timed-out requests, those of unknown outcome among them, and records an
    /// answer listed as failed.
    pub request_errors: u64,
    pub unknown_requests: u64,
    pub failed_records: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_sample: Option<String>,
    pub goal_mb_per_s: Option<f64>,
    pub ratio_to_goal: Option<f64>,
    pub met: Option<bool>,
    pub loopback_mb_per_s: Option<f64>,
    pub ratio_to_loopback: Option<f64>,
    pub kv_put_value_bytes: Option<usize>,
    pub kv_put_mb_per_s: Option<f64>,
    /// `mb_per_s / kv_put_mb_per_s`: against Raft commands of that size with as many in
    /// flight.
    pub ratio_to_kv_put: Option<f64>,
    pub kv_put_server_cpu_ms_per_op: Option<f64>,
    pub fsync_p50_ms: Option<f64>,
    /// `p50_ms / fsync_p50_ms`.
    pub p50_vs_fsync: Option<f64>,
    pub client_cpu_s: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub server_cores: Option<f64>,
    /// Server CPU per 10^6 record bytes, and per PutRecords.
    pub server_cpu_ms_per_mb: Option<f64>,
    pub server_cpu_ms_per_request: Option<f64>,
    /// The same price for one loopback transfer (both ends), for scale.
    pub loopback_cpu_ms_per_mb: Option<f64>,
    pub server_runq_wait_s: Option<f64>,
}

impl KinesisIngestReport {
    pub fn new(
        spec: &IngestSpec,
        endpoints: usize,
        outcome: &IngestOutcome,
        limits: KinesisLimits,
    ) -> Self {
        let window = outcome.window;
        let seconds = window.as_secs_f64();
        let summary = LatencySummary::from_samples(outcome.latencies.clone());
        let bytes = outcome.records * spec.record_bytes as u64;
        let mb_per_s = rate(bytes as f64, window) / 1e6;
        let p50_ms = summary.map(|s| s.p50_ms);
        let cpu = outcome.cpu;
        Self {
            bench: "kinesis_ingest",
            shards: spec.shards,
            batch: spec.batch,
            producers: spec.producers,
            endpoints,
            record_bytes: spec.record_bytes,
            duration_s: round(seconds, 3),
            records: outcome.records,
            records_per_s: round(rate(outcome.records as f64, window), 1),
            mb_per_s: round(mb_per_s, 3),
            requests_per_s: round(rate(outcome.requests as f64, window), 1),
            p50_ms: p50_ms.map(|v| round(v, 3)),
            p99_ms: summary.map(|s| round(s.p99_ms, 3)),
            p999_ms: summary.map(|s| round(s.p999_ms, 3)),
            max_ms: summary.map(|s| round(s.max_ms, 3)),
            request_errors: outcome.request_errors,
            unknown_requests: outcome.unknown_requests,
            failed_records: outcome.failed_records,
            error_sample: outcome.error_sample.clone(),
            goal_mb_per_s: limits.goal_mb_per_s,
            ratio_to_goal: ratio_to(mb_per_s, limits.goal_mb_per_s),
            met: limits.goal_mb_per_s.map(|g| mb_per_s >= g),
            loopback_mb_per_s: limits.loopback_mb_per_s,
            ratio_to_loopback: ratio_to(mb_per_s, limits.loopback_mb_per_s),
            kv_put_value_bytes: limits.kv_put_value_bytes,
            kv_put_mb_per_s: limits.kv_put_mb_per_s,
            ratio_to_kv_put: ratio_to(mb_per_s, limits.kv_put_mb_per_s),
            kv_put_server_cpu_ms_per_op: limits.kv_put_server_cpu_ms_per_op,
            fsync_p50_ms: limits.fsync_p50_ms,
            p50_vs_fsync: p50_ms.and_then(|p| ratio_to(p, limits.fsync_p50_ms)),
            client_cpu_s: cpu.client_s.map(|s| round(s, 2)),
            server_cpu_s: cpu.server_s.map(|s| round(s, 2)),
            server_cores: cpu
                .server_s
                .filter(|_| seconds > 0.0)
                .map(|s| round(s / seconds, 2)),
            server_cpu_ms_per_mb: cpu_ms_per_mb(&cpu, bytes),
            server_cpu_ms_per_request: cpu
                .server_s
                .filter(|_| outcome.requests > 0)
                .map(|s| round(s * 1000.0 / outcome.requests as f64, 3)),
            loopback_cpu_ms_per_mb: limits.loopback_cpu_ms_per_mb,
            server_runq_wait_s: cpu.server_runq_wait_s.map(|s| round(s, 2)),
        }
    }
}

/// `{"bench":"kinesis_catch_up",...}`: reading back what an ingest phase wrote.
#[derive(Debug, Clone, Serialize)]
pub struct KinesisCatchUpReport {
    pub bench: &'static str,
    pub shards: usize,
    /// The ingest phase whose records are read back.
    pub batch: usize,
    pub producers: usize,
    /// One reader per shard.
    pub readers: usize,
    pub duration_s: f64,
    pub records: u64,
    /// Records the ingest phase appended (a timed-out put may have appended more).
    pub records_expected: u64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub get_requests: u64,
    /// Records per GetRecords on average.
    pub records_per_request: Option<f64>,
    /// GetRecords latency.
    pub get_p50_ms: Option<f64>,
    pub get_p99_ms: Option<f64>,
    pub errors: u64,
    pub unfinished_shards: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_sample: Option<String>,
    pub goal_mb_per_s: Option<f64>,
    pub ratio_to_goal: Option<f64>,
    pub met: Option<bool>,
    pub loopback_mb_per_s: Option<f64>,
    pub ratio_to_loopback: Option<f64>,
    pub client_cpu_s: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub server_cores: Option<f64>,
    pub server_cpu_ms_per_mb: Option<f64>,
    pub loopback_cpu_ms_per_mb: Option<f64>,
    pub server_runq_wait_s: Option<f64>,
}

impl KinesisCatchUpReport {
    pub fn new(
        ingest: &IngestSpec,
        outcome: &CatchUpOutcome,
        records_expected: u64,
        limits: KinesisLimits,
    ) -> Self {
        let window = outcome.window;
        let seconds = window.as_secs_f64();
        let summary = LatencySummary::from_samples(outcome.latencies.clone());
        let mb_per_s = rate(outcome.bytes as f64, window) / 1e6;
        let cpu = outcome.cpu;
        Self {
            bench: "kinesis_catch_up",
            shards: ingest.shards,
            batch: ingest.batch,
            producers: ingest.producers,
            readers: outcome.readers,
            duration_s: round(seconds, 3),
            records: outcome.records,
            records_expected,
            records_per_s: round(rate(outcome.records as f64, window), 1),
            mb_per_s: round(mb_per_s, 3),
            get_requests: outcome.requests,
            records_per_request: (outcome.requests > 0)
                .then(|| round(outcome.records as f64 / outcome.requests as f64, 1)),
            get_p50_ms: summary.map(|s| round(s.p50_ms, 3)),
            get_p99_ms: summary.map(|s| round(s.p99_ms, 3)),
            errors: outcome.errors,
            unfinished_shards: outcome.unfinished_shards,
            error_sample: outcome.error_sample.clone(),
            goal_mb_per_s: limits.goal_mb_per_s,
            ratio_to_goal: ratio_to(mb_per_s, limits.goal_mb_per_s),
            met: limits.goal_mb_per_s.map(|g| mb_per_s >= g),
            loopback_mb_per_s: limits.loopback_mb_per_s,
            ratio_to_loopback: ratio_to(mb_per_s, limits.loopback_mb_per_s),
            client_cpu_s: cpu.client_s.map(|s| round(s, 2)),
            server_cpu_s: cpu.server_s.map(|s| round(s, 2)),
            server_cores: cpu
                .server_s
                .filter(|_| seconds > 0.0)
                .map(|s| round(s / seconds, 2)),
            server_cpu_ms_per_mb: cpu_ms_per_mb(&cpu, outcome.bytes),
            loopback_cpu_ms_per_mb: limits.loopback_cpu_ms_per_mb,
            server_runq_wait_s: cpu.server_runq_wait_s.map(|s| round(s, 2)),
        }
    }
}

/// `{"bench":"kinesis_latency",...}`: put -> get latency of records put one at a time
/// while readers poll LATEST.
#[derive(Debug, Clone, Serialize)]
pub struct KinesisLatencyReport {
    pub bench: &'static str,
    pub shards: usize,
    pub record_bytes: usize,
    pub records_per_s_target: f64,
    pub poll_sleep_ms: f64,
    pub duration_s: f64,
    pub records_put: u64,
    pub records_read: u64,
    pub foreign_records: u64,
    /// From the put starting to the GetRecords that returned the record answering.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// PutRecord latency alone.
    pub put_p50_ms: Option<f64>,
    pub put_p99_ms: Option<f64>,
    pub get_requests: u64,
    pub empty_pages: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_sample: Option<String>,
    pub fsync_p50_ms: Option<f64>,
    /// `p50_ms / fsync_p50_ms`.
    pub p50_vs_fsync: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub server_cores: Option<f64>,
    pub server_runq_wait_s: Option<f64>,
}

impl KinesisLatencyReport {
    pub fn new(spec: &LatencySpec, outcome: &LatencyOutcome, limits: KinesisLimits) -> Self {
        let seconds = outcome.window.as_secs_f64();
        let summary = LatencySummary::from_samples(outcome.put_to_get.clone());
        let puts = LatencySummary::from_samples(outcome.puts.clone());
        let p50_ms = summary.map(|s| s.p50_ms);
        let cpu = outcome.cpu;
        Self {
            bench: "kinesis_latency",
            shards: spec.shards,
            record_bytes: spec.record_bytes,
            records_per_s_target: spec.records_per_s,
            poll_sleep_ms: round(spec.poll_sleep.as_secs_f64() * 1000.0, 3),
            duration_s: round(seconds, 3),
            records_put: outcome.records_put,
            records_read: outcome.records_read,
            foreign_records: outcome.foreign_records,
            p50_ms: p50_ms.map(|v| round(v, 3)),
            p99_ms: summary.map(|s| round(s.p99_ms, 3)),
            p999_ms: summary.map(|s| round(s.p999_ms, 3)),
            max_ms: summary.map(|s| round(s.max_ms, 3)),
            put_p50_ms: puts.map(|s| round(s.p50_ms, 3)),
            put_p99_ms: puts.map(|s| round(s.p99_ms, 3)),
            get_requests: outcome.get_requests,
            empty_pages: outcome.empty_pages,
            errors: outcome.errors,
            error_sample: outcome.error_sample.clone(),
            fsync_p50_ms: limits.fsync_p50_ms,
            p50_vs_fsync: p50_ms.and_then(|p| ratio_to(p, limits.fsync_p50_ms)),
            server_cpu_s: cpu.server_s.map(|s| round(s, 2)),
            server_cores: cpu
                .server_s
                .filter(|_| seconds > 0.0)
                .map(|s| round(s / seconds, 2)),
            server_runq_wait_s: cpu.server_runq_wait_s.map(|s| round(s, 2)),
        }
    }
}

/// `{"bench":"limit","name":...}`: a physical limit measured in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct LimitReport {
    pub bench: &'static str,
    /// `erasure_encode`, `erasure_decode`, `memcpy` or `loopback_tcp`.
    pub name: &'static str,
    pub gb_per_s: f64,
    pub mb_per_s: f64,
    pub bytes: u64,
    pub duration_s: f64,
    /// Cores the probe used (the codec and memcpy probes use one).
    pub threads: usize,
    /// Codec probes: the layout and piece size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_shards: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parity_shards: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub piece_bytes: Option<usize>,
    /// memcpy: the buffer copied; loopback: the size of each write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_bytes: Option<usize>,
    /// loopback: CPU seconds this process used for the transfer (sender and receiver),
    /// and that per 10^9 bytes: the CPU price of moving bytes over loopback once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_s_per_gb: Option<f64>,
}

impl LimitReport {
    pub fn new(name: &'static str, measured: &Throughput) -> Self {
        Self {
            bench: "limit",
            name,
            gb_per_s: round(measured.gb_per_s(), 3),
            mb_per_s: round(measured.gb_per_s() * 1000.0, 1),
            bytes: measured.bytes,
            duration_s: round(measured.elapsed.as_secs_f64(), 3),
            threads: 1,
            data_shards: None,
            parity_shards: None,
            piece_bytes: None,
            buffer_bytes: None,
            cpu_s: None,
            cpu_s_per_gb: None,
        }
    }

    /// Adds the CPU seconds the probe used.
    pub fn with_cpu(self, cpu_s: Option<f64>) -> Self {
        let gb = self.bytes as f64 / 1e9;
        Self {
            cpu_s: cpu_s.map(|s| round(s, 2)),
            cpu_s_per_gb: cpu_s.filter(|_| gb > 0.0).map(|s| round(s / gb, 3)),
            ..self
        }
    }
}

/// `{"bench":"ratio","name":...}`: a phase's throughput against a limit and its goal.
#[derive(Debug, Clone, Serialize)]
pub struct RatioReport {
    pub bench: &'static str,
    /// `get_vs_loopback`, `put_vs_encode` or `put_vs_disk`.
    pub name: &'static str,
    pub object_bytes: usize,
    pub clients: usize,
    pub mb_per_s: f64,
    pub limit_mb_per_s: f64,
    /// `mb_per_s / limit_mb_per_s`.
    pub ratio: Option<f64>,
    /// The goal, as text (`">= 0.5"`, `"< 1"`); `null` for a ratio without one.
    pub goal: Option<String>,
    pub met: Option<bool>,
}

/// Whether a ratio must reach its goal from below or stay under it, or is only reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    AtLeast(f64),
    Below(f64),
    /// At or under the value.
    AtMost(f64),
    None,
}

impl Goal {
    /// Whether `ratio` meets the goal (`None` for a ratio without one).
    pub fn met(&self, ratio: f64) -> Option<bool> {
        match *self {
            Goal::AtLeast(g) => Some(ratio >= g),
            Goal::Below(g) => Some(ratio < g),
            Goal::AtMost(g) => Some(ratio <= g),
            Goal::None => None,
        }
    }

    /// The goal as text (`">= 0.5"`, `"< 1"`, `"<= 1.5"`).
    pub fn text(&self) -> Option<String> {
        match *self {
            Goal::AtLeast(g) => Some(format!(">= {g}")),
            Goal::Below(g) => Some(format!("< {g}")),
            Goal::AtMost(g) => Some(format!("<= {g}")),
            Goal::None => None,
        }
    }
}

impl RatioReport {
    pub fn new(
        name: &'static str,
        object_bytes: usize,
        clients: usize,
        mb_per_s: f64,
        limit_mb_per_s: f64,
        goal: Goal,
    ) -> Self {
        let ratio = (limit_mb_per_s > 0.0).then(|| mb_per_s / limit_mb_per_s);
        let met = ratio.and_then(|r| goal.met(r));
        let goal_text = goal.text();
        Self {
            bench: "ratio",
            name,
            object_bytes,
            clients,
            mb_per_s: round(mb_per_s, 3),
            limit_mb_per_s: round(limit_mb_per_s, 1),
            ratio: ratio.map(|r| round(r, 4)),
            goal: goal_text,
            met,
        }
    }
}

/// `{"bench":"host",...}`: the machine's CPUs and load, at the start and end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub bench: &'static str,
    /// `start` or `end`.
    pub at: &'static str,
    pub cpus: usize,
    /// 1, 5 and 15 minute load averages (Linux only).
    pub loadavg: Option<[f64; 3]>,
    /// Percent of the last minute some runnable task waited for a CPU (Linux PSI).
    pub cpu_pressure_avg60: Option<f64>,
}

impl HostReport {
    pub fn now(at: &'static str) -> Self {
        Self {
            bench: "host",
            at,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            loadavg: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|text| parse_loadavg(&text)),
            cpu_pressure_avg60: cpu::cpu_pressure_avg60(),
        }
    }
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

/// `{"bench":"limit","name":"loopback_rtt"|"grpc_rtt",...}`: a round-trip latency limit
/// measured in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct RttLimitReport {
    pub bench: &'static str,
    pub name: &'static str,
    /// What one round trip is (`64-byte echo on one TCP connection`, ...).
    pub what: String,
    pub samples: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl RttLimitReport {
    pub fn new(name: &'static str, what: impl Into<String>, samples: Vec<Duration>) -> Self {
        let count = samples.len();
        let summary = LatencySummary::from_samples(samples);
        Self {
            bench: "limit",
            name,
            what: what.into(),
            samples: count,
            p50_ms: summary.map(|s| round(s.p50_ms, 4)),
            p99_ms: summary.map(|s| round(s.p99_ms, 4)),
            p999_ms: summary.map(|s| round(s.p999_ms, 4)),
            max_ms: summary.map(|s| round(s.max_ms, 4)),
        }
    }
}

/// What was slowed during a quorum-scenario phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SlowdownInfo {
    /// `healthy`, `paused`, `flapping` or `paused_two_zones`.
    pub slowdown: &'static str,
    /// Node ids stopped (SIGSTOP) during the phase, and their zones.
    pub slowed_nodes: Vec<u64>,
    pub slowed_zones: Vec<String>,
    /// Share of the phase the slowed nodes were stopped (1 for paused, 0 for healthy).
    pub stopped_fraction: f64,
    /// Flapping: one stop lasts this long, once every `cycle_period_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_period_ms: Option<u64>,
    /// SIGSTOPs sent during the phase.
    pub stops_sent: u64,
    /// Whether a slowed node led the meta group when the phase began.
    pub slowed_leads_meta: bool,
    /// Data groups a slowed node led when the phase began (Raft KV keys in them wait for
    /// that leader, or for an election).
    pub slowed_lead_data_groups: Vec<u64>,
}

/// Resources a quorum-scenario phase used, when measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseCost {
    pub client_cpu_s: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub syncs: Option<crate::quorum::SyncCounts>,
}

/// `{"bench":"quorum_put"|"quorum_mput"|"quorum_kv_put",...}`: one closed-loop phase of
/// the quorum scenario (the last is the Raft KV peer measured in the same run and
/// condition).
#[derive(Debug, Clone, Serialize)]
pub struct QuorumPhaseReport {
    pub bench: &'static str,
    #[serde(flatten)]
    pub slowdown: SlowdownInfo,
    /// Commits (requests) in flight: one per client task.
    pub in_flight: usize,
    pub keys_per_commit: usize,
    pub value_bytes: usize,
    pub duration_s: f64,
    /// Successful commits.
    pub ops: u64,
    pub ops_per_s: f64,
    pub keys_per_s: f64,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub errors: u64,
    /// Errors whose outcome is unknown (may still be applied).
    pub unknown: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_sample: Option<String>,
    /// This process's CPU per successful commit (the writer library and the load loop).
    pub client_cpu_ms_per_op: Option<f64>,
    /// CPU of all the nodes together per successful commit (spawned clusters only).
    pub server_cpu_ms_per_op: Option<f64>,
    /// fsync + fdatasync calls of all the nodes in the phase, and per successful commit.
    pub syncs: Option<u64>,
    pub syncs_per_op: Option<f64>,
}

/// The raw numbers of one phase, whichever system ran it.
#[derive(Debug, Clone, Copy)]
pub struct PhaseNumbers<'a> {
    pub latencies: &'a [Duration],
    pub ops: u64,
    pub errors: u64,
    pub unknown: u64,
    pub elapsed: Duration,
}

impl QuorumPhaseReport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bench: &'static str,
        slowdown: SlowdownInfo,
        in_flight: usize,
        keys_per_commit: usize,
        value_bytes: usize,
        numbers: PhaseNumbers<'_>,
        error_sample: Option<String>,
        cost: PhaseCost,
    ) -> Self {
        let summary = LatencySummary::from_samples(numbers.latencies.to_vec());
        let ops = numbers.ops as f64;
        let per_op = |seconds: Option<f64>| {
            seconds
                .filter(|_| numbers.ops > 0)
                .map(|s| round(s * 1000.0 / ops, 4))
        };
        Self {
            bench,
            slowdown,
            in_flight,
            keys_per_commit,
            value_bytes,
            duration_s: round(numbers.elapsed.as_secs_f64(), 3),
            ops: numbers.ops,
            ops_per_s: round(rate(ops, numbers.elapsed), 1),
            keys_per_s: round(rate(ops * keys_per_commit as f64, numbers.elapsed), 1),
            mean_ms: summary.map(|s| round(s.mean_ms, 3)),
            p50_ms: summary.map(|s| round(s.p50_ms, 3)),
            p99_ms: summary.map(|s| round(s.p99_ms, 3)),
            p999_ms: summary.map(|s| round(s.p999_ms, 3)),
            max_ms: summary.map(|s| round(s.max_ms, 3)),
            errors: numbers.errors,
            unknown: numbers.unknown,
            error_sample,
            client_cpu_ms_per_op: per_op(cost.client_cpu_s),
            server_cpu_ms_per_op: per_op(cost.server_cpu_s),
            syncs: cost.syncs.map(|s| s.total()),
            syncs_per_op: cost
                .syncs
                .filter(|_| numbers.ops > 0)
                .map(|s| round(s.total() as f64 / ops, 3)),
        }
    }
}

/// `{"bench":"ratio","name":...}` of the quorum scenario: a latency or rate against a
/// limit or a baseline of the same run, and its goal.
#[derive(Debug, Clone, Serialize)]
pub struct QuorumRatioReport {
    pub bench: &'static str,
    /// `p50_vs_fsync_plus_rtt`, `p99_vs_healthy`, `kv_p99_vs_healthy`, `p50_vs_kv`,
    /// `p99_vs_kv` or `ops_vs_kv`.
    pub name: &'static str,
    /// The phase measured (`quorum_put`, ...).
    pub phase: &'static str,
    pub slowdown: &'static str,
    pub in_flight: usize,
    pub value: f64,
    pub baseline: f64,
    /// What `baseline` is (`fsync p50 + loopback rtt p50`, `healthy p99`, ...).
    pub baseline_is: String,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    pub goal: Option<String>,
    pub met: Option<bool>,
}

impl QuorumRatioReport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &'static str,
        phase: &'static str,
        slowdown: &'static str,
        in_flight: usize,
        value: f64,
        baseline: f64,
        baseline_is: impl Into<String>,
        goal: Goal,
    ) -> Self {
        let ratio = (baseline > 0.0).then(|| value / baseline);
        Self {
            bench: "ratio",
            name,
            phase,
            slowdown,
            in_flight,
            value: round(value, 3),
            baseline: round(baseline, 3),
            baseline_is: baseline_is.into(),
            ratio: ratio.map(|r| round(r, 3)),
            goal: goal.text(),
            met: ratio.and_then(|r| goal.met(r)),
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
        assert!(json.get("server_cpu_ms_per_op").is_none());
        let with_cpu = report.clone().with_server_cpu(Some(0.02));
        assert_eq!(with_cpu.server_cpu_ms_per_op, Some(5.0));
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
    fn s3_line_counts_bytes_and_first_byte_only_for_gets() {
        let outcome = S3Outcome {
            latencies: vec![Duration::from_millis(10), Duration::from_millis(30)],
            first_byte: vec![Duration::from_millis(2), Duration::from_millis(4)],
            ops: 2,
            bytes: 2_000_000,
            errors: 1,
            elapsed: Duration::from_secs(2),
            error_sample: Some("boom".into()),
            written_keys: Vec::new(),
        };
        let json = serde_json::to_value(S3Report::new(
            "s3_get",
            1_000_000,
            4,
            6,
            &outcome,
            CpuUse {
                client_s: Some(0.5),
                server_s: Some(3.0),
                server_runq_wait_s: Some(4.0),
            },
        ))
        .unwrap();
        assert_eq!(json["bench"], "s3_get");
        assert_eq!(json["ops_per_s"], 1.0);
        assert_eq!(json["mb_per_s"], 1.0);
        assert_eq!(json["p50_ms"], 10.0);
        assert_eq!(json["p99_ms"], 30.0);
        assert_eq!(json["first_byte_p50_ms"], 2.0);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["error_sample"], "boom");
        assert_eq!(json["client_cpu_s"], 0.5);
        assert_eq!(json["server_cpu_s"], 3.0);
        assert_eq!(json["server_cores"], 1.5);
        assert_eq!(json["server_cpu_s_per_gb"], 1500.0);
        assert_eq!(json["server_runq_wait_s"], 4.0);
        let put = S3Outcome {
            first_byte: Vec::new(),
            error_sample: None,
            ..outcome
        };
        let json = serde_json::to_value(S3Report::new(
            "s3_put",
            1_000_000,
            4,
            6,
            &put,
            CpuUse::default(),
        ))
        .unwrap();
        assert!(json.get("first_byte_p50_ms").is_none());
        assert!(json["server_cores"].is_null());
        assert!(json.get("error_sample").is_none());
    }

    #[test]
    fn sqs_line_rates_latencies_goal_and_cpu() {
        use crate::sqs::QueueType;
        let ms = |v: &[u64]| v.iter().map(|&v| Duration::from_millis(v)).collect();
        let tally = |requests, messages, latencies: &[u64], errors| RequestTally {
            requests,
            messages,
            latencies: ms(latencies),
            errors,
        };
        let outcome = SqsOutcome {
            end_to_end: ms(&[4, 2, 8, 6]),
            sends: tally(2, 20, &[1, 3], 1),
            receives: tally(4, 18, &[2, 2, 2, 2], 0),
            deletes: tally(2, 16, &[1, 1], 2),
            empty_receives: 1,
            foreign_messages: 0,
            completed_first_half: 10,
            window: Duration::from_secs(2),
            cpu: CpuUse {
                client_s: Some(0.5),
                server_s: Some(1.6),
                server_runq_wait_s: Some(0.25),
            },
            cpu_first_half: CpuUse {
                client_s: Some(0.2),
                server_s: Some(0.4),
                server_runq_wait_s: Some(0.1),
            },
            error_sample: Some("boom".into()),
        };
        let spec = SqsPhaseSpec {
            queue_type: QueueType::Fifo,
            batch: 10,
            clients: 4,
            duration: Duration::from_secs(2),
            max_backlog: 160,
            message_groups: 64,
            body_bytes: 256,
            wait_seconds: 1,
            request_timeout: Duration::from_secs(10),
            server_pid: Some(1),
        };
        let limits = SqsLimits {
            fsync_p50_ms: Some(0.1),
            kv_put_ops_per_s: Some(1000.0),
            kv_put_p50_ms: Some(1.5),
            kv_put_server_cpu_ms_per_op: Some(2.0),
            goal_msgs_per_s: Some(10.0),
        };
        let json = serde_json::to_value(SqsReport::new(&spec, 6, &outcome, limits)).unwrap();
        assert_eq!(json["bench"], "sqs");
        assert_eq!(json["queue_type"], "fifo");
        assert_eq!(json["message_groups"], 64);
        assert_eq!(json["msgs"], 16);
        assert_eq!(json["msgs_per_s"], 8.0);
        assert_eq!(json["msgs_per_s_first_half"], 10.0);
        assert_eq!(json["msgs_per_s_second_half"], 6.0);
        assert_eq!(json["sent_msgs_per_s"], 10.0);
        assert_eq!(json["received_msgs_per_s"], 9.0);
        assert_eq!(json["send_requests_per_s"], 1.0);
        assert_eq!(json["requests_per_s"], 4.0);
        assert_eq!(json["p50_ms"], 4.0);
        assert_eq!(json["p99_ms"], 8.0);
        assert_eq!(json["send_p99_ms"], 3.0);
        assert_eq!(json["errors"], 3);
        assert_eq!(json["delete_errors"], 2);
        assert_eq!(json["ratio_to_goal"], 0.8);
        assert_eq!(json["met"], false);
        assert_eq!(json["server_cores"], 0.8);
        assert_eq!(json["server_cpu_ms_per_msg"], 100.0);
        assert_eq!(json["server_cpu_ms_per_msg_first_half"], 40.0);
        assert_eq!(json["server_cpu_ms_per_msg_second_half"], 200.0);
        assert_eq!(json["kv_put_ops_per_s"], 1000.0);
        assert_eq!(json["kv_put_server_cpu_ms_per_op"], 2.0);
        assert_eq!(json["server_cpu_ms_per_request"], 200.0);

        let standard = SqsPhaseSpec {
            queue_type: QueueType::Standard,
            batch: 1,
            ..spec
        };
        let json = serde_json::to_value(SqsReport::new(
            &standard,
            6,
            &SqsOutcome::default(),
            SqsLimits::default(),
        ))
        .unwrap();
        assert!(json.get("message_groups").is_none());
        assert!(json["goal_msgs_per_s"].is_null() && json["met"].is_null());
        assert!(json["p50_ms"].is_null() && json["server_cpu_ms_per_msg"].is_null());
        assert_eq!(json["msgs_per_s"], 0.0);
    }

    #[test]
    fn limit_and_ratio_lines() {
        let measured = Throughput {
            bytes: 3_000_000_000,
            elapsed: Duration::from_secs(2),
        };
        let json = serde_json::to_value(LimitReport::new("memcpy", &measured)).unwrap();
        assert_eq!(json["bench"], "limit");
        assert_eq!(json["gb_per_s"], 1.5);
        assert_eq!(json["mb_per_s"], 1500.0);
        assert!(json.get("piece_bytes").is_none());
        assert!(json.get("cpu_s").is_none());
        let with_cpu = LimitReport::new("loopback_tcp", &measured).with_cpu(Some(1.5));
        assert_eq!(
            (with_cpu.cpu_s, with_cpu.cpu_s_per_gb),
            (Some(1.5), Some(0.5))
        );

        let get = RatioReport::new("get_vs_loopback", 64, 16, 600.0, 1000.0, Goal::AtLeast(0.5));
        assert_eq!(get.ratio, Some(0.6));
        assert_eq!((get.goal.as_deref(), get.met), (Some(">= 0.5"), Some(true)));
        let put = RatioReport::new("put_vs_encode", 64, 16, 600.0, 500.0, Goal::Below(1.0));
        assert_eq!((put.goal.as_deref(), put.met), (Some("< 1"), Some(false)));
        let none = RatioReport::new("put_vs_encode", 64, 16, 600.0, 0.0, Goal::Below(1.0));
        assert_eq!((none.ratio, none.met), (None, None));
        let info = RatioReport::new("put_vs_disk", 64, 16, 600.0, 1200.0, Goal::None);
        assert_eq!((info.ratio, info.goal, info.met), (Some(0.5), None, None));
    }

    #[test]
    fn quorum_lines() {
        let latencies: Vec<Duration> = [2, 4, 6, 8]
            .iter()
            .map(|&v| Duration::from_millis(v))
            .collect();
        let numbers = PhaseNumbers {
            latencies: &latencies,
            ops: 4,
            errors: 1,
            unknown: 1,
            elapsed: Duration::from_secs(2),
        };
        let cost = PhaseCost {
            client_cpu_s: Some(0.004),
            server_cpu_s: None,
            syncs: Some(crate::quorum::SyncCounts {
                fsync: 2,
                fdatasync: 10,
            }),
        };
        let slowdown = SlowdownInfo {
            slowdown: "paused",
            slowed_nodes: vec![3],
            stopped_fraction: 1.0,
            ..SlowdownInfo::default()
        };
        let json = serde_json::to_value(QuorumPhaseReport::new(
            "quorum_mput",
            slowdown,
            16,
            4,
            100,
            numbers,
            Some("boom".into()),
            cost,
        ))
        .unwrap();
        assert_eq!(json["bench"], "quorum_mput");
        assert_eq!(json["slowdown"], "paused");
        assert_eq!(json["slowed_nodes"][0], 3);
        assert!(json.get("stop_ms").is_none());
        assert_eq!(json["ops_per_s"], 2.0);
        assert_eq!(json["keys_per_s"], 8.0);
        assert_eq!(json["p50_ms"], 4.0);
        assert_eq!(json["p99_ms"], 8.0);
        assert_eq!(json["unknown"], 1);
        assert_eq!(json["client_cpu_ms_per_op"], 1.0);
        assert!(json["server_cpu_ms_per_op"].is_null());
        assert_eq!(json["syncs"], 12);
        assert_eq!(json["syncs_per_op"], 3.0);

        let ratio = QuorumRatioReport::new(
            "p99_vs_healthy",
            "quorum_put",
            "paused",
            64,
            6.0,
            4.0,
            "healthy p99",
            Goal::AtMost(1.5),
        );
        assert_eq!((ratio.ratio, ratio.met), (Some(1.5), Some(true)));
        assert_eq!(ratio.goal.as_deref(), Some("<= 1.5"));
        let none = QuorumRatioReport::new(
            "p50_vs_kv",
            "quorum_put",
            "healthy",
            1,
            1.0,
            0.0,
            "kv",
            Goal::None,
        );
        assert_eq!((none.ratio, none.met, none.goal), (None, None, None));

        let rtt = RttLimitReport::new("loopback_rtt", "echo", latencies.clone());
        assert_eq!((rtt.samples, rtt.p50_ms), (4, Some(4.0)));
        assert!(RttLimitReport::new("grpc_rtt", "x", Vec::new())
            .p50_ms
            .is_none());
    }

    #[test]
    fn loadavg_parsing() {
        assert_eq!(
            parse_loadavg("1.61 2.86 3.41 3/412 17726\n"),
            Some([1.61, 2.86, 3.41])
        );
        assert_eq!(parse_loadavg("1.0 x"), None);
        assert!(HostReport::now("start").cpus >= 1);
    }

    #[test]
    fn rounding() {
        assert_eq!(round(1.23456, 3), 1.235);
        assert_eq!(round(2.0 / 3.0, 1), 0.7);
    }
}
