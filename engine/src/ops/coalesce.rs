//! Coalesced sends: concurrent `send()` calls on one queue share one INSERT. Each queue has a lane
//! (a task fed by a channel); a lane takes whatever sends are waiting when a statement slot is free
//! and inserts them together, so a burst of sends costs a round trip per batch instead of one per
//! job, while a lone send goes out at once. Every send still gets its own answer: the ids are
//! chosen here, so the ids the statement returns tell which jobs a policy or throttle refused.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::error::Result;
use crate::model::queue::QueueInfo;

/// Jobs per statement at most.
const MAX_BATCH: usize = 200;
/// Statements a lane may have in flight at once (the pool serves everything else too).
const STATEMENTS_PER_LANE: usize = 4;

struct Pending {
    /// The job as the insert statement's recordset takes it, with its id set.
    record: Value,
    id: Uuid,
    reply: oneshot::Sender<Result<Option<Uuid>>>,
}

/// The instance's lanes, one per queue (and table), created on first use and dropped by `close()`.
#[derive(Default)]
pub struct SendCoalescer {
    lanes: Mutex<HashMap<(String, String), mpsc::UnboundedSender<Pending>>>,
}

impl SendCoalescer {
    /// Inserts one job (`record`, a recordset entry) into `queue`; `None` when a policy or throttle
    /// refused it.
    pub async fn insert_one(
        &self,
        pool: &PgPool,
        schema: &str,
        queue: &QueueInfo,
        mut record: Value,
    ) -> Result<Option<Uuid>> {
        let id = match record.get("id") {
            None => {
                let id = Uuid::new_v4();
                record["id"] = Value::String(id.to_string());
                id
            }
            Some(given) => match given.as_str().map(Uuid::parse_str) {
                Some(Ok(id)) => id,
                // Not a uuid: left to PostgreSQL's cast, which words the error as pg-boss's does.
                _ => {
                    return crate::ops::jobs::insert_records(pool, schema, queue, &[record], true)
                        .await
                        .map(|ids| ids.first().copied())
                }
            },
        };
        let (reply, answer) = oneshot::channel();
        self.lane(pool, schema, queue)
            .send(Pending { record, id, reply })
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Ends every lane once it has answered what it holds (at `stop()`).
    pub fn close(&self) {
        self.lanes.lock().unwrap().clear();
    }

    fn lane(
        &self,
        pool: &PgPool,
        schema: &str,
        queue: &QueueInfo,
    ) -> mpsc::UnboundedSender<Pending> {
        let mut lanes = self.lanes.lock().unwrap();
        let key = (queue.name.clone(), queue.table.clone());
        if let Some(lane) = lanes.get(&key).filter(|l| !l.is_closed()) {
            return lane.clone();
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run_lane(
            pool.clone(),
            schema.to_string(),
            queue.clone(),
            receiver,
        ));
        lanes.insert(key, sender.clone());
        sender
    }
}

fn closed() -> crate::Error {
    crate::Error::new(
        crate::ErrorCode::NotStarted,
        "pg-boss is stopped: call start() to use it again",
    )
}

async fn run_lane(
    pool: PgPool,
    schema: String,
    queue: QueueInfo,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
) {
    let slots = Arc::new(Semaphore::new(STATEMENTS_PER_LANE));
    let (pool, schema, queue) = (Arc::new(pool), Arc::new(schema), Arc::new(queue));
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
                    let (pool, schema, queue) = (pool.clone(), schema.clone(), queue.clone());
                    tokio::spawn(async move {
                        insert_batch(&pool, &schema, &queue, vec![pending]).await
                    });
                }
                Err(_) => break,
            }
        }
        let (pool, schema, queue) = (pool.clone(), schema.clone(), queue.clone());
        tokio::spawn(async move {
            insert_batch(&pool, &schema, &queue, batch).await;
            drop(slot);
        });
    }
}

/// Inserts the batch in one statement and answers every send. When the statement fails, each job
/// is tried on its own, so only the send at fault sees the error.
async fn insert_batch(pool: &PgPool, schema: &str, queue: &QueueInfo, batch: Vec<Pending>) {
    let records: Vec<Value> = batch.iter().map(|p| p.record.clone()).collect();
    match crate::ops::jobs::insert_records(pool, schema, queue, &records, true).await {
        Ok(inserted) => {
            let inserted: HashSet<Uuid> = inserted.into_iter().collect();
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
                let answer = crate::ops::jobs::insert_records(
                    pool,
                    schema,
                    queue,
                    std::slice::from_ref(&pending.record),
                    true,
                )
                .await;
                let _ = pending.reply.send(answer.map(|ids| ids.first().copied()));
            }
        }
    }
}
