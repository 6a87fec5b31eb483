//! The sockets of this network namespace from the kernel: netlink `NETLINK_SOCK_DIAG`
//! `inet_diag` dumps (the interface `ss` uses) of TCP and UDP over IPv4 and IPv6, each socket
//! with its 5-tuple and inode. Dumping needs no privilege; the inode is what `/proc/PID/fd`
//! links name, which is how [`crate::procfs`] finds the owner.
//!
//! [`parse_dump`] (pure) decodes the kernel's answer; [`SockDiag`] sends the requests.
//! Sockets with inode 0 (TCP `TIME_WAIT`, owned by no process any more) are left out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::AgentError;

/// One socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Socket {
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (unspecified when unconnected or listening).
    pub remote: SocketAddr,
    /// The socket's inode.
    pub inode: u64,
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
/// `struct inet_diag_msg`: family, state, timer, retrans, the 48-byte id, expires, rqueue,
/// wqueue, uid, inode.
const DIAG_MSG_LEN: usize = 72;

/// The request for all sockets of `family` (AF_INET/AF_INET6) and `proto`.
fn request(family: u8, proto: u8, seq: u32) -> Vec<u8> {
    let mut m = vec![0u8; 16 + 56];
    m[0..4].copy_from_slice(&(16u32 + 56).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // struct inet_diag_req_v2: family, protocol, ext, pad, states, id.
    m[16] = family;
    m[17] = proto;
    m[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    m
}

/// What one received buffer held.
#[derive(Debug, PartialEq, Eq)]
pub enum Part {
    /// More messages follow.
    More,
    /// The dump is complete.
    Done,
    /// The kernel answered with this errno.
    Error(i32),
}

/// Decodes one buffer of a dump for IP protocol `proto`, appending sockets to `out`. Bad or
/// short messages end the buffer (never a panic).
pub fn parse_dump(buf: &[u8], proto: u8, out: &mut Vec<Socket>) -> Part {
    let mut off = 0;
    while off + 16 <= buf.len() {
        let rd = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().expect("4 bytes"));
        let len = rd(off) as usize;
        let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        if len < 16 || off + len > buf.len() {
            return Part::Error(libc::EBADMSG);
        }
        match ty {
            NLMSG_DONE => return Part::Done,
            NLMSG_ERROR => {
                let errno = if len >= 20 { rd(off + 16) as i32 } else { 0 };
                return Part::Error(-errno);
            }
            SOCK_DIAG_BY_FAMILY if len >= 16 + DIAG_MSG_LEN => {
                let m = &buf[off + 16..off + 16 + DIAG_MSG_LEN];
                if let Some(s) = socket(m, proto) {
                    out.push(s);
                }
            }
            _ => {}
        }
        off += (len + 3) & !3;
    }
    Part::More
}

fn socket(m: &[u8], proto: u8) -> Option<Socket> {
    let inode = u32::from_ne_bytes(m[68..72].try_into().ok()?) as u64;
    if inode == 0 {
        return None;
    }
    let id = &m[4..52];
    let sport = u16::from_be_bytes([id[0], id[1]]);
    let dport = u16::from_be_bytes([id[2], id[3]]);
    let ip = |b: &[u8]| -> Option<IpAddr> {
        Some(match m[0] as i32 {
            libc::AF_INET => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&b[..4]).ok()?)),
            libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?)),
            _ => return None,
        })
    };
    Some(Socket {
        proto,
        local: SocketAddr::new(ip(&id[4..20])?, sport),
        remote: SocketAddr::new(ip(&id[20..36])?, dport),
        inode,
    })
}

/// A netlink socket for sock_diag dumps.
pub struct SockDiag {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl SockDiag {
    /// Opens the netlink socket (in the calling thread's network namespace).
    pub fn open() -> Result<SockDiag, AgentError> {
        // SAFETY: plain socket(2); the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(AgentError::Netlink(std::io::Error::last_os_error()));
        }
        Ok(SockDiag {
            // SAFETY: fd is a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            seq: 0,
            buf: vec![0u8; 1 << 16],
        })
    }

    /// Every TCP and UDP socket, IPv4 and IPv6, with an owner inode.
    pub fn dump_all(&mut self) -> Result<Vec<Socket>, AgentError> {
        let mut out = Vec::new();
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            for proto in [6u8, 17] {
                self.dump(family, proto, &mut out)?;
            }
        }
        Ok(out)
    }

    fn dump(&mut self, family: u8, proto: u8, out: &mut Vec<Socket>) -> Result<(), AgentError> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(family, proto, self.seq);
        // SAFETY: a zeroed sockaddr_nl addresses the kernel; req outlives the call.
        let rc = unsafe {
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&raw const sa).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(AgentError::Netlink(std::io::Error::last_os_error()));
        }
        loop {
            // SAFETY: buf is a valid writable buffer of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(AgentError::Netlink(e));
            }
            match parse_dump(&self.buf[..n as usize], proto, out) {
                Part::More => {}
                Part::Done => return Ok(()),
                // No UDP or no IPv6 in this kernel: nothing to list.
                Part::Error(e) if e == libc::ENOENT || e == libc::EAFNOSUPPORT => return Ok(()),
                Part::Error(e) => {
                    return Err(AgentError::Netlink(std::io::Error::from_raw_os_error(e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(family: u8, sport: u16, dport: u16, src: &[u8], dst: &[u8], inode: u32) -> Vec<u8> {
        let mut m = vec![0u8; 16 + DIAG_MSG_LEN];
        m[0..4].copy_from_slice(&((16 + DIAG_MSG_LEN) as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m[16] = family;
        m[20..22].copy_from_slice(&sport.to_be_bytes());
        m[22..24].copy_from_slice(&dport.to_be_bytes());
        m[24..24 + src.len()].copy_from_slice(src);
        m[40..40 + dst.len()].copy_from_slice(dst);
        m[16 + 68..16 + 72].copy_from_slice(&inode.to_ne_bytes());
        m
    }

    #[test]
    fn dump_messages_decode_and_time_wait_is_left_out() {
        let mut b = msg(
            libc::AF_INET as u8,
            40000,
            6667,
            &[10, 0, 0, 2],
            &[10, 0, 0, 1],
            99,
        );
        b.extend(msg(
            libc::AF_INET as u8,
            1,
            2,
            &[1, 1, 1, 1],
            &[2, 2, 2, 2],
            0,
        ));
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        b.extend(msg(libc::AF_INET6 as u8, 53, 0, &v6, &[0; 16], 7));
        let mut out = Vec::new();
        assert_eq!(parse_dump(&b, 6, &mut out), Part::More);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].local.to_string(), "10.0.0.2:40000");
        assert_eq!(out[0].remote.to_string(), "10.0.0.1:6667");
        assert_eq!(out[0].inode, 99);
        assert_eq!(out[1].local.to_string(), "[::1]:53");
        let mut done = vec![0u8; 20];
        done[0] = 20;
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        assert_eq!(parse_dump(&done, 6, &mut out), Part::Done);
        // Truncated: an error, not a panic.
        assert_eq!(
            parse_dump(&b[..50], 6, &mut out),
            Part::Error(libc::EBADMSG)
        );
    }

    #[test]
    fn the_kernel_lists_a_socket_we_hold() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut d = SockDiag::open().unwrap();
        let all = d.dump_all().unwrap();
        assert!(
            all.iter()
                .any(|s| s.proto == 6 && s.local.port() == port && s.inode != 0),
            "{all:?}"
        );
    }
}
