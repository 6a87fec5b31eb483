//! `ashiato stepstone --iface IF --darknet PREFIX... --local ADDR [--local6 ADDR]`: the live darknet
//! responder. The pure core (`ashiato_stepstone::responder`) answers SYNs and times the ACKs;
//! this shell reads the interface's AF_PACKET ring, sends frames back through a raw socket
//! (the darknet addresses are not local, so the host stack stays silent), and after each
//! answered connection probes the source actively from `--local`: `--pings` ICMP echoes (Ta)
//! and a SYN to `--probe-port` (Fa from the SYN/ACK or the RST's TTL); on `--app-banner` and
//! `--app-reply` ports the core first times an application exchange (Tapp). Then it decides and
//! prints one JSON line per connection, and writes it to `--store` when given; counters go to
//! `--metrics-file` and `GET /metrics` on `--metrics-listen` (`stepstone_metrics`).

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use ashiato_capture::live::{LiveConfig, LiveSource};
use ashiato_capture::send::RawSender;
use ashiato_stepstone::app::{AppOutcome, AppPort, Trigger};
use ashiato_stepstone::decide::{Config, Evidence, Stats, decide};
use ashiato_stepstone::extract::observe;
use ashiato_stepstone::responder::{Connection, Responder, ResponderConfig, ip_packet, syn_probe};
use ashiato_stepstone::{Database, Observed, find};
use ashiato_wire::build::{ethernet, icmpv4_echo, icmpv6_echo, ipv4};
use ashiato_wire::packet::{Ip, L4};

use crate::args::StepstoneArgs;
use crate::fingerprint_cmd::load_db;
use crate::stepstone_metrics::{
    LiveCounters, MetricsServer, PUBLISH_EVERY, Snapshot, render, write_file,
};

/// Gap between echoes of one connection.
const PING_GAP_NS: u64 = 20_000_000;
/// Time allowed for the last answers after the last echo.
const GRACE_NS: u64 = 1_000_000_000;
/// Tp (and Tapp) samples remembered per source for the timing tests.
const TP_HISTORY: usize = 16;
/// Sources whose link addresses and Tp/Tapp histories are kept; past it the map starts over
/// (darknet sources are mostly one-off or spoofed, so an unbounded map would only grow). A
/// connection whose source was forgotten is not probed, and its history restarts.
const MAX_SOURCES: usize = 1 << 16;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn parse_prefix(s: &str) -> Result<(IpAddr, u8)> {
    let (a, l) = s.split_once('/').map_or((s, None), |(a, l)| (a, Some(l)));
    let a: IpAddr = a
        .parse()
        .with_context(|| format!("--darknet {s}: not an IPv4 or IPv6 address"))?;
    let max = if a.is_ipv4() { 32 } else { 128 };
    let l: u8 = match l {
        Some(l) => l
            .parse()
            .with_context(|| format!("--darknet {s}: bad prefix length"))?,
        None => max,
    };
    if l > max {
        bail!("--darknet {s}: prefix length above {max}");
    }
    Ok((a, l))
}

/// The ethertype of an IP packet by its version nibble.
fn ethertype(ip: &[u8]) -> u16 {
    if ip.first().is_some_and(|b| b >> 4 == 6) {
        0x86DD
    } else {
        0x0800
    }
}

/// The destination address of an IP packet we built.
fn ip_dst(ip: &[u8]) -> Option<IpAddr> {
    if ethertype(ip) == 0x86DD {
        let b: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    } else {
        let b: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    }
}

struct Job {
    conn: Connection,
    peer_mac: [u8; 6],
    our_mac: [u8; 6],
    id: u16,
    started: u64,
    sent: Vec<u64>,
    rtt_us: Vec<u64>,
    probe_sport: u16,
    fa: Option<Observed>,
    fa_rst_ttl: Option<u8>,
}

/// The connections in their active phase, found by source in O(1) per answer (a list scan per
/// echo reply made the live loop quadratic in the connection rate, docs/benchmarks.md §18).
#[derive(Default)]
struct Jobs {
    list: Vec<Job>,
    by_src: HashMap<IpAddr, Vec<usize>>,
}

impl Jobs {
    fn len(&self) -> usize {
        self.list.len()
    }

    fn push(&mut self, j: Job) {
        self.by_src
            .entry(j.conn.src)
            .or_default()
            .push(self.list.len());
        self.list.push(j);
    }

