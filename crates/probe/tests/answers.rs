//! What a query answer means and what it may cost: verdicts and gaps over windows the probe
//! does or does not hold, the false-match probability of tiny rates, the cap on one answer,
//! and the byte budget shared by all answers in flight. The router is called directly (no
//! network), over real digest tables.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ashiato_probe::api::{
    ANSWER_BUDGET_BYTES, MAX_ANSWER_BYTES, MAX_EPOCH_ENTRIES, MAX_EPOCHS_PER_ANSWER, ProbeState,
    QueryRequest, QueryResponse, Verdict, answer_at, answer_body, answer_bound, router,
};
use ashiato_probe::metrics::IngestCounters;
use ashiato_tables::rng::Xoshiro256pp;
use ashiato_tables::{DigestTables, FilterKind, FilterParams, SpillConfig, TablesConfig};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use tower::ServiceExt;

const E: u64 = 1_000_000_000;

fn state(cfg: TablesConfig, budget: usize) -> Arc<ProbeState> {
    Arc::new(ProbeState {
        name: "test".into(),
        source: "memory".into(),
        table_id: cfg.table_id,
        tables: DigestTables::new(cfg).unwrap(),
        counters: Arc::new(IngestCounters::default()),
        started: Instant::now(),
        answer_budget: Arc::new(Semaphore::new(budget)),
    })
}

fn config(params: FilterParams, retention: u32, spill: Option<&Path>) -> TablesConfig {
    let mut cfg = TablesConfig::new(params, 7);
    cfg.retention_epochs = retention;
    cfg.spill = spill.map(|dir| SpillConfig {
        dir: dir.to_path_buf(),
        budget_bytes: u64::MAX,
    });
    cfg
}

fn big_filter() -> FilterParams {
    FilterParams {
        kind: FilterKind::Blocked,
        m_bits: 1 << 20,
        k: 8,
    }
}

fn digests(seed: u64, n: usize) -> Vec<u128> {
    let mut rng = Xoshiro256pp::new(seed);
    (0..n).map(|_| rng.next_u128()).collect()
}

fn request(ds: &[u128], from_ns: Option<u64>, to_ns: Option<u64>) -> QueryRequest {
    QueryRequest {
        digests: ds.iter().map(|d| format!("{d:032x}")).collect(),
        from_ns,
        to_ns,
        table_id: None,
    }
}

fn ask(st: &ProbeState, ds: &[u128], from: u64, to: u64, done: bool) -> QueryResponse {
    answer_at(st, &request(ds, Some(from), Some(to)), ds, 0, done).unwrap()
}

