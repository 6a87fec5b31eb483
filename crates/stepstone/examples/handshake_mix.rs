//! Writes a large capture of TCP traffic from many stacks, for fingerprinting benchmarks
//! (docs/benchmarks.md §11): the real captures at hand hold either one stack (a flood, a scan)
//! or a few dozen handshakes.
//!
//! Each client connection is a SYN shaped as its stack sends it (TTL, DF and IP ID, window,
//! MSS, window scale and option order as the stacks send them: Linux 4.19+ over IPv4 and IPv6,
//! Windows 10/11, Windows 7, Windows XP, macOS, FreeBSD), the server's SYN/ACK (Linux, Windows
//! or FreeBSD), the client's ACK, a request, one to three full-size reply segments and the
//! closing FINs; sources sit 1 to 25 hops away. Mixed in are unanswered scans (nmap, masscan,
//! some answered by RST) and a window-0 SYN flood. Packet times advance 20 µs a packet; the
//! seed fixes everything.
//!
//! Run: `cargo run --release -p ashiato-stepstone --example handshake_mix -- CONNS OUT.pcap [SEED]`

use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ashiato_rng::Xoshiro256pp;
use ashiato_wire::LinkType;
use ashiato_wire::build::{ethernet, ipv4_with_flags, ipv6, tcp_with_options};
use ashiato_wire::capfile::PcapWriter;
use ashiato_wire::packet::TcpFlags;

/// How one stack opens or answers a connection.
#[derive(Clone, Copy)]
struct Stack {
    ttl: u8,
    df: bool,
    /// IP ID zero (Linux SYN/ACKs with DF) rather than counting.
    zero_id: bool,
    /// Window, or 0 for "the largest multiple of the MSS below 65536" (Linux).
    win: u16,
    /// Option bytes with the MSS at offset 2 when `has_mss`.
    opts: &'static [u8],
    has_mss: bool,
}

const TS: [u8; 10] = [8, 10, 0, 0, 0, 0, 0, 0, 0, 0];

