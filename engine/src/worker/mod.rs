//! Polling workers: each runs on its own Tokio task, fetches a batch, hands it to the handler,
//! settles the jobs with the handler's outcome, and waits out the polling interval.

mod batch;
mod handler;
mod heartbeat;
#[doc(hidden)]
pub mod local_groups;
#[doc(hidden)]
pub mod overrun;
#[doc(hidden)]
pub mod send_it;
#[doc(hidden)]
pub mod spies;
mod transaction;
pub use transaction::TRANSACTIONAL_HEARTBEAT_UNSUPPORTED;

#[doc(hidden)]
pub use handler::{error_output, PerJobPlan, NOT_A_RESULT_LIST, NO_DISPOSITION};
pub use handler::{HandlerFuture, HandlerOutcome, JobHandler, JobResult};
pub use transaction::{HandlerTransactions, HandlerTx};

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};
use uuid::Uuid;

use crate::event::{ErrorEvent, Event, EventSink};
use crate::model::fetch::ClaimedJob;
use crate::model::queue::QueueInfo;
use crate::model::work::WorkOptions;
use crate::ops::queues::QueueCache;
use crate::sql::Db;
use local_groups::LocalGroups;

const STATE_CREATED: u8 = 0;
const STATE_ACTIVE: u8 = 1;
const STATE_STOPPING: u8 = 2;
const STATE_STOPPED: u8 = 3;
/// Marks a timestamp or duration that has not happened yet.
const NEVER: i64 = -1;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Everything a worker task needs, shared with its handle.
struct WorkerShared {
    id: Uuid,
    work_id: Uuid,
    name: String,
    options: Value,
    stopping: AtomicBool,
    wake: Notify,
    /// The batch being handled, so a shutdown can fail what it abandons.
    active: Mutex<Arc<Vec<ClaimedJob>>>,
    active_count: AtomicUsize,
    state: AtomicU8,
    created_on: i64,
    last_fetched_on: AtomicI64,
    last_job_started_on: AtomicI64,
    last_job_ended_on: AtomicI64,
    last_job_duration: AtomicI64,
    last_error_on: AtomicI64,
    last_error: Mutex<Option<Value>>,
}

#[doc(hidden)]
pub struct WorkerHandle {
    shared: Arc<WorkerShared>,
    /// Held across awaits by `join()`, so a join that is given up on (a stop's timeout) leaves the
    /// handle in place for the next one.
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    abort: AbortHandle,
}

impl WorkerHandle {
    pub fn id(&self) -> Uuid {
        self.shared.id
    }
    pub fn work_id(&self) -> Uuid {
        self.shared.work_id
    }
    pub fn name(&self) -> &str {
        &self.shared.name
    }
    /// The jobs of the batch being handled.
    pub fn active_jobs(&self) -> Arc<Vec<ClaimedJob>> {
        self.shared.active.lock().unwrap().clone()
    }
    /// Asks the loop to end after its current batch, and cuts any polling wait short.
    pub fn request_stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.shared.state.compare_exchange(
            STATE_ACTIVE,
            STATE_STOPPING,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.shared.wake.notify_one();
    }
    /// Fetch now instead of waiting out the interval.
    pub fn notify(&self) {
        self.shared.wake.notify_one();
    }
    /// Waits for the loop to end.
    pub async fn join(&self) {
        let mut task = self.task.lock().await;
        if let Some(handle) = task.as_mut() {
            let _ = handle.await;
            *task = None;
        }
    }
    /// Drops the loop where it is, handler and all.
    pub fn abort(&self) {
        self.abort.abort();
    }
    pub fn is_finished(&self) -> bool {
        self.abort.is_finished()
    }
    /// Whether its handler runs in a transaction (`transactional`).
    pub fn is_transactional(&self) -> bool {
        self.shared.options.get("transactional") == Some(&Value::Bool(true))
    }
    pub fn is_stopped(&self) -> bool {
        self.shared.state.load(Ordering::SeqCst) == STATE_STOPPED
    }

    /// What `getWipData()` reports of this worker; times are epoch milliseconds (or null).
    pub fn wip(&self) -> Value {
        let shared = &self.shared;
        let time = |v: &AtomicI64| match v.load(Ordering::SeqCst) {
            NEVER => Value::Null,
            ms => json!(ms),
        };
        let state = match shared.state.load(Ordering::SeqCst) {
            STATE_CREATED => "created",
            STATE_ACTIVE => "active",
            STATE_STOPPING => "stopping",
            _ => "stopped",
        };
        json!({
            "id": shared.id,
            "workId": shared.work_id,
            "name": shared.name,
            "options": shared.options,
            "state": state,
            "count": shared.active_count.load(Ordering::SeqCst),
            "createdOn": shared.created_on,
            "lastFetchedOn": time(&shared.last_fetched_on),
            "lastJobStartedOn": time(&shared.last_job_started_on),
            "lastJobEndedOn": time(&shared.last_job_ended_on),
            "lastError": shared.last_error.lock().unwrap().clone(),
            "lastErrorOn": time(&shared.last_error_on),
            "lastJobDuration": time(&shared.last_job_duration),
        })
    }
}

