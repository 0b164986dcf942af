//! Settling jobs: `complete()`, `fail()`, and a batch settled job by job (a `perJobResults`
//! handler's answer).

use uuid::Uuid;

use crate::error::Result;
use crate::model::settle::JobSettle;
use crate::model::targets::{CommandResponse, JobTargets};
use crate::ops::queues::Queue;
use crate::sql::exec::{CallerDb, Exec, Param};
use crate::sql::job_statements::JobStatement;
use crate::sql::Db;

/// Marks active jobs completed with `output` (JSON text). With `include_queued`, jobs that have
/// not started yet are completed too.
pub async fn complete(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    targets: &JobTargets,
    output: Option<&str>,
    include_queued: bool,
) -> Result<CommandResponse> {
    let which = JobStatement::Complete {
        include_queued,
        fenced: targets.fenced(),
    };
    let sql = which.cached(&queue.statements, db.schema(), queue);
    run(db.exec_for(caller), &sql, &queue.name, targets, output).await
}

/// [`complete`] through any executor (a transactional worker's transaction), active jobs only.
pub async fn complete_through(
    at: Exec<'_>,
    schema: &str,
    queue: &Queue,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    let which = JobStatement::Complete {
        include_queued: false,
        fenced: targets.fenced(),
    };
    let sql = which.cached(&queue.statements, schema, queue);
    run(at, &sql, &queue.name, targets, output).await
}

/// Fails jobs: each goes to `retry` while it has retries left, else to `failed` (and to its dead
/// letter queue).
pub async fn fail(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    fail_through(db.exec_for(caller), db.schema(), queue, targets, output).await
}

/// [`fail`] through any executor.
pub async fn fail_through(
    at: Exec<'_>,
    schema: &str,
    queue: &Queue,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    let which = JobStatement::Fail {
        fenced: targets.fenced(),
    };
    let sql = which.cached(&queue.statements, schema, queue);
    run(at, &sql, &queue.name, targets, output).await
}

async fn run(
    at: Exec<'_>,
    sql: &str,
    queue: &str,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    let params = vec![
        Param::text(queue),
        Param::Uuids(targets.ids.clone()),
        Param::Text(output.map(str::to_string)),
        Param::Texts(targets.attempts.clone()),
    ];
    let (affected, settled): (i64, Vec<Uuid>) = at.fetch_one(sql, params).await?;
    Ok(CommandResponse {
        jobs: targets.ids.clone(),
        affected,
        settled,
    })
}

/// The jobs a per-job settle changed, by what was asked of them; a job whose attempt was no longer
/// active is in none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettledEach {
    pub completed: Vec<Uuid>,
    /// Failed jobs, whether they went to `retry` or failed for good.
    pub failed: Vec<Uuid>,
    pub dead_lettered: Vec<Uuid>,
}

/// Settles every job with its own status and output in one statement, whatever the batch size,
/// each fenced to its attempt when it has one. Each id should appear once.
pub async fn settle_each(db: &Db, queue: &Queue, items: &[JobSettle]) -> Result<SettledEach> {
    if items.is_empty() {
        return Ok(SettledEach::default());
    }
    let sql = JobStatement::SettleEach.cached(&queue.statements, db.schema(), queue);
    let params = vec![
        Param::text(queue.name.as_str()),
        Param::Uuids(items.iter().map(|i| i.id).collect()),
        Param::NullableInt4s(items.iter().map(|i| i.retry_count).collect()),
        Param::Texts(Some(
            items
                .iter()
                .map(|i| i.status.as_str().to_string())
                .collect(),
        )),
        Param::NullableTexts(items.iter().map(|i| i.output.clone()).collect()),
    ];
    let (completed, failed, dead_lettered): (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>) =
        db.exec().fetch_one(&sql, params).await?;
    Ok(SettledEach {
        completed,
        failed,
        dead_lettered,
    })
}
