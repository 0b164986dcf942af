//! The second reading: calendar lines into a [`Rule`] in a zone, with the refusals the rule
//! engine pg-boss builds on makes (its value checks, the combinations RFC 5545 forbids outright)
//! and then pg-boss's own check that no part value was dropped on the way.

use chrono::Weekday;

use super::clock::RuleZone;
use super::text::{Ics, PARTS};
use super::values::{instant, ValueType};
use super::RuleError;

/// How often a rule recurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Freq {
    /// Every `INTERVAL` seconds.
    Secondly,
    /// Every `INTERVAL` minutes.
    Minutely,
    /// Every `INTERVAL` hours.
    Hourly,
    /// Every `INTERVAL` days.
    Daily,
    /// Every `INTERVAL` weeks.
    Weekly,
    /// Every `INTERVAL` months.
    Monthly,
    /// Every `INTERVAL` years.
    Yearly,
}

/// A recurrence rule bound to its zone, every part read and checked.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The zone occurrences are generated in: DTSTART's TZID, else the schedule's.
    pub zone: RuleZone,
    /// DTSTART as an instant.
    pub start_ms: i64,
    /// FREQ.
    pub freq: Freq,
    /// INTERVAL, at least 1.
    pub interval: i64,
    /// COUNT.
    pub count: Option<i64>,
    /// UNTIL as an instant (inclusive).
    pub until_ms: Option<i64>,
    /// BYSECOND, sorted.
    pub by_second: Option<Vec<u32>>,
    /// BYMINUTE, sorted.
    pub by_minute: Option<Vec<u32>>,
    /// BYHOUR, sorted.
    pub by_hour: Option<Vec<u32>>,
    /// BYDAY as (ordinal, weekday); 0 for a weekday without one.
    pub by_day: Option<Vec<(i32, Weekday)>>,
    /// BYMONTHDAY.
    pub by_month_day: Option<Vec<i32>>,
    /// BYYEARDAY.
    pub by_year_day: Option<Vec<i32>>,
    /// BYWEEKNO.
    pub by_week_no: Option<Vec<i32>>,
    /// BYMONTH (numbers).
    pub by_month: Option<Vec<u32>>,
    /// BYSETPOS.
    pub by_set_pos: Option<Vec<i32>>,
    /// WKST, Monday unless named.
    pub wkst: Weekday,
    /// RDATE instants.
    pub rdates: Vec<i64>,
    /// EXDATE instants.
    pub exdates: Vec<i64>,
    /// Parts this engine reads but cannot evaluate as pg-boss does (RSCALE, SKIP, leap months,
    /// BYWEEKNO without BYDAY), named for the refusal.
    pub unreadable: Option<String>,
    /// How many values each part kept, for the dropped-value check: `None` for a part the rule
    /// does not hold, `Some(None)` for a single value, `Some(Some(n))` for a list of n.
    kept: Vec<(&'static str, Option<Option<usize>>)>,
}

/// The whitespace-separated token of an iCalendar line named `name`, split into its value type,
/// TZID and value; `None` when it is not that property or has no value.
struct Property {
    value_type: Option<String>,
    tzid: Option<String>,
    value: String,
}

fn property(token: &str, name: &str) -> Option<Property> {
    let colon = token.find(':')?;
    let (head, value) = (&token[..colon], &token[colon + 1..]);
    let mut params = head.split(';');
    if params.next()?.to_uppercase() != name {
        return None;
    }
    let (mut value_type, mut tzid) = (None, None);
    for param in params {
        let Some(eq) = param.find('=') else { continue };
        let key = param[..eq].to_uppercase();
        let raw = &param[eq + 1..];
        let unquoted = if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
            &raw[1..raw.len() - 1]
        } else {
            raw
        };
        match key.as_str() {
            "VALUE" => value_type = Some(unquoted.to_uppercase()),
            "TZID" => tzid = Some(unquoted.to_string()),
            _ => {}
        }
    }
    Some(Property {
        value_type,
        tzid,
        value: value.to_string(),
    })
}

