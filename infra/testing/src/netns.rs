//! Regions on one machine: network namespaces, each joined to the root
//! namespace by a veth pair with a /30 of its own, and `iptables` rules that
//! cut traffic silently. Needs root, `ip` (iproute2) and `iptables`.
//!
//! Region `N` is `10.77.N.2` inside its namespace and `10.77.N.1` on the
//! root side. A namespace has no route to any other (no default route), so
//! traffic between regions goes through something listening on a root-side
//! address: the fault proxy ([`crate::faults`]) in the test process. The
//! test process itself reaches every region directly, as an observer.
//!
//! Everything is named after the creating process (`adcast-<pid>-<label>`
//! for namespaces, `ac<pid>r<N>` for the root end of a veth pair, at most 15
//! characters) and removed on drop, also when a test panics: the processes
//! still inside, the namespace, its veth pair and its rules.
//! `infra/regions.sh` removes what a killed run left behind.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};

/// Why regions cannot be made on this machine (the scenarios then skip).
pub fn unavailable() -> Option<String> {
    if !crate::processes::is_root() {
        return Some("network namespaces need root".into());
    }
    for (tool, args) in [
        ("ip", &["netns", "list"][..]),
        ("iptables", &["--version"][..]),
    ] {
        let ran = Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !ran.is_ok_and(|status| status.success()) {
            return Some(format!("`{tool}` is missing or does not work here"));
        }
    }
    None
}

/// Runs a tool and panics with its error output if it fails.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("running {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Runs a tool, ignoring failure (cleanup of what may already be gone).
fn run_quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A free region number: no root-side address `10.77.N.1` is in use.
fn free_region_number() -> u8 {
    let output = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .expect("running ip addr");
    let text = String::from_utf8_lossy(&output.stdout);
    (1..=254u8)
        .find(|n| !text.contains(&format!(" 10.77.{n}.")))
        .expect("a free 10.77.N.0/30 (254 regions in use?)")
}

/// One region: a namespace with one veth link to the root namespace.
#[derive(Debug)]
pub struct Region {
    label: String,
    namespace: String,
    root_link: String,
    inside_link: String,
    number: u8,
}

