//! Tests of the lab PKI: names, lifetimes, issuing from an existing CA, and the validity
//! check at load.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{PkiOptions, init_pki, issue_identity};
use crate::tls::der::parse_certificate;
use crate::tls::validity::UtcTime;
use crate::tls::{
    TlsError, TlsFiles, check_certificates, client_config, read_certs, server_config,
};

const DAY: Duration = Duration::from_secs(86_400);

fn opts(days: u32) -> PkiOptions {
    PkiOptions {
        days,
        ..PkiOptions::default()
    }
}

fn info(path: &Path) -> crate::tls::der::CertInfo {
    parse_certificate(&read_certs(path).unwrap()[0]).unwrap()
}

#[test]
fn every_ca_has_its_own_name() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ia = init_pki(a.path(), &opts(30), SystemTime::now()).unwrap();
    let named = PkiOptions {
        federation: Some("tokyo lab".into()),
        ..opts(30)
    };
    let ib = init_pki(b.path(), &named, SystemTime::now()).unwrap();
    assert_ne!(ia.ca_name, ib.ca_name);
    assert!(
        ia.ca_name.starts_with("ashiato federation CA "),
        "{}",
        ia.ca_name
    );
    assert!(
        ib.ca_name.starts_with("ashiato federation CA tokyo lab "),
        "{}",
        ib.ca_name
    );
    let ca = info(&a.path().join("ca.pem"));
    assert_eq!(ca.common_name(), Some(ia.ca_name.as_str()));
    assert_ne!(ca.subject_der, info(&b.path().join("ca.pem")).subject_der);
    let bad = PkiOptions {
        federation: Some("a\nb".into()),
        ..opts(30)
    };
    let c = tempfile::tempdir().unwrap();
    assert!(matches!(
        init_pki(c.path(), &bad, SystemTime::now()),
        Err(TlsError::Invalid(_))
    ));
}

#[test]
fn lifetime_follows_days_and_keys_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let issued = init_pki(dir.path(), &opts(90), now).unwrap();
    let cert = info(&dir.path().join("probe.pem"));
    let today = UtcTime::from_system(now).0.div_euclid(86_400) * 86_400;
    assert_eq!(cert.not_before, today - 86_400, "valid from yesterday");
    assert_eq!(cert.not_after, today + 90 * 86_400);
    assert_eq!(issued.not_after, UtcTime(cert.not_after));
    let ca = info(&dir.path().join("ca.pem"));
    assert_eq!(ca.not_after, today + 3650 * 86_400);
    for key in ["ca-key.pem", "probe-key.pem", "client-key.pem"] {
        let mode = std::fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    for days in [0, 3651] {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            init_pki(d.path(), &opts(days), now),
            Err(TlsError::Invalid(_))
        ));
    }
    // A second init in the same directory would orphan every certificate of the first.
    assert!(matches!(
        init_pki(dir.path(), &opts(90), now),
        Err(TlsError::Exists { .. })
    ));
}

#[test]
fn names_that_are_not_plain_file_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "../escape",
        "a/b",
        "",
        ".hidden",
        "-x",
        "ca",
        &"x".repeat(65),
    ] {
        let o = PkiOptions {
            names: vec![name.to_string()],
            ..opts(30)
        };
        assert!(
            matches!(
                init_pki(dir.path(), &o, SystemTime::now()),
                Err(TlsError::Invalid(_))
            ),
            "{name:?}"
        );
    }
    assert!(
        !dir.path().join("ca.pem").exists(),
        "nothing written for a bad request"
    );
}

