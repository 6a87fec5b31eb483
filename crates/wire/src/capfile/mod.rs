//! Capture files: a pure, incremental decoder for pcap and pcapng, and a small pcap writer.
//!
//! [`Decoder`] never reads a file itself. The IO shell (`ashiato-capture`) hands it a buffer
//! that starts at [`Decoder::offset`]; each [`Decoder::step`] returns one [`Step`] and how many
//! bytes it consumed. A [`Frame`] borrows its bytes from that buffer, so decoding copies and
//! allocates nothing per packet (pcapng interface blocks are kept in a small `Vec`).
//!
//! Supported:
//! - pcap, both byte orders, microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) magic;
//! - pcapng (<https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html>): section
//!   header blocks of either byte order, several sections, interface description blocks with
//!   `if_tsresol` (power of 10 or of 2, default 10^-6) and `if_tsoffset`, enhanced packet
//!   blocks, simple packet blocks (interface 0, no timestamp: 0) and the obsolete packet
//!   block (type 2). Every other block is skipped by its length after its trailer is checked.
//!
//! Limits that mark a file as corrupt rather than merely unusual: a captured length above
//! [`MAX_CAPLEN`] (256 KiB) and a pcapng block above [`MAX_BLOCK`] (16 MiB).

mod pcapng;
mod writer;

#[cfg(test)]
mod tests;

pub use writer::PcapWriter;

use crate::link::LinkType;
use pcapng::Section;

/// Largest captured length accepted in one record (256 KiB); anything larger is corruption.
///
/// Linux captures at most 262144 bytes per packet (tcpdump's default snaplen).
pub const MAX_CAPLEN: u32 = 256 * 1024;

/// Largest pcapng block accepted (16 MiB); anything larger is corruption.
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024;

/// Length of the classic pcap file header.
const PCAP_HEADER_LEN: usize = 24;
/// Length of a classic pcap record header.
const PCAP_RECORD_LEN: usize = 16;

/// One captured packet, borrowed from the decoder's input buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time in nanoseconds since the Unix epoch (saturating).
    pub ts_nanos: u64,
    /// Link layer of `data`.
    pub link: LinkType,
    /// Length of the packet on the wire; may exceed `data.len()` when the snaplen cut it.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// The container format, known once the first header has been decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap format.
    Pcap {
        /// Timestamps are in nanoseconds (magic `a1b23c4d`) rather than microseconds.
        nanos: bool,
        /// The file was written big-endian.
        big_endian: bool,
    },
    /// pcapng (byte order may change per section).
    PcapNg,
}

/// One result of [`Decoder::step`].
#[derive(Clone, Copy, Debug)]
pub enum Step<'a> {
    /// A packet.
    Frame(Frame<'a>),
    /// A file header or a non-packet block was consumed.
    Skip,
    /// The buffer holds no complete unit; nothing was consumed. Supply at least
    /// [`Decoder::needed`] bytes from [`Decoder::offset`].
    NeedMore,
    /// The input is finished (`at_eof` and an empty buffer).
    End,
}

/// Why a capture file could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte offset {offset}: {kind}")]
pub struct FormatError {
    /// Absolute byte offset of the header, record or block that failed.
    pub offset: u64,
    /// What was wrong with it.
    pub kind: FormatErrorKind,
}

/// The kinds of [`FormatError`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatErrorKind {
    /// The file has no bytes at all.
    #[error("empty file")]
    Empty,
    /// The first four bytes (read big-endian) are neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng file (magic number 0x{0:08x})")]
    BadMagic(u32),
    /// A pcapng section header has an unknown byte-order magic.
    #[error("bad pcapng byte-order magic 0x{0:08x}")]
    BadByteOrderMagic(u32),
    /// The file ends inside a header, record or block.
    #[error("truncated file: record needs {needed} bytes, file ends after {available}")]
    Truncated {
        /// Bytes the unit at this offset needs.
        needed: u64,
        /// Bytes left in the file from this offset.
        available: u64,
    },
    /// A record's captured length is implausibly large.
    #[error("captured length {caplen} exceeds the maximum {max}")]
    CaplenTooLarge {
        /// The captured length in the record.
        caplen: u32,
        /// The limit ([`MAX_CAPLEN`]).
        max: u32,
    },
    /// A packet block's captured length runs past the end of its block.
    #[error("captured length {caplen} does not fit in a block of {block_len} bytes")]
    CaplenExceedsBlock {
        /// The captured length in the block.
        caplen: u32,
        /// The block's total length.
        block_len: u32,
    },
    /// A pcapng block's total length is too small, not a multiple of 4 or above [`MAX_BLOCK`].
    #[error("bad pcapng block total length {0}")]
    BadBlockLength(u32),
    /// The length at the end of a pcapng block differs from the one at its start.
    #[error("pcapng block length {header} does not match its trailer {trailer}")]
    BlockTrailerMismatch {
        /// Length in the block header.
        header: u32,
        /// Length in the block trailer.
        trailer: u32,
    },
    /// A packet block names an interface that no interface description block defined.
    #[error("packet refers to undefined interface {0}")]
    UnknownInterface(u32),
    /// A pcapng option runs past the end of its block.
    #[error("pcapng option {code} of length {len} overruns its block")]
    BadOption {
        /// The option code.
        code: u16,
        /// The option length.
        len: u16,
    },
}

