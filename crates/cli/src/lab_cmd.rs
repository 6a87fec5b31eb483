//! `ashiato lab`: flags → `ashiato_lab::LabConfig`, one tokio runtime, the report printed.
//! A bad topology (unreadable file, a bad line, a size out of range) is bad usage: exit 2.

use std::time::Duration;

use anyhow::{Context, Result};
use ashiato_api::federation::TraceMode;
use ashiato_lab::run::Conditions;
use ashiato_lab::topo::TopologySpec;
use ashiato_lab::{LabConfig, LabError, MAX_DOMAINS};

use crate::UsageError;
use crate::args::LabArgs;

/// `0.5`, `50%` or `50` (above 1: a percent) → a share in 0..=1, for the flag `flag`.
fn share_of(flag: &str, s: &str) -> Result<f64, UsageError> {
    let t = s.trim();
    let (num, percent) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (t, false),
    };
    let v: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| {
            UsageError(format!(
                "{flag} {s:?}: a share 0 to 1, or a percent like 50%"
            ))
        })?;
    let v = if percent || v > 1.0 { v / 100.0 } else { v };
    if !(0.0..=1.0).contains(&v) {
        return Err(UsageError(format!("{flag} {s:?}: between 0 and 100 %")));
    }
    Ok(v)
}

fn share(s: &str) -> Result<f64, UsageError> {
    share_of("--participation", s)
}

/// The conditions flags → [`Conditions`].
fn conditions(a: &LabArgs) -> Result<Conditions, UsageError> {
    if !(a.probe_fpr > 0.0 && a.probe_fpr < 1.0) {
        return Err(UsageError(format!(
            "--probe-fpr {}: between 0 and 1, e.g. 1e-3",
            a.probe_fpr
        )));
    }
    if let Some(b) = a.background
        && !(b.is_finite() && b >= 0.0)
    {
        return Err(UsageError(format!(
            "--background {b}: packets per link per second, 0 or more"
        )));
    }
    if !(a.link_delay_ms.is_finite() && (0.0..=10_000.0).contains(&a.link_delay_ms)) {
        return Err(UsageError(format!(
            "--link-delay-ms {}: 0 to 10000",
            a.link_delay_ms
        )));
    }
    Ok(Conditions {
        probe_fpr: a.probe_fpr,
        background_pps: a.background,
        duplicates: share_of("--duplicates", &a.duplicates)?,
        multipath: share_of("--multipath", &a.multipath)?,
        probe_failures: share_of("--probe-failures", &a.probe_failures)?,
        link_delay: Duration::from_secs_f64(a.link_delay_ms / 1e3),
        core: a.participants == "core",
    })
}

fn config(a: &LabArgs) -> Result<LabConfig> {
    let topology = match a.topology.as_str() {
        "default" => TopologySpec::Default,
        "chain" => TopologySpec::Chain(a.domains.unwrap_or(13)),
        "mesh" => TopologySpec::Mesh(a.domains.unwrap_or(15)),
        path => TopologySpec::File {
            path: path.into(),
            domains: a.domains.unwrap_or(200),
        },
    };
    if let Some(n) = a.domains
        && n > MAX_DOMAINS
    {
        return Err(UsageError(format!(
            "--domains {n}: the lab runs at most {MAX_DOMAINS} domains in one process"
        ))
        .into());
    }
    let out_dir = match &a.out {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("ashiato-lab-")
            .tempdir()
            .context("creating the lab's directory")?
            .keep(),
    };
    Ok(LabConfig {
        topology,
        participation: share(&a.participation)?,
        seed: a.seed,
        mode: if a.mode == "mesh" {
            TraceMode::Mesh
        } else {
            TraceMode::Recursive
        },
        origins: a.origins,
        packets: a.packets.max(1),
        traces: a.traces,
        out_dir,
        throughput: a.throughput.map(Duration::from_secs_f64),
        concurrency: a.concurrency.max(1),
        reuse_connections: !a.handshake_per_request,
        conditions: conditions(a)?,
    })
}

/// `ashiato lab`
pub fn run(a: &LabArgs) -> Result<()> {
    let cfg = config(a)?;
    match ashiato_lab::raise_nofile_limit() {
        Ok((old, new)) if new > old => {
            eprintln!(
                "lab: raised the open-file limit (RLIMIT_NOFILE) from {old} to its hard limit {new}"
            )
        }
        Ok(_) => {}
        Err(e) => eprintln!("lab: could not raise the open-file limit: {e}"),
    }
    eprintln!("lab: output in {}", cfg.out_dir.display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let progress = |m: &str| eprintln!("lab: {m}");
        let (report, running) = match ashiato_lab::run(&cfg, &progress).await {
            Ok(x) => x,
            Err(LabError::Topology(e)) => {
                // Nothing was run: do not leave the fresh, empty output directory behind.
                if a.out.is_none() {
                    let _ = std::fs::remove_dir(&cfg.out_dir);
                }
                return Err(UsageError(e.to_string()).into());
            }
            Err(e) => return Err(anyhow::Error::new(e)),
        };
        if a.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", report.text());
            println!("output      {}", report.out_dir);
        }
        if a.serve {
            let name = ashiato_lab::run::operator_identity(running.victim);
            let addr = running.victim_addr;
            let dir = running.tls_dir.display().to_string();
            let (d, t) = report.sample_packet.clone().map_or_else(
                || ("<DIGEST>".to_string(), "<RFC3339>".to_string()),
                |(d, t)| (d, ashiato_wire::time::rfc3339(t)),
            );
            // With --json, stdout stays one JSON object: the serving notes go to stderr.
            let json = a.json;
            let say = |line: String| {
                if json {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            };
            say("\nserving every service until Ctrl-C".into());
            say(format!(
                "  victim controller  https://{addr} (AS{})",
                running.victim
            ));
            say(format!("  TLS directory      {dir} (identity {name})"));
            say(format!(
                "  trace              ashiato trace --controller {addr} --digest {d} --time {t} --tls-dir {dir} --name {name}"
            ));
            say(format!(
                "  metrics            curl --cacert {dir}/ca.pem --cert {dir}/{name}.pem --key {dir}/{name}-key.pem https://{addr}/metrics"
            ));
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        }
        running.stop().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_and_percents() {
        assert_eq!(share("0.5").unwrap(), 0.5);
        assert_eq!(share("50%").unwrap(), 0.5);
        assert_eq!(share("80").unwrap(), 0.8);
        assert_eq!(share("1").unwrap(), 1.0);
        assert!(share("150%").is_err());
        assert!(share("x").is_err());
    }
}