impl Region {
    /// Creates the namespace `adcast-<pid>-<label>`, its veth pair and
    /// addresses, with loopback up. `label` is short (≤ 12 characters).
    pub fn create(label: &str) -> Region {
        assert!(
            label.len() <= 12 && label.bytes().all(|b| b.is_ascii_alphanumeric()),
            "region label {label:?}: 1–12 letters or digits"
        );
        let pid = std::process::id();
        let number = free_region_number();
        let region = Region {
            label: label.to_owned(),
            namespace: format!("adcast-{pid}-{label}"),
            root_link: format!("ac{pid}r{number}"),
            inside_link: format!("ac{pid}i{number}"),
            number,
        };
        assert!(region.root_link.len() <= 15, "interface name too long");
        // From here on, drop removes whatever was made.
        run("ip", &["netns", "add", &region.namespace]);
        run(
            "ip",
            &[
                "link",
                "add",
                &region.root_link,
                "type",
                "veth",
                "peer",
                "name",
                &region.inside_link,
            ],
        );
        run(
            "ip",
            &[
                "link",
                "set",
                &region.inside_link,
                "netns",
                &region.namespace,
            ],
        );
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", region.root_address()),
                "dev",
                &region.root_link,
            ],
        );
        run("ip", &["link", "set", &region.root_link, "up"]);
        region.run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", region.address()),
                "dev",
                &region.inside_link,
            ],
        );
        region.run("ip", &["link", "set", &region.inside_link, "up"]);
        region.run("ip", &["link", "set", "lo", "up"]);
        region
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The region's own address, inside its namespace (`10.77.N.2`).
    pub fn address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.number, 2)
    }

    /// The root side of its link (`10.77.N.1`): where the region reaches
    /// the fault proxy.
    pub fn root_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.number, 1)
    }

    /// `program` run inside the region (`ip netns exec <ns> program`; the
    /// child is the program itself, so killing it kills the program).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace])
            .arg(program);
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.namespace, program];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    fn iptables(&self, args: &[&str]) {
        let mut all = vec!["-w"];
        all.extend_from_slice(args);
        let mut full = vec!["netns", "exec", self.namespace.as_str(), "iptables"];
        full.extend_from_slice(&all);
        run("ip", &full);
    }

    /// Silently drops (no RST, TCP retransmits) all TCP traffic between
    /// this region and `peer` (an address and port as seen from inside,
    /// e.g. a link's root-side address, or `127.0.0.1:6379` for a local
    /// server), both ways, until the returned guard is dropped.
    pub fn cut(&self, peer: SocketAddrV4) -> Partition {
        let (ip, port) = (peer.ip().to_string(), peer.port().to_string());
        self.partition(vec![
            vec![
                "OUTPUT", "-p", "tcp", "-d", &ip, "--dport", &port, "-j", "DROP",
            ],
            vec![
                "INPUT", "-p", "tcp", "-s", &ip, "--sport", &port, "-j", "DROP",
            ],
        ])
    }

    /// Silently drops everything on the region's link to the outside except
    /// TCP to `observer_ports` here (the test's view of the region's
    /// servers), until the returned guard is dropped. Loopback inside the
    /// region keeps working.
    pub fn isolate(&self, observer_ports: &[u16]) -> Partition {
        let ports: Vec<String> = observer_ports.iter().map(u16::to_string).collect();
        let link = self.inside_link.as_str();
        let mut rules = Vec::new();
        for port in &ports {
            rules.push(vec![
                "INPUT", "-i", link, "-p", "tcp", "--dport", port, "-j", "ACCEPT",
            ]);
            rules.push(vec![
                "OUTPUT", "-o", link, "-p", "tcp", "--sport", port, "-j", "ACCEPT",
            ]);
        }
        rules.push(vec!["INPUT", "-i", link, "-j", "DROP"]);
        rules.push(vec!["OUTPUT", "-o", link, "-j", "DROP"]);
        self.partition(rules)
    }

    fn partition(&self, rules: Vec<Vec<&str>>) -> Partition {
        let rules: Vec<Vec<String>> = rules
            .into_iter()
            .map(|rule| rule.into_iter().map(str::to_owned).collect())
            .collect();
        let mut partition = Partition {
            namespace: self.namespace.clone(),
            rules: Vec::new(),
        };
        for rule in rules {
            let mut append = vec!["-A"];
            append.extend(rule.iter().map(String::as_str));
            self.iptables(&append);
            partition.rules.push(rule);
        }
        partition
    }

    /// Process ids still running inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        Command::new("ip")
            .args(["netns", "pids", &self.namespace])
            .output()
            .map(|output| {
                String::from_utf8_lossy(&output.stdout)
                    .split_whitespace()
                    .filter_map(|pid| pid.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        for pid in self.pids() {
            run_quietly("kill", &["-KILL", &pid.to_string()]);
        }
        run_quietly("ip", &["netns", "del", &self.namespace]);
        // Deleting the namespace removes the pair; this is for a namespace
        // that could not be deleted.
        run_quietly("ip", &["link", "del", &self.root_link]);
    }
}

/// `iptables` DROP rules in a region, removed when dropped (the heal).
/// Rules left in a namespace go with it.
#[must_use = "the partition heals when this guard is dropped"]
pub struct Partition {
    namespace: String,
    rules: Vec<Vec<String>>,
}

impl Partition {
    /// Removes the rules now.
    pub fn heal(self) {}
}

impl Drop for Partition {
    fn drop(&mut self) {
        for rule in self.rules.iter().rev() {
            let mut delete = vec!["-D"];
            delete.extend(rule.iter().map(String::as_str));
            let mut full = vec!["netns", "exec", self.namespace.as_str(), "iptables", "-w"];
            full.extend(delete);
            run_quietly("ip", &full);
        }
    }
}
