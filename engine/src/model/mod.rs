//! What callers ask for, typed: options and requests parsed and validated once, here.

pub mod fetch;
pub mod instance;
pub mod job_settings;
pub mod names;
pub mod queue;
pub mod send;
pub mod work;
