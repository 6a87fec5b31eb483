//! Byte-fixture and property tests of the capture-file decoder.

use super::{Decoder, Format, FormatError, FormatErrorKind, MAX_CAPLEN, PcapWriter, Step};
use crate::link::LinkType;
use proptest::prelude::{any, prop, proptest};

/// A frame as owned test data: (ts_nanos, link, orig_len, data).
type Owned = (u64, LinkType, u32, Vec<u8>);

/// Decodes a whole file held in memory.
fn decode_all(buf: &[u8]) -> Result<Vec<Owned>, FormatError> {
    let mut d = Decoder::new();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        let (step, used) = d.step(&buf[pos..], true)?;
        pos += used;
        match step {
            Step::Frame(f) => out.push((f.ts_nanos, f.link, f.orig_len, f.data.to_vec())),
            Step::Skip => {}
            Step::NeedMore => panic!("NeedMore at eof"),
            Step::End => return Ok(out),
        }
    }
}

/// Decodes a file fed in chunks of `chunk` bytes, as an IO shell would.
fn decode_chunked(file: &[u8], chunk: usize) -> Result<Vec<Owned>, FormatError> {
    let mut d = Decoder::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut out = Vec::new();
    loop {
        let at_eof = fed == file.len();
        let (step, used) = d.step(&buf, at_eof)?;
        match step {
            Step::Frame(f) => out.push((f.ts_nanos, f.link, f.orig_len, f.data.to_vec())),
            Step::Skip => {}
            Step::NeedMore => {
                assert_eq!(used, 0);
                let end = (fed + chunk).min(file.len());
                buf.extend_from_slice(&file[fed..end]);
                fed = end;
            }
            Step::End => return Ok(out),
        }
        buf.drain(..used);
        assert_eq!(d.offset(), (fed - buf.len()) as u64);
    }
}

/// Appends one pcapng block with the given type and body (padded to 32 bits).
fn block(out: &mut Vec<u8>, be: bool, ty: u32, body: &[u8]) {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    out.extend_from_slice(&w(ty));
    out.extend_from_slice(&w(len));
    out.extend_from_slice(body);
    out.extend(std::iter::repeat_n(0, pad));
    out.extend_from_slice(&w(len));
}

/// Little helper to write integers in a chosen byte order.
struct Ord(bool);
impl Ord {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.0 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.0 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
}

fn shb(out: &mut Vec<u8>, be: bool) {
    let o = Ord(be);
    let mut body = Vec::new();
    body.extend_from_slice(&o.u32(0x1A2B_3C4D));
    body.extend_from_slice(&o.u16(1));
    body.extend_from_slice(&o.u16(0));
    body.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
    block(out, be, 0x0A0D_0D0A, &body);
}

/// An IDB with optional `if_tsresol` and `if_tsoffset`.
fn idb(out: &mut Vec<u8>, be: bool, link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
    let o = Ord(be);
    let mut body = Vec::new();
    body.extend_from_slice(&o.u16(link));
    body.extend_from_slice(&o.u16(0));
    body.extend_from_slice(&o.u32(65535));
    // An unrelated option first (if_name), to exercise padding.
    body.extend_from_slice(&o.u16(2));
    body.extend_from_slice(&o.u16(5));
    body.extend_from_slice(b"eth0\0\0\0\0");
    if let Some(r) = tsresol {
        body.extend_from_slice(&o.u16(9));
        body.extend_from_slice(&o.u16(1));
        body.extend_from_slice(&[r, 0, 0, 0]);
    }
    if let Some(s) = tsoffset {
        body.extend_from_slice(&o.u16(14));
        body.extend_from_slice(&o.u16(8));
        body.extend_from_slice(&if be { s.to_be_bytes() } else { s.to_le_bytes() });
    }
    body.extend_from_slice(&[0; 4]); // opt_endofopt
    block(out, be, 1, &body);
}

fn epb(out: &mut Vec<u8>, be: bool, iface: u32, units: u64, data: &[u8], orig: u32) {
    let o = Ord(be);
    let mut body = Vec::new();
    body.extend_from_slice(&o.u32(iface));
    body.extend_from_slice(&o.u32((units >> 32) as u32));
    body.extend_from_slice(&o.u32(units as u32));
    body.extend_from_slice(&o.u32(data.len() as u32));
    body.extend_from_slice(&o.u32(orig));
    body.extend_from_slice(data);
    block(out, be, 6, &body);
}

