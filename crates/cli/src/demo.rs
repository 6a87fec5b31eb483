//! `ashiato demo`: the quick start. A probe reads a bundled real capture (an nmap SYN scan),
//! serves its digest tables over mutual TLS on loopback, and answers four questions:
//!
//! 1. a packet from the capture → seen, with the false-positive rate of its epoch;
//! 2. the same packet with another TTL and TOS, as a router further along would forward it →
//!    seen, because the digest masks the fields routers change;
//! 3. a packet that was never sent → not seen;
//! 4. a client without a certificate → refused at the TLS handshake.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use ashiato_capture::file::FileSource;
use ashiato_digest::DEMO_KEY;
use ashiato_net::client::ServiceClient;
use ashiato_net::server::{ServerLimits, serve};
use ashiato_net::tls::{
    TlsFiles, anonymous_client_config, client_config, generate_pki, server_config,
};
use ashiato_probe::api::{QueryRequest, Verdict, router};
use ashiato_probe::{Input, Probe, ProbeConfig};
use ashiato_tables::{FilterKind, TablesConfig, theory};
use ashiato_wire::packet::{self, Ip};

use crate::CheckFailed;
use crate::args::DemoArgs;
use crate::probe_cmd::print_answer;
use ashiato_wire::time::rfc3339;

/// The bundled capture: nmap SYN scan of scanme.nmap.org, 2010 (see tests/data/README.md).
const CAPTURE: &[u8] = include_bytes!("../../../tests/data/cs-synscan.pcapng");

/// Index of the packet the demo traces.
const ATTACK_INDEX: u64 = 1000;

/// `ashiato demo`
pub fn run(a: &DemoArgs) -> Result<()> {
    // Without --dir, a fresh private directory (random name, mode 0700) that is kept, so the
    // report the demo points at is still there afterwards.
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("{}", d.display()))?;
            d.clone()
        }
        None => tempfile::Builder::new()
            .prefix("ashiato-demo-")
            .tempdir()
            .context("creating the demo directory")?
            .keep(),
    };
    let pcap = dir.join("synscan.pcapng");
    std::fs::write(&pcap, CAPTURE).with_context(|| format!("{}", pcap.display()))?;
    let tls_dir = dir.join("tls");
    if !tls_dir.join("ca.pem").exists() {
        generate_pki(&tls_dir, &["probe".into(), "client".into()], &[])?;
    }
    println!(
        "1/6 wrote a bundled capture and a federation PKI (CA, probe, client) to {}",
        dir.display()
    );

    let tables = TablesConfig {
        epoch_ns: 1_000_000_000,
        retention_epochs: 60,
        params: theory::plan(FilterKind::Blocked, 100_000, 1e-3),
        table_id: 0,
        spill: None,
        prefault: false,
    };
    let probe = Probe::start(ProbeConfig {
        name: "demo-probe".into(),
        input: Input::Files(vec![pcap.clone()]),
        key: DEMO_KEY,
        tables,
    })?;
    if !probe.wait_input_done(Duration::from_secs(30)) {
        bail!("the probe did not finish reading the bundled capture");
    }
    let c = probe.state().counters.snapshot();
    println!(
        "2/6 probe recorded {} of {} packets into {} epochs",
        c.digested,
        c.frames_seen,
        probe.state().tables.epochs().len()
    );

    // The packet to trace, and two variants of it.
    let (ts, link, frame) = frame_at(&pcap, ATTACK_INDEX)?;
    let original = DEMO_KEY.digest_frame(link, &frame)?;
    let ip_off = packet::parse(link, &frame)?.ip_offset;
    let mut later_hop = frame.clone();
    later_hop[ip_off + 1] ^= 0xb8; // TOS rewritten
    later_hop[ip_off + 8] = later_hop[ip_off + 8].wrapping_sub(7); // seven more hops
    let rehopped = DEMO_KEY.digest_frame(link, &later_hop)?;
    let mut never = frame.clone();
    let pkt = packet::parse(link, &frame)?;
    if let Ip::V4(v4) = &pkt.ip {
        let l4 = ip_off + v4.header.len();
        never[l4 + 2] ^= 0x55; // another destination port: a packet nobody sent
    }
    let unsent = DEMO_KEY.digest_frame(link, &never)?;

    let server = server_config(&TlsFiles::in_dir(&tls_dir, "probe"))?;
    let client_tls = client_config(&TlsFiles::in_dir(&tls_dir, "client"))?;
    let anon_tls = anonymous_client_config(&tls_dir.join("ca.pem"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let serve_forever = a.serve;
    let work_dir = dir.clone();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(probe.state());
        let server_task = tokio::spawn(serve(listener, app, Some(server), ServerLimits::default(), async {
            let _ = rx.await;
        }));
        println!("3/6 probe serving over mutual TLS on {addr}");
        let client = ServiceClient::new(&addr, Some(client_tls));
        // ±3 s lies inside the capture, so "not seen" is a real answer, not "unknown".
        let window = 3_000_000_000u64;
        let ask = |d: &ashiato_digest::Digest| QueryRequest {
            digests: vec![d.to_string()],
            from_ns: Some(ts - window),
            to_ns: Some(ts + window),
            table_id: Some(DEMO_KEY.table_id_hex()),
        };
        println!(
            "4/6 asking about packet {ATTACK_INDEX} (seen at {}), the same packet 7 hops later, and a packet never sent",
            rfc3339(ts)
        );
        let mut answers = Vec::new();
        for d in [&original, &rehopped, &unsent] {
            let resp = client.query(&ask(d)).await?;
            print_answer(&resp);
            answers.push(resp.answers[0].verdict());
        }
        let anon = ServiceClient::new(&addr, Some(anon_tls))
            .with_timeout(Duration::from_secs(5))
            .status()
            .await;
        match &anon {
            Err(e) => println!("5/6 a client without a certificate was refused: {e}"),
            Ok(_) => println!("5/6 a client without a certificate was served (this is a failure)"),
        }
        let ok = answers == [Verdict::Seen, Verdict::Seen, Verdict::NotSeen]
            && original == rehopped
            && anon.is_err();
        if !ok {
            let _ = tx.send(());
            return Err(CheckFailed("the demo's answers were not the expected ones".into()).into());
        }
        println!("probe checks passed: the probe traced the packet, ignored what routers change, and refused strangers");
        darkflow_step(&pcap, &work_dir)?;
        if serve_forever {
            println!(
                "serving until Ctrl-C; try:\n  ashiato probe query --probe {addr} --tls-dir {} --pcap {} --index {ATTACK_INDEX}",
                tls_dir.display(),
                pcap.display()
            );
            let _ = tokio::signal::ctrl_c().await;
        }
        let _ = tx.send(());
        let _ = server_task.await;
        drop(probe);
        anyhow::Ok(())
    })?;
    println!(
        "demo passed: everything it wrote (capture, PKI, DarkFlow report) is kept in {}",
        dir.display()
    );
    Ok(())
}

