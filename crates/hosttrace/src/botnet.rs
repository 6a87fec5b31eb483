//! A generated botnet and benign background as bot reports, for the ranking-quality figure
//! (docs/benchmarks.md). Pure and seeded.
//!
//! Following the seed's measurements (BRIEF §4 (iii)): in its first 10 minutes a bot reaches
//! about 60 destinations. Each generated bot's reported records: the C&C (IRC, port 6667;
//! every bot checks in), the download server (`http-exe`, 78 % of bots as in the seed), one or
//! two public resolvers with DGA NXDOMAINs (`dns-error`), a few CDNs and update sites, and
//! scan targets on 445 (`smb-sql-ports`) up to 60 destinations; it sent 2,000+ attack packets.
//!
//! **Participation** is the share of a population of 1,000 benign hosts that also matched the
//! claim: legitimate users of the attacked service who sent it a few packets (3-30) in the
//! window. The agent on such a host reports only processes that showed a feature: 40 % have a
//! browser with an NXDOMAIN (resolver, 10 CDNs, 5 personal sites), 10 % a public IRC client,
//! 20 % a Windows-update-like `.exe` download. Before this incident the center has seen 30
//! unrelated ones, each with its own botnet (5-50 bots) and 0-300 benign reporters, which is
//! where the popularity of resolvers, CDNs, update sites and public IRC comes from.

use std::net::{IpAddr, Ipv4Addr};

use ashiato_rng::Xoshiro256pp;

use crate::rank::{BotReport, Popularity, ReportRecord};

/// The incident the figure ranks.
pub const INCIDENT: &str = "incident-now";
const BENIGN_POPULATION: usize = 1000;
const PRIOR_INCIDENTS: usize = 30;

/// What was generated.
pub struct Botnet {
    /// Reports of the incident ranked.
    pub reports: Vec<BotReport>,
    /// The center's history, including this incident.
    pub popularity: Popularity,
    /// The true C&C.
    pub cc: IpAddr,
    /// The true download server.
    pub download: IpAddr,
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn rec(dst: IpAddr, port: u16, feature: Option<&str>, process: &str) -> ReportRecord {
    ReportRecord {
        time_ns: 0,
        proto: if port == 53 { "udp" } else { "tcp" }.into(),
        dst,
        port,
        fqdn: None,
        process: Some(process.into()),
        features: feature.map(|f| vec![f.to_string()]).unwrap_or_default(),
    }
}

struct Gen {
    rng: Xoshiro256pp,
}

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.next_f64() < p
    }

    fn random_public(&mut self) -> IpAddr {
        let x = self.rng.next_u64();
        v4(
            60 + (x % 60) as u8,
            (x >> 8) as u8,
            (x >> 16) as u8,
            1 + (x >> 24) as u8 % 250,
        )
    }

    fn resolver(&mut self) -> IpAddr {
        [v4(8, 8, 8, 8), v4(1, 1, 1, 1), v4(9, 9, 9, 9)][self.below(3) as usize]
    }

    fn cdn(&mut self) -> IpAddr {
        v4(23, 0, 0, 1 + self.below(20) as u8)
    }

    fn update_site(&mut self) -> IpAddr {
        v4(13, 107, 4, 50 + self.below(3) as u8)
    }

    fn public_irc(&mut self) -> IpAddr {
        v4(130, 239, 18, 100 + self.below(2) as u8)
    }

    fn bot(&mut self, id: String, incident: &str, cc: IpAddr, dl: IpAddr, port: u16) -> BotReport {
        let mut r = vec![rec(cc, 6667, Some("irc"), "svch0st.exe")];
        if self.chance(0.78) {
            r.push(rec(dl, 80, Some("http-exe"), "svch0st.exe"));
        }
        for _ in 0..1 + self.below(2) {
            let d = self.resolver();
            r.push(rec(d, 53, Some("dns-error"), "svch0st.exe"));
        }
        for _ in 0..self.below(4) {
            let d = self.cdn();
            r.push(rec(d, 443, None, "svch0st.exe"));
        }
        if self.chance(0.3) {
            let d = self.update_site();
            r.push(rec(d, 80, None, "svch0st.exe"));
        }
        let n = 55 + self.below(10) as usize;
        while r.len() < n {
            let d = self.random_public();
            r.push(rec(d, 445, Some("smb-sql-ports"), "svch0st.exe"));
        }
        BotReport {
            reporter: id,
            incident: incident.into(),
            attack_packets: 2000 + self.below(500),
            attacked_port: Some(port),
            records: r,
        }
    }

    /// A benign host that matched the claim by visiting the service; `None` when none of its
    /// processes showed a feature (its agent reports nothing).
    fn benign(&mut self, id: String, incident: &str, port: u16) -> Option<BotReport> {
        let mut r = Vec::new();
        if self.chance(0.4) {
            let d = self.resolver();
            r.push(rec(d, 53, Some("dns-error"), "browser"));
            for _ in 0..10 {
                let d = self.cdn();
                r.push(rec(d, 443, None, "browser"));
            }
            for _ in 0..5 {
                let d = self.random_public();
                r.push(rec(d, 443, None, "browser"));
            }
        }
        if self.chance(0.1) {
            let d = self.public_irc();
            r.push(rec(d, 6667, Some("irc"), "irc-client"));
        }
        if self.chance(0.2) {
            let d = self.update_site();
            r.push(rec(d, 80, Some("http-exe"), "updater"));
        }
        if r.is_empty() {
            return None;
        }
        Some(BotReport {
            reporter: id,
            incident: incident.into(),
            attack_packets: 3 + self.below(28),
            attacked_port: Some(port),
            records: r,
        })
    }

    fn incident(
        &mut self,
        name: &str,
        bots: usize,
        benign: usize,
        cc: IpAddr,
        dl: IpAddr,
    ) -> Vec<BotReport> {
        let port = [80, 53, 445, 25][self.below(4) as usize];
        let mut out = Vec::new();
        for b in 0..bots {
            out.push(self.bot(format!("{name}-bot{b}"), name, cc, dl, port));
        }
        for h in 0..benign {
            if let Some(r) = self.benign(format!("host{h}"), name, port) {
                out.push(r);
            }
        }
        out
    }
}