fn pcap_header(be: bool, nanos: bool, link: u32) -> Vec<u8> {
    let o = Ord(be);
    let mut v = Vec::new();
    v.extend_from_slice(&o.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    v.extend_from_slice(&o.u16(2));
    v.extend_from_slice(&o.u16(4));
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&o.u32(65535));
    v.extend_from_slice(&o.u32(link));
    v
}

fn pcap_record(v: &mut Vec<u8>, be: bool, secs: u32, frac: u32, data: &[u8], orig: u32) {
    let o = Ord(be);
    v.extend_from_slice(&o.u32(secs));
    v.extend_from_slice(&o.u32(frac));
    v.extend_from_slice(&o.u32(data.len() as u32));
    v.extend_from_slice(&o.u32(orig));
    v.extend_from_slice(data);
}

/// A pcapng file: LE section with an Ethernet IDB at ns resolution, one EPB, one SPB, a
/// custom block, then a BE section with a raw-IP IDB at 2^-10 s and an offset.
fn sample_pcapng() -> Vec<u8> {
    let mut f = Vec::new();
    shb(&mut f, false);
    idb(&mut f, false, 1, Some(9), None);
    epb(&mut f, false, 0, 1_600_000_000_123_456_789, &[1, 2, 3], 60);
    block(
        &mut f,
        false,
        3,
        &[&4u32.to_le_bytes()[..], &[9, 8, 7, 6]].concat(),
    );
    block(&mut f, false, 0x0BAD, &[0xee; 7]); // custom block: skipped
    shb(&mut f, true);
    idb(&mut f, true, 101, Some(0x80 | 10), Some(100));
    epb(&mut f, true, 0, 2048 + 512, &[0x45; 5], 5);
    f
}

#[test]
fn pcap_both_orders_and_resolutions() {
    for be in [false, true] {
        for nanos in [false, true] {
            let mut f = pcap_header(be, nanos, 1);
            pcap_record(&mut f, be, 1_000, 5, &[0xaa; 14], 64);
            pcap_record(&mut f, be, 1_001, 0, &[], 0);
            let frames = decode_all(&f).unwrap();
            let unit = if nanos { 1 } else { 1000 };
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[0].0, 1_000_000_000_000 + 5 * unit);
            assert_eq!(frames[0].1, LinkType::Ethernet);
            assert_eq!(frames[0].2, 64);
            assert_eq!(frames[0].3, vec![0xaa; 14]);
            assert_eq!(frames[1].0, 1_001_000_000_000);
            let mut d = Decoder::new();
            d.step(&f, true).unwrap();
            assert_eq!(
                d.format(),
                Some(Format::Pcap {
                    nanos,
                    big_endian: be
                })
            );
        }
    }
}

#[test]
fn pcap_link_type_fcs_bits_ignored() {
    let f = pcap_header(false, false, 0x1000_0000 | 113);
    let mut d = Decoder::new();
    d.step(&f, false).unwrap();
    let mut f2 = f.clone();
    pcap_record(&mut f2, false, 1, 1, &[0], 1);
    assert_eq!(decode_all(&f2).unwrap()[0].1, LinkType::LinuxSll);
}

#[test]
fn pcapng_sections_blocks_and_timestamps() {
    let frames = decode_all(&sample_pcapng()).unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(
        frames[0],
        (
            1_600_000_000_123_456_789,
            LinkType::Ethernet,
            60,
            vec![1, 2, 3]
        )
    );
    // SPB: interface 0, no timestamp, caplen = min(orig_len, room in block).
    assert_eq!(frames[1], (0, LinkType::Ethernet, 4, vec![9, 8, 7, 6]));
    // 2560 units of 2^-10 s = 2.5 s, plus 100 s offset.
    assert_eq!(
        frames[2],
        (102_500_000_000, LinkType::Raw, 5, vec![0x45; 5])
    );
}

#[test]
fn pcapng_default_resolution_is_microseconds() {
    let mut f = Vec::new();
    shb(&mut f, false);
    idb(&mut f, false, 1, None, None);
    epb(&mut f, false, 0, 7, &[0], 1);
    idb(&mut f, false, 1, Some(12), Some(-1));
    epb(&mut f, false, 1, 2_000_000_000_000_000, &[0], 1);
    let frames = decode_all(&f).unwrap();
    assert_eq!(frames[0].0, 7_000);
    assert_eq!(frames[1].0, 2_000_000_000_000 - 1_000_000_000);
}

