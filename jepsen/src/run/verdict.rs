//! A run's bottom line: the checker's answer for the workload, the anomalies with the
//! operations involved, and the process exit code.
//!
//! Exit codes: 0 valid; 1 an anomaly (the history is not what a correct cluster could
//! produce); 2 unknown (the checker gave up, or there was nothing to check, e.g. the
//! cluster never came back for the final read); 3 the harness itself failed (could not
//! start the cluster, or a fault could not be applied) and nothing invalid was found.

use std::fmt::Write as _;

use serde_json::{json, Value as Json};

use crate::checker::atomic::QuorumReport;
use crate::checker::linearizable::{KeyedReport, Verdict};
use crate::checker::objects::ObjectsReport;
use crate::checker::queue::{QueueKind, QueueReport};
use crate::checker::set::SetReport;
use crate::checker::stream::StreamReport;
use crate::checker::Validity;
use crate::history::{History, Op, OpId, OpResult, Operation, Outcome, Value};
use crate::run::workload_set::FinalRead;

pub const EXIT_VALID: u8 = 0;
pub const EXIT_ANOMALY: u8 = 1;
pub const EXIT_UNKNOWN: u8 = 2;
pub const EXIT_HARNESS: u8 = 3;

/// What checking the history found.
#[derive(Debug, Clone)]
pub enum Checked {
    Register(KeyedReport),
    Objects(ObjectsReport),
    /// The queue and fifo workloads.
    Queue(QueueReport),
    /// The stream workload.
    Stream(StreamReport),
    /// The quorum workload: registers and atomic multi-puts.
    Quorum(QuorumReport),
    Set {
        report: SetReport,
        final_read: FinalRead,
    },
    /// The history could not be checked (e.g. no final read): why.
    Unchecked(String),
}

impl Checked {
    pub fn validity(&self) -> Validity {
        match self {
            Checked::Register(report) => report.validity(),
            Checked::Objects(report) => report.validity(),
            Checked::Queue(report) => report.validity(),
            Checked::Stream(report) => report.validity(),
            Checked::Quorum(report) => report.validity(),
            Checked::Set { report, final_read } => {
                if final_read.corrupt.is_empty() {
                    report.validity()
                } else {
                    Validity::Invalid
                }
            }
            Checked::Unchecked(_) => Validity::Unknown,
        }
    }

    /// The checker's full answer followed by every anomaly with the operations involved.
    pub fn explain(&self, history: &History) -> String {
        let mut text = String::new();
        match self {
            Checked::Register(report) => {
                let _ = write!(text, "{report}");
            }
            Checked::Objects(report) => {
                let _ = write!(text, "{report}");
            }
            Checked::Queue(report) => {
                let _ = write!(text, "{report}");
                explain_queue(&mut text, history, report);
            }
            Checked::Stream(report) => {
                let _ = write!(text, "{report}");
                explain_stream(&mut text, history, report);
            }
            Checked::Quorum(report) => {
                let _ = write!(text, "{report}");
            }
            Checked::Set { report, final_read } => {
                let _ = write!(text, "{report}");
                let adds = |values: &[Value]| -> Vec<&Operation> {
                    history
                        .client_ops()
                        .filter(|op| matches!(op.op, Op::Add(v) if values.contains(&v)))
                        .collect()
                };
                for (what, values) in [
                    ("lost", &report.lost),
                    ("failed but present", &report.failed_but_present),
                    ("unexpected", &report.unexpected),
                ] {
                    let ops = adds(values);
                    if !ops.is_empty() {
                        let _ = writeln!(text, "  operations behind the {what} values:");
                        for op in ops.iter().take(50) {
                            let _ = writeln!(text, "    {}", with_time(op));
                        }
                    }
                }
                if !final_read.corrupt.is_empty() {
                    let _ = writeln!(text, "  corrupt entries: {}", final_read.corrupt.len());
                    for entry in final_read.corrupt.iter().take(50) {
                        let _ = writeln!(text, "    {entry}");
                    }
                }
            }
            Checked::Unchecked(why) => {
                let _ = writeln!(text, "not checked: {why}");
            }
        }
        text
    }

