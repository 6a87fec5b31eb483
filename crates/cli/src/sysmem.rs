//! Whether a memory plan fits this machine: the probe's tables are allocated in full at
//! start, so a plan larger than the machine fails late (or gets the process killed) unless it
//! is refused up front.

use anyhow::{Context, Result};

use crate::units::human_bytes;

/// The machine's memory, from `/proc/meminfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `MemTotal`, bytes.
    pub total: u64,
    /// `MemAvailable`, bytes.
    pub available: u64,
}

/// Parses `/proc/meminfo` text (values in kB).
pub fn parse_meminfo(text: &str) -> Option<Memory> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kb = rest.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
            kb.checked_mul(1024)
        })
    };
    Some(Memory {
        total: field("MemTotal")?,
        available: field("MemAvailable")?,
    })
}

/// This machine's memory.
pub fn this_machine() -> Result<Memory> {
    let text = std::fs::read_to_string("/proc/meminfo").context("/proc/meminfo")?;
    parse_meminfo(&text).context("/proc/meminfo: no MemTotal or MemAvailable")
}

/// What a plan of `need` bytes means on a machine with `mem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Fits in what is available.
    Fits,
    /// Fits in the machine but not in what is available now (the kernel would have to
    /// reclaim caches or swap): a warning.
    Tight(String),
    /// Larger than the machine's memory: refused.
    TooBig(String),
}

/// Compares a plan with the machine.
pub fn fit(need: u64, mem: Memory) -> Fit {
    if need > mem.total {
        Fit::TooBig(format!(
            "the digest tables need {} but this machine has {} of memory: lower --retention \
             or --rate, raise --fpr or --epoch, or spill to disk (--spill-dir)",
            human_bytes(need as f64),
            human_bytes(mem.total as f64)
        ))
    } else if need > mem.available {
        Fit::Tight(format!(
            "the digest tables need {} and only {} of memory is available now",
            human_bytes(need as f64),
            human_bytes(mem.available as f64)
        ))
    } else {
        Fit::Fits
    }
}

#[cfg(test)]
mod tests {
    use super::{Fit, Memory, fit, parse_meminfo};

    #[test]
    fn meminfo_is_parsed_in_bytes() {
        let text =
            "MemTotal:       24589492 kB\nMemFree:        1000 kB\nMemAvailable:   22000000 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some(Memory {
                total: 24_589_492 * 1024,
                available: 22_000_000 * 1024
            })
        );
        assert_eq!(parse_meminfo("MemTotal: 12 kB\n"), None);
    }

    #[test]
    fn plans_beyond_the_machine_are_refused_and_tight_ones_warned() {
        let mem = Memory {
            total: 24 << 30,
            available: 20 << 30,
        };
        assert_eq!(fit(1 << 30, mem), Fit::Fits);
        assert!(matches!(fit(22 << 30, mem), Fit::Tight(_)));
        // The example: --rate 1Gpps --retention 3600s plans 6.37 TiB.
        match fit(7 << 40, mem) {
            Fit::TooBig(m) => assert!(m.contains("this machine has 24.00 GiB"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