#[doc(hidden)]
pub struct WorkerContext {
    pub db: Db,
    pub queues: Arc<QueueCache>,
    pub events: Arc<dyn EventSink>,
    /// The instance's per-group counts, for a worker with `localGroupConcurrency`.
    pub local_groups: Option<Arc<LocalGroups>>,
    /// Where handlers that outrun their expiration are reported.
    pub overruns: crate::worker::overrun::OverrunLog,
    /// Whether the instance's LISTEN/NOTIFY listener is up right now.
    pub listening: Arc<AtomicBool>,
    /// Whether anyone listens for `wip` events; nothing is reported per batch otherwise.
    pub wip_listening: Arc<AtomicBool>,
    /// Whether each batch's settle is reported (`batchSettled`); nothing is reported otherwise.
    pub settle_reports: Arc<AtomicBool>,
    /// The queues whose settles are reported for job spies; nothing is reported otherwise.
    pub spies: Arc<crate::worker::spies::SpyWatch>,
    /// The open transactions of transactional handlers.
    pub transactions: Arc<HandlerTransactions>,
    /// What the polling wait, the handler's expiration and heartbeats are timed by.
    pub clock: crate::clock::Clock,
    /// Where batches are settled, together with other workers' settles on the same queue.
    pub completer: Arc<crate::ops::completer::Completer>,
}

impl WorkerContext {
    /// pg-boss reports work in progress as a batch starts and as it ends (the binding throttles).
    fn report_wip(&self, queue: &str) {
        if self.wip_listening.load(Ordering::Relaxed) {
            self.events.emit(Event::Wip {
                queue: queue.to_string(),
            });
        }
    }
}

/// Starts one polling loop.
#[doc(hidden)]
pub fn spawn_worker(
    ctx: Arc<WorkerContext>,
    name: String,
    work_id: Option<Uuid>,
    options: WorkOptions,
    handler: Arc<dyn JobHandler>,
) -> WorkerHandle {
    let id = Uuid::new_v4();
    let shared = Arc::new(WorkerShared {
        id,
        work_id: work_id.unwrap_or(id),
        name,
        options: options.raw.clone(),
        stopping: AtomicBool::new(false),
        wake: Notify::new(),
        active: Mutex::default(),
        active_count: AtomicUsize::new(0),
        state: AtomicU8::new(STATE_CREATED),
        created_on: now_ms(),
        last_fetched_on: AtomicI64::new(NEVER),
        last_job_started_on: AtomicI64::new(NEVER),
        last_job_ended_on: AtomicI64::new(NEVER),
        last_job_duration: AtomicI64::new(NEVER),
        last_error_on: AtomicI64::new(NEVER),
        last_error: Mutex::new(None),
    });
    let task = tokio::spawn(run(ctx, shared.clone(), options, handler));
    let abort = task.abort_handle();
    WorkerHandle {
        shared,
        task: tokio::sync::Mutex::new(Some(task)),
        abort,
    }
}

async fn run(
    ctx: Arc<WorkerContext>,
    shared: Arc<WorkerShared>,
    options: WorkOptions,
    handler: Arc<dyn JobHandler>,
) {
    let request = options.fetch_request();
    let interval = Duration::from_secs_f64(options.polling_interval_seconds);
    let notify_interval = Duration::from_secs_f64(options.notify_polling_interval_seconds);
    let _ = shared.state.compare_exchange(
        STATE_CREATED,
        STATE_ACTIVE,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    // A completed batch whose completion rides on the next claim.
    let mut carried = None;
    while !shared.stopping.load(Ordering::SeqCst) {
        let started = Instant::now();
        let started_on = ctx.clock.now_ms();
        let fetched = match batch::fetch_and_handle(
            &ctx,
            &shared,
            &request,
            handler.as_ref(),
            &options,
            carried.take(),
        )
        .await
        {
            Ok((count, next)) => {
                carried = next;
                count
            }
            Err(err) => {
                report_error(&ctx, &shared, &err);
                0
            }
        };
        shared
            .last_job_duration
            .store(started.elapsed().as_millis() as i64, Ordering::SeqCst);
        let queue = ctx.queues.get(&shared.name);
        let elapsed = Duration::from_millis((ctx.clock.now_ms() - started_on).max(0) as u64);
        let wait = if carried.is_some()
            || bursting(&options, fetched as i64, queue.as_deref().map(|q| &**q))
        {
            Duration::ZERO
        } else if ctx.listening.load(Ordering::SeqCst) && queue.is_some_and(|q| q.notify) {
            // Notifications wake this worker; the poll is only the backstop.
            notify_interval.saturating_sub(elapsed)
        } else {
            interval.saturating_sub(elapsed)
        };
        if !shared.stopping.load(Ordering::SeqCst) && wait > Duration::from_millis(100) {
            tokio::select! {
                _ = ctx.clock.sleep(wait) => {}
                _ = shared.wake.notified() => {}
            }
        }
    }
    if let Some(carried) = carried {
        if let Err(err) = batch::complete_carried(&ctx, &shared, &options, carried).await {
            report_error(&ctx, &shared, &err);
        }
    }
    shared.state.store(STATE_STOPPED, Ordering::SeqCst);
}

/// A failed turn: an `error` event naming the queue and worker, kept as the worker's last error.
fn report_error(ctx: &WorkerContext, shared: &WorkerShared, err: &crate::error::Error) {
    let mut error = ErrorEvent::of(err).in_queue(&shared.name, Some(shared.id));
    error.message = format!(
        "{} (Queue: {}, Worker: {})",
        err.message, shared.name, shared.id
    );
    let event = Event::Error(error);
    shared.last_error_on.store(now_ms(), Ordering::SeqCst);
    *shared.last_error.lock().unwrap() = Some(event.payload());
    ctx.events.emit(event);
}

/// Whether to fetch again at once: only after a full batch, and then while `burstWhenBatchFull`
/// (batches over one) or while the queue's cached ready count exceeds `burstWhenReadyExceeds`.
fn bursting(options: &WorkOptions, fetched: i64, queue: Option<&QueueInfo>) -> bool {
    let full = fetched >= options.batch_size;
    let ready_over = options
        .burst_when_ready_exceeds
        .is_some_and(|limit| queue.is_some_and(|q| q.ready_count > limit));
    full && (ready_over || (options.burst_when_batch_full && options.batch_size > 1))
}
