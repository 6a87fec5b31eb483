//! The stepping-stone decision: per source, passive evidence (the source's SYN and the time
//! Tp from our SYN/ACK to its ACK or RST) against active evidence (ICMP echo round trips Ta
//! and the reply to our own SYN probe) → a [`Verdict`] with the [`Signal`]s that fired.
//!
//! Signals (docs/stepping-stones.md):
//!
//! - [`Signal::TtlClass`]: the initial-TTL class (the next of 32, 64, 128, 255 at or above the
//!   TTL seen) of the source's SYN differs from that of its reply to our probe. Fp ≠ Fa.
//! - [`Signal::OptionOrder`]: the order of the TCP options both packets carry (NOP and EOL
//!   left out) differs, e.g. Linux `mss,sok,ts,ws` against Windows `mss,ws,sok,ts`. A SYN/ACK
//!   only echoes what our probe offered, so options present on one side only say nothing; the
//!   order of the common ones is the stack's. Fp ≠ Fa.
//! - [`Signal::OsName`]: both packets matched OS signatures with different OS names.
//! - [`Signal::Hops`]: same TTL class, but the SYN travelled more hops than the probe reply:
//!   a NAT forwards the attacker's SYN with its TTL lowered by the hops behind it.
//! - [`Signal::Timing`]: Tp is above Ta by a one-sided exact Mann–Whitney test at level
//!   `alpha` (default 1 %) *and* the median gap is at least `min_gap_us` *and* so is the
//!   fastest Tp's (a relay delays every answer; a sample made late by a busy host is not
//!   evidence, and one quick answer clears the source). Under the null
//!   hypothesis (Tp and Ta samples exchangeable: the same path) the false-alarm rate is at most
//!   `alpha`, whatever the delay distribution; ties count against the alarm, which only lowers
//!   it. The test cannot fire with too few samples: with `n` Tp and `m` Ta samples its
//!   smallest p-value is 1 / C(n+m, n) (3 Tp and 10 Ta: 0.35 %; 1 Tp needs 100 Ta).
//! - [`Signal::AppTiming`]: the application-level time Tapp (our banner or reply to the
//!   source's answer, [`crate::app`]) is above Ta by the same test and both gaps. Catches relays that end TCP
//!   themselves, whose kernel answers our SYN/ACK (Tp ≈ Ta) while their client's answer
//!   crosses the relay. Confound: the client's think time — only automated clients answer in
//!   well under the gap, so a human or slow program looks like a relay here. The fastest-answer
//!   guard is for the automated ones: a relay delays every answer, while a busy client's
//!   scheduling delays come and go, and one quick answer clears it.
//! - [`Signal::SeedRule`] (only with [`Config::seed_rule`]): the rule of the original
//!   method, mean Tp > mean over ping rounds of the round's largest Ta, for comparison.
//!
//! When the source's SYN matched an application signature (a scanner such as nmap or
//! masscan crafts its own SYNs, often with a random TTL), the SYN says nothing about the
//! stack: the fingerprint signals are not computed and the verdict says so.
//!
//! No verdict without evidence: a source is [`Decision::Relay`] only when a signal fired,
//! [`Decision::Direct`] only when both fingerprints and enough timing samples were compared
//! and nothing fired, and [`Decision::Undecided`] otherwise, with what was missing. The result
//! does not depend on the order of the samples.

use crate::sig::{Observed, opt};

/// Tuning of the decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Level of the timing test (its false-alarm bound).
    pub alpha: f64,
    /// The median of Tp must exceed the median of Ta by at least this many µs (a SYN/ACK is
    /// answered by the client's kernel in microseconds; this absorbs that and clock jitter).
    pub min_gap_us: u64,
    /// Fewest Tp samples for a timing judgement.
    pub min_tp: usize,
    /// Fewest Ta samples for a timing judgement.
    pub min_ta: usize,
    /// Also evaluate the original method's rule.
    pub seed_rule: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            alpha: 0.01,
            min_gap_us: 1000,
            min_tp: 1,
            min_ta: 3,
            seed_rule: false,
        }
    }
}

