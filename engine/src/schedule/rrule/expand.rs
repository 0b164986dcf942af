//! Occurrences of a [`Rule`], in order, as pg-boss's rule engine generates them.
//!
//! A rule recurs in periods of its FREQ, counted from DTSTART. Daily and longer periods are
//! calendar periods of the zone's wall time; within one, the BYxxx parts pick dates and times
//! (as RFC 5545 expands and limits them), and each wall time becomes an instant: one a
//! spring-forward change skips is no occurrence, one an autumn change repeats is its earlier
//! instant. Hourly and shorter periods are exact steps of time from DTSTART, so they keep their
//! pace across a change; an hourly rule with no INTERVAL passes over the repeated hour, as the
//! clock's hour does not change. BYSETPOS picks within a period; occurrences before DTSTART are
//! not occurrences; COUNT counts from DTSTART and EXDATE removes after counting; UNTIL is
//! inclusive; RDATE adds instants of its own.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};

use super::build::{Freq, Rule};
use super::values::days_in_month;
use super::RuleError;

/// How many periods in a row may hold nothing before the rule is taken to hold nothing at all,
/// and how pg-boss's rule engine words giving up.
const MAX_EMPTY: u64 = 10_000;
const GAVE_UP: &str = "Maximum iterations (10000) exceeded in all()";
/// How far past the last occurrence (or the start of the read) a read looks before taking the
/// rule to hold nothing more: fifty years, well past the longest gap of a rule that recurs (a
/// weekday falling on 29 February comes round within 28), and short of the end of the zone data,
/// past which a wall time a change skips every year would wrongly start to exist.
const MAX_GAP_DAYS: i64 = 50 * 366;
/// How many periods one read may visit in all (a bound on a dense rule's sparse stretches).
const MAX_VISITS: u64 = 20_000_000;

const MS_SECOND: i64 = 1000;
const MS_MINUTE: i64 = 60 * MS_SECOND;
const MS_HOUR: i64 = 60 * MS_MINUTE;

