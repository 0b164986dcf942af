//! An expression read into a [`CronExpression`], as cron-parser reads it with `strict: false`.

use super::aliases::predefined;
use super::civil::DAYS_IN_MONTH;
use super::field_kind::{FieldKind, Value};
use super::fields::{checked, numbers, parse_field};
use super::lists::{js_plus, parse_int_prefix};
use super::{fail, Parsed};

const MAX_EXPRESSION_LENGTH: usize = 1024;

/// A parsed expression: what matches in each field.
#[derive(Debug, Clone)]
pub struct CronExpression {
    pub(super) seconds: Vec<i64>,
    pub(super) minutes: Vec<i64>,
    pub(super) hours: Vec<i64>,
    pub(super) days_of_month: Vec<i64>,
    pub(super) last_day_of_month: bool,
    pub(super) day_of_month_wildcard: bool,
    pub(super) months: Vec<i64>,
    pub(super) weekdays: Vec<i64>,
    /// The weekday digits of the values, for an `nL` (last such weekday of the month) match.
    pub(super) last_weekdays: Option<Vec<i64>>,
    /// `n#k`: only the k-th such weekday of the month (0: no such constraint).
    pub(super) nth_weekday: i64,
    pub(super) day_of_week_wildcard: bool,
}

impl CronExpression {
    /// Parses `expression` as cron-parser does with `strict: false`.
    pub fn parse(expression: &str) -> Parsed<CronExpression> {
        let [second, minute, hour, day_of_month, month, day_of_week] = split_fields(expression)?;

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
        let dom_values = days_the_month_can_have(dom_values, &month_values);
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
            check_explicit_day(&months, &dom_values)?;
        }
        let last_weekdays = day_of_week
            .contains('L')
            .then(|| last_weekday_digits(&dow_values));
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
}

/// The six fields of an expression: an alias expanded, an empty expression read as every minute,
/// and missing leading fields taken from `0 * * * * *`.
fn split_fields(expression: &str) -> Parsed<[&str; 6]> {
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
    Ok([
        fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
    ])
}

/// With a single month, days it cannot have are dropped (unless that leaves none).
fn days_the_month_can_have(dom_values: Vec<Value>, month_values: &[Value]) -> Vec<Value> {
    match numbers(month_values).as_slice() {
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
    }
}

/// A day of the month no chosen month has (`31 2`) is refused when the weekday leaves it alone.
fn check_explicit_day(months: &[i64], dom_values: &[Value]) -> Parsed<()> {
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
    Ok(())
}

/// The weekday digits of the values, for an `nL` (last such weekday of the month) match.
fn last_weekday_digits(dow_values: &[Value]) -> Vec<i64> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
