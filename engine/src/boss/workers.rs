//! Workers: `work()`, `offWork()`, `notifyWorker()` and what they report (`getWipData()`).

use crate::error::{Error, ErrorCode, Result};
use crate::event::{ErrorEvent, Event};
use crate::model::names::assert_object_name;
use crate::model::targets::JobTargets;
use crate::model::work::WorkOptions;
use crate::ops;
use crate::ops::queues::QueueCache;
use crate::service::listener::Wakeup;
use crate::worker::{spawn_worker, JobHandler, WorkerContext, WorkerHandle};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

use super::{Boss, Lifecycle};

impl Boss {
    /// `work()`: starts `localConcurrency` polling loops and returns the first one's id.
    pub fn work(
        &self,
        name: &str,
        options: WorkOptions,
        handler: Arc<dyn JobHandler>,
    ) -> Result<Uuid> {
        assert_object_name(name, "Name")?;
        let db = match *self.lifecycle.lock().unwrap() {
            Lifecycle::Started => self.db(),
            Lifecycle::Created => {
                return Err(Error::new(
                    ErrorCode::NotStarted,
                    "Workers are disabled. pg-boss is not started: call start() first",
                ))
            }
            Lifecycle::Stopped => {
                return Err(Error::new(
                    ErrorCode::NotStarted,
                    "Workers are disabled. pg-boss is stopped",
                ))
            }
        };
        let ctx = Arc::new(WorkerContext {
            db,
            queues: self.queues.clone(),
            events: self.events.clone(),
            local_groups: options.local_group_concurrency.clone().map(|limits| {
                self.local_groups.set_limits(name, limits);
                self.local_groups.clone()
            }),
            overruns: self.overruns.clone(),
            listening: self.listening.clone(),
            wip_listening: self.wip_listening.clone(),
            spies: self.spies.clone(),
            completer: self.completer.clone(),
        });
        let mut workers = self.workers.lock().unwrap();
        let mut first = None;
        for _ in 0..options.local_concurrency.max(1) {
            let handle = spawn_worker(
                ctx.clone(),
                name.to_string(),
                first,
                options.clone(),
                handler.clone(),
            );
            first.get_or_insert(handle.id());
            workers.push(Arc::new(handle));
        }
        Ok(first.expect("localConcurrency is at least 1"))
    }

    /// `offWork(name, { id, wait })`: stops the workers of a queue (or, with `id`, the ones started
    /// by one `work()` call, or one worker); with `wait`, returns once they have stopped.
    pub async fn off_work(&self, name: &str, id: Option<&str>, wait: bool) -> Result<()> {
        let matching: Vec<Arc<WorkerHandle>> = {
            let mut workers = self.workers.lock().unwrap();
            let (matching, rest): (Vec<_>, Vec<_>) = workers.drain(..).partition(|w| {
                w.name() == name
                    && id.is_none_or(|id| w.id().to_string() == id || w.work_id().to_string() == id)
            });
            *workers = rest;
            matching
        };
        for worker in &matching {
            worker.request_stop();
        }
        if wait {
            for worker in &matching {
                worker.join().await;
            }
        }
        Ok(())
    }

    /// `notifyWorker(id)`: the worker with this id fetches now instead of waiting out its poll.
    pub fn notify_worker(&self, id: &str) {
        for worker in self.workers.lock().unwrap().iter() {
            if worker.id().to_string() == id {
                worker.notify();
            }
        }
    }

    /// Whether `wip` events are wanted; workers report nothing per batch while they are not.
    pub fn set_wip_listening(&self, listening: bool) {
        self.wip_listening
            .store(listening, std::sync::atomic::Ordering::Relaxed);
    }

    /// The queues job spies watch: their workers report what each settle did (`spy` events).
    pub fn set_spied_queues(&self, queues: Vec<String>) {
        self.spies.set(queues);
    }

    /// `getWipData()`: every worker that has not stopped; pg-boss's internal queues only on request.
    pub fn wip(&self, include_internal: bool) -> Vec<Value> {
        wip_of(&self.workers, include_internal)
    }
}

impl Boss {
    /// At a stop, after the grace period: fails the jobs the workers still hold ("pg-boss shut
    /// down while active") and drops their handlers.
    /// Fails the batches stopped workers still hold and drops the workers; a fail the database
    /// has not answered by `until` is given up on (the jobs expire and are retried instead).
    pub(super) async fn fail_abandoned(
        &self,
        workers: &[Arc<WorkerHandle>],
        until: tokio::time::Instant,
    ) {
        let db = self.db();
        let output = json!({ "value": "pg-boss shut down while active" }).to_string();
        for worker in workers {
            let abandoned = worker.active_jobs();
            if !abandoned.is_empty() && !worker.is_finished() {
                let targets = JobTargets::for_claimed(&abandoned);
                let failed = async {
                    let queue = self.queue(&db, worker.name()).await.ok()?;
                    Some(ops::settle::fail(&db, None, &queue, &targets, Some(&output)).await)
                };
                let failed = tokio::time::timeout_at(until, failed)
                    .await
                    .unwrap_or_else(|_| {
                        Some(Err(Error::new(
                            ErrorCode::Database,
                            "the database did not answer in time to fail the jobs abandoned by stop()",
                        )))
                    });
                if let Some(Err(err)) = failed {
                    self.events.emit(Event::Error(
                        ErrorEvent::of(&err).in_queue(worker.name(), Some(worker.id())),
                    ));
                }
            }
            worker.abort();
        }
    }
}

/// Wakes this instance's workers for the listener.
pub(super) struct WorkerWakeup {
    pub(super) workers: Arc<Mutex<Vec<Arc<WorkerHandle>>>>,
    pub(super) queues: Arc<QueueCache>,
}

impl Wakeup for WorkerWakeup {
    fn queue(&self, name: &str) {
        for worker in self
            .workers
            .lock()
            .unwrap()
            .iter()
            .filter(|w| w.name() == name)
        {
            worker.notify();
        }
    }

    fn notify_queues(&self) {
        for worker in self.workers.lock().unwrap().iter() {
            if self.queues.get(worker.name()).is_some_and(|q| q.notify) {
                worker.notify();
            }
        }
    }
}

pub(super) fn wip_of(
    workers: &Mutex<Vec<Arc<WorkerHandle>>>,
    include_internal: bool,
) -> Vec<Value> {
    workers
        .lock()
        .unwrap()
        .iter()
        .filter(|w| !w.is_stopped() && (include_internal || !w.name().starts_with("__pgboss__")))
        .map(|w| w.wip())
        .collect()
}