/// Generates the incident with `bots` bots and `participation` (0-1) of the benign population
/// matching the claim, after 30 earlier unrelated incidents.
pub fn generate(bots: usize, participation: f64, seed: u64) -> Botnet {
    let mut g = Gen {
        rng: Xoshiro256pp::new(seed),
    };
    let mut popularity = Popularity::default();
    for i in 0..PRIOR_INCIDENTS {
        let cc = v4(203, 0, 113, 100 + i as u8);
        let dl = v4(198, 51, 100, 100 + i as u8);
        let n_bots = 5 + g.below(46) as usize;
        let n_benign = g.below(301) as usize;
        for r in g.incident(&format!("incident-{i}"), n_bots, n_benign, cc, dl) {
            popularity.add(&r);
        }
    }
    let cc = v4(203, 0, 113, 66);
    let download = v4(198, 51, 100, 80);
    let benign = (participation * BENIGN_POPULATION as f64).round() as usize;
    let reports = g.incident(INCIDENT, bots, benign, cc, download);
    for r in &reports {
        popularity.add(r);
    }
    Botnet {
        reports,
        popularity,
        cc,
        download,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::rank::{dot, rank};

    /// The ranking-quality figure: the true C&C ranked first for 3, 10 and 100 bots at 0-30 %
    /// participation, 5 seeds each. `cargo test -p ashiato-hosttrace --release ranking_quality
    /// -- --nocapture` prints the table of docs/benchmarks.md.
    #[test]
    fn ranking_quality_the_true_cc_ranks_first() {
        let allow = HashSet::new();
        println!(
            "| bots | participation | reports | C&C rank (5 seeds) | download rank | top popular server's rank (8.8.8.8) |"
        );
        println!("|---|---|---|---|---|---|");
        for bots in [3, 10, 100] {
            for p in [0.0, 0.1, 0.2, 0.3] {
                let mut cc_ranks = Vec::new();
                let mut dl_ranks = Vec::new();
                let mut dns_ranks = Vec::new();
                let mut n_reports = 0;
                for seed in 1..=5 {
                    let b = generate(bots, p, seed);
                    n_reports = b.reports.len();
                    let r = rank(INCIDENT, &b.reports, &b.popularity, &allow);
                    let at = |a: IpAddr| r.iter().find(|x| x.server == a).map_or(0, |x| x.rank);
                    cc_ranks.push(at(b.cc));
                    dl_ranks.push(at(b.download));
                    dns_ranks.push(at(v4(8, 8, 8, 8)));
                }
                println!(
                    "| {bots} | {:.0} % | {n_reports} | {cc_ranks:?} | {dl_ranks:?} | {dns_ranks:?} |",
                    p * 100.0
                );
                assert!(
                    cc_ranks.iter().all(|&r| r == 1),
                    "bots {bots} p {p}: {cc_ranks:?}"
                );
            }
        }
    }

    #[test]
    fn the_allow_list_and_the_graph() {
        let b = generate(10, 0.1, 9);
        let allow: HashSet<IpAddr> = [b.cc].into_iter().collect();
        let r = rank(INCIDENT, &b.reports, &b.popularity, &allow);
        assert!(r.iter().all(|x| x.server != b.cc));
        assert_eq!(r[0].server, b.download);
        let r = rank(INCIDENT, &b.reports, &b.popularity, &HashSet::new());
        assert_eq!(r[0].reporters, 10);
        assert!(r[0].features.contains("irc"));
        let d = dot(INCIDENT, &b.reports, &r, 2);
        assert!(d.starts_with("digraph botnet {"));
        assert!(d.contains("\"port "));
        assert!(d.contains("#1 203.0.113.66"));
        assert_eq!(d.matches("-> \"203.0.113.66\"").count(), 10);
    }
}
