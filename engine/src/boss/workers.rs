//! Workers: `work()`, `offWork()`, `notifyWorker()` and what they report (`getWipData()`).

use crate::error::{Error, ErrorCode, Result};
use crate::event::{ErrorEvent, Event};
use crate::model::names::assert_object_name;
use crate::model::targets::JobTargets;
use crate::model::work::WorkOptions;
use crate::ops;
use crate::ops::queues::QueueCache;
use crate::service::listener::Wakeup;
use crate::sql::exec::Handle;
use crate::worker::{spawn_worker, JobHandler, WorkerContext, WorkerHandle};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
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
        // A transactional worker holds a transaction while its handler runs: on one of our
        // connections, or one the constructor's `db` opens (its `beginTransaction()`).
        if options.transactional && !db.handle.can_begin() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "transactional workers require a database connection pg-boss can open a transaction on: the built-in pool, or a db adapter implementing beginTransaction",
            ));
        }
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
            settle_reports: self.settle_reports.clone(),
            spies: self.spies.clone(),
            transactions: self.transactions.clone(),
            clock: self.timers.clone(),
            completer: self.completer.clone(),
        });
        let mut workers = self.workers.lock().unwrap();
        if options.transactional {
            self.warn_on_transactional_headroom(&workers, options.local_concurrency);
        }
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

    /// pg-boss's refusal of a transactional worker on a queue with `heartbeatSeconds`, on a
    /// backend where the heartbeat's write from a pooled connection makes the handler's
    /// transaction fail to write the same row (CockroachDB). The queue is read only on such a
    /// backend; one that cannot be read (not created yet) is let through, as pg-boss does: the
    /// batch's own check is the backstop. Asked before [`Boss::work`], which it leaves the
    /// refusals of an instance not started, or of a handle that cannot begin a transaction, to.
    pub async fn assert_transactional_work(&self, name: &str) -> Result<()> {
        if !self.config.backend.no_transactional_heartbeat {
            return Ok(());
        }
        let Ok(db) = self.started_db() else {
            return Ok(());
        };
        if !db.handle.can_begin() {
            return Ok(());
        }
        let names = [name.to_string()];
        let heartbeat = ops::queues::get_queues_json(&db, Some(&names[..]), 1, None)
            .await
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|rows| rows.as_array()?.first()?.get("heartbeatSeconds")?.as_f64())
            .unwrap_or(0.0);
        if heartbeat != 0.0 {
            return Err(Error::invalid(
                crate::worker::TRANSACTIONAL_HEARTBEAT_UNSUPPORTED,
            ));
        }
        Ok(())
    }

    /// Each transactional handler in flight holds one of the pool's connections; warns
    /// (`transactional_pool_headroom`, not stored) when they could take all of them.
    /// On a caller's handle only when it is a pool pg-boss sized (see
    /// [`crate::sql::exec::CallerDb::counts_pool_headroom`]), as pg-boss warns.
    fn warn_on_transactional_headroom(&self, workers: &[Arc<WorkerHandle>], adding: i64) {
        let counted = match &self.db().handle {
            Handle::Pool(_) => true,
            Handle::Caller(db) | Handle::CallerTx(db) => db.counts_pool_headroom(),
        };
        if !counted {
            return;
        }
        let max = i64::from(self.config.connection.max);
        let running = workers.iter().filter(|w| w.is_transactional()).count() as i64;
        let pinned = running + adding;
        if pinned < max {
            return;
        }
        self.events.emit(Event::Warning(crate::event::Warning {
            kind: "transactional_pool_headroom",
            message: format!(
                "transactional workers can hold {pinned} of this pool's {max} connections while their handlers run, leaving nothing for fetches, failures, or maintenance. Raise max above {pinned}, or lower localConcurrency."
            ),
            data: json!({ "type": "transactional_pool_headroom", "max": max, "transactionalWorkers": pinned }),
        }));
    }

    /// Runs a statement of a transactional handler in its batch's transaction (the token the
    /// handler was given): `values` are the untyped text of `$1`, `$2`, ...; answers
    /// `{ fields: [{ name, dataTypeID }], rows: [[text or null]], rowCount }`.
    pub async fn execute_in_transaction(
        &self,
        token: u32,
        sql: &str,
        values: &[Option<String>],
    ) -> Result<Value> {
        self.transactions.execute(token, sql, values).await
    }

    /// Moves the test clock (an instance made with `clock: 'test'`) to `to_ms`: the schema's
    /// `job_now()` first, then the timers due by then fire. Answers how many fired.
    pub async fn advance_test_clock(&self, to_ms: i64) -> Result<usize> {
        let manual = self.test_clock()?;
        self.push_test_clock(to_ms.max(manual.now_ms())).await?;
        Ok(manual.advance_to(to_ms))
    }

    /// Sets the test clock to `to_ms`, forward or back, firing nothing (timers a forward jump
    /// passed fall due at once).
    pub async fn set_test_clock(&self, to_ms: i64) -> Result<()> {
        let manual = self.test_clock()?;
        // Before start() the schema's clock table may not exist yet; start() writes it.
        let started = matches!(*self.lifecycle.lock().unwrap(), Lifecycle::Started);
        if started {
            self.push_test_clock(to_ms).await?;
        }
        manual.set(to_ms);
        Ok(())
    }

    /// When the test clock's next timer is due, if one is armed.
    pub fn test_clock_next_due(&self) -> Result<Option<i64>> {
        Ok(self.test_clock()?.next_due())
    }

    /// Whether the instance has nothing in flight a test clock should wait for: no timer fired
    /// and not yet taken up, no statement running (in this process).
    pub fn test_clock_idle(&self) -> Result<bool> {
        Ok(self.test_clock()?.is_settled() && crate::clock::statements_in_flight() == 0)
    }

    fn test_clock(&self) -> Result<&std::sync::Arc<crate::clock::ManualClock>> {
        self.timers().as_manual().ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArgument,
                "this instance was not made with a test clock",
            )
        })
    }

    async fn push_test_clock(&self, to_ms: i64) -> Result<()> {
        let db = self.started_db()?;
        db.exec()
            .execute(
                &crate::sql::test_clock::push(db.schema()),
                vec![crate::sql::exec::Param::Float8(to_ms as f64)],
            )
            .await?;
        Ok(())
    }

    /// Whether a transactional handler's transaction (its token) is still the handler's to use.
    pub fn handler_transaction_open(&self, token: u32) -> bool {
        self.transactions.is_open(token)
    }

    /// Tells the worker which of its batch's jobs a transactional handler settled itself through
    /// its transaction (the ids the settle changed).
    pub fn note_handler_settles(&self, token: u32, ids: &[Uuid]) {
        self.transactions.note_settled(token, ids.iter().copied())
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

    /// Whether workers report each batch's settle as it ends (`batchSettled` events, for the JS
    /// entry's settle spans); nothing is reported per batch while it is off.
    pub fn set_settle_reports(&self, on: bool) {
        self.settle_reports
            .store(on, std::sync::atomic::Ordering::Relaxed);
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

/// What the send coalescer calls once a statement that notified a queue has committed: while the
/// listener is up, this instance's workers of that queue fetch at once, without waiting for the
/// notification's round trip through the server (it still arrives, and still wakes the workers
/// of every other instance). Without the listener nothing is woken: workers then poll, as
/// pg-boss's do.
pub(super) fn local_wakeup(
    workers: Arc<Mutex<Vec<Arc<WorkerHandle>>>>,
    listening: Arc<AtomicBool>,
) -> crate::ops::coalesce::LocalWakeup {
    Arc::new(move |name: &str| {
        if !listening.load(Ordering::SeqCst) {
            return;
        }
        for worker in workers.lock().unwrap().iter().filter(|w| w.name() == name) {
            worker.notify();
        }
    })
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
