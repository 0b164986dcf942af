//! Finding occurrences: cron-parser's walk, step for step, over Luxon's calendar.

use super::civil::Unit;
use super::cursor::Cursor;
use super::parse::CronExpression;
use super::zone::Zone;
use super::{fail, Parsed};

/// cron-parser gives up on a walk after this many steps.
const LOOP_LIMIT: u32 = 10_000;

impl CronExpression {
    fn matches_day(&self, at: &Cursor) -> bool {
        let c = at.c();
        let weekday = i64::from(at.weekday());
        let dom = self.days_of_month.contains(&c.day)
            || (self.last_day_of_month && at.is_last_day_of_month());
        let nth_ok = self.nth_weekday <= 0 || (c.day + 6) / 7 == self.nth_weekday;
        let dow = (self.weekdays.contains(&weekday) && nth_ok)
            || self
                .last_weekdays
                .as_ref()
                .is_some_and(|days| at.is_in_last_week_of_month() && days.contains(&weekday));
        if !self.day_of_month_wildcard && !self.day_of_week_wildcard && (dom || dow) {
            return true;
        }
        if dom && self.day_of_week_wildcard {
            return true;
        }
        self.day_of_month_wildcard && !self.day_of_week_wildcard && dow
    }

    fn nearest(values: &[i64], current: i64, backwards: bool) -> Option<i64> {
        if backwards {
            values.iter().rev().find(|v| **v < current).copied()
        } else {
            values.iter().find(|v| **v > current).copied()
        }
    }

    fn extreme(values: &[i64], backwards: bool) -> i64 {
        if backwards {
            *values.last().unwrap_or(&0)
        } else {
            *values.first().unwrap_or(&0)
        }
    }

    /// Whether the walk's day has a daylight-saving change (cached per day, as the walk asks often).
    fn dst_day(&self, at: &Cursor, cache: &mut Option<((i64, i64, i64), bool)>) -> bool {
        let c = at.c();
        let key = (c.year, c.month, c.day);
        if let Some((cached, answer)) = cache {
            if *cached == key {
                return *answer;
            }
        }
        let start = at.at.start_of(Unit::Day);
        let end = at.at.end_of(Unit::Day);
        let answer = start.offset != end.offset;
        *cache = Some((key, answer));
        answer
    }

    /// Matches the hour, or moves the cursor towards the next candidate and answers false.
    fn match_hour(
        &self,
        at: &mut Cursor,
        backwards: bool,
        cache: &mut Option<((i64, i64, i64), bool)>,
    ) -> bool {
        let hours = &self.hours;
        let hour = at.c().hour;
        let is_match = hours.contains(&hour);
        let forward = !backwards;
        if let (Some(skipped_from), Some(landing)) = (at.dst_start, at.dst_start_landing) {
            if landing == hour {
                let mut skipped = skipped_from;
                while skipped != hour {
                    if hours.contains(&skipped) {
                        return true;
                    }
                    skipped = (skipped + 1) % 24;
                }
            }
        }
        if at.dst_end == Some(hour) && forward {
            at.dst_end = None;
            at.apply(true, Unit::Hour, hours.len());
            return false;
        }
        if is_match {
            return true;
        }
        at.clear_dst_start();
        let Some(next) = Self::nearest(hours, hour, backwards) else {
            at.apply(forward, Unit::Day, hours.len());
            return false;
        };
        if self.dst_day(at, cache) {
            let steps = if backwards { hour - next } else { next - hour };
            for _ in 0..steps {
                at.apply(forward, Unit::Hour, hours.len());
                let now = at.c().hour;
                if (forward && now >= next) || (backwards && now <= next) {
                    break;
                }
            }
        } else {
            at.set_hour(next);
        }
        at.set_minute(Self::extreme(&self.minutes, backwards));
        at.set_second(Self::extreme(&self.seconds, backwards));
        false
    }

    /// Matches the minute, or moves the cursor towards the next candidate and answers false.
    fn match_minute(&self, at: &mut Cursor, backwards: bool) -> bool {
        let minute = at.c().minute;
        if self.minutes.contains(&minute) {
            return true;
        }
        match Self::nearest(&self.minutes, minute, backwards) {
            Some(minute) => {
                at.set_minute(minute);
                at.set_second(Self::extreme(&self.seconds, backwards));
            }
            None => {
                at.apply(!backwards, Unit::Hour, self.hours.len());
                at.set_minute(Self::extreme(&self.minutes, backwards));
                at.set_second(Self::extreme(&self.seconds, backwards));
            }
        }
        false
    }

    /// Matches the second, or moves the cursor towards the next candidate and answers false.
    fn match_second(&self, at: &mut Cursor, backwards: bool) -> bool {
        let second = at.c().second;
        if self.seconds.contains(&second) {
            return true;
        }
        match Self::nearest(&self.seconds, second, backwards) {
            Some(second) => at.set_second(second),
            None => {
                at.apply(!backwards, Unit::Minute, self.hours.len());
                at.set_second(Self::extreme(&self.seconds, backwards));
            }
        }
        false
    }

