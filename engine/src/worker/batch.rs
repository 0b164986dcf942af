//! One turn of a worker: fetch a batch, hand it to the handler while keeping its jobs alive,
//! settle the jobs with the handler's answer (or fail them when it outruns their expiration), and
//! tell job spies and `wip` listeners.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::handler::NOT_A_RESULT_LIST;
use super::handler::{error_output, HandlerFuture, HandlerOutcome, JobHandler, PerJobPlan};
use super::local_groups::{self, LocalSlots};
use super::spies::{self, Settle};
use super::{heartbeat, now_ms, WorkerContext, WorkerShared};
use crate::error::Result;
use crate::event::Event;
use crate::model::fetch::{ClaimedJob, FetchRequest, FetchedBatch};
use crate::model::settle::{JobResultStatus, JobSettle};
use crate::model::targets::{CommandResponse, JobTargets};
use crate::model::work::WorkOptions;
use crate::ops::queues::{self, Queue};
use crate::ops::settle::{self, SettledEach};

/// A batch its handler completed, whose completion is left to the statement that claims the
/// worker's next batch (the worker bursts, so that claim follows at once): one round trip and one
/// commit for both. Until then its jobs stay the worker's.
pub(super) struct Carried {
    queue: Arc<Queue>,
    jobs: Arc<Vec<ClaimedJob>>,
    targets: JobTargets,
    output: Option<String>,
}

/// One turn of the loop: completes `carried` (with the claim when it can), then fetches a batch
/// and handles it. Returns how many jobs were fetched, and the batch left for the next turn's
/// claim to complete, if any.
pub(super) async fn fetch_and_handle(
    ctx: &WorkerContext,
    shared: &WorkerShared,
    request: &FetchRequest,
    handler: &dyn JobHandler,
    options: &WorkOptions,
    carried: Option<Carried>,
) -> Result<(usize, Option<Carried>)> {
    let db = &ctx.db;
    let queue = match queues::cached_in(db, &ctx.queues, &shared.name).await {
        Ok(queue) => queue,
        Err(err) => {
            if let Some(carried) = carried {
                complete_carried(ctx, shared, options, carried).await?;
            }
            return Err(err);
        }
    };
    let turn = Turn {
        ctx,
        shared,
        queue: &queue,
        options,
    };
    let (fetched, batch, _group_slots) = turn.claim(request, carried).await?;
    if batch.jobs.is_empty() {
        return Ok((fetched, None));
    }
    let jobs_json = batch.json();
    let jobs = Arc::new(batch.jobs);
    turn.begin(&jobs);
    let targets = JobTargets::for_claimed(&jobs);
    let settled = turn
        .handle(&jobs, &targets, jobs_json, handler, request, fetched)
        .await;
    if let Ok(Settled::Carry(output)) = settled {
        return Ok((
            fetched,
            Some(Carried {
                queue: queue.clone(),
                jobs,
                targets,
                output,
            }),
        ));
    }
    turn.report_settle(&jobs, &settled).await;
    turn.end();
    settled?;
    Ok((fetched, None))
}

/// Completes a carried batch on its own (the worker stops, or its next claim cannot take it).
pub(super) async fn complete_carried(
    ctx: &WorkerContext,
    shared: &WorkerShared,
    options: &WorkOptions,
    carried: Carried,
) -> Result<()> {
    let done = settle::complete(
        &ctx.db,
        None,
        &carried.queue,
        &carried.targets,
        carried.output.as_deref(),
        false,
    )
    .await;
    let settled = done.map(|done| Settled::Completed {
        affected: done.affected,
    });
    let turn = Turn {
        ctx,
        shared,
        queue: &carried.queue,
        options,
    };
    turn.report_settle(&carried.jobs, &settled).await;
    turn.end();
    settled.map(|_| ())
}

/// What a batch's settle did, as far as job spies need to know.
pub(super) enum Settled {
    Completed {
        affected: i64,
    },
    Failed,
    Each(PerJobPlan, SettledEach),
    /// Already told to the spies.
    Reported,
    /// Completed by the handler, to be completed in the statement of the next claim (with the
    /// output to store).
    Carry(Option<String>),
}

