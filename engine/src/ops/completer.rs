//! The instance's completer: the settles of all its workers on one queue share statements. Each
//! queue has a lane (a task fed by a channel) with a statement or two in flight; what workers hand
//! it meanwhile goes out together in the next one, so workers finishing at about the same time
//! cost one statement and one commit per round instead of one each, while a lone settle goes out
//! at once. Every worker still gets its own answer (the jobs of its batch the statement settled),
//! and only once the statement has committed, so it fetches its next batch after that.
//!
//! A round whose jobs are all completed, or all failed, with one output goes out as the fenced
//! complete or fail a worker sends alone; any other round as one job-by-job settle
//! ([`settle::settle_each`]). Every job stays fenced to the attempt its worker fetched.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::error::{Error, ErrorCode, Result};
use crate::model::settle::{JobResultStatus, JobSettle};
use crate::model::targets::JobTargets;
use crate::ops::queues::Queue;
use crate::ops::settle::{self, SettledEach};
use crate::sql::Db;

/// Jobs per statement at most; a round stops taking settles past it.
const MAX_JOBS: usize = 1000;
/// Statements a lane may have in flight at once: settles handed over meanwhile wait for the next.
const STATEMENTS_PER_LANE: usize = 2;

/// One worker's settle: each job of its batch with its status and output.
struct Pending {
    items: Vec<JobSettle>,
    reply: oneshot::Sender<Result<SettledEach>>,
}

/// What a lane settles with: the pool and the queue (its statements).
struct Lane {
    db: Db,
    queue: Arc<Queue>,
}

/// A lane's queue table (a queue recreated with another table gets a new lane) and its channel.
struct LaneHandle {
    table: String,
    sender: mpsc::UnboundedSender<Pending>,
}

/// The instance's lanes, one per queue, created on first use and ended by `close()`.
#[derive(Default)]
pub struct Completer {
    lanes: Mutex<HashMap<String, LaneHandle>>,
}

impl Completer {
    /// Settles `items` (each id once, fenced to its attempt), in a statement shared with the other
    /// settles of the queue waiting at the time; answers which of these jobs it completed, failed
    /// and dead-lettered, once committed.
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
        self.lane(db, queue)
            .send(Pending { items, reply })
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Ends every lane once it has answered what it holds (at `stop()`, after the workers).
    pub fn close(&self) {
        self.lanes.lock().unwrap().clear();
    }

    fn lane(&self, db: &Db, queue: &Arc<Queue>) -> mpsc::UnboundedSender<Pending> {
        let mut lanes = self.lanes.lock().unwrap();
        let open = lanes
            .get(queue.name.as_str())
            .filter(|l| l.table == queue.table && !l.sender.is_closed());
        if let Some(lane) = open {
            return lane.sender.clone();
        }
        let lane = Lane {
            db: db.clone(),
            queue: queue.clone(),
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run_lane(Arc::new(lane), receiver));
        let handle = LaneHandle {
            table: queue.table.clone(),
            sender: sender.clone(),
        };
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

async fn run_lane(lane: Arc<Lane>, mut receiver: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(STATEMENTS_PER_LANE));
    // A settle taken from the channel that did not fit in the last round.
    let mut held: Option<Pending> = None;
    loop {
        let first = match held.take() {
            Some(pending) => pending,
            None => match receiver.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // What arrived while waiting for the slot goes in the same statement.
        let mut ids: HashSet<Uuid> = first.items.iter().map(|i| i.id).collect();
        let mut round = vec![first];
        while ids.len() < MAX_JOBS {
            match receiver.try_recv() {
                // A job settled twice in one round could not be told apart in the answer.
                Ok(pending) if pending.items.iter().all(|i| !ids.contains(&i.id)) => {
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
        let lane = lane.clone();
        tokio::spawn(async move {
            settle_round(&lane, round).await;
            drop(slot);
        });
    }
}

/// Settles the round in one statement and answers every worker. When the statement fails, each
/// worker's settle is tried on its own, so only the one at fault sees the error.
async fn settle_round(lane: &Lane, round: Vec<Pending>) {
    if round.len() == 1 {
        let pending = round.into_iter().next().expect("one settle");
        let answer = settle_items(lane, &pending.items).await;
        let _ = pending.reply.send(answer);
        return;
    }
    let items: Vec<JobSettle> = round.iter().flat_map(|p| p.items.clone()).collect();
    match settle_items(lane, &items).await {
        Ok(settled) => {
            for pending in round {
                let _ = pending.reply.send(Ok(share(&settled, &pending.items)));
            }
        }
        Err(_) => {
            for pending in round {
                let answer = settle_items(lane, &pending.items).await;
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

/// One statement for `items`: the fenced complete or fail when every job is settled the same way
/// with the same output, else a job-by-job settle.
async fn settle_items(lane: &Lane, items: &[JobSettle]) -> Result<SettledEach> {
    let (db, queue) = (&lane.db, &*lane.queue);
    let first = &items[0];
    let uniform = items
        .iter()
        .all(|i| i.status == first.status && i.output == first.output);
    if !uniform || first.status == JobResultStatus::DeadLetter {
        return settle::settle_each(db, queue, items).await;
    }
    let targets = JobTargets {
        ids: items.iter().map(|i| i.id).collect(),
        attempts: Some(
            items
                .iter()
                .map(|i| format!("{}:{}", i.id, i.retry_count))
                .collect(),
        ),
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
