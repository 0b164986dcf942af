//! What a cron field is: its kind (second, minute, … day of week), the bounds of each kind, and the
//! values a parsed field holds.

use crate::config::js::number_to_string as js_number;

use super::{fail, Parsed};

const MAX_FIELD_VALUES: usize = 256;

/// A value of a parsed field: a number, or a token with `L` kept as written (`L`, `5L`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Num(f64),
    Token(String),
}

impl Value {
    pub(super) fn show(&self) -> String {
        match self {
            Value::Num(n) => js_number(*n),
            Value::Token(t) => t.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldKind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl FieldKind {
    pub(super) fn bounds(self) -> (f64, f64) {
        match self {
            FieldKind::Second | FieldKind::Minute => (0.0, 59.0),
            FieldKind::Hour => (0.0, 23.0),
            FieldKind::DayOfMonth => (1.0, 31.0),
            FieldKind::Month => (1.0, 12.0),
            FieldKind::DayOfWeek => (0.0, 7.0),
        }
    }

    /// How cron-parser names the field in "too many values" errors.
    pub(super) fn unit(self) -> &'static str {
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
    pub(super) fn field_name(self) -> &'static str {
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
    pub(super) fn class_name(self) -> &'static str {
        match self {
            FieldKind::Second => "CronSecond",
            FieldKind::Minute => "CronMinute",
            FieldKind::Hour => "CronHour",
            FieldKind::DayOfMonth => "CronDayOfMonth",
            FieldKind::Month => "CronMonth",
            FieldKind::DayOfWeek => "CronDayOfWeek",
        }
    }

    pub(super) fn allows_last(self) -> bool {
        matches!(self, FieldKind::DayOfMonth | FieldKind::DayOfWeek)
    }
}

pub(super) fn check_field_size(kind: FieldKind, count: usize) -> Parsed<()> {
    if count > MAX_FIELD_VALUES {
        return fail(format!(
            "Constraint error, too many values in {} field, expected at most {MAX_FIELD_VALUES}",
            kind.unit()
        ));
    }
    Ok(())
}