/// min, median, max, mean and variance of some samples (µs).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Smallest.
    pub min: u64,
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// Sample variance (n − 1; 0 for one sample).
    pub variance: f64,
}

impl Stats {
    /// Statistics of `xs`, `None` when empty.
    pub fn of(xs: &[u64]) -> Option<Stats> {
        if xs.is_empty() {
            return None;
        }
        let mut v = xs.to_vec();
        v.sort_unstable();
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2] as f64
        } else {
            (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0
        };
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let variance = if n > 1 {
            v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Stats {
            n,
            min: v[0],
            median,
            max: v[n - 1],
            mean,
            variance,
        })
    }
}

/// What is known about one source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    /// The source's SYN (passive fingerprint Fp).
    pub fp: Option<Observed>,
    /// The passive SYN matched an application (scanner) signature, not an OS.
    pub fp_is_tool: bool,
    /// OS name of the passive match, if an OS signature matched.
    pub fp_os: Option<String>,
    /// The reply to our SYN probe (SYN/ACK or RST; active fingerprint Fa).
    pub fa: Option<Observed>,
    /// The TTL of the reply to our probe when it was a RST (no [`Observed`] for a RST).
    pub fa_rst_ttl: Option<u8>,
    /// OS name of the active match, if an OS signature matched.
    pub fa_os: Option<String>,
    /// Tp samples in µs: our SYN/ACK to the source's ACK or RST.
    pub tp_us: Vec<u64>,
    /// Ta samples in µs, by ping round (each round several echoes).
    pub ta_rounds_us: Vec<Vec<u64>>,
    /// Tapp samples in µs: our banner or reply to the source's answer.
    pub tapp_us: Vec<u64>,
}

/// A signal that fired, with its numbers.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    /// Initial-TTL classes differ.
    TtlClass {
        /// Of the source's SYN.
        passive: u8,
        /// Of the reply to our probe.
        active: u8,
    },
    /// Order of common options differs.
    OptionOrder {
        /// Passive layout.
        passive: String,
        /// Active layout.
        active: String,
    },
    /// Matched OS names differ.
    OsName {
        /// Passive OS.
        passive: String,
        /// Active OS.
        active: String,
    },
    /// The SYN travelled more hops than the reply.
    Hops {
        /// Passive hop count.
        passive: u8,
        /// Active hop count.
        active: u8,
    },
    /// Tp significantly above Ta.
    Timing {
        /// One-sided exact Mann–Whitney p-value.
        p_value: f64,
        /// Median Tp − median Ta, µs.
        gap_us: f64,
        /// Fastest Tp − median Ta, µs.
        floor_gap_us: f64,
    },
    /// Tapp significantly above Ta.
    AppTiming {
        /// One-sided exact Mann–Whitney p-value.
        p_value: f64,
        /// Median Tapp − median Ta, µs.
        gap_us: f64,
        /// Fastest Tapp − median Ta, µs.
        floor_gap_us: f64,
    },
    /// The original rule: mean Tp > mean of per-round max Ta.
    SeedRule {
        /// Mean Tp, µs.
        mean_tp_us: f64,
        /// Mean of the rounds' largest Ta, µs.
        mean_max_ta_us: f64,
    },
}

impl Signal {
    /// A short name (`ttl_class`, `option_order`, `os_name`, `hops`, `timing`, `app_timing`,
    /// `seed_rule`).
    pub fn name(&self) -> &'static str {
        match self {
            Signal::TtlClass { .. } => "ttl_class",
            Signal::OptionOrder { .. } => "option_order",
            Signal::OsName { .. } => "os_name",
            Signal::Hops { .. } => "hops",
            Signal::Timing { .. } => "timing",
            Signal::AppTiming { .. } => "app_timing",
            Signal::SeedRule { .. } => "seed_rule",
        }
    }
}

/// The call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// At least one signal fired.
    Relay,
    /// Both kinds of evidence were compared and nothing fired.
    Direct,
    /// Not enough evidence for either.
    Undecided,
}

