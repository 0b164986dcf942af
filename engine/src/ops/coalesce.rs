//! Coalesced sends: concurrent `send()` calls on one queue share one INSERT. Each queue has a lane
//! (a task fed by a channel); a lane takes whatever sends are waiting when a statement slot is free
//! and inserts them together, so a burst of sends costs a round trip per batch instead of one per
//! job, while a lone send goes out at once. Every send still gets its own answer: the ids are
//! chosen here, so the ids the statement returns tell which jobs a policy or throttle refused.
//!
//! On a `notify` queue the statement also notifies the schema's channel; once it has committed,
//! the lane wakes this instance's own workers of the queue directly ([`LocalWakeup`]), a step
//! ahead of the notification, which reaches them through the server's listening session.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::error::Result;
use crate::model::job::{JobId, NewJob};
use crate::ops::insert::{insert_jobs, run_insert};
use crate::ops::queues::Queue;
use crate::sql::insert::{records_json, InsertShape};
use crate::sql::job_statements::JobStatement;
use crate::sql::Db;

/// Jobs per statement at most.
const MAX_BATCH: usize = 200;
/// Statements a lane may have in flight at once (the pool serves everything else too). Two keeps
/// a statement filling while the other runs; more in flight split the same sends into smaller
/// statements, each with its own commit and executor start-up, which measured slower.
const STATEMENTS_PER_LANE: usize = 2;

/// Wakes the instance's workers of a queue (by name) once jobs they can fetch now are committed.
pub type LocalWakeup = Arc<dyn Fn(&str) + Send + Sync>;

struct Pending {
    /// The job, with its id set.
    job: NewJob,
    id: Uuid,
    reply: oneshot::Sender<Result<Option<Uuid>>>,
}

/// What a lane inserts with: the pool, and the queue's insert statement (answering ids) as it was
/// rendered when the lane was made.
struct Lane {
    db: Db,
    sql: Arc<str>,
    queue: String,
    /// Whether the statement notifies (the queue's `notify` it was rendered with); then `wakeup`
    /// is called after each one that wrote a job that can run now.
    notify: bool,
    wakeup: Option<LocalWakeup>,
}

/// The instance's lanes, one per queue, created on first use and dropped by `close()`.
#[derive(Default)]
pub struct SendCoalescer {
    lanes: Mutex<HashMap<String, LaneHandle>>,
    wakeup: Option<LocalWakeup>,
}

/// A lane's statement and its channel. A lane serves a queue only while the queue, as now cached,
/// renders the same statement: one recreated with another table, or whose `notify` was turned on
/// or off (by this instance's `updateQueue()`, or another's, seen once the cache is refreshed),
/// gets a new lane, and the old one ends once it has answered what it holds.
struct LaneHandle {
    sql: Arc<str>,
    sender: mpsc::UnboundedSender<Pending>,
}

/// The form of the insert statement sends go through: answering ids, so each send learns whether a
/// policy or throttle refused its job.
const LANE_SHAPE: InsertShape = InsertShape {
    returning: true,
    by_key: false,
    slots: false,
};

impl SendCoalescer {
    /// Lanes that call `wakeup` after a notifying insert commits.
    pub fn with_wakeup(wakeup: LocalWakeup) -> SendCoalescer {
        SendCoalescer {
            lanes: Mutex::default(),
            wakeup: Some(wakeup),
        }
    }

