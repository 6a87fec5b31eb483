//! The graph page in a real browser: the center's router served over plain HTTP on
//! 127.0.0.1, headless Chromium loads `/v1/graph/{claim}?format=html` (which fetches
//! `/static/graph.js` from the center, nothing else), and the DOM it builds must hold the
//! three layers with the C&C marked rank 1. The exported, self-contained page is loaded from
//! a file the same way. Chromium is required: the test fails without it (scripts/test.sh
//! installs the Debian package `chromium`).

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ashiato_center::ledger::Ledger;
use ashiato_center::views::{RankFilter, Script, ViewCtx, render};
use ashiato_center::{Center, CenterConfig, router};
use ashiato_hosttrace::claimlist::CenterList;
use ashiato_net::server::{ServerLimits, serve};
use ashiato_store::{BotRecordRow, BotReportRow, HostClaim, Store};

/// 2026-01-01T10:00:00Z.
const T0: u64 = 1_767_261_600_000_000_000;

fn rec(dst: &str, port: u16, fqdn: Option<&str>, features: &[&str], t: u64) -> BotRecordRow {
    BotRecordRow {
        time_ns: T0 + t,
        proto: "tcp".into(),
        dst: dst.parse().unwrap(),
        port,
        fqdn: fqdn.map(Into::into),
        process: Some("svchost.exe".into()),
        features: features.iter().map(|f| f.to_string()).collect(),
    }
}

/// A store with one claim and three bots: all reached the IRC C&C, two the download server,
/// one a server whose reported name is markup.
async fn populated(db: &Path) -> Store {
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    store
        .put_host_claim(&HostClaim {
            id: "c1".into(),
            incident_id: None,
            reporter: "victim-a".into(),
            received_ns: T0 + 600_000_000_000,
            list_version: 1,
            victim: "203.0.113.5".parse().unwrap(),
            fqdn: None,
            protocol: "tcp".into(),
            port: Some(80),
            from_ns: T0,
            to_ns: T0 + 300_000_000_000,
            reflectors: vec![],
            evidence_count: 1,
            evidence_summary: "1 EVE records".into(),
        })
        .await
        .unwrap();
    for (i, bot) in ["bot-a", "bot-b", "bot-c"].iter().enumerate() {
        let mut records = vec![rec(
            "45.33.32.156",
            6667,
            Some("irc.example.org"),
            &["irc"],
            i as u64,
        )];
        if i < 2 {
            records.push(rec("198.51.100.20", 80, None, &["http-exe"], 10));
        }
        if i == 2 {
            records.push(rec(
                "192.0.2.66",
                443,
                Some("<img src=x onerror=alert(1)>"),
                &[],
                20,
            ));
        }
        store
            .put_bot_report(&BotReportRow {
                reporter: bot.to_string(),
                report_id: "r1".into(),
                claim_id: "c1".into(),
                incident_id: None,
                received_ns: T0 + 700_000_000_000 + i as u64,
                attack_packets: 5000,
                attacked_port: Some(80),
                records,
            })
            .await
            .unwrap();
    }
    store
}

/// Headless Chromium's DOM of `url` after its scripts ran.
fn dom(url: &str, profile: &Path) -> String {
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=5000",
            "--enable-logging=stderr",
            "--v=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium is not installed: apt-get install chromium (scripts/test.sh does)");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "chromium failed: {}",
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    // The page's script and style pass its Content-Security-Policy and the script throws
    // nothing (Chromium logs console messages with --v=1).
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("violates the following Content Security Policy") || l.contains("Uncaught")
        })
        .collect();
    assert!(bad.is_empty(), "{url}: {bad:#?}");
    String::from_utf8(o.stdout).unwrap()
}

type Element = (String, Vec<(String, String)>);

/// The `<g>` and `<line>` elements of the graph, as (tag, attributes).
fn elements(dom: &str) -> Vec<Element> {
    let mut out = Vec::new();
    for chunk in dom.split('<').skip(1) {
        let tag_end = chunk.find('>').unwrap_or(chunk.len());
        let tag = &chunk[..tag_end];
        let name = tag.split_whitespace().next().unwrap_or("");
        if name != "g" && name != "line" {
            continue;
        }
        let mut attrs = Vec::new();
        let mut rest = &tag[name.len()..];
        while let Some(eq) = rest.find("=\"") {
            let key = rest[..eq].trim().to_string();
            let after = &rest[eq + 2..];
            let end = after.find('"').unwrap();
            attrs.push((key, after[..end].to_string()));
            rest = &after[end + 1..];
        }
        out.push((name.to_string(), attrs));
    }
    out
}

fn attr<'a>(e: &'a Element, k: &str) -> Option<&'a str> {
    e.1.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

