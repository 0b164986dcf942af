//! The job calls: send, insert, fetch, settle, the commands by id, reads and edits. Those that
//! take pg-boss's `db` option take `caller`: with a caller's handle, their statements run inside
//! the caller's transaction (queue lookups still use the engine's pool, as in pg-boss).

use uuid::Uuid;

pub use crate::model::targets::JobCommand;

use crate::error::ensure;
use crate::error::Result;
use crate::event::{ErrorEvent, Event};
use crate::model::fetch::FetchRequest;
use crate::model::find::FindJobsRequest;
use crate::model::job::{JobData, NewJob};
use crate::model::send::SendOptions;
use crate::model::targets::{CommandResponse, JobTargets, Stored};
use crate::model::update::{UpdateRequest, UpdateResponse};
use crate::ops;
use crate::sql::exec::CallerDb;
use crate::sql::Db;

use super::Boss;

impl Boss {
    /// `send()`: the new job's id, or `None` when a policy or throttle refused it.
    pub async fn send(
        &self,
        name: &str,
        data: impl Into<JobData>,
        options: SendOptions,
        caller: Option<&dyn CallerDb>,
    ) -> Result<Option<Uuid>> {
        let data = data.into();
        let db = self.started_db()?;
        let queue = self.queue(&db, name).await?;
        ops::send::send(&db, caller, &queue, &self.sends, data, options).await
    }

    /// Several `send()` calls made together (without a caller's db), each answered for itself as
    /// if made alone: their jobs still meet other sends in the queue's coalescer. Options that
    /// failed their checks arrive as that send's error.
    pub async fn send_each(
        &self,
        sends: Vec<(String, JobData, Result<SendOptions>)>,
    ) -> Vec<Result<Option<Uuid>>> {
        let each = sends.into_iter().map(|(name, data, options)| async move {
            self.send(&name, data, options?, None).await
        });
        futures_util::future::join_all(each).await
    }

    /// `insert()`: the new ids when `return_id` (and any were written).
    pub async fn insert(
        &self,
        name: &str,
        jobs: &[NewJob],
        return_id: bool,
        caller: Option<&dyn CallerDb>,
    ) -> Result<Option<Vec<Uuid>>> {
        let db = self.started_db()?;
        let queue = self.queue(&db, name).await?;
        ops::send::insert(&db, caller, &queue, jobs, return_id).await
    }

    /// `fetch()`: the claimed jobs as JSON text of an array.
    pub async fn fetch(
        &self,
        name: &str,
        request: &FetchRequest,
        caller: Option<&dyn CallerDb>,
    ) -> Result<String> {
        let db = self.started_db()?;
        let queue = self.queue(&db, name).await?;
        let batch = ops::fetch::fetch(&db, caller, &queue, request).await?;
        Ok(batch.json())
    }

    /// `complete()`: `output` is the JSON text stored on the jobs (`model::settle::output_from_value`).
    /// On our own connections, a complete of active jobs shares its statement with the queue's
    /// other settles of the moment (`ops::completer`); with `include_queued`, or inside the
    /// caller's transaction, it goes alone.
    pub async fn complete(
        &self,
        name: &str,
        targets: &JobTargets,
        output: Option<&str>,
        include_queued: bool,
        caller: Option<&dyn CallerDb>,
    ) -> Result<CommandResponse> {
        let db = self.started_db()?;
        let queue = self.queue(&db, name).await?;
        if caller.is_none() && !include_queued {
            return self.completer.complete(&db, &queue, targets, output).await;
        }
        ops::settle::complete(&db, caller, &queue, targets, output, include_queued).await
    }

    /// `fail()`: `output` is the JSON text stored on the jobs. On our own connections it shares
    /// its statement with the queue's other settles of the moment; inside the caller's
    /// transaction it goes alone.
    pub async fn fail(
        &self,
        name: &str,
        targets: &JobTargets,
        output: Option<&str>,
        caller: Option<&dyn CallerDb>,
    ) -> Result<CommandResponse> {
        let db = self.started_db()?;
        let queue = self.queue(&db, name).await?;
        if caller.is_none() {
            return self.completer.fail(&db, &queue, targets, output).await;
        }
        ops::settle::fail(&db, caller, &queue, targets, output).await
    }

