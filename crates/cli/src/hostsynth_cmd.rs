//! `ashiato hostsynth`: writes a generated day of host history (pcap) and its claim list
//! (JSON lines) for the audit-speed figure; the generator is `ashiato_hosttrace::synth`.

use std::io::{BufWriter, Write};

use anyhow::Context;
use ashiato_hosttrace::synth::{HistorySpec, history};
use ashiato_wire::LinkType;
use ashiato_wire::capfile::PcapWriter;

use crate::args::HostsynthArgs;

/// Generates and writes both files.
pub fn run(a: &HostsynthArgs) -> anyhow::Result<()> {
    let f =
        std::fs::File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut w = PcapWriter::new(
        BufWriter::with_capacity(1 << 20, f),
        LinkType::Ethernet,
        65535,
    )?;
    let mut err = None;
    let spec = HistorySpec {
        bytes: a.bytes,
        claims: a.claims,
        matched: a.matched,
        seed: a.seed,
    };
    let h = history(spec, |ts, frame| {
        if err.is_none()
            && let Err(e) = w.write(ts, frame)
        {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e).with_context(|| format!("writing {}", a.out.display()));
    }
    w.flush()?;
    let mut c = BufWriter::new(
        std::fs::File::create(&a.claims_out)
            .with_context(|| format!("creating {}", a.claims_out.display()))?,
    );
    for r in &h.claims {
        serde_json::to_writer(&mut c, r)?;
        c.write_all(b"\n")?;
    }
    c.flush()?;
    println!(
        "wrote {} frames ({} bytes of frames) to {} and {} claims ({} of them matched by the history: claim-00000..) to {}",
        h.frames,
        h.bytes,
        a.out.display(),
        h.claims.len(),
        a.matched.min(a.claims),
        a.claims_out.display()
    );
    Ok(())
}
