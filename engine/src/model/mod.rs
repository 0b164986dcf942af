//! What callers ask for, typed: options and requests parsed and validated once, here.

pub mod fetch;
pub mod flow;
pub mod instance;
pub mod job_settings;
pub mod names;
pub mod queue;
pub mod redrive;
pub mod schedule;
pub mod send;
pub mod stats;
pub mod work;
