//! `ashiato darkflow inline`: the NFQUEUE gateway (the decision in `ashiato_darkflow::gateway`,
//! the queue and sockets in `ashiato_darkflow_shells::inline`).
//!
//! With `--setup` it installs the mangle-table rules and the policy route to the honeypot at
//! start and removes them at exit, so one command turns a Linux router into a DarkFlow
//! gateway. Events go to standard output as JSON lines with `--json`.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ashiato_darkflow::Event;
use ashiato_darkflow::metrics::ShellStats;
use ashiato_darkflow_shells::inline::{CHAIN, CHAIN_OUT, InlineConfig, InlineStats, rules};

use super::live::{Shared, start_service};
use super::{EventFilter, detector_config, write_event};
use crate::args::{EventKind, InlineArgs, TlsArgs};

fn sh(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).context("interface name")?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        bail!("interface {name:?} not found");
    }
    Ok(i)
}

/// The mangle chains and policy routes, removed on drop.
struct Setup {
    mark: u32,
    families: Vec<(&'static str, &'static str)>,
}

fn ipt(tool: &str, args: &[&str]) -> Result<()> {
    sh(Command::new(tool)
        .arg("-w")
        .args(["-t", "mangle"])
        .args(args))
}

impl Setup {
    fn install(
        a: &InlineArgs,
        hp_iface: &str,
        hp4: Option<IpAddr>,
        hp6: Option<IpAddr>,
    ) -> Result<Self> {
        let mut families = Vec::new();
        if hp4.is_some() {
            families.push(("-4", "iptables"));
        }
        if hp6.is_some() {
            families.push(("-6", "ip6tables"));
        }
        let setup = Setup {
            mark: a.mark,
            families: families.clone(),
        };
        // A leftover from a killed run would double the rules.
        setup.remove();
        let table = a.mark.to_string();
        let mark = format!("{:#x}", a.mark);
        for ((fam, tool), hp) in families.iter().zip([hp4, hp6].into_iter().flatten()) {
            ipt(tool, &["-N", CHAIN])
                .with_context(|| format!("{tool} (Debian package iptables)"))?;
            ipt(tool, &["-N", CHAIN_OUT])?;
            for r in rules(a.queue, a.mark, hp_iface) {
                let r: Vec<&str> = r.iter().map(String::as_str).collect();
                ipt(tool, &r)?;
            }
            ipt(tool, &["-I", "PREROUTING", "1", "-p", "tcp", "-j", CHAIN])?;
            ipt(tool, &["-I", "OUTPUT", "1", "-p", "tcp", "-j", CHAIN_OUT])?;
            sh(Command::new("ip").args([
                fam, "rule", "add", "fwmark", &mark, "lookup", &table, "priority", "1000",
            ]))?;
            sh(Command::new("ip").args([
                fam,
                "route",
                "replace",
                "default",
                "via",
                &hp.to_string(),
                "dev",
                hp_iface,
                "table",
                &table,
            ]))?;
        }
        // The honeypot answers with other hosts' addresses: loose reverse-path filtering on
        // its interface only.
        if hp4.is_some() {
            let rp = format!("/proc/sys/net/ipv4/conf/{hp_iface}/rp_filter");
            std::fs::write(&rp, "2").with_context(|| format!("writing {rp}"))?;
        }
        Ok(setup)
    }

    fn remove(&self) {
        let table = self.mark.to_string();
        let mark = format!("{:#x}", self.mark);
        for (fam, tool) in &self.families {
            let _ = ipt(tool, &["-D", "PREROUTING", "-p", "tcp", "-j", CHAIN]);
            let _ = ipt(tool, &["-D", "OUTPUT", "-p", "tcp", "-j", CHAIN_OUT]);
            for c in [CHAIN, CHAIN_OUT] {
                let _ = ipt(tool, &["-F", c]);
                let _ = ipt(tool, &["-X", c]);
            }
            let _ =
                sh(Command::new("ip")
                    .args([*fam, "rule", "del", "fwmark", &mark, "lookup", &table]));
            let _ = sh(Command::new("ip").args([*fam, "route", "flush", "table", &table]));
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.remove();
    }
}

/// `ashiato darkflow inline`
pub fn run(a: &InlineArgs) -> Result<()> {
    let detector = detector_config(&a.detector)?;
    let duration = a.duration;
    let hp_iface = a
        .honeypot_iface
        .as_deref()
        .context("--honeypot-iface IF is required (the interface facing the honeypot)")?;
    let honeypot_ifindex = ifindex(hp_iface)?;
    // Address families and the mark's range were checked by clap.
    let hp4 = a.honeypot.map(IpAddr::V4);
    let hp6 = a.honeypot6.map(IpAddr::V6);
    let setup = if a.setup {
        if hp4.is_none() && hp6.is_none() {
            bail!("--setup needs --honeypot (and/or --honeypot6)");
        }
        Some(Setup::install(a, hp_iface, hp4, hp6)?)
    } else {
        None
    };
    let cfg = InlineConfig {
        queue: a.queue,
        mark: a.mark,
        detector,
        honeypot_ifindex,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(InlineStats::default());
    let shared = Arc::new(Mutex::new(Shared::default()));
    let service = start_service(None, &TlsArgs::default(), shared, stop.clone())?;
    let filter = EventFilter::new(&[EventKind::Darkflow, EventKind::Late, EventKind::Closed]);
    let json = a.json;
    let worker = {
        let (stop, stats) = (stop.clone(), stats.clone());
        std::thread::spawn(move || {
            let on_event = move |e: &Event| {
                if json {
                    // Stdout's own line buffer; flushed at once: the gateway's events are rare.
                    let mut o = std::io::stdout().lock();
                    let _ = write_event(&mut o, e, filter, None).and_then(|_| o.flush());
                }
            };
            let r = ashiato_darkflow_shells::inline::run(&cfg, &stop, &stats, &on_event);
            stop.store(true, Ordering::Relaxed);
            r
        })
    };
    eprintln!(
        "inline gateway on NFQUEUE {} (honeypot via {hp_iface}); Ctrl-C to stop",
        a.queue
    );
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed)
        && duration.is_none_or(|d| (started.elapsed().as_nanos() as u64) < d)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = service.join();
    drop(setup);
    let s = ShellStats {
        verdicts: stats.verdicts.load(Ordering::Relaxed),
        handed_over: stats.handed_over.load(Ordering::Relaxed),
        cut_off: stats.cut_off.load(Ordering::Relaxed),
        ..ShellStats::default()
    };
    let line = serde_json::json!({
        "event": "inline_summary",
        "verdicts": s.verdicts,
        "handed_over": s.handed_over,
        "cut_off": s.cut_off,
        "honeypot_packets_dropped": stats.dropped.load(Ordering::Relaxed),
        "resend_failed": stats.resend_failed.load(Ordering::Relaxed),
        "unparsed": stats.unparsed.load(Ordering::Relaxed),
    });
    println!("{line}");
    if worker.is_finished() {
        match worker.join() {
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => bail!("the gateway thread panicked"),
            Ok(Ok(())) => {}
        }
    }
    // A worker still blocked in recv is ended by the process exit (the queue fails open).
    Ok(())
}
