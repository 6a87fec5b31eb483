//! Live capture from a Linux interface: an AF_PACKET socket with a TPACKET_V3 receive ring.
//!
//! # The ring
//!
//! `PACKET_RX_RING` with `TPACKET_V3` asks the kernel for `block_count` blocks of `block_size`
//! bytes, which this process maps once with `mmap`. Each block starts with a block descriptor
//! (`tpacket_block_desc`: status, number of packets, offset of the first packet) followed by
//! packets of *variable* size, each a `tpacket3_hdr` (timestamp, captured and original length,
//! offset of the link-layer header, offset of the next packet) and the captured bytes.
//!
//! Ownership is handed over a whole block at a time. The kernel fills the current block and
//! "retires" it to user space (sets `TP_STATUS_USER` in its status word) when the block is
//! full or when `block_timeout_ms` has passed since the block was opened, so a quiet link
//! still delivers packets within that bound. [`LiveSource::poll_frames`] sleeps in `poll(2)`
//! until the next block in ring order is retired, reads every packet of every retired block in
//! place, and gives each block back by writing `TP_STATUS_KERNEL`. The status word is the only
//! synchronisation: it is read with an `Acquire` load (the packet bytes written by the kernel
//! before it set the bit are then visible) and written back with a `Release` store (our reads
//! of the block finish before the kernel may refill it).
//!
//! # Why TPACKET_V3
//!
//! With `recvfrom` every packet costs a system call and a copy. V1/V2 rings remove the copy
//! but hand over fixed-size frame slots one by one, so a 60-byte packet occupies a whole slot
//! and every slot needs its own status handshake. V3 packs packets of any size back to back
//! and hands over blocks of thousands of packets per wake-up: at 1 Mpps that is a few hundred
//! `poll` calls per second instead of a million syscalls.
//!
//! # Snaplen
//!
//! The packet digest (`docs/digest.md`) reads only the invariant IP header fields and the
//! first 8 payload bytes, so the probe needs the link, IP and transport headers and little
//! else. The snap length is enforced in the kernel by a one-instruction classic BPF program
//! (`ret #snaplen`): the kernel then copies at most that many bytes into the ring, which
//! multiplies the number of large packets a ring can hold.
//!
//! # Drops
//!
//! When the reader falls behind, the kernel finds the next block still owned by user space,
//! "freezes" the queue and drops arriving packets until that block is returned.
//! [`LiveSource::kernel_stats`] reads `PACKET_STATISTICS`: packets seen (including dropped
//! ones), packets dropped, and how often the queue froze. A trace that claims "this packet did
//! not pass here" is only as good as a zero in `drops` for that time span, so the probe
//! publishes these counters with every table epoch.
//!
//! # Outgoing packets and VLAN tags
//!
//! A socket bound to a host interface also sees the packets the host itself sends
//! (`PACKET_OUTGOING`). They are kept by default: a probe must record the traffic its host
//! forwards or originates. On a mirror (SPAN) port nothing is outgoing, so the setting does not
//! matter there. [`LiveConfig::ignore_outgoing`] drops them in the kernel.
//!
//! Loopback is the exception: every frame sent on `lo` passes the socket twice, once leaving
//! (`PACKET_OUTGOING`) and once coming back in (`PACKET_HOST`), so a SYN would look like its
//! own retransmission. [`LiveConfig::skip_loopback_outgoing`] (on by default) skips the
//! outgoing copy while walking the ring (the `sll_pkttype` the kernel writes after each
//! packet header), which leaves each frame once.
//! The kernel strips 802.1Q tags before packet sockets see the frame (they are reported
//! beside the packet, not in it); the digest covers only IP and transport bytes, so frames are
//! delivered as captured, without re-inserting the tag.

use std::ffi::CString;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ashiato_wire::{Frame, LinkType};

use crate::CaptureError;

