//! pcapng blocks: section state, interface descriptions and packet blocks.
//!
//! Block layout and option codes follow the pcapng draft
//! (draft-ietf-opsawg-pcapng, sections 4.1-4.4 and 4.6).

use super::{FormatErrorKind, Frame, MAX_BLOCK, MAX_CAPLEN, Unit, rd16, rd32};
use crate::link::LinkType;

/// Section Header Block type (a byte palindrome, so it reads the same in either order).
pub(super) const SHB_TYPE: u32 = 0x0A0D_0D0A;
/// Interface Description Block.
const IDB_TYPE: u32 = 1;
/// Obsolete Packet Block.
const PB_TYPE: u32 = 2;
/// Simple Packet Block.
const SPB_TYPE: u32 = 3;
/// Enhanced Packet Block.
const EPB_TYPE: u32 = 6;
/// The byte-order magic of a section header, as read in the section's own byte order.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Option code of `if_tsresol`.
const OPT_IF_TSRESOL: u16 = 9;
/// Option code of `if_tsoffset`.
const OPT_IF_TSOFFSET: u16 = 14;

/// How to turn a block timestamp (in interface units) into nanoseconds.
#[derive(Clone, Copy, Debug)]
enum TsScale {
    /// Units are 10^-k with k <= 9: multiply.
    Mul(u64),
    /// Units are 10^-k with k > 9: divide.
    Div(u64),
    /// Units are 2^-p: multiply by 10^9, shift right by p.
    Shift(u32),
}

impl TsScale {
    /// Decodes an `if_tsresol` byte: high bit clear is a power of 10, set a power of 2.
    fn from_tsresol(v: u8) -> Self {
        if v & 0x80 != 0 {
            return TsScale::Shift(u32::from(v & 0x7f));
        }
        let k = u32::from(v);
        if k <= 9 {
            TsScale::Mul(10u64.pow(9 - k))
        } else {
            // 10^(k-9) overflows u64 past k = 28; such a unit is below 10^-19 ns anyway.
            TsScale::Div(10u64.checked_pow(k - 9).unwrap_or(u64::MAX))
        }
    }

    #[inline]
    fn nanos(self, units: u64) -> u64 {
        match self {
            TsScale::Mul(m) => units.saturating_mul(m),
            TsScale::Div(d) => units / d,
            TsScale::Shift(p) => {
                let n = (u128::from(units) * 1_000_000_000) >> p;
                u64::try_from(n).unwrap_or(u64::MAX)
            }
        }
    }
}

/// One interface of the current section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    scale: TsScale,
    /// `if_tsoffset` in nanoseconds (seconds in the file).
    offset_nanos: i64,
}

impl Interface {
    #[inline]
    fn ts(&self, units: u64) -> u64 {
        let ns = self.scale.nanos(units);
        if self.offset_nanos >= 0 {
            ns.saturating_add(self.offset_nanos.unsigned_abs())
        } else {
            ns.saturating_sub(self.offset_nanos.unsigned_abs())
        }
    }
}

