//! The job calls: send, insert, fetch, settle, the commands by id, reads and edits. Each takes
//! pg-boss's `db` option: with a caller's handle, its statements run inside the caller's transaction.

use crate::config::js::Options;
use crate::ensure;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{ErrorEvent, Event};
use crate::model::names::assert_queue_name;
use crate::ops;
use crate::ops::coalesce::SendCoalescer;
use crate::ops::commands::{self, Stored};
use crate::ops::jobs::{CommandResponse, FetchRequest, JobTargets};
use crate::ops::queues::QueueCache;
use crate::sql::exec::{CallerDb, Exec};
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

use super::Boss;

impl Boss {
    pub async fn send(
        &self,
        name: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<Option<Uuid>> {
        self.send_in(None, name, data, options).await
    }

    /// The job calls that take pg-boss's `db` option: with `Some` handle, the same calls with
    /// their statements run through the caller's database handle, inside whatever transaction it
    /// holds; with `None`, on the pool as usual.
    pub fn through<'a>(&'a self, db: Option<&'a dyn CallerDb>) -> Through<'a> {
        Through { boss: self, db }
    }

    pub(super) async fn send_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<Option<Uuid>> {
        let pool = self.started_pool()?;
        match caller {
            None => {
                send_to(
                    pool,
                    self.config.schema.clone(),
                    self.queues.clone(),
                    self.sends.clone(),
                    name.to_string(),
                    data,
                    options,
                )
                .await
            }
            Some(db) => {
                let (data, options) = ops::jobs::prepare_send(data, options)?;
                let queue = self.queue(&pool, name).await?;
                ops::jobs::send(
                    &pool,
                    Some(db),
                    self.schema(),
                    &queue,
                    &self.sends,
                    data,
                    options,
                )
                .await
            }
        }
    }

    pub async fn subscribe(&self, event: &str, name: &str) -> Result<()> {
        crate::ops::pubsub::subscribe(&self.started_pool()?, self.schema(), event, name).await
    }

    pub async fn unsubscribe(&self, event: &str, name: &str) -> Result<()> {
        crate::ops::pubsub::unsubscribe(&self.started_pool()?, self.schema(), event, name).await
    }

    /// `publish()`: sends the job to every queue subscribed to `event`, all at once. Answers the
    /// queues whose send failed, with why; a subscriber whose queue is gone is skipped, as pg-boss
    /// skips it.
    pub async fn publish(
        &self,
        event: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<PublishReport> {
        self.publish_in(None, event, data, options).await
    }

    /// With a caller's db the sends run one after another through it: they share its one
    /// connection and transaction anyway.
    pub(super) async fn publish_in(
        &self,
        caller: Option<&dyn CallerDb>,
        event: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<PublishReport> {
        let pool = self.started_pool()?;
        let queues = crate::ops::pubsub::subscribers(&pool, self.schema(), event).await?;
        let mut outcomes = Vec::with_capacity(queues.len());
        if let Some(db) = caller {
            for (index, queue) in queues.iter().enumerate() {
                outcomes.push((
                    index,
                    self.send_in(Some(db), queue, data.clone(), options.clone())
                        .await,
                ));
            }
        } else {
            let mut sends = tokio::task::JoinSet::new();
            for (index, queue) in queues.iter().enumerate() {
                let send = send_to(
                    pool.clone(),
                    self.config.schema.clone(),
                    self.queues.clone(),
                    self.sends.clone(),
                    queue.clone(),
                    data.clone(),
                    options.clone(),
                );
                sends.spawn(async move { (index, send.await) });
            }
            while let Some(joined) = sends.join_next().await {
                outcomes.push(
                    joined.map_err(|e| Error::internal(format!("publish task failed: {e}")))?,
                );
            }
        }
        let mut failures = Vec::new();
        let mut created = Vec::new();
        for (index, sent) in outcomes {
            match sent {
                Ok(Some(id)) => created.push((queues[index].clone(), id)),
                Err(err) if err.code != ErrorCode::QueueNotFound => {
                    failures.push((queues[index].clone(), err))
                }
                _ => {}
            }
        }
        failures.sort_by(|a, b| a.0.cmp(&b.0));
        created.sort();
        Ok(PublishReport {
            subscribers: queues.len(),
            failures,
            sent: created,
        })
    }

    pub async fn insert(
        &self,
        name: &Value,
        jobs_list: &[Value],
        return_id: bool,
    ) -> Result<Option<Vec<Uuid>>> {
        self.insert_in(None, name, jobs_list, return_id).await
    }

    pub(super) async fn insert_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        jobs_list: &[Value],
        return_id: bool,
    ) -> Result<Option<Vec<Uuid>>> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        ops::jobs::insert(
            via(&pool, caller),
            self.schema(),
            &queue,
            jobs_list,
            return_id,
        )
        .await
    }

    /// Fetched jobs as JSON text of an array.
    pub async fn fetch(&self, name: &Value, options: &Options) -> Result<String> {
        self.fetch_in(None, name, options).await
    }

    pub(super) async fn fetch_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        options: &Options,
    ) -> Result<String> {
        let pool = self.started_pool()?;
        ensure!(
            !matches!(name, Value::Null) && name.as_str() != Some(""),
            "missing queue name"
        );
        let request = FetchRequest::from_options(options)?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        Ok(
            ops::jobs::fetch(via(&pool, caller), self.schema(), &queue, &request)
                .await?
                .json(),
        )
    }