/// How a fanout group spreads packets over its member sockets (`PACKET_FANOUT` modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanoutMode {
    /// By flow hash, with IP fragments reassembled for hashing (`PACKET_FANOUT_HASH` with
    /// `PACKET_FANOUT_FLAG_DEFRAG`): one flow always lands on the same capture thread, so each
    /// thread sees its flows in order.
    Hash,
    /// Round robin (`PACKET_FANOUT_LB`): the most even load, no flow affinity.
    LoadBalance,
    /// By the CPU that received the packet (`PACKET_FANOUT_CPU`): pairs well with RSS and
    /// capture threads pinned one per CPU.
    Cpu,
    /// By the NIC receive queue (`PACKET_FANOUT_QM`).
    QueueMapping,
}

impl FanoutMode {
    fn type_flags(self) -> u32 {
        match self {
            Self::Hash => libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG,
            Self::LoadBalance => libc::PACKET_FANOUT_LB,
            Self::Cpu => libc::PACKET_FANOUT_CPU,
            Self::QueueMapping => libc::PACKET_FANOUT_QM,
        }
    }
}

/// Ring geometry and socket options of a [`LiveSource`].
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Bytes per ring block; a multiple of the page size. Default 1 MiB.
    ///
    /// The ring's total size decides how long a reader may stall without loss; the block size
    /// only decides the hand-over granularity. 1 MiB blocks hold ~7,000 minimum-size frames
    /// (about 144 ring bytes each), so even at 1 Mpps a block retires every ~7 ms — a few
    /// hundred wake-ups per second — while the reader holds only 1/64 of the ring at a time.
    /// A 1 MiB block is an order-8 page allocation; 4 MiB would be the kernel's maximum order
    /// and fall back to vmalloc on a fragmented host, for no measurable gain.
    pub block_size: u32,
    /// Number of blocks. Default 64, a 64 MiB ring: ~450,000 minimum-size frames or ~190,000
    /// snaplen-capped frames, i.e. 0.2–0.45 s of reader stall at 1 Mpps.
    pub block_count: u32,
    /// Nominal frame size. TPACKET_V3 packs variable-size packets, so the kernel uses this
    /// only to check the request (`tp_frame_nr = block_size / frame_size * block_count`);
    /// a multiple of 16. Default 2048.
    pub frame_size: u32,
    /// Milliseconds after which the kernel retires a block that is not full
    /// (`tp_retire_blk_tov`): the worst-case delivery latency on a quiet link. Default 10.
    pub block_timeout_ms: u32,
    /// Bytes captured per packet, counted from the link-layer header. Default 256: the digest
    /// needs the Ethernet (+ VLAN), IP (with options, up to 60 bytes) and first 8 transport
    /// bytes, and 256 leaves room for IPv6 extension headers and tunnels.
    pub snaplen: u32,
    /// Put the interface into promiscuous mode while the socket is open (default true: a probe
    /// on a mirror port receives frames addressed to other hosts).
    pub promiscuous: bool,
    /// Join fanout group `id` so several sockets (one per capture thread) share the
    /// interface's packets. Every member must use the same mode. Default none.
    pub fanout: Option<(u16, FanoutMode)>,
    /// Do not capture packets this host sends on the interface (`PACKET_IGNORE_OUTGOING`,
    /// Linux 4.20+). Default false: see the module documentation.
    pub ignore_outgoing: bool,
    /// On a loopback interface, skip the outgoing copy of each frame: the same frame comes
    /// back as incoming. Default true. Ignored on other interfaces.
    pub skip_loopback_outgoing: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            block_size: 1 << 20,
            block_count: 64,
            frame_size: 2048,
            block_timeout_ms: 10,
            snaplen: 256,
            promiscuous: true,
            fanout: None,
            ignore_outgoing: false,
            skip_loopback_outgoing: true,
        }
    }
}

/// The largest snap length accepted: the pcap convention for "whole packet".
pub const MAX_SNAPLEN: u32 = 262_144;

