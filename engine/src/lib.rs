//! pg-boss-native's engine: a pg-boss 12.38 (schema 46) compatible job queue on PostgreSQL.
//! A plain Rust library: nothing here knows about Node.js. The Node addon (the workspace's root
//! crate) wraps it; Rust services can use it directly on the same database.

pub mod boss;
pub mod config;
pub mod error;
pub mod event;
pub mod future;
pub mod model;
pub mod ops;
pub mod schedule;
pub mod schema;
pub mod service;
pub mod sql;
pub mod worker;

pub use boss::{Boss, StopOptions};
pub use config::BossConfig;
pub use error::{Error, ErrorCode, Result};
pub use model::settle::JobResultStatus;
pub use worker::{HandlerFuture, HandlerOutcome, JobHandler, JobResult};

pub use future::BoxFuture;