    /// Removes job `i`; the last job takes its place, and its index entry follows it.
    fn swap_remove(&mut self, i: usize) -> Job {
        let last = self.list.len() - 1;
        let src = self.list[i].conn.src;
        if let Some(ix) = self.by_src.get_mut(&src) {
            ix.retain(|&k| k != i);
            if ix.is_empty() {
                self.by_src.remove(&src);
            }
        }
        if i != last
            && let Some(ix) = self.by_src.get_mut(&self.list[last].conn.src)
            && let Some(k) = ix.iter_mut().find(|k| **k == last)
        {
            *k = i;
        }
        self.list.swap_remove(i)
    }
}

#[derive(serde::Serialize)]
struct Line<'a> {
    time: String,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    tp_us: Option<u64>,
    ta_us: Option<Stats>,
    tapp_us: Option<u64>,
    app: Option<AppOutcome>,
    fp: Option<String>,
    fp_label: Option<String>,
    fa: Option<String>,
    fa_rst_ttl: Option<u8>,
    verdict: &'a ashiato_stepstone::decide::Verdict,
}

fn label(db: &Database, o: &Observed, syn_mss: u16) -> (Option<String>, bool, Option<String>) {
    let m = find(db, o, syn_mss);
    match m.record.map(|r| db.label(r)) {
        Some(l) => (
            Some(l.text()),
            l.is_app(),
            (!l.is_app()).then(|| l.name.clone()),
        ),
        None => (Some("???".into()), false, None),
    }
}

