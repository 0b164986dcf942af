//! pg-boss-native's engine: a pg-boss 12.38 (schema 46) compatible job queue on PostgreSQL.
//! A plain Rust library: nothing here knows about Node.js. The Node addon (the workspace's root
//! crate) wraps it; Rust services can use it directly on the same database.

pub mod bam;
pub mod boss;
pub mod claim;
pub mod coalesce;
pub mod commands;
pub mod config;
pub mod counting;
pub mod cron;
pub mod db;
pub mod drift;
pub mod error;
pub mod events;
pub mod flows;
pub mod groups;
pub mod jobs;
pub mod listener;
pub mod migrate;
pub mod options;
pub mod overrun;
pub mod pubsub;
pub mod queues;
pub mod redrive;
pub mod registry;
pub mod schema;
pub mod spies;
pub mod stats;
pub mod supervisor;
pub mod timekeeper;
pub mod updates;
pub mod via;
pub mod warnings;
pub mod worker;

pub use boss::{Boss, StopOptions};
pub use config::BossConfig;
pub use error::{Error, ErrorCode, Result};
pub use jobs::JobResultStatus;
pub use worker::{HandlerFuture, HandlerOutcome, JobHandler, JobResult};

/// A boxed, sendable future: used where sqlx's executor lifetimes would otherwise leak into
/// callers' `Send` bounds.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