/// A digest is `not_seen` only where the whole window is held; over epochs that left memory,
/// before the first packet or after the newest one on a live input it is `unknown`.
#[test]
fn verdicts_follow_what_the_window_holds() {
    let st = state(config(big_filter(), 3, None), ANSWER_BUDGET_BYTES);
    let ds = digests(1, 2);
    let (present, absent) = (ds[0], ds[1]);
    let mut w = st.tables.writer();
    for e in 10..=20 {
        w.insert(e * E, present);
    }
    drop(w);
    // Held: 18..=20.
    let r = ask(&st, &[present, absent], 18 * E, 21 * E - 1, false);
    assert!(r.gaps.is_empty(), "{:?}", r.gaps);
    assert_eq!(r.answers[0].verdict(), Verdict::Seen);
    assert_eq!(r.answers[1].verdict(), Verdict::NotSeen);
    assert!(!r.answers[1].seen);
    // Epochs 12..=17 left memory (no spill directory): unknown, not "not seen".
    let r = ask(&st, &[present, absent], 12 * E, 21 * E - 1, false);
    assert_eq!(r.answers[1].verdict(), Verdict::Unknown);
    assert!(!r.answers[1].seen);
    assert!(r.answers[1].reason.as_deref().unwrap().contains("expired"));
    assert_eq!(r.gaps.len(), 1);
    assert_eq!((r.gaps[0].from_ns, r.gaps[0].to_ns), (12 * E, 18 * E));
    assert_eq!(r.answers[0].verdict(), Verdict::Seen, "seen stays seen");
    // Before the first packet: not recorded. After the newest epoch: not yet recorded on a
    // live input, not recorded once a finite input is fully read.
    let r = ask(&st, &[absent], 5 * E, 9 * E, false);
    assert_eq!(r.gaps[0].reason, "not_recorded");
    let r = ask(&st, &[absent], 19 * E, 30 * E, false);
    assert_eq!(r.gaps[0].reason, "not_yet_recorded");
    assert_eq!(r.answers[0].verdict(), Verdict::Unknown);
    // The window an answer speaks for loses the gaps at its ends, never the covered part.
    assert_eq!((r.from_ns, r.to_ns), (19 * E, 21 * E));
    // A finished input (a capture file) ended: the time after its newest epoch was never
    // recorded, so a digest absent there is `unknown`, never `not_seen`.
    let r = ask(&st, &[absent], 19 * E, 30 * E, true);
    assert_eq!(r.gaps.len(), 1, "{:?}", r.gaps);
    assert_eq!(r.gaps[0].reason, "not_recorded");
    assert_eq!(r.gaps[0].from_ns, 21 * E);
    assert_eq!(r.answers[0].verdict(), Verdict::Unknown);
    assert_eq!((r.from_ns, r.to_ns), (19 * E, 21 * E));
    // Wholly after it: nothing searched, unknown.
    let r = ask(&st, &[absent], 25 * E, 30 * E, true);
    assert_eq!(r.epochs_searched, 0);
    assert_eq!(r.answers[0].verdict(), Verdict::Unknown);
    // Inside what it recorded, a finished input answers `not_seen`.
    let r = ask(&st, &[absent], 19 * E, 21 * E - 1, true);
    assert!(r.gaps.is_empty());
    assert_eq!(r.answers[0].verdict(), Verdict::NotSeen);
    let r = ask(&st, &[absent], 12 * E, 21 * E - 1, false);
    assert_eq!((r.from_ns, r.to_ns), (18 * E, 21 * E - 1));
    // Without a window: everything held, no gap at the ends.
    let r = answer_at(&st, &request(&[absent], None, None), &[absent], 0, false).unwrap();
    assert!(r.gaps.is_empty());
    assert_eq!(r.answers[0].verdict(), Verdict::NotSeen);
    assert_eq!(r.epochs_searched, 3);
}

/// Epochs whose spill write failed are `lost`: a digest not found is `unknown` there.
#[test]
fn lost_epochs_answer_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    let st = state(config(big_filter(), 2, Some(&spill)), ANSWER_BUDGET_BYTES);
    std::fs::remove_dir_all(&spill).unwrap();
    let ds = digests(2, 1);
    let mut w = st.tables.writer();
    for e in 0..5 {
        w.insert(e * E, ds[0] ^ u128::from(e + 1));
    }
    drop(w);
    st.tables.maintain().unwrap();
    let r = ask(&st, &ds, 0, 5 * E - 1, true);
    assert_eq!(r.answers[0].verdict(), Verdict::Unknown);
    assert_eq!(r.gaps.len(), 1);
    assert_eq!(
        (r.gaps[0].reason.as_str(), r.gaps[0].detail.as_deref()),
        ("lost", Some("spill_write_failed"))
    );
    assert_eq!((r.gaps[0].from_ns, r.gaps[0].to_ns), (0, 3 * E));
    assert_eq!(
        r.epochs_searched, 2,
        "only the epochs still held were searched"
    );
}

/// Well-sized filters have rates near 1e-30: the false-match probability must still be
/// positive (it used to be exactly 0) and equal to the sum of the rates.
#[test]
fn false_match_probability_of_tiny_rates_is_positive() {
    let standard = FilterParams {
        kind: FilterKind::Standard,
        ..big_filter()
    };
    let st = state(config(standard, 100, None), ANSWER_BUDGET_BYTES);
    let ds = digests(3, 2);
    let mut w = st.tables.writer();
    for e in 0..50 {
        // 1,000 digests in 2^20 bits, k = 8: a rate near 1e-17 per epoch, below the 1.1e-16
        // at which 1 - rate rounds to 1.
        for d in digests(1000 + e, 1000) {
            w.insert(e * E, d);
        }
    }
    drop(w);
    let r = ask(&st, &ds[1..], 0, 50 * E - 1, true);
    let rates: Vec<f64> = st.tables.epochs().iter().map(|e| e.fpr).collect();
    assert!(
        rates.iter().all(|&f| f > 0.0 && 1.0 - f == 1.0),
        "{rates:?}"
    );
    let sum: f64 = rates.iter().sum();
    assert!(r.false_match_probability > 0.0);
    assert!((r.false_match_probability - sum).abs() <= sum * 1e-9);
}