fn starts_with_ci(token: &str, prefix: &str) -> bool {
    token.len() >= prefix.len() && token[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `parseInt` of a part value the strict reading has already judged to be an integer.
fn integer(text: &str, name: &str) -> Result<i64, RuleError> {
    let trimmed = text.trim();
    let body = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RuleError::error(format!("Invalid {name} value: {text}")));
    }
    // Beyond i64 is beyond every range below, which then drops it.
    Ok(trimmed.parse::<i64>().unwrap_or(i64::MAX))
}

fn integers(text: &str, name: &str, sorted: bool) -> Result<Vec<i64>, RuleError> {
    let mut values = text
        .split(',')
        .map(|v| integer(v, name))
        .collect::<Result<Vec<_>, _>>()?;
    if sorted {
        values.sort();
    }
    Ok(values)
}

/// The values in `low..=high` (zero only when allowed), first appearance kept; none left is no
/// part at all.
fn in_range(values: Vec<i64>, low: i64, high: i64, zero: bool) -> Option<Vec<i64>> {
    let mut kept: Vec<i64> = Vec::new();
    for v in values {
        if v >= low && v <= high && (zero || v != 0) && !kept.contains(&v) {
            kept.push(v);
        }
    }
    (!kept.is_empty()).then_some(kept)
}

