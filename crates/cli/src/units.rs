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

/// A packet rate: `2000000`, `2Mpps`, `500kpps`, or a bit rate `10Gb/s` / `300Mbps` which
/// needs `mean_packet_bytes` (the size on the wire including the 20-byte Ethernet preamble
/// and inter-frame gap is *not* added: give the frame size you want counted).
pub fn parse_rate_pps(s: &str, mean_packet_bytes: Option<f64>) -> Result<f64> {
    let lower = s.trim().replace(' ', "").to_ascii_lowercase();
    let (v, unit) = number_and_unit(&lower, "rate", "14.88Mpps or 10Gb/s")?;
    let (scale, rest) = match unit.chars().next() {
        Some('k') => (1e3, &unit[1..]),
        Some('m') => (1e6, &unit[1..]),
        Some('g') => (1e9, &unit[1..]),
        Some('t') => (1e12, &unit[1..]),
        _ => (1.0, unit),
    };
    match rest {
        "" | "pps" | "p/s" => Ok(v * scale),
        "b/s" | "bps" | "bit/s" => {
            let size = mean_packet_bytes.with_context(|| {
                format!(
                    "rate {s:?} is a bit rate: give --mean-packet-size to turn it into packets/s"
                )
            })?;
            if size <= 0.0 {
                bail!("--mean-packet-size must be positive");
            }
            Ok(v * scale / 8.0 / size)
        }
        u => bail!("rate {s:?}: unknown unit {u:?} (pps, kpps, Mpps, b/s, Mb/s, Gb/s)"),
    }
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
        assert!((parse_rate_pps("14.88Mpps", None).unwrap() - 14.88e6).abs() < 1.0);
        // 10 Gb/s of 84-byte wire slots is the classic 14.88 Mpps.
        let r = parse_rate_pps("10Gb/s", Some(84.0)).unwrap();
        assert!((r - 14_880_952.0).abs() < 1.0, "{r}");
        assert!(parse_rate_pps("10Gb/s", None).is_err());
        assert!(parse_rate_pps("10 furlongs", None).is_err());
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