impl LiveConfig {
    /// Checks the geometry before any system call, so a bad value gets a message that names
    /// it instead of the kernel's bare `EINVAL`.
    fn validate(&self, page_size: u32) -> Result<u32, CaptureError> {
        let bad = |m: String| Err(CaptureError::Config(m));
        if self.block_size == 0 || !self.block_size.is_multiple_of(page_size) {
            return bad(format!(
                "block_size {} is not a positive multiple of the page size {page_size}",
                self.block_size
            ));
        }
        if self.block_count == 0 {
            return bad("block_count is 0".into());
        }
        if (self.block_size as u64) * (self.block_count as u64) > isize::MAX as u64 / 2 {
            return bad("ring too large".into());
        }
        let min_frame = libc::TPACKET3_HDRLEN as u32;
        if self.frame_size < min_frame
            || !self
                .frame_size
                .is_multiple_of(libc::TPACKET_ALIGNMENT as u32)
            || self.frame_size > self.block_size
        {
            return bad(format!(
                "frame_size {} must be a multiple of {} between {min_frame} and block_size {}",
                self.frame_size,
                libc::TPACKET_ALIGNMENT,
                self.block_size
            ));
        }
        let frame_nr = (self.block_size / self.frame_size) as u64 * self.block_count as u64;
        let Ok(frame_nr) = u32::try_from(frame_nr) else {
            return bad(format!("{frame_nr} frames do not fit the kernel's u32"));
        };
        if self.snaplen == 0 || self.snaplen > MAX_SNAPLEN {
            return bad(format!(
                "snaplen {} is not in 1..={MAX_SNAPLEN}",
                self.snaplen
            ));
        }
        Ok(frame_nr)
    }
}

/// Kernel counters of a live socket, totals since [`LiveSource::open`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets the kernel handed to this socket, including dropped ones.
    pub packets: u64,
    /// Packets dropped because the ring was full (or memory ran out).
    pub drops: u64,
    /// How often the ring was full and the queue froze until a block was returned.
    pub freezes: u64,
}

/// A live capture: an AF_PACKET socket bound to one interface, with a mapped TPACKET_V3 ring.
///
/// The socket and the mapping are released on drop.
#[derive(Debug)]
pub struct LiveSource {
    iface: String,
    fd: OwnedFd,
    ring: NonNull<u8>,
    ring_len: usize,
    block_size: usize,
    block_count: usize,
    /// The next block in ring order; the kernel retires blocks in this order.
    cur: usize,
    link: LinkType,
    snaplen: u32,
    /// Skip `PACKET_OUTGOING` entries (loopback with [`LiveConfig::skip_loopback_outgoing`]).
    skip_outgoing: bool,
    totals: KernelStats,
    malformed: u64,
    skipped_outgoing: u64,
    /// Frames delivered by [`Self::poll_frames`] since open.
    delivered: u64,
}

// SAFETY: the mapping is owned exclusively by this value (no other handle to it exists in the
// process) and every access goes through `&mut self`; moving it to another thread is as safe as
// moving the file descriptor.
unsafe impl Send for LiveSource {}

impl LiveSource {
    /// Opens a capture on `iface` (in the calling thread's network namespace).
    ///
    /// The socket is created with protocol 0, so it receives nothing until the ring, filter
    /// and options are in place; it then binds to the interface for `ETH_P_ALL`. That keeps
    /// packets of other interfaces out of the ring (an `ETH_P_ALL` socket receives from every
    /// interface until bound). Needs `CAP_NET_RAW`.
    pub fn open(iface: &str, cfg: &LiveConfig) -> Result<Self, CaptureError> {
        let page = page_size();
        let frame_nr = cfg.validate(page)?;
        let ifindex = ifindex(iface)?;
        let fd = packet_socket(iface, 0)?;
        let arphrd = hardware_type(&fd, iface)?;
        let link = link_from_arphrd(arphrd);

        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set_opt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(op_err(iface, "setsockopt PACKET_VERSION TPACKET_V3"))?;
        if cfg.ignore_outgoing {
            let one: libc::c_int = 1;
            set_opt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)
                .map_err(op_err(iface, "setsockopt PACKET_IGNORE_OUTGOING"))?;
        }
        attach_snaplen_filter(&fd, iface, cfg.snaplen)?;

        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: cfg.frame_size,
            tp_frame_nr: frame_nr,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_opt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(op_err(iface, "setsockopt PACKET_RX_RING"))?;

