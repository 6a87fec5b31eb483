//! Capture files: the IO shell around [`ashiato_wire::capfile::Decoder`].
//!
//! [`FileSource`] reads a pcap or pcapng file in large chunks (1 MiB, grown only when one
//! block needs more, up to the decoder's 16 MiB block limit) and hands out [`Frame`]s borrowed
//! from its buffer: no copy and no allocation per packet. [`MultiFileSource`] merges several
//! files in timestamp order.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ashiato_wire::capfile::{Decoder, Format, MAX_BLOCK, Step};
use ashiato_wire::{Frame, LinkType};

use crate::CaptureError;

/// Initial read buffer: large enough that refills are rare, small enough for many files.
const INITIAL_BUF: usize = 1 << 20;
/// The buffer never grows past one maximal block plus a read's worth of slack.
const MAX_BUF: usize = MAX_BLOCK as usize + INITIAL_BUF;

/// Where a decoded frame sits in its source's buffer; valid until the source advances.
#[derive(Clone, Copy, Debug)]
struct Pos {
    ts_nanos: u64,
    link: LinkType,
    orig_len: u32,
    start: usize,
    end: usize,
}

impl Pos {
    /// The position of `f`, whose bytes lie inside `window`, a view of the buffer starting at
    /// `window_start`: found by address, so that the borrow of the buffer can end here (the
    /// caller re-borrows the bytes).
    #[inline]
    fn of(f: &Frame<'_>, window: &[u8], window_start: usize) -> Pos {
        let rel = f.data.as_ptr() as usize - window.as_ptr() as usize;
        Pos {
            ts_nanos: f.ts_nanos,
            link: f.link,
            orig_len: f.orig_len,
            start: window_start + rel,
            end: window_start + rel + f.data.len(),
        }
    }
}

/// One capture file, decoded frame by frame.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    file: File,
    file_len: u64,
    decoder: Decoder,
    buf: Vec<u8>,
    /// Undecoded bytes are `buf[start..end]`; `buf[start]` is at `decoder.offset()`.
    start: usize,
    end: usize,
    eof: bool,
}

impl FileSource {
    /// Opens a pcap or pcapng file. The format is detected on the first read.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let open_err = |source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_err)?;
        let file_len = file.metadata().map_err(open_err)?.len();
        Ok(FileSource {
            path: path.to_path_buf(),
            file,
            file_len,
            decoder: Decoder::new(),
            buf: vec![0; INITIAL_BUF],
            start: 0,
            end: 0,
            eof: false,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next frame, or `None` at the clean end of the file.
    ///
    /// An empty, truncated or corrupt file is a [`CaptureError::Format`] naming the path and
    /// byte offset.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        Ok(self.advance()?.map(|pos| self.frame_at(pos)))
    }

    /// Bytes of the file decoded so far (for progress bars; reaches [`Self::file_len`]).
    pub fn bytes_read(&self) -> u64 {
        self.decoder.offset()
    }

    /// The file's length when it was opened.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The container format, once the header has been read.
    pub fn format(&self) -> Option<Format> {
        self.decoder.format()
    }

    /// Frames returned so far.
    pub fn frames(&self) -> u64 {
        self.decoder.frames()
    }

    /// Decodes the next frame and returns where it sits in the buffer.
    #[inline]
    fn advance(&mut self) -> Result<Option<Pos>, CaptureError> {
        if let Some(pos) = self.advance_pcap() {
            return Ok(Some(pos));
        }
        loop {
            let window = &self.buf[self.start..self.end];
            let (step, used) =
                self.decoder
                    .step(window, self.eof)
                    .map_err(|source| CaptureError::Format {
                        path: self.path.clone(),
                        source,
                    })?;
            match step {
                Step::Frame(f) => {
                    let pos = Pos::of(&f, window, self.start);
                    self.start += used;
                    return Ok(Some(pos));
                }
                Step::Skip => self.start += used,
                Step::End => return Ok(None),
                Step::NeedMore => self.fill()?,
            }
        }
    }

    /// [`Self::advance`] for a classic pcap record that is whole in the buffer, which needs
    /// none of `step`'s cases and cannot fail; `None` for everything else.
    #[inline]
    fn advance_pcap(&mut self) -> Option<Pos> {
        let window = &self.buf[self.start..self.end];
        let (f, used) = self.decoder.pcap_frame(window)?;
        let pos = Pos::of(&f, window, self.start);
        self.start += used;
        Some(pos)
    }

    /// The frame at `pos` (from the latest [`Self::advance`]).
    #[inline]
    fn frame_at(&self, pos: Pos) -> Frame<'_> {
        Frame {
            ts_nanos: pos.ts_nanos,
            link: pos.link,
            orig_len: pos.orig_len,
            data: &self.buf[pos.start..pos.end],
        }
    }

