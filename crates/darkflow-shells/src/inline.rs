//! Inline gateway: DarkFlows handed to a honeypot, as the original DarkFlow system did.
//!
//! This is the shell: NFQUEUE, the raw sockets and the clock. Every decision — which packet
//! passes, which SYN is re-sent, when a flow is cut off — is made by the pure
//! [`Gateway`] of `ashiato-darkflow`, which is handed `now` with each packet; its policy is
//! documented and unit-tested there.
//!
//! # How packets move
//! On a Linux gateway, netfilter sends a few packets through NFQUEUE to this process (mangle
//! chain [`CHAIN`], see [`rules`]):
//! * every client SYN, every SYN/ACK and every RST (one or two packets per connection) — the
//!   detector sees them and they are accepted at once and unchanged, so answered flows pass
//!   untouched, their data packets never queued;
//! * every packet of a flow already handed to the honeypot (conntrack mark `mark`), and every
//!   packet from the honeypot's interface (the detector never sees those).
//!
//! When a SYN has waited T without an answer, the detector reports a DarkFlow and this
//! process re-sends the SYN it kept (a raw socket with `SO_MARK = mark`). [`CHAIN_OUT`]
//! copies that mark into the connection's conntrack mark, and a policy route (`ip rule
//! fwmark mark`) sends the SYN, and every later client packet of the flow, to the honeypot.
//! The honeypot accepts any destination address (an AnyIP route) and so answers as the
//! original destination. If the real server answers after all, the flow is *cut off*: from
//! the next packet on, the honeypot's packets of that flow are dropped and the client's
//! packets get mark `mark + 1`, which routes them normally again.
//!
//! The queue is opened with fail-open and the rules with `bypass`: if this process stops or
//! falls behind, packets pass as if the gateway were plain.
//!
//! # Bounds
//! The SYN bytes kept for re-sending are capped at [`MAX_KEPT_SYN`] bytes each and by the
//! detector's pending bound; the cut-off set by the DarkFlow table's bound.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ashiato_darkflow::detector::{Config, Event};
pub use ashiato_darkflow::gateway::MAX_KEPT_SYN;
use ashiato_darkflow::gateway::{Gateway, GatewayConfig, GatewayCounters, Verdict};
use nfq::Queue;

/// Inline settings.
#[derive(Clone, Debug)]
pub struct InlineConfig {
    /// NFQUEUE number.
    pub queue: u16,
    /// Firewall mark of flows handed to the honeypot; `mark + 1` marks cut-off flows.
    pub mark: u32,
    /// Detector settings.
    pub detector: Config,
    /// Interface index facing the honeypot: its packets of cut-off flows are dropped.
    pub honeypot_ifindex: u32,
}

/// Errors of the inline gateway.
#[derive(Debug, thiserror::Error)]
pub enum InlineError {
    /// NFQUEUE could not be opened or bound.
    #[error("NFQUEUE {queue}: {source} (needs root or CAP_NET_ADMIN, and nfnetlink_queue)")]
    Queue {
        /// Queue number.
        queue: u16,
        /// Cause.
        source: io::Error,
    },
    /// The raw socket for re-sending SYNs could not be opened.
    #[error("raw socket for re-sending SYNs: {0}")]
    Raw(io::Error),
    /// Receiving from the queue failed.
    #[error("receiving from NFQUEUE: {0}")]
    Recv(io::Error),
}

/// Running figures of the gateway.
#[derive(Debug, Default)]
pub struct InlineStats {
    /// Packets given a verdict.
    pub verdicts: AtomicU64,
    /// SYNs re-sent to the honeypot.
    pub handed_over: AtomicU64,
    /// Flows cut off after a late answer.
    pub cut_off: AtomicU64,
    /// Honeypot packets dropped because their flow was cut off.
    pub dropped: AtomicU64,
    /// DarkFlows whose SYN could not be re-sent (none kept, or the send failed).
    pub resend_failed: AtomicU64,
    /// Queued packets that did not parse (accepted unchanged).
    pub unparsed: AtomicU64,
}

