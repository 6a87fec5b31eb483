//! Parsing of the human units the CLI accepts: durations (`5s`, `250ms`, `1m`), byte sizes
//! (`512MiB`, `1G`), packet rates (`1.5Mpps`, `10Gb/s`) and timestamps (ns, s.frac, RFC 3339).

use anyhow::{Context, Result, bail};

/// Splits `"1.5GiB"` into `(1.5, "GiB")`; `what` and `example` make the error message.
fn number_and_unit<'a>(s: &'a str, what: &str, example: &str) -> Result<(f64, &'a str)> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .with_context(|| format!("{what} {s:?}: expected a number and a unit like {example}"))?;
    Ok((v, unit.trim()))
}

/// `v * mult` as an integer, refusing what does not fit.
fn scaled(v: f64, mult: f64, what: &str, s: &str) -> Result<u64> {
    let x = v * mult;
    if !x.is_finite() || !(0.0..=1.8e19).contains(&x) {
        bail!("{what} {s:?} is out of range");
    }
    Ok(x as u64)
}

/// A duration in nanoseconds from `250ms`, `5s`, `1.5s`, `2m`, `1h`, `100us`, `10ns`; a bare
/// number is seconds.
pub fn parse_duration_ns(s: &str) -> Result<u64> {
    let s = s.trim();
    let (v, unit) = number_and_unit(s, "duration", "5s")?;
    let mult = match unit {
        "" | "s" => 1e9,
        "ms" => 1e6,
        "us" | "µs" => 1e3,
        "ns" => 1.0,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        u => bail!("duration {s:?}: unknown unit {u:?} (ns, us, ms, s, m, h)"),
    };
    scaled(v, mult, "duration", s)
}

/// A byte count from `1024`, `64KiB`, `512MiB`, `2GiB`, `1G` (powers of 1000 without the i).
pub fn parse_bytes(s: &str) -> Result<u64> {
    let s = s.trim();
    let (v, unit) = number_and_unit(s, "size", "4GiB")?;
    let mult = match unit.trim_end_matches('B') {
        "" => 1.0,
        "K" | "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        u => bail!("size {s:?}: unknown unit {u:?}"),
    };
    scaled(v, mult, "size", s)
}

/// A traffic rate as written on the command line. A bit rate needs the mean packet size
/// (another flag) to become packets/s, so the flag parses into this and
/// [`Rate::packets_per_sec`] resolves it once all flags are known.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// Packets per second (`2Mpps`, `500kpps`, `2000000`).
    Pps(f64),
    /// Bits per second (`10Gb/s`, `300Mbps`).
    BitsPerSec(f64),
}

impl Rate {
    /// Packets per second; a bit rate is divided by `mean_packet_bytes` (the frame size you
    /// want counted: the 20 bytes of Ethernet preamble and inter-frame gap are *not* added).
    pub fn packets_per_sec(self, mean_packet_bytes: Option<f64>) -> Result<f64> {
        match self {
            Rate::Pps(p) => Ok(p),
            Rate::BitsPerSec(b) => {
                let size = mean_packet_bytes.with_context(|| {
                    format!(
                        "--rate {b} bits/s is a bit rate: give --mean-packet-size to turn it into packets/s"
                    )
                })?;
                Ok(b / 8.0 / size)
            }
        }
    }
}

/// A rate that may be zero: `2000000`, `2Mpps`, `500kpps`, or a bit rate `10Gb/s` /
/// `300Mbps`.
fn parse_rate_or_zero(s: &str) -> Result<Rate> {
    let lower = s.trim().replace(' ', "").to_ascii_lowercase();
    let (v, unit) = number_and_unit(&lower, "rate", "14.88Mpps or 10Gb/s")?;
    let (scale, rest) = match unit.chars().next() {
        Some('k') => (1e3, &unit[1..]),
        Some('m') => (1e6, &unit[1..]),
        Some('g') => (1e9, &unit[1..]),
        Some('t') => (1e12, &unit[1..]),
        _ => (1.0, unit),
    };
    let x = v * scale;
    if !x.is_finite() {
        bail!("rate {s:?} is out of range");
    }
    match rest {
        "" | "pps" | "p/s" => Ok(Rate::Pps(x)),
        "b/s" | "bps" | "bit/s" => Ok(Rate::BitsPerSec(x)),
        u => bail!("rate {s:?}: unknown unit {u:?} (pps, kpps, Mpps, b/s, Mb/s, Gb/s)"),
    }
}