        let ring_len = cfg.block_size as usize * cfg.block_count as usize;
        // SAFETY: a fresh shared mapping of the socket's ring, of exactly the size requested.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_err(iface, "mmap rx ring"));
        }
        let ring = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| CaptureError::Live {
            iface: iface.to_string(),
            op: "mmap rx ring",
            source: io::Error::other("null mapping"),
        })?;
        // From here on, `Drop` unmaps the ring and closes the socket on every error path.
        let src = Self {
            iface: iface.to_string(),
            fd,
            ring,
            ring_len,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            cur: 0,
            link,
            snaplen: cfg.snaplen,
            skip_outgoing: cfg.skip_loopback_outgoing && arphrd == libc::ARPHRD_LOOPBACK,
            totals: KernelStats::default(),
            malformed: 0,
            skipped_outgoing: 0,
            delivered: 0,
        };

        bind_ll(&src.fd, iface, ifindex, libc::ETH_P_ALL as u16)?;
        if cfg.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            set_opt(
                &src.fd,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                &mreq,
            )
            .map_err(op_err(iface, "setsockopt PACKET_ADD_MEMBERSHIP promisc"))?;
        }
        if let Some((id, mode)) = cfg.fanout {
            // The kernel only accepts PACKET_FANOUT on a bound socket.
            let arg = (id as u32 | (mode.type_flags() << 16)) as libc::c_int;
            set_opt(&src.fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
                .map_err(op_err(iface, "setsockopt PACKET_FANOUT"))?;
        }
        // The counters start at zero: the socket received nothing before `bind` (protocol 0).
        Ok(src)
    }

    /// The interface this source captures from.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The link type of the frames, from the interface's hardware type (`ARPHRD_*`).
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Ring entries that were skipped because their offsets pointed outside their block. Always
    /// 0 with a correct kernel; counted instead of trusted so that a bad entry cannot make the
    /// reader panic or read out of bounds.
    pub fn malformed_blocks(&self) -> u64 {
        self.malformed
    }

    /// Outgoing copies skipped on loopback (see [`LiveConfig::skip_loopback_outgoing`]); the
    /// kernel's packet count includes them.
    pub fn skipped_outgoing(&self) -> u64 {
        self.skipped_outgoing
    }

    /// Frames delivered by [`Self::poll_frames`] since open.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Waits up to `timeout` for the next retired block (poll), hands every frame of every
    /// ready block to `f`, returns blocks to the kernel, returns the number of frames delivered
    /// (0 on timeout).
    ///
    /// At most one pass over the ring is made per call, so a caller that checks a stop flag
    /// between calls regains control even under full load. If `f` panics, the block being read
    /// is still returned to the kernel (its remaining frames are lost, none is delivered twice).
    pub fn poll_frames<F: FnMut(Frame<'_>)>(
        &mut self,
        timeout: Duration,
        mut f: F,
    ) -> Result<usize, CaptureError> {
        if !self.block_ready(self.cur) {
            self.wait(timeout)?;
        }
        let mut delivered = 0;
        for _ in 0..self.block_count {
            let idx = self.cur;
            if !self.block_ready(idx) {
                break;
            }
            self.cur = (idx + 1) % self.block_count;
            let walk = {
                let _give_back = BlockRelease(self.status_word(idx));
                // SAFETY: block `idx` lies inside the mapping, and its status says user space
                // owns it (read with Acquire in `block_ready`), so the kernel does not write to
                // it until `_give_back` stores TP_STATUS_KERNEL, after the last use of `block`.
                let block = unsafe {
                    std::slice::from_raw_parts(
                        self.ring.as_ptr().add(idx * self.block_size),
                        self.block_size,
                    )
                };
                walk_block(block, self.link, self.snaplen, self.skip_outgoing, &mut f)
            };
            delivered += walk.frames;
            self.delivered += walk.frames as u64;
            self.malformed += u64::from(walk.malformed);
            self.skipped_outgoing += walk.outgoing as u64;
        }
        Ok(delivered)
    }

    /// Kernel counters via getsockopt(PACKET_STATISTICS) (tpacket_stats_v3: tp_packets,
    /// tp_drops, tp_freeze_q_cnt); the kernel resets them on each read, so they are accumulated
    /// here and the totals since open are returned.
    pub fn kernel_stats(&mut self) -> Result<KernelStats, CaptureError> {
        self.read_stats()?;
        Ok(self.totals)
    }

    fn read_stats(&mut self) -> Result<(), CaptureError> {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(last_err(&self.iface, "getsockopt PACKET_STATISTICS"));
        }
        // The kernel already adds the drops into tp_packets for this call.
        self.totals.packets += u64::from(st.tp_packets);
        self.totals.drops += u64::from(st.tp_drops);
        self.totals.freezes += u64::from(st.tp_freeze_q_cnt);
        Ok(())
    }

    /// Sleeps in poll(2) until the socket is readable (a block retired) or `timeout` passes.
    fn wait(&mut self, timeout: Duration) -> Result<(), CaptureError> {
        // Round up so that a sub-millisecond timeout still waits instead of spinning.
        let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(classify(&self.iface, "poll", e));
        }
        if pfd.revents & libc::POLLERR != 0 {
            // E.g. ENETDOWN when the interface disappears; reading SO_ERROR clears it.
            let mut err: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `err` and `len` are valid for writes of the sizes given.
            let rc = unsafe {
                libc::getsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&raw mut err).cast(),
                    &mut len,
                )
            };
            if rc == 0 && err != 0 {
                return Err(classify(
                    &self.iface,
                    "poll",
                    io::Error::from_raw_os_error(err),
                ));
            }
        }
        Ok(())
    }

    fn status_word(&self, idx: usize) -> &AtomicU32 {
        debug_assert!(idx < self.block_count);
        let off = idx * self.block_size + BLK_STATUS;
        // SAFETY: the word lies inside the mapping (blocks are at least one page) and is 4-byte
        // aligned (blocks are page aligned, the offset is 8). The kernel writes it concurrently,
        // which is why it is only ever accessed atomically.
        unsafe { AtomicU32::from_ptr(self.ring.as_ptr().add(off).cast::<u32>()) }
    }

    fn block_ready(&self, idx: usize) -> bool {
        self.status_word(idx).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `open` with this length and no slice into it
        // outlives a `poll_frames` call. The socket is closed afterwards by `OwnedFd`.
        unsafe {
            libc::munmap(self.ring.as_ptr().cast(), self.ring_len);
        }
    }
}

