//! A minimal classic-pcap writer (nanosecond magic), for tests, benchmarks and lab traffic.

use std::io::{self, Write};

use crate::link::LinkType;

/// Writes a classic pcap file with the nanosecond magic (`a1b23c4d`), little-endian.
///
/// ```
/// use ashiato_wire::capfile::PcapWriter;
/// use ashiato_wire::LinkType;
/// let mut w = PcapWriter::new(Vec::new(), LinkType::Raw, 65535).unwrap();
/// w.write(1_500_000_000_123_456_789, &[0x45, 0, 0, 20]).unwrap();
/// assert_eq!(w.into_inner().len(), 24 + 16 + 4);
/// ```
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header and returns the writer. Packets longer than `snaplen` are cut.
    pub fn new(mut out: W, link: LinkType, snaplen: u32) -> io::Result<Self> {
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        hdr[16..20].copy_from_slice(&snaplen.to_le_bytes());
        hdr[20..24].copy_from_slice(&link.to_pcap().to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter { out, snaplen })
    }

    /// Appends one packet captured at `ts_nanos` (nanoseconds since the Unix epoch).
    ///
    /// Timestamps past the year 2106 do not fit the format's 32-bit seconds and are an error.
    pub fn write(&mut self, ts_nanos: u64, data: &[u8]) -> io::Result<()> {
        self.write_captured(ts_nanos, 0, data)
    }

    /// Appends one packet that was `orig_len` bytes on the wire and of which `data` was
    /// captured (a live capture's snap length already cut it). An `orig_len` below the data's
    /// length is taken as the data's length.
    pub fn write_captured(&mut self, ts_nanos: u64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        let secs = u32::try_from(ts_nanos / 1_000_000_000).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "timestamp does not fit in pcap's 32-bit seconds",
            )
        })?;
        let frac = (ts_nanos % 1_000_000_000) as u32;
        let len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet longer than 4 GiB"))?;
        let orig_len = orig_len.max(len);
        let caplen = len.min(self.snaplen);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&frac.to_le_bytes());
        rec[8..12].copy_from_slice(&caplen.to_le_bytes());
        rec[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&data[..caplen as usize])
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Returns the underlying writer (unflushed: call [`PcapWriter::flush`] first, or flush
    /// it yourself, to see write errors).
    pub fn into_inner(self) -> W {
        self.out
    }
}
