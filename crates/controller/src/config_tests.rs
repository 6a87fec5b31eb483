use std::path::Path;

use ashiato_api::federation::{TraceMode, Watch};

use super::{ConfigError, DomainConfig};

fn example() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/domain.example.toml"),
    )
    .unwrap()
}

fn parse(text: &str) -> Result<DomainConfig, ConfigError> {
    DomainConfig::parse(text, Path::new("domain.toml"))
}

/// The line and key of an error, checked through its text (what the operator reads).
fn error_text(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn the_documented_example_parses() {
    let c = parse(&example()).unwrap();
    assert_eq!(c.domain.asn, 64501);
    assert_eq!(c.trace.mode, TraceMode::Recursive);
    assert_eq!(c.probes.len(), 3);
    assert_eq!(c.probes[2].watches, Watch::Edge);
    assert_eq!(c.probes[0].watches, Watch::Link { neighbour: 64502 });
    let v = c.view();
    assert_eq!(v.neighbours.len(), 2);
    assert!(v.neighbours[0].participates);
    assert!(!v.neighbours[1].participates);
    assert_eq!(v.neighbours[1].beyond[0].domain, 64510);
    assert_eq!(v.neighbours[1].beyond[0].skipped, vec![64503]);
    assert_eq!(c.controller_of(64510), Some("198.51.100.7:7443"));
    assert_eq!(c.controller_of(64503), None);
    let p: Vec<u32> = c.participants().into_iter().map(|(d, _)| d).collect();
    assert_eq!(p, vec![64502, 64510, 64520]);
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let text = example().replace("hop_budget = 32", "hop_budgett = 32");
    let line = text
        .lines()
        .position(|l| l.contains("hop_budgett"))
        .unwrap()
        + 1;
    let e = error_text(&text);
    assert!(e.starts_with(&format!("domain.toml:{line}:")), "{e}");
    assert!(e.contains("hop_budgett"), "{e}");
}

#[test]
fn a_bad_value_names_its_line() {
    let text = example().replace("watches = \"edge\"", "watches = \"sideways\"");
    let line = text.lines().position(|l| l.contains("sideways")).unwrap() + 1;
    let e = error_text(&text);
    assert!(e.starts_with(&format!("domain.toml:{line}:")), "{e}");
    assert!(e.contains("link:<ASN>"), "{e}");
    let e = error_text("[domain]\nasn = \"x\"\n");
    assert!(e.starts_with("domain.toml:2:"), "{e}");
}

#[test]
fn semantic_errors_name_the_key_and_line() {
    // A probe on a link to a domain that is not a neighbour.
    let text = example().replace("watches = \"link:64503\"", "watches = \"link:64999\"");
    let line = text.lines().position(|l| l.contains("64999")).unwrap() + 1;
    let e = error_text(&text);
    assert!(
        e.starts_with(&format!("domain.toml:{line}: probe[1].watches:")),
        "{e}"
    );
    // Duplicate probe names.
    let text = example().replace("name = \"border-64503\"", "name = \"border-64502\"");
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("\"border-64502\""))
        .nth(1)
        .unwrap()
        .0
        + 1;
    let e = error_text(&text);
    assert!(
        e.starts_with(&format!("domain.toml:{line}: probe[1].name:")),
        "{e}"
    );
    // A neighbour equal to ourselves.
    let text = format!("{}\n[[neighbour]]\nasn = 64501\n", example());
    let line = text.lines().count();
    let e = error_text(&text);
    assert!(
        e.starts_with(&format!("domain.toml:{line}: neighbour[2].asn:")),
        "{e}"
    );
    // A bad address.
    let text = example().replace("10.0.0.6:7400", "10.0.0.6");
    let line = text
        .lines()
        .position(|l| l.contains("\"10.0.0.6\""))
        .unwrap()
        + 1;
    let e = error_text(&text);
    assert!(
        e.starts_with(&format!("domain.toml:{line}: probe[1].address:")),
        "{e}"
    );
    // The TLS identity must be as<ASN>.
    let e = error_text(&example().replace("name = \"as64501\"", "name = \"ctl\""));
    assert!(e.contains("tls.name") && e.contains("as64501"), "{e}");
    // Plaintext off loopback.
    let e = error_text(&example().replace("# dev_insecure = true", "dev_insecure = true"));
    assert!(e.contains("domain.listen") && e.contains("loopback"), "{e}");
    // A beyond-target whose `via` does not start with the neighbour.
    let e = error_text(&example().replace("via = [64503]", "via = [64504]"));
    assert!(e.contains("neighbour[1].beyond[0].via"), "{e}");
}

#[test]
fn relative_paths_are_taken_from_the_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("domain.toml");
    std::fs::write(&p, example()).unwrap();
    let c = DomainConfig::load(&p).unwrap();
    assert_eq!(c.domain.key_file, dir.path().join("federation.key"));
    assert_eq!(c.tls.unwrap().dir, dir.path().join("pki"));
    let e = DomainConfig::load(&dir.path().join("absent.toml")).unwrap_err();
    assert!(e.to_string().contains("absent.toml: cannot read"), "{e}");
}