/// Gives a block back to the kernel when dropped, also when the frame callback panics.
struct BlockRelease<'a>(&'a AtomicU32);

impl Drop for BlockRelease<'_> {
    fn drop(&mut self) {
        self.0.store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}

// Field offsets of the TPACKET_V3 structures, taken from libc's definitions of
// linux/if_packet.h rather than typed in.
const BLK_HDR: usize = offset_of!(libc::tpacket_block_desc, hdr);
const BLK_STATUS: usize = BLK_HDR + offset_of!(libc::tpacket_hdr_v1, block_status);
const BLK_NUM_PKTS: usize = BLK_HDR + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const BLK_FIRST_PKT: usize = BLK_HDR + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
const PKT_NEXT: usize = offset_of!(libc::tpacket3_hdr, tp_next_offset);
const PKT_SEC: usize = offset_of!(libc::tpacket3_hdr, tp_sec);
const PKT_NSEC: usize = offset_of!(libc::tpacket3_hdr, tp_nsec);
const PKT_SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
const PKT_LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
const PKT_MAC: usize = offset_of!(libc::tpacket3_hdr, tp_mac);
const PKT_HDR_LEN: usize = size_of::<libc::tpacket3_hdr>();
/// The `sockaddr_ll` the kernel writes after each packet header (`TPACKET_ALIGN`ed), and its
/// packet type (`PACKET_HOST`, `PACKET_OUTGOING`, ...).
const PKT_SLL: usize = libc::TPACKET3_HDRLEN - size_of::<libc::sockaddr_ll>();
const PKT_PKTTYPE: usize = PKT_SLL + offset_of!(libc::sockaddr_ll, sll_pkttype);

