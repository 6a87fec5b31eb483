//! The lab's small servers and its botmaster (`ashiato hostlab`), each on threads inside its
//! namespace: plain HTTP/1.0 servers (the download server, the benign web server, the
//! victim's service), the DNS server the hosts resolve through, and the botmaster's IRC
//! client. They stop when the lab's stop flag is set.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ashiato_capture::netns::in_netns;

/// What an HTTP server answers to every GET.
#[derive(Clone)]
pub struct Page {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Arc<Vec<u8>>,
    /// Sent in this many pieces, `pace` apart (a slow link; 1 = at once).
    pub pieces: usize,
    /// The pause between pieces.
    pub pace: Duration,
}

/// Serves `page` on `addr` inside namespace `ns` until `stop`.
pub fn http_server(ns: &str, addr: SocketAddr, page: Page, stop: Arc<AtomicBool>) -> Result<()> {
    let l = in_netns(ns, || TcpListener::bind(addr))?
        .with_context(|| format!("HTTP server on {addr}"))?;
    l.set_nonblocking(true)?;
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => {
                    let page = page.clone();
                    std::thread::spawn(move || {
                        let _ = serve_one(s, &page);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    Ok(())
}

fn serve_one(mut s: TcpStream, page: &Page) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    // Read the request head (bounded).
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let ok = head.starts_with(b"GET ");
    if !ok {
        return s.write_all(b"HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
    }
    s.write_all(
        format!(
            "HTTP/1.0 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            page.content_type,
            page.body.len()
        )
        .as_bytes(),
    )?;
    let piece = page.body.len().div_ceil(page.pieces.max(1)).max(1);
    for (i, chunk) in page.body.chunks(piece).enumerate() {
        if i > 0 {
            std::thread::sleep(page.pace);
        }
        s.write_all(chunk)?;
    }
    Ok(())
}

/// Answers DNS queries on UDP port 53 of every address of namespace `ns` until `stop`: A
/// queries for the names in `zone` with their address, AAAA queries for them with no answer
/// (NOERROR), anything else NXDOMAIN.
pub fn dns_server(ns: &str, zone: HashMap<String, Ipv4Addr>, stop: Arc<AtomicBool>) -> Result<()> {
    let sock = in_netns(ns, || UdpSocket::bind("0.0.0.0:53"))?.context("DNS server on :53")?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            if let Some(answer) = dns_answer(&buf[..n], &zone) {
                let _ = sock.send_to(&answer, from);
            }
        }
    });
    Ok(())
}

/// The answer to one query, or `None` for a packet that is not a one-question query.
fn dns_answer(q: &[u8], zone: &HashMap<String, Ipv4Addr>) -> Option<Vec<u8>> {
    if q.len() < 12 || q[2] & 0x80 != 0 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question_end = i + 4;
    q.get(..question_end)?;
    let name = labels.join(".");
    let known = zone.get(&name);
    let mut r = Vec::with_capacity(question_end + 16);
    r.extend_from_slice(&q[..2]);
    // QR, opcode 0, AA, RD copied; RA; RCODE 3 (NXDOMAIN) for unknown names.
    r.push(0x84 | (q[2] & 0x01));
    r.push(0x80 | if known.is_some() { 0 } else { 3 });
    let answer = known.filter(|_| qtype == 1);
    r.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    r.extend_from_slice(&q[12..question_end]);
    if let Some(a) = answer {
        // Name pointer to the question, type A, class IN, TTL 60, 4 bytes.
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&a.octets());
    }
    Some(r)
}

/// The botmaster: an IRC client in namespace `ns` that joins the channel first (the server
/// makes it the channel operator) and commands the bots.
pub struct Botmaster {
    w: TcpStream,
    lines: std::io::Lines<BufReader<TcpStream>>,
    channel: String,
    /// Nicknames in the channel.
    pub present: BTreeSet<String>,
}

impl Botmaster {
    /// Connects from namespace `ns`, registers and joins `channel`.
    pub fn join(ns: &str, server: SocketAddr, channel: &str) -> Result<Botmaster> {
        let s = in_netns(ns, move || {
            TcpStream::connect_timeout(&server, Duration::from_secs(5))
        })?
        .with_context(|| format!("the botmaster connecting to {server}"))?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut m = Botmaster {
            w: s.try_clone()?,
            lines: BufReader::new(s).lines(),
            channel: channel.to_string(),
            present: BTreeSet::new(),
        };
        m.send("NICK master")?;
        m.send("USER master 0 * :botmaster")?;
        m.wait(Duration::from_secs(10), "registration", |l, _| {
            l.split(' ').nth(1) == Some("001")
        })?;
        m.send(&format!("JOIN {channel}"))?;
        m.wait(Duration::from_secs(10), "joining", |l, _| {
            l.split(' ').nth(1) == Some("366")
        })?;
        Ok(m)
    }

