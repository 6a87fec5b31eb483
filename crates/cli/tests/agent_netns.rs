//! `ashiato agent` end to end in network namespaces (root): a real `ashiato center`, a victim
//! filing its claim with `ashiato report`, and a host where one process (comm `ircbot`)
//! joins an IRC server on port 6667, checks in over HTTP and floods the victim (partly with
//! spoofed SYNs) while another (`browser`) fetches
//! a web page. The agent, recording on the host's interface, must report exactly the bot's
//! records (with the keys it got by enrolling), and the center must rank the IRC server
//! first. Then: a claim whose window the
//! history does not hold is answered "unknown", a second run is idempotent (same report id),
//! a list that fails its signature is refused, and `ashiato hostcheck` reads the agent's
//! history offline.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ashiato_capture::netns::{Netns, unique_name, veth_pair};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ashiato");

/// A child killed when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_ns(ns: &Netns, prog: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns.name(), prog]);
    c.env_remove("ASHIATO_TLS_DIR").env_remove("ASHIATO_LOG");
    c
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Suricata EVE alerts for the victim at these times (the victim's IDS).
fn eve(path: &Path, times_ns: &[u64]) {
    let mut s = String::new();
    for &t in times_ns {
        let secs = (t / 1_000_000_000) as i64;
        let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        let ts = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
            dt.year(),
            dt.month() as u8,
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            (t % 1_000_000_000) / 1000
        );
        s.push_str(&format!(
            r#"{{"timestamp":"{ts}","event_type":"alert","src_ip":"198.51.100.9","src_port":40000,"dest_ip":"10.9.0.3","dest_port":80,"proto":"TCP"}}"#
        ));
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

const BOT: &str = r#"
import ctypes, socket, struct, time
ctypes.CDLL(None).prctl(15, b"ircbot", 0, 0, 0)
c = socket.create_connection(("10.9.0.2", 6667))
c.sendall(b"NICK bot17\r\nUSER bot17 0 * :bot\r\nJOIN #cc\r\n")
# A check-in over HTTP: none of the five features.
h = socket.create_connection(("10.9.0.2", 8080))
h.sendall(b"POST /gate.php HTTP/1.1\r\nHost: 10.9.0.2\r\nContent-Length: 2\r\n\r\nok")
time.sleep(0.3)
h.close()
held = []
for i in range(40):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("10.9.0.3", 80))
    except BlockingIOError:
        pass
    held.append(s)
    time.sleep(0.01)
# Spoofed SYNs: the victim's address and attacked port as source (a SYN/ACK reflection).
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(5):
    tcp = struct.pack("!HHIIBBHHH", 80, 5000 + i, i, 0, 0x50, 0x02, 1024, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0,
                     socket.inet_aton("10.9.0.3"), socket.inet_aton("10.9.0.4"))
    raw.sendto(ip + tcp, ("10.9.0.4", 0))
time.sleep(0.5)
"#;

const BROWSER: &str = r#"
import ctypes, urllib.request, time
ctypes.CDLL(None).prctl(15, b"browser", 0, 0, 0)
for i in range(3):
    urllib.request.urlopen("http://10.9.0.4:8080/").read()
    time.sleep(0.2)
"#;

#[test]
fn the_agent_reports_the_bot_process_and_the_center_ranks_its_irc_server() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (network namespaces, AF_PACKET)"
    );
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let keys = dir.path().join("keys");
    let hist = dir.path().join("history");
    let o = common::bin()
        .args(["pki", "init", "--dir", tls.to_str().unwrap()])
        .args(["--name", "center", "--name", "victim", "--name", "host-1"])
        .args(["--san", "10.9.0.1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);

    let net = Netns::new(&unique_name("agn")).expect("ip netns add");
    let host = Netns::new(&unique_name("agh")).expect("ip netns add");
    let (hif, nif) = (unique_name("ah"), unique_name("an"));
    veth_pair(
        &host,
        &hif,
        &net,
        &nif,
        Some(("10.9.0.10/24", "10.9.0.1/24")),
    )
    .unwrap();
    for a in ["10.9.0.2/24", "10.9.0.3/24", "10.9.0.4/24"] {
        net.exec(&["ip", "addr", "add", a, "dev", &nif]).unwrap();
    }

    // The center.
    let mut c = in_ns(&net, BIN)
        .args(["center", "--listen", "10.9.0.1:8443", "--print-addr"])
        .args([
            "--tls-dir",
            tls.to_str().unwrap(),
            "--key-dir",
            keys.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on"), "{line}");
    let _center = Kill(c);
    // The IRC server and its HTTP gate (they only listen), the victim's web server, an
    // ordinary web server.
    let _irc = Kill(
        in_ns(&net, "socat")
            .args([
                "-u",
                "TCP-LISTEN:6667,bind=10.9.0.2,reuseaddr,fork",
                "OPEN:/dev/null",
            ])
            .spawn()
            .unwrap(),
    );
    let _gate = Kill(
        in_ns(&net, "socat")
            .args([
                "-u",
                "TCP-LISTEN:8080,bind=10.9.0.2,reuseaddr,fork",
                "OPEN:/dev/null",
            ])
            .spawn()
            .unwrap(),
    );
    let _victim = Kill(
        in_ns(&net, "socat")
            .args([
                "-u",
                "TCP-LISTEN:80,bind=10.9.0.3,reuseaddr,fork",
                "OPEN:/dev/null",
            ])
            .spawn()
            .unwrap(),
    );
    let _web = Kill(
        in_ns(&net, "python3")
            .args(["-m", "http.server", "8080", "--bind", "10.9.0.4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));

    let sign_pub = std::fs::read_to_string(keys.join("sign.pub")).unwrap();
    // Keys by enrolment (`GET /v1/enroll`) when `key` is None, else from the files.
    let agent = |extra: &[&str], key: Option<&str>| {
        let mut c = in_ns(&host, BIN);
        c.args(["agent", "--history-dir", hist.to_str().unwrap()])
            .args([
                "--center",
                "10.9.0.1:8443",
                "--tls-dir",
                tls.to_str().unwrap(),
            ])
            .args(["--name", "host-1", "--once", "--yes"]);
        if let Some(k) = key {
            c.arg("--list-key-file")
                .arg(keys.join("list.key"))
                .args(["--sign-public-key", k.trim()]);
        }
        c.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut a = agent(&["--iface", &hif, "--duration", "6"], None)
        .spawn()
        .unwrap();
    let mut err = BufReader::new(a.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.contains("recording"), "{first}");
    let err_rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    std::thread::sleep(Duration::from_millis(500));

    // The attack, beside ordinary traffic.
    let t0 = now_ns();
    let bot = in_ns(&host, "python3").args(["-c", BOT]).spawn().unwrap();
    let browser = in_ns(&host, "python3")
        .args(["-c", BROWSER])
        .output()
        .unwrap();
    assert!(browser.status.success(), "{}", text(&browser).1);
    let bot = bot.wait_with_output().unwrap();
    assert!(bot.status.success());
    let t1 = now_ns();
    // The victim's IDS saw it; the victim files the claim.
    let eve_path = dir.path().join("eve.json");
    eve(&eve_path, &[t0 + 300_000_000, t1]);
    let report = |prefix: &str| {
        in_ns(&net, BIN)
            .args(["report", "--center", "10.9.0.1:8443", "--eve"])
            .arg(&eve_path)
            .args(["--id-prefix", prefix, "--tls-dir", tls.to_str().unwrap()])
            .args(["--name", "victim", "--yes"])
            .output()
            .unwrap()
    };
    let o = report("atk");
    assert!(o.status.success(), "{:?}", text(&o));

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = a.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the agent did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    a.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let err = err_rest.join().unwrap();
    assert_eq!(status.code(), Some(3), "{out}\n{err}");
    assert!(out.contains("This host took part in attack atk-1"), "{out}");
    // The packets it sent with the victim's address as source count too.
    assert!(out.contains("spoofed-source 5"), "{out}");
    assert!(
        out.contains("tcp 10.9.0.2:6667  fqdn -  process ircbot  features irc"),
        "{out}"
    );
    // The same process's check-in goes along without a feature; its flood (the victim) not.
    assert!(
        out.contains("tcp 10.9.0.2:8080  fqdn -  process ircbot  features \n"),
        "{out}"
    );
    assert!(out.contains("would send these 2 records"), "{out}");
    assert!(
        !out.contains("browser") || out.contains("sent by: browser"),
        "{out}"
    );
    assert!(!out.contains("10.9.0.4"), "{out}");
    assert!(out.contains("for atk-1 sent"), "{out}");
    assert!(err.contains("attributed"), "{err}");

    // The center's ranking names the IRC server, with the bot process as evidence.
    let o = in_ns(&net, "curl")
        .args(["-s", "--cacert"])
        .arg(tls.join("ca.pem"))
        .arg("--cert")
        .arg(tls.join("host-1.pem"))
        .arg("--key")
        .arg(tls.join("host-1-key.pem"))
        .arg("https://10.9.0.1:8443/v1/ranking/atk-1")
        .output()
        .unwrap();
    let ranking: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_eq!(ranking[0]["server"], "10.9.0.2", "{ranking}");
    assert_eq!(ranking[0]["processes"][0], "ircbot", "{ranking}");
    assert_eq!(
        ranking[0]["ports"],
        serde_json::json!([6667, 8080]),
        "{ranking}"
    );
    assert_eq!(ranking.as_array().map(Vec::len), Some(1), "{ranking}");

    // A claim from hours before the history: "unknown", not "no match". The first claim
    // still matches, and its report (same id) is already at the center.
    let old = now_ns() - 3 * 3600 * 1_000_000_000;
    eve(&eve_path, &[old, old + 60_000_000_000]);
    let o = report("old");
    assert!(o.status.success(), "{:?}", text(&o));
    let o = agent(&[], Some(&sign_pub)).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(
        out.contains("claim old-1: unknown: the history does not cover the window"),
        "{out}"
    );
    assert!(out.contains("was already at the center"), "{out}");

    // A list signed by another key is refused and nothing is audited or sent.
    let wrong = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
    let o = agent(&[], Some(wrong)).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        err.contains("bad signature") && err.contains("not applied"),
        "{err}"
    );
    assert!(!out.contains("sent"), "{out}");

    // hostcheck reads the agent's history and process log offline.
    let mut segs: Vec<_> = std::fs::read_dir(&hist)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    segs.sort();
    let claims = dir.path().join("claims.jsonl");
    std::fs::write(
        &claims,
        format!(
            r#"{{"id":"x","victim":"10.9.0.3","protocol":"tcp","port":80,"from":"{}","to":"{}"}}"#,
            ashiato_wire::time::rfc3339(t0),
            ashiato_wire::time::rfc3339(t1)
        ),
    )
    .unwrap();
    let mut c = common::bin();
    c.arg("hostcheck")
        .arg("--json")
        .arg("--claims")
        .arg(&claims);
    c.arg("--procs").arg(hist.join("procs.jsonl"));
    for s in &segs {
        c.arg("--pcap").arg(s);
    }
    let o = c.output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.contains(r#""feature":"irc""#) && l.contains(r#""process":"ircbot""#)),
        "{out}"
    );
}