#[test]
fn an_identity_issued_later_is_trusted_by_the_first_ones() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    init_pki(dir.path(), &opts(30), now).unwrap();
    let issued =
        issue_identity(dir.path(), "probe-2", &["192.0.2.9".into()], 60, false, now).unwrap();
    assert_eq!(issued.certs, vec![dir.path().join("probe-2.pem")]);
    let cert = info(&dir.path().join("probe-2.pem"));
    let ca = info(&dir.path().join("ca.pem"));
    assert_eq!(issued.ca_name, ca.common_name().unwrap());
    let today = UtcTime::from_system(now).0.div_euclid(86_400) * 86_400;
    assert_eq!(cert.not_after, today + 60 * 86_400);
    // Both ends load: the chain verifies and the dates are fine.
    server_config(&TlsFiles::in_dir(dir.path(), "probe-2")).unwrap();
    client_config(&TlsFiles::in_dir(dir.path(), "probe-2")).unwrap();
    // No silent overwrite; --force replaces.
    let again = issue_identity(dir.path(), "probe-2", &[], 60, false, now);
    assert!(matches!(again, Err(TlsError::Exists { .. })), "{again:?}");
    let before = std::fs::read(dir.path().join("probe-2.pem")).unwrap();
    issue_identity(dir.path(), "probe-2", &[], 60, true, now).unwrap();
    assert_ne!(
        before,
        std::fs::read(dir.path().join("probe-2.pem")).unwrap()
    );
    // Not past the CA's own end.
    let long = issue_identity(dir.path(), "x", &[], 3650, false, now + 30 * DAY);
    assert!(
        matches!(long, Err(TlsError::Invalid(ref m)) if m.contains("outlive")),
        "{long:?}"
    );
}

#[test]
fn issuing_needs_the_matching_ca_key() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let now = SystemTime::now();
    init_pki(a.path(), &opts(30), now).unwrap();
    init_pki(b.path(), &opts(30), now).unwrap();
    std::fs::copy(b.path().join("ca-key.pem"), a.path().join("ca-key.pem")).unwrap();
    let r = issue_identity(a.path(), "x", &[], 30, false, now);
    assert!(
        matches!(r, Err(TlsError::Pem { ref what, .. }) if what.contains("not the key")),
        "{r:?}"
    );
    std::fs::remove_file(a.path().join("ca-key.pem")).unwrap();
    let r = issue_identity(a.path(), "x", &[], 30, false, now);
    assert!(matches!(r, Err(TlsError::Read { .. })), "{r:?}");
    assert!(!a.path().join("x.pem").exists());
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused_at_load() {
    let now = SystemTime::now();
    // An identity that expired a year ago, under a CA that is still valid.
    let old = tempfile::tempdir().unwrap();
    init_pki(old.path(), &opts(30), now - 400 * DAY).unwrap();
    let files = TlsFiles::in_dir(old.path(), "probe");
    match check_certificates(&files.ca, Some(&files.cert), now) {
        Err(e @ TlsError::Expired { .. }) => {
            let m = e.to_string();
            assert!(m.contains("probe.pem") && m.contains("expired on"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        server_config(&files),
        Err(TlsError::Expired { .. })
    ));
    assert!(matches!(
        client_config(&files),
        Err(TlsError::Expired { .. })
    ));
    // A CA that expired.
    let ancient = tempfile::tempdir().unwrap();
    init_pki(ancient.path(), &opts(1), now - 4000 * DAY).unwrap();
    match check_certificates(&ancient.path().join("ca.pem"), None, now) {
        Err(TlsError::Expired { path, what, .. }) => {
            assert!(path.ends_with("ca.pem"));
            assert_eq!(what, "CA certificate");
        }
        other => panic!("{other:?}"),
    }
    // Made for next month (or a clock that is behind).
    let future = tempfile::tempdir().unwrap();
    init_pki(future.path(), &opts(30), now + 30 * DAY).unwrap();
    let files = TlsFiles::in_dir(future.path(), "client");
    let e = check_certificates(&files.ca, Some(&files.cert), now).unwrap_err();
    assert!(matches!(e, TlsError::NotYetValid { .. }), "{e}");
    assert!(e.to_string().contains("check the clock"), "{e}");
}

#[test]
fn a_certificate_that_expires_soon_is_reported_but_accepted() {
    let now = SystemTime::now();
    let dir = tempfile::tempdir().unwrap();
    init_pki(dir.path(), &opts(365), now - 350 * DAY).unwrap();
    let files = TlsFiles::in_dir(dir.path(), "probe");
    let notices = check_certificates(&files.ca, Some(&files.cert), now).unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].path.ends_with("probe.pem"));
    assert!((13..=15).contains(&notices[0].days_left), "{notices:?}");
    assert!(notices[0].to_string().contains("days left"));
    server_config(&files).unwrap();
    assert!(
        check_certificates(&files.ca, Some(&files.cert), now - 30 * DAY)
            .unwrap()
            .is_empty()
    );
}
