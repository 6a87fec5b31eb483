//! Processes of `ashiato hostlab`: children started inside a namespace and stopped when
//! dropped (SIGTERM first, so a capture flushes its file), the captures, and ngircd in the
//! foreground with a configuration of its own.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ashiato_capture::netns::Netns;

/// A child process stopped (SIGTERM, then SIGKILL after 3 s) when dropped.
pub(crate) struct Proc(pub(crate) Child);

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends SIGTERM (a capture flushes its file; `ashiato agent --once` stops recording
    /// and audits).
    pub(crate) fn terminate(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
    }

    /// Waits up to `timeout` for it to exit.
    pub(crate) fn wait_for(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it and waits; a capture flushes its file on SIGTERM.
    pub(crate) fn stop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        self.terminate();
        if self.wait_for(Duration::from_secs(3)).is_some() {
            return;
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `/etc/netns/NAME/` (resolv.conf for `ip netns exec`), removed when dropped.
pub(crate) struct EtcNetns(pub(crate) PathBuf);

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Spawns `cmd` in namespace `ns` with its output in `log`.
pub(crate) fn spawn_in(ns: &Netns, cmd: &[&std::ffi::OsStr], log: &Path) -> Result<Child> {
    let f = std::fs::File::create(log)?;
    spawn_split(ns, cmd, f.try_clone()?, f)
}

/// Spawns `cmd` in namespace `ns` with its standard output and error in these files.
pub(crate) fn spawn_split(
    ns: &Netns,
    cmd: &[&std::ffi::OsStr],
    out: std::fs::File,
    err: std::fs::File,
) -> Result<Child> {
    Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .args(cmd)
        .env_remove("ASHIATO_TLS_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.first()))
}

/// Waits until `log` contains `needle` (a process announcing it is ready).
pub(crate) fn wait_log(log: &Path, needle: &str, child: &mut Child, what: &str) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(needle)) {
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            bail!(
                "{what} exited ({st}): {}",
                std::fs::read_to_string(log).unwrap_or_default().trim()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{what} did not start within 10 s (see {})", log.display())
}

/// tcpdump of interface e0 of `ns` into `file`.
pub(crate) fn capture(ns: &Netns, file: &Path, log: &Path) -> Result<Proc> {
    let mut c = spawn_in(
        ns,
        &[
            "tcpdump".as_ref(),
            "-i".as_ref(),
            "e0".as_ref(),
            "-U".as_ref(),
            "-n".as_ref(),
            "-w".as_ref(),
            file.as_os_str(),
        ],
        log,
    )
    .context("tcpdump (apt-get install tcpdump)")?;
    wait_log(log, "listening on", &mut c, "tcpdump")?;
    Ok(Proc(c))
}

/// ngircd in the foreground with its own configuration in `dir`.
pub(crate) fn ngircd(ns: &Netns, dir: &Path, listen: Ipv4Addr, port: u16) -> Result<Proc> {
    let d = dir.join("ngircd");
    std::fs::create_dir_all(&d)?;
    // ngircd drops to nobody: its PID file goes where nobody may write.
    let run = d.join("run");
    std::fs::create_dir_all(&run)?;
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    let conf = d.join("ngircd.conf");
    std::fs::write(
        &conf,
        format!(
            "[Global]\nName = irc.botnet.lab\nInfo = the lab's C&C\nAdminInfo1 = lab\n\
             AdminInfo2 = lab\nAdminEMail = root@botnet.lab\nListen = {listen}\nPorts = {port}\n\
             PidFile = {}\nMotdPhrase = \"welcome\"\nServerUID = 65534\nServerGID = 65534\n\
             [Limits]\nMaxConnectionsIP = 0\n[Options]\nPAM = no\nDNS = no\nIdent = no\n",
            run.join("ngircd.pid").display()
        ),
    )?;
    let log = d.join("ngircd.log");
    // Debian puts it in /usr/sbin, which a user's PATH under sudo may lack.
    let bin = if Path::new("/usr/sbin/ngircd").exists() {
        "/usr/sbin/ngircd"
    } else {
        "ngircd"
    };
    let mut c = spawn_in(
        ns,
        &[bin.as_ref(), "-n".as_ref(), "-f".as_ref(), conf.as_os_str()],
        &log,
    )
    .context("ngircd (apt-get install ngircd)")?;
    wait_log(&log, "ready", &mut c, "ngircd")?;
    Ok(Proc(c))
}
