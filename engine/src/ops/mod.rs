//! Operations: one module per concern, each a set of statements run in order.

pub mod bam;
pub mod clock;
pub mod coalesce;
pub mod commands;
pub mod completer;
pub mod counts;
pub mod fetch;
pub mod flows;
pub mod insert;
pub mod instances;
pub mod maintenance;
pub mod occurrences;
pub mod pubsub;
pub mod queues;
pub mod read;
pub mod redrive;
pub mod schedules;
pub mod send;
pub mod settle;
pub mod stats;
pub mod updates;
pub mod upkeep;
pub mod vacuum;
pub mod warnings;