/// Tables where every bit of every epoch is set: every digest matches every epoch.
fn saturated(epochs: u64) -> Arc<ProbeState> {
    let tiny = FilterParams {
        kind: FilterKind::Blocked,
        m_bits: 512,
        k: 1,
    };
    let st = state(config(tiny, epochs as u32, None), ANSWER_BUDGET_BYTES);
    let mut w = st.tables.writer();
    for e in 0..epochs {
        // 12,000 single-bit inserts into 512 bits leave a bit clear with chance e^-23.
        for d in digests(e, 12_000) {
            w.insert(e * E, d);
        }
    }
    drop(w);
    st
}

/// A full batch matching hundreds of epochs each stays within the per-answer cap, shares the
/// epoch entries evenly and says it was cut.
#[test]
fn answers_never_exceed_the_cap() {
    let st = saturated(260);
    let ds = digests(99, 4096);
    let r = answer_at(&st, &request(&ds, None, None), &ds, 0, true).unwrap();
    let listed: usize = r.answers.iter().map(|a| a.epochs.len()).sum();
    assert!(listed <= MAX_EPOCH_ENTRIES);
    assert!(r.truncated);
    let lens: Vec<usize> = r.answers.iter().map(|a| a.epochs.len()).collect();
    assert_eq!(lens.iter().min(), lens.iter().max(), "evenly shared");
    assert!(lens[0] >= MAX_EPOCH_ENTRIES / 4096);
    assert!(r.answers.iter().all(|a| a.truncated && a.seen));
    let bytes = serde_json::to_vec(&r).unwrap().len();
    assert!(bytes <= answer_bound(4096), "{bytes}");
    assert!(answer_bound(4096) <= MAX_ANSWER_BYTES);
    // A small batch keeps the per-digest limit.
    let r = answer_at(&st, &request(&ds[..3], None, None), &ds[..3], 0, true).unwrap();
    assert!(
        r.answers
            .iter()
            .all(|a| a.epochs.len() == MAX_EPOCHS_PER_ANSWER)
    );
    assert!(!r.truncated);
}

/// The budget taken by a body is returned when it is dropped, sent or not.
#[tokio::test]
async fn body_releases_its_budget_when_dropped() {
    let sem = Arc::new(Semaphore::new(1000));
    let permit = sem.clone().try_acquire_many_owned(800).unwrap();
    let resp = answer_body(vec![b'x'; 300], permit);
    assert_eq!(sem.available_permits(), 700, "shrunk to the body's length");
    drop(resp);
    assert_eq!(sem.available_permits(), 1000);
    let permit = sem.clone().try_acquire_many_owned(500).unwrap();
    let resp = answer_body(vec![b'y'; 200_000], permit);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 200_000);
    assert_eq!(sem.available_permits(), 1000);
}

fn post(ds: &[u128]) -> Request<Body> {
    Request::post("/v1/query")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::to_vec(&request(ds, None, None)).unwrap(),
        ))
        .unwrap()
}

/// While unsent answers hold the budget, a new query gets 503 with Retry-After and a JSON
/// error; once they are gone, queries are answered again.
#[tokio::test]
async fn query_beyond_the_budget_gets_503() {
    let ds = digests(5, 1);
    let budget = answer_bound(1);
    let st = state(config(big_filter(), 3, None), budget);
    st.tables.writer().insert(E, ds[0]);
    let app = router(st.clone());
    let held = app.clone().oneshot(post(&ds)).await.unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    assert!(st.answer_budget.available_permits() < budget);
    // Hold the budget fully (as slow readers would) and ask again.
    let rest = st.answer_budget.available_permits() as u32;
    let hog = st
        .answer_budget
        .clone()
        .try_acquire_many_owned(rest)
        .unwrap();
    let refused = app.clone().oneshot(post(&ds)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("busy"));
    drop((held, hog));
    assert_eq!(st.answer_budget.available_permits(), budget);
    let again = app.oneshot(post(&ds)).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let body = again.into_body().collect().await.unwrap().to_bytes();
    let r: QueryResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(r.answers[0].verdict(), Verdict::Seen);
}
