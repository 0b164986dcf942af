//! Pub/sub calls: `subscribe()`, `unsubscribe()` and `publish()`.

use std::sync::Arc;

use uuid::Uuid;

use crate::error::{Error, ErrorCode, Result};
use crate::model::job::JobData;
use crate::model::send::SendOptions;
use crate::ops;
use crate::ops::coalesce::SendCoalescer;
use crate::ops::queues::QueueCache;
use crate::sql::exec::CallerDb;
use crate::sql::Db;

use super::Boss;

/// What `publish()` did: how many queues it sent to, the sends that failed and the jobs created.
pub struct PublishReport {
    /// How many queues are subscribed to the event.
    pub subscribers: usize,
    /// Those queues, by name.
    pub queues: Vec<String>,
    /// The queues whose send failed, with why, by queue name.
    pub failures: Vec<(String, Error)>,
    /// The jobs created, by queue (a queue's policy may have refused its job).
    pub sent: Vec<(String, Uuid)>,
    /// The subscribed queues that are gone, skipped.
    pub missing: Vec<String>,
}

impl Boss {
    /// `subscribe(event, name)`: jobs published under `event` are sent to queue `name` too.
    pub async fn subscribe(&self, event: &str, name: &str) -> Result<()> {
        ops::pubsub::subscribe(&self.started_db()?, event, name).await
    }

    /// The queues subscribed to `event`, as `publish()` reads them.
    pub async fn subscribers(&self, event: &str) -> Result<Vec<String>> {
        ops::pubsub::subscribers(&self.started_db()?, event).await
    }

    /// `unsubscribe(event, name)`.
    pub async fn unsubscribe(&self, event: &str, name: &str) -> Result<()> {
        ops::pubsub::unsubscribe(&self.started_db()?, event, name).await
    }

    /// `publish()`: sends the job to every queue subscribed to `event`, all at once (through a
    /// caller's db one after another: they share its one connection anyway). Answers the queues
    /// whose send failed, with why; a subscriber whose queue is gone is skipped, as pg-boss skips
    /// it. pg-boss checks the options in each send, so options it refuses fail every subscriber's
    /// send, not the publish: `options` is the outcome of that check.
    pub async fn publish(
        &self,
        event: &str,
        data: impl Into<JobData>,
        options: Result<SendOptions>,
        caller: Option<&dyn CallerDb>,
    ) -> Result<PublishReport> {
        let db = self.started_db()?;
        let data = data.into();
        let queues = ops::pubsub::subscribers(&db, event).await?;
        let outcomes = match options {
            Err(err) => queues.iter().map(|_| Err(err.clone())).collect(),
            Ok(options) if caller.is_some() => {
                let mut outcomes = Vec::with_capacity(queues.len());
                for queue in &queues {
                    let sent = self.send(queue, data.clone(), options.clone(), caller);
                    outcomes.push(sent.await);
                }
                outcomes
            }
            Ok(options) => self.send_to_all(&db, &queues, &data, &options).await?,
        };
        Ok(report(queues, outcomes))
    }

    /// One send per queue, side by side; the outcomes in the queues' order.
    async fn send_to_all(
        &self,
        db: &Db,
        queues: &[String],
        data: &JobData,
        options: &SendOptions,
    ) -> Result<Vec<Result<Option<Uuid>>>> {
        let mut sends = tokio::task::JoinSet::new();
        for (index, queue) in queues.iter().enumerate() {
            let send = send_owned(
                db.clone(),
                self.queues.clone(),
                self.sends.clone(),
                queue.clone(),
                data.clone(),
                options.clone(),
            );
            sends.spawn(async move { (index, send.await) });
        }
        let mut outcomes: Vec<Option<Result<Option<Uuid>>>> = queues.iter().map(|_| None).collect();
        while let Some(joined) = sends.join_next().await {
            let (index, sent) =
                joined.map_err(|e| Error::internal(format!("publish task failed: {e}")))?;
            outcomes[index] = Some(sent);
        }
        Ok(outcomes.into_iter().flatten().collect())
    }
}

/// The report of sends to `queues` that ended in `outcomes` (in the same order).
fn report(queues: Vec<String>, outcomes: Vec<Result<Option<Uuid>>>) -> PublishReport {
    let mut failures = Vec::new();
    let mut sent = Vec::new();
    let mut missing = Vec::new();
    for (queue, outcome) in queues.iter().zip(outcomes) {
        match outcome {
            Ok(Some(id)) => sent.push((queue.clone(), id)),
            Err(err) if err.code == ErrorCode::QueueNotFound => missing.push(queue.clone()),
            Err(err) => failures.push((queue.clone(), err)),
            Ok(None) => {}
        }
    }
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    sent.sort();
    missing.sort();
    PublishReport {
        subscribers: queues.len(),
        queues,
        failures,
        sent,
        missing,
    }
}

/// One `send()`, owning what it uses so `publish()` can run several side by side.
async fn send_owned(
    db: Db,
    cache: Arc<QueueCache>,
    sends: Arc<SendCoalescer>,
    name: String,
    data: JobData,
    options: SendOptions,
) -> Result<Option<Uuid>> {
    let queue = ops::queues::cached_in(&db, &cache, &name).await?;
    ops::send::send(&db, None, &queue, &sends, data, options).await
}