/// The state of the current pcapng section: byte order and interfaces.
#[derive(Debug, Default)]
pub(super) struct Section {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

impl Section {
    /// Decodes one block at the start of `buf`.
    pub(super) fn block<'a>(&mut self, buf: &'a [u8]) -> Result<Unit<'a>, FormatErrorKind> {
        if buf.len() < 8 {
            return Ok(Unit::Need(8));
        }
        let mut be = self.big_endian;
        let block_type = rd32(buf, 0, be);
        if block_type == SHB_TYPE {
            if buf.len() < 12 {
                return Ok(Unit::Need(12));
            }
            be = match rd32(buf, 8, false) {
                BYTE_ORDER_MAGIC => false,
                0x4D3C_2B1A => true,
                _ => return Err(FormatErrorKind::BadByteOrderMagic(rd32(buf, 8, true))),
            };
        }
        let len = rd32(buf, 4, be);
        if len < 12 || !len.is_multiple_of(4) || len > MAX_BLOCK {
            return Err(FormatErrorKind::BadBlockLength(len));
        }
        let n = len as usize;
        let Some(block) = buf.get(..n) else {
            return Ok(Unit::Need(n));
        };
        let trailer = rd32(block, n - 4, be);
        if trailer != len {
            return Err(FormatErrorKind::BlockTrailerMismatch {
                header: len,
                trailer,
            });
        }
        match block_type {
            SHB_TYPE => {
                // Type, length, byte-order magic, versions, section length, trailer.
                if len < 28 {
                    return Err(FormatErrorKind::BadBlockLength(len));
                }
                self.big_endian = be;
                self.interfaces.clear();
                Ok(Unit::Skip(n))
            }
            IDB_TYPE => {
                self.interface(block)?;
                Ok(Unit::Skip(n))
            }
            EPB_TYPE | PB_TYPE => {
                if len < 32 {
                    return Err(FormatErrorKind::BadBlockLength(len));
                }
                let id = if block_type == EPB_TYPE {
                    rd32(block, 8, be)
                } else {
                    u32::from(rd16(block, 8, be))
                };
                let units = (u64::from(rd32(block, 12, be)) << 32) | u64::from(rd32(block, 16, be));
                let caplen = rd32(block, 20, be);
                let orig_len = rd32(block, 24, be);
                let data = packet_data(block, 28, caplen, len)?;
                let iface = self.iface(id)?;
                let frame = Frame {
                    ts_nanos: iface.ts(units),
                    link: iface.link,
                    orig_len,
                    data,
                };
                Ok(Unit::Frame(frame, n))
            }
            SPB_TYPE => {
                if len < 16 {
                    return Err(FormatErrorKind::BadBlockLength(len));
                }
                let orig_len = rd32(block, 8, be);
                // The captured length is implied: the smaller of the original length and the
                // room in the block (the data is padded to 32 bits).
                let caplen = orig_len.min(len - 16);
                let data = packet_data(block, 12, caplen, len)?;
                let iface = self.iface(0)?;
                let frame = Frame {
                    ts_nanos: 0,
                    link: iface.link,
                    orig_len,
                    data,
                };
                Ok(Unit::Frame(frame, n))
            }
            _ => Ok(Unit::Skip(n)),
        }
    }

    #[inline]
    fn iface(&self, id: u32) -> Result<&Interface, FormatErrorKind> {
        self.interfaces
            .get(id as usize)
            .ok_or(FormatErrorKind::UnknownInterface(id))
    }

    /// Decodes an Interface Description Block (already length-checked) and records it.
    fn interface(&mut self, block: &[u8]) -> Result<(), FormatErrorKind> {
        let be = self.big_endian;
        let n = block.len();
        // Type, length, link type, reserved, snaplen, trailer.
        if n < 20 {
            return Err(FormatErrorKind::BadBlockLength(n as u32));
        }
        let mut iface = Interface {
            link: LinkType::from_pcap(u32::from(rd16(block, 8, be))),
            scale: TsScale::Mul(1000),
            offset_nanos: 0,
        };
        let opts = block.get(16..n - 4).unwrap_or_default();
        let mut pos = 0usize;
        while pos + 4 <= opts.len() {
            let code = rd16(opts, pos, be);
            let olen = rd16(opts, pos + 2, be);
            if code == 0 {
                break;
            }
            let start = pos + 4;
            let Some(value) = opts.get(start..start + usize::from(olen)) else {
                return Err(FormatErrorKind::BadOption { code, len: olen });
            };
            match (code, value) {
                (OPT_IF_TSRESOL, [v, ..]) => iface.scale = TsScale::from_tsresol(*v),
                (OPT_IF_TSOFFSET, [a, b, c, d, e, f, g, h, ..]) => {
                    let raw = [*a, *b, *c, *d, *e, *f, *g, *h];
                    let secs = if be {
                        i64::from_be_bytes(raw)
                    } else {
                        i64::from_le_bytes(raw)
                    };
                    iface.offset_nanos = secs.saturating_mul(1_000_000_000);
                }
                _ => {}
            }
            pos = start + usize::from(olen).next_multiple_of(4);
        }
        self.interfaces.push(iface);
        Ok(())
    }
}

/// The captured bytes of a packet block: `caplen` bytes from `at`, which must fit before the
/// 4-byte trailer of a block of `len` bytes.
#[inline]
fn packet_data(block: &[u8], at: usize, caplen: u32, len: u32) -> Result<&[u8], FormatErrorKind> {
    if caplen > MAX_CAPLEN {
        return Err(FormatErrorKind::CaplenTooLarge {
            caplen,
            max: MAX_CAPLEN,
        });
    }
    let end = at + caplen as usize;
    if end > block.len().saturating_sub(4) {
        return Err(FormatErrorKind::CaplenExceedsBlock {
            caplen,
            block_len: len,
        });
    }
    Ok(block.get(at..end).unwrap_or_default())
}
