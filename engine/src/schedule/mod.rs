//! Reading schedules: when a cron expression or a recurrence rule next fires.

pub mod cron;
pub mod rrule;
