//! The instance's completer: the settles on one queue share statements, those of all its workers
//! and the application's own `complete()`/`fail()` calls. Each queue has a lane (a task fed by a
//! channel) with a statement or two in flight; what is handed to it meanwhile goes out together
//! in the next one, so settles arriving at about the same time cost one statement and one commit
//! per round instead of one each, while a lone settle goes out at once (nothing waits for a
//! timer). Every caller still gets its own answer (the jobs it named that the statement settled),
//! and only once the statement has committed: a worker fetches its next batch after that.
//!
//! A round whose jobs are all completed, or all failed, with one output and one kind of fence
//! goes out as the `complete`/`fail` statement a caller would send alone; any other round as one
//! job-by-job settle ([`settle::settle_each`]). A worker's jobs stay fenced to the attempts it
//! fetched; a call's jobs are settled as that call asked, fenced or not.
//!
//! A job is in one statement at a time: a settle naming a job of a statement in flight waits for
//! it, so it sees that statement's outcome as it would after it, and the two never wait on each
//! other's rows.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::{Error, ErrorCode, Result};
use crate::model::settle::{JobResultStatus, JobSettle};
use crate::model::targets::{CommandResponse, JobTargets};
use crate::ops::queues::Queue;
use crate::ops::settle::{self, SettledEach};
use crate::sql::Db;

/// Jobs per statement at most; a round stops taking settles past it.
const MAX_JOBS: usize = 1000;
/// Statements a lane may have in flight at once: settles handed over meanwhile wait for the next.
const STATEMENTS_PER_LANE: u32 = 2;

/// One caller's settle: each job with its status, output and fence.
struct Pending {
    /// Where the caller would have run it alone (the pool of the instance's current start).
    db: Db,
    items: Vec<JobSettle>,
    reply: oneshot::Sender<Result<SettledEach>>,
}

/// A lane's queue table (a queue recreated with another table gets a new lane), its channel and
/// its task.
struct LaneHandle {
    table: String,
    sender: mpsc::UnboundedSender<Pending>,
    task: JoinHandle<()>,
}

/// The instance's lanes, one per queue, created on first use and ended by `close()`.
#[derive(Default)]
pub struct Completer {
    lanes: Mutex<HashMap<String, LaneHandle>>,
}

impl Completer {
    /// Settles `items` (each id once), in a statement shared with the other settles of the queue
    /// waiting at the time; answers which of these jobs it completed, failed and dead-lettered,
    /// once committed.
    pub async fn settle(
        &self,
        db: &Db,
        queue: &Arc<Queue>,
        items: Vec<JobSettle>,
    ) -> Result<SettledEach> {
        if items.is_empty() {
            return Ok(SettledEach::default());
        }
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            db: db.clone(),
            items,
            reply,
        };
        self.lane(queue).send(pending).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// The application's `complete()` on our own connections, active jobs only (`includeQueued`
    /// and a caller's `db` go alone): answers as the statement alone would.
    pub async fn complete(
        &self,
        db: &Db,
        queue: &Arc<Queue>,
        targets: &JobTargets,
        output: Option<&str>,
    ) -> Result<CommandResponse> {
        self.settle_call(db, queue, targets, JobResultStatus::Completed, output)
            .await
    }

    /// The application's `fail()` on our own connections: answers as the statement alone would.
    pub async fn fail(
        &self,
        db: &Db,
        queue: &Arc<Queue>,
        targets: &JobTargets,
        output: Option<&str>,
    ) -> Result<CommandResponse> {
        self.settle_call(db, queue, targets, JobResultStatus::Failed, output)
            .await
    }

    async fn settle_call(
        &self,
        db: &Db,
        queue: &Arc<Queue>,
        targets: &JobTargets,
        status: JobResultStatus,
        output: Option<&str>,
    ) -> Result<CommandResponse> {
        let Some(items) = call_items(targets, status, output) else {
            return alone(db, queue, targets, status, output).await;
        };
        let settled = self.settle(db, queue, items).await?;
        let settled = match status {
            JobResultStatus::Completed => settled.completed,
            _ => settled.failed,
        };
        Ok(CommandResponse {
            jobs: targets.ids.clone(),
            affected: settled.len() as i64,
            settled,
        })
    }