/// Runs the live responder.
pub fn run(a: &StepstoneArgs) -> Result<()> {
    let iface = a.iface.as_deref().context("--iface")?;
    let local = a.local.context("--local")?;
    let darknets = a
        .darknet
        .iter()
        .map(|s| parse_prefix(s))
        .collect::<Result<Vec<_>>>()?;
    if darknets.iter().any(|(n, _)| n.is_ipv6()) && a.local6.is_none() {
        bail!("an IPv6 --darknet needs --local6 (the source of the IPv6 echoes and SYN probe)");
    }
    let db = load_db(a.db.as_deref())?;
    let mut secret = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
        .context("reading /dev/urandom")?;
    let mut app_ports = Vec::new();
    for (list, trigger, flag) in [
        (&a.app_banner, Trigger::Banner, "--app-banner"),
        (&a.app_reply, Trigger::Reply, "--app-reply"),
    ] {
        for s in list {
            let p = AppPort::parse(s, trigger).map_err(|e| anyhow::anyhow!("{flag} {e}"))?;
            if app_ports.iter().any(|q: &AppPort| q.port == p.port) {
                bail!("{flag} {s}: port {} is listed twice", p.port);
            }
            app_ports.push(p);
        }
    }
    let cfg = ResponderConfig {
        darknets,
        app_ports,
        max_per_sec: a.rate,
        max_per_source_per_sec: a.per_source_rate,
        secret: u64::from_le_bytes(secret),
        ..ResponderConfig::default()
    };
    let live_cfg = LiveConfig {
        block_size: 1 << 16,
        block_count: 16,
        block_timeout_ms: 1,
        promiscuous: false,
        ..LiveConfig::default()
    };
    let mut rx = LiveSource::open(iface, &live_cfg)?;
    let mut tx = RawSender::open(iface)?;
    let store = match &a.store {
        Some(t) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let s = rt.block_on(ashiato_store::Store::open(t))?;
            Some((rt, s))
        }
        None => None,
    };
    let server = match a.metrics_listen {
        Some(addr) => Some(MetricsServer::start(addr, &a.tls)?),
        None => None,
    };
    // Scripts and the lab wait for this line before sending SYNs.
    eprintln!(
        "stepstone: answering SYNs to {} on {iface}",
        a.darknet.join(", ")
    );
    let max_pending = cfg.max_pending;
    let mut r = Responder::new(cfg, now_ns());
    let mut jobs = Jobs::default();
    let mut tp_hist: HashMap<IpAddr, Vec<u64>> = HashMap::new();
    let mut tapp_hist: HashMap<IpAddr, Vec<u64>> = HashMap::new();
    let mut next_id: u16 = 1;
    let start = Instant::now();
    let decide_cfg = Config {
        seed_rule: a.seed_rule,
        ..Config::default()
    };
    let mut out = std::io::stdout().lock();
    let mut macs: HashMap<IpAddr, ([u8; 6], [u8; 6])> = HashMap::new();
    // The active probes' source for a source of either family.
    let from = |src: IpAddr| -> Option<IpAddr> {
        match src {
            IpAddr::V4(_) => Some(IpAddr::V4(local)),
            IpAddr::V6(_) => a.local6.map(IpAddr::V6),
        }
    };
    let mut counters = LiveCounters::default();
    let (mut metrics_at, mut published_at) = (Instant::now(), Instant::now());
    let snap = |r: &Responder, c: &LiveCounters, probing| Snapshot {
        responder: r.stats(),
        pending: r.pending(),
        max_pending,
        live: LiveCounters {
            probing,
            ..c.clone()
        },
    };
    let mut stats_at = Instant::now();
    loop {
        if a.duration > 0 && start.elapsed() >= Duration::from_nanos(a.duration) {
            break;
        }
        if stats_at.elapsed() >= PUBLISH_EVERY {
            if let Ok(k) = rx.kernel_stats() {
                counters.ring_drops = k.drops;
            }
            stats_at = Instant::now();
        }
        if let Some(s) = &server
            && published_at.elapsed() >= PUBLISH_EVERY
        {
            s.publish(&snap(&r, &counters, jobs.len()));
            published_at = Instant::now();
        }
        if let Some(p) = &a.metrics_file
            && metrics_at.elapsed() >= Duration::from_secs(1)
        {
            write_file(p, &render(&snap(&r, &counters, jobs.len())))?;
            metrics_at = Instant::now();
        }
        rx.poll_frames(Duration::from_millis(5), |f| {
            // Taken at delivery, not from the ring's timestamp: on veth links a TCP segment can
            // keep the sender's departure time (CLOCK_MONOTONIC), which is not comparable.
            // Delivery adds up to the ring's 1 ms block timeout, to Tp and Ta alike.
            let now = now_ns();
            let Ok(pkt) = ashiato_wire::packet::parse(f.link, f.data) else {
                return;
            };
            let (Some(dst_mac), Some(src_mac)) = (f.data.get(0..6), f.data.get(6..12)) else {
                return;
            };
            let (mut theirs, mut ours) = ([0u8; 6], [0u8; 6]);
            theirs.copy_from_slice(src_mac);
            ours.copy_from_slice(dst_mac);
            let (src, dst, ttl, l3_payload) = match pkt.ip {
                Ip::V4(ip) => (IpAddr::V4(ip.src), IpAddr::V4(ip.dst), ip.ttl, ip.payload),
                Ip::V6(ip) => (
                    IpAddr::V6(ip.src),
                    IpAddr::V6(ip.dst),
                    ip.hop_limit,
                    ip.payload.get(ip.upper_offset..).unwrap_or(&[]),
                ),
            };
            if let Some(ipkt) = r.on_packet(now, &pkt) {
                if macs.len() >= MAX_SOURCES && !macs.contains_key(&src) {
                    macs.clear();
                }
                macs.insert(src, (theirs, ours));
                // Sent at once, so Tp starts when the SYN/ACK leaves.
                if tx
                    .send(&ethernet(theirs, ours, ethertype(&ipkt), &ipkt))
                    .is_ok()
                {
                    r.sent(now_ns());
                }
                return;
            }
            if from(src) != Some(dst) {
                return;
            }
            let Some(ix) = jobs.by_src.get(&src) else {
                return;
            };
            for &k in ix {
                let j = &mut jobs.list[k];
                match pkt.l4 {
                    L4::Icmp { ty: 0, .. } | L4::Icmpv6 { ty: 129, .. } => {
                        let p = l3_payload;
                        if p.len() >= 8 && u16::from_be_bytes([p[4], p[5]]) == j.id {
                            let seq = usize::from(u16::from_be_bytes([p[6], p[7]]));
                            if let Some(&t) = j.sent.get(seq)
                                && j.rtt_us.len() < j.sent.len()
                            {
                                j.rtt_us.push(now.saturating_sub(t) / 1000);
                                counters.echo_replies += 1;
                            }
                        }
                    }
                    L4::Tcp(t) if t.dst_port == j.probe_sport && t.src_port == a.probe_port => {
                        if t.flags.is_rst() {
                            if j.fa_rst_ttl.is_none() {
                                counters.probe_rsts += 1;
                            }
                            j.fa_rst_ttl.get_or_insert(ttl);
                        } else if let Ok(o) = observe(&pkt) {
                            if j.fa.is_none() {
                                counters.probe_syn_acks += 1;
                            }
                            j.fa.get_or_insert(o);
                        }
                    }
                    _ => {}
                }
            }
        })?;
        let now = now_ns();
        for rst in r.poll(now) {
            // The RSTs ending expired application exchanges, to their sources.
            if let Some(&(peer_mac, our_mac)) = ip_dst(&rst).and_then(|d| macs.get(&d)) {
                tx.send(&ethernet(peer_mac, our_mac, ethertype(&rst), &rst))?;
            }
        }
        for conn in r.take_measured() {
            // No answer to our SYN/ACK: most likely a spoofed source. Probing it would send a
            // third party a dozen packets for one SYN, so the responder stays a non-reflector;
            // such handshakes are counted as timeouts.
            if conn.tp_us.is_none() && conn.tapp_us.is_none() {
                continue;
            }
            let (Some(&(peer_mac, our_mac)), Some(local)) = (macs.get(&conn.src), from(conn.src))
            else {
                continue;
            };
            for (hist, x) in [(&mut tp_hist, conn.tp_us), (&mut tapp_hist, conn.tapp_us)] {
                if let Some(x) = x {
                    if hist.len() >= MAX_SOURCES && !hist.contains_key(&conn.src) {
                        hist.clear();
                    }
                    let h = hist.entry(conn.src).or_default();
                    if h.len() == TP_HISTORY {
                        h.remove(0);
                    }
                    h.push(x);
                }
            }
            let id = next_id;
            next_id = next_id.wrapping_add(1).max(1);
            let probe_sport = 40_000 + id % 20_000;
            let syn = syn_probe(
                local,
                conn.src,
                probe_sport,
                a.probe_port,
                u32::from(id) << 16,
            );
            tx.send(&ethernet(peer_mac, our_mac, ethertype(&syn), &syn))?;
            counters.syn_probes += 1;
            jobs.push(Job {
                conn,
                peer_mac,
                our_mac,
                id,
                started: now,
                sent: Vec::new(),
                rtt_us: Vec::new(),
                probe_sport,
                fa: None,
                fa_rst_ttl: None,
            });
        }
        // Echoes, paced; finished jobs decided and reported.
        let mut i = 0;
        while i < jobs.len() {
            let j = &mut jobs.list[i];
            let k = j.sent.len();
            if k < usize::from(a.pings) && now >= j.started + k as u64 * PING_GAP_NS {
                let (id, seq, text) = (j.id, k as u16, b"ashiato-stepstone");
                let ip = match (from(j.conn.src), j.conn.src) {
                    (Some(IpAddr::V6(l)), IpAddr::V6(d)) => Some(ip_packet(
                        l.into(),
                        d.into(),
                        58,
                        id,
                        &icmpv6_echo(l, d, id, seq, text),
                    )),
                    (Some(IpAddr::V4(l)), IpAddr::V4(d)) => {
                        Some(ipv4(l, d, 1, 64, 0, id, &icmpv4_echo(id, seq, text)))
                    }
                    _ => None,
                };
                if let Some(ip) = ip {
                    tx.send(&ethernet(j.peer_mac, j.our_mac, ethertype(&ip), &ip))?;
                }
                j.sent.push(now_ns());
                counters.echoes_sent += 1;
            }
            let done_at = j.started + u64::from(a.pings) * PING_GAP_NS + GRACE_NS;
            if now < done_at {
                i += 1;
                continue;
            }
            let j = jobs.swap_remove(i);
            let (fp_label, fp_is_tool, fp_os) = match &j.conn.fp {
                Some(o) => label(&db, o, 0),
                None => (None, false, None),
            };
            let (_, _, fa_os) = match &j.fa {
                Some(o) => label(&db, o, 1460),
                None => (None, false, None),
            };
            let ev = Evidence {
                fp: j.conn.fp,
                fp_is_tool,
                fp_os,
                fa: j.fa,
                fa_rst_ttl: j.fa_rst_ttl,
                fa_os,
                tp_us: tp_hist.get(&j.conn.src).cloned().unwrap_or_default(),
                ta_rounds_us: vec![j.rtt_us.clone()],
                tapp_us: tapp_hist.get(&j.conn.src).cloned().unwrap_or_default(),
            };
            let v = decide(&ev, &decide_cfg);
            counters.verdict(&v);
            let ta = Stats::of(&j.rtt_us);
            let line = Line {
                time: ashiato_wire::time::rfc3339(j.conn.syn_ns),
                src: j.conn.src,
                sport: j.conn.sport,
                dst: j.conn.dst,
                dport: j.conn.dport,
                tp_us: j.conn.tp_us,
                ta_us: ta,
                tapp_us: j.conn.tapp_us,
                app: j.conn.app,
                fp: j.conn.fp.map(|o| o.raw_sig(0).to_string()),
                fp_label,
                fa: j.fa.map(|o| o.raw_sig(1460).to_string()),
                fa_rst_ttl: j.fa_rst_ttl,
                verdict: &v,
            };
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
            out.flush()?;
            if let Some((rt, s)) = &store {
                let rec = ashiato_store::StepstoneConnection {
                    id: format!("ss-{}-{}-{}", j.conn.syn_ns, j.conn.src, j.conn.sport),
                    incident_id: None,
                    time_ns: j.conn.syn_ns,
                    src: j.conn.src.to_string(),
                    sport: j.conn.sport,
                    dst: j.conn.dst.to_string(),
                    dport: j.conn.dport,
                    tp_us: j.conn.tp_us,
                    ta_n: ta.map_or(0, |t| t.n as u32),
                    ta_min_us: ta.map(|t| t.min),
                    ta_median_us: ta.map(|t| t.median),
                    ta_max_us: ta.map(|t| t.max),
                    ta_variance: ta.map(|t| t.variance),
                    fp: line.fp.clone(),
                    fa: line.fa.clone(),
                    tapp_us: j.conn.tapp_us,
                    app: match j.conn.app {
                        Some(o) => serde_json::to_value(o)?.as_str().map(str::to_string),
                        None => None,
                    },
                    verdict: serde_json::to_value(v.decision)?
                        .as_str()
                        .unwrap_or("undecided")
                        .to_string(),
                    signals: v
                        .signals
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(","),
                };
                rt.block_on(s.put_stepstone_connection(&rec))?;
            }
        }
    }
    let st = r.stats();
    let last = snap(&r, &counters, jobs.len());
    if let Some(p) = &a.metrics_file {
        write_file(p, &render(&last))?;
    }
    if let Some(s) = &server {
        s.publish(&last);
    }
    tracing::info!(
        syns = st.syns,
        syn_acks = st.syn_acks,
        limited = st.limited_global + st.limited_source,
        measured = st.measured,
        "stepstone responder stopped"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(src: [u8; 4], id: u16) -> Job {
        Job {
            conn: Connection {
                syn_ns: 0,
                src: IpAddr::from(src),
                sport: 1,
                dst: IpAddr::from([203, 0, 113, 9]),
                dport: 22,
                fp: None,
                tp_us: None,
                rst: false,
                tapp_us: None,
                app: None,
            },
            peer_mac: [0; 6],
            our_mac: [0; 6],
            id,
            started: 0,
            sent: Vec::new(),
            rtt_us: Vec::new(),
            probe_sport: 0,
            fa: None,
            fa_rst_ttl: None,
        }
    }

    /// After any sequence of pushes and removals the index names exactly the jobs of each
    /// source, at their current positions.
    #[test]
    fn the_source_index_follows_every_removal() {
        let mut rng = ashiato_rng::SplitMix64::new(7);
        let mut jobs = Jobs::default();
        let mut next = 0u16;
        for _ in 0..5_000 {
            if jobs.len() < 3 || !rng.next_u64().is_multiple_of(3) {
                let src = [10, 0, 0, (rng.next_u64() % 8) as u8];
                jobs.push(job(src, next));
                next = next.wrapping_add(1);
            } else {
                let i = (rng.next_u64() % jobs.len() as u64) as usize;
                let id = jobs.list[i].id;
                assert_eq!(jobs.swap_remove(i).id, id);
            }
            let mut want: HashMap<IpAddr, Vec<usize>> = HashMap::new();
            for (k, j) in jobs.list.iter().enumerate() {
                want.entry(j.conn.src).or_default().push(k);
            }
            let mut got = jobs.by_src.clone();
            got.values_mut().for_each(|v| v.sort_unstable());
            assert_eq!(got, want);
        }
    }
}
