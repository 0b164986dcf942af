//! The background-migration ("BAM") runner: works through the deferred DDL commands pg-boss's
//! migrations leave in `<schema>.bam` (mostly `CREATE INDEX CONCURRENTLY` builds, which cannot
//! run inside a migration's transaction). How it coordinates with other instances, pg-boss's
//! included, is in `ops::bam`.
//!
//! A command that was already tried once is re-attempted safely: for a concurrent index build the
//! catalog is consulted first, a valid index only needs its row marked, an invalid leftover is
//! dropped before the build runs again (execute.rs).
//!
//! As a service ([`BamService`]) it polls every `bamIntervalSeconds`. A stop drains it as soon as
//! the instance's stop begins (the command in hand finishes, no other is claimed) and gives that
//! command until the stop's timeout; then a concurrent index build is let go, which the server
//! completes, and any other command is cancelled.

mod command;
mod execute;

use crate::config::BamSettings;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Service, Stop};
use crate::error::{Error, Result};
use crate::event::{Event, EventSink};
use crate::future::BoxFuture;
use crate::ops::bam::{self, stored_error_text, ClaimedCommand};
use crate::sql::Db;
use execute::Failure;

/// After a cancel, the longest stop() waits for the runner before abandoning it (a backstop for a
/// database that no longer answers; the row then recovers as abandoned).
const CANCEL_BACKSTOP: Duration = Duration::from_secs(10);

/// A poll may run index builds for hours; the runner never abandons one (the stop ends it).
const NO_POLL_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Where the runner stands in a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    /// Finish the command in hand, claim no more.
    Draining,
    /// stop()'s deadline has passed: end the running statement, start no other.
    Cancelling,
}

/// How a claimed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BamStatus {
    Completed,
    Failed,
    /// stop() let go of a concurrent index statement that the server keeps running to its end;
    /// the row stays `in_progress` until a later claim finds it abandoned and checks the index.
    Abandoned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BamOutcome {
    pub id: Uuid,
    pub name: String,
    pub queue: Option<String>,
    pub table: String,
    pub status: BamStatus,
    /// The text stored in the row's `error` column, for a failed command.
    pub error: Option<String>,
}

/// The payload of a `bam` event about `claim`.
fn event(claim: &ClaimedCommand, status: &str, error: Option<&str>) -> Event {
    let mut payload = json!({
        "id": claim.id,
        "name": claim.name,
        "status": status,
        "queue": claim.queue,
        "table": claim.table,
    });
    if let Some(error) = error {
        payload["error"] = Value::String(error.to_string());
    }
    Event::Bam(payload)
}

fn outcome(claim: &ClaimedCommand, status: BamStatus, error: Option<String>) -> BamOutcome {
    BamOutcome {
        id: claim.id,
        name: claim.name.clone(),
        queue: claim.queue.clone(),
        table: claim.table.clone(),
        status,
        error,
    }
}

/// The state shared by a runner and whoever stops it.
struct Control {
    phase: watch::Sender<Phase>,
    working: AtomicBool,
}

/// Runs the commands of one schema, one poll at a time ([`BamRunner::run_once`]).
pub struct BamRunner {
    db: Db,
    settings: BamSettings,
    events: Arc<dyn EventSink>,
    control: Control,
}

impl BamRunner {
    pub fn new(db: Db, settings: BamSettings, events: Arc<dyn EventSink>) -> BamRunner {
        BamRunner {
            db,
            settings,
            events,
            control: Control {
                phase: watch::Sender::new(Phase::Running),
                working: AtomicBool::new(false),
            },
        }
    }

    /// Whether a poll is under way (pg-boss's `isBamWorking()`).
    pub fn is_working(&self) -> bool {
        self.control.working.load(Ordering::SeqCst)
    }

    fn phase(&self) -> Phase {
        *self.control.phase.borrow()
    }

    fn report_error(&self, err: &Error) {
        self.events.error(err);
    }

    /// Lets the command in hand finish and claims no more.
    pub fn drain(&self) {
        self.control.phase.send_if_modified(|p| {
            let changed = *p == Phase::Running;
            if changed {
                *p = Phase::Draining;
            }
            changed
        });
    }

    /// One poll: when this instance wins the interval's stamp, runs commands back to back until
    /// none is left (or a stop begins), so a migration's builds follow each other without waiting
    /// an interval apiece. Answers what ran.
    pub async fn run_once(&self) -> Result<Vec<BamOutcome>> {
        self.control.working.store(true, Ordering::SeqCst);
        let result = self.poll().await;
        self.control.working.store(false, Ordering::SeqCst);
        result
    }

