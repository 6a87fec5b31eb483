//! `ashiato agent`: the host agent (`ashiato-agent`). Records this host's traffic on an
//! interface into a bounded history with socket → process attribution, polls the center's
//! signed claim list, audits the history, tells the user what matched and exactly which
//! records would be sent, and reports with consent (`--yes` for automation, `--dry-run`
//! never sends). `--once`: record for `--duration` (or use the history held), poll once,
//! audit, report, exit 3 if a claim matched, 0 if none did, 1 on an error.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ashiato_agent::center::{Center, Keys, Sent, list_key_file, public_key_hex};
use ashiato_agent::cycle::{Answer, ClaimList, Round, audit_history};
use ashiato_agent::history::HistoryConfig;
use ashiato_agent::live::{Live, LiveSettings, LiveStatus};
use ashiato_agent::plan::consent_text;
use ashiato_wire::time::rfc3339;
use clap::Args;

use crate::{CheckFailed, UsageError};

/// `ashiato agent`
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Record this interface's traffic (AF_PACKET; needs CAP_NET_RAW). Without it the agent
    /// audits the history already held in --history-dir.
    #[arg(long)]
    pub iface: Option<String>,
    /// The history: pcap segments `seg-<start_ns>.pcap` and the process log `procs.jsonl`
    /// (both readable by `ashiato hostcheck`).
    #[arg(long)]
    pub history_dir: PathBuf,
    /// Most bytes of history kept (oldest segments are deleted first).
    #[arg(long, default_value = "600M", value_parser = crate::units::parse_bytes)]
    pub keep_bytes: u64,
    /// Days of history kept.
    #[arg(long, default_value_t = 1.0)]
    pub keep_days: f64,
    /// Bytes kept of each packet: enough for HTTP headers and the start of a body (PE/ELF
    /// magic), IRC lines, DNS answers and SMTP replies.
    #[arg(long, default_value_t = 2048)]
    pub snaplen: u32,
    /// How often the sockets are listed (sock_diag) and joined with their processes, ms.
    #[arg(long, default_value_t = 100)]
    pub attrib_interval: u64,
    /// Bound of the process log (it is rotated once: up to twice this is held).
    #[arg(long, default_value = "64M", value_parser = crate::units::parse_bytes)]
    pub proc_log_bytes: u64,
    /// The center, host:port.
    #[arg(long)]
    pub center: String,
    /// Directory made by `ashiato pki init`.
    #[arg(long, env = "ASHIATO_TLS_DIR")]
    pub tls_dir: PathBuf,
    /// Which identity in --tls-dir to present; also the reporter name in reports.
    #[arg(long)]
    pub name: String,
    /// The list key (the center's `list.key`: 32 bytes, or 64 hex digits) instead of
    /// enrolling (`GET /v1/enroll`); needs --sign-public-key.
    #[arg(long, requires = "sign_public_key")]
    pub list_key_file: Option<PathBuf>,
    /// The center's list signing key (its `sign.pub`, 64 hex digits); needs --list-key-file.
    #[arg(long, requires = "list_key_file")]
    pub sign_public_key: Option<String>,
    /// Seconds between claim-list polls.
    #[arg(long, default_value_t = 300)]
    pub poll: u64,
    /// Clock-skew allowance around claim windows, seconds (default: the center's, else 300).
    #[arg(long)]
    pub skew: Option<u64>,
    /// Most claims held.
    #[arg(long, default_value_t = 100_000)]
    pub max_claims: usize,
    /// Most records in one report (the center accepts 1,000).
    #[arg(long, default_value_t = 1000)]
    pub max_records: usize,
    /// Record for --duration (when --iface is given), poll once, audit, report, exit:
    /// 3 if a claim matched, 0 if none did, 1 on an error.
    #[arg(long)]
    pub once: bool,
    /// With --once and --iface: seconds to record before polling.
    #[arg(long, default_value_t = 0.0)]
    pub duration: f64,
    /// Report without asking (automation).
    #[arg(long)]
    pub yes: bool,
    /// Show what would be sent and never send.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs the agent.