    /// The checker's answer as JSON (for verdict.json).
    pub fn to_json(&self) -> Json {
        match self {
            Checked::Register(report) => keyed_json("linearizable-register", report),
            Checked::Objects(report) => {
                let mut json = keyed_json("linearizable-objects", &report.keys);
                json["listings"] = Json::from(report.listings);
                json["listing_reads"] = Json::from(report.listing_reads);
                json["unverified_keys"] = Json::from(report.unverified.clone());
                json
            }
            Checked::Queue(report) => queue_json(report),
            Checked::Stream(report) => stream_json(report),
            Checked::Quorum(report) => {
                let mut json = keyed_json("linearizable-register+atomic-multiput", &report.keys);
                json["groups"] = Json::from(report.atomic.groups);
                json["groups_acknowledged"] = Json::from(report.atomic.acknowledged);
                json["groups_read_whole"] = Json::from(report.atomic.seen_whole);
                json["torn_groups"] = Json::from(
                    report
                        .atomic
                        .torn
                        .iter()
                        .map(
                            |t| json!({"group": t.group, "seen": t.seen.0, "missing": t.missing.0}),
                        )
                        .collect::<Vec<_>>(),
                );
                json
            }
            Checked::Set { report, final_read } => json!({
                "checker": "set",
                "attempted": report.attempted,
                "acknowledged": report.acknowledged,
                "present": report.present,
                "final_read_op": report.final_read.map(|id| id.0),
                "lost": report.lost,
                "unexpected": report.unexpected,
                "failed_but_present": report.failed_but_present,
                "duplicated": report.duplicated,
                "recovered": report.recovered.len(),
                "unconfirmed": report.unconfirmed.len(),
                "corrupt": final_read.corrupt,
            }),
            Checked::Unchecked(why) => json!({ "checker": "none", "error": why }),
        }
    }
}

/// The operations behind a queue report's anomalies, with their times.
fn explain_queue(text: &mut String, history: &History, report: &QueueReport) {
    let carries = |op: &Operation, values: &[Value]| match (&op.op, &op.outcome) {
        (Op::Send { values: sent, .. }, _) => sent.iter().any(|v| values.contains(v)),
        (Op::Receive { .. }, Outcome::Ok(OpResult::Received(deliveries))) => {
            deliveries.iter().any(|d| values.contains(&d.value))
        }
        (Op::DeleteMessages(refs), _) => refs.iter().any(|r| values.contains(&r.value)),
        _ => false,
    };
    let mut involved: Vec<(String, Vec<Value>)> = vec![
        ("lost".into(), report.lost.clone()),
        (
            "failed but delivered".into(),
            report.failed_but_delivered.clone(),
        ),
        (
            "unexpected".into(),
            report.unexpected.iter().map(|(v, _)| *v).collect(),
        ),
        ("duplicated".into(), report.duplicated.clone()),
    ];
    if report.kind == QueueKind::Fifo {
        for (i, r) in report.reorders.iter().take(3).enumerate() {
            involved.push((format!("order violation {}", i + 1), vec![r.first, r.then]));
        }
        for a in report.after_delete.iter().take(3) {
            involved.push((
                format!("delivery of {} after its delete", a.value),
                vec![a.value],
            ));
        }
        for e in report.early_redeliveries.iter().take(3) {
            involved.push((format!("early redelivery of {}", e.value), vec![e.value]));
        }
    }
    for (what, values) in involved {
        let values: Vec<Value> = values.into_iter().take(10).collect();
        if values.is_empty() {
            continue;
        }
        let ops: Vec<&Operation> = history
            .client_ops()
            .filter(|op| carries(op, &values))
            .collect();
        let _ = writeln!(text, "  operations behind the {what} values {values:?}:");
        for op in ops.iter().take(50) {
            let _ = writeln!(text, "    {}", with_time(op));
        }
    }
}

/// The operations behind a stream report's anomalies (the first few of each kind), with
/// their times.
fn explain_stream(text: &mut String, history: &History, report: &StreamReport) {
    let mut shown = 0;
    for anomaly in &report.anomalies {
        if shown >= 20 {
            break;
        }
        let ops: Vec<&Operation> = anomaly
            .ops
            .iter()
            .filter_map(|id| history.ops().iter().find(|op| op.id == *id))
            .collect();
        if ops.is_empty() {
            continue;
        }
        shown += 1;
        let _ = writeln!(text, "  operations behind: {}", anomaly.what);
        for op in ops.iter().take(5) {
            let _ = writeln!(text, "    {}", with_time(op));
        }
    }
}

/// A stream report as JSON.
fn stream_json(report: &StreamReport) -> Json {
    let counts: serde_json::Map<String, Json> = report
        .counts
        .iter()
        .map(|(kind, count)| (kind.name().to_string(), Json::from(*count)))
        .collect();
    json!({
        "checker": "stream",
        "drain_op": report.drain.map(|id| id.0),
        "attempted": report.attempted,
        "acknowledged": report.acknowledged,
        "refused": report.refused,
        "unknown": report.unknown,
        "recovered": report.recovered,
        "read_values": report.read_values,
        "records_read": report.records_read,
        "pages": report.pages,
        "chains": report.chains,
        "final_shards": report.final_shards,
        "final_records": report.final_records,
        "lineage": report.lineage,
        "unconfirmed": report.unconfirmed,
        "anomaly_counts": counts,
        "anomalies": report
            .anomalies
            .iter()
            .take(100)
            .map(|a| json!({
                "kind": a.kind.name(),
                "shard": a.shard,
                "values": a.values,
                "ops": a.ops.iter().map(|id| id.0).collect::<Vec<_>>(),
                "what": a.what,
            }))
            .collect::<Vec<_>>(),
    })
}