// Option layouts (MSS value patched per connection, timestamps filled in).
const LINUX_OPTS: &[u8] = &[2, 4, 0, 0, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7];
const WIN10_OPTS: &[u8] = &[2, 4, 0, 0, 1, 3, 3, 8, 1, 1, 4, 2];
const WIN7_OPTS: &[u8] = &[2, 4, 0, 0, 1, 3, 3, 2, 1, 1, 4, 2];
const XP_OPTS: &[u8] = &[2, 4, 0, 0, 1, 1, 4, 2];
const MAC_OPTS: &[u8] = &[
    2, 4, 0, 0, 1, 3, 3, 6, 1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 4, 2, 0, 0,
];
const BSD_OPTS: &[u8] = &[2, 4, 0, 0, 1, 3, 3, 6, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
const WIN_SRV_OPTS: &[u8] = &[2, 4, 0, 0, 1, 3, 3, 8, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
const MSS_ONLY: &[u8] = &[2, 4, 5, 0xb4];

const fn stack(ttl: u8, df: bool, win: u16, opts: &'static [u8]) -> Stack {
    Stack {
        ttl,
        df,
        zero_id: false,
        win,
        opts,
        has_mss: true,
    }
}

/// Clients, with their weight in the mix.
const CLIENTS: [(u32, Stack); 6] = [
    (30, stack(64, true, 0, LINUX_OPTS)),
    (25, stack(128, true, 64240, WIN10_OPTS)),
    (10, stack(128, true, 8192, WIN7_OPTS)),
    (5, stack(128, true, 65535, XP_OPTS)),
    (15, stack(64, true, 65535, MAC_OPTS)),
    (5, stack(64, true, 65535, BSD_OPTS)),
];

/// Servers answering them.
const SERVERS: [Stack; 3] = [
    Stack {
        ttl: 64,
        df: true,
        zero_id: true,
        win: 65160,
        opts: LINUX_OPTS,
        has_mss: true,
    },
    stack(128, true, 65535, WIN_SRV_OPTS),
    stack(64, true, 65535, BSD_OPTS),
];

const MSSES: [u16; 5] = [1460, 1460, 1460, 1400, 1380];

struct Gen {
    rng: Xoshiro256pp,
    out: PcapWriter<BufWriter<std::fs::File>>,
    ts: u64,
    id: u16,
}

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }

    #[allow(clippy::too_many_arguments, reason = "one per header field")]
    fn seg(
        &mut self,
        st: &Stack,
        hops: u8,
        src: IpAddr,
        dst: IpAddr,
        ports: (u16, u16),
        seq_ack: (u32, u32),
        flags: TcpFlags,
        win: u16,
        opts: &[u8],
        payload: &[u8],
    ) -> std::io::Result<()> {
        let seg = tcp_with_options(
            src, dst, ports.0, ports.1, seq_ack.0, seq_ack.1, flags, win, opts, payload,
        );
        let ttl = st.ttl.saturating_sub(hops);
        let ip = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.id = self.id.wrapping_add(1 + self.below(7) as u16);
                let id = if st.zero_id { 0 } else { self.id.max(1) };
                ipv4_with_flags(s, d, 6, ttl, 0, id, st.df, &seg)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let flow = (self.rng.next_u64() as u32 & 0xf_ffff).max(1);
                ipv6(s, d, 6, ttl, 0, flow, &seg)
            }
            _ => unreachable!("one family per connection"),
        };
        let et = if src.is_ipv4() { 0x0800 } else { 0x86dd };
        let frame = ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], et, &ip);
        self.ts += 20_000;
        self.out.write(self.ts, &frame)
    }

    fn opts(&mut self, st: &Stack, mss: u16, echo_ts: u32) -> Vec<u8> {
        let mut o = st.opts.to_vec();
        if st.has_mss && o.len() >= 4 && o[0] == 2 {
            o[2..4].copy_from_slice(&mss.to_be_bytes());
        }
        if let Some(i) = o.windows(2).position(|w| w == &TS[..2]) {
            let own = (self.rng.next_u64() as u32).max(1);
            o[i + 2..i + 6].copy_from_slice(&own.to_be_bytes());
            o[i + 6..i + 10].copy_from_slice(&echo_ts.to_be_bytes());
        }
        o
    }

    fn addr(&mut self, v6: bool, net: u8) -> IpAddr {
        let r = self.rng.next_u64();
        if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                u16::from(net),
                0,
                0,
                0,
                (r >> 16) as u16,
                r as u16,
            ))
        } else {
            let b = (r as u32).to_be_bytes();
            IpAddr::V4(Ipv4Addr::new(net, b[1], b[2], b[3].max(1)))
        }
    }

    fn conversation(&mut self) -> std::io::Result<()> {
        let total: u32 = CLIENTS.iter().map(|c| c.0).sum();
        let mut pick = self.below(u64::from(total)) as u32;
        let mut ci = 0;
        while pick >= CLIENTS[ci].0 {
            pick -= CLIENTS[ci].0;
            ci += 1;
        }
        let cl = CLIENTS[ci].1;
        // A third of Linux clients over IPv6.
        let v6 = ci == 0 && self.below(3) == 0;
        let sv = SERVERS[self.below(SERVERS.len() as u64) as usize];
        let (c, s) = (self.addr(v6, 10), self.addr(v6, 198));
        let mss = if v6 {
            1440
        } else {
            MSSES[self.below(5) as usize]
        };
        let (ch, sh) = (1 + self.below(25) as u8, 1 + self.below(12) as u8);
        let (cp, sp) = (
            32768 + self.below(28000) as u16,
            [443, 80, 22, 25][self.below(4) as usize],
        );
        let (cs, ss) = (self.rng.next_u64() as u32, self.rng.next_u64() as u32);
        let cwin = if cl.win == 0 {
            (65535 / mss) * mss
        } else {
            cl.win
        };
        let o = self.opts(&cl, mss, 0);
        self.seg(
            &cl,
            ch,
            c,
            s,
            (cp, sp),
            (cs, 0),
            TcpFlags::SYN,
            cwin,
            &o,
            &[],
        )?;
        let smss = if v6 { 1440 } else { 1460 };
        let o = self.opts(&sv, smss, 7);
        let sa = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
        let (c1, s1) = (cs.wrapping_add(1), ss.wrapping_add(1));
        self.seg(&sv, sh, s, c, (sp, cp), (ss, c1), sa, sv.win, &o, &[])?;
        let ack = TcpFlags::ACK;
        let pa = TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0);
        self.seg(&cl, ch, c, s, (cp, sp), (c1, s1), ack, 502, &[], &[])?;
        let req = [b'x'; 300];
        let rlen = 100 + self.below(200) as usize;
        self.seg(
            &cl,
            ch,
            c,
            s,
            (cp, sp),
            (c1, s1),
            pa,
            502,
            &[],
            &req[..rlen],
        )?;
        let c2 = c1.wrapping_add(rlen as u32);
        let data = [b'y'; 1448];
        let mut sq = s1;
        for _ in 0..1 + self.below(3) {
            self.seg(&sv, sh, s, c, (sp, cp), (sq, c2), ack, 501, &[], &data)?;
            sq = sq.wrapping_add(1448);
        }
        let fa = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);
        self.seg(&cl, ch, c, s, (cp, sp), (c2, sq), fa, 500, &[], &[])?;
        self.seg(
            &sv,
            sh,
            s,
            c,
            (sp, cp),
            (sq, c2.wrapping_add(1)),
            fa,
            501,
            &[],
            &[],
        )?;
        Ok(())
    }

    /// An nmap or masscan SYN, a third of them answered by a RST.
    fn scan(&mut self) -> std::io::Result<()> {
        let masscan = self.below(2) == 0;
        let (c, s) = (self.addr(false, 45), self.addr(false, 203));
        let (st, win, opts) = if masscan {
            (stack(255, false, 1024, &[]), 1024, &[][..])
        } else {
            let w = [1024, 2048, 3072, 4096][self.below(4) as usize];
            (stack(64, false, w, MSS_ONLY), w, MSS_ONLY)
        };
        let hops = 1 + self.below(25) as u8;
        let dport = self.below(65535) as u16 + 1;
        let seq = self.rng.next_u64() as u32;
        self.seg(
            &st,
            hops,
            c,
            s,
            (40000, dport),
            (seq, 0),
            TcpFlags::SYN,
            win,
            opts,
            &[],
        )?;
        if self.below(3) == 0 {
            let ra = TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0);
            let sv = SERVERS[0];
            self.seg(
                &sv,
                3,
                s,
                c,
                (dport, 40000),
                (0, seq.wrapping_add(1)),
                ra,
                0,
                &[],
                &[],
            )?;
        }
        Ok(())
    }

    /// A spoofed window-0 SYN without options.
    fn flood(&mut self) -> std::io::Result<()> {
        let (c, s) = (
            self.addr(false, 100),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        );
        let st = stack(255, false, 0, &[]);
        let hops = 1 + self.below(30) as u8;
        let sport = self.below(64000) as u16 + 1024;
        let seq = self.rng.next_u64() as u32;
        self.seg(
            &st,
            hops,
            c,
            s,
            (sport, 25565),
            (seq, 0),
            TcpFlags::SYN,
            0,
            &[],
            &[],
        )
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(n), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: handshake_mix CONNS OUT.pcap [SEED]");
        std::process::exit(2);
    };
    let n: u64 = n
        .parse()
        .map_err(|_| std::io::Error::other("CONNS: a number"))?;
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let f = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut g = Gen {
        rng: Xoshiro256pp::new(seed),
        out: PcapWriter::new(f, LinkType::Ethernet, 65535)?,
        // 2026-01-01T00:00:00Z
        ts: 1_767_225_600_000_000_000,
        id: 1,
    };
    for _ in 0..n {
        match g.below(10) {
            0..=5 => g.conversation()?,
            6..=7 => g.scan()?,
            _ => g.flood()?,
        }
    }
    g.out.flush()
}
