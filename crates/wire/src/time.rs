//! Times as the project writes them: ns since the Unix epoch, shown as RFC 3339 UTC with
//! nanoseconds. The calendar is the `time` crate's; no clock, no time zones.

#[cfg(test)]
const NS: u64 = 1_000_000_000;

/// A time in ns since the Unix epoch as RFC 3339 UTC with nanoseconds, e.g.
/// `2026-01-01T00:00:05.000000000Z`. Always nine fraction digits, so lines align and sort.
pub fn rfc3339(ns: u64) -> String {
    // Every u64 of ns (up to the year 2554) is inside `time`'s range (years ±9999).
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
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
    fn the_end_of_u64_time_formats() {
        assert_eq!(rfc3339(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    }
}