#[test]
fn pcapng_obsolete_packet_block() {
    let mut f = Vec::new();
    shb(&mut f, false);
    idb(&mut f, false, 1, Some(9), None);
    let mut body = Vec::new();
    body.extend_from_slice(&0u16.to_le_bytes()); // interface
    body.extend_from_slice(&0u16.to_le_bytes()); // drops
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&42u32.to_le_bytes());
    body.extend_from_slice(&2u32.to_le_bytes());
    body.extend_from_slice(&2u32.to_le_bytes());
    body.extend_from_slice(&[5, 6]);
    block(&mut f, false, 2, &body);
    assert_eq!(
        decode_all(&f).unwrap(),
        vec![(42, LinkType::Ethernet, 2, vec![5, 6])]
    );
}

#[test]
fn chunked_feeding_matches_whole_buffer() {
    let f = sample_pcapng();
    let whole = decode_all(&f).unwrap();
    for chunk in [1, 3, 7, 64, 4096] {
        assert_eq!(decode_chunked(&f, chunk).unwrap(), whole, "chunk {chunk}");
    }
}

#[test]
fn empty_file() {
    let err = decode_all(&[]).unwrap_err();
    assert_eq!(err.kind, FormatErrorKind::Empty);
    assert_eq!(err.to_string(), "at byte offset 0: empty file");
}

#[test]
fn bad_magic() {
    let err = decode_all(b"GIF89a......").unwrap_err();
    assert_eq!(err.kind, FormatErrorKind::BadMagic(0x4749_4638));
    assert!(err.to_string().contains("0x47494638"), "{err}");
}

#[test]
fn truncation_at_every_offset_is_an_error_with_offset() {
    for f in [sample_pcapng(), {
        let mut f = pcap_header(false, true, 1);
        pcap_record(&mut f, false, 1, 2, &[7; 30], 30);
        pcap_record(&mut f, false, 1, 2, &[7; 30], 30);
        f
    }] {
        let whole = decode_all(&f).unwrap();
        // Unit boundaries: a file cut there is shorter but not truncated.
        let mut bounds = Vec::new();
        let mut d = Decoder::new();
        while let Ok((step, _)) = d.step(&f[d.offset() as usize..], true) {
            if matches!(step, Step::End) {
                break;
            }
            bounds.push(d.offset() as usize);
        }
        for cut in 1..f.len() {
            if bounds.contains(&cut) {
                let frames = decode_all(&f[..cut]).unwrap();
                assert_eq!(frames[..], whole[..frames.len()]);
                continue;
            }
            let err = decode_all(&f[..cut]).unwrap_err();
            let FormatErrorKind::Truncated { needed, available } = err.kind else {
                panic!("cut {cut}: {err}")
            };
            assert!(needed > available);
            assert_eq!(err.offset + available, cut as u64);
            let msg = err.to_string();
            assert!(!msg.contains('\n'));
            assert!(msg.starts_with(&format!("at byte offset {}: truncated", err.offset)));
        }
        assert!(!whole.is_empty());
    }
}

#[test]
fn trailer_mismatch() {
    let mut f = sample_pcapng();
    // The first block is the 28-byte SHB; its trailer is bytes 24..28.
    f[24] ^= 0x40;
    let err = decode_all(&f).unwrap_err();
    assert_eq!(
        err,
        FormatError {
            offset: 0,
            kind: FormatErrorKind::BlockTrailerMismatch {
                header: 28,
                trailer: 28 ^ 0x40
            }
        }
    );
}

#[test]
fn bad_block_lengths() {
    for len in [0u32, 8, 30, MAX_CAPLEN * 100] {
        let mut f = Vec::new();
        shb(&mut f, false);
        f.extend_from_slice(&6u32.to_le_bytes());
        f.extend_from_slice(&len.to_le_bytes());
        f.extend_from_slice(&[0; 64]);
        let err = decode_all(&f).unwrap_err();
        assert_eq!(err.offset, 28);
        assert_eq!(err.kind, FormatErrorKind::BadBlockLength(len));
    }
}

