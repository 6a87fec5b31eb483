//! SQLite on a full disk: a 2 MiB tmpfs filled with traces until `put_trace` reports
//! `DiskFull`. The failed trace is absent, earlier ones are whole, reads go on, and writes
//! work again once space is freed.

use std::path::{Path, PathBuf};
use std::process::Command;

use ashiato_store::{Store, StoreError, TraceFilter, TraceRecord};

use crate::fixtures::trace;

/// A tmpfs mounted on a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mount -t tmpfs on {} failed",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn filling(i: u32) -> TraceRecord {
    let mut t = trace(&format!("fill-{i}"), None, u64::from(i), i, 60);
    t.graph_json = format!("{{\"padding\":\"{}\",\"n\":{i}}}", "x".repeat(8 * 1024));
    t
}

#[tokio::test]
async fn sqlite_full_disk_stores_nothing_of_the_failed_trace_and_recovers() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test mounts a small tmpfs and needs root: run it as root (CI does; \
         scripts/test.sh runs the tests through sudo)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(dir.path(), "2m");
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 512 * 1024]).unwrap();

    let store = Store::open(&dir.path().join("full.db").display().to_string())
        .await
        .unwrap();
    let mut stored = Vec::new();
    let mut failed = None;
    for i in 0..1000 {
        let t = filling(i);
        match store.put_trace(&t).await {
            Ok(()) => stored.push(t),
            Err(e @ StoreError::DiskFull { .. }) => {
                assert!(e.to_string().contains("free space"), "{e}");
                failed = Some(t);
                break;
            }
            Err(e) => panic!("trace {i}: expected DiskFull or success, got {e:?}"),
        }
    }
    let failed = failed.expect("2 MiB never filled up");
    assert!(!stored.is_empty(), "not even one trace fitted");

    for t in &stored {
        assert_eq!(store.trace(&t.id).await.unwrap().as_ref(), Some(t));
    }
    assert_eq!(store.trace(&failed.id).await.unwrap(), None);
    let listed = store
        .traces(&TraceFilter {
            limit: 10_000,
            ..TraceFilter::default()
        })
        .await;
    assert_eq!(listed.unwrap().len(), stored.len());
    store.health().await.unwrap();

    std::fs::remove_file(&filler).unwrap();
    store.put_trace(&failed).await.unwrap();
    assert_eq!(store.trace(&failed.id).await.unwrap().unwrap(), failed);
    store.close().await;
    drop(mount);
}