    /// The occurrence after (or, `backwards`, before) `cursor`, which moves there.
    fn find(&self, cursor: &mut Cursor, backwards: bool) -> Parsed<i64> {
        let forward = !backwards;
        let hours_scheduled = self.hours.len();
        let mut at = *cursor;
        let start = at.at.ts;
        let mut cache = None;
        if at.c().millisecond > 0 {
            at.set_millisecond(0);
            if forward {
                at.apply(true, Unit::Second, hours_scheduled);
            }
        }
        let mut steps = 0;
        loop {
            steps += 1;
            if steps >= LOOP_LIMIT {
                return fail("Invalid expression, loop limit exceeded");
            }
            if !self.months.contains(&at.c().month) {
                at.apply(forward, Unit::Month, hours_scheduled);
                continue;
            }
            if !self.matches_day(&at) {
                at.apply(forward, Unit::Day, hours_scheduled);
                continue;
            }
            if !self.match_hour(&mut at, backwards, &mut cache)
                || !self.match_minute(&mut at, backwards)
                || !self.match_second(&mut at, backwards)
            {
                continue;
            }
            if at.at.ts == start {
                at.apply(forward, Unit::Second, hours_scheduled);
                continue;
            }
            break;
        }
        *cursor = at;
        Ok(at.at.ts)
    }

    /// A walk of the occurrences after (or before) `from_ms`, in `zone`.
    pub fn walk(&self, zone: Zone, from_ms: i64) -> Walk<'_> {
        Walk {
            expression: self,
            cursor: Cursor::new(from_ms, zone),
        }
    }

    /// The first occurrence strictly after `from_ms`.
    pub fn next_after(&self, zone: Zone, from_ms: i64) -> Parsed<i64> {
        self.walk(zone, from_ms).next()
    }

    /// The last occurrence strictly before `before_ms`.
    pub fn prev_before(&self, zone: Zone, before_ms: i64) -> Parsed<i64> {
        self.walk(zone, before_ms).prev()
    }
}

/// A cursor over an expression's occurrences, as cron-parser's iterator: each call moves on
/// from the last occurrence found.
pub struct Walk<'a> {
    expression: &'a CronExpression,
    cursor: Cursor,
}

impl Walk<'_> {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Parsed<i64> {
        self.expression.find(&mut self.cursor, false)
    }

    pub fn prev(&mut self) -> Parsed<i64> {
        self.expression.find(&mut self.cursor, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    fn iso(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    }

    fn next_n(expr: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let parsed = CronExpression::parse(expr).unwrap();
        let mut walk = parsed.walk(Zone::parse(tz).unwrap(), ms(from));
        (0..n).map(|_| iso(walk.next().unwrap())).collect()
    }

    #[test]
    fn plain_walks() {
        assert_eq!(
            next_n("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", 2),
            ["2026-01-01T00:15:00.000Z", "2026-01-01T00:30:00.000Z"]
        );
        assert_eq!(
            next_n("0 0 L * *", "UTC", "2026-02-01T00:00:00Z", 2),
            ["2026-02-28T00:00:00.000Z", "2026-03-31T00:00:00.000Z"]
        );
        assert_eq!(
            next_n("0 12 * * 5L", "UTC", "2026-01-01T00:00:00Z", 1),
            ["2026-01-30T12:00:00.000Z"]
        );
        assert_eq!(
            next_n("0 12 * * 1#2", "UTC", "2026-01-01T00:00:00Z", 1),
            ["2026-01-12T12:00:00.000Z"]
        );
        assert_eq!(
            next_n("30 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T04:00:00.000Z"]
        );
    }

    #[test]
    fn daylight_saving_changes_fire_as_cron_parser_does() {
        // The skipped 02:30 fires at 03:30 EDT; the repeated 01:xx hour fires once.
        assert_eq!(
            next_n("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T07:30:00.000Z", "2026-03-09T06:30:00.000Z"]
        );
        assert_eq!(
            next_n("0 0-3 * * *", "America/New_York", "2026-10-31T12:00:00Z", 4),
            [
                "2026-11-01T04:00:00.000Z",
                "2026-11-01T05:00:00.000Z",
                "2026-11-01T07:00:00.000Z",
                "2026-11-01T08:00:00.000Z"
            ]
        );
        assert_eq!(
            next_n("0 */2 * * *", "America/New_York", "2026-03-08T05:30:00Z", 2),
            ["2026-03-08T07:00:00.000Z", "2026-03-08T08:00:00.000Z"]
        );
    }

    #[test]
    fn prev_is_strictly_before_the_reference() {
        let parsed = CronExpression::parse("* * * * * *").unwrap();
        assert_eq!(
            iso(parsed
                .prev_before(Zone::UTC, ms("2026-01-01T00:00:10.000Z"))
                .unwrap()),
            "2026-01-01T00:00:09.000Z"
        );
        assert_eq!(
            iso(parsed
                .prev_before(Zone::UTC, ms("2026-01-01T00:00:10.001Z"))
                .unwrap()),
            "2026-01-01T00:00:10.000Z"
        );
    }
}
