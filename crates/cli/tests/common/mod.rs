//! Helpers shared by the CLI's integration tests: run the binary as a user would, start a
//! probe on a port the kernel picks, talk plain HTTP to it.
// Each test binary includes this module and uses a subset of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `ashiato` binary, without the environment variables that would change its defaults.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ashiato"));
    c.env_remove("ASHIATO_KEY_FILE")
        .env_remove("ASHIATO_TLS_DIR")
        .env_remove("ASHIATO_LOG");
    c
}

/// A path in the repository.
pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

/// A bundled capture (tests/data/README.md says where each comes from).
pub fn data(name: &str) -> PathBuf {
    repo("tests/data").join(name)
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run ashiato")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The masscan capture: 1001 SYNs and 4 RSTs over about 10 s.
pub const MASSCAN: &str = "esnet-masscan-tcp_0_1000_20190821.pcap";

/// A running `ashiato probe run` and the address it serves; killed when dropped.
pub struct Server(pub Child, pub String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ashiato probe run` on 127.0.0.1 port 0 (sized for 10 kpps) with `extra` flags,
/// and waits for the address it prints. Its standard error goes to `stderr`.
pub fn spawn_probe(extra: &[&str], stderr: Stdio) -> Server {
    let mut cmd = bin();
    cmd.args([
        "probe",
        "run",
        "--listen",
        "127.0.0.1:0",
        "--print-addr",
        "--rate",
        "10kpps",
    ])
    .args(extra)
    .stderr(stderr);
    spawn_listening(cmd)
}

/// Spawns a service started with `--print-addr` and waits for its first line,
/// `listening on ADDR`.
pub fn spawn_listening(mut cmd: std::process::Command) -> Server {
    let mut c = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server(c, addr)
}

/// [`spawn_probe`] with its logs discarded.
pub fn start_probe(extra: &[&str]) -> Server {
    spawn_probe(extra, Stdio::null())
}

/// A plaintext HTTP GET on loopback: status code and body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {out:?}"));
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

/// Polls `check` until it returns `Some`, backing off from 1 ms to 100 ms between tries, and
/// returns the value; panics naming `what` if `within` passes first. For conditions that only
/// another process can make true and that no event announces: never a fixed sleep.
pub fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = check() {
            return v;
        }
        let now = Instant::now();
        assert!(
            now < deadline,
            "gave up after {within:?} waiting for {what}"
        );
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Waits for `child` to exit (at most `within`, then kills it and panics naming `what`).
pub fn wait_exit(child: &mut Child, what: &str, within: Duration) -> std::process::ExitStatus {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(what, within, || child.try_wait().unwrap())
    }));
    match r {
        Ok(status) => status,
        Err(panic) => {
            let _ = child.kill();
            let _ = child.wait();
            std::panic::resume_unwind(panic)
        }
    }
}

/// Waits until a plaintext probe has read its whole capture; returns its status.
pub fn wait_input_done(addr: &str) -> serde_json::Value {
    wait_for(
        "the probe to finish its input",
        Duration::from_secs(30),
        || {
            let (code, body) = http_get(addr, "/v1/status");
            assert_eq!(code, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            (v["input_done"] == true).then_some(v)
        },
    )
}
