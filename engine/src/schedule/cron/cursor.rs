//! The walk's cursor: where a walk stands, and what it remembers of a daylight-saving change.

use super::civil::{days_from_civil, days_in_month, local_ts, Civil, Instant, Unit};
use super::millis::MS_SECOND;
use super::zone::Zone;

/// The walk's cursor: an instant plus what it remembers about a daylight-saving change it just
/// stepped over (the hours a spring-forward change skipped, the hour an autumn change repeats).
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor {
    pub(super) at: Instant,
    pub(super) dst_start: Option<i64>,
    pub(super) dst_start_landing: Option<i64>,
    pub(super) dst_end: Option<i64>,
}

impl Cursor {
    pub(super) fn new(ts: i64, zone: Zone) -> Cursor {
        Cursor {
            at: Instant::new(ts, zone),
            dst_start: None,
            dst_start_landing: None,
            dst_end: None,
        }
    }

    pub(super) fn c(&self) -> Civil {
        self.at.civil()
    }

    pub(super) fn weekday(&self) -> u32 {
        let c = self.c();
        // 1970-01-01 was a Thursday.
        (days_from_civil(c.year, c.month, c.day) + 4).rem_euclid(7) as u32
    }

    pub(super) fn set(&mut self, change: impl FnOnce(&mut Civil) -> bool) {
        let mut c = self.c();
        if change(&mut c) {
            self.at = self.at.at_local(local_ts(&c), self.at.offset);
        }
    }

    pub(super) fn set_hour(&mut self, hour: i64) {
        self.set(|c| std::mem::replace(&mut c.hour, hour) != hour);
    }

    pub(super) fn set_minute(&mut self, minute: i64) {
        self.set(|c| std::mem::replace(&mut c.minute, minute) != minute);
    }

    pub(super) fn set_second(&mut self, second: i64) {
        self.set(|c| std::mem::replace(&mut c.second, second) != second);
    }

    pub(super) fn set_millisecond(&mut self, ms: i64) {
        self.set(|c| std::mem::replace(&mut c.millisecond, ms) != ms);
    }

    pub(super) fn step(&mut self, forward: bool, unit: Unit) {
        self.at = if forward {
            match unit {
                Unit::Second => self.at.plus_ms(MS_SECOND),
                other => self.at.plus_unit(other, 1).start_of(other),
            }
        } else {
            match unit {
                Unit::Second => self.at.plus_ms(-MS_SECOND),
                other => self
                    .at
                    .plus_unit(other, -1)
                    .end_of(other)
                    .start_of(Unit::Second),
            }
        };
    }

    pub(super) fn clear_dst_start(&mut self) {
        self.dst_start = None;
        self.dst_start_landing = None;
    }

    /// One step of the walk, noting a daylight-saving change crossed on the way (unless every
    /// hour is scheduled, when a skipped or repeated hour changes nothing).
    pub(super) fn apply(&mut self, forward: bool, unit: Unit, hours_scheduled: usize) {
        if matches!(unit, Unit::Month | Unit::Day) {
            self.step(forward, unit);
            self.clear_dst_start();
            let hour = self.c().hour;
            if forward && hours_scheduled != 24 && hour > 0 {
                self.dst_start = Some(0);
                self.dst_start_landing = Some(hour);
            }
            return;
        }
        let previous_hour = self.c().hour;
        let previous_offset = self.at.offset;
        self.step(forward, unit);
        let c = self.c();
        let advance = (c.hour - previous_hour + 24) % 24;
        if forward && self.at.offset > previous_offset && advance >= 2 {
            if hours_scheduled != 24 {
                self.dst_start = Some((previous_hour + 1) % 24);
                self.dst_start_landing = Some(c.hour);
            }
        } else if advance == 0 && c.minute == 0 && c.second == 0 && hours_scheduled != 24 {
            self.dst_end = Some(c.hour);
        }
    }

    pub(super) fn is_last_day_of_month(&self) -> bool {
        let c = self.c();
        c.day == days_in_month(c.year, c.month)
    }

    pub(super) fn is_in_last_week_of_month(&self) -> bool {
        let c = self.c();
        c.day > days_in_month(c.year, c.month) - 7
    }
}
