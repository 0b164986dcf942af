//! Polling workers: each runs on its own Tokio task, fetches a batch, hands it to the handler,
//! settles the jobs with the handler's outcome, and waits out the polling interval.

pub mod overrun;
pub mod send_it;
pub mod spies;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};
use uuid::Uuid;

use crate::event::{ErrorEvent, Event, EventSink};
use crate::model::work::WorkOptions;
use crate::ops::jobs::{self, ClaimedJob, FetchRequest, JobResultStatus, JobSettle, JobTargets};
use crate::ops::queues::{self, QueueCache};

/// How a handler finished with a batch.
#[derive(Debug, Clone)]
pub enum HandlerOutcome {
    /// Resolved; the output (JSON text) is stored when the batch held one job. A `perJobResults`
    /// worker takes this as a broken contract and fails the whole batch.
    Completed(Option<String>),
    /// Threw or rejected; the serialized error (JSON text) becomes the jobs' output.
    Failed(String),
    /// Resolved with one result per job (`perJobResults`): each job is settled on its own. A job
    /// of the batch with no result fails; results for jobs outside the batch are ignored, and of
    /// several for one job the last counts. Honoured whatever the worker's options.
    PerJob(Vec<JobResult>),
}

/// One job's outcome in a `HandlerOutcome::PerJob` answer (pg-boss's `JobResult`).
#[derive(Debug, Clone)]
pub struct JobResult {
    pub id: Uuid,
    pub status: JobResultStatus,
    /// JSON text stored as the job's output: the completion result or the failure detail.
    pub output: Option<String>,
}

/// pg-boss's message for a `perJobResults` handler that did not answer with a list.
pub const NOT_A_RESULT_LIST: &str =
    "perJobResults handler must resolve with an array of job results";
/// pg-boss's message for a job its `perJobResults` handler said nothing (valid) about.
pub const NO_DISPOSITION: &str = "no disposition returned by handler";

/// An error as a handler's throw is stored, for failures the engine makes up itself.
fn error_output(message: &str) -> String {
    json!({ "name": "Error", "message": message, "stack": format!("Error: {message}") }).to_string()
}

/// How each job of a batch is settled after a per-job answer, in batch order, and which of them
/// the handler answered for (the rest fail with `NO_DISPOSITION`).
#[derive(Debug)]
pub struct PerJobPlan {
    pub settles: Vec<JobSettle>,
    pub answered: Vec<bool>,
}

