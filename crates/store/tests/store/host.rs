//! Host-tracing records (schema version 3) on either backend: claims and bot reports round
//! trip, keys are never overwritten (a replayed report is refused by the database), and bad
//! records are refused before anything is written.

use ashiato_store::{BotRecordRow, BotReportRow, HostClaim, Store, StoreError};

fn claim(id: &str, version: u64) -> HostClaim {
    HostClaim {
        id: id.into(),
        incident_id: Some("inc-1".into()),
        reporter: "victim-a".into(),
        received_ns: 1_767_261_720_000_000_000 + version,
        list_version: version,
        victim: "203.0.113.5".parse().unwrap(),
        fqdn: Some("www.example.net".into()),
        protocol: "tcp".into(),
        port: Some(80),
        from_ns: 1_767_261_600_000_000_000,
        to_ns: 1_767_261_900_000_000_000,
        reflectors: vec![],
        evidence_count: 2,
        evidence_summary: "2 alerts, SYN flood, 10:01:02-10:04:02".into(),
    }
}

fn report(reporter: &str, id: &str, claim: &str, received_ns: u64) -> BotReportRow {
    BotReportRow {
        reporter: reporter.into(),
        report_id: id.into(),
        claim_id: claim.into(),
        incident_id: None,
        received_ns,
        attack_packets: 2000,
        attacked_port: Some(80),
        records: vec![
            BotRecordRow {
                time_ns: 1,
                proto: "tcp".into(),
                dst: "45.33.32.156".parse().unwrap(),
                port: 6667,
                fqdn: Some("irc.example.org".into()),
                process: Some("bot".into()),
                features: vec!["irc".into(), "http-exe".into()],
            },
            BotRecordRow {
                time_ns: 2,
                proto: "udp".into(),
                dst: "2001:db8::53".parse().unwrap(),
                port: 53,
                fqdn: None,
                process: None,
                features: vec![],
            },
        ],
    }
}

/// Needs incident `inc-1` stored.
pub async fn host_round_trip(store: &Store) {
    let c1 = claim("hc-1", 1);
    let mut c2 = claim("hc-2", 2);
    c2.incident_id = None;
    c2.fqdn = None;
    c2.port = None;
    c2.protocol = "udp".into();
    c2.reflectors = vec![
        "192.0.2.53".parse().unwrap(),
        "2001:db8::1".parse().unwrap(),
    ];
    store.put_host_claim(&c1).await.unwrap();
    store.put_host_claim(&c2).await.unwrap();
    assert_eq!(
        store.host_claims(0, 10).await.unwrap(),
        [c1.clone(), c2.clone()]
    );
    assert_eq!(store.host_claims(1, 10).await.unwrap(), [c2.clone()]);
    // A claim id or list version taken: refused, nothing changed.
    let mut again = claim("hc-1", 3);
    again.victim = "198.51.100.1".parse().unwrap();
    assert!(matches!(
        store.put_host_claim(&again).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(matches!(
        store.put_host_claim(&claim("hc-9", 2)).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(store.host_claims(0, 10).await.unwrap().len(), 2);
    let mut bad = claim("hc-3", 3);
    bad.from_ns = bad.to_ns + 1;
    assert!(matches!(
        store.put_host_claim(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad = claim("hc-3", 3);
    bad.incident_id = Some("inc-none".into());
    assert!(matches!(
        store.put_host_claim(&bad).await,
        Err(StoreError::Invalid(_))
    ));

    // Reports: the same id from two hosts is two reports; from one host a replay.
    let r1 = report("host-1", "r1", "hc-1", 10);
    let mut r2 = report("host-2", "r1", "hc-1", 10);
    r2.incident_id = Some("inc-1".into());
    r2.attacked_port = None;
    let mut r3 = report("host-1", "r2", "hc-2", 5);
    r3.records.clear();
    for r in [&r1, &r2, &r3] {
        store.put_bot_report(r).await.unwrap();
    }
    let mut replay = report("host-1", "r1", "hc-1", 99);
    replay.records.truncate(1);
    assert!(matches!(
        store.put_bot_report(&replay).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(
        store.bot_reports(None, None, 10).await.unwrap(),
        [r3.clone(), r1.clone(), r2.clone()]
    );
    assert_eq!(
        store.bot_reports(Some("hc-1"), None, 10).await.unwrap(),
        [r1.clone(), r2.clone()]
    );
    // Paging resumes after the last report seen.
    let page = store.bot_reports(None, None, 2).await.unwrap();
    let last = page.last().unwrap();
    let rest = store
        .bot_reports(
            None,
            Some((last.received_ns, &last.reporter, &last.report_id)),
            2,
        )
        .await
        .unwrap();
    assert_eq!(rest, [r2.clone()]);
    // Unknown claim, feature with a comma, too many records: refused.
    assert!(matches!(
        store
            .put_bot_report(&report("host-3", "r1", "hc-none", 1))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad = report("host-3", "r1", "hc-1", 1);
    bad.records[0].features = vec!["irc,dns-error".into()];
    assert!(matches!(
        store.put_bot_report(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad = report("host-3", "r1", "hc-1", 1);
    bad.records = vec![bad.records[0].clone(); ashiato_store::host::MAX_BOT_RECORDS + 1];
    assert!(matches!(
        store.put_bot_report(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.bot_reports(None, None, 10).await.unwrap().len(), 3);
    assert!(store.bot_reports(None, None, 0).await.is_err());
}