    fn send(&mut self, line: &str) -> Result<()> {
        self.w.write_all(format!("{line}\r\n").as_bytes())?;
        Ok(())
    }

    /// Says `text` in the channel.
    pub fn say(&mut self, text: &str) -> Result<()> {
        let line = format!("PRIVMSG {} :{text}", self.channel);
        self.send(&line)
    }

    /// Reads lines until `done(line, present)` (also asked, with an empty line, when nothing
    /// arrives for 200 ms) or `timeout`; keeps `present` current and answers PINGs.
    pub fn wait(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&str, &BTreeSet<String>) -> bool,
    ) -> Result<()> {
        let end = Instant::now() + timeout;
        loop {
            if Instant::now() > end {
                bail!("the botmaster timed out waiting for {what}");
            }
            let line = match self.lines.next() {
                Some(Ok(l)) => l,
                Some(Err(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if done("", &self.present) {
                        return Ok(());
                    }
                    continue;
                }
                Some(Err(e)) => return Err(e).context("reading from the IRC server"),
                None => bail!("the IRC server closed the botmaster's connection"),
            };
            self.track(&line)?;
            if done(&line, &self.present) {
                return Ok(());
            }
        }
    }

    fn track(&mut self, line: &str) -> Result<()> {
        let nick = line
            .strip_prefix(':')
            .and_then(|l| l.split(['!', ' ']).next())
            .unwrap_or("")
            .to_string();
        let mut w = line.split(' ');
        let first = w.next().unwrap_or("");
        if first == "PING" {
            let rest = line.strip_prefix("PING ").unwrap_or("");
            self.send(&format!("PONG {rest}"))?;
            return Ok(());
        }
        match w.next() {
            Some("JOIN") => {
                self.present.insert(nick);
            }
            Some("PART" | "QUIT") => {
                self.present.remove(&nick);
            }
            // RPL_NAMREPLY: the names after the last " :".
            Some("353") => {
                if let Some((_, names)) = line.rsplit_once(" :") {
                    for n in names.split_whitespace() {
                        self.present
                            .insert(n.trim_start_matches(['@', '+']).to_string());
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Says `cmd` and collects the first channel answer of each of `bots` (failures too).
    pub fn command(
        &mut self,
        cmd: &str,
        bots: &BTreeSet<String>,
        timeout: Duration,
    ) -> Result<HashMap<String, String>> {
        self.say(cmd)?;
        let mut answers: HashMap<String, String> = HashMap::new();
        let chan = format!("PRIVMSG {} :", self.channel);
        let verb = cmd.split(' ').next().unwrap_or(cmd).to_string();
        self.wait(timeout, &format!("the bots' answers to {verb}"), |l, _| {
            if let Some((who, text)) = l
                .strip_prefix(':')
                .and_then(|r| r.split_once('!'))
                .and_then(|(n, r)| r.split_once(chan.as_str()).map(|(_, t)| (n, t)))
                && bots.contains(who)
            {
                answers.insert(who.to_string(), text.to_string());
            }
            answers.len() == bots.len()
        })?;
        Ok(answers)
    }

    /// Tells the bots to leave, then leaves.
    pub fn quit(mut self) {
        let _ = self.say("!quit");
        let _ = self.send("QUIT :done");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn dns_answers_a_nodata_for_aaaa_and_nxdomain() {
        let zone = HashMap::from([("cc.botnet.lab".to_string(), Ipv4Addr::new(198, 51, 100, 10))]);
        let a = dns_answer(&query("CC.botnet.lab", 1), &zone).unwrap();
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1, "one answer");
        assert_eq!(&a[a.len() - 4..], &[198, 51, 100, 10]);
        let aaaa = dns_answer(&query("cc.botnet.lab", 28), &zone).unwrap();
        assert_eq!((aaaa[3] & 0x0f, aaaa[7]), (0, 0), "NOERROR, no answer");
        let nx = dns_answer(&query("nowhere.lab", 1), &zone).unwrap();
        assert_eq!(nx[3] & 0x0f, 3, "NXDOMAIN");
        assert!(dns_answer(&[0; 5], &zone).is_none());
    }
}
