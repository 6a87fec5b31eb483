//! Choosing the lab's topology: a built-in shape, or a CAIDA/SNAP file reduced around a
//! seeded stub victim.

use std::path::{Path, PathBuf};

use ashiato_trace::topology::{self, Asn, LAB_VICTIM, ParseError, Topology, shape_asn};

/// Most domains a lab runs (each costs a controller, a few probes and their ports).
pub const MAX_DOMAINS: usize = 5000;

/// Which topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopologySpec {
    /// `default_lab()`: 13 domains, tier 1s, regional transits, stubs.
    Default,
    /// `chain(n)`: the 2009 trial's serial setting (13).
    Chain(usize),
    /// `mesh(n)`: the 2009 trial's full mesh (15).
    Mesh(usize),
    /// A CAIDA serial-1/serial-2 or SNAP file, reduced to `domains` around a stub victim.
    File {
        /// The file.
        path: PathBuf,
        /// Domains to keep.
        domains: usize,
    },
}

/// Why a topology could not be had.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("{path}: {source}", path = .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the file is not a topology line.
    #[error("{path}: {source}", path = .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error (it starts with `line N`).
        source: ParseError,
    },
    /// Too many or too few domains asked.
    #[error("{0} domains: the lab runs 2 to {MAX_DOMAINS}")]
    Size(usize),
    /// The file has no stub AS to be the victim.
    #[error("{path}: no stub AS (an AS with neighbours but no customer) to be the victim", path = .path.display())]
    NoStub {
        /// The file.
        path: PathBuf,
    },
}

/// A topology ready for a lab, its victim and a label for reports.
#[derive(Clone, Debug)]
pub struct Chosen {
    /// The topology.
    pub topology: Topology,
    /// The victim domain.
    pub victim: Asn,
    /// `default`, `chain`, `mesh` or the file name.
    pub label: String,
    /// Domains that must be among the origins (a chain's far end, so the attack crosses
    /// every domain as in the trial).
    pub must_attack: Vec<Asn>,
}

/// Builds the topology of `spec` with the victim chosen by `seed` where there is a choice.
pub fn choose(spec: &TopologySpec, seed: u64) -> Result<Chosen, TopologyError> {
    let size = |n: usize| {
        if (2..=MAX_DOMAINS).contains(&n) {
            Ok(n)
        } else {
            Err(TopologyError::Size(n))
        }
    };
    Ok(match spec {
        TopologySpec::Default => Chosen {
            topology: topology::default_lab(),
            victim: LAB_VICTIM,
            label: "default".into(),
            must_attack: Vec::new(),
        },
        TopologySpec::Chain(n) => {
            let n = size(*n)?;
            Chosen {
                topology: topology::chain(n),
                victim: shape_asn(n - 1),
                label: format!("chain of {n}"),
                must_attack: vec![shape_asn(0)],
            }
        }
        TopologySpec::Mesh(n) => {
            let n = size(*n)?;
            let t = topology::mesh(n);
            let victim = t.pick_stub(seed).unwrap_or(shape_asn(0));
            Chosen {
                topology: t,
                victim,
                label: format!("mesh of {n}"),
                must_attack: Vec::new(),
            }
        }
        TopologySpec::File { path, domains } => {
            let n = size(*domains)?;
            let full = load(path)?;
            let victim = full
                .pick_stub(seed)
                .ok_or_else(|| TopologyError::NoStub { path: path.clone() })?;
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            );
            let topology = full.sub_topology(victim, n);
            Chosen {
                label: format!(
                    "{name} ({} of {} ASes around AS{victim})",
                    topology.len(),
                    full.len()
                ),
                topology,
                victim,
                must_attack: Vec::new(),
            }
        }
    })
}

/// Reads and parses a topology file.
pub fn load(path: &Path) -> Result<Topology, TopologyError> {
    let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        path: path.to_owned(),
        source,
    })?;
    topology::parse(&text)
        .map(|p| p.topology)
        .map_err(|source| TopologyError::Parse {
            path: path.to_owned(),
            source,
        })
}
