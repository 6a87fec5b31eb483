//! Application-level timing (Tapp), sans IO: for relays that end TCP themselves (socat-style),
//! whose own kernel answers our SYN/ACK so that Tp, Fp and Fa are all the relay's.
//!
//! Design (docs/stepping-stones.md §4):
//!
//! - After the handshake is proved (the source acknowledged our keyed sequence number, so its
//!   address is not spoofed), a connection to a configured port stays open in a bounded table.
//! - **Banner ports** (server speaks first: SSH, FTP, SMTP, telnet): we send one data segment
//!   with the banner at once. **Reply ports** (client speaks first): we wait for the first data
//!   segment and answer it with one data segment.
//! - Tapp runs from the moment our segment left to the arrival of the first data segment from
//!   the source whose acknowledgement number covers all of our text: its application read our
//!   text and answered. Data that does not acknowledge our text was sent before the source's
//!   stack had it (an SSH client's own version line, sent on connect) and is not a reply.
//! - Through a relay that ends TCP, the answer crosses the relay to the real client and back:
//!   Tapp ≈ Ta + the relay's round trip to the client + the client's think time. The decision
//!   compares Tapp with Ta by the timing test. The confound is the think time: only automated
//!   clients (scanners, bots, scripts) answer in microseconds; a human at a terminal, or a
//!   slow program, looks like a relay to this signal.
//! - We never acknowledge the source's data and never retransmit; the exchange ends with our
//!   RST when timed, when the source closes, or at the timeout.
//! - **Not a reflector**: only a source that completed the handshake (it received our SYN/ACK,
//!   which a spoofed victim does not) gets text; one segment per connection, at most
//!   [`MAX_TEXT`] bytes, so the SYN/ACK rate limits bound the text sent per second too; the
//!   table is bounded (a full table skips the exchange, counted) and entries expire.

use std::collections::{HashMap, VecDeque};

use ashiato_wire::build;
use ashiato_wire::packet::{Tcp, TcpFlags};

use crate::responder::{Connection, Key, ip_packet};

/// Longest banner or reply, bytes.
pub const MAX_TEXT: usize = 128;

/// Who speaks first on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// We send the text right after the handshake (the client waits for a greeting).
    Banner,
    /// We answer the client's first data segment with the text.
    Reply,
}

/// A port whose connections get an application exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPort {
    /// Darknet port.
    pub port: u16,
    /// Who speaks first.
    pub trigger: Trigger,
    /// What we send (1 to [`MAX_TEXT`] bytes).
    pub text: Vec<u8>,
}

/// Built-in greetings and replies, by port.
pub fn builtin(port: u16, trigger: Trigger) -> Option<&'static [u8]> {
    match (trigger, port) {
        (Trigger::Banner, 21) => Some(b"220 FTP server ready.\r\n"),
        (Trigger::Banner, 22) => Some(b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n"),
        (Trigger::Banner, 23) => Some(b"\r\nlogin: "),
        (Trigger::Banner, 25) => Some(b"220 mail.example.net ESMTP\r\n"),
        (Trigger::Reply, 80 | 8080) => Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        _ => None,
    }
}

impl AppPort {
    /// `PORT` (built-in text) or `PORT=TEXT` with `\r`, `\n`, `\t`, `\\` escapes.
    pub fn parse(s: &str, trigger: Trigger) -> Result<AppPort, String> {
        let (p, text) = match s.split_once('=') {
            Some((p, t)) => (p, Some(t)),
            None => (s, None),
        };
        let port: u16 = p
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: the port must be a number 1-65535"))?;
        if port == 0 {
            return Err(format!("{s:?}: port 0"));
        }
        let text = match text {
            Some(t) => unescape(t).map_err(|e| format!("{s:?}: {e}"))?,
            None => builtin(port, trigger)
                .ok_or_else(|| format!("{s:?}: no built-in text for port {port}: give PORT=TEXT"))?
                .to_vec(),
        };
        if text.is_empty() || text.len() > MAX_TEXT {
            return Err(format!(
                "{s:?}: the text must be 1 to {MAX_TEXT} bytes, not {}",
                text.len()
            ));
        }
        Ok(AppPort {
            port,
            trigger,
            text,
        })
    }
}