/// The three layers, the edges and the rank-1 C&C, as the browser built them.
fn check_graph(dom: &str) {
    assert!(
        dom.contains("data-ready=\"1\""),
        "the script did not run:\n{dom}"
    );
    let els = elements(dom);
    let nodes = |kind: &str| -> Vec<&str> {
        els.iter()
            .filter(|e| e.0 == "g")
            .filter(|e| attr(e, "class").is_some_and(|c| c.split(' ').any(|x| x == kind)))
            .filter_map(|e| attr(e, "data-id"))
            .collect()
    };
    assert_eq!(nodes("port"), ["80"]);
    let mut bots = nodes("bot");
    bots.sort_unstable();
    assert_eq!(bots, ["bot-a", "bot-b", "bot-c"]);
    let servers = nodes("server");
    assert_eq!(servers.len(), 3, "{servers:?}");
    let rank1: Vec<&str> = els
        .iter()
        .filter(|e| attr(e, "data-rank") == Some("1"))
        .filter_map(|e| attr(e, "data-id"))
        .collect();
    assert_eq!(rank1, ["45.33.32.156"], "the IRC C&C is rank 1");
    let rank1_class = els
        .iter()
        .find(|e| attr(e, "data-id") == Some("45.33.32.156"))
        .and_then(|e| attr(e, "class"))
        .unwrap();
    assert!(rank1_class.contains("rank-1"), "{rank1_class}");
    let edges = |cls: &str| {
        els.iter()
            .filter(|e| e.0 == "line")
            .filter(|e| attr(e, "class").is_some_and(|c| c.contains(cls)))
            .map(|e| (attr(e, "data-from").unwrap(), attr(e, "data-to").unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(edges("port-bot").len(), 3);
    let bs = edges("bot-server");
    assert_eq!(bs.len(), 6, "{bs:?}");
    assert!(bs.contains(&("bot-c", "45.33.32.156")));
    // The reported name is text, not markup.
    assert!(!dom.contains("<img"), "markup from a reporter was parsed");
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // The evidence table: one row per server, in rank order.
    let first_row = dom.split("<tbody>").nth(1).unwrap();
    assert!(
        first_row.starts_with("<tr data-rank=\"1\"><td>1</td><td>45.33.32.156</td>"),
        "{first_row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_page_draws_three_layers_with_the_cc_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("center.db");
    let store = populated(&db).await;
    let rng = ring::rand::SystemRandom::new();
    let pk8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let cfg = CenterConfig::default();
    let list = CenterList::new(&[7; 32], pk8.as_ref(), cfg.skew_ns).unwrap();
    let center: Arc<Center> = Center::new(cfg, list, [7; 32], store, Box::new(|| T0))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router(center),
        None,
        ServerLimits::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let profile = dir.path().join("profile");
    let url = format!("http://{addr}/v1/graph/c1?format=html");
    let served = tokio::task::spawn_blocking(move || dom(&url, &profile))
        .await
        .unwrap();
    check_graph(&served);

    // The exported page: script inlined, opened from a file with no center behind it.
    let ledger = Ledger::load(&Store::open(db.to_str().unwrap()).await.unwrap())
        .await
        .unwrap();
    let allow = std::collections::HashSet::<IpAddr>::new();
    let ctx = ViewCtx {
        ledger: &ledger,
        allow: &allow,
        asn: None,
        contact: None,
        now_ns: T0,
    };
    let (_, page) = render(&ctx, "c1", &RankFilter::default(), "html", Script::Inline).unwrap();
    let file = dir.path().join("c1.html");
    std::fs::write(&file, page).unwrap();
    let profile = dir.path().join("profile2");
    let url = format!("file://{}", file.display());
    let exported = tokio::task::spawn_blocking(move || dom(&url, &profile))
        .await
        .unwrap();
    check_graph(&exported);

    // The page's own filters (here from the address, as a user's choice would be).
    let shown = |query: &str, n: usize| {
        let profile = dir.path().join(format!("profile-{n}"));
        let url = format!("file://{}?{query}", file.display());
        let d = dom(&url, &profile);
        let els = elements(&d);
        let ids = |kind: &str| {
            let mut v: Vec<String> = els
                .iter()
                .filter(|e| e.0 == "g" && attr(e, "class").is_some_and(|c| c.contains(kind)))
                .filter_map(|e| attr(e, "data-id").map(String::from))
                .collect();
            v.sort_unstable();
            v
        };
        (ids("node bot"), ids("node server"))
    };
    let (bots, servers) = tokio::task::block_in_place(|| shown("min_bots=3", 1));
    assert_eq!(bots, ["bot-a", "bot-b", "bot-c"]);
    assert_eq!(servers, ["45.33.32.156"]);
    let (bots, servers) = tokio::task::block_in_place(|| shown("feature=http-exe", 2));
    assert_eq!(bots, ["bot-a", "bot-b"]);
    assert_eq!(servers, ["198.51.100.20"]);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
