//! The audit's IO loop over history files, and the flow → process join of its evidence;
//! shared by the agent and `ashiato hostcheck`.

use std::net::SocketAddr;
use std::path::PathBuf;

use ashiato_capture::file::FileSource;
use ashiato_hosttrace::procs::ProcMap;
use ashiato_hosttrace::{Audit, Evidence, Flow, FramePos};

use crate::AgentError;

/// Files that ended inside a record: audited up to the damage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    /// Each damaged file and the reason.
    pub files: Vec<(PathBuf, String)>,
    /// Each damaged file and the time of the last frame read before the damage (`None`: no
    /// frame was read): what lies after it was not searched.
    pub read_to: Vec<(PathBuf, Option<u64>)>,
}

/// Feeds every frame of `files` (in order, frames numbered per file from 1, file index as
/// given) to `audit`. A file that cannot be opened is an error; one that ends inside a record
/// is audited up to the damage and listed.
pub fn audit_files(audit: &mut Audit, files: &[PathBuf]) -> Result<Damage, AgentError> {
    let mut damage = Damage::default();
    for (i, path) in files.iter().enumerate() {
        let mut src = FileSource::open(path).map_err(|e| AgentError::Invalid(e.to_string()))?;
        let (mut n, mut last_ns) = (0u64, None);
        loop {
            match src.next_frame() {
                Ok(Some(f)) => {
                    n += 1;
                    last_ns = Some(f.ts_nanos);
                    let pos = FramePos {
                        file: i as u32,
                        frame: n,
                    };
                    audit.frame(pos, f.ts_nanos, f.link, f.orig_len, f.data);
                }
                Ok(None) => break,
                Err(e) => {
                    damage.files.push((
                        path.clone(),
                        format!("{e}; audited the {n} frames before it"),
                    ));
                    damage.read_to.push((path.clone(), last_ns));
                    break;
                }
            }
        }
    }
    Ok(damage)
}

/// A flow of some evidence with the process that owned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedFlow {
    /// The flow.
    pub flow: Flow,
    /// When it was first seen, ns.
    pub first_ns: u64,
    /// Its process and pid, when a record covers it.
    pub process: Option<(String, Option<u32>)>,
}

/// The evidence's flows with their processes. The local side is the flow's source for a
/// claim (`peer: None`: the host sent the attack packets) and the side that is not `peer`
/// for a finding.
pub fn flow_owners(procs: &ProcMap, e: &Evidence, peer: Option<SocketAddr>) -> Vec<OwnedFlow> {
    e.flows
        .iter()
        .map(|&(flow, ts)| {
            let (local, remote) = match peer {
                Some(p) if flow.src == p => (flow.dst, flow.src),
                _ => (flow.src, flow.dst),
            };
            let process = procs
                .lookup(flow.proto, local, remote, ts)
                .map(|r| (r.process.clone(), r.pid));
            OwnedFlow {
                flow,
                first_ns: ts,
                process,
            }
        })
        .collect()
}

/// An IP protocol's name as the reports write it.
pub fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        n => n.to_string(),
    }
}
