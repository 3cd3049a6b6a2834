//! CPU time used by a process, from `/proc/<pid>/stat` (Linux), so a phase can report how
//! many cores the benchmark client and the server under test actually got: on a shared
//! machine that tells "the node was starved" from "the node is slow". With the
//! scheduler's statistics (`/proc/<pid>/task/*/schedstat`) it also reports how long the
//! server's threads were ready to run but waited for a CPU.

use std::collections::HashMap;
use std::time::Duration;

/// Clock ticks per second of the `/proc` times (`USER_HZ`, 100 on every mainstream
/// Linux architecture).
const USER_HZ: u64 = 100;

/// User plus system CPU time of process `pid` (all its threads), or of this process for
/// `None`; `None` when it cannot be read (not Linux, no such process).
pub fn process_cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// utime + stime from the text of a `/proc/<pid>/stat` file.
fn parse_stat(text: &str) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses.
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Field 3 (state) is the first after the name; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    Some(Duration::from_millis(ticks.checked_mul(1000 / USER_HZ)?))
}

/// Nanoseconds each thread of process `pid` has spent runnable but waiting for a CPU
/// (the second field of `/proc/<pid>/task/<tid>/schedstat`), by thread id.
pub fn thread_runqueue_waits(pid: u32) -> Option<HashMap<u32, u64>> {
    let mut waits = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread may exit between the listing and the read: skip it.
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        if let Some(wait) = text.split_whitespace().nth(1).and_then(|w| w.parse().ok()) {
            waits.insert(tid, wait);
        }
    }
    Some(waits)
}

/// Run-queue wait added between two samples of [`thread_runqueue_waits`], over the
/// threads alive at the end (a thread that started in between counts from zero; one that
/// exited in between is lost, so this is a lower bound).
fn waited_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> Duration {
    let nanos = after
        .iter()
        .map(|(tid, &now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    Duration::from_nanos(nanos)
}

/// The 60 s average of the share of time some runnable task waited for a CPU
/// (`/proc/pressure/cpu`, "some avg60", in percent); `None` where PSI is unavailable.
pub fn cpu_pressure_avg60() -> Option<f64> {
    parse_pressure(&std::fs::read_to_string("/proc/pressure/cpu").ok()?)
}

fn parse_pressure(text: &str) -> Option<f64> {
    let some = text.lines().find(|l| l.starts_with("some "))?;
    some.split_whitespace()
        .find_map(|field| field.strip_prefix("avg60="))?
        .parse()
        .ok()
}

/// CPU time two processes used over one interval.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    server_pid: Option<u32>,
    client: Option<Duration>,
    server: Option<Duration>,
    server_waits: Option<HashMap<u32, u64>>,
}

/// What a [`CpuMeter`] measured, in seconds of CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuUse {
    pub client_s: Option<f64>,
    pub server_s: Option<f64>,
    /// Seconds the server's threads were runnable but waited for a CPU (a lower bound).
    pub server_runq_wait_s: Option<f64>,
}

impl CpuMeter {
    /// Starts measuring this process and, when given, the server process `server_pid`.
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            server_pid,
            client: process_cpu_time(None),
            server: server_pid.and_then(|pid| process_cpu_time(Some(pid))),
            server_waits: server_pid.and_then(thread_runqueue_waits),
        }
    }

    /// CPU used since [`CpuMeter::start`].
    pub fn stop(&self) -> CpuUse {
        let since = |before: Option<Duration>, now: Option<Duration>| {
            Some(now?.checked_sub(before?)?.as_secs_f64())
        };
        CpuUse {
            client_s: since(self.client, process_cpu_time(None)),
            server_s: self
                .server_pid
                .and_then(|pid| since(self.server, process_cpu_time(Some(pid)))),
            server_runq_wait_s: self.server_pid.and_then(|pid| {
                let after = thread_runqueue_waits(pid)?;
                Some(waited_between(self.server_waits.as_ref()?, &after).as_secs_f64())
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_names() {
        let line = "1234 (tokio rt) worker)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100";
        assert_eq!(parse_stat(line), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat("1234 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn pressure_lines() {
        let text = "some avg10=79.10 avg60=75.57 avg300=76.54 total=3970821444\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse_pressure(text), Some(75.57));
        assert_eq!(parse_pressure("full avg60=1.0"), None);
    }

    #[test]
    fn runqueue_waits_count_new_threads_and_skip_gone_ones() {
        let before = HashMap::from([(1, 100), (2, 500)]);
        let after = HashMap::from([(1, 350), (3, 40)]);
        assert_eq!(waited_between(&before, &after), Duration::from_nanos(290));
        assert_eq!(waited_between(&after, &after), Duration::ZERO);
    }

    #[test]
    fn this_process_has_a_cpu_time_on_linux() {
        if cfg!(target_os = "linux") {
            let meter = CpuMeter::start(Some(std::process::id()));
            let mut x = 0u64;
            for i in 0..2_000_000u64 {
                x = x.wrapping_add(std::hint::black_box(i));
            }
            std::hint::black_box(x);
            let used = meter.stop();
            assert!(used.client_s.unwrap() >= 0.0);
            assert!(used.server_s.unwrap() >= 0.0);
            if std::path::Path::new("/proc/self/task").exists()
                && thread_runqueue_waits(std::process::id()).is_some_and(|w| !w.is_empty())
            {
                assert!(used.server_runq_wait_s.unwrap() >= 0.0);
            }
            assert_eq!(CpuMeter::start(None).stop().server_s, None);
        }
    }
}