    /// Moves the undecoded tail to the front, grows the buffer if the pending unit needs it,
    /// and reads more of the file (setting `eof` when there is no more).
    fn fill(&mut self) -> Result<(), CaptureError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // The decoder says how much the pending unit needs; make sure there is room for it
        // and for at least one more byte.
        let want = self.decoder.needed().max(self.end + 1);
        if want > self.buf.len() {
            let len = want.max((self.buf.len() * 2).min(MAX_BUF));
            self.buf.resize(len, 0);
        }
        loop {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(CaptureError::Read {
                        path: self.path.clone(),
                        offset: self.decoder.offset() + self.end as u64,
                        source,
                    });
                }
            }
        }
    }
}

/// Several capture files merged in timestamp order.
///
/// Each file is assumed to be roughly in time order by itself; the merge always returns the
/// file whose next frame is earliest (ties go to the file listed first). Each file keeps its
/// own buffer, so frames are still borrowed, never copied.
#[derive(Debug)]
pub struct MultiFileSource {
    sources: Vec<FileSource>,
    /// Each file's next frame, `None` once the file is finished.
    heads: Vec<Option<Pos>>,
    /// The file whose head was returned last and must advance before the next pick.
    returned: Option<usize>,
    /// Frames returned so far.
    delivered: u64,
}

impl MultiFileSource {
    /// Opens every file and reads its first frame.
    pub fn open(paths: &[PathBuf]) -> Result<Self, CaptureError> {
        let mut sources = Vec::with_capacity(paths.len());
        let mut heads = Vec::with_capacity(paths.len());
        for p in paths {
            let mut s = FileSource::open(p)?;
            heads.push(s.advance()?);
            sources.push(s);
        }
        Ok(MultiFileSource {
            sources,
            heads,
            returned: None,
            delivered: 0,
        })
    }

