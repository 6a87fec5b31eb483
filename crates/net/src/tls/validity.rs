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

    /// (year, month, day) of this instant.
    pub fn date(self) -> (i64, i64, i64) {
        civil_from_days(self.0.div_euclid(86_400))
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.date();
        let s = self.0.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
            s / 3600,
            s / 60 % 60,
            s % 60
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

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Days in `month` of `year`.
pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::{Standing, UtcTime, civil_from_days, days_from_civil, standing};

    const DAY: i64 = 86_400;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for z in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
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