/// A traffic rate above zero, in packets/s or bits/s (see [`Rate`]).
pub fn parse_rate(s: &str) -> Result<Rate> {
    let r = parse_rate_or_zero(s)?;
    match r {
        Rate::Pps(x) | Rate::BitsPerSec(x) if x > 0.0 => Ok(r),
        _ => bail!("rate {s:?} must be above 0"),
    }
}

/// An offered packet rate for the live benchmark: packets/s, 0 meaning as fast as the sender
/// can; bit rates are refused (the benchmark's frames have one fixed size, say it in pps).
pub fn parse_packet_rate(s: &str) -> Result<f64> {
    match parse_rate_or_zero(s)? {
        Rate::Pps(x) => Ok(x),
        Rate::BitsPerSec(_) => bail!("rate {s:?}: give a packet rate such as 2Mpps"),
    }
}

/// A mean packet size in bytes, above 0 (at most 1 MiB: no link carries larger frames).
pub fn parse_packet_size(s: &str) -> Result<f64> {
    let v: f64 = s
        .trim()
        .parse()
        .with_context(|| format!("packet size {s:?}: expected a number of bytes like 800"))?;
    if !(v > 0.0 && v <= 1_048_576.0) {
        bail!("packet size {s:?} must be above 0 and at most 1048576 bytes");
    }
    Ok(v)
}

/// A false-positive rate strictly between 0 and 1 (`1e-3`, `0.001`).
pub fn parse_fpr(s: &str) -> Result<f64> {
    let v: f64 = s
        .trim()
        .parse()
        .with_context(|| format!("false-positive rate {s:?}: expected a number like 1e-3"))?;
    if !(v > 0.0 && v < 1.0) {
        bail!("false-positive rate {s:?} must be between 0 and 1 (exclusive)");
    }
    Ok(v)
}

/// Shortest epoch: below a millisecond, epoch rotation would dominate the insert path.
pub const MIN_EPOCH_NS: u64 = 1_000_000;

/// An epoch length in ns, at least [`MIN_EPOCH_NS`].
pub fn parse_epoch_ns(s: &str) -> Result<u64> {
    let ns = parse_duration_ns(s)?;
    if ns < MIN_EPOCH_NS {
        bail!("epoch {s:?} must be at least 1ms");
    }
    Ok(ns)
}

/// A duration in ns that must be above 0 (a retention).
pub fn parse_positive_duration_ns(s: &str) -> Result<u64> {
    match parse_duration_ns(s)? {
        0 => bail!("duration {s:?} must be above 0"),
        ns => Ok(ns),
    }
}

/// A socket address to listen on, `ip:port` (`0.0.0.0:7443`, `[::1]:0`); host names are
/// refused: a listener binds an address, and resolving one here would hide which.
pub fn parse_socket_addr(s: &str) -> Result<std::net::SocketAddr> {
    s.trim()
        .parse()
        .with_context(|| format!("address {s:?}: expected ip:port such as 127.0.0.1:7443"))
}

/// A point in time as ns since the Unix epoch: an integer of ns (≥ 1e15), seconds with an
/// optional fraction, or RFC 3339 UTC `2009-06-01T12:00:00.5Z`.
pub fn parse_time_ns(s: &str) -> Result<u64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<u64>() {
        if v >= 1_000_000_000_000_000 {
            return Ok(v);
        }
        return v
            .checked_mul(1_000_000_000)
            .with_context(|| format!("time {s:?} is out of range"));
    }
    // Seconds with a fraction, parsed exactly (an f64 would lose the nanoseconds).
    if let Some((secs, frac)) = s.split_once('.')
        && let Ok(secs) = secs.parse::<u64>()
        && !frac.is_empty()
        && frac.len() <= 9
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        let frac_ns = frac.parse::<u64>()? * 10u64.pow(9 - frac.len() as u32);
        return secs
            .checked_mul(1_000_000_000)
            .and_then(|v| v.checked_add(frac_ns))
            .with_context(|| format!("time {s:?} is out of range"));
    }
    parse_rfc3339(s).with_context(|| {
        format!("time {s:?}: expected ns or seconds since 1970, or 2009-06-01T12:00:00Z")
    })
}

