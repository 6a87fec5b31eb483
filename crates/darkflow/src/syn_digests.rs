//! The digest of each flow's first SYN, kept until the flow is decided, so that a DarkFlow
//! event can say which packet to trace back (`ashiato controller` follows DarkFlow events
//! as traceback triggers).
//!
//! The detector keeps flows, not packets; a digest needs the SYN's invariant bytes, which
//! are gone by the time the flow becomes a DarkFlow (T after the SYN). The shell therefore
//! digests every SYN as it passes (only SYNs: a small share of traffic) and files it here
//! under its flow; a DarkFlow event takes it back out. Everything older than the horizon
//! (T plus slack) is dropped in arrival order, whatever happened to its flow, so memory is
//! bounded by the SYN rate over the horizon and by a hard cap.
//!
//! Pure: times are arguments.

use std::collections::{HashMap, VecDeque};

use crate::flow::FlowId;

/// First-SYN digests by flow, bounded in time and count.
#[derive(Debug)]
pub struct SynDigests {
    map: HashMap<FlowId, (u128, u64), foldhash::fast::RandomState>,
    order: VecDeque<(u64, FlowId)>,
    cap: usize,
    horizon_ns: u64,
    /// SYNs not filed because the cap was reached.
    pub dropped: u64,
}

impl SynDigests {
    /// Keeps at most `cap` flows, each for `horizon_ns` after its first SYN.
    pub fn new(cap: usize, horizon_ns: u64) -> Self {
        SynDigests {
            map: HashMap::default(),
            order: VecDeque::new(),
            cap: cap.max(1),
            horizon_ns,
            dropped: 0,
        }
    }

    /// Files the digest of a SYN of `flow` seen at `ts`, unless the flow already has one
    /// (a retransmission keeps the first SYN's).
    pub fn syn(&mut self, ts: u64, flow: FlowId, digest: u128) {
        self.expire(ts);
        if self.map.contains_key(&flow) {
            return;
        }
        if self.map.len() >= self.cap {
            self.dropped += 1;
            return;
        }
        self.map.insert(flow, (digest, ts));
        self.order.push_back((ts, flow));
    }

    /// The digest of `flow`'s first SYN, removed (at `now`: nothing older than the horizon
    /// is returned).
    pub fn take(&mut self, now: u64, flow: &FlowId) -> Option<u128> {
        self.expire(now);
        self.map.remove(flow).map(|(d, _)| d)
    }

    /// Drops what is older than the horizon at `now`.
    pub fn expire(&mut self, now: u64) {
        while let Some(&(ts, flow)) = self.order.front() {
            if ts.saturating_add(self.horizon_ns) >= now {
                break;
            }
            self.order.pop_front();
            // The map entry may be newer (the flow was taken and filed again): keep it then.
            if self.map.get(&flow).is_some_and(|&(_, t)| t == ts) {
                self.map.remove(&flow);
            }
        }
        // Entries taken out early leave stale order records; keep the queue bounded too.
        if self.order.len() > 2 * self.cap {
            let map = &self.map;
            self.order
                .retain(|(ts, f)| map.get(f).is_some_and(|&(_, t)| t == *ts));
        }
    }

    /// Flows held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when none are held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::*;

    fn flow(i: u16) -> FlowId {
        FlowId {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            sport: i,
            dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            dport: 80,
        }
    }

    #[test]
    fn first_syn_wins_and_is_taken_once() {
        let mut s = SynDigests::new(10, 5);
        s.syn(1, flow(1), 11);
        s.syn(2, flow(1), 12); // retransmission
        assert_eq!(s.take(3, &flow(1)), Some(11));
        assert_eq!(s.take(3, &flow(1)), None);
    }

    #[test]
    fn old_entries_expire_and_the_cap_holds() {
        let mut s = SynDigests::new(2, 5);
        s.syn(1, flow(1), 1);
        s.syn(2, flow(2), 2);
        s.syn(3, flow(3), 3);
        assert_eq!(s.dropped, 1);
        assert_eq!(s.len(), 2);
        s.expire(7); // 1 + 5 < 7: flow 1 goes; flow 2 (2 + 5 = 7) stays
        assert_eq!(s.take(7, &flow(1)), None);
        assert_eq!(s.take(7, &flow(2)), Some(2));
        s.syn(8, flow(4), 4);
        assert_eq!(s.take(8, &flow(4)), Some(4));
    }

    proptest! {
        /// Whatever the order of SYNs and takes, nothing older than the horizon is returned,
        /// at most `cap` flows are held, and the order queue stays bounded.
        #[test]
        fn bounded_in_time_and_count(ops in proptest::collection::vec((0u16..50, 0u64..20, any::<bool>()), 1..400)) {
            let mut s = SynDigests::new(16, 30);
            let mut now = 0u64;
            for (f, dt, take) in ops {
                now += dt;
                if take {
                    if let Some(d) = s.take(now, &flow(f)) {
                        prop_assert!(d + 30 >= u128::from(now), "digest filed at {d} returned at {now}");
                    }
                } else {
                    s.syn(now, flow(f), u128::from(now));
                }
                prop_assert!(s.len() <= 16);
                prop_assert!(s.order.len() <= 2 * 16 + 1);
            }
        }
    }
}