/// A queue report as JSON.
fn queue_json(report: &QueueReport) -> Json {
    let ids = |ops: Vec<OpId>| ops.into_iter().map(|id| id.0).collect::<Vec<u64>>();
    json!({
        "checker": match report.kind {
            QueueKind::Standard => "queue",
            QueueKind::Fifo => "fifo",
        },
        "drain_op": report.drain.map(|id| id.0),
        "attempted": report.attempted,
        "acknowledged": report.acknowledged,
        "delivered": report.delivered,
        "deliveries": report.deliveries,
        "lost": report.lost,
        "unconfirmed": report.unconfirmed,
        "unexpected": report.unexpected.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        "unexpected_first_receives": ids(report.unexpected.iter().map(|(_, op)| *op).collect()),
        "failed_but_delivered": report.failed_but_delivered,
        "corrupt": report.corrupt,
        "recovered": report.recovered,
        "resent": report.resent,
        "redeliveries": report.redeliveries,
        "copies": report.copies,
        "duplicated": report.duplicated,
        "early_redeliveries": report.early_redelivery_count,
        "delivered_after_acknowledged_delete": report.after_delete_count,
        "groups": report.groups,
        "order_violations": report.reorder_count,
        "order_violation_examples": report
            .reorders
            .iter()
            .take(20)
            .map(|r| json!({ "group": r.group, "first": r.first, "then": r.then, "why": r.why }))
            .collect::<Vec<_>>(),
    })
}

/// A per-key linearizability report as JSON: counts and every key that is not valid.
fn keyed_json(checker: &str, report: &KeyedReport) -> Json {
    let count = |validity| {
        report
            .keys
            .values()
            .filter(|v| v.validity() == validity)
            .count()
    };
    let failures: Vec<Json> = report
        .keys
        .iter()
        .filter(|(_, v)| v.validity() != Validity::Valid)
        .map(|(key, verdict)| {
            json!({
                "key": key,
                "validity": verdict.validity().to_string(),
                "explanation": verdict.to_string(),
                "stuck_op": match verdict {
                    Verdict::NotLinearizable(c) => Json::from(c.stuck.id.0),
                    _ => Json::Null,
                },
            })
        })
        .collect();
    json!({
        "checker": checker,
        "keys": report.keys.len(),
        "keys_linearizable": count(Validity::Valid),
        "keys_not_linearizable": count(Validity::Invalid),
        "keys_unknown": count(Validity::Unknown),
        "failures": failures,
    })
}

/// An operation with its wall-clock times in seconds since the run started.
pub fn with_time(op: &Operation) -> String {
    let secs = |us: Option<u64>| {
        us.map(|us| format!("{:.3}s", us as f64 / 1e6))
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "{op} at {}..{}",
        secs(op.wall.invoked_us),
        secs(op.wall.completed_us)
    )
}

/// The exit code for a run: an anomaly outranks a harness error, which outranks unknown.
pub fn exit_code(validity: Validity, harness_failed: bool) -> u8 {
    match (validity, harness_failed) {
        (Validity::Invalid, _) => EXIT_ANOMALY,
        (_, true) => EXIT_HARNESS,
        (Validity::Unknown, false) => EXIT_UNKNOWN,
        (Validity::Valid, false) => EXIT_VALID,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomalies_outrank_harness_errors_which_outrank_unknown() {
        assert_eq!(exit_code(Validity::Valid, false), 0);
        assert_eq!(exit_code(Validity::Invalid, false), 1);
        assert_eq!(exit_code(Validity::Invalid, true), 1);
        assert_eq!(exit_code(Validity::Unknown, false), 2);
        assert_eq!(exit_code(Validity::Unknown, true), 3);
        assert_eq!(exit_code(Validity::Valid, true), 3);
    }

    #[test]
    fn corrupt_set_entries_make_the_run_invalid() {
        let checked = Checked::Set {
            report: SetReport::default(),
            final_read: FinalRead {
                corrupt: vec!["run/000000000001 holds \"2\"".into()],
            },
        };
        assert_eq!(checked.validity(), Validity::Invalid);
        assert!(checked
            .explain(&History::new())
            .contains("corrupt entries: 1"));
    }
}