    pub async fn complete(
        &self,
        name: &Value,
        ids: &Value,
        data: &Value,
        include_queued: bool,
    ) -> Result<CommandResponse> {
        self.complete_in(None, name, ids, data, include_queued)
            .await
    }

    pub(super) async fn complete_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        ids: &Value,
        data: &Value,
        include_queued: bool,
    ) -> Result<CommandResponse> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let targets = JobTargets::from_value(ids, "complete")?;
        let queue = self.queue(&pool, name).await?;
        let output = ops::jobs::output_from_value(data);
        ops::jobs::complete(
            via(&pool, caller),
            self.schema(),
            &queue,
            &targets,
            output.as_deref(),
            include_queued,
        )
        .await
    }

    pub async fn fail(&self, name: &Value, ids: &Value, data: &Value) -> Result<CommandResponse> {
        self.fail_in(None, name, ids, data).await
    }

    pub(super) async fn fail_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        ids: &Value,
        data: &Value,
    ) -> Result<CommandResponse> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let targets = JobTargets::from_value(ids, "fail")?;
        let queue = self.queue(&pool, name).await?;
        ops::jobs::fail(
            via(&pool, caller),
            self.schema(),
            &queue,
            &targets,
            ops::jobs::output_from_value(data).as_deref(),
        )
        .await
    }

    /// cancel / resume / retry / deleteJob / touch: `command` names which.
    pub async fn job_command(
        &self,
        command: JobCommand,
        name: &Value,
        ids: &Value,
    ) -> Result<CommandResponse> {
        self.job_command_in(None, command, name, ids).await
    }

    pub(super) async fn job_command_in(
        &self,
        caller: Option<&dyn CallerDb>,
        command: JobCommand,
        name: &Value,
        ids: &Value,
    ) -> Result<CommandResponse> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let mut targets = JobTargets::from_value(ids, command.method())?;
        if matches!(command, JobCommand::Resume | JobCommand::Retry) {
            // These take plain ids: an attempt means nothing to a job that is not running.
            targets.attempts = None;
        }
        let queue = self.queue(&pool, name).await?;
        let schema = self.schema();
        let at = via(&pool, caller);
        // Counts are adjusted only for our own connection. Inside a caller's transaction the
        // queue row would stay locked for as long as the caller takes to commit, stalling the
        // supervisor; maintenance recounts anyway (pg-boss makes the same choice).
        let counted = caller.is_none();
        match command {
            JobCommand::Cancel => commands::cancel(at, schema, &queue, &targets).await,
            JobCommand::Retry => commands::retry(at, schema, &queue, &targets).await,
            JobCommand::Touch => commands::touch(at, schema, &queue, &targets).await,
            JobCommand::Resume => {
                let outcome = commands::resume(at, schema, &queue, &targets).await?;
                if counted {
                    // A resumed job stays in the total, as a live job now.
                    self.reduce_retained(&pool, &queue.name, 0, outcome.retained)
                        .await;
                }
                Ok(outcome.response)
            }
            JobCommand::Delete => {
                let outcome = commands::delete_jobs(at, schema, &queue, &targets).await?;
                if counted {
                    self.reduce_retained(&pool, &queue.name, outcome.retained, outcome.retained)
                        .await;
                }
                Ok(outcome.response)
            }
        }
    }

    /// Keeps a queue's cached counts in step after a command moved finished jobs out. The command
    /// has committed, so a failure here is reported, not returned; the next maintenance pass
    /// corrects the count anyway.
    pub(super) async fn reduce_retained(
        &self,
        pool: &PgPool,
        queue: &str,
        removed: i64,
        held: i64,
    ) {
        if removed == 0 && held == 0 {
            return;
        }
        if let Err(err) = commands::reduce_retained(pool, self.schema(), queue, removed, held).await
        {
            self.events
                .emit(Event::Error(ErrorEvent::of(&err).in_queue(queue, None)));
        }
    }

    /// deleteQueuedJobs / deleteStoredJobs / deleteAllJobs. `None` when a table was truncated
    /// (pg-boss answers null then), else how many jobs were deleted.
    pub async fn delete_stored_jobs(
        &self,
        name: Option<&Value>,
        which: Stored,
    ) -> Result<Option<i64>> {
        let pool = self.started_pool()?;
        let schema = self.schema();
        let Some(name) = name.filter(|n| !n.is_null()) else {
            ensure!(matches!(which, Stored::All), "Name is required");
            commands::truncate(&pool, schema, None).await?;
            return Ok(None);
        };
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        if matches!(which, Stored::All) && queue.partition {
            commands::truncate(&pool, schema, Some(&queue)).await?;
            return Ok(None);
        }
        let (deleted, retained) = commands::delete_stored(&pool, schema, &queue, which).await?;
        self.reduce_retained(&pool, &queue.name, deleted, retained)
            .await;
        Ok(Some(deleted))
    }

    pub async fn get_job_by_id(&self, name: &Value, id: &str) -> Result<Option<String>> {
        self.get_job_by_id_in(None, name, id).await
    }

    pub(super) async fn get_job_by_id_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        id: &str,
    ) -> Result<Option<String>> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        ops::jobs::get_job_by_id(via(&pool, caller), self.schema(), &queue, id).await
    }

    pub async fn find_jobs(&self, name: &Value, options: &Options) -> Result<String> {
        self.find_jobs_in(None, name, options).await
    }

    pub(super) async fn find_jobs_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        options: &Options,
    ) -> Result<String> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        ops::jobs::find_jobs(via(&pool, caller), self.schema(), &queue, options).await
    }

    /// `update()` (or, with `upsert`, `upsert()`): `request` is `{ name, data?, options? }`;
    /// answers pg-boss's UpdateResponse / UpsertResponse.
    pub async fn update(&self, request: &Value, upsert: bool) -> Result<Value> {
        self.update_in(None, request, upsert).await
    }

    pub(super) async fn update_in(
        &self,
        caller: Option<&dyn CallerDb>,
        request: &Value,
        upsert: bool,
    ) -> Result<Value> {
        let request = crate::ops::updates::check(request, upsert)?;
        let pool = self.started_pool()?;
        let queue = self.queue(&pool, request.name()).await?;
        if upsert {
            crate::ops::updates::upsert(&pool, caller, self.schema(), &queue, &request).await
        } else {
            crate::ops::updates::update(&pool, caller, self.schema(), &queue, &request).await
        }
    }

    /// `getBlockedKeys()`: a key_strict_fifo queue's keys held by a failed job.
    pub async fn get_blocked_keys(
        &self,
        name: &Value,
        limit: i64,
        after: Option<String>,
    ) -> Result<Vec<String>> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        crate::ops::updates::blocked_keys(&pool, self.schema(), &queue, limit, after.as_deref())
            .await
    }
}

