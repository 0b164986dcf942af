//! Background services: the tasks an instance runs beside its workers, all of one shape.
//!
//! A service says what one pass of its work is ([`Service::run_once`]); the runner here gives
//! every service the same life: started once, a pass, a wait until the next one is due (or a stop),
//! each pass under the service's timeout, failures reported as `error` events, and a stop that lets
//! a pass in flight finish until a deadline. [`Signals`] count finished passes and failures, so
//! tests wait for "the next pass is done" instead of sleeping.

pub mod bam;
pub mod busy;
pub mod clock;
pub mod cron;
pub mod flow_resolver;
pub mod heartbeat;
pub mod listener;
pub mod queue_cache;
pub mod registry;
pub mod reindex;
pub mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::clock::Clock;

use crate::error::{Error, Result};
use crate::event::EventSink;
use crate::future::BoxFuture;

/// One background service.
pub trait Service: Send + Sync + 'static {
    /// Its name: test signals and stop order are asked for by it.
    fn name(&self) -> &'static str;

    /// The usual time between two passes; also the wait after a failed pass.
    fn interval(&self) -> Duration;

    /// When the first pass runs, counted from start.
    fn first_pass(&self) -> Duration {
        Duration::ZERO
    }

    /// How long one pass may take; one that takes longer is abandoned and reported.
    fn timeout(&self) -> Duration;

    /// One pass of its work. `stop` is raised when the instance stops: a pass that waits on
    /// something (a notification, a delay) ends at once then; one that works in batches stops
    /// at its next batch. Answers when the next pass is due, if not after [`Service::interval`].
    fn run_once<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>>;

    /// Runs once the loop has ended, with the time left until the stop's deadline: for what must
    /// be finished or handed back (a background migration in flight).
    fn stopped(&self, _deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The stop signal a running service sees.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    pub fn is_raised(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop is raised.
    pub async fn raised(&self) {
        let mut receiver = self.0.clone();
        let _ = receiver.wait_for(|raised| *raised).await;
    }
}

/// What a service's loop has done so far: passes finished and passes failed. Tests wait on these
/// instead of sleeping ([`Boss::service_signals`](crate::Boss::service_signals)); the services are
/// `supervisor`, `reindex`, `queue-cache`, `flow-resolver`, `cron`, `clock-skew`, `listener`, `bam` and
/// `instance-heartbeat`, each while it runs.
#[derive(Clone)]
pub struct Signals {
    passes: watch::Receiver<u64>,
    failures: watch::Receiver<u64>,
}

impl Signals {
    /// How many passes have finished (failed ones included).
    pub fn passes(&self) -> u64 {
        *self.passes.borrow()
    }

    /// How many passes have failed.
    pub fn failures(&self) -> u64 {
        *self.failures.borrow()
    }

    /// Waits until at least `count` passes have finished, for at most `timeout`.
    pub async fn wait_for_passes(&self, count: u64, timeout: Duration) -> Result<()> {
        let mut passes = self.passes.clone();
        tokio::time::timeout(timeout, passes.wait_for(|done| *done >= count))
            .await
            .map_err(|_| Error::internal(format!("waited {timeout:?} for pass {count}")))?
            .map_err(|_| Error::internal("the service ended"))?;
        Ok(())
    }

    /// Waits for the pass after the ones finished now.
    pub async fn wait_for_next_pass(&self, timeout: Duration) -> Result<()> {
        self.wait_for_passes(self.passes() + 1, timeout).await
    }
}

/// A service running on its own task.
pub struct Running {
    name: &'static str,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    service: Arc<dyn Service>,
    signals: Signals,
}

impl Running {
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn signals(&self) -> Signals {
        self.signals.clone()
    }

    /// Raises the stop, waits for the pass in flight until `deadline` (dropping it then), and
    /// runs the service's own end, which is dropped at `until` (a database that stopped answering
    /// must not hold the stop).
    pub async fn stop(self, deadline: Instant, until: Instant) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        let _ = tokio::time::timeout_at(until.max(deadline), self.service.stopped(deadline)).await;
    }
}

/// Starts `service`'s loop on real time.
pub fn start(service: Arc<dyn Service>, events: Arc<dyn EventSink>) -> Running {
    start_on(&Clock::System, service, events)
}

/// Starts `service`'s loop, its passes due by `clock`'s time (a pass's timeout stays on real
/// time, so a test clock nobody moves cannot hold a stop).
pub fn start_on(clock: &Clock, service: Arc<dyn Service>, events: Arc<dyn EventSink>) -> Running {
    let clock = clock.clone();
    let (stop, stop_receiver) = watch::channel(false);
    let (passes, passes_receiver) = watch::channel(0u64);
    let (failures, failures_receiver) = watch::channel(0u64);
    let stop_signal = Stop(stop_receiver);
    let looped = service.clone();
    let task = tokio::spawn(async move {
        let mut wait = looped.first_pass();
        loop {
            tokio::select! {
                _ = stop_signal.raised() => return,
                _ = clock.sleep(wait) => {}
            }
            let outcome = tokio::time::timeout(looped.timeout(), looped.run_once(&stop_signal))
                .await
                .unwrap_or_else(|_| {
                    Err(Error::internal(format!(
                        "{} pass took longer than {:?} and was abandoned",
                        looped.name(),
                        looped.timeout()
                    )))
                });
            wait = match outcome {
                Ok(wait) => wait.unwrap_or_else(|| looped.interval()),
                Err(err) => {
                    failures.send_modify(|n| *n += 1);
                    events.error(&err);
                    looped.interval()
                }
            };
            passes.send_modify(|n| *n += 1);
            if stop_signal.is_raised() {
                return;
            }
        }
    });
    Running {
        name: service.name(),
        stop,
        task,
        service,
        signals: Signals {
            passes: passes_receiver,
            failures: failures_receiver,
        },
    }
}

/// An instance's running services, stopped in the order they were declared.
#[derive(Default)]
pub struct Services {
    running: Vec<Running>,
}

impl Services {
    pub fn push(&mut self, running: Running) {
        self.running.push(running);
    }

    /// The test signals of the service called `name`, while it runs.
    pub fn signals(&self, name: &str) -> Option<Signals> {
        self.running
            .iter()
            .find(|r| r.name() == name)
            .map(Running::signals)
    }

    /// Stops every service, one after the other in declared order: passes in flight get until
    /// `deadline`, and so does each service's own end.
    pub async fn stop_all(&mut self, deadline: Instant) {
        self.stop_all_within(deadline, deadline).await;
    }

    /// [`Services::stop_all`], where each service's own end (`Service::stopped`) may run on
    /// until `until`.
    pub async fn stop_all_within(&mut self, deadline: Instant, until: Instant) {
        for running in self.running.drain(..) {
            running.stop(deadline, until).await;
        }
    }
}