fn unescape(t: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut it = t.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            let mut b = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        match it.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            other => return Err(format!("unknown escape \\{}", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

/// How an application exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppOutcome {
    /// Tapp measured.
    Timed,
    /// A reply port: the source sent no request before the timeout.
    NoRequest,
    /// The source did not answer our text before the timeout.
    NoReply,
    /// The source reset the connection first.
    Reset,
    /// The source closed the connection first.
    Closed,
    /// The table of open exchanges was full: not attempted.
    TableFull,
}

enum Phase {
    WaitRequest,
    WaitReply { sent_ns: u64, want_ack: u32 },
}

struct Open {
    conn: Connection,
    isn: u32,
    their_next: u32,
    text: usize,
    since: u64,
    phase: Phase,
}

/// Open exchanges, bounded, in arrival order for expiry.
pub(crate) struct Exchanges {
    open: HashMap<Key, Open>,
    order: VecDeque<(Key, u64)>,
    max: usize,
    timeout_ns: u64,
}

/// What a segment did to an exchange.
pub(crate) struct Step {
    /// A segment to send (our text or our RST).
    pub send: Option<Vec<u8>>,
    /// Our text just left: the caller should note the send time for [`Exchanges::sent`].
    pub text_sent: bool,
    /// The exchange is over.
    pub done: Option<Connection>,
    /// The segment acknowledged data we never sent.
    pub bad_ack: bool,
}

impl Exchanges {
    pub(crate) fn new(max: usize, timeout_ns: u64) -> Self {
        Exchanges {
            open: HashMap::new(),
            order: VecDeque::new(),
            max,
            timeout_ns,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    pub(crate) fn contains(&self, k: &Key) -> bool {
        self.open.contains_key(k)
    }

    /// Starts an exchange on the handshake's last ACK `tcp`; when the table is full the
    /// connection comes straight back in [`Step::done`] (outcome [`AppOutcome::TableFull`]).
    pub(crate) fn start(
        &mut self,
        now: u64,
        key: Key,
        isn: u32,
        conn: Connection,
        port: &AppPort,
        tcp: &Tcp,
    ) -> Step {
        if self.open.len() >= self.max {
            let mut conn = conn;
            conn.app = Some(AppOutcome::TableFull);
            return Step {
                send: None,
                text_sent: false,
                done: Some(conn),
                bad_ack: false,
            };
        }
        self.order.push_back((key, now));
        self.open.insert(
            key,
            Open {
                conn,
                isn,
                // Data riding on the ACK (banner ports: sent before our banner) is passed.
                their_next: match port.trigger {
                    Trigger::Banner => tcp.seq.wrapping_add(tcp.payload_len),
                    Trigger::Reply => tcp.seq,
                },
                text: port.text.len(),
                since: now,
                phase: Phase::WaitRequest,
            },
        );
        match port.trigger {
            Trigger::Banner => self.send_text(now, key, &port.text),
            // A request may ride on the handshake's ACK.
            Trigger::Reply if tcp.payload_len > 0 => self.segment(now, key, tcp, &port.text),
            Trigger::Reply => Step {
                send: None,
                text_sent: false,
                done: None,
                bad_ack: false,
            },
        }
    }

    fn send_text(&mut self, now: u64, key: Key, text: &[u8]) -> Step {
        let o = self.open.get_mut(&key).expect("open");
        let seq = o.isn.wrapping_add(1);
        o.phase = Phase::WaitReply {
            sent_ns: now,
            want_ack: seq.wrapping_add(text.len() as u32),
        };
        let f = TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0);
        Step {
            send: Some(segment(&key, seq, o.their_next, f, text)),
            text_sent: true,
            done: None,
            bad_ack: false,
        }
    }

    /// Our text left at `now` (Tapp starts there).
    pub(crate) fn sent(&mut self, key: &Key, now: u64) {
        if let Some(Open {
            phase: Phase::WaitReply { sent_ns, .. },
            ..
        }) = self.open.get_mut(key)
        {
            *sent_ns = now;
        }
    }

    /// A segment of an open exchange (`text`: what this port answers with).
    pub(crate) fn segment(&mut self, now: u64, key: Key, tcp: &Tcp, text: &[u8]) -> Step {
        let mut step = Step {
            send: None,
            text_sent: false,
            done: None,
            bad_ack: false,
        };
        let Some(o) = self.open.get_mut(&key) else {
            return step;
        };
        let f = tcp.flags;
        let first = o.isn.wrapping_add(1);
        let our_next = match o.phase {
            Phase::WaitRequest => first,
            Phase::WaitReply { want_ack, .. } => want_ack,
        };
        if f.is_rst() {
            // Only a RST at the source's next sequence number (not a blind one).
            if tcp.seq.wrapping_sub(o.their_next) < 65_536 {
                step.done = self.finish(&key, AppOutcome::Reset, None);
            }
            return step;
        }
        // The acknowledgement must lie between our first byte and our last one sent.
        if !f.contains(TcpFlags::ACK) || tcp.ack.wrapping_sub(first) > our_next.wrapping_sub(first)
        {
            step.bad_ack = true;
            return step;
        }
        let end = tcp
            .seq
            .wrapping_add(tcp.payload_len)
            .wrapping_add(u32::from(f.contains(TcpFlags::FIN)));
        if end.wrapping_sub(o.their_next) < 1 << 30 {
            o.their_next = end;
        }
        if tcp.payload_len > 0 {
            match o.phase {
                Phase::WaitRequest => return self.send_text(now, key, text),
                Phase::WaitReply { sent_ns, want_ack } if tcp.ack == want_ack => {
                    let tapp = now.saturating_sub(sent_ns) / 1000;
                    step.send = Some(self.rst(&key));
                    step.done = self.finish(&key, AppOutcome::Timed, Some(tapp));
                    return step;
                }
                // Sent before the source had our text: not an answer to it.
                Phase::WaitReply { .. } => {}
            }
        }
        if f.contains(TcpFlags::FIN) {
            step.send = Some(self.rst(&key));
            step.done = self.finish(&key, AppOutcome::Closed, None);
        }
        step
    }

    fn rst(&self, key: &Key) -> Vec<u8> {
        let o = &self.open[key];
        let seq = match o.phase {
            Phase::WaitRequest => o.isn.wrapping_add(1),
            Phase::WaitReply { want_ack, .. } => want_ack,
        };
        segment(
            key,
            seq,
            o.their_next,
            TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0),
            &[],
        )
    }

    fn finish(&mut self, key: &Key, how: AppOutcome, tapp_us: Option<u64>) -> Option<Connection> {
        let o = self.open.remove(key)?;
        let mut c = o.conn;
        debug_assert!(o.text <= MAX_TEXT);
        c.app = Some(how);
        c.tapp_us = tapp_us;
        Some(c)
    }

    /// Ends the exchanges older than the timeout at `now`: their connections, and our RSTs.
    pub(crate) fn expire(&mut self, now: u64) -> (Vec<Connection>, Vec<Vec<u8>>) {
        let (mut done, mut rsts) = (Vec::new(), Vec::new());
        while let Some(&(k, t)) = self.order.front() {
            if now.saturating_sub(t) < self.timeout_ns {
                break;
            }
            self.order.pop_front();
            if self.open.get(&k).is_some_and(|o| o.since == t) {
                let how = match self.open[&k].phase {
                    Phase::WaitRequest => AppOutcome::NoRequest,
                    Phase::WaitReply { .. } => AppOutcome::NoReply,
                };
                rsts.push(self.rst(&k));
                done.extend(self.finish(&k, how, None));
            }
        }
        (done, rsts)
    }
}

/// One segment from the darknet address back to the source (IPv4: DF, TTL 64; IPv6: hop
/// limit 64).
fn segment(key: &Key, seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = (key.dst, key.src);
    let t = build::tcp(
        src, dst, key.dport, key.sport, seq, ack, flags, 64240, payload,
    );
    ip_packet(src, dst, 6, 0, &t)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use ashiato_wire::build::{ipv4, tcp};
    use ashiato_wire::packet::{L4, Tcp, TcpFlags, parse_ip};

    use super::{AppOutcome, AppPort, MAX_TEXT, Trigger};
    use crate::responder::{Responder, ResponderConfig};

    const DARK: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
    const SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const MS: u64 = 1_000_000;

    fn seg(sp: u16, dp: u16, seq: u32, ack: u32, f: TcpFlags, data: &[u8]) -> Vec<u8> {
        ipv4(
            SRC,
            DARK,
            6,
            64,
            0,
            1,
            &tcp(SRC.into(), DARK.into(), sp, dp, seq, ack, f, 1000, data),
        )
    }

    fn tcp_of(b: &[u8]) -> (Tcp, usize) {
        let p = parse_ip(b).unwrap();
        let L4::Tcp(t) = p.l4 else { panic!("not TCP") };
        (t, t.payload_len as usize)
    }

    fn responder(ports: Vec<AppPort>, max_open: usize) -> Responder {
        Responder::new(
            ResponderConfig {
                darknets: vec![(Ipv4Addr::new(203, 0, 113, 0).into(), 24)],
                secret: 7,
                app_ports: ports,
                max_open,
                ..ResponderConfig::default()
            },
            0,
        )
    }

    const ACK: TcpFlags = TcpFlags::ACK;
    const PA: TcpFlags = TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0);

    /// SYN at `t`, ACK at `t` + 1 ms; returns our ISN and what the ACK produced.
    fn handshake(r: &mut Responder, sp: u16, dp: u16, t: u64) -> (u32, Option<Vec<u8>>) {
        let sa = r
            .on_packet(
                t,
                &parse_ip(&seg(sp, dp, 100, 0, TcpFlags::SYN, &[])).unwrap(),
            )
            .expect("SYN/ACK");
        let (sa, _) = tcp_of(&sa);
        let out = r.on_packet(
            t + MS,
            &parse_ip(&seg(sp, dp, 101, sa.seq.wrapping_add(1), ACK, &[])).unwrap(),
        );
        (sa.seq, out)
    }

    fn ssh() -> AppPort {
        AppPort::parse("22", Trigger::Banner).unwrap()
    }

    #[test]
    fn banner_then_the_first_answer_that_acknowledges_it() {
        let mut r = responder(vec![ssh()], 16);
        let (isn, banner) = handshake(&mut r, 40000, 22, 0);
        let banner = banner.expect("a banner right after the handshake");
        let (b, len) = tcp_of(&banner);
        assert_eq!(len, ssh().text.len());
        assert_eq!((b.seq, b.ack), (isn.wrapping_add(1), 101));
        assert!(b.flags.contains(TcpFlags::PSH));
        assert!(banner.len() <= 40 + MAX_TEXT, "bounded");
        r.sent(2 * MS);
        assert!(r.take_measured().is_empty(), "still open");
        // The client's own version line, sent before it had our banner: not an answer.
        let early = seg(40000, 22, 101, isn.wrapping_add(1), PA, b"SSH-2.0-x\r\n");
        assert!(
            r.on_packet(2 * MS + 10, &parse_ip(&early).unwrap())
                .is_none()
        );
        // A pure ACK of the banner (the relay's kernel): not an answer either.
        let want = isn.wrapping_add(1 + len as u32);
        let pure = seg(40000, 22, 112, want, ACK, &[]);
        assert!(
            r.on_packet(2 * MS + 20, &parse_ip(&pure).unwrap())
                .is_none()
        );
        // The answer 7 ms after the banner left.
        let ans = seg(40000, 22, 112, want, PA, b"KEXINIT....");
        let rst = r
            .on_packet(9 * MS, &parse_ip(&ans).unwrap())
            .expect("our RST");
        let (t, _) = tcp_of(&rst);
        assert!(t.flags.is_rst());
        assert_eq!(t.seq, want);
        let m = r.take_measured();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].tp_us, Some(1000));
        assert_eq!(m[0].tapp_us, Some(7000));
        assert_eq!(m[0].app, Some(AppOutcome::Timed));
        assert_eq!(r.pending(), 0);
        let st = r.stats();
        assert_eq!((st.app_sent, st.app_timed), (1, 1));
    }

    #[test]
    fn reply_ports_answer_the_request_and_time_the_next_one() {
        let http = AppPort::parse("80", Trigger::Reply).unwrap();
        let mut r = responder(vec![http.clone()], 16);
        let (isn, out) = handshake(&mut r, 40001, 80, 0);
        assert!(out.is_none(), "the client speaks first");
        let req = seg(
            40001,
            80,
            101,
            isn.wrapping_add(1),
            PA,
            b"GET / HTTP/1.1\r\n\r\n",
        );
        let reply = r
            .on_packet(3 * MS, &parse_ip(&req).unwrap())
            .expect("our reply");
        let (t, len) = tcp_of(&reply);
        assert_eq!(len, http.text.len());
        assert_eq!(t.ack, 101 + 18);
        let want = isn.wrapping_add(1 + len as u32);
        let next = seg(40001, 80, 119, want, PA, b"GET /2 HTTP/1.1\r\n\r\n");
        assert!(r.on_packet(4 * MS, &parse_ip(&next).unwrap()).is_some());
        let m = r.take_measured();
        assert_eq!(m[0].tapp_us, Some(1000));
    }

    #[test]
    fn silence_reset_close_and_forged_acks_end_without_tapp() {
        let mut r = responder(vec![ssh()], 16);
        // Silence: at the timeout our RST and no Tapp.
        let (_, b) = handshake(&mut r, 1, 22, 0);
        assert!(b.is_some());
        assert!(r.poll(1_000 * MS).is_empty());
        let rsts = r.poll(2_001 * MS);
        assert_eq!(rsts.len(), 1);
        assert!(tcp_of(&rsts[0]).0.flags.is_rst());
        let m = r.take_measured();
        assert_eq!((m[0].tapp_us, m[0].app), (None, Some(AppOutcome::NoReply)));
        // An ACK beyond what we sent is forged: counted, ignored.
        let (isn, _) = handshake(&mut r, 2, 22, 3_000 * MS);
        let bad = seg(2, 22, 101, isn.wrapping_add(5000), PA, b"x");
        assert!(r.on_packet(3_002 * MS, &parse_ip(&bad).unwrap()).is_none());
        assert_eq!(r.stats().bad_acks, 1);
        // The source resets: over, no RST of ours.
        let rst = seg(2, 22, 101, 0, TcpFlags::RST, &[]);
        assert!(r.on_packet(3_003 * MS, &parse_ip(&rst).unwrap()).is_none());
        assert_eq!(r.take_measured()[0].app, Some(AppOutcome::Reset));
        // The source closes: our RST.
        let (isn, _) = handshake(&mut r, 3, 22, 4_000 * MS);
        let fin = seg(
            3,
            22,
            101,
            isn.wrapping_add(1),
            TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0),
            &[],
        );
        assert!(r.on_packet(4_002 * MS, &parse_ip(&fin).unwrap()).is_some());
        assert_eq!(r.take_measured()[0].app, Some(AppOutcome::Closed));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn no_text_without_a_proved_handshake_and_the_table_is_bounded() {
        let mut r = responder(vec![ssh()], 2);
        // A blind ACK (wrong number) gets nothing.
        r.on_packet(
            0,
            &parse_ip(&seg(9, 22, 100, 0, TcpFlags::SYN, &[])).unwrap(),
        );
        let blind = seg(9, 22, 101, 12345, ACK, &[]);
        assert!(r.on_packet(MS, &parse_ip(&blind).unwrap()).is_none());
        assert_eq!(r.stats().app_sent, 0);
        // Two exchanges fill the table; the third connection is reported without one.
        assert!(handshake(&mut r, 10, 22, 0).1.is_some());
        assert!(handshake(&mut r, 11, 22, 0).1.is_some());
        assert!(handshake(&mut r, 12, 22, 0).1.is_none());
        let m = r.take_measured();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].app, Some(AppOutcome::TableFull));
        assert_eq!(m[0].tp_us, Some(1000));
        assert_eq!(r.stats().app_skipped, 1);
        // Ports without an exchange finish at the ACK, as before.
        let (_, out) = handshake(&mut r, 13, 443, 0);
        assert!(out.is_none());
        assert_eq!(r.take_measured()[0].app, None);
    }

    #[test]
    fn port_texts_parse_with_precise_errors() {
        let p = AppPort::parse("2222=SSH-2.0-x\\r\\n", Trigger::Banner).unwrap();
        assert_eq!((p.port, p.text.as_slice()), (2222, &b"SSH-2.0-x\r\n"[..]));
        assert_eq!(
            AppPort::parse("25", Trigger::Banner).unwrap().text,
            b"220 mail.example.net ESMTP\r\n"
        );
        for (bad, want) in [
            ("x=1", "must be a number"),
            ("0=a", "port 0"),
            ("2222", "no built-in text"),
            ("22=", "1 to 128 bytes"),
            ("22=a\\q", "unknown escape"),
        ] {
            let e = AppPort::parse(bad, Trigger::Banner).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let long = format!("22={}", "a".repeat(MAX_TEXT + 1));
        assert!(AppPort::parse(&long, Trigger::Banner).is_err());
    }
}