    /// cancel / resume / retry / deleteJob / touch: `command` names which (its targets come from
    /// [`JobCommand::targets`]).
    pub async fn job_command(
        &self,
        command: JobCommand,
        name: &str,
        targets: &JobTargets,
        caller: Option<&dyn CallerDb>,
    ) -> Result<CommandResponse> {
        let db = self.started_db()?;
        let queue = self.queue(&db, name).await?;
        let outcome = ops::commands::run(&db, caller, &queue, command, targets).await?;
        // Counts are adjusted only for our own connection. Inside a caller's transaction the
        // queue row would stay locked for as long as the caller takes to commit, stalling the
        // supervisor; maintenance recounts anyway (pg-boss makes the same choice).
        if caller.is_none() {
            let held = outcome.retained;
            match command {
                // A resumed job stays in the total, as a live job now.
                JobCommand::Resume => self.reduce_retained(&db, &queue.name, 0, held).await,
                JobCommand::Delete => self.reduce_retained(&db, &queue.name, held, held).await,
                _ => {}
            }
        }
        Ok(outcome.response)
    }

    /// Keeps a queue's cached counts in step after a command moved finished jobs out. The command
    /// has committed, so a failure here is reported, not returned; the next maintenance pass
    /// corrects the count anyway.
    async fn reduce_retained(&self, db: &Db, queue: &str, removed: i64, held: i64) {
        if removed == 0 && held == 0 {
            return;
        }
        if let Err(err) = ops::commands::reduce_retained(db, queue, removed, held).await {
            self.events
                .emit(Event::Error(ErrorEvent::of(&err).in_queue(queue, None)));
        }
    }

    /// deleteQueuedJobs / deleteStoredJobs / deleteAllJobs (`None` for every queue, which only
    /// deleteAllJobs takes). `None` when a table was truncated (pg-boss answers null then), else
    /// how many jobs were deleted.
    pub async fn delete_stored_jobs(
        &self,
        name: Option<&str>,
        which: Stored,
    ) -> Result<Option<i64>> {
        let db = self.started_db()?;
        let Some(name) = name else {
            ensure!(matches!(which, Stored::All), "Name is required");
            ops::commands::truncate(&db, None).await?;
            return Ok(None);
        };
        let queue = self.queue(&db, name).await?;
        if matches!(which, Stored::All) && queue.partition {
            ops::commands::truncate(&db, Some(&queue)).await?;
            return Ok(None);
        }
        let (deleted, retained) = ops::commands::delete_stored(&db, &queue, which).await?;
        self.reduce_retained(&db, &queue.name, deleted, retained)
            .await;
        Ok(Some(deleted))
    }

    /// `getJobById()`: the job as JSON text, or `None` (always for no id, as a null id finds no job
    /// in pg-boss); an id that is not a uuid fails as PostgreSQL's cast fails (22P02).
    pub async fn get_job_by_id(
        &self,
        name: &str,
        id: Option<&str>,
        caller: Option<&dyn CallerDb>,
    ) -> Result<Option<String>> {
        let db = self.started_db()?;
        let queue = self.queue(&db, name).await?;
        ops::read::get_job_by_id(&db, caller, &queue, id).await
    }

    /// `findJobs()`: JSON text of an array of jobs.
    pub async fn find_jobs(
        &self,
        name: &str,
        request: &FindJobsRequest,
        caller: Option<&dyn CallerDb>,
    ) -> Result<String> {
        let db = self.started_db()?;
        let queue = self.queue(&db, name).await?;
        ops::read::find_jobs(&db, caller, &queue, request).await
    }

    /// `update()`, or with `upsert` `upsert()`.
    pub async fn update(
        &self,
        request: &UpdateRequest,
        upsert: bool,
        caller: Option<&dyn CallerDb>,
    ) -> Result<UpdateResponse> {
        let db = self.started_db()?;
        let queue = self.queue(&db, &request.name).await?;
        if upsert {
            ops::updates::upsert(&db, caller, &queue, request).await
        } else {
            ops::updates::update(&db, caller, &queue, request).await
        }
    }

    /// `getBlockedKeys()`: a key_strict_fifo queue's keys held by a failed job.
    pub async fn get_blocked_keys(
        &self,
        name: &str,
        limit: i64,
        after: Option<String>,
    ) -> Result<Vec<String>> {
        let db = self.started_db()?;
        let queue = self.queue(&db, name).await?;
        ops::updates::blocked_keys(&db, &queue, limit, after).await
    }
}