#[test]
fn caplen_too_large_and_unknown_interface() {
    let mut f = pcap_header(false, false, 1);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
    f.extend_from_slice(&[0; 4]);
    assert_eq!(
        decode_all(&f).unwrap_err(),
        FormatError {
            offset: 24,
            kind: FormatErrorKind::CaplenTooLarge {
                caplen: MAX_CAPLEN + 1,
                max: MAX_CAPLEN
            }
        }
    );
    let mut g = Vec::new();
    shb(&mut g, false);
    idb(&mut g, false, 1, None, None);
    epb(&mut g, false, 3, 0, &[1], 1);
    assert_eq!(
        decode_all(&g).unwrap_err().kind,
        FormatErrorKind::UnknownInterface(3)
    );
}

#[test]
fn new_section_forgets_interfaces() {
    let mut f = Vec::new();
    shb(&mut f, false);
    idb(&mut f, false, 1, None, None);
    shb(&mut f, false);
    epb(&mut f, false, 0, 0, &[1], 1);
    assert_eq!(
        decode_all(&f).unwrap_err().kind,
        FormatErrorKind::UnknownInterface(0)
    );
}

#[test]
fn epb_caplen_past_block_end() {
    let mut f = Vec::new();
    shb(&mut f, false);
    idb(&mut f, false, 1, None, None);
    let start = f.len();
    epb(&mut f, false, 0, 0, &[1, 2, 3, 4], 4);
    f[start + 20] = 9; // caplen 9 in a block with room for 4
    assert_eq!(
        decode_all(&f).unwrap_err().kind,
        FormatErrorKind::CaplenExceedsBlock {
            caplen: 9,
            block_len: 36
        }
    );
}

#[test]
fn writer_round_trip() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet, 4).unwrap();
    w.write(1_234_567_890_987_654_321, &[1, 2, 3, 4, 5, 6])
        .unwrap();
    w.write(5, &[9]).unwrap();
    let bytes = w.into_inner();
    assert_eq!(
        decode_all(&bytes).unwrap(),
        vec![
            (
                1_234_567_890_987_654_321,
                LinkType::Ethernet,
                6,
                vec![1, 2, 3, 4]
            ),
            (5, LinkType::Ethernet, 1, vec![9]),
        ]
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_all(&bytes);
        let _ = decode_chunked(&bytes, 5);
    }

    #[test]
    fn mutated_pcapng_never_panics(idx in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut f = sample_pcapng();
        let i = idx.index(f.len());
        f[i] = byte;
        let _ = decode_all(&f);
    }

    #[test]
    fn writer_decoder_round_trip(
        pkts in prop::collection::vec(
            (0u64..4_000_000_000_000_000_000, prop::collection::vec(any::<u8>(), 0..100)),
            0..20,
        )
    ) {
        let mut w = PcapWriter::new(Vec::new(), LinkType::Raw, 65535).unwrap();
        for (ts, data) in &pkts {
            w.write(*ts, data).unwrap();
        }
        let bytes = w.into_inner();
        let got = decode_all(&bytes).unwrap();
        let want: Vec<Owned> = pkts
            .iter()
            .map(|(ts, d)| (*ts, LinkType::Raw, d.len() as u32, d.clone()))
            .collect();
        proptest::prop_assert_eq!(got, want);
    }
}

#[test]
fn pcap_frame_is_step_on_whole_records_and_nothing_else() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet, 65535).unwrap();
    for i in 0..3u64 {
        w.write(i * 1_000, &vec![i as u8; 10 + i as usize]).unwrap();
    }
    let file = w.into_inner();
    // Before the header is read, only `step` decodes.
    let mut d = Decoder::new();
    assert!(d.pcap_frame(&file).is_none());
    let (_, used) = d.step(&file, true).unwrap();
    // Every prefix of the records: a frame exactly when `step` gives one, with the same bytes.
    let body = &file[used..];
    for cut in 0..=body.len() {
        let mut fast = Decoder::new();
        fast.step(&file, true).unwrap();
        let mut slow = Decoder::new();
        slow.step(&file, true).unwrap();
        let got = fast
            .pcap_frame(&body[..cut])
            .map(|(f, n)| (f.ts_nanos, f.data, n));
        let want = match slow.step(&body[..cut], false).unwrap() {
            (Step::Frame(f), n) => Some((f.ts_nanos, f.data, n)),
            _ => None,
        };
        assert_eq!(got, want, "cut {cut}");
        assert_eq!(
            (fast.offset(), fast.frames()),
            (slow.offset(), slow.frames())
        );
    }
}
