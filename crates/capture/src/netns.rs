//! Network namespaces and veth pairs for labs, tests and the live benchmark (Linux, root).
//!
//! A [`Netns`] is created with `ip netns add` and deleted when dropped, so a failing test
//! leaves nothing behind. [`in_netns`] runs a closure on a fresh thread that has entered the
//! namespace with `setns(2)`: sockets made there stay in that namespace after the thread
//! ends, which is how one process plays several hosts.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A process-unique name with a prefix: `<prefix>-<pid>-<n>` (at most 15 characters are used
/// for interface names, so keep prefixes short).
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Netns {
    /// Creates a namespace with loopback up.
    pub fn new(name: &str) -> io::Result<Self> {
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command inside the namespace (`ip netns exec`), failing on a non-zero exit.
    pub fn exec(&self, cmd: &[&str]) -> io::Result<()> {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend_from_slice(cmd);
        ip(&args)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.name]);
    }
}

/// Connects two namespaces with a veth pair named `a_if` (in `a`) and `b_if` (in `b`), both up,
/// with IPv6 off (no router solicitations in measurements) and optional IPv4 addresses.
pub fn veth_pair(
    a: &Netns,
    a_if: &str,
    b: &Netns,
    b_if: &str,
    addrs: Option<(&str, &str)>,
) -> io::Result<()> {
    ip(&[
        "link",
        "add",
        a_if,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])?;
    for (ns, ifname) in [(a, a_if), (b, b_if)] {
        ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{ifname}.disable_ipv6=1"),
        ])?;
        ns.exec(&["ip", "link", "set", ifname, "up"])?;
    }
    if let Some((aa, ba)) = addrs {
        a.exec(&["ip", "addr", "add", aa, "dev", a_if])?;
        b.exec(&["ip", "addr", "add", ba, "dev", b_if])?;
    }
    Ok(())
}

/// Runs `f` on a new scoped thread inside namespace `name` and returns its result; a panic in
/// `f` is propagated. Sockets made there stay in that namespace for their whole life.
pub fn in_netns<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let file = open_netns(name)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(&file)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Spawns `f` on a new thread inside namespace `name` (for long-running peers); the thread
/// and every thread it starts live in that namespace.
pub fn spawn_in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<std::thread::JoinHandle<io::Result<T>>> {
    let file = open_netns(name)?;
    Ok(std::thread::spawn(move || {
        enter(&file)?;
        Ok(f())
    }))
}

fn open_netns(name: &str) -> io::Result<File> {
    let path = format!("/var/run/netns/{name}");
    File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// Moves the calling thread into the namespace of `file`.
fn enter(file: &File) -> io::Result<()> {
    // SAFETY: setns only changes this thread's network namespace; the fd is open.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