impl InlineStats {
    /// Copies the gateway's figures.
    fn publish(&self, c: &GatewayCounters) {
        for (to, v) in [
            (&self.verdicts, c.verdicts),
            (&self.handed_over, c.handed_over),
            (&self.cut_off, c.cut_off),
            (&self.dropped, c.dropped),
            (&self.resend_failed, c.resend_failed),
            (&self.unparsed, c.unparsed),
        ] {
            to.store(v, Ordering::Relaxed);
        }
    }
}

/// Chain in the mangle table that queues what the gateway must see.
pub const CHAIN: &str = "ASHIATO_DF";
/// Chain in the mangle table's OUTPUT that copies the re-sent SYN's mark to conntrack.
pub const CHAIN_OUT: &str = "ASHIATO_DF_OUT";

/// The `iptables -t mangle` rules of the gateway, one argument list per rule (the same for
/// `ip6tables`), to be appended to [`CHAIN`] and [`CHAIN_OUT`]. iptables rather than native
/// nftables rules: many kernels build the xtables NFQUEUE target but not `nft_queue`, and
/// `iptables` (either backend) reaches the former.
pub fn rules(queue: u16, mark: u32, honeypot_iface: &str) -> Vec<Vec<String>> {
    let m = format!("{mark:#x}");
    let q = queue.to_string();
    let nfq = |v: &mut Vec<String>| {
        v.extend(["-j", "NFQUEUE", "--queue-num", &q, "--queue-bypass"].map(String::from))
    };
    let mut out = Vec::new();
    let mut r = |args: &[&str], queue_it: bool| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if queue_it {
            nfq(&mut v);
        }
        out.push(v);
    };
    // Packets of flows handed to the honeypot: route by the mark, and let the process see
    // them (cut-off decisions).
    // Only the client's direction is routed by the mark: answers go back to the client.
    r(
        &[
            "-A",
            CHAIN,
            "-m",
            "connmark",
            "--mark",
            &m,
            "-m",
            "conntrack",
            "--ctdir",
            "ORIGINAL",
            "-j",
            "MARK",
            "--set-mark",
            &m,
        ],
        false,
    );
    // Everything from the honeypot (only DarkFlows go there): the process drops what belongs
    // to a cut-off flow, whatever conntrack remembers (an RST ends its entry and its mark).
    r(&["-A", CHAIN, "-i", honeypot_iface], true);
    r(&["-A", CHAIN, "-m", "connmark", "--mark", &m], true);
    r(
        &[
            "-A",
            CHAIN,
            "-p",
            "tcp",
            "--tcp-flags",
            "FIN,SYN,RST,ACK",
            "SYN",
        ],
        true,
    );
    r(
        &[
            "-A",
            CHAIN,
            "-p",
            "tcp",
            "--tcp-flags",
            "FIN,SYN,RST,ACK",
            "SYN,ACK",
        ],
        true,
    );
    r(
        &["-A", CHAIN, "-p", "tcp", "--tcp-flags", "RST", "RST"],
        true,
    );
    r(
        &[
            "-A",
            CHAIN_OUT,
            "-m",
            "mark",
            "--mark",
            &m,
            "-j",
            "CONNMARK",
            "--set-mark",
            &m,
        ],
        false,
    );
    out
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A raw IP socket that sends kept SYNs with the honeypot mark.
struct Resender {
    v4: OwnedFd,
    v6: Option<OwnedFd>,
}

fn raw_socket(family: libc::c_int, mark: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: setsockopt reads exactly size_of::<u32>() bytes from `mark`.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&raw const mark).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

impl Resender {
    fn new(mark: u32) -> io::Result<Self> {
        Ok(Self {
            v4: raw_socket(libc::AF_INET, mark)?,
            v6: raw_socket(libc::AF_INET6, mark).ok(),
        })
    }

