//! The files a run leaves in its directory besides the history: `summary.txt` for people
//! and `verdict.json` for scripts. Both are derived from the history (fault windows come
//! from its nemesis events), so a saved history is enough to rebuild them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use crate::history::{History, NemesisAction, Op, Operation, Outcome};
use crate::run::verdict::Checked;

/// One fault as it happened: from its start event's invocation to its stop event's
/// completion (`None`: never stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultWindow {
    pub fault: String,
    pub nodes: Vec<u64>,
    pub detail: String,
    pub start_us: u64,
    pub end_us: Option<u64>,
    /// Whether starting and stopping it both succeeded.
    pub clean: bool,
}

/// Pairs every nemesis start with the stop that follows it for the same fault and nodes.
/// A stop with no start (the final heal-all) is a window of no length.
pub fn fault_windows(history: &History) -> Vec<FaultWindow> {
    let mut windows: Vec<FaultWindow> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for op in history.ops() {
        let Op::Nemesis(event) = &op.op else { continue };
        let ok = matches!(op.outcome, Outcome::Ok(_));
        let start_us = op.wall.invoked_us.unwrap_or(0);
        let end_us = op.wall.completed_us.or(op.wall.invoked_us);
        match event.action {
            NemesisAction::Start => {
                open.push(windows.len());
                windows.push(FaultWindow {
                    fault: event.fault.clone(),
                    nodes: event.nodes.clone(),
                    detail: event.detail.clone(),
                    start_us,
                    end_us: None,
                    clean: ok,
                });
            }
            NemesisAction::Stop => {
                let matching = open.iter().position(|&i| {
                    windows[i].fault == event.fault && windows[i].nodes == event.nodes
                });
                match matching {
                    Some(position) => {
                        let window = &mut windows[open.remove(position)];
                        window.end_us = end_us;
                        window.clean &= ok;
                    }
                    None => windows.push(FaultWindow {
                        fault: event.fault.clone(),
                        nodes: event.nodes.clone(),
                        detail: event.detail.clone(),
                        start_us,
                        end_us,
                        clean: ok,
                    }),
                }
            }
        }
    }
    windows
}

/// Client operations by function and outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Function name → (ok, fail, info).
    pub by_function: BTreeMap<&'static str, (usize, usize, usize)>,
}

impl OpCounts {
    pub fn of(history: &History) -> OpCounts {
        let mut counts = OpCounts::default();
        for op in history.client_ops() {
            let entry = counts.by_function.entry(function(&op.op)).or_default();
            match op.outcome {
                Outcome::Ok(_) => entry.0 += 1,
                Outcome::Fail => entry.1 += 1,
                Outcome::Info => entry.2 += 1,
            }
        }
        counts
    }

    /// (ok, fail, info) over every function.
    pub fn total(&self) -> (usize, usize, usize) {
        self.by_function
            .values()
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    }
}

fn function(op: &Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Write(_) => "write",
        Op::Cas { .. } => "cas",
        Op::Add(_) => "add",
        Op::ReadAll => "read-all",
        Op::Delete => "delete",
        Op::List => "list",
        Op::Send { .. } => "send",
        Op::Receive { .. } => "receive",
        Op::DeleteMessages(_) => "delete",
        Op::Drain => "drain",
        Op::PutRecords(_) => "put",
        Op::GetShardIterator { .. } => "iterator",
        Op::GetRecords { .. } => "get",
        Op::ListShards => "list",
        Op::SplitShard { .. } => "split",
        Op::MergeShards { .. } => "merge",
        Op::Nemesis(_) => "nemesis",
    }
}

/// Latency of an operation that completed, in milliseconds.
pub fn latency_ms(op: &Operation) -> Option<f64> {
    let (from, to) = (op.wall.invoked_us?, op.wall.completed_us?);
    Some(to.saturating_sub(from) as f64 / 1000.0)
}

/// p50, p99 and max latency of the `ok` client operations, in milliseconds.
pub fn latency_percentiles(history: &History) -> Option<(f64, f64, f64)> {
    let mut all: Vec<f64> = history
        .client_ops()
        .filter(|op| matches!(op.outcome, Outcome::Ok(_)))
        .filter_map(latency_ms)
        .collect();
    if all.is_empty() {
        return None;
    }
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
    Some((at(0.5), at(0.99), all[all.len() - 1]))
}

/// Facts about the run that the history does not hold.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub workload: String,
    pub target: String,
    pub nemesis: Vec<String>,
    pub seed: u64,
    pub time_limit_s: u64,
    pub clients: usize,
    /// Whether each client process talked to one node only.
    pub pinned: bool,
    pub started_utc: String,
    /// How long the cluster took to be ready after healing, or why it never was.
    pub recovery: String,
    /// Failures of the harness itself (nemesis steps, client setup).
    pub harness_errors: Vec<String>,
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

