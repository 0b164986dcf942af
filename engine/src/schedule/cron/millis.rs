//! Milliseconds per unit of time, as the cron walk counts them.

pub(super) const MS_SECOND: i64 = 1000;
pub(super) const MS_MINUTE: i64 = 60 * MS_SECOND;
pub(super) const MS_HOUR: i64 = 60 * MS_MINUTE;
pub(super) const MS_DAY: i64 = 24 * MS_HOUR;