/// One turn's worker, queue and options.
pub(super) struct Turn<'a> {
    pub(super) ctx: &'a WorkerContext,
    shared: &'a WorkerShared,
    pub(super) queue: &'a Arc<Queue>,
    pub(super) options: &'a WorkOptions,
}

impl Turn<'_> {
    /// Fetches a batch: answers how many jobs were claimed, the ones this worker runs and, with
    /// `localGroupConcurrency`, the group slots they hold. Groups with no room left in this
    /// instance are not fetched, and jobs over their group's limit go back to the queue before
    /// the handler sees them.
    async fn claim(
        &self,
        request: &FetchRequest,
        carried: Option<Carried>,
    ) -> Result<(usize, FetchedBatch, Option<LocalSlots>)> {
        let (ctx, name) = (self.ctx, &self.shared.name);
        if let Some(carried) = carried {
            if let Some(batch) = self.complete_and_claim(request, carried).await? {
                return Ok(self.claimed(batch));
            }
        }
        let skipping;
        let request = match &ctx.local_groups {
            Some(local) => {
                let full = local.at_capacity(name);
                skipping = FetchRequest {
                    ignore_groups: Some(full).filter(|g| !g.is_empty()),
                    ..request.clone()
                };
                &skipping
            }
            None => request,
        };
        let batch = crate::ops::fetch::fetch(&ctx.db, None, self.queue, request).await?;
        let (fetched, batch, _) = self.claimed(batch);
        let Some(local) = ctx.local_groups.as_ref().filter(|_| fetched > 0) else {
            return Ok((fetched, batch, None));
        };
        // pg-boss's spies see every fetched job go active, also those sent back for want of room.
        let fetched_jobs = ctx.spies.watching(name).then(|| batch.jobs.clone());
        let (batch, slots) = local_groups::admit(&ctx.db, self.queue, local, batch).await?;
        if let Some(fetched_jobs) = fetched_jobs {
            spies::report_restored(ctx.events.as_ref(), name, &fetched_jobs, &batch.jobs);
        }
        Ok((fetched, batch, Some(slots)))
    }

    /// A claim's batch, taken: answers how many jobs it holds.
    fn claimed(&self, batch: FetchedBatch) -> (usize, FetchedBatch, Option<LocalSlots>) {
        self.shared
            .last_fetched_on
            .store(now_ms(), Ordering::SeqCst);
        (batch.jobs.len(), batch, None)
    }

    /// Completes `carried` in the statement that claims the next batch, and answers that batch;
    /// where that cannot be done, or the statement fails (so did nothing), `carried` is
    /// completed on its own and the claim is left to the caller (`None`).
    async fn complete_and_claim(
        &self,
        request: &FetchRequest,
        carried: Carried,
    ) -> Result<Option<FetchedBatch>> {
        let ctx = self.ctx;
        if ctx.local_groups.is_none()
            && crate::ops::fetch::completes_with_claim(&ctx.db, self.queue, request)
        {
            let both = crate::ops::fetch::complete_and_fetch(
                &ctx.db,
                self.queue,
                request,
                &carried.targets,
                carried.output.as_deref(),
            )
            .await;
            if let Ok((affected, batch)) = both {
                let settled = Ok(Settled::Completed { affected });
                let turn = Turn {
                    queue: &carried.queue,
                    ..*self
                };
                turn.report_settle(&carried.jobs, &settled).await;
                turn.end();
                return Ok(Some(batch));
            }
        }
        complete_carried(ctx, self.shared, self.options, carried).await?;
        Ok(None)
    }

    /// The batch is this worker's now.
    fn begin(&self, jobs: &Arc<Vec<ClaimedJob>>) {
        let shared = self.shared;
        shared.last_job_started_on.store(now_ms(), Ordering::SeqCst);
        *shared.active.lock().unwrap() = jobs.clone();
        shared.active_count.store(jobs.len(), Ordering::SeqCst);
        self.ctx.report_wip(&shared.name);
    }

    /// The batch is settled (or given up on).
    fn end(&self) {
        let shared = self.shared;
        self.forget_jobs();
        shared.last_job_ended_on.store(now_ms(), Ordering::SeqCst);
        self.ctx.report_wip(&shared.name);
    }

    fn forget_jobs(&self) {
        *self.shared.active.lock().unwrap() = Arc::default();
        self.shared.active_count.store(0, Ordering::SeqCst);
    }

    /// Runs the handler and settles the batch with what it answered.
    async fn handle(
        &self,
        jobs: &[ClaimedJob],
        targets: &JobTargets,
        jobs_json: String,
        handler: &dyn JobHandler,
        request: &FetchRequest,
        fetched: usize,
    ) -> Result<Settled> {
        if self.options.transactional {
            return self.handle_in_transaction(jobs, jobs_json, handler).await;
        }
        // As pg-boss: the handler has until the batch's longest expiration (at least a second).
        let max_expire = jobs
            .iter()
            .map(|j| j.expire_seconds)
            .max()
            .unwrap_or(0)
            .max(1);
        let mut handling = handler.handle(jobs_json);
        match self
            .answer_in_time(jobs, targets, &mut handling, max_expire)
            .await
        {
            Some(HandlerOutcome::Completed(output))
                if !self.options.per_job_results && self.carries(request, fetched) =>
            {
                Ok(Settled::Carry(if jobs.len() == 1 { output } else { None }))
            }
            Some(outcome) => self.settle(jobs, outcome).await,
            None => self.overrun(jobs, targets, max_expire, handling).await,
        }
    }

    /// Whether a completed batch is left for the next claim to complete: only when the worker
    /// claims again at once (it bursts and is not stopping) and that claim can take it.
    fn carries(&self, request: &FetchRequest, fetched: usize) -> bool {
        let (ctx, shared) = (self.ctx, self.shared);
        let queue = ctx.queues.get(&shared.name);
        !shared.stopping.load(Ordering::SeqCst)
            && ctx.local_groups.is_none()
            && crate::ops::fetch::completes_with_claim(&ctx.db, self.queue, request)
            && super::bursting(self.options, fetched as i64, queue.as_deref().map(|q| &**q))
    }

    /// The handler's answer, unless it outruns `max_expire` seconds; its jobs are touched meanwhile
    /// when they have a heartbeat.
    pub(super) async fn answer_in_time(
        &self,
        jobs: &[ClaimedJob],
        targets: &JobTargets,
        handling: &mut HandlerFuture,
        max_expire: i32,
    ) -> Option<HandlerOutcome> {
        let within_expiration = self
            .ctx
            .clock
            .timeout(Duration::from_secs(max_expire as u64), handling);
        // The shortest heartbeat in the batch sets the pace, so no job in it goes stale.
        let heartbeat = jobs
            .iter()
            .filter_map(|j| j.heartbeat_seconds)
            .filter(|s| *s > 0)
            .min();
        let answered = match heartbeat {
            None => within_expiration.await,
            Some(seconds) => {
                let refresh = self
                    .options
                    .heartbeat_refresh_seconds
                    .unwrap_or(seconds as f64 / 2.0);
                let every = Duration::from_secs_f64(refresh);
                tokio::select! {
                    answered = within_expiration => answered,
                    never = heartbeat::keep_alive(self.ctx, self.queue, targets, every) => match never {},
                }
            }
        };
        answered.ok()
    }

    /// Settles the batch as the handler answered, through the instance's completer (with other
    /// workers' settles on the queue).
    async fn settle(&self, jobs: &[ClaimedJob], outcome: HandlerOutcome) -> Result<Settled> {
        let ctx = self.ctx;
        let whole = |status, output: Option<&str>| -> Vec<JobSettle> {
            jobs.iter()
                .map(|job| JobSettle {
                    id: job.id,
                    retry_count: Some(job.retry_count),
                    status,
                    output: output.map(str::to_string),
                })
                .collect()
        };
        let settle = |items| ctx.completer.settle(&ctx.db, self.queue, items);
        match outcome {
            HandlerOutcome::PerJob(results) => {
                let plan = PerJobPlan::new(jobs, results);
                let each = settle(plan.settles.clone()).await?;
                Ok(Settled::Each(plan, each))
            }
            HandlerOutcome::Completed(_) if self.options.per_job_results => {
                let error = error_output(NOT_A_RESULT_LIST);
                settle(whole(JobResultStatus::Failed, Some(&error))).await?;
                Ok(Settled::Failed)
            }
            HandlerOutcome::Completed(output) => {
                let output = if jobs.len() == 1 { output } else { None };
                let done = settle(whole(JobResultStatus::Completed, output.as_deref())).await?;
                Ok(Settled::Completed {
                    affected: done.completed.len() as i64,
                })
            }
            HandlerOutcome::Failed(error) => {
                // A handler that threw nothing (undefined or null) leaves no output, as in pg-boss.
                let output = Some(error.as_str()).filter(|e| *e != "null");
                settle(whole(JobResultStatus::Failed, output)).await?;
                Ok(Settled::Failed)
            }
        }
    }

    /// The handler outran its batch's expiration: the jobs fail now, and the worker waits for
    /// the handler to give up.
    pub(super) async fn overrun(
        &self,
        jobs: &[ClaimedJob],
        targets: &JobTargets,
        max_expire: i32,
        mut handling: HandlerFuture,
    ) -> Result<Settled> {
        let ctx = self.ctx;
        let settled = self
            .fail_overrun(targets, max_expire)
            .await
            .map(|_| Settled::Failed);
        // The jobs are no longer this worker's (a retry may be someone else's already): its wip
        // counts none while it waits for the handler to give up.
        self.forget_jobs();
        let name = &self.shared.name;
        ctx.overruns
            .record(&ctx.db, name, &targets.ids, i64::from(max_expire))
            .await;
        // As in pg-boss, spies hear of the failure now, not once the handler gives up.
        self.report_settle(jobs, &settled).await;
        self.hold_while_running(&mut handling).await;
        settled.map(|_| Settled::Reported)
    }

    /// Fails a batch whose handler outran `max_expire` seconds, after telling the handler through
    /// its jobs' signals (the binding listens for `batchExpired`), in pg-boss's order.
    async fn fail_overrun(&self, targets: &JobTargets, max_expire: i32) -> Result<CommandResponse> {
        self.ctx.events.emit(Event::BatchExpired {
            ids: targets.ids.clone(),
        });
        let error = error_output(&format!("handler execution exceeded {max_expire}s"));
        settle::fail(&self.ctx.db, None, self.queue, targets, Some(&error)).await
    }

    /// Holds the worker while a handler that outran its expiration keeps running, as pg-boss
    /// does, so `localConcurrency` bounds the handlers actually running and the worker does not
    /// fetch a retry of the same job beside it. Stopping the worker ends the wait.
    async fn hold_while_running(&self, handling: &mut HandlerFuture) {
        let shared = self.shared;
        while !shared.stopping.load(Ordering::SeqCst) {
            tokio::select! {
                _ = &mut *handling => return,
                // notifyWorker() wakes this too; only a stop ends the hold.
                _ = shared.wake.notified() => {}
            }
        }
    }

    /// Tells the JS side how a settle left the batch: that it ended, while settle reports are
    /// on, and the spies what it did, when its queue is spied on.
    async fn report_settle(&self, jobs: &[ClaimedJob], settled: &Result<Settled>) {
        let ctx = self.ctx;
        let ended = !matches!(settled, Ok(Settled::Reported | Settled::Carry(_)));
        if let (true, Some(first)) = (ended, jobs.first()) {
            if ctx.settle_reports.load(Ordering::Relaxed) {
                ctx.events.emit(Event::BatchSettled {
                    queue: self.queue.name.clone(),
                    id: first.id,
                    retry_count: first.retry_count,
                    error: settled.as_ref().err().map(|err| err.message.clone()),
                });
            }
        }
        if !ctx.spies.watching(&self.queue.name) {
            return;
        }
        let settle = match settled {
            // Reported once the next claim has completed it.
            Ok(Settled::Reported | Settled::Carry(_)) => return,
            Ok(Settled::Completed { affected }) => Settle::Completed {
                affected: *affected,
            },
            Ok(Settled::Failed) => Settle::Failed,
            Ok(Settled::Each(plan, each)) => Settle::Each { plan, each },
            Err(_) => Settle::Unknown,
        };
        spies::report(&ctx.db, self.queue, ctx.events.as_ref(), jobs, settle).await;
    }
}
