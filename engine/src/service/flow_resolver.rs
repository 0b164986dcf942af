//! Flow resolution passes: the background ones every `flowIntervalSeconds` (only with `supervise`
//! on, as in pg-boss) and the on-demand one of `resolveFlow()` (whatever `supervise` says).
//!
//! A background pass runs on whichever instance wins the `flow_on` stamp of the version row, as
//! pg-boss's do, and the next one is due an interval after the stamp was taken (pg-boss's anchor):
//! the next stamp then lands an interval after this one plus a round trip, never before the
//! interval is up. `resolveFlow()` runs a pass now, whatever the stamp says. One pass at a time per
//! instance: an on-demand pass waits for one in flight, and a background pass due while another
//! runs is skipped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::{Service, Stop};
use crate::config::FlowSettings;
use crate::error::{Error, Result};
use crate::event::{Event, EventSink};
use crate::future::BoxFuture;
use crate::ops::flows::{self, Resolved};
use crate::sql::flows::RESOLVE_BATCH;
use crate::sql::Db;

/// Batches per queue chunk in one pass, so a large backlog cannot hold a pass forever; what is
/// left is picked up by the next pass.
const MAX_BATCHES_PER_PASS: usize = 100;
/// Queues per resolution statement.
const CHUNK: usize = 100;

/// Sets a flag for as long as it lives, so an early return or an error cannot leave it set.
struct Raised<'a>(&'a AtomicBool);

impl<'a> Raised<'a> {
    fn new(flag: &'a AtomicBool) -> Raised<'a> {
        flag.store(true, Ordering::SeqCst);
        Raised(flag)
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// An instance's flow resolver: what its passes share, background or on demand.
pub struct FlowResolver {
    settings: FlowSettings,
    events: Arc<dyn EventSink>,
    pass: tokio::sync::Mutex<()>,
    working: AtomicBool,
    stopping: AtomicBool,
}

impl FlowResolver {
    pub fn new(settings: FlowSettings, events: Arc<dyn EventSink>) -> FlowResolver {
        FlowResolver {
            settings,
            events,
            pass: tokio::sync::Mutex::new(()),
            working: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        }
    }

    /// `isResolvingFlow()`: whether a pass (its stamp included) is under way.
    pub fn is_working(&self) -> bool {
        self.working.load(Ordering::SeqCst)
    }

    /// Lets passes run again after a stop (the instance started again).
    pub fn arm(&self) {
        self.stopping.store(false, Ordering::SeqCst);
    }

    /// Ends an on-demand pass in flight at its next batch and waits for it; passes asked for from
    /// here on do nothing. (Background passes stop with their service.)
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _idle = self.pass.lock().await;
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// `resolveFlow()`: one pass now, without the stamp, after any pass in flight.
    pub async fn resolve_now(&self, db: &Db) -> Result<Vec<Resolved>> {
        let _pass = self.pass.lock().await;
        if self.stopping() {
            return Ok(Vec::new());
        }
        let _working = Raised::new(&self.working);
        self.resolve(db, None).await
    }

    /// One background pass, unless another pass is running: the stamp, and a resolution when it
    /// is won. Answers when the stamp was taken, if it was.
    async fn background_pass(&self, db: &Db, stop: &Stop) -> Result<Option<Instant>> {
        if self.stopping() {
            return Ok(None);
        }
        let Ok(_pass) = self.pass.try_lock() else {
            return Ok(None);
        };
        let _working = Raised::new(&self.working);
        if let Some(message) = &self.settings.fail_with {
            return Err(Error::internal(message.clone()));
        }
        if let Some(delay) = self.settings.delay {
            tokio::select! {
                _ = stop.raised() => return Ok(None),
                _ = tokio::time::sleep(delay) => {}
            }
        }
        let won = flows::try_stamp(db, self.settings.interval).await?;
        let anchor = Instant::now();
        if won {
            self.resolve(db, Some(stop)).await?;
        }
        Ok(Some(anchor))
    }

    /// Every queue's completed parents, a job table and a hundred queues per statement, until a
    /// batch comes back short (or the pass's batch budget is spent); it ends at the next batch
    /// once the instance stops. Each batch that resolved something is a `flow` event.
    async fn resolve(&self, db: &Db, stop: Option<&Stop>) -> Result<Vec<Resolved>> {
        let halted = || self.stopping() || stop.is_some_and(Stop::is_raised);
        let mut done = Vec::new();
        for (table, names) in flows::queue_tables(db).await? {
            for chunk in names.chunks(CHUNK) {
                for _ in 0..MAX_BATCHES_PER_PASS {
                    if halted() {
                        return Ok(done);
                    }
                    let resolved = flows::resolve_batch(db, &table, chunk).await?;
                    if resolved > 0 {
                        self.report(&table, resolved);
                        done.push(Resolved {
                            table: table.clone(),
                            resolved,
                        });
                    }
                    if resolved < RESOLVE_BATCH {
                        break;
                    }
                }
            }
        }
        Ok(done)
    }

    fn report(&self, table: &str, resolved: i64) {
        let payload = json!({ "table": table, "resolved": resolved });
        self.events.emit(Event::Flow(payload));
    }
}

/// The background passes, as a service of the instance (started only with `supervise` on).
pub struct FlowPasses {
    pub resolver: Arc<FlowResolver>,
    pub db: Db,
}

impl Service for FlowPasses {
    fn name(&self) -> &'static str {
        "flow-resolver"
    }

    fn interval(&self) -> Duration {
        self.resolver.settings.interval
    }

    /// A pass resolves in bounded batches; one that runs this long is stuck.
    fn timeout(&self) -> Duration {
        Duration::from_secs(15 * 60).max(self.interval())
    }

    /// A pass that took the stamp answers the wait until an interval after it.
    fn run_once<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move {
            let anchor = self.resolver.background_pass(&self.db, stop).await?;
            Ok(anchor.map(|stamped| {
                (stamped + self.interval()).saturating_duration_since(Instant::now())
            }))
        })
    }
}
