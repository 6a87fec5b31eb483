//! Matching an [`Observed`] packet against a [`Database`], with p0f 3.09b's rules
//! (`fp_tcp.c: tcp_find_match`), in file order among the signatures of the packet's kind:
//!
//! 1. The option layout (kinds in order) and the EOL padding must be equal, and so must the
//!    IPv4 options length. A signature with version `*` ignores the quirks that cannot occur on
//!    the packet's version (`flow` on IPv4; `df`, `id+`, `id-` on IPv6).
//! 2. Quirks must be equal, except that a difference made only of `df` or `id+` missing from
//!    the packet and `id-` or `ecn` added to it makes the match **fuzzy** (only the first fuzzy
//!    candidate is kept; later quirk-differing ones are skipped).
//! 3. TTL: for a `ttl-` signature (random TTL) the packet's TTL must not exceed it; otherwise
//!    a TTL above the signature's, or more than 35 below it, makes the match **fuzzy** (this is
//!    the rule that hides a changed initial TTL behind a relay; [`Quality::Fuzzy`] says so).
//! 4. MSS, window scale and payload class must be equal unless `*`. The window must equal a
//!    value, be a multiple of `%N`, or be `N` times the MSS (`mss*N`) or MTU (`mtu*N`) by
//!    [`Observed::win_multi`].
//! 5. The first non-fuzzy specific (`s:`) match wins ([`Quality::Exact`]); else the first
//!    non-fuzzy generic (`g:`) one ([`Quality::Generic`]); else the first fuzzy one
//!    ([`Quality::Fuzzy`]) unless it names an application (`!`: no fuzzy matches for tools).
//!
//! The distance is the signature's initial TTL minus the packet's TTL, or the guess from the
//! TTL alone ([`guess_dist`]) without a match or when a fuzzy match's TTL is out of range.
//!
//! [`MatchCache`] remembers results by the fields the rules read ([`SigKey`]: not the
//! sequence number, TOS or the timestamp's value): traffic repeats a few stacks at a few distances, so most
//! packets skip the scan of the signature list.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::db::{Database, Record};
use crate::sig::{IpVer, Kind, MAX_DIST, Observed, Quirks, SigKey, WinMulti, WinSpec, guess_dist};

/// How a signature matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    /// Every field as the signature says, a specific signature.
    Exact,
    /// Every field as the signature says, a generic (`g:`) signature.
    Generic,
    /// Quirks or TTL differed within p0f's tolerance (rules 2 and 3).
    Fuzzy,
}

/// The result of matching one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match<'a> {
    /// The matched record, if any.
    pub record: Option<&'a Record>,
    /// How it matched (meaningless without a record).
    pub quality: Quality,
    /// Hop distance.
    pub dist: u8,
}

/// Finds the signature p0f would report for `o` (`syn_mss`: the MSS of the SYN a SYN/ACK
/// answers, 0 if unknown).
pub fn find<'a>(db: &'a Database, o: &Observed, syn_mss: u16) -> Match<'a> {
    let list = records(db, o.kind);
    let (i, quality, dist) = find_index(db, o, syn_mss);
    Match {
        record: i.map(|i| &list[i]),
        quality,
        dist,
    }
}

fn records(db: &Database, kind: Kind) -> &[Record] {
    match kind {
        Kind::Syn => &db.request,
        Kind::SynAck => &db.response,
    }
}

