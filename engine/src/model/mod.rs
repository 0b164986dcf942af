//! What callers ask for, typed: options and requests parsed and validated once, here.

pub mod fetch;
pub mod find;
pub mod flow;
pub mod group;
pub mod insert;
pub mod instance;
pub mod job;
#[doc(hidden)]
pub mod job_settings;
pub mod migration;
pub mod names;
pub mod queue;
pub mod redrive;
pub mod schedule;
pub mod send;
pub mod settle;
pub mod stats;
pub mod targets;
#[doc(hidden)]
pub mod unchecked;
pub mod update;
pub mod upkeep;
pub mod work;
