//! A SQLite writer killed with SIGKILL mid-write: every trace it reported stored is there
//! whole after reopening, and the file passes `PRAGMA integrity_check`.
//!
//! The writer is this same test binary, re-run with this test's name and an environment
//! variable that turns the test into the writer.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use ashiato_store::Store;
use sqlx::Row;

use crate::fixtures::trace;

const WRITER_ENV: &str = "ASHIATO_STORE_TEST_CRASH_WRITER";
const TEST_NAME: &str = "crash::sqlite_survives_kill_9_mid_write";
/// Enough rows that most of the writer's time is inside a transaction.
const OBSERVATIONS: usize = 300;

fn expected(i: u64) -> ashiato_store::TraceRecord {
    trace(&format!("w-{i}"), None, 1_000 + i, i as u32, OBSERVATIONS)
}

/// The child: writes traces until it is killed, printing each id once `put_trace` returned.
async fn writer(path: &str) {
    let store = Store::open(path).await.unwrap();
    let mut out = std::io::stdout();
    for i in 0.. {
        store.put_trace(&expected(i)).await.unwrap();
        writeln!(out, "stored {i}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn sqlite_survives_kill_9_mid_write() {
    if let Ok(path) = std::env::var(WRITER_ENV) {
        writer(&path).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db").display().to_string();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stored = Vec::new();
    while stored.len() < 25 {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the writer ended after {} traces", stored.len()))
            .unwrap();
        if let Some(i) = line.strip_prefix("stored ") {
            stored.push(i.parse::<u64>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL
    // Ids printed before the kill are committed too.
    for line in lines {
        if let Some(i) = line.unwrap().strip_prefix("stored ") {
            stored.push(i.parse::<u64>().unwrap());
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the writer was not killed: {status}");

    let raw = sqlx::SqlitePool::connect(&format!("sqlite:{path}"))
        .await
        .unwrap();
    let check: Vec<String> = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&raw)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(check, ["ok"]);
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    raw.close().await;

    let store = Store::open(&path).await.unwrap();
    for &i in &stored {
        let want = expected(i);
        let got = store.trace(&want.id).await.unwrap();
        assert_eq!(
            got.as_ref(),
            Some(&want),
            "trace {} after the kill",
            want.id
        );
    }
    // Whatever was in flight is either absent or whole, never partial.
    let next = expected(stored.iter().max().unwrap() + 1);
    if let Some(t) = store.trace(&next.id).await.unwrap() {
        assert_eq!(t, next);
    }
    store.close().await;
}