/// [`find`] with the record as an index into its section's list.
fn find_index(db: &Database, o: &Observed, syn_mss: u16) -> (Option<usize>, Quality, u8) {
    let list = records(db, o.kind);
    let multi = o.win_multi(syn_mss);
    let mut fmatch: Option<usize> = None;
    let mut gmatch: Option<usize> = None;
    for (i, rec) in list.iter().enumerate() {
        let s = &rec.sig;
        if s.layout.kinds() != o.layout.kinds() {
            continue;
        }
        let mut fuzzy = false;
        let mut ref_q = s.quirks.0;
        if s.ver.is_none() {
            ref_q &= if o.ver == IpVer::V4 {
                !Quirks::FLOW
            } else {
                !(Quirks::DF | Quirks::NZ_ID | Quirks::ZERO_ID)
            };
        }
        if ref_q != o.quirks.0 {
            let diff = ref_q ^ o.quirks.0;
            let deleted = diff & ref_q;
            let added = diff & o.quirks.0;
            if fmatch.is_some()
                || deleted & !(Quirks::DF | Quirks::NZ_ID) != 0
                || added & !(Quirks::ZERO_ID | Quirks::ECN) != 0
            {
                continue;
            }
            fuzzy = true;
        }
        if s.layout.eol_pad != o.layout.eol_pad || s.olen != o.ip_opt_len {
            continue;
        }
        if s.bad_ttl {
            if s.ittl < o.ttl {
                continue;
            }
        } else if s.ittl < o.ttl || s.ittl - o.ttl > MAX_DIST {
            fuzzy = true;
        }
        if s.mss.is_some_and(|m| m != o.mss)
            || s.wscale.is_some_and(|w| w != o.wscale)
            || s.pclass.is_some_and(|p| p != o.payload)
        {
            continue;
        }
        let win_ok = match s.win {
            WinSpec::Any => true,
            WinSpec::Value(v) => v == o.win,
            WinSpec::Mod(m) => o.win.is_multiple_of(m),
            WinSpec::Mss(m) => multi == Some(WinMulti::Mss(m)),
            WinSpec::Mtu(m) => multi == Some(WinMulti::Mtu(m)),
        };
        if !win_ok {
            continue;
        }
        if !fuzzy {
            if !db.label(rec).generic {
                return (Some(i), Quality::Exact, s.ittl - o.ttl);
            } else if gmatch.is_none() {
                gmatch = Some(i);
            }
        } else if fmatch.is_none() {
            fmatch = Some(i);
        }
    }
    if let Some(g) = gmatch {
        return (
            Some(g),
            Quality::Generic,
            list[g].sig.ittl.saturating_sub(o.ttl),
        );
    }
    let none = (None, Quality::Fuzzy, guess_dist(o.ttl));
    let Some(fi) = fmatch else {
        return none;
    };
    let f = &list[fi];
    if db.label(f).is_app() {
        return none;
    }
    let dist = if f.sig.ittl < o.ttl || (!f.sig.bad_ttl && f.sig.ittl - o.ttl > MAX_DIST) {
        guess_dist(o.ttl)
    } else {
        f.sig.ittl - o.ttl
    };
    (Some(fi), Quality::Fuzzy, dist)
}

/// Entries kept before the cache starts over (a flood of ever-new shapes costs bounded memory).
pub const MATCH_CACHE_MAX: usize = 4096;

/// Remembers [`find`]'s answers for one database; at most [`MATCH_CACHE_MAX`] entries.
pub struct MatchCache {
    map: HashMap<SigKey, (Option<usize>, Quality, u8), RandomState>,
    /// The database the entries belong to (its lists' addresses and lengths): another one
    /// empties the cache.
    db: (usize, usize, usize, usize),
}

impl Default for MatchCache {
    fn default() -> Self {
        MatchCache {
            map: HashMap::with_capacity_and_hasher(256, RandomState::default()),
            db: (0, 0, 0, 0),
        }
    }
}

impl MatchCache {
    /// [`find`], remembered.
    pub fn find<'a>(&mut self, db: &'a Database, o: &Observed, syn_mss: u16) -> Match<'a> {
        let id = (
            db.request.as_ptr() as usize,
            db.request.len(),
            db.response.as_ptr() as usize,
            db.response.len(),
        );
        if self.db != id {
            self.map.clear();
            self.db = id;
        }
        let key = o.sig_key(syn_mss);
        let (i, quality, dist) = match self.map.get(&key) {
            Some(&v) => v,
            None => {
                let v = find_index(db, o, syn_mss);
                if self.map.len() >= MATCH_CACHE_MAX {
                    self.map.clear();
                }
                self.map.insert(key, v);
                v
            }
        };
        Match {
            record: i.map(|i| &records(db, o.kind)[i]),
            quality,
            dist,
        }
    }
}
