//! iCalendar date and date-time values (DTSTART, UNTIL, RDATE, EXDATE) read as instants in a
//! zone, with the Temporal API's refusals for text it cannot parse or fields out of range.
//!
//! A value is `YYYYMMDD` (a date: the start of that day), `YYYYMMDDTHHMMSS` (a wall time in the
//! zone) or the same ending in `Z` (an instant). The time may be shortened to `HH` or `HHMM`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::clock::RuleZone;
use super::RuleError;

/// How a value is to be read: as a date or as a date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `VALUE=DATE`, or no time part.
    Date,
    /// A date-time.
    DateTime,
}

/// The instant `text` names in `zone`, read as `value_type` says (a text without `T` is a date
/// whatever it says).
pub fn instant(text: &str, zone: RuleZone, value_type: ValueType) -> Result<i64, RuleError> {
    let date_text = format!(
        "{}-{}-{}",
        js_slice(text, 0, 4),
        js_slice(text, 4, 6),
        js_slice(text, 6, 8)
    );
    if value_type == ValueType::Date || !text.contains('T') {
        let date = plain_date(&date_text, &date_text)?;
        return Ok(zone.compatible(date.and_time(NaiveTime::MIN)));
    }
    if text.ends_with('Z') {
        let time_text = js_slice(text, 9, 15);
        let whole = format!("{date_text}T{time_text}Z");
        let local = plain_date_time(&date_text, &time_text, &whole)?;
        return Ok(local.and_utc().timestamp_millis());
    }
    let time_text = js_slice(text, 9, usize::MAX);
    let whole = format!("{date_text}T{time_text}");
    let local = plain_date_time(&date_text, &time_text, &whole)?;
    Ok(zone.compatible(local))
}

/// `String.prototype.slice` on character positions.
fn js_slice(text: &str, from: usize, to: usize) -> String {
    text.chars()
        .skip(from)
        .take(to.saturating_sub(from))
        .collect()
}

fn cannot_parse(whole: &str) -> RuleError {
    RuleError::range(format!("Cannot parse: {whole}"))
}

fn out_of_range(field: &str, value: u32, low: u32, high: u32) -> RuleError {
    RuleError::range(format!(
        "Invalid {field}: {value}; must be between {low}-{high}"
    ))
}

fn digits(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` as an ISO calendar date.
fn plain_date(date_text: &str, whole: &str) -> Result<NaiveDate, RuleError> {
    let parts: Vec<&str> = date_text.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(cannot_parse(whole));
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(cannot_parse(whole));
    }
    let (Some(year), Some(month), Some(day)) = (digits(y), digits(m), digits(d)) else {
        return Err(cannot_parse(whole));
    };
    if !(1..=12).contains(&month) {
        return Err(out_of_range("month", month, 1, 12));
    }
    let last = days_in_month(year as i32, month);
    if !(1..=last).contains(&day) {
        return Err(out_of_range("day", day, 1, last));
    }
    NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(|| cannot_parse(whole))
}

/// A date and an ISO time of `HH`, `HHMM` or `HHMMSS` (with or without colons).
fn plain_date_time(
    date_text: &str,
    time_text: &str,
    whole: &str,
) -> Result<NaiveDateTime, RuleError> {
    let time = time_text.strip_suffix('Z').unwrap_or(time_text);
    let compact = time.replace(':', "");
    let colons = time.len() - compact.len();
    let shaped = match compact.len() {
        2 => colons == 0,
        4 => colons == 0 || (colons == 1 && time.as_bytes().get(2) == Some(&b':')),
        6 => colons == 0 || (colons == 2 && time.as_bytes().get(2) == Some(&b':')),
        _ => false,
    };
    if !shaped || digits(&compact).is_none() || date_text.len() != 10 {
        return Err(cannot_parse(whole));
    }
    let date = plain_date(date_text, whole)?;
    let field = |i: usize| compact.get(i..i + 2).map_or(0, |s| s.parse().unwrap_or(0));
    let (hour, minute, mut second) = (field(0), field(2), field(4));
    if hour > 23 {
        return Err(out_of_range("hour", hour, 0, 23));
    }
    if minute > 59 {
        return Err(out_of_range("minute", minute, 0, 59));
    }
    // A leap second reads as the last second of its minute.
    if second == 60 {
        second = 59;
    }
    if second > 59 {
        return Err(out_of_range("second", second, 0, 59));
    }
    Ok(date.and_time(NaiveTime::from_hms_opt(hour, minute, second).unwrap_or(NaiveTime::MIN)))
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> Result<String, String> {
        instant(text, RuleZone::Utc, ValueType::DateTime)
            .map(|ms| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .unwrap()
                    .to_rfc3339()
            })
            .map_err(|e| e.message)
    }

    #[test]
    fn values_read_as_temporal_reads_them() {
        assert_eq!(utc("20260101T090000").unwrap(), "2026-01-01T09:00:00+00:00");
        assert_eq!(utc("20260101T0900").unwrap(), "2026-01-01T09:00:00+00:00");
        assert_eq!(utc("20260101").unwrap(), "2026-01-01T00:00:00+00:00");
        assert_eq!(
            utc("2026XX01T090000").unwrap_err(),
            "Cannot parse: 2026-XX-01T090000"
        );
        assert_eq!(
            utc("20261301T090000").unwrap_err(),
            "Invalid month: 13; must be between 1-12"
        );
        assert_eq!(
            utc("20260230T090000").unwrap_err(),
            "Invalid day: 30; must be between 1-28"
        );
        assert_eq!(
            utc("20260101T250000").unwrap_err(),
            "Invalid hour: 25; must be between 0-23"
        );
        let paris = RuleZone::parse("Europe/Paris").unwrap();
        assert_eq!(
            instant("20260101T090000Z", paris, ValueType::DateTime).unwrap(),
            1_767_258_000_000
        );
        assert_eq!(
            instant("20260101T100000", paris, ValueType::DateTime).unwrap(),
            1_767_258_000_000
        );
    }
}
