//! The registry heartbeat: keeps this instance's row in the `instance` table (see registry.rs for
//! what it says) current.
//!
//! The row is written at `start()` ([`InstanceHeartbeat::register`]), refreshed every
//! `instanceHeartbeatSeconds` whether or not the instance supervises (an instance that only works
//! jobs is the one an operator loses track of), and marked stopped when the service stops, which
//! the instance does last, so a graceful stop reads as live until its workers are done. A crashed
//! process never marks its row; it goes quiet, and the next life on the same name and host counts
//! it as a crash restart once it is quiet for good, which is why a pass may also be a recount.
//! Nothing on the job path waits for any of this: a failed write is an `error` event and the next
//! beat retries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::registry::Registrant;
use super::{Service, Stop};
use crate::error::{Error, Result};
use crate::event::EventSink;
use crate::future::BoxFuture;
use crate::ops::instances;

/// A crash recount never comes sooner than this, so rows on the edge of quiet are not re-read in a
/// tight loop.
const MIN_RECOUNT: Duration = Duration::from_secs(1);

/// The longest one pass may take beyond a beat's interval: a registration, a recount and a
/// sample from the host runtime, on a database that is slow to answer.
const PASS_PATIENCE: Duration = Duration::from_secs(60);

pub struct InstanceHeartbeat {
    registrant: Registrant,
    events: Arc<dyn EventSink>,
    state: Mutex<BeatState>,
}

/// What the heartbeat remembers between passes.
#[derive(Clone, Copy)]
struct BeatState {
    /// The `started_on` the row was registered with; `None` until a registration succeeded.
    started_on: Option<DateTime<Utc>>,
    next_beat: Instant,
    /// When rows that could not be judged at the last crash count go quiet, to count again then.
    recount_at: Option<Instant>,
}

impl InstanceHeartbeat {
    pub fn new(registrant: Registrant, events: Arc<dyn EventSink>) -> InstanceHeartbeat {
        let next_beat = Instant::now() + registrant.heartbeat();
        InstanceHeartbeat {
            registrant,
            events,
            state: Mutex::new(BeatState {
                started_on: None,
                next_beat,
                recount_at: None,
            }),
        }
    }

    fn report(&self, err: &Error) {
        self.events.error(err);
    }

    /// Registers the row, counts the crash restarts before it and prunes its name's dead rows. A
    /// failure is reported, not returned: the next beat registers again.
    pub async fn register(&self) {
        let r = &self.registrant;
        let row = r.row(true).await;
        match instances::register(&r.db, &row).await {
            Ok(started_on) => {
                self.state.lock().unwrap().started_on = Some(started_on);
                self.count_crashes().await;
                if let Err(err) = instances::prune_lives(&r.db, &r.lineage()).await {
                    self.report(&err);
                }
            }
            Err(err) => self.report(&err),
        }
    }

    async fn count_crashes(&self) {
        let r = &self.registrant;
        let recount_at = match instances::count_crash_restarts(&r.db, &r.lineage()).await {
            Ok(None) => None,
            Ok(Some(seconds)) => {
                let wait = Duration::from_secs_f64(seconds.max(0.0)) + Duration::from_secs(1);
                Some(Instant::now() + wait.max(MIN_RECOUNT))
            }
            Err(err) => {
                self.report(&err);
                None
            }
        };
        self.state.lock().unwrap().recount_at = recount_at;
    }

    async fn beat(&self) {
        let started_on = self.state.lock().unwrap().started_on;
        match started_on {
            // A registration that failed is retried rather than upserted around: its crash count
            // and pruning have not happened yet either.
            None => self.register().await,
            Some(started_on) => {
                let row = self.registrant.row(false).await;
                if let Err(err) = instances::beat(&self.registrant.db, &row, started_on).await {
                    self.report(&err);
                }
            }
        }
    }

    /// Whichever of the beat and the recount is due, and when the next one is.
    async fn pass(&self) -> Duration {
        let now = Instant::now();
        let due = *self.state.lock().unwrap();
        if due.recount_at.is_some_and(|at| at <= now) {
            self.count_crashes().await;
        }
        if due.next_beat <= now {
            self.beat().await;
            let every = self.registrant.heartbeat();
            let mut state = self.state.lock().unwrap();
            // A slow beat is not stacked on: beats missed while it ran are skipped.
            while state.next_beat <= Instant::now() {
                state.next_beat += every;
            }
        }
        self.next_due()
    }

    /// The time until the beat or the recount, whichever comes first.
    fn next_due(&self) -> Duration {
        let state = *self.state.lock().unwrap();
        let next = state
            .recount_at
            .map_or(state.next_beat, |at| at.min(state.next_beat));
        next.saturating_duration_since(Instant::now())
    }
}

impl Service for InstanceHeartbeat {
    fn name(&self) -> &'static str {
        "instance-heartbeat"
    }

    fn interval(&self) -> Duration {
        self.registrant.heartbeat()
    }

    /// The registration at start may have left a recount due before the first beat.
    fn first_pass(&self) -> Duration {
        self.next_due()
    }

    fn timeout(&self) -> Duration {
        self.registrant.heartbeat() + PASS_PATIENCE
    }

    fn run_once<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move { Ok(Some(self.pass().await)) })
    }

    /// Marks the row stopped. Best effort and quiet: a row that cannot be marked goes quiet after
    /// three missed beats, which is how a crash ends too.
    fn stopped(&self, _deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = instances::mark_stopped(&self.registrant.db, self.registrant.id).await;
        })
    }
}