impl FormatErrorKind {
    /// Attaches the absolute byte offset where the failing unit starts.
    fn at(self, offset: u64) -> FormatError {
        FormatError { offset, kind: self }
    }
}

/// Decoder state between units.
#[derive(Debug)]
enum State {
    /// Nothing decoded yet: the magic number decides the format.
    Start,
    /// Inside a classic pcap file.
    Pcap {
        nanos: bool,
        big_endian: bool,
        link: LinkType,
    },
    /// Inside a pcapng section.
    PcapNg(Section),
}

/// Incremental, sans-IO decoder of pcap and pcapng capture files.
///
/// It never panics on any input and never allocates per frame.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    offset: u64,
    frames: u64,
    needed: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder positioned at the start of a file.
    pub fn new() -> Self {
        Decoder {
            state: State::Start,
            offset: 0,
            frames: 0,
            needed: 4,
        }
    }

    /// Absolute file offset of the next unit; the next `buf` must start here.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The container format, once its header has been seen.
    pub fn format(&self) -> Option<Format> {
        match &self.state {
            State::Start => None,
            State::Pcap {
                nanos, big_endian, ..
            } => Some(Format::Pcap {
                nanos: *nanos,
                big_endian: *big_endian,
            }),
            State::PcapNg(_) => Some(Format::PcapNg),
        }
    }

    /// Number of frames returned so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// How many bytes from [`Decoder::offset`] the next step needs at least (a hint for the IO
    /// shell after [`Step::NeedMore`]; never above [`MAX_BLOCK`] plus a record header).
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// Decodes the next unit from `buf`, which must start at absolute offset
    /// [`Decoder::offset`]. `at_eof` says that `buf` holds everything left in the file.
    ///
    /// Returns the unit and how many bytes of `buf` it used; [`Step::NeedMore`] and
    /// [`Step::End`] use none.
    pub fn step<'a>(
        &mut self,
        buf: &'a [u8],
        at_eof: bool,
    ) -> Result<(Step<'a>, usize), FormatError> {
        if buf.is_empty() && at_eof {
            return match self.state {
                State::Start => Err(FormatErrorKind::Empty.at(self.offset)),
                _ => Ok((Step::End, 0)),
            };
        }
        let res = match &mut self.state {
            State::Start => self.start(buf),
            State::Pcap {
                nanos,
                big_endian,
                link,
            } => pcap_record(buf, *nanos, *big_endian, *link),
            State::PcapNg(section) => section.block(buf),
        };
        match res {
            Ok(Unit::Frame(frame, used)) => {
                self.offset += used as u64;
                self.frames += 1;
                Ok((Step::Frame(frame), used))
            }
            Ok(Unit::Skip(used)) => {
                self.offset += used as u64;
                Ok((Step::Skip, used))
            }
            Ok(Unit::Need(n)) => {
                self.needed = n;
                if at_eof {
                    Err(FormatErrorKind::Truncated {
                        needed: n as u64,
                        available: buf.len() as u64,
                    }
                    .at(self.offset))
                } else {
                    Ok((Step::NeedMore, 0))
                }
            }
            Err(kind) => Err(kind.at(self.offset)),
        }
    }

    /// The next classic pcap record of `buf` (which starts at [`Decoder::offset`]) and the
    /// bytes it used, when that is all [`Decoder::step`] would do: the file is classic pcap,
    /// the record is complete in `buf` and its captured length is plausible. Otherwise `None`,
    /// and nothing changes: call [`Decoder::step`], which also reports what is wrong.
    ///
    /// The IO shell's hot path: it skips `step`'s dispatch and result wrapping per record.
    #[inline]
    pub fn pcap_frame<'a>(&mut self, buf: &'a [u8]) -> Option<(Frame<'a>, usize)> {
        let State::Pcap {
            nanos,
            big_endian,
            link,
        } = self.state
        else {
            return None;
        };
        let Ok(Unit::Frame(frame, used)) = pcap_record(buf, nanos, big_endian, link) else {
            return None;
        };
        self.offset += used as u64;
        self.frames += 1;
        Some((frame, used))
    }

    /// Reads the magic number and the file (or first section) header.
    fn start<'a>(&mut self, buf: &'a [u8]) -> Result<Unit<'a>, FormatErrorKind> {
        let Some(magic) = be32(buf, 0) else {
            return Ok(Unit::Need(4));
        };
        let pcap = match magic {
            0xa1b2_c3d4 => Some((false, true)),
            0xd4c3_b2a1 => Some((false, false)),
            0xa1b2_3c4d => Some((true, true)),
            0x4d3c_b2a1 => Some((true, false)),
            _ => None,
        };
        if let Some((nanos, big_endian)) = pcap {
            if buf.len() < PCAP_HEADER_LEN {
                return Ok(Unit::Need(PCAP_HEADER_LEN));
            }
            // The link-type field also carries FCS information in its upper bits; the
            // link type itself is the low 16 bits (pcap file format draft, section 4).
            let link = LinkType::from_pcap(rd32(buf, 20, big_endian) & 0xffff);
            self.state = State::Pcap {
                nanos,
                big_endian,
                link,
            };
            self.needed = PCAP_RECORD_LEN;
            return Ok(Unit::Skip(PCAP_HEADER_LEN));
        }
        if magic == pcapng::SHB_TYPE {
            let mut section = Section::default();
            let unit = section.block(buf)?;
            if !matches!(unit, Unit::Need(_)) {
                self.state = State::PcapNg(section);
            }
            return Ok(unit);
        }
        Err(FormatErrorKind::BadMagic(magic))
    }
}