/// RFC 3339 through the `time` crate: real calendar checks (2023-02-31 is refused, not read
/// as 2023-03-03) and any UTC offset.
fn parse_rfc3339(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

/// Bytes for humans: `1.50 GiB`.
pub fn human_bytes(b: f64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2} {}", U[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("5s").unwrap(), 5_000_000_000);
        assert_eq!(parse_duration_ns("250ms").unwrap(), 250_000_000);
        assert_eq!(parse_duration_ns("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration_ns("2m").unwrap(), 120_000_000_000);
        assert!(parse_duration_ns("5 parsecs").is_err());
        assert!(parse_duration_ns("").is_err());
    }

    #[test]
    fn sizes_and_rates() {
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("64KiB").unwrap(), 65536);
        assert_eq!(parse_bytes("2G").unwrap(), 2_000_000_000);
        assert_eq!(parse_rate("14.88Mpps").unwrap(), Rate::Pps(14.88e6));
        // 10 Gb/s of 84-byte wire slots is the classic 14.88 Mpps.
        let r = parse_rate("10Gb/s").unwrap();
        assert_eq!(r, Rate::BitsPerSec(10e9));
        let pps = r.packets_per_sec(Some(84.0)).unwrap();
        assert!((pps - 14_880_952.0).abs() < 1.0, "{pps}");
        assert!(r.packets_per_sec(None).is_err());
        assert_eq!(
            Rate::Pps(5.0).packets_per_sec(None).unwrap(),
            5.0,
            "a packet rate needs no size"
        );
        for bad in ["10 furlongs", "fast", "0pps", "0", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_packet_rate("0").unwrap(), 0.0);
        assert_eq!(parse_packet_rate("2kpps").unwrap(), 2000.0);
        assert!(parse_packet_rate("1Gb/s").is_err());
    }

    #[test]
    fn ranges_are_checked() {
        assert_eq!(parse_fpr("1e-3").unwrap(), 1e-3);
        for bad in ["0", "1", "2", "-0.1", "NaN", "often"] {
            assert!(parse_fpr(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_epoch_ns("1ms").unwrap(), 1_000_000);
        assert!(parse_epoch_ns("999us").is_err());
        assert!(parse_positive_duration_ns("0s").is_err());
        assert_eq!(
            parse_socket_addr("[::1]:0").unwrap(),
            "[::1]:0".parse().unwrap()
        );
        assert!(parse_socket_addr("localhost:80").is_err());
        assert_eq!(parse_packet_size("84").unwrap(), 84.0);
        for bad in ["0", "-1", "inf", "NaN", "big"] {
            assert!(parse_packet_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_round_trip() {
        let t = parse_time_ns("2009-06-01T12:00:00.5Z").unwrap();
        assert_eq!(t, 1_243_857_600_500_000_000);
        assert_eq!(
            ashiato_wire::time::rfc3339(t),
            "2009-06-01T12:00:00.500000000Z"
        );
        assert_eq!(
            parse_time_ns("1243857600").unwrap(),
            1_243_857_600_000_000_000
        );
        assert_eq!(
            parse_time_ns("1243857600.25").unwrap(),
            1_243_857_600_250_000_000
        );
        assert!(parse_time_ns("yesterday").is_err());
        assert!(
            parse_time_ns("999999999999999").is_err(),
            "overflow is an error"
        );
        for ns in [0u64, 951_782_400_000_000_000, 4_102_444_799_999_999_999] {
            assert_eq!(parse_time_ns(&ashiato_wire::time::rfc3339(ns)).unwrap(), ns);
        }
    }

    #[test]
    fn impossible_dates_are_refused_and_offsets_honoured() {
        for bad in [
            "2023-02-31T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2023-13-01T00:00:00Z",
        ] {
            assert!(parse_time_ns(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_time_ns("2009-06-01T21:00:00+09:00").unwrap(),
            parse_time_ns("2009-06-01T12:00:00Z").unwrap()
        );
        assert!(
            parse_time_ns("1969-12-31T23:59:59Z").is_err(),
            "before 1970"
        );
    }
}