    /// Inserts one job into `queue`; `None` when a policy or throttle refused it.
    pub async fn insert_one(
        &self,
        db: &Db,
        queue: &Queue,
        mut job: NewJob,
    ) -> Result<Option<Uuid>> {
        let id = match &job.options.id {
            None => {
                let id = Uuid::new_v4();
                job.options.id = Some(JobId::Uuid(id));
                id
            }
            Some(JobId::Uuid(id)) => *id,
            // Not a uuid: left to PostgreSQL's cast, which words the error as pg-boss's does.
            Some(JobId::Text(_)) => {
                let ids = insert_jobs(db, db.exec(), queue, &[job], true).await?;
                return Ok(ids.first().copied());
            }
        };
        let (reply, answer) = oneshot::channel();
        self.lane(db, queue)
            .send(Pending { job, id, reply })
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Ends every lane once it has answered what it holds (at `stop()`).
    pub fn close(&self) {
        self.lanes.lock().unwrap().clear();
    }

    fn lane(&self, db: &Db, queue: &Queue) -> mpsc::UnboundedSender<Pending> {
        let sql = JobStatement::Insert(LANE_SHAPE).cached(&queue.statements, &db.sql, queue);
        let mut lanes = self.lanes.lock().unwrap();
        let open = lanes
            .get(queue.name.as_str())
            .filter(|l| l.sql == sql && !l.sender.is_closed());
        if let Some(lane) = open {
            return lane.sender.clone();
        }
        let lane = Lane {
            db: db.clone(),
            sql: sql.clone(),
            queue: queue.name.clone(),
            notify: queue.notify,
            wakeup: self.wakeup.clone(),
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run_lane(Arc::new(lane), receiver));
        let handle = LaneHandle {
            sql,
            sender: sender.clone(),
        };
        lanes.insert(queue.name.clone(), handle);
        sender
    }
}

fn closed() -> crate::error::Error {
    crate::error::Error::new(
        crate::error::ErrorCode::NotStarted,
        "pg-boss is stopped: call start() to use it again",
    )
}

async fn run_lane(lane: Arc<Lane>, mut receiver: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(STATEMENTS_PER_LANE));
    while let Some(first) = receiver.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // What arrived while waiting for the slot goes in the same statement.
        let mut batch = vec![first];
        let mut ids: HashSet<Uuid> = batch.iter().map(|p| p.id).collect();
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                // A caller's id repeated within a batch could not be told apart in the answer.
                Ok(pending) if ids.insert(pending.id) => batch.push(pending),
                Ok(pending) => {
                    let lane = lane.clone();
                    tokio::spawn(async move { insert_batch(&lane, vec![pending]).await });
                }
                Err(_) => break,
            }
        }
        let lane = lane.clone();
        tokio::spawn(async move {
            insert_batch(&lane, batch).await;
            drop(slot);
        });
    }
}

/// Inserts the batch in one statement and answers every send. When the statement fails, each job
/// is tried on its own, so only the send at fault sees the error.
async fn insert_batch(lane: &Lane, batch: Vec<Pending>) {
    let records = records_json(batch.iter().map(|p| &p.job));
    match run_insert(lane.db.exec(), &lane.sql, &lane.queue, records, true).await {
        Ok(inserted) => {
            let inserted: HashSet<Uuid> = inserted.into_iter().collect();
            lane.wake_for(batch.iter().filter(|p| inserted.contains(&p.id)));
            for pending in batch {
                let _ = pending
                    .reply
                    .send(Ok(inserted.contains(&pending.id).then_some(pending.id)));
            }
        }
        Err(err) if batch.len() == 1 => {
            let _ = batch.into_iter().next().map(|p| p.reply.send(Err(err)));
        }
        Err(_) => {
            for pending in batch {
                let records = records_json([&pending.job]);
                let answer =
                    run_insert(lane.db.exec(), &lane.sql, &lane.queue, records, true).await;
                if matches!(answer, Ok(ref ids) if !ids.is_empty()) {
                    lane.wake_for(std::iter::once(&pending));
                }
                let _ = pending.reply.send(answer.map(|ids| ids.first().copied()));
            }
        }
    }
}

impl Lane {
    /// Wakes the queue's local workers when the statement notified for one of `written`: a job
    /// with no `startAfter` (the statement notifies for jobs that can run now).
    fn wake_for<'a>(&self, mut written: impl Iterator<Item = &'a Pending>) {
        let Some(wakeup) = self.wakeup.as_ref().filter(|_| self.notify) else {
            return;
        };
        if written.any(|p| p.job.options.start_after.is_none()) {
            wakeup(&self.queue);
        }
    }
}