/// The commands that act on jobs by id.
#[derive(Debug, Clone, Copy)]
pub enum JobCommand {
    Cancel,
    Resume,
    Retry,
    Delete,
    Touch,
}

impl JobCommand {
    pub fn method(self) -> &'static str {
        match self {
            JobCommand::Cancel => "cancel",
            JobCommand::Resume => "resume",
            JobCommand::Retry => "retry",
            JobCommand::Delete => "deleteJob",
            JobCommand::Touch => "touch",
        }
    }

    pub fn from_method(method: &str) -> Option<JobCommand> {
        [
            JobCommand::Cancel,
            JobCommand::Resume,
            JobCommand::Retry,
            JobCommand::Delete,
            JobCommand::Touch,
        ]
        .into_iter()
        .find(|c| c.method() == method)
    }
}

/// What `publish()` did: how many queues it sent to, the sends that failed and the jobs created.
pub struct PublishReport {
    pub subscribers: usize,
    pub failures: Vec<(String, Error)>,
    /// The jobs created, by queue (a queue's policy may have refused its job).
    pub sent: Vec<(String, Uuid)>,
}

/// A [`Boss`] whose job calls run their statements through a caller's database handle; made by
/// [`Boss::through`]. Queue lookups still use the engine's pool, as they do in pg-boss.
pub struct Through<'a> {
    boss: &'a Boss,
    db: Option<&'a dyn CallerDb>,
}