fn frame_at(path: &std::path::Path, index: u64) -> Result<(u64, ashiato_wire::LinkType, Vec<u8>)> {
    let mut src = FileSource::open(path)?;
    let mut i = 0;
    while let Some(f) = src.next_frame()? {
        if i == index {
            return Ok((f.ts_nanos, f.link, f.data.to_vec()));
        }
        i += 1;
    }
    bail!("{}: no packet {index}", path.display())
}

/// DarkFlow over the same capture: which SYNs of the scan got no answer within 5 s.
fn darkflow_step(pcap: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    use ashiato_darkflow::report::Meta;
    use ashiato_darkflow::{Config, Detector, Summary, SummaryConfig};
    use ashiato_darkflow_shells::offline;
    use ashiato_darkflow_shells::report_dir::ReportDir;
    let mut det = Detector::new(Config::default());
    let mut sum = Summary::new(SummaryConfig::default());
    let out = dir.join("darkflow-report");
    let mut rd = ReportDir::create(&out).with_context(|| format!("{}", out.display()))?;
    let (_, r) = offline::run(
        &[pcap.to_path_buf()],
        &mut det,
        &mut |e| {
            sum.observe(&e);
            rd.observe(&e);
        },
        |_, _| {},
    );
    r?;
    let c = det.counters();
    let report = sum.report(c);
    let meta = Meta {
        title: "DarkFlow: nmap SYN scan (demo)".into(),
        inputs: vec![pcap.display().to_string()],
        timeout_ns: 5_000_000_000,
        generated_by: "ashiato demo".into(),
    };
    rd.finish(&report, &meta)
        .with_context(|| format!("{}", out.display()))?;
    println!(
        "6/6 DarkFlow over the same capture: {} SYNs, {} answered by SYN/ACK, {} by RST, {} DarkFlows (no answer within 5 s) to {} ports",
        c.syns,
        c.answered_synack,
        c.answered_rst,
        c.darkflows,
        report.ports.len()
    );
    if c.darkflows != 1986 || c.answered_synack + c.answered_rst != 8 {
        return Err(
            CheckFailed("the DarkFlow count of the bundled scan is not 1986".into()).into(),
        );
    }
    println!(
        "1986 of the scan's 1994 probes were DarkFlows; report in {}",
        out.join("index.html").display()
    );
    Ok(())
}