    async fn poll(&self) -> Result<Vec<BamOutcome>> {
        let mut outcomes = Vec::new();
        if !bam::try_stamp(&self.db, self.settings.interval).await? {
            return Ok(outcomes);
        }
        let mut pending_only = false;
        while self.phase() == Phase::Running {
            match self.run_next(pending_only).await? {
                Some(outcome) => outcomes.push(outcome),
                None => break,
            }
            pending_only = true;
        }
        Ok(outcomes)
    }

    /// Claims and runs one command, marking its row and emitting its `bam` events.
    pub async fn run_next(&self, pending_only: bool) -> Result<Option<BamOutcome>> {
        let Some(claim) = bam::claim_next(&self.db, pending_only).await? else {
            return Ok(None);
        };
        if self.phase() != Phase::Running {
            // The stop began while the claim was in flight: nothing has run, so give the row back
            // rather than leave it blocking every command until it counts as abandoned.
            if let Err(err) = bam::release(&self.db, &claim).await {
                self.report_error(&err);
            }
            return Ok(None);
        }
        self.events.emit(event(&claim, "in_progress", None));
        let result = match self.execute(&claim).await {
            Ok(()) => bam::mark_completed(&self.db, claim.id)
                .await
                .map_err(Failure::from),
            Err(failure) => Err(failure),
        };
        Ok(Some(self.settle(&claim, result).await))
    }

    /// Records how a command ended, on its row and as events.
    async fn settle(&self, claim: &ClaimedCommand, result: Result<(), Failure>) -> BamOutcome {
        match result {
            Ok(()) => {
                self.events.emit(event(claim, "completed", None));
                outcome(claim, BamStatus::Completed, None)
            }
            Err(Failure::Abandoned) => outcome(claim, BamStatus::Abandoned, None),
            Err(Failure::Failed { error, stopped }) => {
                let text = stored_error_text(&error);
                if let Err(mark_err) = bam::mark_failed(&self.db, claim.id, &text).await {
                    // The row stays in_progress and recovers as abandoned; the command's own
                    // failure is still the one reported below.
                    self.report_error(&mark_err);
                }
                if !stopped {
                    self.report_error(&error);
                }
                self.events.emit(event(claim, "failed", Some(&text)));
                outcome(claim, BamStatus::Failed, Some(text))
            }
        }
    }
}

/// The runner as an instance's background service. Each poll runs on a task of its own, so the
/// service's stop, which drops a pass still running at the deadline, never cuts a command off
/// halfway: [`Service::stopped`] ends it instead, recording how it ended.
pub struct BamService {
    runner: Arc<BamRunner>,
    poll: tokio::sync::Mutex<Option<JoinHandle<Result<Vec<BamOutcome>>>>>,
}

impl BamService {
    pub fn new(runner: BamRunner) -> BamService {
        BamService {
            runner: Arc::new(runner),
            poll: tokio::sync::Mutex::new(None),
        }
    }

    pub fn is_working(&self) -> bool {
        self.runner.is_working()
    }

    /// Begins the stop: the command in hand finishes, no other is claimed.
    pub fn drain(&self) {
        self.runner.drain();
    }

    async fn pass(&self) -> Result<Option<Duration>> {
        if self.runner.phase() != Phase::Running {
            return Ok(None);
        }
        let mut poll = self.poll.lock().await;
        let runner = self.runner.clone();
        let running = poll.insert(tokio::spawn(async move { runner.run_once().await }));
        let result = running.await;
        *poll = None;
        match result {
            Ok(polled) => polled.map(|_| None),
            Err(err) => Err(Error::internal(format!("background migration poll: {err}"))),
        }
    }

    /// Waits for the command in hand until `deadline`, then ends it, and waits for the poll, so
    /// its row is recorded before the pool closes.
    async fn finish(&self, deadline: Instant) {
        self.runner.drain();
        let mut poll = self.poll.lock().await;
        let Some(running) = poll.as_mut() else {
            return;
        };
        if tokio::time::timeout_at(deadline, &mut *running)
            .await
            .is_ok()
        {
            return;
        }
        self.runner.control.phase.send_replace(Phase::Cancelling);
        if tokio::time::timeout(CANCEL_BACKSTOP, &mut *running)
            .await
            .is_err()
        {
            running.abort();
            let _ = running.await;
        }
    }
}

impl Service for BamService {
    fn name(&self) -> &'static str {
        "bam"
    }

    /// Measured from the end of a poll, so two stamps are never closer than the interval.
    fn interval(&self) -> Duration {
        self.runner.settings.interval
    }

    fn timeout(&self) -> Duration {
        NO_POLL_TIMEOUT
    }

    fn run_once<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(self.pass())
    }

    fn stopped(&self, deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(self.finish(deadline))
    }
}