impl Through<'_> {
    pub async fn send(
        &self,
        name: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<Option<Uuid>> {
        self.boss.send_in(self.db, name, data, options).await
    }

    pub async fn insert(
        &self,
        name: &Value,
        jobs_list: &[Value],
        return_id: bool,
    ) -> Result<Option<Vec<Uuid>>> {
        self.boss
            .insert_in(self.db, name, jobs_list, return_id)
            .await
    }

    pub async fn fetch(&self, name: &Value, options: &Options) -> Result<String> {
        self.boss.fetch_in(self.db, name, options).await
    }

    pub async fn complete(
        &self,
        name: &Value,
        ids: &Value,
        data: &Value,
        include_queued: bool,
    ) -> Result<CommandResponse> {
        self.boss
            .complete_in(self.db, name, ids, data, include_queued)
            .await
    }

    pub async fn fail(&self, name: &Value, ids: &Value, data: &Value) -> Result<CommandResponse> {
        self.boss.fail_in(self.db, name, ids, data).await
    }

    pub async fn job_command(
        &self,
        command: JobCommand,
        name: &Value,
        ids: &Value,
    ) -> Result<CommandResponse> {
        self.boss.job_command_in(self.db, command, name, ids).await
    }

    pub async fn get_job_by_id(&self, name: &Value, id: &str) -> Result<Option<String>> {
        self.boss.get_job_by_id_in(self.db, name, id).await
    }

    pub async fn find_jobs(&self, name: &Value, options: &Options) -> Result<String> {
        self.boss.find_jobs_in(self.db, name, options).await
    }

    pub async fn update(&self, request: &Value, upsert: bool) -> Result<Value> {
        self.boss.update_in(self.db, request, upsert).await
    }

    pub async fn publish(
        &self,
        event: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<PublishReport> {
        self.boss.publish_in(self.db, event, data, options).await
    }
}

fn via<'a>(pool: &'a PgPool, caller: Option<&'a dyn CallerDb>) -> Exec<'a> {
    Exec::pool_or_caller(pool, caller)
}

/// One `send()`, owning what it uses so `publish()` can run several side by side.
async fn send_to(
    pool: PgPool,
    schema: String,
    cache: Arc<QueueCache>,
    sends: Arc<SendCoalescer>,
    name: String,
    data: Value,
    options: Option<Value>,
) -> Result<Option<Uuid>> {
    let (data, options) = ops::jobs::prepare_send(data, options)?;
    let queue = ops::queues::cached(&pool, &schema, &cache, &name).await?;
    ops::jobs::send(&pool, None, &schema, &queue, &sends, data, options).await
}
