//! Times as the project writes them: ns since the Unix epoch, shown as RFC 3339 UTC with
//! nanoseconds. Pure calendar arithmetic (proleptic Gregorian), no clock, no time zones.

const NS: u64 = 1_000_000_000;

/// A time in ns since the Unix epoch as RFC 3339 UTC with nanoseconds, e.g.
/// `2026-01-01T00:00:05.000000000Z`.
pub fn rfc3339(ns: u64) -> String {
    let secs = ns / NS;
    let nanos = ns % NS;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`, for non-negative days).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days end each 400-year era's years.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year
    let mp = (5 * doy + 2) / 153; // March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_767_225_600_000_000_000),
            "2026-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339(1_767_225_605_000_000_000),
            "2026-01-01T00:00:05.000000000Z"
        );
        assert_eq!(
            rfc3339(1_709_210_096_000_000_001),
            "2024-02-29T12:34:56.000000001Z"
        );
        assert_eq!(rfc3339(951_782_400 * NS), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_735_689_599 * NS + 999_999_999),
            "2024-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn civil_matches_day_by_day_count() {
        // Walk day by day from 1970 and compare with an independent month-length count.
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..200_000 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > len[m as usize - 1] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn days_and_civil_round_trip() {
        for days in [0u64, 59, 60, 365, 10_957, 20_454, 200_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y as i64, m as u32, d as u32), days as i64);
        }
    }
}
