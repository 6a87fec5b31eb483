//! Stopping a probe saves the epochs it holds in memory, or says it could not.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use ashiato_digest::DEMO_KEY;
use ashiato_probe::{Input, Probe, ProbeConfig, ProbeError};
use ashiato_tables::{FilterKind, SpillConfig, TableError, TablesConfig, theory};
use ashiato_wire::capfile::PcapWriter;
use ashiato_wire::packet::TcpFlags;
use ashiato_wire::{LinkType, build};

/// A capture of 50 SYNs spread over 5 seconds.
fn capture(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(f, LinkType::Ethernet, 65535).unwrap();
    for i in 0..50u32 {
        let frame = build::ipv4_tcp_frame(
            Ipv4Addr::from(0x0a00_0000 + i),
            Ipv4Addr::new(192, 0, 2, 1),
            40000,
            80,
            i,
            0,
            TcpFlags::SYN,
            0,
            &[],
        );
        w.write(
            1_600_000_000_000_000_000 + u64::from(i) * 100_000_000,
            &frame,
        )
        .unwrap();
    }
}

fn start(dir: &Path, spill: &Path) -> Probe {
    let pcap = dir.join("in.pcap");
    capture(&pcap);
    let mut tables = TablesConfig::new(theory::plan(FilterKind::Blocked, 1000, 1e-6), 0);
    tables.spill = Some(SpillConfig {
        dir: spill.to_path_buf(),
        budget_bytes: u64::MAX,
    });
    let probe = Probe::start(ProbeConfig {
        name: "p".into(),
        input: Input::Files(vec![pcap]),
        key: DEMO_KEY,
        tables,
    })
    .unwrap();
    assert!(probe.wait_input_done(Duration::from_secs(30)));
    probe
}

fn spill_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "ashbloom"))
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn stop_writes_the_epochs_held_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    let probe = start(dir.path(), &spill);
    assert!(probe.stop().unwrap().is_none());
    assert_eq!(spill_files(&spill), 5);
}

/// Spilling configured but the directory gone: stop must fail, not report a clean shutdown
/// (the process used to exit 0 with the epochs silently lost).
#[test]
fn stop_fails_when_epochs_cannot_be_saved() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    let probe = start(dir.path(), &spill);
    std::fs::remove_dir_all(&spill).unwrap();
    match probe.stop() {
        Err(ProbeError::NotSaved(TableError::EpochsNotSaved { failed, .. })) => {
            assert_eq!(failed, 5)
        }
        other => panic!("expected NotSaved, got {other:?}"),
    }
}