/// The human-readable summary.
pub fn summary(info: &RunInfo, history: &History, checked: &Checked, exit_code: u8) -> String {
    let mut s = String::new();
    let counts = OpCounts::of(history);
    let (ok, fail, unknown) = counts.total();
    let _ = writeln!(
        s,
        "stratus-jepsen run: workload {}, target {}, nemesis {}, seed {}",
        info.workload,
        info.target,
        if info.nemesis.is_empty() {
            "none".to_string()
        } else {
            info.nemesis.join(",")
        },
        info.seed
    );
    let _ = writeln!(
        s,
        "started {} UTC, time limit {} s, {} clients{}",
        info.started_utc,
        info.time_limit_s,
        info.clients,
        if info.pinned {
            ", each process pinned to one node"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "\nverdict: {} (exit code {exit_code})",
        checked.validity()
    );
    let _ = writeln!(
        s,
        "\noperations: {} (ok {ok}, fail {fail}, unknown {unknown})",
        ok + fail + unknown
    );
    for (f, (ok, fail, info)) in &counts.by_function {
        let _ = writeln!(s, "  {f:<9} ok {ok:>7}  fail {fail:>6}  unknown {info:>6}");
    }
    if let Some((p50, p99, max)) = latency_percentiles(history) {
        let _ = writeln!(
            s,
            "latency of ok operations: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
        );
    }
    let windows = fault_windows(history);
    let _ = writeln!(s, "\nfaults ({}), seconds since start:", windows.len());
    for w in &windows {
        let end = w
            .end_us
            .map(|e| format!("{:7.2}", secs(e)))
            .unwrap_or_else(|| "    end".into());
        let _ = writeln!(
            s,
            "  {:7.2} - {end}  {} {:?}{}{}",
            secs(w.start_us),
            w.fault,
            w.nodes,
            if w.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", w.detail)
            },
            if w.clean { "" } else { "  [step failed]" }
        );
    }
    let _ = writeln!(s, "recovery after healing: {}", info.recovery);
    if !info.harness_errors.is_empty() {
        let _ = writeln!(s, "\nharness errors ({}):", info.harness_errors.len());
        for e in &info.harness_errors {
            let _ = writeln!(s, "  {e}");
        }
    }
    let _ = writeln!(s, "\nchecker:\n{}", checked.explain(history));
    s
}

/// The machine-readable verdict.
pub fn verdict_json(
    info: &RunInfo,
    history: &History,
    checked: &Checked,
    exit_code: u8,
) -> serde_json::Value {
    let (ok, fail, unknown) = OpCounts::of(history).total();
    let faults: Vec<serde_json::Value> = fault_windows(history)
        .iter()
        .map(|w| {
            json!({
                "fault": w.fault,
                "nodes": w.nodes,
                "detail": w.detail,
                "start_s": secs(w.start_us),
                "end_s": w.end_us.map(secs),
                "clean": w.clean,
            })
        })
        .collect();
    json!({
        "workload": info.workload,
        "target": info.target,
        "nemesis": info.nemesis,
        "seed": info.seed,
        "time_limit_s": info.time_limit_s,
        "clients": info.clients,
        "pinned": info.pinned,
        "started_utc": info.started_utc,
        "validity": checked.validity().to_string(),
        "exit_code": exit_code,
        "ops": { "total": ok + fail + unknown, "ok": ok, "fail": fail, "unknown": unknown },
        "faults": faults,
        "recovery": info.recovery,
        "harness_errors": info.harness_errors,
        "checker": checked.to_json(),
    })
}

/// Writes summary.txt and verdict.json into `dir`; returns the summary.
pub fn write(
    dir: &Path,
    info: &RunInfo,
    history: &History,
    checked: &Checked,
    exit_code: u8,
) -> std::io::Result<String> {
    let text = summary(info, history, checked, exit_code);
    std::fs::write(dir.join("summary.txt"), &text)?;
    let json = verdict_json(info, history, checked, exit_code);
    let pretty = serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("verdict.json"), pretty + "\n")?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{NemesisEvent, OpResult, ProcessId, Recorder};

    fn event(action: NemesisAction, fault: &str, nodes: Vec<u64>) -> Op {
        Op::Nemesis(NemesisEvent {
            action,
            fault: fault.into(),
            nodes,
            detail: String::new(),
        })
    }

    #[test]
    fn windows_pair_starts_with_their_stops() {
        let rec = Recorder::new();
        let p = ProcessId(u64::MAX);
        let done = Outcome::Ok(OpResult::Done);
        let a = rec.invoke(p, event(NemesisAction::Start, "kill", vec![2]));
        rec.complete(a, done.clone()).unwrap();
        let r = rec.invoke_keyed(ProcessId(0), "k", Op::Read);
        rec.complete(r, Outcome::Fail).unwrap();
        let b = rec.invoke(p, event(NemesisAction::Stop, "kill", vec![2]));
        rec.complete(b, Outcome::Info).unwrap();
        let c = rec.invoke(p, event(NemesisAction::Start, "pause", vec![3]));
        rec.complete(c, done.clone()).unwrap();
        let h = rec.invoke(p, event(NemesisAction::Stop, "heal-all", vec![1, 2]));
        rec.complete(h, done).unwrap();
        let windows = fault_windows(&rec.history());
        assert_eq!(windows.len(), 3);
        assert_eq!(windows[0].fault, "kill");
        assert!(windows[0].end_us.is_some());
        assert!(!windows[0].clean, "the stop failed");
        assert_eq!(windows[1].fault, "pause");
        assert_eq!(windows[1].end_us, None);
        assert_eq!(windows[2].fault, "heal-all");

        let counts = OpCounts::of(&rec.history());
        assert_eq!(counts.total(), (0, 1, 0));
        assert_eq!(counts.by_function["read"], (0, 1, 0));
    }
}