    /// The next frame of all files in timestamp order, with the index of its file in the
    /// `paths` given to [`Self::open`]; `None` when every file is finished.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<(usize, Frame<'_>)>, CaptureError> {
        // One file, the common case: nothing to merge.
        if self.sources.len() == 1 {
            if self.returned.take().is_some() {
                let src = &mut self.sources[0];
                self.heads[0] = match src.advance_pcap() {
                    Some(pos) => Some(pos),
                    None => src.advance()?,
                };
            }
            let Some(pos) = self.heads[0] else {
                return Ok(None);
            };
            self.returned = Some(0);
            self.delivered += 1;
            return Ok(Some((0, self.sources[0].frame_at(pos))));
        }
        if let Some(i) = self.returned.take() {
            self.heads[i] = self.sources[i].advance()?;
        }
        let mut best: Option<(usize, Pos)> = None;
        for (i, head) in self.heads.iter().enumerate() {
            if let Some(pos) = head
                && best.is_none_or(|(_, b)| pos.ts_nanos < b.ts_nanos)
            {
                best = Some((i, *pos));
            }
        }
        Ok(best.map(|(i, pos)| {
            self.returned = Some(i);
            self.delivered += 1;
            (i, self.sources[i].frame_at(pos))
        }))
    }

    /// Frames returned so far over all files.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The files being merged, in the order given.
    pub fn sources(&self) -> &[FileSource] {
        &self.sources
    }

    /// Bytes decoded so far over all files.
    pub fn bytes_read(&self) -> u64 {
        self.sources.iter().map(FileSource::bytes_read).sum()
    }

    /// Total length of all files.
    pub fn file_len(&self) -> u64 {
        self.sources.iter().map(FileSource::file_len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{FileSource, MultiFileSource};
    use crate::CaptureError;
    use ashiato_wire::LinkType;
    use ashiato_wire::capfile::{Format, FormatErrorKind, PcapWriter};
    use std::io::Write;
    use std::path::{Path, PathBuf};

    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data")
            .join(name)
    }

    /// Reads every frame; returns (count, first ts, last ts, total captured bytes).
    fn drain(path: &Path) -> Result<(u64, u64, u64, u64), CaptureError> {
        let mut s = FileSource::open(path)?;
        let (mut n, mut first, mut last, mut bytes) = (0, 0, 0, 0);
        while let Some(f) = s.next_frame()? {
            if n == 0 {
                first = f.ts_nanos;
            }
            last = f.ts_nanos;
            bytes += f.data.len() as u64;
            n += 1;
        }
        assert_eq!(s.bytes_read(), s.file_len());
        assert_eq!(s.frames(), n);
        Ok((n, first, last, bytes))
    }

    fn temp_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(bytes).unwrap();
        t.flush().unwrap();
        t
    }

    #[test]
    fn real_files_exact_counts_and_times() {
        // Counts and first/last timestamps cross-checked with `tcpdump -nr FILE --nano -tt`.
        let cases = [
            (
                "cs-synscan.pcapng",
                2011,
                1_278_275_056_274_870_000,
                1_278_275_079_360_213_000,
            ),
            (
                "esnet-masscan-tcp_0_1000_20190821.pcap",
                1005,
                1_566_411_407_841_604_000,
                1_566_411_417_888_982_000,
            ),
            (
                "zeek-web.pcap",
                24,
                1_128_727_430_350_788_000,
                1_128_727_437_184_931_000,
            ),
            (
                "stopddos-amp.dns.RRSIG.fragmented-first120.pcap",
                120,
                1_632_239_124_430_031_000,
                1_632_239_125_242_222_000,
            ),
        ];
        for (name, count, first, last) in cases {
            let (n, f, l, _) = drain(&data(name)).unwrap();
            assert_eq!((n, f, l), (count, first, last), "{name}");
        }
        let mut s = FileSource::open(&data("cs-synscan.pcapng")).unwrap();
        assert_eq!(s.format(), None);
        assert_eq!(s.next_frame().unwrap().unwrap().link, LinkType::Ethernet);
        assert_eq!(s.format(), Some(Format::PcapNg));
    }

    #[test]
    fn truncated_real_files_name_file_and_offset() {
        for name in ["cs-synscan.pcapng", "zeek-web.pcap"] {
            let bytes = std::fs::read(data(name)).unwrap();
            for cut in [
                1,
                3,
                23,
                30,
                100,
                1000,
                bytes.len() / 2 + 1,
                bytes.len() - 1,
            ] {
                let t = temp_with(&bytes[..cut]);
                let err = drain(t.path()).unwrap_err();
                let CaptureError::Format { source, .. } = &err else {
                    panic!("{name} cut at {cut}: {err}")
                };
                assert!(
                    matches!(source.kind, FormatErrorKind::Truncated { .. }),
                    "{name} cut at {cut}: {err}"
                );
                let msg = err.to_string();
                assert!(!msg.contains('\n'));
                assert!(msg.contains(&t.path().display().to_string()), "{msg}");
                assert!(
                    msg.contains(&format!("at byte offset {}", source.offset)),
                    "{msg}"
                );
            }
        }
    }

    #[test]
    fn empty_and_bad_magic() {
        let t = temp_with(b"");
        let err = drain(t.path()).unwrap_err();
        assert!(
            err.to_string().ends_with(": at byte offset 0: empty file"),
            "{err}"
        );
        let t = temp_with(b"<html><body>not a capture</body></html>");
        let err = drain(t.path()).unwrap_err();
        assert!(
            err.to_string().contains("not a pcap or pcapng file"),
            "{err}"
        );
        let err = FileSource::open(Path::new("no/such/file.pcap")).unwrap_err();
        assert!(matches!(err, CaptureError::Open { .. }));
    }

    #[test]
    fn corrupt_trailer_in_real_pcapng() {
        let mut bytes = std::fs::read(data("cs-synscan.pcapng")).unwrap();
        // The section header's length is at 4..8 (little-endian); its trailer follows it.
        let shb_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        bytes[shb_len - 4] ^= 0x08;
        let t = temp_with(&bytes);
        let err = drain(t.path()).unwrap_err();
        let CaptureError::Format { source, .. } = err else {
            panic!()
        };
        assert_eq!(source.offset, 0);
        assert!(matches!(
            source.kind,
            FormatErrorKind::BlockTrailerMismatch { .. }
        ));
    }

    #[test]
    fn large_packets_grow_the_buffer() {
        // Records of 200 KiB each: several do not fit the initial 1 MiB buffer at once.
        let mut w = PcapWriter::new(Vec::new(), LinkType::Raw, 256 * 1024).unwrap();
        for i in 0..12u64 {
            w.write(i, &vec![i as u8; 200 * 1024]).unwrap();
        }
        let t = temp_with(&w.into_inner());
        let mut s = FileSource::open(t.path()).unwrap();
        let mut i = 0u64;
        while let Some(f) = s.next_frame().unwrap() {
            assert_eq!(
                (f.ts_nanos, f.data.len(), f.data[0]),
                (i, 200 * 1024, i as u8)
            );
            i += 1;
        }
        assert_eq!(i, 12);
    }

    #[test]
    fn multi_file_merge_in_time_order() {
        let mk = |ts: &[u64]| {
            let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet, 65535).unwrap();
            for t in ts {
                w.write(*t, &t.to_be_bytes()).unwrap();
            }
            temp_with(&w.into_inner())
        };
        let a = mk(&[1, 5, 5, 9]);
        let b = mk(&[2, 5, 10]);
        let c = mk(&[]);
        let paths = vec![
            a.path().to_path_buf(),
            c.path().to_path_buf(),
            b.path().to_path_buf(),
        ];
        let mut m = MultiFileSource::open(&paths).unwrap();
        let mut got = Vec::new();
        while let Some((i, f)) = m.next_frame().unwrap() {
            assert_eq!(f.data, f.ts_nanos.to_be_bytes());
            got.push((i, f.ts_nanos));
        }
        assert_eq!(
            got,
            vec![(0, 1), (2, 2), (0, 5), (0, 5), (2, 5), (0, 9), (2, 10)]
        );
        assert_eq!(m.bytes_read(), m.file_len());
        assert!(m.next_frame().unwrap().is_none());
    }

    #[test]
    fn multi_file_real_captures() {
        let paths = vec![data("zeek-web.pcap"), data("cs-synscan.pcapng")];
        let mut m = MultiFileSource::open(&paths).unwrap();
        let (mut n, mut last, mut per) = (0, 0, [0; 2]);
        while let Some((i, f)) = m.next_frame().unwrap() {
            assert!(f.ts_nanos >= last);
            last = f.ts_nanos;
            per[i] += 1;
            n += 1;
        }
        assert_eq!((n, per), (2035, [24, 2011]));
    }
}