/// What one decoding attempt produced (internal form of [`Step`]).
enum Unit<'a> {
    /// A frame and the bytes it used.
    Frame(Frame<'a>, usize),
    /// A consumed non-packet unit of this many bytes.
    Skip(usize),
    /// The unit needs at least this many bytes.
    Need(usize),
}

/// Decodes one classic pcap record.
#[inline]
fn pcap_record(
    buf: &[u8],
    nanos: bool,
    big_endian: bool,
    link: LinkType,
) -> Result<Unit<'_>, FormatErrorKind> {
    let Some(hdr) = buf.get(..PCAP_RECORD_LEN) else {
        return Ok(Unit::Need(PCAP_RECORD_LEN));
    };
    let caplen = rd32(hdr, 8, big_endian);
    if caplen > MAX_CAPLEN {
        return Err(FormatErrorKind::CaplenTooLarge {
            caplen,
            max: MAX_CAPLEN,
        });
    }
    let total = PCAP_RECORD_LEN + caplen as usize;
    let Some(data) = buf.get(PCAP_RECORD_LEN..total) else {
        return Ok(Unit::Need(total));
    };
    let secs = u64::from(rd32(hdr, 0, big_endian));
    let frac = u64::from(rd32(hdr, 4, big_endian));
    let frac_nanos = if nanos {
        frac
    } else {
        frac.saturating_mul(1000)
    };
    let frame = Frame {
        ts_nanos: secs
            .saturating_mul(1_000_000_000)
            .saturating_add(frac_nanos),
        link,
        orig_len: rd32(hdr, 12, big_endian),
        data,
    };
    Ok(Unit::Frame(frame, total))
}

/// Reads a `u32` at `at` in the given byte order; 0 when out of range (callers check first).
#[inline]
fn rd32(b: &[u8], at: usize, big_endian: bool) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => {
            if big_endian {
                u32::from_be_bytes([a, b, c, d])
            } else {
                u32::from_le_bytes([a, b, c, d])
            }
        }
        _ => 0,
    }
}

/// Reads a `u16` at `at` in the given byte order; 0 when out of range (callers check first).
#[inline]
fn rd16(b: &[u8], at: usize, big_endian: bool) -> u16 {
    match b.get(at..at + 2) {
        Some(&[a, b]) => {
            if big_endian {
                u16::from_be_bytes([a, b])
            } else {
                u16::from_le_bytes([a, b])
            }
        }
        _ => 0,
    }
}

/// Reads a big-endian `u32` at `at`, if present.
#[inline]
fn be32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at.checked_add(4)?) {
        Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}
