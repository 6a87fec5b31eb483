//! `ashiato federation beyond`: the peering-skip lists of every participant, computed from an
//! AS topology instead of written by hand (`ashiato_trace::topology::Topology::beyond`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use ashiato_trace::topology::{Asn, BEYOND_CAP};

use crate::UsageError;
use crate::args::BeyondArgs;

/// The participants file: `ASN` or `ASN HOST:PORT` a line, `#` comments. Returns each
/// participant with its controller address, if given.
fn participants(path: &Path, text: &str) -> Result<BTreeMap<Asn, Option<String>>, UsageError> {
    let mut out = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        let bad = |why: &str| {
            UsageError(format!(
                "{}:{}: {why}: {:?}",
                path.display(),
                n + 1,
                line.chars().take(80).collect::<String>()
            ))
        };
        let asn: Asn = f
            .next()
            .unwrap_or("")
            .trim_start_matches("AS")
            .trim_start_matches("as")
            .parse()
            .map_err(|_| bad("not an AS number"))?;
        let addr = f.next().map(str::to_string);
        if let Some(a) = &addr
            && (a.len() > 255 || !a.contains(':') || a.chars().any(char::is_control))
        {
            return Err(bad("the controller must be host:port"));
        }
        if f.next().is_some() {
            return Err(bad("one AS number and at most one host:port a line"));
        }
        if out.insert(asn, addr).is_some() {
            return Err(bad("listed twice"));
        }
    }
    Ok(out)
}

/// `ashiato federation beyond`
pub fn beyond(a: &BeyondArgs) -> Result<()> {
    let topology = ashiato_lab::topo::load(&a.topology).map_err(|e| UsageError(e.to_string()))?;
    let text = std::fs::read_to_string(&a.participants)
        .with_context(|| format!("{}: cannot read", a.participants.display()))?;
    let parts = participants(&a.participants, &text)?;
    if parts.is_empty() {
        return Err(UsageError(format!(
            "{}: no participating domain listed (one `ASN [HOST:PORT]` a line)",
            a.participants.display()
        ))
        .into());
    }
    if let Some(missing) = parts.keys().find(|&&d| !topology.contains(d)) {
        return Err(UsageError(format!(
            "{}: AS{missing} is not in the topology {}",
            a.participants.display(),
            a.topology.display()
        ))
        .into());
    }
    if let Some(d) = a.domain
        && !parts.contains_key(&d)
    {
        return Err(UsageError(format!(
            "--domain {d}: not a participant in {}",
            a.participants.display()
        ))
        .into());
    }
    let participates = |x: Asn| parts.contains_key(&x);
    let (mut lists, mut capped, mut empty) = (0usize, 0usize, 0usize);
    let mut out = String::new();
    for &d in parts.keys() {
        if a.domain.is_some_and(|only| only != d) {
            continue;
        }
        let gaps: Vec<Asn> = topology
            .neighbours(d)
            .map(|(n, _)| n)
            .filter(|&n| !participates(n))
            .collect();
        if !a.json {
            let _ = writeln!(
                out,
                "# AS{d}: {} neighbours, {} run no controller",
                topology.neighbours(d).count(),
                gaps.len()
            );
        }
        for n in gaps {
            let b = topology.beyond(n, d, &participates, usize::from(a.depth));
            lists += 1;
            capped += usize::from(b.capped);
            empty += usize::from(b.skips.is_empty());
            // The domain file lists the skipped domains nearest to us first.
            let entries: Vec<(Asn, Vec<Asn>, Option<&String>)> = b
                .skips
                .iter()
                .map(|k| {
                    let mut via = k.gap.clone();
                    via.reverse();
                    (k.domain, via, parts.get(&k.domain).and_then(Option::as_ref))
                })
                .collect();
            if a.json {
                let beyond: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|(asn, via, c)| serde_json::json!({"asn": asn, "via": via, "controller": c}))
                    .collect();
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({"domain": d, "neighbour": n, "beyond": beyond, "capped": b.capped})
                );
                continue;
            }
            let _ = writeln!(out, "[[neighbour]]\nasn = {n}");
            if entries.is_empty() {
                let _ = writeln!(
                    out,
                    "# no participating domain within {} hops behind AS{n}: traces through it end in a gap",
                    a.depth
                );
            } else {
                let _ = writeln!(out, "beyond = [");
                for (asn, via, c) in &entries {
                    let via: Vec<String> = via.iter().map(Asn::to_string).collect();
                    let controller = c
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| format!("<host:port of AS{asn}'s controller>"));
                    let _ = writeln!(
                        out,
                        "  {{ asn = {asn}, via = [{}], controller = \"{controller}\" }},",
                        via.join(", ")
                    );
                }
                let _ = writeln!(out, "]");
            }
            if b.capped {
                let _ = writeln!(
                    out,
                    "# capped: more than {BEYOND_CAP} domains lie beyond AS{n}; only the nearest {BEYOND_CAP} are listed"
                );
            }
        }
        if !a.json {
            out.push('\n');
        }
    }
    print!("{out}");
    eprintln!(
        "{} participants, {lists} non-participating neighbours: {capped} lists capped at {BEYOND_CAP}, {empty} with no participant within {} hops",
        parts.len(),
        a.depth
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::participants;
    use std::path::Path;

    #[test]
    fn participants_file_lines() {
        let p = participants(
            Path::new("p"),
            "# federation\n64501\nAS64502 10.0.0.2:7443 # with its controller\n\n",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[&64502].as_deref(), Some("10.0.0.2:7443"));
        for bad in ["x", "64501 a b", "64501\n64501", "64501 nocolon"] {
            assert!(participants(Path::new("p"), bad).is_err(), "{bad}");
        }
    }
}
