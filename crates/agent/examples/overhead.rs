//! The agent-overhead figure (docs/benchmarks.md): `ashiato agent` recording on a veth in a
//! network namespace while another namespace pushes frames at a stated rate; CPU% from
//! `/proc/PID/stat` (user + system over the sending window) and RSS (`VmRSS`, `VmHWM`) of the
//! agent process. Then the attribution's blind spot: processes making TCP connections that
//! live a given time, and how many of them the process log attributes.
//!
//! ```sh
//! cargo build --release -p ashiato -p ashiato-agent --examples --bin ashiato
//! sudo target/release/examples/overhead target/release/ashiato 10000,50000 10 100,20
//! ```
//!
//! Frames alternate 1514 and 74 bytes (794 on average) of TCP to an address the host does not
//! have, so the host's stack drops them without answering and the agent records exactly the
//! offered load. Needs root.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ashiato_capture::netns::{Netns, in_netns, unique_name, veth_pair};
use ashiato_capture::send::RawSender;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn frame(len: usize, dst_mac: [u8; 6], i: u32) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[10, 8, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 8, 0, 99]);
    ip[20..22].copy_from_slice(&(10_000 + (i % 50_000) as u16).to_be_bytes());
    ip[22..24].copy_from_slice(&80u16.to_be_bytes());
    ip[32] = 0x50;
    ip[33] = 0x18;
    f
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised comm: state is field 3; utime 14, stime 15.
    let rest = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `ashiato agent` recording on `iface` in `host` into `hist`, polling sockets every
/// `interval_ms`; the center is unreachable on purpose (no claims: recording only).
fn agent(
    bin: &str,
    host: &Netns,
    iface: &str,
    hist: &Path,
    dir: &Path,
    interval_ms: u64,
) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", host.name(), bin, "agent", "--iface", iface])
        .arg("--history-dir")
        .arg(hist)
        .args([
            "--center",
            "127.0.0.1:9",
            "--name",
            "host-1",
            "--poll",
            "3600",
        ])
        .args(["--attrib-interval", &interval_ms.to_string()])
        .arg("--tls-dir")
        .arg(dir.join("tls"))
        .arg("--list-key-file")
        .arg(dir.join("list.key"))
        .args(["--sign-public-key", &"00".repeat(32)])
        .stdout(Stdio::null());
    c
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .expect("usage: overhead ASHIATO_BINARY RATES SECONDS");
    let rates: Vec<u64> = args
        .get(2)
        .map_or("10000,50000", String::as_str)
        .split(',')
        .map(|r| r.parse().expect("rate"))
        .collect();
    let secs: u64 = args.get(3).map_or(10, |s| s.parse().expect("seconds"));
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let o = Command::new(bin)
        .args([
            "pki",
            "init",
            "--dir",
            tls.to_str().unwrap(),
            "--name",
            "host-1",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    std::fs::write(dir.path().join("list.key"), [7u8; 32]).unwrap();
    let (sender, host) = (
        Netns::new(&unique_name("aos")).expect("root"),
        Netns::new(&unique_name("aoh")).expect("root"),
    );
    let (si, hi) = (unique_name("aos"), unique_name("aoh"));
    veth_pair(
        &sender,
        &si,
        &host,
        &hi,
        Some(("10.8.0.1/24", "10.8.0.2/24")),
    )
    .unwrap();
    let mac_text = Command::new("ip")
        .args(["netns", "exec", host.name(), "cat"])
        .arg(format!("/sys/class/net/{hi}/address"))
        .output()
        .unwrap();
    let mac: Vec<u8> = String::from_utf8_lossy(&mac_text.stdout)
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let mac: [u8; 6] = mac.try_into().unwrap();
    let frames: Vec<Vec<u8>> = (0..1024)
        .map(|i| frame(if i % 2 == 0 { 1514 } else { 74 }, mac, i))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let clk = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    println!(
        "rate_pps,achieved_pps,seconds,cpu_percent,rss_mib,hwm_mib,frames_written,kernel_drops"
    );
    for &rate in &rates {
        let hist = dir.path().join(format!("hist-{rate}"));
        let mut agent = agent(bin, &host, &hi, &hist, dir.path(), 100);
        agent.stderr(Stdio::piped());
        let mut child = agent.spawn().unwrap();
        let pid = child.id();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let _agent = Kill(child);
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert!(line.contains("recording"), "{line}");
        let drain = std::thread::spawn(move || {
            let mut all = String::new();
            for l in err.lines().map_while(Result::ok) {
                all.push_str(&l);
                all.push('\n');
            }
            all
        });
        std::thread::sleep(Duration::from_secs(1));
        let (t0, c0) = (Instant::now(), cpu_ticks(pid));
        let rep = in_netns(sender.name(), || {
            let mut s = RawSender::open(&si).unwrap();
            s.blast(&frames, rate * secs, rate).unwrap()
        })
        .unwrap();
        let (dt, c1) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid));
        let rss = status_kib(pid, "VmRSS:");
        let hwm = status_kib(pid, "VmHWM:");
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on our child's pid; SIGTERM lets it close the history.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let log = drain.join().unwrap();
        // The number before `label` in the agent's last status line.
        let field = |label: &str| -> String {
            log.rfind(label)
                .and_then(|i| log[..i].rsplit(' ').next())
                .unwrap_or("?")
                .to_string()
        };
        println!(
            "{rate},{:.0},{dt:.1},{:.1},{:.1},{:.1},{},{}",
            rep.achieved_pps,
            (c1 - c0) as f64 / clk / dt * 100.0,
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            field(" frames, "),
            field(" kernel drops")
        );
        eprintln!("{}", log.trim());
    }
    let intervals: Vec<u64> = args
        .get(4)
        .map_or("100", String::as_str)
        .split(',')
        .map(|r| r.parse().expect("interval ms"))
        .collect();
    println!("interval_ms,held_ms,connections,attributed");
    for iv in intervals {
        short_lived(bin, &sender, &host, &hi, dir.path(), iv);
    }
}