/// A decision with its evidence.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Verdict {
    /// The call.
    pub decision: Decision,
    /// Signals that fired (the seed rule is listed but only decides with `seed_rule` on).
    pub signals: Vec<Signal>,
    /// Tp statistics.
    pub tp: Option<Stats>,
    /// Ta statistics over all rounds.
    pub ta: Option<Stats>,
    /// What could not be judged, and why.
    pub missing: Vec<&'static str>,
}

/// The initial TTL a TTL was most likely sent with.
pub fn ttl_class(ttl: u8) -> u8 {
    match ttl {
        0..=32 => 32,
        33..=64 => 64,
        65..=128 => 128,
        _ => 255,
    }
}

fn common_order(a: &Observed, b: &Observed) -> (Vec<u8>, Vec<u8>) {
    let keep = |k: u8| k != opt::NOP && k != opt::EOL;
    let ka: Vec<u8> = a
        .layout
        .kinds()
        .iter()
        .copied()
        .filter(|&k| keep(k))
        .collect();
    let kb: Vec<u8> = b
        .layout
        .kinds()
        .iter()
        .copied()
        .filter(|&k| keep(k))
        .collect();
    let ca = ka.iter().copied().filter(|k| kb.contains(k)).collect();
    let cb = kb.iter().copied().filter(|k| ka.contains(k)).collect();
    (ca, cb)
}

/// Decides for one source.
pub fn decide(ev: &Evidence, cfg: &Config) -> Verdict {
    let mut signals = Vec::new();
    let mut missing = Vec::new();
    let ta_all: Vec<u64> = ev.ta_rounds_us.iter().flatten().copied().collect();
    let tp = Stats::of(&ev.tp_us);
    let ta = Stats::of(&ta_all);

    // Fingerprints.
    let active_ttl = ev.fa.map(|o| o.ttl).or(ev.fa_rst_ttl);
    let mut fp_compared = false;
    match (ev.fp, active_ttl) {
        (None, _) => missing.push("no passive SYN"),
        (_, None) => missing.push("no reply to the SYN probe"),
        (Some(_), Some(_)) if ev.fp_is_tool => {
            missing.push("the SYN is a scanner's own packet: fingerprints not comparable")
        }
        (Some(p), Some(at)) => {
            fp_compared = true;
            let (cp, ca) = (ttl_class(p.ttl), ttl_class(at));
            if cp != ca {
                signals.push(Signal::TtlClass {
                    passive: cp,
                    active: ca,
                });
            } else {
                let (hp, ha) = (cp - p.ttl, ca - at);
                if hp > ha {
                    signals.push(Signal::Hops {
                        passive: hp,
                        active: ha,
                    });
                }
            }
            if let Some(a) = ev.fa
                && a.ver == p.ver
            {
                let (op, oa) = common_order(&p, &a);
                if op != oa {
                    signals.push(Signal::OptionOrder {
                        passive: p.layout.to_string(),
                        active: a.layout.to_string(),
                    });
                }
            }
            if let (Some(np), Some(na)) = (&ev.fp_os, &ev.fa_os)
                && np != na
            {
                signals.push(Signal::OsName {
                    passive: np.clone(),
                    active: na.clone(),
                });
            }
        }
    }

    // Timing.
    let mut timing_compared = false;
    if ev.tp_us.len() < cfg.min_tp.max(1) {
        missing.push("too few Tp samples");
    } else if ta_all.len() < cfg.min_ta.max(1) {
        missing.push("too few Ta samples (no echo replies)");
    } else if let (Some(t), Some(a)) = (tp, ta) {
        let p_value = mann_whitney_greater(&ev.tp_us, &ta_all);
        let gap_us = t.median - a.median;
        let min_p = 1.0 / binom(ev.tp_us.len() + ta_all.len(), ev.tp_us.len());
        if min_p > cfg.alpha {
            missing.push("too few samples for the timing test at this level");
        } else {
            timing_compared = true;
        }
        let floor_gap_us = t.min as f64 - a.median;
        if shifted(p_value, gap_us, floor_gap_us, cfg) {
            signals.push(Signal::Timing {
                p_value,
                gap_us,
                floor_gap_us,
            });
        }
        // Tapp against the same Ta, by the same test; optional evidence.
        if ev.tapp_us.is_empty() {
            missing.push("no application-level exchange timed");
        } else if let Some(x) = Stats::of(&ev.tapp_us) {
            let p_value = mann_whitney_greater(&ev.tapp_us, &ta_all);
            let gap_us = x.median - a.median;
            let floor_gap_us = x.min as f64 - a.median;
            if shifted(p_value, gap_us, floor_gap_us, cfg) {
                signals.push(Signal::AppTiming {
                    p_value,
                    gap_us,
                    floor_gap_us,
                });
            }
        }
        if cfg.seed_rule {
            let maxes: Vec<u64> = ev
                .ta_rounds_us
                .iter()
                .filter_map(|r| r.iter().copied().max())
                .collect();
            if !maxes.is_empty() {
                let mean_max = maxes.iter().map(|&x| x as f64).sum::<f64>() / maxes.len() as f64;
                if t.mean > mean_max {
                    signals.push(Signal::SeedRule {
                        mean_tp_us: t.mean,
                        mean_max_ta_us: mean_max,
                    });
                }
            }
        }
    }
    let decision = if !signals.is_empty() {
        Decision::Relay
    } else if fp_compared && timing_compared {
        Decision::Direct
    } else if timing_compared && ev.fp_is_tool {
        // A scanner's crafted SYN hides the stack; timing alone was judged and was clean.
        Decision::Direct
    } else {
        Decision::Undecided
    };
    Verdict {
        decision,
        signals,
        tp,
        ta,
        missing,
    }
}

