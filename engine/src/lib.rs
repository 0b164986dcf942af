//! pg-boss-native's engine: a [pg-boss](https://github.com/timgit/pg-boss) 12.38 compatible job
//! queue on PostgreSQL, as a plain Rust library. It runs on pg-boss's own schema (version 46), so a
//! Rust service and Node apps using pg-boss (or pg-boss-native, whose Node addon wraps this crate)
//! share queues on one database: a job sent on either side is worked on either side.
//!
//! [`Boss`] is one pg-boss instance (`new PgBoss(options)`): build a [`BossConfig`], call
//! [`Boss::start`], use pg-boss's calls as methods ([`Boss::send`], [`Boss::work`],
//! [`Boss::fetch`], [`Boss::complete`], [`Boss::create_queue`], [`Boss::schedule`], ...), and
//! [`Boss::stop`] at the end. What the calls take is typed ([`model`]): each field names its
//! pg-boss option and default, and each request also has a `from_json`/`from_options`
//! constructor that reads pg-boss's options object with pg-boss's checks and messages. Calls whose
//! answer is a document (jobs, queues, schedules, stats) answer pg-boss's JSON, as text.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use pg_boss_engine::event::NoEvents;
//! use pg_boss_engine::model::job::JobOptions;
//! use pg_boss_engine::model::queue::CreateQueue;
//! use pg_boss_engine::model::send::SendOptions;
//! use pg_boss_engine::model::work::WorkOptions;
//! use pg_boss_engine::{Boss, BossConfig, HandlerFuture, HandlerOutcome, JobHandler, StopOptions};
//! use serde_json::{json, Value};
//!
//! /// Works each batch of `email` jobs: `jobs_json` is pg-boss's array of jobs.
//! struct SendEmail;
//!
//! impl JobHandler for SendEmail {
//!     fn handle(&self, jobs_json: String) -> HandlerFuture {
//!         Box::pin(async move {
//!             let jobs: Vec<Value> = match serde_json::from_str(&jobs_json) {
//!                 Ok(jobs) => jobs,
//!                 Err(e) => {
//!                     // Stored as the jobs' output; they are retried while retries are left.
//!                     let error = json!({ "message": e.to_string() });
//!                     return HandlerOutcome::Failed(error.to_string());
//!                 }
//!             };
//!             for job in &jobs {
//!                 println!("emailing {}", job["data"]["to"]);
//!             }
//!             HandlerOutcome::Completed(None)
//!         })
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> pg_boss_engine::Result<()> {
//!     let config = BossConfig::new("postgres://postgres@localhost/app", "pgboss")?;
//!     let boss = Boss::new(config, Arc::new(NoEvents))?;
//!     boss.start().await?; // installs pg-boss's schema if it is not there
//!
//!     boss.create_queue(&CreateQueue::with_defaults("email")?).await?;
//!     let options = SendOptions {
//!         job: JobOptions { retry_limit: Some(5), ..JobOptions::default() },
//!         ..SendOptions::default()
//!     };
//!     let id = boss.send("email", json!({ "to": "ada@example.com" }), options, None).await?;
//!     println!("sent {id:?}");
//!
//!     let work = WorkOptions { batch_size: 10, ..WorkOptions::default() };
//!     boss.work("email", work, Arc::new(SendEmail))?;
//!
//!     tokio::time::sleep(std::time::Duration::from_secs(10)).await;
//!     boss.stop(StopOptions::default()).await?; // lets running handlers finish
//!     Ok(())
//! }
//! ```
//!
//! engine/examples/rust_service.rs is a complete service along these lines.
//!
//! # Where things are
//!
//! - [`boss`]: the instance, and what its calls answer.
//! - [`config`]: the constructor options.
//! - [`model`]: the typed requests and answers of the calls.
//! - [`worker`]: what `work()` calls with each batch: [`JobHandler`] and its answer.
//! - [`event`]: what happens in the background (pg-boss's `error`, `warning`, `bam`, `flow`
//!   events), reported to an [`EventSink`](event::EventSink).
//! - [`error`]: the one [`Error`] type, with stable [`ErrorCode`]s.
//! - [`CallerDb`]: pg-boss's `db` option, to run a call inside the caller's own transaction.
//! - [`Signals`]: how many passes a background service has made, for tests to wait on.
//!
//! The other modules (`ops`, `sql`, `service`, `schema`, `schedule`) are the engine's internal
//! layers: public only for the crate's own integration tests and the Node binding, hidden from
//! these docs, and free to change.

#![deny(missing_docs)]

pub mod admin;
pub mod boss;
pub mod clock;
pub mod config;
pub mod error;
pub mod event;
pub mod future;
pub mod model;
pub mod worker;

// The internal layers: public only so the crate's own integration tests (engine/tests) and the
// Node binding can reach them; not part of the API.
#[doc(hidden)]
pub mod ops;
#[doc(hidden)]
pub mod schedule;
#[doc(hidden)]
pub mod schema;
#[doc(hidden)]
pub mod service;
#[doc(hidden)]
pub mod sql;

pub use boss::{Boss, StopOptions};
pub use config::BossConfig;
pub use error::{Error, ErrorCode, Result};
pub use model::settle::JobResultStatus;
pub use worker::{HandlerFuture, HandlerOutcome, JobHandler, JobResult};

pub use future::BoxFuture;
pub use service::Signals;
pub use sql::exec::{CallerDb, CallerFailure, CallerFuture};