impl Rule {
    /// The first occurrence strictly after `after_ms`, or `None` when the rule has run out.
    pub fn next_after(&self, after_ms: i64) -> Result<Option<i64>, RuleError> {
        let mut found = None;
        self.walk(after_ms, |at| {
            if at > after_ms {
                found = Some(at);
                false
            } else {
                true
            }
        })?;
        let rdate = self.rdates_in(after_ms, i64::MAX).into_iter().next();
        Ok(match (found, rdate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Every occurrence after `after_ms` (excluded) up to `until_ms` (included), in order.
    pub fn between(&self, after_ms: i64, until_ms: i64) -> Result<Vec<i64>, RuleError> {
        let mut found = Vec::new();
        if until_ms > after_ms {
            self.walk(after_ms, |at| {
                if at > until_ms {
                    return false;
                }
                if at > after_ms {
                    found.push(at);
                }
                true
            })?;
        }
        found.extend(self.rdates_in(after_ms, until_ms));
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// RDATE instants in (after, until], EXDATEs removed, in order.
    fn rdates_in(&self, after_ms: i64, until_ms: i64) -> Vec<i64> {
        let mut dates: Vec<i64> = self
            .rdates
            .iter()
            .copied()
            .filter(|at| *at > after_ms && *at <= until_ms && !self.exdates.contains(at))
            .collect();
        dates.sort_unstable();
        dates
    }

    /// Visits the rule's occurrences in order, from one no later than the first after `from_ms`
    /// (from DTSTART when COUNT must be counted), until `visit` answers false or the rule ends.
    fn walk(&self, from_ms: i64, mut visit: impl FnMut(i64) -> bool) -> Result<(), RuleError> {
        let mut counted: i64 = 0;
        let mut emit = |at: i64| -> Option<bool> {
            if at < self.start_ms {
                return Some(true);
            }
            if self.until_ms.is_some_and(|until| at > until) {
                return None;
            }
            if let Some(count) = self.count {
                if counted >= count {
                    return None;
                }
                counted += 1;
            }
            if self.exdates.contains(&at) {
                return Some(true);
            }
            Some(visit(at))
        };
        let from = if self.count.is_some() {
            self.start_ms
        } else {
            from_ms.max(self.start_ms)
        };
        if self.count == Some(0) {
            return Ok(());
        }
        if self.freq >= Freq::Daily {
            self.walk_calendar(from, &mut emit)
        } else {
            self.walk_exact(from, &mut emit)
        }
    }

    fn start_local(&self) -> NaiveDateTime {
        self.zone.local(self.start_ms)
    }

    /// Daily and longer: calendar periods of wall time.
    fn walk_calendar(
        &self,
        from_ms: i64,
        emit: &mut impl FnMut(i64) -> Option<bool>,
    ) -> Result<(), RuleError> {
        let start = self.start_local();
        let from = self.zone.local(from_ms).date();
        let interval = self.interval;
        let first = (self.period_of(start.date(), from) / interval - 1).max(0);
        let defaults = Defaults::of(self, start.date());
        let mut empty = 0u64;
        let mut last_found = from;
        let mut k = first;
        loop {
            let mut instants = Vec::new();
            for date in self.period_dates(start.date(), k * interval, &defaults) {
                for time in self.times(start.time()) {
                    if let Some(at) = self.zone.exact(date.and_time(time)) {
                        instants.push(at);
                    }
                }
            }
            let instants = self.set_positions(instants);
            let period_day = self
                .period_first_day(start.date(), k * interval)
                .unwrap_or(from);
            if instants.is_empty() {
                empty += 1;
                if empty > MAX_EMPTY || (period_day - last_found).num_days() > MAX_GAP_DAYS {
                    return Err(RuleError::error(GAVE_UP));
                }
            } else {
                empty = 0;
                last_found = period_day;
            }
            for at in instants {
                match emit(at) {
                    Some(true) => {}
                    _ => return Ok(()),
                }
            }
            k += 1;
            if self.past_until(k, start.date()) {
                return Ok(());
            }
        }
    }

    /// Whether period `k` starts after UNTIL, so nothing later can be an occurrence.
    fn past_until(&self, k: i64, start: NaiveDate) -> bool {
        let Some(until) = self.until_ms else {
            return false;
        };
        let Some(first) = self.period_first_day(start, k * self.interval) else {
            return true;
        };
        // A day's wall times lie within a day and a bit of its midnight read as UTC.
        first.and_time(NaiveTime::MIN).and_utc().timestamp_millis() - 2 * 86_400_000 > until
    }

    /// How many FREQ units lie between the periods of `start` and `date`.
    fn period_of(&self, start: NaiveDate, date: NaiveDate) -> i64 {
        match self.freq {
            Freq::Yearly => i64::from(date.year() - start.year()),
            Freq::Monthly => {
                i64::from(date.year() - start.year()) * 12 + i64::from(date.month())
                    - i64::from(start.month())
            }
            Freq::Weekly => (self.week_start(date) - self.week_start(start))
                .num_days()
                .div_euclid(7),
            _ => (date - start).num_days(),
        }
    }

    fn week_start(&self, date: NaiveDate) -> NaiveDate {
        let back =
            (date.weekday().num_days_from_monday() + 7 - self.wkst.num_days_from_monday()) % 7;
        date - Duration::days(i64::from(back))
    }

    /// The first day of the period `units` FREQ units after DTSTART's.
    fn period_first_day(&self, start: NaiveDate, units: i64) -> Option<NaiveDate> {
        match self.freq {
            Freq::Yearly => {
                NaiveDate::from_ymd_opt(start.year() + i32::try_from(units).ok()?, 1, 1)
            }
            Freq::Monthly => {
                let index = i64::from(start.year()) * 12 + i64::from(start.month0()) + units;
                NaiveDate::from_ymd_opt(
                    i32::try_from(index.div_euclid(12)).ok()?,
                    index.rem_euclid(12) as u32 + 1,
                    1,
                )
            }
            Freq::Weekly => self
                .week_start(start)
                .checked_add_signed(Duration::try_weeks(units)?),
            _ => start.checked_add_signed(Duration::try_days(units)?),
        }
    }

    /// The dates of the period `units` FREQ units after DTSTART's that the BYxxx parts keep.
    fn period_dates(&self, start: NaiveDate, units: i64, defaults: &Defaults) -> Vec<NaiveDate> {
        let Some(first) = self.period_first_day(start, units) else {
            return Vec::new();
        };
        let days = match self.freq {
            Freq::Yearly => {
                if NaiveDate::from_ymd_opt(first.year(), 2, 29).is_some() {
                    366
                } else {
                    365
                }
            }
            Freq::Monthly => days_in_month(first.year(), first.month()) as i64,
            Freq::Weekly => 7,
            _ => 1,
        };
        (0..days)
            .map(|i| first + Duration::days(i))
            .filter(|date| self.keeps_date(*date, defaults))
            .collect()
    }

    /// The times of day, sorted: BYHOUR x BYMINUTE x BYSECOND, each defaulting to DTSTART's.
    fn times(&self, start: NaiveTime) -> Vec<NaiveTime> {
        let hours = self.by_hour.clone().unwrap_or_else(|| vec![start.hour()]);
        let minutes = self
            .by_minute
            .clone()
            .unwrap_or_else(|| vec![start.minute()]);
        let seconds = self
            .by_second
            .clone()
            .unwrap_or_else(|| vec![start.second()]);
        let mut times = Vec::with_capacity(hours.len() * minutes.len() * seconds.len());
        for h in &hours {
            for m in &minutes {
                for s in &seconds {
                    if let Some(t) = NaiveTime::from_hms_opt(*h, *m, *s) {
                        times.push(t);
                    }
                }
            }
        }
        times
    }

    /// A period's instants, sorted and unique, cut down to BYSETPOS's picks.
    fn set_positions(&self, mut instants: Vec<i64>) -> Vec<i64> {
        instants.sort_unstable();
        instants.dedup();
        let Some(positions) = &self.by_set_pos else {
            return instants;
        };
        let len = instants.len() as i64;
        let mut picked: Vec<i64> = positions
            .iter()
            .filter_map(|p| {
                let index = if *p > 0 {
                    i64::from(*p) - 1
                } else {
                    len + i64::from(*p)
                };
                (0..len).contains(&index).then(|| instants[index as usize])
            })
            .collect();
        picked.sort_unstable();
        picked.dedup();
        picked
    }

    /// Whether a date passes the date parts (BYMONTH, BYWEEKNO, BYYEARDAY, BYMONTHDAY, BYDAY).
    fn keeps_date(&self, date: NaiveDate, defaults: &Defaults) -> bool {
        if let Some(months) = &defaults.by_month {
            if !months.contains(&date.month()) {
                return false;
            }
        }
        if let Some(weeks) = &self.by_week_no {
            let (number, total) = self.week_number(date);
            if !weeks.iter().any(|w| matches_index(*w, number, total)) {
                return false;
            }
        }
        if let Some(year_days) = &self.by_year_day {
            let total = if NaiveDate::from_ymd_opt(date.year(), 2, 29).is_some() {
                366
            } else {
                365
            };
            if !year_days
                .iter()
                .any(|d| matches_index(*d, date.ordinal() as i32, total))
            {
                return false;
            }
        }
        if let Some(month_days) = &defaults.by_month_day {
            let total = days_in_month(date.year(), date.month()) as i32;
            if !month_days
                .iter()
                .any(|d| matches_index(*d, date.day() as i32, total))
            {
                return false;
            }
        }
        if let Some(days) = &defaults.by_day {
            let in_year = self.freq == Freq::Yearly && self.by_month.is_none();
            if !days
                .iter()
                .any(|(ordinal, day)| self.matches_day(date, *ordinal, *day, in_year))
            {
                return false;
            }
        }
        true
    }

    /// Whether `date` is the `ordinal`th `day` of its month (or year), or any `day` for 0.
    fn matches_day(&self, date: NaiveDate, ordinal: i32, day: Weekday, in_year: bool) -> bool {
        if date.weekday() != day {
            return false;
        }
        if ordinal == 0 {
            return true;
        }
        let (position, total) = if in_year {
            let year_days = if NaiveDate::from_ymd_opt(date.year(), 2, 29).is_some() {
                366
            } else {
                365
            };
            (date.ordinal0() as i32, year_days)
        } else {
            (
                date.day0() as i32,
                days_in_month(date.year(), date.month()) as i32,
            )
        };
        let from_start = position / 7 + 1;
        let from_end = (total - 1 - position) / 7 + 1;
        if ordinal > 0 {
            from_start == ordinal
        } else {
            from_end == -ordinal
        }
    }

    /// The week number of `date` in its week-numbering year (weeks start on WKST, and week 1
    /// is the first with four days in the year), with that year's number of weeks.
    fn week_number(&self, date: NaiveDate) -> (i32, i32) {
        let first_week = |year: i32| -> NaiveDate {
            let jan1 = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default();
            let back =
                (jan1.weekday().num_days_from_monday() + 7 - self.wkst.num_days_from_monday()) % 7;
            if back <= 3 {
                jan1 - Duration::days(i64::from(back))
            } else {
                jan1 + Duration::days(i64::from(7 - back))
            }
        };
        let mut year = date.year();
        if date < first_week(year) {
            year -= 1;
        } else if date >= first_week(year + 1) {
            year += 1;
        }
        let start = first_week(year);
        let number = ((date - start).num_days() / 7 + 1) as i32;
        let total = ((first_week(year + 1) - start).num_days() / 7) as i32;
        (number, total)
    }

    /// Hourly and shorter: exact steps of time from DTSTART.
    fn walk_exact(
        &self,
        from_ms: i64,
        emit: &mut impl FnMut(i64) -> Option<bool>,
    ) -> Result<(), RuleError> {
        let unit = match self.freq {
            Freq::Hourly => MS_HOUR,
            Freq::Minutely => MS_MINUTE,
            _ => MS_SECOND,
        };
        let step = unit * self.interval;
        let defaults = Defaults::written(self);
        let mut k = ((from_ms - self.start_ms).div_euclid(step) - 2).max(0);
        let mut visits = 0u64;
        let mut skipped_days = 0u64;
        loop {
            visits += 1;
            if visits > MAX_VISITS || skipped_days > MAX_EMPTY {
                return Err(RuleError::error(GAVE_UP));
            }
            let at = self.start_ms + k * step;
            if self.until_ms.is_some_and(|until| at - 2 * MS_HOUR > until) {
                return Ok(());
            }
            let local = self.zone.local(at);
            if !self.keeps_date(local.date(), &defaults) {
                skipped_days += 1;
                let next_day = local.date().succ_opt().unwrap_or(local.date());
                let target = self.zone.compatible(next_day.and_time(NaiveTime::MIN));
                k = self.step_to(target, step, k);
                continue;
            }
            if let Some(target) = self.time_miss(at, local) {
                k = self.step_to(target, step, k);
                continue;
            }
            let repeated_hour = self.freq == Freq::Hourly
                && self.interval == 1
                && k > 0
                && self.zone.local(at - MS_HOUR).hour() == local.hour();
            if !repeated_hour {
                let instants = self.set_positions(self.expand_exact(at, local));
                for instant in instants {
                    match emit(instant) {
                        Some(true) => {}
                        _ => return Ok(()),
                    }
                }
            }
            k += 1;
        }
    }

    /// The first step at or after `target`, and at least the one after `k`.
    fn step_to(&self, target: i64, step: i64, k: i64) -> i64 {
        let wanted = (target - self.start_ms + step - 1).div_euclid(step);
        wanted.max(k + 1)
    }

    /// When a step's hour (or minute, or second) is not one the rule keeps: the instant the next
    /// hour (minute, second) starts, to step to.
    fn time_miss(&self, at: i64, local: NaiveDateTime) -> Option<i64> {
        let into_second = i64::from(local.nanosecond() / 1_000_000);
        let into_minute = i64::from(local.second()) * MS_SECOND + into_second;
        let into_hour = i64::from(local.minute()) * MS_MINUTE + into_minute;
        if let Some(hours) = &self.by_hour {
            if !hours.contains(&local.hour()) {
                return Some(at - into_hour + MS_HOUR);
            }
        }
        if self.freq <= Freq::Minutely {
            if let Some(minutes) = &self.by_minute {
                if !minutes.contains(&local.minute()) {
                    return Some(at - into_minute + MS_MINUTE);
                }
            }
        }
        if self.freq == Freq::Secondly {
            if let Some(seconds) = &self.by_second {
                if !seconds.contains(&local.second()) {
                    return Some(at - into_second + MS_SECOND);
                }
            }
        }
        None
    }

    /// A step's occurrences: the step itself, or the minutes and seconds the rule names within
    /// its hour (hourly) or the seconds within its minute (minutely), as wall times that keep the
    /// step's offset when an autumn change repeats them.
    fn expand_exact(&self, at: i64, local: NaiveDateTime) -> Vec<i64> {
        let (minutes, seconds) = match self.freq {
            Freq::Hourly => (
                self.by_minute
                    .clone()
                    .unwrap_or_else(|| vec![local.minute()]),
                self.by_second
                    .clone()
                    .unwrap_or_else(|| vec![local.second()]),
            ),
            Freq::Minutely => (
                vec![local.minute()],
                self.by_second
                    .clone()
                    .unwrap_or_else(|| vec![local.second()]),
            ),
            _ => return vec![at],
        };
        let mut instants = Vec::with_capacity(minutes.len() * seconds.len());
        for m in &minutes {
            for s in &seconds {
                if *m == local.minute() && *s == local.second() {
                    instants.push(at);
                    continue;
                }
                let Some(time) = NaiveTime::from_hms_opt(local.hour(), *m, *s) else {
                    continue;
                };
                if let Some(instant) = self.zone.exact_near(local.date().and_time(time), at) {
                    instants.push(instant);
                }
            }
        }
        instants
    }
}

/// `n` (1-based, or negative from the end) names position `position` (1-based) of `total`.
fn matches_index(n: i32, position: i32, total: i32) -> bool {
    if n > 0 {
        n == position
    } else {
        total + n + 1 == position
    }
}

/// The date parts with RFC 5545's defaults: a yearly rule with no day part recurs on DTSTART's
/// month and day, a monthly one on DTSTART's day, a weekly one on DTSTART's weekday.
struct Defaults {
    by_month: Option<Vec<u32>>,
    by_month_day: Option<Vec<i32>>,
    by_day: Option<Vec<(i32, Weekday)>>,
}

impl Defaults {
    fn of(rule: &Rule, start: NaiveDate) -> Defaults {
        let no_day_part = rule.by_week_no.is_none()
            && rule.by_year_day.is_none()
            && rule.by_month_day.is_none()
            && rule.by_day.is_none();
        let mut defaults = Defaults {
            by_month: rule.by_month.clone(),
            by_month_day: rule.by_month_day.clone(),
            by_day: rule.by_day.clone(),
        };
        if no_day_part {
            match rule.freq {
                Freq::Yearly => {
                    defaults.by_month.get_or_insert_with(|| vec![start.month()]);
                    defaults.by_month_day = Some(vec![start.day() as i32]);
                }
                Freq::Monthly => defaults.by_month_day = Some(vec![start.day() as i32]),
                Freq::Weekly => defaults.by_day = Some(vec![(0, start.weekday())]),
                _ => {}
            }
        }
        defaults
    }

    /// For hourly and shorter rules: the parts as written.
    fn written(rule: &Rule) -> Defaults {
        Defaults {
            by_month: rule.by_month.clone(),
            by_month_day: rule.by_month_day.clone(),
            by_day: rule.by_day.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::compile;
    use chrono::{DateTime, Utc};

    fn at(text: &str) -> i64 {
        text.parse::<DateTime<Utc>>().unwrap().timestamp_millis()
    }

    fn iso(ms: i64) -> String {
        DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    /// The first `n` occurrences after `from`, one `next_after` at a time.
    fn next(rule: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let rule = compile(rule, tz).unwrap();
        let mut after = at(from);
        let mut found = Vec::new();
        while found.len() < n {
            let Some(occurrence) = rule.next_after(after).unwrap() else {
                break;
            };
            found.push(iso(occurrence));
            after = occurrence;
        }
        found
    }

    #[test]
    fn skipped_wall_times_are_no_occurrence_and_repeated_ones_are_early() {
        let ny = "America/New_York";
        assert_eq!(
            next(
                "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
                ny,
                "2026-03-07T00:00:00Z",
                2
            ),
            ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"]
        );
        assert_eq!(
            next(
                "FREQ=DAILY;BYHOUR=1;BYMINUTE=30",
                ny,
                "2026-11-01T00:00:00Z",
                2
            ),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
        // Hourly steps in exact time; with no INTERVAL the repeated hour passes.
        assert_eq!(
            next("FREQ=HOURLY", ny, "2026-11-01T04:30:00Z", 3),
            [
                "2026-11-01T05:00:00Z",
                "2026-11-01T07:00:00Z",
                "2026-11-01T08:00:00Z"
            ]
        );
        assert_eq!(
            next("FREQ=MINUTELY;INTERVAL=30", ny, "2026-11-01T05:00:00Z", 3),
            [
                "2026-11-01T05:30:00Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T06:30:00Z"
            ]
        );
    }

    #[test]
    fn count_counts_from_dtstart_before_exdate_and_rdate_adds() {
        let rule = "DTSTART:20260101T090000\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE:20260102T090000\nRDATE:20260110T120000";
        assert_eq!(
            next(rule, "UTC", "2025-01-01T00:00:00Z", 9),
            [
                "2026-01-01T09:00:00Z",
                "2026-01-03T09:00:00Z",
                "2026-01-10T12:00:00Z"
            ]
        );
        assert_eq!(
            next(rule, "UTC", "2026-01-03T09:00:00Z", 9),
            ["2026-01-10T12:00:00Z"]
        );
    }

    #[test]
    fn until_is_inclusive_and_between_excludes_its_start() {
        let rule = compile("FREQ=DAILY;UNTIL=20260103T000000Z", "UTC").unwrap();
        assert_eq!(
            rule.between(at("2026-01-01T00:00:00Z"), at("2026-02-01T00:00:00Z"))
                .unwrap()
                .into_iter()
                .map(iso)
                .collect::<Vec<_>>(),
            ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]
        );
        assert_eq!(rule.next_after(at("2026-01-03T00:00:00Z")).unwrap(), None);
    }

    #[test]
    fn ordinals_month_days_and_set_positions() {
        assert_eq!(
            next("FREQ=MONTHLY;BYDAY=-1FR", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z"]
        );
        assert_eq!(
            next(
                "FREQ=MONTHLY;BYMONTHDAY=-3",
                "UTC",
                "2026-02-01T00:00:00Z",
                2
            ),
            ["2026-02-26T00:00:00Z", "2026-03-29T00:00:00Z"]
        );
        assert_eq!(
            next(
                "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
                "UTC",
                "2026-01-01T00:00:00Z",
                2
            ),
            ["2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z"]
        );
        assert_eq!(
            next("FREQ=YEARLY;BYDAY=20MO", "UTC", "2026-01-01T00:00:00Z", 1),
            ["2026-05-18T00:00:00Z"]
        );
    }

    #[test]
    fn a_rule_that_never_occurs_gives_up_in_pg_boss_words() {
        let rule = compile("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "UTC").unwrap();
        assert_eq!(
            rule.next_after(0).unwrap_err().message,
            "Maximum iterations (10000) exceeded in all()"
        );
    }
}