/// TCP connections held 0, 20, 50, 100 and 200 ms by a process in the host namespace: how
/// many the process log attributes with polls every `interval_ms`.
fn short_lived(bin: &str, sender: &Netns, host: &Netns, hi: &str, dir: &Path, interval_ms: u64) {
    let _server = Kill(
        Command::new("ip")
            .args(["netns", "exec", sender.name(), "socat", "-u"])
            .args([
                "TCP-LISTEN:7000,bind=10.8.0.1,reuseaddr,fork",
                "OPEN:/dev/null",
            ])
            .spawn()
            .unwrap(),
    );
    for held in [0u32, 20, 50, 100, 200] {
        let hist = dir.join(format!("short-{interval_ms}-{held}"));
        let child = agent(bin, host, hi, &hist, dir, interval_ms)
            .stderr(
                std::fs::File::create(dir.join(format!("short-{interval_ms}-{held}.log"))).unwrap(),
            )
            .spawn()
            .unwrap();
        let pid = child.id();
        let _a = Kill(child);
        std::thread::sleep(Duration::from_millis(800));
        let n = 100;
        let script = format!(
            "import socket, time\nfor i in range({n}):\n    s = socket.create_connection(('10.8.0.1', 7000))\n    time.sleep({})\n    s.close()\n    time.sleep(0.013)\n",
            held as f64 / 1000.0
        );
        let o = Command::new("ip")
            .args(["netns", "exec", host.name(), "python3", "-c", &script])
            .output()
            .unwrap();
        assert!(o.status.success());
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: as above.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        std::thread::sleep(Duration::from_millis(500));
        let log = std::fs::read_to_string(hist.join("procs.jsonl")).unwrap_or_default();
        let attributed = log
            .lines()
            .filter(|l| l.contains("\"remote\":\"10.8.0.1:7000\"") && l.contains("python3"))
            .count();
        println!("{interval_ms},{held},{n},{attributed}");
        // The agent's last status line: sockets seen, polls, the longest poll, /proc scans.
        let status = std::fs::read_to_string(dir.join(format!("short-{interval_ms}-{held}.log")))
            .unwrap_or_default();
        eprintln!("{}", status.lines().last().unwrap_or(""));
    }
}