/// The timing signals' rule: the test rejects at `alpha`, the median gap is at least the
/// gap, and so is the fastest sample's (a relay delays every answer; a sample late for a
/// passing reason — a busy host, a descheduled process — does not make the others late).
fn shifted(p_value: f64, gap_us: f64, floor_gap_us: f64, cfg: &Config) -> bool {
    let gap = cfg.min_gap_us as f64;
    p_value <= cfg.alpha && gap_us >= gap && floor_gap_us >= gap
}

/// C(n, k) as a float (exact up to large values for our sample counts).
fn binom(n: usize, k: usize) -> f64 {
    let k = k.min(n - k.min(n));
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// One-sided exact Mann–Whitney p-value for "x tends to be greater than y": P(U ≥ u) under
/// exchangeability, with U the number of pairs (x, y) with x > y (ties count 0, which makes
/// the test conservative). Exact by counting arrangements (dynamic programming over
/// n × m × U); samples beyond 64 per side are thinned to 64 evenly spaced order statistics.
pub fn mann_whitney_greater(x: &[u64], y: &[u64]) -> f64 {
    let x = thin(x, 64);
    let y = thin(y, 64);
    let (n, m) = (x.len(), y.len());
    if n == 0 || m == 0 {
        return 1.0;
    }
    let u: usize = x.iter().map(|a| y.iter().filter(|b| a > b).count()).sum();
    // count[i][j][u]: arrangements of i x's and j y's with statistic u.
    let umax = n * m;
    let mut prev: Vec<Vec<f64>> = vec![vec![0.0; umax + 1]; m + 1];
    // i = 0: any j, u = 0 → 1 arrangement.
    for row in prev.iter_mut() {
        row[0] = 1.0;
    }
    for _ in 1..=n {
        let mut cur: Vec<Vec<f64>> = vec![vec![0.0; umax + 1]; m + 1];
        cur[0][0] = 1.0;
        for j in 1..=m {
            for s in 0..=umax {
                // Largest element is an x (exceeds all j y's: adds j) or a y (adds 0).
                let from_x = if s >= j { prev[j][s - j] } else { 0.0 };
                cur[j][s] = from_x + cur[j - 1][s];
            }
        }
        prev = cur;
    }
    let total: f64 = prev[m].iter().sum();
    let tail: f64 = prev[m][u..].iter().sum();
    tail / total
}

fn thin(v: &[u64], k: usize) -> Vec<u64> {
    let mut s = v.to_vec();
    s.sort_unstable();
    if s.len() <= k {
        return s;
    }
    (0..k).map(|i| s[i * (s.len() - 1) / (k - 1)]).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{Just, Strategy, any, prop, prop_assert, prop_assert_eq, proptest};

    use super::{Config, Decision, Evidence, Signal, decide, mann_whitney_greater};
    use crate::sig::{IpVer, Kind, Layout, Observed, Quirks, opt};

    fn obs(kind: Kind, ttl: u8, kinds: &[u8]) -> Observed {
        let mut layout = Layout::default();
        for &k in kinds {
            layout.push(k);
        }
        Observed {
            kind,
            ver: IpVer::V4,
            ttl,
            ip_opt_len: 0,
            mss: 1460,
            win: 64240,
            wscale: 7,
            layout,
            quirks: Quirks(Quirks::DF),
            payload: false,
            tot_hdr: 60,
            ts1: 1,
            tos: 0,
            seq: 1,
        }
    }

    const LINUX: [u8; 5] = [opt::MSS, opt::SOK, opt::TS, opt::NOP, opt::WS];
    const WINDOWS: [u8; 6] = [opt::MSS, opt::NOP, opt::WS, opt::NOP, opt::NOP, opt::SOK];
    const WIN_SYNACK: [u8; 6] = [opt::MSS, opt::NOP, opt::WS, opt::SOK, opt::TS, opt::NOP];

    #[test]
    fn exact_mann_whitney_tail() {
        // All 3 x above all 5 y: 1 arrangement in C(8,3) = 56.
        let p = mann_whitney_greater(&[10, 11, 12], &[1, 2, 3, 4, 5]);
        assert!((p - 1.0 / 56.0).abs() < 1e-12, "{p}");
        // Ties never help the alarm.
        assert_eq!(mann_whitney_greater(&[5, 5], &[5, 5, 5]), 1.0);
        assert_eq!(mann_whitney_greater(&[1], &[]), 1.0);
    }

    #[test]
    fn nat_relay_windows_behind_linux() {
        let ev = Evidence {
            fp: Some(obs(Kind::Syn, 120, &WINDOWS)),
            fa: Some(obs(Kind::SynAck, 62, &LINUX)),
            tp_us: vec![40_000, 41_000, 39_500],
            ta_rounds_us: vec![vec![800, 900, 850, 870, 820, 910, 860, 840, 830, 880]],
            ..Evidence::default()
        };
        let v = decide(&ev, &Config::default());
        assert_eq!(v.decision, Decision::Relay);
        let names: Vec<_> = v.signals.iter().map(Signal::name).collect();
        assert_eq!(names, ["ttl_class", "option_order", "timing"]);
    }

    #[test]
    fn direct_linux_is_direct() {
        let ev = Evidence {
            fp: Some(obs(Kind::Syn, 62, &LINUX)),
            fa: Some(obs(Kind::SynAck, 62, &LINUX)),
            tp_us: vec![900, 870, 905],
            ta_rounds_us: vec![vec![800, 900, 850, 870, 820, 910, 860, 840, 830, 880]],
            ..Evidence::default()
        };
        let v = decide(&ev, &Config::default());
        assert_eq!(v.decision, Decision::Direct, "{v:?}");
        // Two answers made late by a busy sensor or host, one quick: the test alone would
        // fire, the fastest answer clears the source.
        let mut late = ev.clone();
        late.tp_us = vec![3_000, 2_900, 905];
        assert!(super::mann_whitney_greater(&late.tp_us, &late.ta_rounds_us[0]) <= 0.01);
        let v = decide(&late, &Config::default());
        assert_eq!(v.decision, Decision::Direct, "{v:?}");
    }

    #[test]
    fn windows_syn_against_its_own_syn_ack_is_not_a_difference() {
        let ev = Evidence {
            fp: Some(obs(Kind::Syn, 126, &WINDOWS)),
            fa: Some(obs(Kind::SynAck, 126, &WIN_SYNACK)),
            ..Evidence::default()
        };
        assert!(decide(&ev, &Config::default()).signals.is_empty());
    }

    #[test]
    fn nat_hop_is_seen_and_scanner_syns_are_not_fingerprints() {
        let mut ev = Evidence {
            fp: Some(obs(Kind::Syn, 61, &LINUX)),
            fa: Some(obs(Kind::SynAck, 62, &LINUX)),
            ..Evidence::default()
        };
        let v = decide(&ev, &Config::default());
        assert_eq!(
            v.signals,
            [Signal::Hops {
                passive: 3,
                active: 2
            }]
        );
        ev.fp = Some(obs(Kind::Syn, 250, &[opt::MSS]));
        ev.fp_is_tool = true;
        let v = decide(&ev, &Config::default());
        assert!(v.signals.is_empty());
        assert_eq!(v.decision, Decision::Undecided);
    }

    #[test]
    fn tcp_terminating_relay_is_caught_by_app_timing_only() {
        // The relay's kernel answers our SYN/ACK (Tp ≈ Ta) and its own SYN probe; its client
        // answers our banner through the relay, 5 ms further away.
        let ta = vec![800, 900, 850, 870, 820, 910, 860, 840, 830, 880];
        let mut ev = Evidence {
            fp: Some(obs(Kind::Syn, 63, &LINUX)),
            fa: Some(obs(Kind::SynAck, 63, &LINUX)),
            tp_us: vec![860, 870, 900],
            ta_rounds_us: vec![ta],
            tapp_us: vec![5_900, 6_100, 5_850],
            ..Evidence::default()
        };
        let v = decide(&ev, &Config::default());
        assert_eq!(v.decision, Decision::Relay);
        let names: Vec<_> = v.signals.iter().map(Signal::name).collect();
        assert_eq!(names, ["app_timing"]);
        // A direct automated client answers in microseconds: no alarm.
        ev.tapp_us = vec![880, 905, 890];
        let v = decide(&ev, &Config::default());
        assert_eq!(v.decision, Decision::Direct, "{v:?}");
        // One Tapp sample far above: the test needs enough samples (1/11 > 1 %).
        ev.tapp_us = vec![50_000];
        assert!(decide(&ev, &Config::default()).signals.is_empty());
        // A busy automated client: most answers late, one quick: not a relay (a relay delays
        // every answer). The same guard holds for Tp.
        ev.tapp_us = vec![3_000, 2_900, 3_100, 2_800, 900];
        assert!(decide(&ev, &Config::default()).signals.is_empty());
        ev.tapp_us = vec![3_000, 2_900, 3_100, 2_800, 2_000];
        let names: Vec<_> = decide(&ev, &Config::default())
            .signals
            .iter()
            .map(Signal::name)
            .collect();
        assert_eq!(names, ["app_timing"]);
    }

    fn evidence() -> impl Strategy<Value = Evidence> {
        let o = (
            any::<bool>(),
            1u8..=255,
            prop::sample::select(vec![&LINUX[..], &WINDOWS[..]]),
        )
            .prop_map(|(ack, ttl, l)| obs(if ack { Kind::SynAck } else { Kind::Syn }, ttl, l));
        (
            prop::option::of(o.clone()),
            prop::option::of(o),
            any::<bool>(),
            prop::collection::vec(0u64..100_000, 0..6),
            prop::collection::vec(prop::collection::vec(0u64..100_000, 0..6), 0..3),
            prop::option::of(Just("A".to_string())),
            prop::collection::vec(0u64..100_000, 0..6),
        )
            .prop_map(|(fp, fa, tool, tp, ta, os, tapp)| Evidence {
                fp,
                fp_is_tool: tool,
                fp_os: os.clone(),
                fa,
                fa_rst_ttl: None,
                fa_os: os,
                tp_us: tp,
                ta_rounds_us: ta,
                tapp_us: tapp,
            })
    }

    proptest! {
        /// A relay verdict always carries a signal; a direct one needs both kinds of evidence.
        #[test]
        fn no_verdict_without_evidence(ev in evidence(), seed_rule: bool) {
            let cfg = Config { seed_rule, ..Config::default() };
            let v = decide(&ev, &cfg);
            match v.decision {
                Decision::Relay => prop_assert!(!v.signals.is_empty()),
                Decision::Direct => {
                    prop_assert!(v.signals.is_empty());
                    prop_assert!(!ev.tp_us.is_empty());
                    prop_assert!(ev.ta_rounds_us.iter().map(Vec::len).sum::<usize>() >= cfg.min_ta);
                }
                Decision::Undecided => prop_assert!(v.signals.is_empty()),
            }
            // Each timing signal rests on its own samples and enough echoes.
            let ta_n = ev.ta_rounds_us.iter().map(Vec::len).sum::<usize>();
            for s in &v.signals {
                match s {
                    Signal::AppTiming { .. } => {
                        prop_assert!(!ev.tapp_us.is_empty());
                        prop_assert!(ta_n >= cfg.min_ta);
                    }
                    Signal::Timing { .. } => {
                        prop_assert!(!ev.tp_us.is_empty());
                        prop_assert!(ta_n >= cfg.min_ta);
                    }
                    _ => {}
                }
            }
            // Without Tapp, app_timing cannot fire; with Tapp, nothing else changes.
            let mut no_app = ev.clone();
            no_app.tapp_us.clear();
            let w = decide(&no_app, &cfg);
            prop_assert!(w.signals.iter().all(|s| s.name() != "app_timing"));
            prop_assert_eq!(
                w.signals.iter().map(|s| s.name()).collect::<Vec<_>>(),
                v.signals.iter().map(|s| s.name()).filter(|&n| n != "app_timing").collect::<Vec<_>>()
            );
            let empty = decide(&Evidence::default(), &cfg);
            prop_assert_eq!(empty.decision, Decision::Undecided);
            prop_assert!(empty.signals.is_empty());
        }

        /// Shuffling the samples (within and across rounds' order) changes nothing.
        #[test]
        fn verdict_stable_under_sample_order(ev in evidence(), rot in 0usize..7) {
            let cfg = Config::default();
            let a = decide(&ev, &cfg);
            let mut ev2 = ev.clone();
            ev2.tp_us.reverse();
            let n = ev2.tp_us.len().max(1);
            ev2.tp_us.rotate_left(rot % n);
            ev2.ta_rounds_us.reverse();
            ev2.tapp_us.reverse();
            let m = ev2.tapp_us.len().max(1);
            ev2.tapp_us.rotate_left(rot % m);
            for r in &mut ev2.ta_rounds_us {
                r.reverse();
            }
            let b = decide(&ev2, &cfg);
            prop_assert_eq!(a.decision, b.decision);
            prop_assert_eq!(
                a.signals.iter().map(|s| s.name()).collect::<Vec<_>>(),
                b.signals.iter().map(|s| s.name()).collect::<Vec<_>>()
            );
        }

        /// Under the null (both samples from one distribution) the timing test alarms at most
        /// at its level, up to sampling noise.
        #[test]
        fn timing_false_alarm_bounded(seed in any::<u64>()) {
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s % 50_000 };
            let mut alarms = 0;
            for _ in 0..50 {
                let tp: Vec<u64> = (0..4).map(|_| next()).collect();
                let ta: Vec<u64> = (0..10).map(|_| next()).collect();
                if mann_whitney_greater(&tp, &ta) <= 0.01 { alarms += 1; }
            }
            // Expected at most 0.5 in 50; 5 would be a 1-in-10^5 event for a correct test.
            prop_assert!(alarms <= 5, "{alarms} alarms in 50");
        }
    }
}
