//! The `stratus-jepsen check` command: reads a saved history and answers through its exit
//! code (0 valid, 1 invalid, 2 unknown or error), which scripts and CI rely on.

use std::path::Path;
use std::process::{Command, Output};

use stratus_jepsen::history::{History, Op, OpResult, Outcome, ProcessId, Recorder};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stratus-jepsen"))
        .args(args)
        .output()
        .expect("run stratus-jepsen")
}

fn check(path: &Path, model: &str, extra: &[&str]) -> (i32, String) {
    let path = path.to_str().expect("utf-8 temp path");
    let mut args = vec!["check", "--history", path, "--model", model];
    args.extend_from_slice(extra);
    let output = run(&args);
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().expect("exit code"), text)
}

/// Writes 1 then reads `seen` on key "k", one client after the other.
fn register_history(seen: u64) -> History {
    let rec = Recorder::new();
    let w = rec.invoke_keyed(ProcessId(0), "k", Op::Write(1));
    rec.complete(w, Outcome::Ok(OpResult::Done)).unwrap();
    let r = rec.invoke_keyed(ProcessId(1), "k", Op::Read);
    rec.complete(r, Outcome::Ok(OpResult::Read(Some(seen))))
        .unwrap();
    rec.history()
}

#[test]
fn register_verdicts_map_to_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    register_history(1).save(&good).unwrap();
    let (code, text) = check(&good, "register", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("valid"), "{text}");

    let bad = dir.path().join("bad.jsonl");
    register_history(2).save(&bad).unwrap();
    let (code, text) = check(&bad, "register", &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not linearizable"), "{text}");

    let (code, text) = check(&bad, "register", &["--max-steps", "0"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("unknown"), "{text}");
}

#[test]
fn set_verdicts_map_to_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("set.jsonl");
    let rec = Recorder::new();
    for value in 0..3 {
        let id = rec.invoke(ProcessId(value), Op::Add(value));
        rec.complete(id, Outcome::Ok(OpResult::Done)).unwrap();
    }
    let read = rec.invoke(ProcessId(9), Op::ReadAll);
    rec.complete(read, Outcome::Ok(OpResult::ReadAll(vec![0, 2])))
        .unwrap();
    rec.history().save(&path).unwrap();
    let (code, text) = check(&path, "set", &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("lost"), "{text}");
}

#[test]
fn unreadable_or_mismatched_histories_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = check(&dir.path().join("missing.jsonl"), "register", &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("reading history"), "{text}");

    let garbage = dir.path().join("garbage.jsonl");
    std::fs::write(&garbage, "not json\n").unwrap();
    assert_eq!(check(&garbage, "register", &[]).0, 2);

    let register = dir.path().join("register.jsonl");
    register_history(1).save(&register).unwrap();
    let (code, text) = check(&register, "set", &[]);
    assert_eq!(code, 2, "{text}");
}

#[test]
fn run_refuses_what_the_local_target_cannot_do_before_starting() {
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().expect("utf-8 temp path");
    let output = run(&[
        "run",
        "--target",
        "local",
        "--workload",
        "register",
        "--nemesis",
        "kill,partition",
        "--time-limit",
        "1",
        "--store",
        store_arg,
    ]);
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(text.contains("cannot partition"), "{text}");
    assert_eq!(
        std::fs::read_dir(store.path()).unwrap().count(),
        0,
        "no run directory"
    );

    let output = run(&[
        "run",
        "--target",
        "local",
        "--workload",
        "set",
        "--stratusd",
        "/nonexistent/stratusd",
        "--store",
        store_arg,
    ]);
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(text.contains("stratusd not found"), "{text}");

    let output = run(&[
        "run",
        "--target",
        "local",
        "--workload",
        "set",
        "--nemesis",
        "clock",
    ]);
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("unknown fault"), "{text}");
}