    /// Ends every lane and waits until each has answered what it holds (at `stop()`, after the
    /// workers, before the pool closes).
    pub async fn close(&self) {
        let lanes: Vec<LaneHandle> = self.lanes.lock().unwrap().drain().map(|(_, l)| l).collect();
        for lane in lanes {
            drop(lane.sender);
            let _ = lane.task.await;
        }
    }

    fn lane(&self, queue: &Arc<Queue>) -> mpsc::UnboundedSender<Pending> {
        let mut lanes = self.lanes.lock().unwrap();
        let open = lanes
            .get(queue.name.as_str())
            .filter(|l| l.table == queue.table && !l.sender.is_closed());
        if let Some(lane) = open {
            return lane.sender.clone();
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        let handle = LaneHandle {
            table: queue.table.clone(),
            sender: sender.clone(),
            task: tokio::spawn(run_lane(queue.clone(), receiver)),
        };
        // A lane this replaces (its queue recreated) ends once its own settles are answered.
        lanes.insert(queue.name.clone(), handle);
        sender
    }
}

fn closed() -> Error {
    Error::new(
        ErrorCode::NotStarted,
        "pg-boss is stopped: call start() to use it again",
    )
}

/// A call's jobs as lane items, each (id, attempt) once; `None` when the call names one job at
/// two attempts (or at one no job can be at), which only its own statement answers exactly.
fn call_items(
    targets: &JobTargets,
    status: JobResultStatus,
    output: Option<&str>,
) -> Option<Vec<JobSettle>> {
    let mut attempts: HashMap<Uuid, Option<i32>> = HashMap::new();
    let mut items = Vec::with_capacity(targets.ids.len());
    for (id, retry_count) in targets.each_attempt()? {
        match attempts.insert(id, retry_count) {
            None => items.push(JobSettle {
                id,
                retry_count,
                status,
                output: output.map(str::to_string),
            }),
            Some(seen) if seen == retry_count => {}
            Some(_) => return None,
        }
    }
    Some(items)
}

/// A call's own `complete`/`fail` statement, as pg-boss sends it.
async fn alone(
    db: &Db,
    queue: &Queue,
    targets: &JobTargets,
    status: JobResultStatus,
    output: Option<&str>,
) -> Result<CommandResponse> {
    match status {
        JobResultStatus::Completed => {
            settle::complete(db, None, queue, targets, output, false).await
        }
        _ => settle::fail(db, None, queue, targets, output).await,
    }
}

async fn run_lane(queue: Arc<Queue>, mut receiver: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(STATEMENTS_PER_LANE as usize));
    // The jobs of the statements in flight.
    let busy: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
    // A settle taken from the channel that could not go in the last round.
    let mut held: Option<Pending> = None;
    loop {
        let first = match held.take() {
            Some(pending) => pending,
            None => match receiver.recv().await {
                Some(pending) => pending,
                None => break,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if overlaps(&busy, &first.items) {
            // Holding one slot, the others coming back means nothing else is in flight.
            match slots.acquire_many(STATEMENTS_PER_LANE - 1).await {
                Ok(others) => drop(others),
                Err(_) => break,
            }
        }
        // What arrived while waiting for the slot goes in the same statement.
        let mut ids: HashSet<Uuid> = first.items.iter().map(|i| i.id).collect();
        let mut round = vec![first];
        while ids.len() < MAX_JOBS {
            match receiver.try_recv() {
                // A job settled twice in one round could not be told apart in the answer.
                Ok(pending)
                    if pending.items.iter().all(|i| !ids.contains(&i.id))
                        && !overlaps(&busy, &pending.items) =>
                {
                    ids.extend(pending.items.iter().map(|i| i.id));
                    round.push(pending);
                }
                Ok(pending) => {
                    held = Some(pending);
                    break;
                }
                Err(_) => break,
            }
        }
        busy.lock().unwrap().extend(ids.iter().copied());
        let (queue, busy) = (queue.clone(), busy.clone());
        tokio::spawn(async move {
            settle_round(&queue, round).await;
            let mut busy = busy.lock().unwrap();
            for id in &ids {
                busy.remove(id);
            }
            drop(busy);
            drop(slot);
        });
    }
    // Every round has answered once all the slots are back.
    let _ = slots.acquire_many(STATEMENTS_PER_LANE).await;
}

fn overlaps(busy: &Mutex<HashSet<Uuid>>, items: &[JobSettle]) -> bool {
    let busy = busy.lock().unwrap();
    !busy.is_empty() && items.iter().any(|i| busy.contains(&i.id))
}

/// Settles the round in one statement and answers every caller. When the server refuses the
/// statement, each caller's settle is tried on its own, so only the one at fault sees the error.
async fn settle_round(queue: &Queue, round: Vec<Pending>) {
    if round.len() == 1 {
        let pending = round.into_iter().next().expect("one settle");
        let answer = settle_items(&pending.db, queue, &pending.items).await;
        let _ = pending.reply.send(answer);
        return;
    }
    // The newest caller's: after a restart, an older one may hold the pool stop() closed.
    let db = round.last().expect("a settle").db.clone();
    let items: Vec<JobSettle> = round.iter().flat_map(|p| p.items.clone()).collect();
    match settle_items(&db, queue, &items).await {
        Ok(settled) => {
            for pending in round {
                let _ = pending.reply.send(Ok(share(&settled, &pending.items)));
            }
        }
        // The statement may have committed (the connection went before its answer came): sending
        // a job's settle again could fail it twice, unless every job is fenced to its attempt.
        Err(err) if err.sql_state.is_none() && items.iter().any(|i| i.retry_count.is_none()) => {
            for pending in round {
                let _ = pending.reply.send(Err(err.clone()));
            }
        }
        Err(_) => {
            for pending in round {
                let answer = settle_items(&pending.db, queue, &pending.items).await;
                let _ = pending.reply.send(answer);
            }
        }
    }
}

/// The part of `settled` that is about `items`.
fn share(settled: &SettledEach, items: &[JobSettle]) -> SettledEach {
    let mine: HashSet<Uuid> = items.iter().map(|i| i.id).collect();
    let pick = |ids: &[Uuid]| ids.iter().copied().filter(|id| mine.contains(id)).collect();
    SettledEach {
        completed: pick(&settled.completed),
        failed: pick(&settled.failed),
        dead_lettered: pick(&settled.dead_lettered),
    }
}

/// One statement for `items`: the `complete` or `fail` statement when every job is settled the
/// same way, with the same output and the same kind of fence, else a job-by-job settle.
async fn settle_items(db: &Db, queue: &Queue, items: &[JobSettle]) -> Result<SettledEach> {
    let first = &items[0];
    let fenced = first.retry_count.is_some();
    let uniform = items.iter().all(|i| {
        i.status == first.status && i.output == first.output && i.retry_count.is_some() == fenced
    });
    if !uniform || first.status == JobResultStatus::DeadLetter {
        return settle::settle_each(db, queue, items).await;
    }
    let attempts = items
        .iter()
        .map(|i| i.retry_count.map(|count| format!("{}:{count}", i.id)))
        .collect();
    let targets = JobTargets {
        ids: items.iter().map(|i| i.id).collect(),
        attempts,
    };
    let output = first.output.as_deref();
    Ok(match first.status {
        JobResultStatus::Completed => SettledEach {
            completed: settle::complete(db, None, queue, &targets, output, false)
                .await?
                .settled,
            ..SettledEach::default()
        },
        _ => SettledEach {
            failed: settle::fail(db, None, queue, &targets, output)
                .await?
                .settled,
            ..SettledEach::default()
        },
    })
}
