//! The compose target's network faults, tried on two hand-made network namespaces joined
//! by a veth pair: a cut drops traffic between the two peers only, healing restores it,
//! and a throttle installs (and removal clears) a tbf qdisc.
//!
//! Needs root and `ip`, `iptables`, `tc`, `nsenter` on the host, so it is ignored by
//! default: `cargo test -p stratus-jepsen --test netns -- --ignored`.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stratus_jepsen::run::netns::{Netns, THROTTLE};

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

/// Two namespaces `<name>-a` (10.213.0.1) and `<name>-b` (10.213.0.2), removed on drop.
struct Pair {
    a: String,
    b: String,
}

impl Pair {
    fn new() -> Pair {
        let tag = format!("sj{}", std::process::id() % 100_000);
        let pair = Pair {
            a: format!("{tag}-a"),
            b: format!("{tag}-b"),
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        let (va, vb) = (format!("{tag}va"), format!("{tag}vb"));
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        ip(&["link", "set", &va, "netns", &pair.a]);
        ip(&["link", "set", &vb, "netns", &pair.b]);
        ip(&["-n", &pair.a, "addr", "add", "10.213.0.1/24", "dev", &va]);
        ip(&["-n", &pair.b, "addr", "add", "10.213.0.2/24", "dev", &vb]);
        ip(&["-n", &pair.a, "link", "set", &va, "up"]);
        ip(&["-n", &pair.b, "link", "set", &vb, "up"]);
        pair
    }

    fn netns(name: &str) -> Netns {
        Netns::at(format!("/run/netns/{name}"))
    }

    fn device_b(&self) -> String {
        self.b.replace("-b", "vb")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
    }
}

/// Moves the calling thread into namespace `name`.
fn enter(name: &str) {
    let file = File::open(format!("/run/netns/{name}")).expect("open netns");
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Whether a TCP connection from namespace `from` to `to` opens within a second.
fn connects(from: &str, to: SocketAddr) -> bool {
    let from = from.to_string();
    std::thread::spawn(move || {
        enter(&from);
        TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok()
    })
    .join()
    .expect("probe thread")
}

#[test]
#[ignore = "needs root, ip, iptables, tc and nsenter; run with --ignored"]
fn cuts_heal_and_throttles_act_inside_the_namespace() {
    let pair = Pair::new();
    let server: SocketAddr = (Ipv4Addr::new(10, 213, 0, 2), 9000).into();
    let stop = Arc::new(AtomicBool::new(false));
    let listener = {
        let (b, stop) = (pair.b.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            enter(&b);
            let listener = TcpListener::bind(server).expect("bind in b");
            listener.set_nonblocking(true).expect("nonblocking");
            while !stop.load(Ordering::SeqCst) {
                let _ = listener.accept();
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(connects(&pair.a, server), "no connection before the cut");

    let a = Pair::netns(&pair.a);
    a.drop_peers(&[Ipv4Addr::new(10, 213, 0, 2), Ipv4Addr::new(10, 213, 0, 9)])
        .unwrap();
    let rules = a.rules().unwrap();
    assert!(
        rules.contains("-A INPUT -s 10.213.0.2/32 -j DROP"),
        "{rules}"
    );
    assert!(
        rules.contains("-A OUTPUT -d 10.213.0.2/32 -j DROP"),
        "{rules}"
    );
    assert!(!connects(&pair.a, server), "connected through the cut");

    a.flush().unwrap();
    assert!(!a.rules().unwrap().contains("DROP"));
    assert!(connects(&pair.a, server), "no connection after healing");

    let b = Pair::netns(&pair.b);
    let device = pair.device_b();
    b.throttle(&device, &THROTTLE).unwrap();
    let qdiscs = b.qdiscs(&device).unwrap();
    assert!(
        qdiscs.contains("tbf") && qdiscs.contains("128Kbit"),
        "{qdiscs}"
    );
    b.unthrottle(&device).unwrap();
    assert!(!b.qdiscs(&device).unwrap().contains("tbf"));
    // Removing a throttle that is not there is not an error.
    b.unthrottle(&device).unwrap();
    assert!(connects(&pair.a, server));

    stop.store(true, Ordering::SeqCst);
    listener.join().expect("listener thread");
}
