//! docs/operations.md's two-domain walkthrough, run as it stands in the document: the block
//! between its `walkthrough:start` and `walkthrough:end` markers, with this build's `ashiato`
//! first on `PATH`, from the repository's root.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::repo;

#[test]
fn the_operations_walkthrough_runs_as_written() {
    let doc = std::fs::read_to_string(repo("docs/operations.md")).unwrap();
    let start = doc
        .find("<!-- walkthrough:start -->")
        .expect("docs/operations.md has a walkthrough:start marker");
    let end = doc
        .find("<!-- walkthrough:end -->")
        .expect("and a walkthrough:end marker");
    let block = &doc[start..end];
    let script: String = block
        .lines()
        .skip_while(|l| !l.starts_with("```sh"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(script.contains("ashiato trace"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("walkthrough.sh");
    std::fs::write(&file, &script).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ashiato")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .arg(&file)
        .current_dir(repo(""))
        .env("PATH", path)
        .env("TMPDIR", dir.path())
        .env_remove("ASHIATO_KEY_FILE")
        .env_remove("ASHIATO_TLS_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if began.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the walkthrough did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("walkthrough passed"), "{out}\n{err}");
    assert!(out.contains("origin AS64502: 2 packets"), "{out}");
    // The victim's controller stored the trace in its own SQLite file.
    let w = out
        .lines()
        .find_map(|l| l.strip_prefix("walkthrough passed; everything is in "))
        .unwrap()
        .trim();
    let db = Path::new(w).join("as64501.db");
    assert!(
        db.metadata().map(|m| m.len() > 0).unwrap_or(false),
        "{}",
        db.display()
    );
}
