//! Cron expressions read the way pg-boss 12.38 reads them.
//!
//! pg-boss hands every expression to the npm package `cron-parser` (v5, `strict: false`), which
//! runs on Luxon's calendar arithmetic. Whatever that pair accepts, refuses and computes is what a
//! schedule means, so this module reproduces it rather than any cron dialect of its own:
//!
//! * the accepted syntax and the error messages: 1 to 6 fields (missing leading ones default to
//!   `0 * * * * *`), `?` as `*`, month and weekday names, ranges, steps, lists, `L` in the day of
//!   month, `nL` and `n#k` in the day of week, `H` hashing, the `@daily`-style aliases, and the
//!   quirks (duplicate values are refused, a short expression is padded from the left);
//! * the walk itself, step for step, because its handling of daylight-saving changes is not one a
//!   general-purpose cron crate shares: an hour skipped by a spring-forward change still fires at
//!   the hour the clock lands on, a repeated autumn hour fires once, and the walk can give up with
//!   "loop limit exceeded" where the calendar defeats it. Matching the occurrences pg-boss would
//!   send, in every zone, is the point; `tests/cron.rs` and `__test__/schedule.test.mjs` compare
//!   them with cron-parser's own output.
//!
//! Time zones come from `chrono-tz` (IANA data compiled in).

use crate::config::js::number_to_string as js_number;
use std::sync::Mutex;

use chrono::{Datelike, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

const MAX_EXPRESSION_LENGTH: usize = 1024;
const MAX_FIELD_VALUES: usize = 256;
/// cron-parser gives up on a walk after this many steps.
const LOOP_LIMIT: u32 = 10_000;
const DAYS_IN_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const MS_SECOND: i64 = 1000;
const MS_MINUTE: i64 = 60 * MS_SECOND;
const MS_HOUR: i64 = 60 * MS_MINUTE;
const MS_DAY: i64 = 24 * MS_HOUR;

/// A parse or walk failure, worded as cron-parser words it (pg-boss passes the text through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(pub String);

impl std::fmt::Display for CronError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Parsed<T> = std::result::Result<T, CronError>;

fn fail<T>(message: impl Into<String>) -> Parsed<T> {
    Err(CronError(message.into()))
}

// ---------------------------------------------------------------------------------------------
// Zones

/// A zone an expression is evaluated in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// A fixed offset from UTC, in milliseconds (`UTC`, `GMT`, `UTC+5:30`).
    Fixed(i64),
    Named(Tz),
}

impl Zone {
    pub const UTC: Zone = Zone::Fixed(0);

    /// Resolves a zone name as Luxon does: `utc`/`gmt` and `utc±h[:mm]` in any case, the host's
    /// zone for `local`/`system`/`default`, and IANA names matched without regard to case.
    pub fn parse(name: &str) -> Option<Zone> {
        let lowered = name.to_ascii_lowercase();
        match lowered.as_str() {
            "utc" | "gmt" => return Some(Zone::UTC),
            "local" | "system" | "default" => return Some(host_zone()),
            _ => {}
        }
        if let Some(fixed) = fixed_offset(&lowered) {
            return Some(fixed);
        }
        Tz::from_str_insensitive(name).ok().map(Zone::Named)
    }

    /// The zone's offset from UTC at instant `ts` (milliseconds since the epoch), in milliseconds.
    fn offset(&self, ts: i64) -> i64 {
        match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named(tz) => match chrono::DateTime::from_timestamp_millis(ts) {
                Some(at) => {
                    i64::from(
                        tz.offset_from_utc_datetime(&at.naive_utc())
                            .fix()
                            .local_minus_utc(),
                    ) * MS_SECOND
                }
                None => 0,
            },
        }
    }
}

