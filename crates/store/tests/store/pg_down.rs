//! A PostgreSQL server that goes away and comes back: the store reports it unavailable
//! quickly, and works again once the server is back.

use std::time::{Duration, Instant};

use ashiato_store::{Store, StoreError};

use crate::fixtures::trace;
use crate::pg::PgServer;

#[tokio::test]
async fn postgres_going_away_is_unavailable_then_recovers() {
    // Always a private server: this test stops it.
    let server = PgServer::start();
    let store = Store::open(&server.url("postgres")).await.unwrap();
    let first = trace("before-stop", None, 1_000, 1, 10);
    store.put_trace(&first).await.unwrap();

    server.stop();
    let second = trace("after-restart", None, 2_000, 2, 10);
    let began = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(30), store.put_trace(&second))
        .await
        .expect("put_trace hung on a stopped server");
    let waited = began.elapsed();
    match outcome {
        Err(e @ StoreError::Unavailable { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("127.0.0.1:"), "{msg}");
        }
        other => panic!("expected Unavailable from a stopped server, got {other:?}"),
    }
    assert!(
        waited < Duration::from_secs(10),
        "took {waited:?} to give up"
    );
    assert!(matches!(
        store.health().await,
        Err(StoreError::Unavailable { .. })
    ));

    server.start_again();
    store.put_trace(&second).await.unwrap();
    assert_eq!(store.trace("before-stop").await.unwrap().unwrap(), first);
    assert_eq!(store.trace("after-restart").await.unwrap().unwrap(), second);
    store.close().await;
}
