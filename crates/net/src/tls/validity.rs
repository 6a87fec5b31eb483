//! Certificate validity at start-up: an expired or not-yet-valid certificate is refused with
//! its dates, one that expires soon is reported so the operator renews it in time. Pure: the
//! caller passes the time.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Certificates expiring within this many days are reported at start.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// A UTC instant in whole seconds since the Unix epoch, shown as `YYYY-MM-DD HH:MM:SS UTC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcTime(pub i64);

impl UtcTime {
    /// `t` rounded down to a second (times before 1970 count as 1970).
    pub fn from_system(t: SystemTime) -> Self {
        UtcTime(
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        )
    }

    /// This instant in the `time` crate's terms (clamped to its years ±9999).
    pub fn to_offset(self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(self.0).unwrap_or(if self.0 < 0 {
            time::PrimitiveDateTime::MIN.assume_utc()
        } else {
            time::PrimitiveDateTime::MAX.assume_utc()
        })
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_offset();
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// Where `now` stands in a certificate's validity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Valid for more than [`EXPIRY_WARNING_DAYS`].
    Valid,
    /// Valid, but expires within [`EXPIRY_WARNING_DAYS`]; whole days left.
    ExpiresSoon {
        /// Whole days until notAfter.
        days_left: i64,
    },
    /// `now` is before notBefore.
    NotYetValid,
    /// `now` is after notAfter.
    Expired,
}

/// The standing of a certificate valid from `not_before` to `not_after` (inclusive, RFC
/// 5280 §4.1.2.5) at `now`.
pub fn standing(not_before: UtcTime, not_after: UtcTime, now: UtcTime) -> Standing {
    if now < not_before {
        Standing::NotYetValid
    } else if now > not_after {
        Standing::Expired
    } else {
        let days_left = (not_after.0 - now.0) / 86_400;
        if days_left < EXPIRY_WARNING_DAYS {
            Standing::ExpiresSoon { days_left }
        } else {
            Standing::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Standing, UtcTime, standing};

    const DAY: i64 = 86_400;

    #[test]
    fn times_display_as_utc() {
        assert_eq!(
            UtcTime(1_709_208_000).to_string(),
            "2024-02-29 12:00:00 UTC"
        );
        assert_eq!(UtcTime(-1).to_string(), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn standings() {
        let (nb, na) = (UtcTime(100 * DAY), UtcTime(200 * DAY));
        assert_eq!(
            standing(nb, na, UtcTime(100 * DAY - 1)),
            Standing::NotYetValid
        );
        assert_eq!(standing(nb, na, nb), Standing::Valid);
        assert_eq!(standing(nb, na, UtcTime(170 * DAY)), Standing::Valid);
        assert_eq!(
            standing(nb, na, UtcTime(171 * DAY)),
            Standing::ExpiresSoon { days_left: 29 }
        );
        assert_eq!(standing(nb, na, na), Standing::ExpiresSoon { days_left: 0 });
        assert_eq!(standing(nb, na, UtcTime(200 * DAY + 1)), Standing::Expired);
    }
}
