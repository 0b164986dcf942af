//! Reading schedules: when a cron expression next fires.

pub mod cron;