/// What one block yielded.
#[derive(Debug, PartialEq, Eq)]
struct BlockWalk {
    frames: usize,
    /// Outgoing entries skipped.
    outgoing: usize,
    /// The block had an entry pointing outside it; the rest of the block was skipped.
    malformed: bool,
}

fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn rd_u16(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

/// Decodes the packets of one retired block (the pure core of the reader): every offset is
/// checked against the block, so a malformed entry ends the walk instead of a wild read.
fn walk_block<F: FnMut(Frame<'_>)>(
    block: &[u8],
    link: LinkType,
    snaplen: u32,
    skip_outgoing: bool,
    f: &mut F,
) -> BlockWalk {
    let mut walk = BlockWalk {
        frames: 0,
        outgoing: 0,
        malformed: false,
    };
    let (Some(num), Some(first)) = (rd_u32(block, BLK_NUM_PKTS), rd_u32(block, BLK_FIRST_PKT))
    else {
        walk.malformed = true;
        return walk;
    };
    let mut off = first as usize;
    for i in 0..num {
        let Some(pkt) = decode_packet(block, off, link, snaplen) else {
            walk.malformed = true;
            return walk;
        };
        if skip_outgoing && pkt.pkttype == libc::PACKET_OUTGOING {
            walk.outgoing += 1;
        } else {
            f(pkt.frame);
            walk.frames += 1;
        }
        if i + 1 == num {
            break;
        }
        match off.checked_add(pkt.next as usize) {
            Some(next) if pkt.next != 0 => off = next,
            _ => {
                walk.malformed = true;
                return walk;
            }
        }
    }
    walk
}

struct Packet<'a> {
    frame: Frame<'a>,
    next: u32,
    /// `sll_pkttype`.
    pkttype: u8,
}

fn decode_packet(block: &[u8], off: usize, link: LinkType, snaplen: u32) -> Option<Packet<'_>> {
    let hdr = block.get(off..off.checked_add(PKT_HDR_LEN)?)?;
    let sec = rd_u32(hdr, PKT_SEC)?;
    let nsec = rd_u32(hdr, PKT_NSEC)?;
    let caplen = rd_u32(hdr, PKT_SNAPLEN)?.min(snaplen);
    let pkttype = *block.get(off.checked_add(PKT_PKTTYPE)?)?;
    let start = off.checked_add(usize::from(rd_u16(hdr, PKT_MAC)?))?;
    let data = block.get(start..start.checked_add(caplen as usize)?)?;
    Some(Packet {
        frame: Frame {
            ts_nanos: u64::from(sec)
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(nsec)),
            link,
            orig_len: rd_u32(hdr, PKT_LEN)?,
            data,
        },
        next: rd_u32(hdr, PKT_NEXT)?,
        pkttype,
    })
}

/// Link type for an `ARPHRD_*` hardware type. With SOCK_RAW, Ethernet and loopback devices
/// deliver the whole Ethernet frame (loopback uses a zeroed Ethernet header); devices without a
/// link header (tun, WireGuard: `ARPHRD_NONE`, `ARPHRD_RAWIP`) deliver the bare IP packet.
/// Anything else is reported as `Other(arphrd)` — the `ARPHRD_*` number, not a pcap number —
/// so the parser counts those frames as unsupported.
fn link_from_arphrd(arphrd: u16) -> LinkType {
    match arphrd {
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => LinkType::Ethernet,
        libc::ARPHRD_NONE | ARPHRD_RAWIP => LinkType::Raw,
        other => LinkType::Other(u32::from(other)),
    }
}

/// `ARPHRD_RAWIP` from linux/if_arp.h (not in every libc release).
const ARPHRD_RAWIP: u16 = 519;

