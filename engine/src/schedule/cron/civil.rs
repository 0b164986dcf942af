//! Calendar arithmetic with Luxon's rules for wall-clock times that do not exist or exist twice.

use chrono::{Datelike, NaiveDate};

use super::millis::{MS_DAY, MS_HOUR, MS_MINUTE, MS_SECOND};
use super::zone::Zone;

pub(super) const DAYS_IN_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    pub(super) year: i64,
    pub(super) month: i64,
    pub(super) day: i64,
    pub(super) hour: i64,
    pub(super) minute: i64,
    pub(super) second: i64,
    pub(super) millisecond: i64,
}

pub(super) fn days_in_month(year: i64, month: i64) -> i64 {
    let month0 = (month - 1).rem_euclid(12);
    let year = year + (month - 1).div_euclid(12);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month0 + 1 {
        2 if leap => 29,
        2 => 28,
        m => DAYS_IN_MONTH[(m - 1) as usize] as i64,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (month and day may overflow, as `Date.UTC`
/// lets them).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = year + (month - 1).div_euclid(12);
    let month = (month - 1).rem_euclid(12) + 1;
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + 1 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (day - 1)
}

pub(super) fn local_ts(c: &Civil) -> i64 {
    days_from_civil(c.year, c.month, c.day) * MS_DAY
        + c.hour * MS_HOUR
        + c.minute * MS_MINUTE
        + c.second * MS_SECOND
        + c.millisecond
}

pub(super) fn civil_of(local: i64) -> Civil {
    let days = local.div_euclid(MS_DAY);
    let ms = local.rem_euclid(MS_DAY);
    let date = NaiveDate::from_num_days_from_ce_opt((days + 719_163) as i32).unwrap_or_default();
    Civil {
        year: date.year() as i64,
        month: date.month() as i64,
        day: date.day() as i64,
        hour: ms / MS_HOUR,
        minute: ms % MS_HOUR / MS_MINUTE,
        second: ms % MS_MINUTE / MS_SECOND,
        millisecond: ms % MS_SECOND,
    }
}

/// An instant in a zone, moved the way a Luxon `DateTime` moves.
#[derive(Debug, Clone, Copy)]
pub(super) struct Instant {
    pub(super) ts: i64,
    pub(super) offset: i64,
    pub(super) zone: Zone,
}

impl Instant {
    pub(super) fn new(ts: i64, zone: Zone) -> Instant {
        Instant {
            ts,
            offset: zone.offset(ts),
            zone,
        }
    }

    pub(super) fn civil(&self) -> Civil {
        civil_of(self.ts + self.offset)
    }

    /// The instant for a wall-clock time, guessing the offset it had before the change: a time in
    /// a spring-forward gap moves forward by the gap, a repeated time keeps the guessed offset
    /// when it is one of the two.
    pub(super) fn at_local(&self, local: i64, guess: i64) -> Instant {
        let zone = self.zone;
        let mut utc = local - guess;
        let o2 = zone.offset(utc);
        if o2 == guess {
            return Instant {
                ts: utc,
                offset: guess,
                zone,
            };
        }
        utc -= o2 - guess;
        let o3 = zone.offset(utc);
        if o2 == o3 {
            return Instant {
                ts: utc,
                offset: o2,
                zone,
            };
        }
        Instant {
            ts: local - o2.min(o3),
            offset: o2.max(o3),
            zone,
        }
    }

    pub(super) fn plus_ms(&self, ms: i64) -> Instant {
        Instant::new(self.ts + ms, self.zone)
    }

    /// Calendar months and days, keeping the time of day (the day clamped to the new month).
    pub(super) fn plus_calendar(&self, months: i64, days: i64) -> Instant {
        let c = self.civil();
        let month = c.month + months;
        let day = c.day.min(days_in_month(c.year, month)) + days;
        let moved = Civil { month, day, ..c };
        self.at_local(local_ts(&moved), self.offset)
    }

    pub(super) fn with(&self, change: impl FnOnce(&mut Civil)) -> Instant {
        let mut c = self.civil();
        change(&mut c);
        self.at_local(local_ts(&c), self.offset)
    }

    pub(super) fn start_of(&self, unit: Unit) -> Instant {
        self.with(|c| {
            if unit >= Unit::Month {
                c.day = 1;
            }
            if unit >= Unit::Day {
                c.hour = 0;
            }
            if unit >= Unit::Hour {
                c.minute = 0;
            }
            if unit >= Unit::Minute {
                c.second = 0;
            }
            c.millisecond = 0;
        })
    }

    pub(super) fn plus_unit(&self, unit: Unit, n: i64) -> Instant {
        match unit {
            Unit::Month => self.plus_calendar(n, 0),
            Unit::Day => self.plus_calendar(0, n),
            Unit::Hour => self.plus_ms(n * MS_HOUR),
            Unit::Minute => self.plus_ms(n * MS_MINUTE),
            Unit::Second => self.plus_ms(n * MS_SECOND),
        }
    }

    pub(super) fn end_of(&self, unit: Unit) -> Instant {
        self.plus_unit(unit, 1).start_of(unit).plus_ms(-1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Month,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips() {
        for local in [0, -1, 86_399_999, 1_700_000_000_123, -62_000_000_000_000] {
            assert_eq!(local_ts(&civil_of(local)), local);
        }
        assert_eq!(days_from_civil(2024, 13, 1), days_from_civil(2025, 1, 1));
        assert_eq!(days_from_civil(2024, 3, 0), days_from_civil(2024, 2, 29));
    }
}
