//! One suite, run on both backends.

use ashiato_store::{
    Backend, IncidentOrigin, SCHEMA_VERSION, StepstoneConnection, Store, StoreError, TraceFilter,
    TraceSummary,
};

use crate::fixtures::{incident, trace};

/// Runs one statement on the database behind `target` without the store.
async fn raw_exec(target: &str, sql: &'static str) {
    if target.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(target).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{target}"))
            .await
            .unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

fn ids(list: &[TraceSummary]) -> Vec<&str> {
    list.iter().map(|s| s.id.as_str()).collect()
}

async fn run(target: &str, backend: Backend) {
    let store = Store::open(target).await.unwrap();
    assert_eq!(store.backend(), backend);
    assert!(!store.describe().contains("secret"));
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store.health().await.unwrap();

    // Round trip, with every optional field both set and unset.
    store.put_incident(&incident("inc-1", 1_000)).await.unwrap();
    store.put_incident(&incident("inc-2", 2_000)).await.unwrap();
    stepstone_round_trip(&store).await;
    crate::host::host_round_trip(&store).await;
    let t1 = trace("t-1", Some("inc-1"), 1_700_000_000_000_000_000, 1, 40);
    let t2 = trace("t-2", Some("inc-1"), 1_700_000_001_000_000_000, 2, 3);
    let t3 = trace("t-3", Some("inc-2"), 1_700_000_002_000_000_000, 3, 0);
    let t4 = trace("t-4", None, i64::MAX as u64 - 5_000_000_000, 4, 1);
    for t in [&t1, &t2, &t3, &t4] {
        store.put_trace(t).await.unwrap();
    }
    for t in [&t1, &t2, &t3, &t4] {
        assert_eq!(store.trace(&t.id).await.unwrap().as_ref(), Some(t));
    }
    assert_eq!(store.trace("t-none").await.unwrap(), None);

    // Idempotent: the same record again changes nothing; a changed one replaces it whole.
    store.put_trace(&t1).await.unwrap();
    assert_eq!(store.trace("t-1").await.unwrap().unwrap(), t1);
    let mut t1b = trace("t-1", Some("inc-1"), t1.started_ns, 9, 5);
    t1b.status = "complete".into();
    t1b.gaps.clear();
    store.put_trace(&t1b).await.unwrap();
    assert_eq!(store.trace("t-1").await.unwrap().unwrap(), t1b);
    store.put_incident(&incident("inc-1", 1_500)).await.unwrap();

    // Listings: newest first, by incident, since a time, limited.
    let all = store.traces(&TraceFilter::default()).await.unwrap();
    assert_eq!(ids(&all), ["t-4", "t-3", "t-2", "t-1"]);
    assert_eq!(all[1].origins, 2);
    assert_eq!(all[3].status, "complete");
    assert_eq!(all[3].packets, t1b.packets);
    assert_eq!(all[0].incident_id, None);
    let inc1 = TraceFilter {
        incident_id: Some("inc-1".into()),
        ..TraceFilter::default()
    };
    assert_eq!(ids(&store.traces(&inc1).await.unwrap()), ["t-2", "t-1"]);
    let since = TraceFilter {
        since_ns: Some(t2.started_ns),
        limit: 2,
        ..TraceFilter::default()
    };
    assert_eq!(ids(&store.traces(&since).await.unwrap()), ["t-4", "t-3"]);
    let both = TraceFilter {
        since_ns: Some(t2.started_ns),
        ..inc1.clone()
    };
    assert_eq!(ids(&store.traces(&both).await.unwrap()), ["t-2"]);
    let zero = TraceFilter {
        limit: 0,
        ..TraceFilter::default()
    };
    assert!(matches!(
        store.traces(&zero).await,
        Err(StoreError::Invalid(_))
    ));
    let huge = TraceFilter {
        limit: 10_001,
        ..TraceFilter::default()
    };
    assert!(matches!(
        store.traces(&huge).await,
        Err(StoreError::Invalid(_))
    ));

    // The attack tree of inc-1: t-1 (n=9) found 64510 x7 and 65000 x12, t-2 found 64503 x7
    // and 65000 x5.
    assert_eq!(
        store.incident_origins("inc-1").await.unwrap(),
        [
            IncidentOrigin {
                domain: 65000,
                packets: 17,
                traces: 2
            },
            IncidentOrigin {
                domain: 64503,
                packets: 7,
                traces: 1
            },
            IncidentOrigin {
                domain: 64510,
                packets: 7,
                traces: 1
            },
        ]
    );
    assert_eq!(store.incident_origins("inc-none").await.unwrap(), []);

    // Validation: refused before the database, and nothing of the record is stored.
    let mut bad = trace("t-bad", None, 5, 1, 2);
    bad.observations[1].fpr = Some(f64::NAN);
    let e = store.put_trace(&bad).await.unwrap_err();
    assert!(e.to_string().contains("observation 1"), "{e}");
    bad = trace("t-bad", None, i64::MAX as u64 + 1, 1, 2);
    assert!(matches!(
        store.put_trace(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    bad = trace("t bad", None, 5, 1, 2);
    assert!(matches!(
        store.put_trace(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    bad = trace("t-bad", None, 5, 1, 2);
    bad.observations[0].reason = Some("x".repeat(4097));
    assert!(matches!(
        store.put_trace(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    bad = trace("t-bad", None, 5, 1, 2);
    bad.mode = "sideways".into();
    assert!(matches!(
        store.put_trace(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    bad = trace("t-bad", Some("inc-unknown"), 5, 1, 2);
    let e = store.put_trace(&bad).await.unwrap_err();
    assert!(e.to_string().contains("put the incident first"), "{e}");
    let mut inc = incident("inc-bad", 1);
    inc.source = "rumour".into();
    assert!(matches!(
        store.put_incident(&inc).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.trace("t-bad").await.unwrap(), None);
    assert!(matches!(store.trace("").await, Err(StoreError::Invalid(_))));
    store.close().await;

    // Reopening keeps everything and the version.
    let store = Store::open(target).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(store.trace("t-2").await.unwrap().unwrap(), t2);
    store.close().await;

    // A database from a newer release is refused, naming both versions, and left alone.
    raw_exec(
        target,
        "INSERT INTO schema_version (version, applied_ns, description) VALUES (999, 0, 'future')",
    )
    .await;
    let e = Store::open(target).await.unwrap_err();
    match &e {
        StoreError::SchemaTooNew {
            found: 999, known, ..
        } => assert_eq!(*known, SCHEMA_VERSION),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("999") && msg.contains(&SCHEMA_VERSION.to_string()),
        "{msg}"
    );
    raw_exec(target, "DELETE FROM schema_version WHERE version = 999").await;
    let store = Store::open(target).await.unwrap();
    assert_eq!(store.trace("t-3").await.unwrap().unwrap(), t3);
    store.close().await;
}

#[tokio::test]
async fn sqlite_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db").display().to_string();
    run(&path, Backend::Sqlite).await;
    // The `sqlite:` form opens the same file.
    let store = Store::open(&format!("sqlite:{path}")).await.unwrap();
    assert_eq!(store.describe(), format!("sqlite {path}"));
    assert!(store.trace("t-4").await.unwrap().is_some());
    store.close().await;
}

#[tokio::test]
async fn postgres_suite() {
    let db = crate::pg::fresh_database("suite").await;
    run(&db.url, Backend::Postgres).await;
    let store = Store::open(&db.url).await.unwrap();
    let described = store.describe();
    let wanted = format!("/ashiato_suite_{}", std::process::id());
    assert!(
        described.starts_with("postgres ") && described.ends_with(&wanted),
        "{described}"
    );
    store.close().await;
    db.remove().await;
}

/// Stepping-stone records (schema version 2): round trip with every optional field set and
/// unset, newest first, by source, refused when invalid.
async fn stepstone_round_trip(store: &Store) {
    let full = StepstoneConnection {
        id: "ss-1".into(),
        incident_id: Some("inc-1".into()),
        time_ns: 1_700_000_000_000_000_000,
        src: "198.51.100.7".into(),
        sport: 40000,
        dst: "203.0.113.9".into(),
        dport: 22,
        tp_us: Some(41_000),
        ta_n: 10,
        ta_min_us: Some(800),
        ta_median_us: Some(855.5),
        ta_max_us: Some(910),
        ta_variance: Some(1234.25),
        fp: Some("4:120+8:0:1460:64240,8:mss,nop,ws,nop,nop,sok:df,id+:0".into()),
        fa: Some("4:62+2:0:1460:mss*45,7:mss,sok,ts,nop,ws:df:0".into()),
        tapp_us: Some(52_300),
        app: Some("timed".into()),
        verdict: "relay".into(),
        signals: "ttl_class,option_order,timing".into(),
    };
    let bare = StepstoneConnection {
        id: "ss-2".into(),
        incident_id: None,
        time_ns: 1_700_000_001_000_000_000,
        src: "2001:db8::1".into(),
        tp_us: None,
        ta_n: 0,
        ta_min_us: None,
        ta_median_us: None,
        ta_max_us: None,
        ta_variance: None,
        fp: None,
        fa: None,
        tapp_us: None,
        app: None,
        verdict: "undecided".into(),
        signals: String::new(),
        ..full.clone()
    };
    store.put_stepstone_connection(&full).await.unwrap();
    store.put_stepstone_connection(&bare).await.unwrap();
    let all = store.stepstone_connections(None, None, 10).await.unwrap();
    assert_eq!(all, [bare.clone(), full.clone()]);
    let one = store
        .stepstone_connections(Some("198.51.100.7"), None, 10)
        .await
        .unwrap();
    assert_eq!(one, std::slice::from_ref(&full));
    let later = store
        .stepstone_connections(None, Some(1_700_000_000_500_000_000), 10)
        .await
        .unwrap();
    assert_eq!(later, [bare]);
    let bad = StepstoneConnection {
        verdict: "maybe".into(),
        ..full.clone()
    };
    assert!(matches!(
        store.put_stepstone_connection(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(store.stepstone_connections(None, None, 0).await.is_err());
}