/// The interface's hardware type (`ARPHRD_*`).
fn hardware_type(fd: &OwnedFd, iface: &str) -> Result<u16, CaptureError> {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(iface.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq with a NUL-terminated name (checked by `ifindex`, which
    // runs first and rejects names of IFNAMSIZ bytes or more).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) };
    if rc != 0 {
        return Err(last_err(iface, "ioctl SIOCGIFHWADDR"));
    }
    // SAFETY: SIOCGIFHWADDR fills the hwaddr member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_hwaddr.sa_family })
}

fn attach_snaplen_filter(fd: &OwnedFd, iface: &str, snaplen: u32) -> Result<(), CaptureError> {
    // Classic BPF: a single "return snaplen" accepts every packet and truncates it.
    let mut prog = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: snaplen,
    }];
    let fprog = libc::sock_fprog {
        len: 1,
        filter: prog.as_mut_ptr(),
    };
    set_opt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
        .map_err(op_err(iface, "setsockopt SO_ATTACH_FILTER (snaplen)"))
}

// ---- helpers shared with `send` ----------------------------------------------------------

pub(crate) fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

/// The interface index of `iface`, or [`CaptureError::NoSuchInterface`].
pub(crate) fn ifindex(iface: &str) -> Result<libc::c_int, CaptureError> {
    let missing = || CaptureError::NoSuchInterface(iface.to_string());
    if iface.is_empty() || iface.len() >= libc::IFNAMSIZ {
        return Err(missing());
    }
    let name = CString::new(iface).map_err(|_| missing())?;
    // SAFETY: `name` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => Err(missing()),
            _ => Err(CaptureError::Live {
                iface: iface.to_string(),
                op: "if_nametoindex",
                source: e,
            }),
        };
    }
    libc::c_int::try_from(idx).map_err(|_| missing())
}

/// A new `AF_PACKET`/`SOCK_RAW` socket for `protocol` (host byte order; 0 receives nothing).
pub(crate) fn packet_socket(iface: &str, protocol: u16) -> Result<OwnedFd, CaptureError> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::c_int::from(protocol.to_be()),
        )
    };
    if fd < 0 {
        return Err(last_err(iface, "socket AF_PACKET"));
    }
    // SAFETY: `fd` is a freshly created descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a packet socket to interface `ifindex` for `protocol` (host byte order).
pub(crate) fn bind_ll(
    fd: &OwnedFd,
    iface: &str,
    ifindex: libc::c_int,
    protocol: u16,
) -> Result<(), CaptureError> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a valid sockaddr_ll of the length given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_err(iface, "bind"));
    }
    Ok(())
}

/// setsockopt with a typed value; the caller names the option in the error.
pub(crate) fn set_opt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    opt: libc::c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The error for `op` on `iface` failing with `e`, by what it means: no such interface
/// (`ENODEV`, `ENXIO`), no permission (`EPERM`, `EACCES`), interface down (`ENETDOWN`), or
/// the system call and its reason.
pub(crate) fn classify(iface: &str, op: &'static str, e: io::Error) -> CaptureError {
    let iface = iface.to_string();
    match e.raw_os_error() {
        Some(libc::ENODEV | libc::ENXIO) => CaptureError::NoSuchInterface(iface),
        Some(libc::EPERM | libc::EACCES) => CaptureError::PermissionDenied {
            iface,
            op,
            source: e,
        },
        Some(libc::ENETDOWN) => CaptureError::InterfaceDown { iface, op },
        _ => CaptureError::Live {
            iface,
            op,
            source: e,
        },
    }
}

/// Maps an `io::Error` of `op` on `iface` to a [`CaptureError`] (see [`classify`]).
pub(crate) fn op_err(iface: &str, op: &'static str) -> impl FnOnce(io::Error) -> CaptureError {
    let iface = iface.to_string();
    move |e| classify(&iface, op, e)
}

/// The [`CaptureError`] for `errno` after `op` on `iface` (see [`classify`]).
pub(crate) fn last_err(iface: &str, op: &'static str) -> CaptureError {
    classify(iface, op, io::Error::last_os_error())
}

impl AsRawFd for LiveSource {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests;