impl PerJobPlan {
    pub fn new(jobs: &[ClaimedJob], results: Vec<JobResult>) -> PerJobPlan {
        let position: HashMap<Uuid, usize> =
            jobs.iter().enumerate().map(|(i, j)| (j.id, i)).collect();
        let mut chosen: Vec<Option<JobResult>> = vec![None; jobs.len()];
        for result in results {
            if let Some(&i) = position.get(&result.id) {
                chosen[i] = Some(result);
            }
        }
        let answered = chosen.iter().map(Option::is_some).collect();
        let settles = jobs
            .iter()
            .zip(chosen)
            .map(|(job, result)| {
                let (status, output) = match result {
                    Some(r) => (r.status, r.output),
                    None => (JobResultStatus::Failed, Some(error_output(NO_DISPOSITION))),
                };
                JobSettle {
                    id: job.id,
                    retry_count: job.retry_count,
                    status,
                    output,
                }
            })
            .collect();
        PerJobPlan { settles, answered }
    }
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerOutcome> + Send>>;

/// What `work()` calls for every fetched batch. The engine never knows what is behind it: the
/// Node binding calls a JavaScript function, a Rust service can implement it directly.
pub trait JobHandler: Send + Sync + 'static {
    /// `jobs_json` is the JSON text of the batch (an array of jobs).
    fn handle(&self, jobs_json: String) -> HandlerFuture;
}

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
    active: Mutex<Vec<ClaimedJob>>,
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
    pub fn active_jobs(&self) -> Vec<ClaimedJob> {
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

pub struct WorkerContext {
    pub pool: PgPool,
    pub schema: String,
    pub queues: Arc<QueueCache>,
    pub events: Arc<dyn EventSink>,
    /// The instance's per-group counts, for a worker with `localGroupConcurrency`.
    pub local_groups: Option<Arc<crate::ops::groups::LocalGroups>>,
    /// Where handlers that outrun their expiration are reported.
    pub overruns: crate::worker::overrun::OverrunLog,
    /// Whether the instance's LISTEN/NOTIFY listener is up right now.
    pub listening: Arc<AtomicBool>,
    /// Whether anyone listens for `wip` events; nothing is reported per batch otherwise.
    pub wip_listening: Arc<AtomicBool>,
    /// The queues whose settles are reported for job spies; nothing is reported otherwise.
    pub spies: Arc<crate::worker::spies::SpyWatch>,
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
        active: Mutex::new(Vec::new()),
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
    let request = FetchRequest {
        batch_size: options.batch_size,
        include_metadata: options.include_metadata,
        ignore_start_after: false,
        min_priority: options.min_priority,
        max_priority: options.max_priority,
        ignore_groups: None,
        group_concurrency: options.group_concurrency.clone(),
    };
    let interval = Duration::from_secs_f64(options.polling_interval_seconds);
    let notify_interval = Duration::from_secs_f64(options.notify_polling_interval_seconds);
    let _ = shared.state.compare_exchange(
        STATE_CREATED,
        STATE_ACTIVE,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    while !shared.stopping.load(Ordering::SeqCst) {
        let started = Instant::now();
        let fetched =
            match fetch_and_handle(&ctx, &shared, &request, handler.as_ref(), &options).await {
                Ok(count) => count,
                Err(err) => {
                    let mut error = ErrorEvent::of(&err).in_queue(&shared.name, Some(shared.id));
                    error.message = format!(
                        "{} (Queue: {}, Worker: {})",
                        err.message, shared.name, shared.id
                    );
                    let event = Event::Error(error);
                    shared.last_error_on.store(now_ms(), Ordering::SeqCst);
                    *shared.last_error.lock().unwrap() = Some(event.payload());
                    ctx.events.emit(event);
                    0
                }
            };
        shared
            .last_job_duration
            .store(started.elapsed().as_millis() as i64, Ordering::SeqCst);
        let queue = ctx.queues.get(&shared.name);
        let wait = if bursting(&options, fetched as i64, queue.as_deref().map(|q| &**q)) {
            Duration::ZERO
        } else if ctx.listening.load(Ordering::SeqCst) && queue.is_some_and(|q| q.notify) {
            // Notifications wake this worker; the poll is only the backstop.
            notify_interval.saturating_sub(started.elapsed())
        } else {
            interval.saturating_sub(started.elapsed())
        };
        if !shared.stopping.load(Ordering::SeqCst) && wait > Duration::from_millis(100) {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shared.wake.notified() => {}
            }
        }
    }
    shared.state.store(STATE_STOPPED, Ordering::SeqCst);
}

/// Whether to fetch again at once: only after a full batch, and then while `burstWhenBatchFull`
/// (batches over one) or while the queue's cached ready count exceeds `burstWhenReadyExceeds`.
fn bursting(
    options: &WorkOptions,
    fetched: i64,
    queue: Option<&crate::model::queue::QueueInfo>,
) -> bool {
    let full = fetched >= options.batch_size;
    let ready_over = options
        .burst_when_ready_exceeds
        .is_some_and(|limit| queue.is_some_and(|q| q.ready_count > limit));
    full && (ready_over || (options.burst_when_batch_full && options.batch_size > 1))
}

/// One turn of the loop: returns how many jobs were fetched.
async fn fetch_and_handle(
    ctx: &WorkerContext,
    shared: &WorkerShared,
    request: &FetchRequest,
    handler: &dyn JobHandler,
    options: &WorkOptions,
) -> crate::Result<usize> {
    let queue = queues::cached(&ctx.pool, &ctx.schema, &ctx.queues, &shared.name).await?;
    // With localGroupConcurrency, groups with no room left in this instance are not fetched, and
    // jobs over their group's limit go back to the queue before the handler sees them.
    let skipping;
    let request = match &ctx.local_groups {
        Some(local) => {
            let full = local.at_capacity(&shared.name);
            skipping = FetchRequest {
                ignore_groups: Some(full).filter(|g| !g.is_empty()),
                ..request.clone()
            };
            &skipping
        }
        None => request,
    };
    let batch = jobs::fetch(&ctx.pool, &ctx.schema, &queue, request).await?;
    shared.last_fetched_on.store(now_ms(), Ordering::SeqCst);
    let fetched = batch.jobs.len();
    if fetched == 0 {
        return Ok(0);
    }
    let (batch, _group_slots) = match &ctx.local_groups {
        Some(local) => {
            // pg-boss's spies see every fetched job go active, also those sent back for want of room.
            let fetched_jobs = ctx.spies.watching(&shared.name).then(|| batch.jobs.clone());
            let (batch, slots) =
                crate::ops::groups::admit(&ctx.pool, &ctx.schema, &queue, local, batch).await?;
            if let Some(fetched_jobs) = fetched_jobs {
                crate::worker::spies::report_restored(
                    ctx.events.as_ref(),
                    &shared.name,
                    &fetched_jobs,
                    &batch.jobs,
                );
            }
            (batch, Some(slots))
        }
        None => (batch, None),
    };
    let count = batch.jobs.len();
    if count == 0 {
        return Ok(fetched);
    }
    shared.last_job_started_on.store(now_ms(), Ordering::SeqCst);
    *shared.active.lock().unwrap() = batch.jobs.clone();
    shared.active_count.store(count, Ordering::SeqCst);
    ctx.report_wip(&shared.name);
    // As pg-boss: the handler has until the batch's longest expiration (at least a second).
    let max_expire = batch
        .jobs
        .iter()
        .map(|j| j.expire_seconds)
        .max()
        .unwrap_or(0)
        .max(1);
    let targets = JobTargets::for_claimed(&batch.jobs);
    // The shortest heartbeat in the batch sets the pace, so no job in it goes stale.
    let heartbeat = batch
        .jobs
        .iter()
        .filter_map(|j| j.heartbeat_seconds)
        .filter(|s| *s > 0)
        .min();
    let mut handling = handler.handle(batch.json());
    let within_expiration =
        tokio::time::timeout(Duration::from_secs(max_expire as u64), &mut handling);
    let answered = match heartbeat {
        None => within_expiration.await,
        Some(seconds) => {
            let refresh = options
                .heartbeat_refresh_seconds
                .unwrap_or(seconds as f64 / 2.0);
            tokio::select! {
                answered = within_expiration => answered,
                never = keep_alive(ctx, &queue, &targets, Duration::from_secs_f64(refresh)) => match never {},
            }
        }
    };
    let settled = match answered {
        Ok(HandlerOutcome::PerJob(results)) => {
            let plan = PerJobPlan::new(&batch.jobs, results);
            jobs::settle_each(&ctx.pool, &ctx.schema, &queue, &plan.settles)
                .await
                .map(|each| Settled::Each(plan, each))
        }
        Ok(HandlerOutcome::Completed(_)) if options.per_job_results => {
            let error = error_output(NOT_A_RESULT_LIST);
            jobs::fail(&ctx.pool, &ctx.schema, &queue, &targets, Some(&error))
                .await
                .map(|_| Settled::Failed)
        }
        Ok(HandlerOutcome::Completed(output)) => {
            let output = if count == 1 { output } else { None };
            jobs::complete(
                &ctx.pool,
                &ctx.schema,
                &queue,
                &targets,
                output.as_deref(),
                false,
            )
            .await
            .map(|done| Settled::Completed {
                affected: done.affected,
            })
        }
        Ok(HandlerOutcome::Failed(error)) => {
            // A handler that threw nothing (undefined or null) leaves no output, as in pg-boss.
            let output = Some(error.as_str()).filter(|e| *e != "null");
            jobs::fail(&ctx.pool, &ctx.schema, &queue, &targets, output)
                .await
                .map(|_| Settled::Failed)
        }
        Err(_) => {
            let settled = fail_overrun(ctx, &queue, &targets, max_expire)
                .await
                .map(|_| Settled::Failed);
            // The jobs are no longer this worker's (a retry may be someone else's already): its wip
            // counts none while it waits for the handler to give up.
            shared.active.lock().unwrap().clear();
            shared.active_count.store(0, Ordering::SeqCst);
            ctx.overruns
                .record(&ctx.pool, &shared.name, &targets.ids, i64::from(max_expire))
                .await;
            // As in pg-boss, spies hear of the failure now, not once the handler gives up.
            report_settle(ctx, &queue, &batch.jobs, &settled).await;
            hold_while_running(shared, &mut handling).await;
            settled.map(|_| Settled::Reported)
        }
    };
    report_settle(ctx, &queue, &batch.jobs, &settled).await;
    shared.active.lock().unwrap().clear();
    shared.active_count.store(0, Ordering::SeqCst);
    shared.last_job_ended_on.store(now_ms(), Ordering::SeqCst);
    ctx.report_wip(&shared.name);
    settled?;
    Ok(fetched)
}

/// What a batch's settle did, as far as job spies need to know.
enum Settled {
    Completed {
        affected: i64,
    },
    Failed,
    Each(PerJobPlan, jobs::SettledEach),
    /// Already told to the spies.
    Reported,
}

/// Tells the JS side's spies how a settle left the batch, when its queue is spied on.
async fn report_settle(
    ctx: &WorkerContext,
    queue: &crate::model::queue::QueueInfo,
    jobs: &[ClaimedJob],
    settled: &crate::Result<Settled>,
) {
    if !ctx.spies.watching(&queue.name) {
        return;
    }
    use crate::worker::spies::Settle;
    let settle = match settled {
        Ok(Settled::Reported) => return,
        Ok(Settled::Completed { affected }) => Settle::Completed {
            affected: *affected,
        },
        Ok(Settled::Failed) => Settle::Failed,
        Ok(Settled::Each(plan, each)) => Settle::Each { plan, each },
        Err(_) => Settle::Unknown,
    };
    crate::worker::spies::report(
        &ctx.pool,
        &ctx.schema,
        queue,
        ctx.events.as_ref(),
        jobs,
        settle,
    )
    .await;
}

/// Fails a batch whose handler outran `max_expire` seconds, after telling the handler through its
/// jobs' signals (the binding listens for `batchExpired`), in pg-boss's order.
async fn fail_overrun(
    ctx: &WorkerContext,
    queue: &crate::model::queue::QueueInfo,
    targets: &JobTargets,
    max_expire: i32,
) -> crate::Result<jobs::CommandResponse> {
    ctx.events.emit(Event::BatchExpired {
        ids: targets.ids.clone(),
    });
    let error = error_output(&format!("handler execution exceeded {max_expire}s"));
    jobs::fail(&ctx.pool, &ctx.schema, queue, targets, Some(&error)).await
}

/// Holds the worker while a handler that outran its expiration keeps running, as pg-boss does, so
/// `localConcurrency` bounds the handlers actually running and the worker does not fetch a retry of
/// the same job beside it. Stopping the worker ends the wait.
async fn hold_while_running(shared: &WorkerShared, handling: &mut HandlerFuture) {
    while !shared.stopping.load(Ordering::SeqCst) {
        tokio::select! {
            _ = &mut *handling => return,
            // notifyWorker() wakes this too; only a stop ends the hold.
            _ = shared.wake.notified() => {}
        }
    }
}

/// Touches the batch's jobs every `every` while its handler runs; never returns. A failed touch is
/// reported and the beat goes on. The touch is fenced to the fetched attempts, so a job it did not
/// refresh is no longer this worker's (expired, cancelled, settled elsewhere or by the handler): it
/// is reported as `claimLost`, for the binding to abort that job's signal, as pg-boss does, and is
/// not touched again.
async fn keep_alive(
    ctx: &WorkerContext,
    queue: &crate::model::queue::QueueInfo,
    targets: &JobTargets,
    every: Duration,
) -> std::convert::Infallible {
    let mut held = targets.clone();
    loop {
        tokio::time::sleep(every).await;
        if held.ids.is_empty() {
            continue;
        }
        match crate::ops::commands::touch(&ctx.pool, &ctx.schema, queue, &held).await {
            Err(err) => ctx.events.emit(Event::Error(
                ErrorEvent::of(&err).in_queue(&queue.name, None),
            )),
            Ok(touched) => {
                let kept: Vec<bool> = held
                    .ids
                    .iter()
                    .map(|id| touched.settled.contains(id))
                    .collect();
                if kept.iter().all(|k| *k) {
                    continue;
                }
                let lost: Vec<Uuid> = held
                    .ids
                    .iter()
                    .zip(&kept)
                    .filter(|(_, k)| !**k)
                    .map(|(id, _)| *id)
                    .collect();
                ctx.events.emit(Event::ClaimLost {
                    queue: queue.name.clone(),
                    ids: lost,
                });
                let mut keep = kept.iter();
                held.ids.retain(|_| *keep.next().unwrap_or(&false));
                if let Some(attempts) = held.attempts.as_mut() {
                    let mut keep = kept.iter();
                    attempts.retain(|_| *keep.next().unwrap_or(&false));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(retry_count: i32) -> ClaimedJob {
        ClaimedJob {
            id: Uuid::new_v4(),
            retry_count,
            expire_seconds: 900,
            heartbeat_seconds: None,
            json: "{}".into(),
        }
    }

    fn result(id: Uuid, status: JobResultStatus, output: &str) -> JobResult {
        JobResult {
            id,
            status,
            output: Some(output.into()),
        }
    }

    #[test]
    fn a_per_job_plan_follows_the_batch_and_the_last_result_for_each_job() {
        let jobs = [claimed(0), claimed(3), claimed(1)];
        let stranger = Uuid::new_v4();
        let plan = PerJobPlan::new(
            &jobs,
            vec![
                result(jobs[2].id, JobResultStatus::Completed, "1"),
                result(stranger, JobResultStatus::Completed, "2"),
                result(jobs[0].id, JobResultStatus::Completed, "3"),
                result(jobs[0].id, JobResultStatus::DeadLetter, "4"),
            ],
        );
        let summary: Vec<_> = plan
            .settles
            .iter()
            .map(|s| (s.id, s.retry_count, s.status))
            .collect();
        assert_eq!(
            summary,
            vec![
                (jobs[0].id, 0, JobResultStatus::DeadLetter),
                (jobs[1].id, 3, JobResultStatus::Failed),
                (jobs[2].id, 1, JobResultStatus::Completed),
            ]
        );
        assert_eq!(plan.answered, vec![true, false, true]);
        assert_eq!(plan.settles[0].output.as_deref(), Some("4"));
        let missing: Value =
            serde_json::from_str(plan.settles[1].output.as_deref().unwrap()).unwrap();
        assert_eq!(missing["message"], NO_DISPOSITION);
        assert_eq!(missing["name"], "Error");
    }
}
