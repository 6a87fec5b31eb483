//! The packet parser: the first byte picks a link type, the rest is the frame.
#![no_main]

use ashiato_wire::LinkType;
use ashiato_wire::packet;
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 9] = [
    LinkType::Null,
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::Loop,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Other(147),
];

fuzz_target!(|data: &[u8]| {
    let Some((first, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(*first) % LINKS.len()];
    match packet::parse(link, frame) {
        Ok(p) => {
            let ip = p.ip;
            assert!(p.ip_offset + ip.header().len() <= frame.len());
            let _ = (
                ip.payload_truncated(),
                ip.src(),
                ip.dst(),
                ip.protocol(),
                p.l4,
            );
        }
        Err(e) => {
            let _ = (e.to_string(), e.kind.reason());
        }
    }
});