pub fn run(a: &AgentArgs) -> Result<()> {
    if !a.keep_days.is_finite() || a.keep_days <= 0.0 || a.attrib_interval == 0 || a.poll == 0 {
        return Err(UsageError(
            "--keep-days, --attrib-interval and --poll must be positive".into(),
        )
        .into());
    }
    if a.duration > 0.0 && (!a.once || a.iface.is_none()) {
        return Err(UsageError("--duration needs --once and --iface".into()).into());
    }
    // The certificates first: a mistyped --tls-dir must not leave a history directory behind.
    let center = Center::new(&a.center, &a.tls_dir, &a.name)?;
    std::fs::create_dir_all(&a.history_dir)
        .with_context(|| format!("creating {}", a.history_dir.display()))?;
    let keys = match (&a.list_key_file, &a.sign_public_key) {
        (Some(f), Some(k)) => Keys {
            list_key: list_key_file(f)?,
            sign_public_key: public_key_hex(k)?,
            skew_ns: None,
        },
        _ => center
            .enroll()
            .context("enrolling at the center (or give --list-key-file and --sign-public-key)")?,
    };
    let skew_ns = a
        .skew
        .map(|s| s.saturating_mul(1_000_000_000))
        .or(keys.skew_ns)
        .unwrap_or(300 * 1_000_000_000);
    let mut claims = ClaimList::new(keys, a.max_claims);
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signal(stop.clone())?;
    let live = match &a.iface {
        Some(iface) => {
            let history = HistoryConfig::new(
                a.history_dir.clone(),
                a.keep_bytes,
                (a.keep_days * 86_400e9) as u64,
                a.snaplen,
            );
            let l = Live::start(LiveSettings {
                iface: iface.clone(),
                history,
                attrib_interval: Duration::from_millis(a.attrib_interval),
                proc_log_bytes: a.proc_log_bytes,
            })
            .with_context(|| format!("recording on {iface}"))?;
            eprintln!(
                "agent: recording {iface} into {} (keep {} bytes, {} days; sockets every {} ms)",
                a.history_dir.display(),
                a.keep_bytes,
                a.keep_days,
                a.attrib_interval
            );
            Some(l)
        }
        None => None,
    };
    let mut answered: HashSet<String> = HashSet::new();
    let mut recheck = false;
    if a.once {
        let mut live = live;
        if let Some(l) = &live {
            let end = Instant::now() + Duration::from_secs_f64(a.duration);
            while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                show_errors(&l.status());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some(l) = live.take() {
            show_status(&l.stop());
        }
        let (matched, _) = round(a, &center, &mut claims, skew_ns, None, &mut answered, true)?;
        return if matched > 0 {
            Err(CheckFailed(format!(
                "the history matches {matched} claim(s): this host took part in an attack"
            ))
            .into())
        } else {
            Ok(())
        };
    }
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(l) = &live {
            show_errors(&l.status());
        }
        if Instant::now() >= next {
            next = Instant::now() + Duration::from_secs(a.poll);
            match round(
                a,
                &center,
                &mut claims,
                skew_ns,
                live.as_ref(),
                &mut answered,
                recheck,
            ) {
                Ok((_, again)) => recheck = again,
                Err(e) => eprintln!("agent: {e:#}"),
            }
            if let Some(l) = &live {
                show_status(&l.status());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Some(l) = live {
        show_status(&l.stop());
    }
    Ok(())
}

/// Sets `stop` on SIGINT or SIGTERM (a small runtime on its own thread).
fn stop_on_signal(stop: Arc<AtomicBool>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("agent-signals".into())
        .spawn(move || {
            rt.block_on(crate::probe_cmd::shutdown_signal());
            stop.store(true, Ordering::Relaxed);
        })?;
    Ok(())
}

fn show_errors(st: &LiveStatus) {
    for e in &st.errors {
        eprintln!("agent: {e}");
    }
}

fn show_status(st: &LiveStatus) {
    show_errors(st);
    let r = &st.recorder;
    let s = &st.attrib;
    eprintln!(
        "agent: history {} frames, {} bytes written, {} frames lost, {} write errors, {} segments deleted, {} kernel drops; sockets {} seen, {} attributed, {} unattributed in {} polls (longest {} us, {} /proc scans)",
        r.frames,
        r.bytes,
        r.frames_lost,
        r.write_errors,
        r.deleted,
        st.kernel_drops,
        s.sockets,
        s.attributed,
        s.unattributed,
        s.polls,
        st.max_poll_us,
        st.proc_scans
    );
}

/// Polls the list, audits (when there are new claims, or `audit` says so), answers each
/// claim not answered yet, asks and reports. Returns the number of claims matched and
/// whether a claim answered "unknown" may still be covered by the recording going on (its
/// window reaches past the history's end), so the next round audits again.
fn round(
    a: &AgentArgs,
    center: &Center,
    claims: &mut ClaimList,
    skew_ns: u64,
    live: Option<&Live>,
    answered: &mut HashSet<String>,
    audit: bool,
) -> Result<(usize, bool)> {
    let added = claims.update(|since| center.delta(since));
    let added = match added {
        Ok(n) => n,
        // With --once the error ends the run (exit 1).
        Err(e) if a.once => return Err(e.into()),
        Err(e) => {
            // A refused delta is not applied; what was held before is still audited.
            eprintln!("agent: {}", ashiato_net::error_chain(&e));
            0
        }
    };
    if claims.full() {
        eprintln!(
            "agent: holding {} claims, the most allowed (--max-claims)",
            claims.version()
        );
    }
    if added == 0 && !audit {
        return Ok((0, false));
    }
    let open = live.map(Live::open_records).unwrap_or_default();
    let r = audit_history(
        &a.history_dir,
        claims,
        skew_ns,
        &open,
        &a.name,
        a.max_records,
    )?;
    print_round(&r, claims.version(), live.is_some());
    let mut matched = 0;
    let end = r.span().map_or(0, |s| s.1);
    let mut again = false;
    for c in &r.answers {
        match &c.answer {
            Answer::Matched(p) => {
                matched += 1;
                if answered.contains(&c.id) {
                    continue;
                }
                print!("{}", consent_text(p, center.addr()));
                if a.dry_run {
                    println!("dry run: nothing sent");
                } else if consent(a)? {
                    match center.report(&p.report_id, &p.report)? {
                        Sent::Accepted => println!("report {} for {} sent", p.report_id, c.id),
                        Sent::AlreadyThere => println!(
                            "report {} for {} was already at the center",
                            p.report_id, c.id
                        ),
                    }
                    answered.insert(c.id.clone());
                } else {
                    println!("nothing sent");
                    answered.insert(c.id.clone());
                }
            }
            Answer::NoMatch => {
                if answered.insert(c.id.clone()) {
                    println!(
                        "claim {}: no match (the history covers {} .. {} and was searched)",
                        c.id,
                        rfc3339(c.window.0),
                        rfc3339(c.window.1)
                    );
                }
            }
            Answer::Unknown { from_ns, to_ns } => {
                let later = live.is_some() && c.window.1.saturating_add(skew_ns) >= end;
                again |= later;
                if !later && !answered.insert(c.id.clone()) {
                    continue;
                }
                println!(
                    "claim {}: unknown: the history does not cover the window {} .. {} (nothing held from {} to {}){}",
                    c.id,
                    rfc3339(c.window.0),
                    rfc3339(c.window.1),
                    rfc3339(*from_ns),
                    rfc3339(*to_ns),
                    if later {
                        "; audited again as recording goes on"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok((matched, again))
}

/// The round's summary. While recording, the segment being written ends inside a record
/// (its buffer is not flushed yet): that is expected and not shown as damage.
fn print_round(r: &Round, version: u64, recording: bool) {
    let span = match r.span() {
        Some((f, t)) => format!("{} .. {}", rfc3339(f), rfc3339(t)),
        None => "nothing".into(),
    };
    println!(
        "audited {} claims (list version {version}) against {} segments holding {span}: {} frames, {} findings",
        r.answers.len(),
        r.segments.len(),
        r.frames,
        r.findings
    );
    let writing = r.segments.last().map(|s| &s.path).filter(|_| recording);
    for (p, why) in &r.damage.files {
        if Some(p) != writing {
            eprintln!("agent: {}: {why}", p.display());
        }
    }
}

/// Asks on a terminal; `--yes` answers for automation. Without a terminal and without
/// `--yes`, nothing is sent.
fn consent(a: &AgentArgs) -> Result<bool> {
    if a.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        println!("not sent: no terminal to ask (--yes sends without asking)");
        return Ok(false);
    }
    print!("Send this report? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.is_empty() {
        bail!("no answer on the terminal");
    }
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