/// `utc+5`, `utc-03:30`: a fixed offset, as Luxon's specifier syntax has it.
fn fixed_offset(lowered: &str) -> Option<Zone> {
    let rest = lowered.strip_prefix("utc")?;
    let sign = match rest.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let (hours, minutes) = match rest[1..].split_once(':') {
        Some((h, m)) => (h, Some(m)),
        None => (&rest[1..], None),
    };
    if hours.is_empty() || hours.len() > 2 || !hours.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let minutes = match minutes {
        None => 0,
        Some(m) if m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit()) => {
            m.parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    let hours: i64 = hours.parse().ok()?;
    // Luxon signs the minutes with the hours: utc-3:30 is 3.5 hours behind.
    Some(Zone::Fixed(sign * (hours * MS_HOUR + minutes * MS_MINUTE)))
}

/// The zone this process runs in, as Node would pick it: `TZ`, else the system's configured zone.
fn host_zone() -> Zone {
    let named = std::env::var("TZ")
        .ok()
        .map(|tz| tz.trim_start_matches(':').to_string())
        .or_else(|| {
            std::fs::read_to_string("/etc/timezone")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .or_else(|| {
            let link = std::fs::read_link("/etc/localtime").ok()?;
            let path = link.to_string_lossy().to_string();
            path.split_once("zoneinfo/")
                .map(|(_, name)| name.to_string())
        });
    named
        .and_then(|name| Tz::from_str_insensitive(&name).ok())
        .map_or(Zone::UTC, Zone::Named)
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic with Luxon's rules for wall-clock times that do not exist or exist twice

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millisecond: i64,
}

fn days_in_month(year: i64, month: i64) -> i64 {
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
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
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

fn local_ts(c: &Civil) -> i64 {
    days_from_civil(c.year, c.month, c.day) * MS_DAY
        + c.hour * MS_HOUR
        + c.minute * MS_MINUTE
        + c.second * MS_SECOND
        + c.millisecond
}

fn civil_of(local: i64) -> Civil {
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
struct Instant {
    ts: i64,
    offset: i64,
    zone: Zone,
}

impl Instant {
    fn new(ts: i64, zone: Zone) -> Instant {
        Instant {
            ts,
            offset: zone.offset(ts),
            zone,
        }
    }

    fn civil(&self) -> Civil {
        civil_of(self.ts + self.offset)
    }

    /// The instant for a wall-clock time, guessing the offset it had before the change: a time in
    /// a spring-forward gap moves forward by the gap, a repeated time keeps the guessed offset
    /// when it is one of the two.
    fn at_local(&self, local: i64, guess: i64) -> Instant {
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

    fn plus_ms(&self, ms: i64) -> Instant {
        Instant::new(self.ts + ms, self.zone)
    }

    /// Calendar months and days, keeping the time of day (the day clamped to the new month).
    fn plus_calendar(&self, months: i64, days: i64) -> Instant {
        let c = self.civil();
        let month = c.month + months;
        let day = c.day.min(days_in_month(c.year, month)) + days;
        let moved = Civil { month, day, ..c };
        self.at_local(local_ts(&moved), self.offset)
    }

    fn with(&self, change: impl FnOnce(&mut Civil)) -> Instant {
        let mut c = self.civil();
        change(&mut c);
        self.at_local(local_ts(&c), self.offset)
    }

    fn start_of(&self, unit: Unit) -> Instant {
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

    fn plus_unit(&self, unit: Unit, n: i64) -> Instant {
        match unit {
            Unit::Month => self.plus_calendar(n, 0),
            Unit::Day => self.plus_calendar(0, n),
            Unit::Hour => self.plus_ms(n * MS_HOUR),
            Unit::Minute => self.plus_ms(n * MS_MINUTE),
            Unit::Second => self.plus_ms(n * MS_SECOND),
        }
    }

    fn end_of(&self, unit: Unit) -> Instant {
        self.plus_unit(unit, 1).start_of(unit).plus_ms(-1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Month,
}

/// The walk's cursor: an instant plus what it remembers about a daylight-saving change it just
/// stepped over (the hours a spring-forward change skipped, the hour an autumn change repeats).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    at: Instant,
    dst_start: Option<i64>,
    dst_start_landing: Option<i64>,
    dst_end: Option<i64>,
}

impl Cursor {
    fn new(ts: i64, zone: Zone) -> Cursor {
        Cursor {
            at: Instant::new(ts, zone),
            dst_start: None,
            dst_start_landing: None,
            dst_end: None,
        }
    }

    fn c(&self) -> Civil {
        self.at.civil()
    }

    fn weekday(&self) -> u32 {
        let c = self.c();
        // 1970-01-01 was a Thursday.
        (days_from_civil(c.year, c.month, c.day) + 4).rem_euclid(7) as u32
    }

    fn set(&mut self, change: impl FnOnce(&mut Civil) -> bool) {
        let mut c = self.c();
        if change(&mut c) {
            self.at = self.at.at_local(local_ts(&c), self.at.offset);
        }
    }

    fn set_hour(&mut self, hour: i64) {
        self.set(|c| std::mem::replace(&mut c.hour, hour) != hour);
    }

    fn set_minute(&mut self, minute: i64) {
        self.set(|c| std::mem::replace(&mut c.minute, minute) != minute);
    }

    fn set_second(&mut self, second: i64) {
        self.set(|c| std::mem::replace(&mut c.second, second) != second);
    }

    fn set_millisecond(&mut self, ms: i64) {
        self.set(|c| std::mem::replace(&mut c.millisecond, ms) != ms);
    }

    fn step(&mut self, forward: bool, unit: Unit) {
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

    fn clear_dst_start(&mut self) {
        self.dst_start = None;
        self.dst_start_landing = None;
    }

    /// One step of the walk, noting a daylight-saving change crossed on the way (unless every
    /// hour is scheduled, when a skipped or repeated hour changes nothing).
    fn apply(&mut self, forward: bool, unit: Unit, hours_scheduled: usize) {
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

    fn is_last_day_of_month(&self) -> bool {
        let c = self.c();
        c.day == days_in_month(c.year, c.month)
    }

    fn is_in_last_week_of_month(&self) -> bool {
        let c = self.c();
        c.day > days_in_month(c.year, c.month) - 7
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A value of a parsed field: a number, or a token with `L` kept as written (`L`, `5L`).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Num(f64),
    Token(String),
}

impl Value {
    fn show(&self) -> String {
        match self {
            Value::Num(n) => js_number(*n),
            Value::Token(t) => t.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl FieldKind {
    fn bounds(self) -> (f64, f64) {
        match self {
            FieldKind::Second | FieldKind::Minute => (0.0, 59.0),
            FieldKind::Hour => (0.0, 23.0),
            FieldKind::DayOfMonth => (1.0, 31.0),
            FieldKind::Month => (1.0, 12.0),
            FieldKind::DayOfWeek => (0.0, 7.0),
        }
    }

    /// How cron-parser names the field in "too many values" errors.
    fn unit(self) -> &'static str {
        match self {
            FieldKind::Second => "Second",
            FieldKind::Minute => "Minute",
            FieldKind::Hour => "Hour",
            FieldKind::DayOfMonth => "DayOfMonth",
            FieldKind::Month => "Month",
            FieldKind::DayOfWeek => "DayOfWeek",
        }
    }

    /// And in "too many values"-free messages about hashed ranges.
    fn field_name(self) -> &'static str {
        match self {
            FieldKind::Second => "second",
            FieldKind::Minute => "minute",
            FieldKind::Hour => "hour",
            FieldKind::DayOfMonth => "dayOfMonth",
            FieldKind::Month => "month",
            FieldKind::DayOfWeek => "dayOfWeek",
        }
    }

    /// And in validation errors.
    fn class_name(self) -> &'static str {
        match self {
            FieldKind::Second => "CronSecond",
            FieldKind::Minute => "CronMinute",
            FieldKind::Hour => "CronHour",
            FieldKind::DayOfMonth => "CronDayOfMonth",
            FieldKind::Month => "CronMonth",
            FieldKind::DayOfWeek => "CronDayOfWeek",
        }
    }

    fn allows_last(self) -> bool {
        matches!(self, FieldKind::DayOfMonth | FieldKind::DayOfWeek)
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The alias shortcuts cron-parser knows, expanded to six fields.
fn predefined(expression: &str) -> Option<&'static str> {
    Some(match expression {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        "@minutely" => "0 * * * * *",
        "@secondly" => "* * * * * *",
        "@weekdays" => "0 0 0 * * 1-5",
        "@weekends" => "0 0 0 * * 0,6",
        _ => return None,
    })
}

/// Replaces every run of three letters with the number it names.
fn replace_aliases(value: &str, kind: FieldKind) -> Parsed<String> {
    let names: &[&str] = if kind == FieldKind::Month {
        &MONTHS
    } else {
        &WEEKDAYS
    };
    let base = if kind == FieldKind::Month { 1 } else { 0 };
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 3 <= chars.len() && chars[i..i + 3].iter().all(|c| c.is_ascii_alphabetic()) {
            let word: String = chars[i..i + 3]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase();
            match names.iter().position(|n| *n == word) {
                Some(index) => out.push_str(&(index + base).to_string()),
                None => return fail(format!("Validation error, cannot resolve alias \"{word}\"")),
            }
            i += 3;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The characters a field may hold: digits and `?,*/-H`, `H(a-b)`, plus `L` in the day fields and
/// `#` in the day of week.
fn valid_chars(value: &str, kind: FieldKind) -> bool {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'H' && bytes.get(i + 1) == Some(&b'(') {
            if let Some(len) = hashed_range_len(&bytes[i..]) {
                i += len;
                continue;
            }
        }
        let ok = b.is_ascii_digit()
            || matches!(b, b'?' | b',' | b'*' | b'H' | b'/' | b'-')
            || (b == b'L' && kind.allows_last())
            || (b == b'#' && kind == FieldKind::DayOfWeek);
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// The length of `H(digits-digits)` at the start of `bytes`.
fn hashed_range_len(bytes: &[u8]) -> Option<usize> {
    let mut i = 2;
    let start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == start || bytes.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    (i > start && bytes.get(i) == Some(&b')')).then_some(i + 1)
}

/// `*` and `?` standing for a whole list item (optionally stepped) become the field's full range.
fn expand_wildcards(value: &str, kind: FieldKind) -> Parsed<String> {
    let (min, max) = kind.bounds();
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    for (i, ch) in chars.iter().enumerate() {
        let starts_item = i == 0 || chars[i - 1] == ',';
        let ends_item = matches!(chars.get(i + 1), None | Some('/') | Some(','));
        if matches!(ch, '*' | '?') && starts_item && ends_item {
            out.push_str(&format!("{}-{}", js_number(min), js_number(max)));
        } else {
            out.push(*ch);
        }
    }
    if out.contains(['*', '?']) {
        return fail(format!("Invalid wildcard, got value: {value}"));
    }
    Ok(out)
}

/// A random number in [0, 1): cron-parser seeds `H` randomly on every parse, so hashed values
/// differ between parses here as they do in pg-boss.
fn random_unit() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut n = 0u64;
    for b in &bytes[..7] {
        n = (n << 8) | u64::from(*b);
    }
    (n >> 3) as f64 / (1u64 << 53) as f64
}

fn hashed_value(random: f64, min: f64, max: f64) -> f64 {
    (random * (max - min + 1.0)).floor() + min
}

fn hashed_range(min: f64, max: f64, kind: FieldKind) -> Parsed<(f64, f64)> {
    if min > max {
        return fail(format!(
            "Invalid range: {}-{}, min > max",
            js_number(min),
            js_number(max)
        ));
    }
    let (lo, hi) = kind.bounds();
    let range = (min.max(lo), max.min(hi));
    if range.0 > range.1 {
        return fail(format!(
            "Invalid range: {}-{}, no usable value in the {} field",
            js_number(min),
            js_number(max),
            kind.field_name()
        ));
    }
    Ok(range)
}

fn hashed_step(random: f64, min: f64, max: f64, step: f64) -> String {
    let offset = (random * step).floor();
    let mut values = Vec::new();
    let mut i = (min / step).floor() * step + offset;
    while i <= max {
        if i >= min {
            values.push(js_number(i));
        }
        i += step;
    }
    if values.is_empty() {
        return js_number(hashed_value(random, min, max));
    }
    values.join(",")
}

fn check_field_size(kind: FieldKind, count: usize) -> Parsed<()> {
    if count > MAX_FIELD_VALUES {
        return fail(format!(
            "Constraint error, too many values in {} field, expected at most {MAX_FIELD_VALUES}",
            kind.unit()
        ));
    }
    Ok(())
}

/// Replaces `H`, `H(a-b)`, `H/n` and `H(a-b)/n` with the values they hash to.
fn expand_hashes(value: &str, kind: FieldKind) -> Parsed<String> {
    let random = random_unit();
    let (lo, hi) = kind.bounds();
    let bytes = value.as_bytes();
    let mut out = String::new();
    let mut count = 0usize;
    let mut i = 0;
    let digits = |from: usize| {
        let mut end = from;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        (end > from).then(|| (value[from..end].parse::<f64>().unwrap_or(f64::NAN), end))
    };
    while i < bytes.len() {
        if bytes[i] != b'H' {
            out.push(bytes[i] as char);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut range = None;
        if bytes.get(j) == Some(&b'(') {
            if let Some(len) = hashed_range_len(&bytes[i..]) {
                let (min, after_min) = digits(j + 1).expect("checked by hashed_range_len");
                let (max, _) = digits(after_min + 1).expect("checked by hashed_range_len");
                range = Some((min, max));
                j = i + len;
            }
        }
        let mut step = None;
        if bytes.get(j) == Some(&b'/') {
            if let Some((n, end)) = digits(j + 1) {
                step = Some(n);
                j = end;
            }
        }
        let replaced = match (range, step) {
            (Some((min, max)), Some(step)) => {
                if step <= 0.0 {
                    return fail(format!(
                        "Invalid step: {}, must be positive",
                        js_number(step)
                    ));
                }
                let (min, max) = hashed_range(min, max, kind)?;
                count += ((max - min + 1.0) / step).ceil() as usize;
                check_field_size(kind, count)?;
                hashed_step(random, min, max, step)
            }
            (Some((min, max)), None) => {
                let (min, max) = hashed_range(min, max, kind)?;
                js_number(hashed_value(random, min, max))
            }
            (None, Some(step)) => {
                if step <= 0.0 {
                    return fail(format!(
                        "Invalid step: {}, must be positive",
                        js_number(step)
                    ));
                }
                count += ((hi - lo + 1.0) / step).ceil() as usize;
                check_field_size(kind, count)?;
                hashed_step(random, lo, hi, step)
            }
            (None, None) => js_number(hashed_value(random, lo, hi)),
        };
        out.push_str(&replaced);
        i = j;
    }
    Ok(out)
}

/// JavaScript's `+text` for the texts a field can hold by now.
fn js_plus(text: &str) -> f64 {
    if text.is_empty() {
        0.0
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

fn digits_only(text: &str) -> f64 {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

enum Item {
    One(Value),
    Many(Vec<f64>),
}

fn parse_range(kind: FieldKind, text: &str, step: f64) -> Parsed<Item> {
    let parts: Vec<&str> = text.split('-').collect();
    if parts.len() <= 1 {
        let n = js_plus(text);
        return Ok(Item::One(if n.is_nan() {
            Value::Token(text.to_string())
        } else {
            Value::Num(n)
        }));
    }
    if parts.len() > 2 {
        return fail(format!("Invalid range: {text}"));
    }
    let (min, max) = (digits_only(parts[0]), digits_only(parts[1]));
    let (lo, hi) = kind.bounds();
    if min.is_nan() || max.is_nan() || min < lo || max > hi {
        return fail(format!(
            "Constraint error, got range {}-{} expected range {}-{}",
            js_number(min),
            js_number(max),
            js_number(lo),
            js_number(hi)
        ));
    }
    if min > max {
        return fail(format!(
            "Invalid range: {0}-{1}, min({0}) > max({1})",
            js_number(min),
            js_number(max)
        ));
    }
    if step.is_nan() || step <= 0.0 {
        return fail(format!(
            "Constraint error, cannot repeat at every {} time.",
            js_number(step)
        ));
    }
    let mut values = Vec::new();
    // A weekday range ending on 7 (Sunday again) whose steps land on it also counts 0.
    if kind == FieldKind::DayOfWeek && max % 7.0 == 0.0 && (max - min) % step == 0.0 {
        values.push(0.0);
    }
    let mut v = min;
    while v <= max {
        if !values.contains(&v) {
            values.push(v);
        }
        v += step;
    }
    Ok(Item::Many(values))
}

fn parse_item(kind: FieldKind, atom: &str) -> Parsed<Item> {
    let parts: Vec<&str> = atom.split('/').collect();
    match parts.len() {
        1 => parse_range(kind, atom, 1.0),
        2 => {
            let start = if parts[0].contains('-') {
                parts[0].to_string()
            } else {
                format!("{}-{}", parts[0], js_number(kind.bounds().1))
            };
            parse_range(kind, &start, js_plus(parts[1]))
        }
        _ => fail(format!("Invalid repeat: {atom}")),
    }
}

fn parse_list(kind: FieldKind, value: &str) -> Parsed<Vec<Value>> {
    let (lo, hi) = kind.bounds();
    let mut stack: Vec<Value> = Vec::new();
    for atom in value.split(',') {
        check_field_size(kind, stack.len())?;
        if atom.is_empty() {
            return fail("Invalid list value format");
        }
        match parse_item(kind, atom)? {
            Item::Many(values) => stack.extend(values.into_iter().map(Value::Num)),
            Item::One(value) => {
                let shown = value.show();
                if kind.allows_last() && shown.contains('L') {
                    stack.push(value);
                    continue;
                }
                let n = match &value {
                    Value::Num(n) => *n,
                    Value::Token(t) => parse_int_prefix(t),
                };
                if n.is_nan() || n < lo || n > hi {
                    return fail(format!(
                        "Constraint error, got value {shown} expected range {}-{}",
                        js_number(lo),
                        js_number(hi)
                    ));
                }
                stack.push(if kind == FieldKind::DayOfWeek {
                    Value::Num(n % 7.0)
                } else {
                    value
                });
            }
        }
    }
    Ok(stack)
}

/// `parseInt(text, 10)`: the leading digits, or NaN.
fn parse_int_prefix(text: &str) -> f64 {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        f64::NAN
    } else {
        digits.parse().unwrap_or(f64::NAN)
    }
}

fn parse_field(kind: FieldKind, raw: &str) -> Parsed<Vec<Value>> {
    let mut value = raw.to_string();
    if matches!(kind, FieldKind::Month | FieldKind::DayOfWeek) {
        value = replace_aliases(&value, kind)?;
    }
    if !valid_chars(&value, kind) {
        return fail(format!("Invalid characters, got value: {value}"));
    }
    let value = expand_wildcards(&value, kind)?;
    let value = expand_hashes(&value, kind)?;
    parse_list(kind, &value)
}

/// Sorts as cron-parser does (numbers first, ascending, then tokens) and checks the values.
fn checked(kind: FieldKind, mut values: Vec<Value>) -> Parsed<Vec<Value>> {
    if values.is_empty() {
        return fail(format!(
            "{} Validation error, values contains no values",
            kind.class_name()
        ));
    }
    values.sort_by(|a, b| match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
        (Value::Num(_), Value::Token(_)) => std::cmp::Ordering::Less,
        (Value::Token(_), Value::Num(_)) => std::cmp::Ordering::Greater,
        (Value::Token(x), Value::Token(y)) => x.cmp(y),
    });
    let (lo, hi) = kind.bounds();
    for value in &values {
        let ok = match value {
            Value::Num(n) => *n >= lo && *n <= hi,
            Value::Token(t) => match kind {
                FieldKind::DayOfMonth => t == "L",
                FieldKind::DayOfWeek => {
                    let b = t.as_bytes();
                    (b.len() == 1 && b[0] == b'L')
                        || (b.len() == 2 && (b'0'..=b'7').contains(&b[0]) && b[1] == b'L')
                }
                _ => false,
            },
        };
        if !ok {
            let chars = if kind.allows_last() {
                " or chars L"
            } else {
                ""
            };
            return fail(format!(
                "{} Validation error, got value {} expected range {}-{}{chars}",
                kind.class_name(),
                value.show(),
                js_number(lo),
                js_number(hi)
            ));
        }
    }
    for (i, value) in values.iter().enumerate() {
        if values.iter().position(|v| v == value) != Some(i) {
            return fail(format!(
                "{} Validation error, duplicate values found: {}",
                kind.class_name(),
                value.show()
            ));
        }
    }
    Ok(values)
}

fn numbers(values: &[Value]) -> Vec<i64> {
    values
        .iter()
        .filter_map(|v| {
            if let Value::Num(n) = v {
                Some(*n as i64)
            } else {
                None
            }
        })
        .collect()
}

/// A parsed expression: what matches in each field.
#[derive(Debug, Clone)]
pub struct CronExpression {
    seconds: Vec<i64>,
    minutes: Vec<i64>,
    hours: Vec<i64>,
    days_of_month: Vec<i64>,
    last_day_of_month: bool,
    day_of_month_wildcard: bool,
    months: Vec<i64>,
    weekdays: Vec<i64>,
    /// The weekday digits of the values, for an `nL` (last such weekday of the month) match.
    last_weekdays: Option<Vec<i64>>,
    /// `n#k`: only the k-th such weekday of the month (0: no such constraint).
    nth_weekday: i64,
    day_of_week_wildcard: bool,
}

impl CronExpression {
    /// Parses `expression` as cron-parser does with `strict: false`.
    pub fn parse(expression: &str) -> Parsed<CronExpression> {
        let expression = predefined(expression).unwrap_or(expression);
        let expression = if expression.is_empty() {
            "0 * * * * *"
        } else {
            expression
        };
        if expression.chars().count() > MAX_EXPRESSION_LENGTH {
            return fail(format!("Invalid cron expression, too long, expected at most {MAX_EXPRESSION_LENGTH} characters"));
        }
        let mut atoms: Vec<&str> = expression
            .split(|c: char| c.is_whitespace() || c == '\u{feff}')
            .filter(|a| !a.is_empty())
            .collect();
        if atoms.is_empty() {
            atoms.push("");
        }
        if atoms.len() > 6 {
            return fail("Invalid cron expression, too many fields");
        }
        let defaults = ["0", "*", "*", "*", "*", "*"];
        let missing = 6 - atoms.len();
        let mut fields: Vec<&str> = defaults[..missing].to_vec();
        fields.extend(atoms);
        let [second, minute, hour, day_of_month, month, day_of_week] = [
            fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
        ];

        let second_values = parse_field(FieldKind::Second, second)?;
        let minute_values = parse_field(FieldKind::Minute, minute)?;
        let hour_values = parse_field(FieldKind::Hour, hour)?;
        let month_values = parse_field(FieldKind::Month, month)?;
        let dom_values = parse_field(FieldKind::DayOfMonth, day_of_month)?;
        let (weekday_text, nth) = split_nth(day_of_week)?;
        let dow_values = parse_field(FieldKind::DayOfWeek, &weekday_text)?;

        let seconds = numbers(&checked(FieldKind::Second, second_values)?);
        let minutes = numbers(&checked(FieldKind::Minute, minute_values)?);
        let hours = numbers(&checked(FieldKind::Hour, hour_values)?);
        // With a single month, days it cannot have are dropped (unless that leaves none).
        let dom_values = match numbers(&month_values).as_slice() {
            [only] if month_values.len() == 1 => {
                let limit = DAYS_IN_MONTH[(*only as usize).clamp(1, 12) - 1] as f64;
                let kept: Vec<Value> = dom_values
                    .iter()
                    .filter(|v| !matches!(v, Value::Num(n) if *n > limit))
                    .cloned()
                    .collect();
                if kept.is_empty() {
                    dom_values
                } else {
                    kept
                }
            }
            _ => dom_values,
        };
        let dom_values = checked(FieldKind::DayOfMonth, dom_values)?;
        let months = numbers(&checked(FieldKind::Month, month_values)?);
        let dow_values = checked(FieldKind::DayOfWeek, dow_values)?;
        if dow_values
            .iter()
            .any(|v| matches!(v, Value::Token(t) if t == "L"))
        {
            return fail("CronDayOfWeek Validation error, unexpected standalone L");
        }

        let last_day_of_month = day_of_month.contains('L');
        let day_of_week_wildcard = matches!(day_of_week, "*" | "?");
        if !last_day_of_month && day_of_week_wildcard {
            let longest = months
                .iter()
                .map(|m| DAYS_IN_MONTH[(*m as usize).clamp(1, 12) - 1])
                .max()
                .unwrap_or(31);
            let first = match dom_values.first() {
                Some(Value::Num(n)) => *n,
                Some(Value::Token(t)) => parse_int_prefix(t),
                None => f64::NAN,
            };
            // NaN (no number at all) must fail too, hence not `first > longest`.
            let fits = first <= f64::from(longest);
            if !fits {
                return fail("Invalid explicit day of month definition");
            }
        }
        let last_weekdays = day_of_week.contains('L').then(|| {
            dow_values
                .iter()
                .filter_map(|v| {
                    v.show()
                        .chars()
                        .next()
                        .and_then(|c| c.to_digit(10))
                        .map(|d| i64::from(d) % 7)
                })
                .collect()
        });
        Ok(CronExpression {
            seconds,
            minutes,
            hours,
            days_of_month: numbers(&dom_values),
            last_day_of_month,
            day_of_month_wildcard: matches!(day_of_month, "*" | "?"),
            months,
            weekdays: numbers(&dow_values),
            last_weekdays,
            nth_weekday: nth,
            day_of_week_wildcard,
        })
    }

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
            let c = at.c();
            if !self.months.contains(&c.month) {
                at.apply(forward, Unit::Month, hours_scheduled);
                continue;
            }
            if !self.matches_day(&at) {
                at.apply(forward, Unit::Day, hours_scheduled);
                continue;
            }
            if !self.match_hour(&mut at, backwards, &mut cache) {
                continue;
            }
            let c = at.c();
            if !self.minutes.contains(&c.minute) {
                match Self::nearest(&self.minutes, c.minute, backwards) {
                    Some(minute) => {
                        at.set_minute(minute);
                        at.set_second(Self::extreme(&self.seconds, backwards));
                    }
                    None => {
                        at.apply(forward, Unit::Hour, hours_scheduled);
                        at.set_minute(Self::extreme(&self.minutes, backwards));
                        at.set_second(Self::extreme(&self.seconds, backwards));
                    }
                }
                continue;
            }
            if !self.seconds.contains(&c.second) {
                match Self::nearest(&self.seconds, c.second, backwards) {
                    Some(second) => at.set_second(second),
                    None => {
                        at.apply(forward, Unit::Minute, hours_scheduled);
                        at.set_second(Self::extreme(&self.seconds, backwards));
                    }
                }
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

/// cron-parser's `#`: `5#3` is the third Friday. Not combinable with lists, ranges, steps or `L`.
fn split_nth(value: &str) -> Parsed<(String, i64)> {
    let parts: Vec<&str> = value.split('#').collect();
    if parts.len() <= 1 {
        return Ok((parts[0].to_string(), 0));
    }
    if let Some(c) = value.chars().find(|c| matches!(c, ',' | '-' | '/' | 'L')) {
        return fail(format!(
            "Constraint error, invalid dayOfWeek `#` and `{c}` special characters are incompatible"
        ));
    }
    let nth = js_plus(parts[parts.len() - 1]);
    if !(parts.len() <= 2 && !nth.is_nan() && (1.0..=5.0).contains(&nth)) {
        return fail("Constraint error, invalid dayOfWeek occurrence number (#)");
    }
    Ok((parts[0].to_string(), nth as i64))
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

// ---------------------------------------------------------------------------------------------
// Recognising the other format

/// Whether `expression` is an RFC 5545 recurrence rule rather than a cron expression, by pg-boss's
/// test: a line opening with an iCalendar property name followed by `;` or `:`, or a `FREQ=` part
/// (in any case) at the start of a line or after whitespace or `;`. No cron field holds `=`, `:`
/// or `;`, so the test cannot mistake one for the other.
pub fn is_rrule(expression: &str) -> bool {
    let chars: Vec<char> = expression.chars().collect();
    let line_start =
        |i: usize| i == 0 || matches!(chars[i - 1], '\n' | '\r' | '\u{2028}' | '\u{2029}');
    for i in 0..chars.len() {
        if line_start(i) {
            let mut j = i;
            while j < chars.len() && matches!(chars[j], ' ' | '\t') {
                j += 1;
            }
            if j < chars.len() && chars[j].is_ascii_alphabetic() {
                j += 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && matches!(chars[j], ';' | ':') {
                    return true;
                }
            }
        }
        let boundary = line_start(i) || chars[i - 1].is_whitespace() || chars[i - 1] == ';';
        if boundary && chars.len() >= i + 5 {
            let word: String = chars[i..i + 5].iter().collect();
            if word.eq_ignore_ascii_case("FREQ=") {
                return true;
            }
        }
    }
    false
}

/// `Date.prototype.toString()` of an instant, as V8 prints it in UTC, for the one cron-parser
/// message that quotes a date.
pub fn js_date_string(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(at) => format!(
            "{} GMT+0000 (Coordinated Universal Time)",
            at.format("%a %b %d %Y %H:%M:%S")
        ),
        None => "Invalid Date".to_string(),
    }
}

/// Parsed expressions are cheap to build, but a pass evaluates every schedule each interval;
/// keeping the last few parses avoids redoing the same work for unchanged rows. Expressions with
/// `H` are never kept, since cron-parser hashes them anew on every parse.
pub struct ParseCache {
    entries: Mutex<Vec<(String, CronExpression)>>,
}

impl Default for ParseCache {
    fn default() -> Self {
        ParseCache {
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl ParseCache {
    const CAPACITY: usize = 256;

    pub fn parse(&self, expression: &str) -> Parsed<CronExpression> {
        if let Some((_, parsed)) = self
            .entries
            .lock()
            .unwrap()
            .iter()
            .find(|(e, _)| e == expression)
        {
            return Ok(parsed.clone());
        }
        let parsed = CronExpression::parse(expression)?;
        if !expression.contains('H') {
            let mut entries = self.entries.lock().unwrap();
            if entries.len() >= Self::CAPACITY {
                entries.remove(0);
            }
            entries.push((expression.to_string(), parsed.clone()));
        }
        Ok(parsed)
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
    fn civil_round_trips() {
        for local in [0, -1, 86_399_999, 1_700_000_000_123, -62_000_000_000_000] {
            assert_eq!(local_ts(&civil_of(local)), local);
        }
        assert_eq!(days_from_civil(2024, 13, 1), days_from_civil(2025, 1, 1));
        assert_eq!(days_from_civil(2024, 3, 0), days_from_civil(2024, 2, 29));
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

    #[test]
    fn refusals_are_worded_as_cron_parser_words_them() {
        let err = |e: &str| CronExpression::parse(e).unwrap_err().0;
        assert_eq!(
            err("60 * * * *"),
            "Constraint error, got value 60 expected range 0-59"
        );
        assert_eq!(
            err("* * * * * * *"),
            "Invalid cron expression, too many fields"
        );
        assert_eq!(err("0 0 15W * *"), "Invalid characters, got value: 15W");
        assert_eq!(
            err("1,1 * * * *"),
            "CronMinute Validation error, duplicate values found: 1"
        );
        assert_eq!(
            err("0 0 * * L"),
            "CronDayOfWeek Validation error, unexpected standalone L"
        );
        assert_eq!(
            err("0 0 * JANUARY *"),
            "Validation error, cannot resolve alias \"uar\""
        );
        assert_eq!(
            err("0 0 31 2 *"),
            "Invalid explicit day of month definition"
        );
        assert_eq!(err("5-1 * * * *"), "Invalid range: 5-1, min(5) > max(1)");
        assert_eq!(
            err("*/0 * * * *"),
            "Constraint error, cannot repeat at every 0 time."
        );
        assert_eq!(
            err("0 0 * * 1#6"),
            "Constraint error, invalid dayOfWeek occurrence number (#)"
        );
        assert_eq!(
            err("0 0 * * 1-2#2"),
            "Constraint error, invalid dayOfWeek `#` and `-` special characters are incompatible"
        );
        assert_eq!(err("a* * * * *"), "Invalid characters, got value: a*");
        assert_eq!(err("1* * * * *"), "Invalid wildcard, got value: 1*");
        assert!(CronExpression::parse("* * *").is_ok());
        assert!(CronExpression::parse("0 0 ? * MON-FRI").is_ok());
        assert!(CronExpression::parse("H * * * *").is_ok());
    }

    #[test]
    fn zones_resolve_as_luxon_resolves_them() {
        assert_eq!(Zone::parse("UTC"), Some(Zone::UTC));
        assert_eq!(Zone::parse("gmt"), Some(Zone::UTC));
        assert_eq!(
            Zone::parse("UTC+5:30"),
            Some(Zone::Fixed(5 * MS_HOUR + 30 * MS_MINUTE))
        );
        assert_eq!(
            Zone::parse("america/new_york"),
            Some(Zone::Named(chrono_tz::America::New_York))
        );
        assert_eq!(Zone::parse("America/New_Yrok"), None);
        assert_eq!(Zone::parse(""), None);
    }

    #[test]
    fn rrules_are_told_from_cron() {
        assert!(is_rrule("FREQ=DAILY;BYHOUR=9"));
        assert!(is_rrule("DTSTART:20260101T090000\nRRULE:FREQ=DAILY"));
        assert!(is_rrule("byhour=9;freq=daily"));
        assert!(!is_rrule("0 9 * * *"));
        assert!(!is_rrule("@daily"));
    }
}