    /// Sends an IP packet (header included) to its destination.
    fn send(&self, ip: &[u8], dst: IpAddr) -> io::Result<()> {
        // SAFETY: a zeroed sockaddr_storage is valid, and large and aligned enough for either
        // family's address, whose fields are set below.
        let mut sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let (fd, len) = match dst {
            IpAddr::V4(a) => {
                let sin = (&raw mut sa).cast::<libc::sockaddr_in>();
                // SAFETY: see above.
                unsafe {
                    (*sin).sin_family = libc::AF_INET as libc::sa_family_t;
                    (*sin).sin_addr.s_addr = u32::from(a).to_be();
                }
                (&self.v4, std::mem::size_of::<libc::sockaddr_in>())
            }
            IpAddr::V6(a) => {
                let fd = self
                    .v6
                    .as_ref()
                    .ok_or_else(|| io::Error::other("no IPv6 raw socket"))?;
                let sin6 = (&raw mut sa).cast::<libc::sockaddr_in6>();
                // SAFETY: see above.
                unsafe {
                    (*sin6).sin6_family = libc::AF_INET6 as libc::sa_family_t;
                    (*sin6).sin6_addr.s6_addr = a.octets();
                }
                (fd, std::mem::size_of::<libc::sockaddr_in6>())
            }
        };
        // SAFETY: buffer and address are valid for the given lengths.
        let r = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                ip.as_ptr().cast(),
                ip.len(),
                0,
                (&raw const sa).cast(),
                len as libc::socklen_t,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// Sends the SYNs the gateway wants re-sent; a failed send is reported back to it.
fn send_resends(gw: &mut Gateway, resend: &Resender) {
    while let Some(r) = gw.poll_resend() {
        if resend.send(&r.ip, r.flow.dst).is_err() {
            gw.resend_failed(r.flow);
        }
    }
}

/// Runs the gateway. `on_event` sees every detector event (from the queue thread and the
/// timer thread, never both at once). Receiving blocks, so after `stop` is set this returns
/// with the next queued packet; a process that is shutting down need not wait for that: the
/// kernel accepts queued traffic again as soon as the queue's socket is closed (fail-open).
pub fn run(
    cfg: &InlineConfig,
    stop: &AtomicBool,
    stats: &InlineStats,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<(), InlineError> {
    let qerr = |source| InlineError::Queue {
        queue: cfg.queue,
        source,
    };
    let mut q = Queue::open().map_err(qerr)?;
    q.bind(cfg.queue).map_err(qerr)?;
    q.set_fail_open(cfg.queue, true).map_err(qerr)?;
    q.set_queue_max_len(cfg.queue, 8192).map_err(qerr)?;
    q.set_copy_range(cfg.queue, MAX_KEPT_SYN as u16)
        .map_err(qerr)?;
    let resend = Resender::new(cfg.mark).map_err(InlineError::Raw)?;
    let gateway = Mutex::new(Gateway::new(GatewayConfig {
        mark: cfg.mark,
        detector: cfg.detector,
    }));
    std::thread::scope(|s| {
        // Timer: decide deadlines by the clock and hand DarkFlows over.
        s.spawn(|| {
            let mut on_event = |e: &Event| on_event(e);
            while !stop.load(Ordering::Relaxed) {
                let wait = {
                    let Ok(mut gw) = gateway.lock() else { return };
                    gw.advance(now_ns(), &mut on_event);
                    send_resends(&mut gw, &resend);
                    stats.publish(&gw.counters());
                    gw.next_deadline()
                        .map_or(50_000_000, |d| d.saturating_sub(now_ns()))
                };
                std::thread::sleep(Duration::from_nanos(wait.clamp(200_000, 50_000_000)));
            }
        });
        let mut on_event = |e: &Event| on_event(e);
        let r = loop {
            if stop.load(Ordering::Relaxed) {
                break Ok(());
            }
            let mut msg = match q.recv() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => break Err(InlineError::Recv(e)),
            };
            let from_honeypot = msg.get_indev() == cfg.honeypot_ifindex;
            let verdict = match gateway.lock() {
                Ok(mut gw) => {
                    let v = gw.decide(now_ns(), msg.get_payload(), from_honeypot, &mut on_event);
                    send_resends(&mut gw, &resend);
                    stats.publish(&gw.counters());
                    v
                }
                Err(_) => Verdict::Accept,
            };
            match verdict {
                Verdict::Accept => msg.set_verdict(nfq::Verdict::Accept),
                Verdict::AcceptMarked(m) => {
                    msg.set_nfmark(m);
                    msg.set_verdict(nfq::Verdict::Accept);
                }
                Verdict::Drop => msg.set_verdict(nfq::Verdict::Drop),
            }
            if let Err(e) = q.verdict(msg) {
                break Err(InlineError::Recv(e));
            }
        };
        stop.store(true, Ordering::Relaxed);
        r
    })
}
