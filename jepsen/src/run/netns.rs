//! Network faults inside one network namespace, entered from the host with `nsenter`, so
//! they work on containers whose image has no shell, no iptables and no tc.
//!
//! Owns the exact commands:
//! - cut: `iptables -A INPUT -s <peers> -j DROP` and `iptables -A OUTPUT -d <peers> -j DROP`
//!   in the filter table. Only the listed peer addresses are dropped: traffic from the host
//!   (the bridge gateway, where the harness's clients connect from) keeps flowing.
//! - heal: `iptables -F` flushes the filter table (Docker keeps its own rules of a
//!   container's namespace in the nat table, which this leaves alone).
//! - throttle: `tc qdisc replace dev <dev> root tbf rate R burst B latency L`. The token
//!   bucket caps the node's outgoing bandwidth and queues what exceeds it for up to L (then
//!   drops it), so a node that sends more than R sees its packets delayed and lost. This
//!   kernel has no `sch_netem`, so a fixed added delay is not available.
//! - unthrottle: `tc qdisc del dev <dev> root`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use crate::run::target::TargetError;

/// The token bucket applied by [`Netns::throttle`]: 128 kbit/s sustained, 16 kbit of burst,
/// up to 500 ms of queueing before drops.
pub const THROTTLE: Throttle = Throttle {
    rate: "128kbit",
    burst: "16kbit",
    latency: "500ms",
};

/// A token-bucket filter's parameters, in tc's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub rate: &'static str,
    pub burst: &'static str,
    pub latency: &'static str,
}

/// One network namespace, named by a file nsenter accepts (`/proc/<pid>/ns/net` or
/// `/run/netns/<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    path: PathBuf,
}

impl Netns {
    /// The namespace process `pid` lives in.
    pub fn of_pid(pid: u32) -> Netns {
        Netns {
            path: PathBuf::from(format!("/proc/{pid}/ns/net")),
        }
    }

    /// A namespace file made by `ip netns add` or similar.
    pub fn at(path: impl Into<PathBuf>) -> Netns {
        Netns { path: path.into() }
    }

    /// Drops every packet from and to `peers`.
    pub fn drop_peers(&self, peers: &[Ipv4Addr]) -> Result<(), TargetError> {
        if peers.is_empty() {
            return Ok(());
        }
        let list = peers
            .iter()
            .map(Ipv4Addr::to_string)
            .collect::<Vec<_>>()
            .join(",");
        self.run(
            "iptables",
            &["-w", "-A", "INPUT", "-s", &list, "-j", "DROP"],
        )?;
        self.run(
            "iptables",
            &["-w", "-A", "OUTPUT", "-d", &list, "-j", "DROP"],
        )?;
        Ok(())
    }

    /// Removes every filter rule (all cuts).
    pub fn flush(&self) -> Result<(), TargetError> {
        self.run("iptables", &["-w", "-F"]).map(drop)
    }

    /// The filter rules in force, as `iptables -S` prints them.
    pub fn rules(&self) -> Result<String, TargetError> {
        self.run("iptables", &["-w", "-S"])
    }

    /// Caps `dev`'s outgoing traffic with a token bucket.
    pub fn throttle(&self, dev: &str, throttle: &Throttle) -> Result<(), TargetError> {
        self.run(
            "tc",
            &[
                "qdisc",
                "replace",
                "dev",
                dev,
                "root",
                "tbf",
                "rate",
                throttle.rate,
                "burst",
                throttle.burst,
                "latency",
                throttle.latency,
            ],
        )
        .map(drop)
    }

    /// Removes `dev`'s root qdisc; succeeds when there was none.
    pub fn unthrottle(&self, dev: &str) -> Result<(), TargetError> {
        match self.run("tc", &["qdisc", "del", "dev", dev, "root"]) {
            Ok(_) => Ok(()),
            // The kernel's answers when only the default qdisc is there.
            Err(TargetError::Command { detail, .. })
                if detail.contains("handle of zero")
                    || detail.contains("No such file")
                    || detail.contains("Invalid handle") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The qdiscs of `dev`, as `tc qdisc show` prints them.
    pub fn qdiscs(&self, dev: &str) -> Result<String, TargetError> {
        self.run("tc", &["qdisc", "show", "dev", dev])
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String, TargetError> {
        let net = format!("--net={}", self.path.display());
        let mut command = Command::new("nsenter");
        command.arg(&net).arg(program).args(args);
        let shown = format!("nsenter {net} {program} {}", args.join(" "));
        run_command(&mut command, &shown)
    }
}

/// Runs `command` to completion; its stdout on success, or an error with its stderr.
pub fn run_command(command: &mut Command, shown: &str) -> Result<String, TargetError> {
    let output = command.output().map_err(|e| TargetError::Command {
        command: shown.to_string(),
        detail: e.to_string(),
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(TargetError::Command {
            command: shown.to_string(),
            detail: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}