fn weekday(code: &str) -> Option<Weekday> {
    Some(match code {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

/// A BYDAY token (`MO`, `-1FR`, `+2TU`): at most two digits of ordinal.
fn by_day_token(token: &str) -> Option<(i32, Weekday)> {
    if token.len() < 2 || !token.is_char_boundary(token.len() - 2) {
        return None;
    }
    let (ordinal, code) = token.split_at(token.len() - 2);
    let day = weekday(code)?;
    if ordinal.is_empty() {
        return Some((0, day));
    }
    let digits = ordinal.strip_prefix(['+', '-']).unwrap_or(ordinal);
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((ordinal.parse().ok()?, day))
}

/// Builds the rule `ics` holds in `tz` (the zone a floating DTSTART is read in).
pub fn build(ics: &Ics, tz: &str) -> Result<Rule, RuleError> {
    let tokens: Vec<&str> = ics.text.split_whitespace().collect();
    let dtstart_token = tokens
        .iter()
        .find(|t| starts_with_ci(t, "DTSTART"))
        .copied()
        .unwrap_or_default();
    let start = property(dtstart_token, "DTSTART")
        .ok_or_else(|| RuleError::error("Invalid DTSTART in ICS snippet"))?;
    let start_type = match start
        .value_type
        .clone()
        .unwrap_or_else(|| {
            if start.value.contains('T') {
                "DATE-TIME"
            } else {
                "DATE"
            }
            .into()
        })
        .as_str()
    {
        "DATE" => ValueType::Date,
        _ => ValueType::DateTime,
    };
    let zoned = start.tzid.is_some();
    let utc_start = start.value.ends_with('Z');
    let zone = RuleZone::parse(start.tzid.as_deref().unwrap_or(tz))?;
    let start_ms = instant(&start.value, zone, start_type)?;
    let dates = |name: &str| -> Result<Vec<i64>, RuleError> {
        let mut found = Vec::new();
        for token in tokens.iter().filter(|t| starts_with_ci(t, name)) {
            let Some(p) = property(token, name) else {
                continue;
            };
            let date_zone = match &p.tzid {
                Some(id) if !id.is_empty() => RuleZone::parse(id)?,
                _ => zone,
            };
            let value_type = match p.value_type.as_deref() {
                Some("DATE") => ValueType::Date,
                _ => ValueType::DateTime,
            };
            for value in p.value.split(',') {
                found.push(instant(value, date_zone, value_type)?);
            }
        }
        Ok(found)
    };
    let exdates = dates("EXDATE")?;
    let rdates = dates("RDATE")?;

    let rule_token = tokens
        .iter()
        .find(|t| starts_with_ci(t, "RRULE:"))
        .map(|t| &t[6..])
        .unwrap_or_default();
    let mut freq_text: Option<String> = None;
    let mut interval: Option<i64> = None;
    let mut count: Option<i64> = None;
    let mut until_ms: Option<i64> = None;
    let mut numeric: [Option<Vec<i64>>; 7] = Default::default();
    let mut by_day_text: Option<Vec<String>> = None;
    let mut by_month_text: Option<(Vec<i64>, Vec<String>)> = None;
    let mut wkst_text: Option<String> = None;
    let mut rscale: Option<String> = None;
    let mut skip: Option<String> = None;
    let mut early_skip: Option<String> = None;
    for part in rule_token.split(';') {
        let mut pieces = part.split('=');
        let name = pieces.next().unwrap_or_default();
        let value = pieces.next();
        if name.is_empty() {
            continue;
        }
        let v = value.unwrap_or_default();
        let list = |index: usize, label: &str, sorted: bool, slot: &mut [Option<Vec<i64>>; 7]| {
            integers(v, label, sorted).map(|values| slot[index] = Some(values))
        };
        match name.to_uppercase().as_str() {
            "RSCALE" if !v.is_empty() => {
                rscale = Some(v.to_uppercase());
                if skip.is_none() {
                    skip = early_skip.take();
                }
            }
            "SKIP" => {
                let upper = v.to_uppercase();
                if !["OMIT", "BACKWARD", "FORWARD"].contains(&upper.as_str()) {
                    return Err(RuleError::error(format!("Invalid SKIP value: {v}")));
                }
                if rscale.is_some() {
                    skip = Some(upper);
                } else {
                    early_skip = Some(upper);
                }
            }
            "FREQ" => freq_text = Some(v.to_uppercase()),
            "INTERVAL" => interval = Some(integer(v, "INTERVAL")?),
            "COUNT" => count = Some(integer(v, "COUNT")?),
            "UNTIL" => {
                let has_time = v.contains('T');
                let until_zone = zone;
                until_ms = Some(if start_type == ValueType::Date {
                    if has_time {
                        return Err(RuleError::error(
                            "UNTIL rule part MUST have the same value type as DTSTART",
                        ));
                    }
                    instant(v, until_zone, ValueType::Date)?
                } else if !has_time {
                    return Err(RuleError::error(
                        "UNTIL rule part MUST have the same value type as DTSTART",
                    ));
                } else {
                    if (zoned || utc_start) && !v.ends_with('Z') {
                        return Err(RuleError::error(
                            "UNTIL rule part MUST always be specified as a date with UTC time",
                        ));
                    }
                    instant(v, until_zone, ValueType::DateTime)?
                });
            }
            "BYHOUR" => list(0, "BYHOUR", true, &mut numeric)?,
            "BYMINUTE" => list(1, "BYMINUTE", true, &mut numeric)?,
            "BYSECOND" => list(2, "BYSECOND", true, &mut numeric)?,
            "BYMONTHDAY" => list(3, "BYMONTHDAY", false, &mut numeric)?,
            "BYYEARDAY" => list(4, "BYYEARDAY", false, &mut numeric)?,
            "BYWEEKNO" => list(5, "BYWEEKNO", false, &mut numeric)?,
            "BYSETPOS" => list(6, "BYSETPOS", false, &mut numeric)?,
            "BYDAY" => by_day_text = Some(v.split(',').map(|d| d.to_uppercase()).collect()),
            "BYMONTH" => {
                let (mut numbers, mut leap) = (Vec::new(), Vec::new());
                for item in v.split(',') {
                    let item = item.trim();
                    let upper = item.to_uppercase();
                    if upper.len() > 1
                        && upper.ends_with('L')
                        && upper[..upper.len() - 1].bytes().all(|b| b.is_ascii_digit())
                    {
                        leap.push(upper);
                    } else {
                        numbers.push(integer(item, "BYMONTH")?);
                    }
                }
                by_month_text = Some((numbers, leap));
            }
            "WKST" => wkst_text = Some(v.to_uppercase()),
            _ => {}
        }
    }
    if early_skip.is_some() && rscale.is_none() {
        return Err(RuleError::error(
            "SKIP MUST NOT be present unless RSCALE is present",
        ));
    }

    let Some(freq_text) = freq_text else {
        return Err(RuleError::error("RRULE must include FREQ"));
    };
    let interval_value = interval.unwrap_or(1);
    if interval_value <= 0 {
        return Err(RuleError::error(
            "Cannot create RRule: interval must be greater than 0",
        ));
    }
    let freq = match freq_text.as_str() {
        "YEARLY" => Freq::Yearly,
        "MONTHLY" => Freq::Monthly,
        "WEEKLY" => Freq::Weekly,
        "DAILY" => Freq::Daily,
        "HOURLY" => Freq::Hourly,
        "MINUTELY" => Freq::Minutely,
        "SECONDLY" => Freq::Secondly,
        other => return Err(RuleError::error(format!("Invalid FREQ value: {other}"))),
    };
    let mut by_day: Vec<(String, (i32, Weekday))> = Vec::new();
    for token in by_day_text.iter().flatten() {
        if token.is_empty() {
            continue;
        }
        let parsed = by_day_token(token);
        let bare_digit = token
            .trim_start_matches(['+', '-'])
            .starts_with(|c: char| c.is_ascii_digit());
        match parsed {
            Some((ordinal, day)) if !(ordinal == 0 && bare_digit) => {
                if !by_day.iter().any(|(t, _)| t == token) {
                    by_day.push((token.clone(), (ordinal, day)));
                }
            }
            _ => return Err(RuleError::error(format!("Invalid BYDAY value: {token}"))),
        }
    }
    let wkst = match &wkst_text {
        Some(text) => {
            weekday(text).ok_or_else(|| RuleError::error(format!("Invalid WKST value: {text}")))?
        }
        None => Weekday::Mon,
    };
    let (by_month, leap_months) = match by_month_text {
        Some((numbers, leap)) => {
            let numbers = in_range(numbers, 1, 12, false).unwrap_or_default();
            let mut leap_kept: Vec<String> = Vec::new();
            for l in leap {
                if !leap_kept.contains(&l) {
                    leap_kept.push(l);
                }
            }
            (Some(numbers), leap_kept)
        }
        None => (None, Vec::new()),
    };
    let month_count = by_month
        .as_ref()
        .map(|m| m.len() + leap_months.len())
        .filter(|n| *n > 0);
    let [hours, minutes, seconds, month_days, year_days, week_nos, set_pos] = numeric;
    let month_days = month_days.and_then(|v| in_range(v, -31, 31, false));
    let year_days = year_days.and_then(|v| in_range(v, -366, 366, false));
    let week_nos = week_nos.and_then(|v| in_range(v, -53, 53, false));
    let hours = hours.and_then(|v| in_range(v, 0, 23, true));
    let minutes = minutes.and_then(|v| in_range(v, 0, 59, true));
    let seconds = seconds.and_then(|v| in_range(v, 0, 59, true));
    let set_pos = match set_pos {
        Some(values) if values.contains(&0) => {
            return Err(RuleError::error("bySetPos may not contain 0"))
        }
        Some(values) => in_range(values, i64::MIN, i64::MAX, false),
        None => None,
    };

    // The combinations RFC 5545 forbids outright.
    let forbid = |message: &str| Err(RuleError::error(message));
    if count.is_some() && until_ms.is_some() {
        return forbid("COUNT and UNTIL MUST NOT occur in the same recurrence rule");
    }
    if week_nos.is_some() && freq != Freq::Yearly {
        return forbid("BYWEEKNO MUST NOT be used unless FREQ=YEARLY");
    }
    if year_days.is_some() && matches!(freq, Freq::Daily | Freq::Weekly | Freq::Monthly) {
        return forbid("BYYEARDAY MUST NOT be used when FREQ is DAILY, WEEKLY, or MONTHLY");
    }
    if month_days.is_some() && freq == Freq::Weekly {
        return forbid("BYMONTHDAY MUST NOT be used when FREQ is WEEKLY");
    }
    let ordinals = by_day.iter().any(|(t, _)| {
        t.trim_start_matches(['+', '-'])
            .starts_with(|c: char| c.is_ascii_digit())
    });
    if ordinals && !matches!(freq, Freq::Monthly | Freq::Yearly) {
        return forbid(
            "BYDAY with numeric value MUST NOT be used unless FREQ is MONTHLY or YEARLY",
        );
    }
    if ordinals && freq == Freq::Yearly && week_nos.is_some() {
        return forbid(
            "BYDAY with numeric value MUST NOT be used with FREQ=YEARLY when BYWEEKNO is present",
        );
    }
    let other_by = !by_day.is_empty()
        || month_count.is_some()
        || month_days.is_some()
        || year_days.is_some()
        || week_nos.is_some()
        || hours.is_some()
        || minutes.is_some()
        || seconds.is_some();
    if set_pos.is_some() && !other_by {
        return forbid("BYSETPOS MUST be used with another BYxxx rule part");
    }

    let unreadable = if let Some(scale) = &rscale {
        Some(format!("RSCALE={scale}"))
    } else if !leap_months.is_empty() {
        Some(format!("BYMONTH={}", leap_months.join(",")))
    } else if week_nos.is_some() && by_day.is_empty() {
        Some("BYWEEKNO without BYDAY".to_string())
    } else {
        None
    };

    let list_len = |v: &Option<Vec<i64>>| v.as_ref().map(|v| Some(v.len()));
    let by_day_kept = (!by_day.is_empty()).then_some(Some(by_day.len()));
    let kept = vec![
        ("FREQ", Some(None)),
        ("UNTIL", until_ms.map(|_| None)),
        ("COUNT", count.map(|_| None)),
        ("INTERVAL", Some(None)),
        ("BYSECOND", list_len(&seconds)),
        ("BYMINUTE", list_len(&minutes)),
        ("BYHOUR", list_len(&hours)),
        ("BYDAY", by_day_kept),
        ("BYMONTHDAY", list_len(&month_days)),
        ("BYYEARDAY", list_len(&year_days)),
        ("BYWEEKNO", list_len(&week_nos)),
        ("BYMONTH", month_count.map(Some)),
        ("BYSETPOS", list_len(&set_pos)),
        ("WKST", wkst_text.as_ref().map(|_| None)),
        ("RSCALE", rscale.as_ref().map(|_| None)),
        ("SKIP", skip.as_ref().or(rscale.as_ref()).map(|_| None)),
    ];
    let unsigned = |v: Option<Vec<i64>>| v.map(|v| v.into_iter().map(|x| x as u32).collect());
    let signed = |v: Option<Vec<i64>>| v.map(|v| v.into_iter().map(|x| x as i32).collect());
    Ok(Rule {
        zone,
        start_ms,
        freq,
        interval: interval_value,
        count,
        until_ms,
        by_second: unsigned(seconds),
        by_minute: unsigned(minutes),
        by_hour: unsigned(hours),
        by_day: (!by_day.is_empty()).then(|| by_day.into_iter().map(|(_, d)| d).collect()),
        by_month_day: signed(month_days),
        by_year_day: signed(year_days),
        by_week_no: signed(week_nos),
        by_month: by_month
            .filter(|m| !m.is_empty())
            .map(|m| m.into_iter().map(|x| x as u32).collect()),
        by_set_pos: signed(set_pos.map(|v| {
            v.into_iter()
                .map(|x| x.clamp(i32::MIN as i64, i32::MAX as i64))
                .collect()
        })),
        wkst,
        rdates,
        exdates,
        unreadable,
        kept,
    })
}

/// pg-boss's check that every part's values survived the reading: a value out of range is
/// dropped rather than refused by the rule engine, so a part with fewer values than given (or
/// none) is refused here.
pub fn check_kept(rule_text: &str, rule: &Rule) -> Result<(), RuleError> {
    for part in rule_text.split(';') {
        let mut pieces = part.split('=');
        let name = pieces.next().unwrap_or_default().to_uppercase();
        let value = pieces.next().unwrap_or_default();
        if !PARTS.contains(&name.as_str()) {
            continue;
        }
        let kept = rule
            .kept
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, k)| *k);
        let message =
            || RuleError::assertion(format!("Unsupported value in rrule part \"{part}\""));
        match kept {
            None => return Err(message()),
            Some(Some(n)) => {
                let mut distinct: Vec<String> = Vec::new();
                for v in value.to_uppercase().split(',') {
                    if !distinct.iter().any(|d| d == v) {
                        distinct.push(v.to_string());
                    }
                }
                if n != distinct.len() {
                    return Err(message());
                }
            }
            Some(None) => {}
        }
    }
    Ok(())
}
