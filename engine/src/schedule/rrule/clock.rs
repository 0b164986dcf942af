//! Wall time in a rule's zone: zones named as the Temporal API names them, instants to local
//! date-times and back, with the two ways a local time can fail to name one instant.

use chrono::{LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

use super::RuleError;

/// The zone a rule recurs in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RuleZone {
    /// UTC.
    Utc,
    /// An IANA zone.
    Named(Tz),
}

impl RuleZone {
    /// A zone by name as the Temporal API accepts one: `UTC` or an IANA name, in any case. Any
    /// other name is refused as a RangeError naming it in capitals.
    pub fn parse(name: &str) -> Result<RuleZone, RuleError> {
        if name.eq_ignore_ascii_case("utc") {
            return Ok(RuleZone::Utc);
        }
        Tz::from_str_insensitive(name)
            .map(RuleZone::Named)
            .map_err(|_| {
                RuleError::range(format!(
                    "Invalid time zone specified: {}",
                    name.to_uppercase()
                ))
            })
    }

    /// The zone's offset from UTC at instant `ms`, in milliseconds.
    fn offset_at(&self, ms: i64) -> i64 {
        match self {
            RuleZone::Utc => 0,
            RuleZone::Named(tz) => chrono::DateTime::from_timestamp_millis(ms)
                .map(|at| {
                    i64::from(
                        tz.offset_from_utc_datetime(&at.naive_utc())
                            .fix()
                            .local_minus_utc(),
                    ) * 1000
                })
                .unwrap_or(0),
        }
    }

    /// The wall time at instant `ms`.
    pub fn local(&self, ms: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp_millis(ms + self.offset_at(ms))
            .unwrap_or_default()
            .naive_utc()
    }

    /// The instant a wall time names: `None` for a time a spring-forward change skips, the
    /// earlier of the two for a time an autumn change repeats.
    pub fn exact(&self, local: NaiveDateTime) -> Option<i64> {
        match self {
            RuleZone::Utc => Some(local.and_utc().timestamp_millis()),
            RuleZone::Named(tz) => match tz.from_local_datetime(&local) {
                LocalResult::Single(at) => Some(at.timestamp_millis()),
                LocalResult::Ambiguous(earlier, _) => Some(earlier.timestamp_millis()),
                LocalResult::None => None,
            },
        }
    }

    /// As [`RuleZone::exact`], but a repeated wall time is read with the offset in force at
    /// instant `near` when that offset is one of its two (the way a time is moved within an
    /// hour without leaving the hour's offset).
    pub fn exact_near(&self, local: NaiveDateTime, near: i64) -> Option<i64> {
        if let RuleZone::Named(tz) = self {
            if let LocalResult::Ambiguous(earlier, later) = tz.from_local_datetime(&local) {
                let offset = self.offset_at(near);
                let later_offset = i64::from(later.offset().fix().local_minus_utc()) * 1000;
                return Some(if later_offset == offset {
                    later.timestamp_millis()
                } else {
                    earlier.timestamp_millis()
                });
            }
        }
        self.exact(local)
    }

    /// The instant a wall time names, a skipped one read with the offset in force before the
    /// change (so it lands as far past the change as it was meant to be past the skipped hour).
    pub fn compatible(&self, local: NaiveDateTime) -> i64 {
        self.exact(local).unwrap_or_else(|| {
            let naive_ms = local.and_utc().timestamp_millis();
            let before = self.offset_at(naive_ms - 86_400_000);
            naive_ms - before
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn zones_are_named_as_temporal_names_them() {
        assert_eq!(RuleZone::parse("utc").unwrap(), RuleZone::Utc);
        assert_eq!(
            RuleZone::parse("america/new_york").unwrap(),
            RuleZone::Named(chrono_tz::America::New_York)
        );
        assert_eq!(
            RuleZone::parse("utc+5").unwrap_err().message,
            "Invalid time zone specified: UTC+5"
        );
    }

    #[test]
    fn skipped_and_repeated_wall_times() {
        let ny = RuleZone::parse("America/New_York").unwrap();
        // 2026-03-08 02:30 does not exist; 2026-11-01 01:30 happens twice.
        assert_eq!(ny.exact(at(2026, 3, 8, 2, 30)), None);
        assert_eq!(
            ny.compatible(at(2026, 3, 8, 2, 30)),
            at(2026, 3, 8, 7, 30).and_utc().timestamp_millis()
        );
        assert_eq!(
            ny.exact(at(2026, 11, 1, 1, 30)),
            Some(at(2026, 11, 1, 5, 30).and_utc().timestamp_millis())
        );
        assert_eq!(
            ny.local(at(2026, 11, 1, 6, 30).and_utc().timestamp_millis()),
            at(2026, 11, 1, 1, 30)
        );
    }
}
