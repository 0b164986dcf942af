//! Settling jobs: `complete()`, `fail()`, and a batch settled job by job (a `perJobResults`
//! handler's answer).

use uuid::Uuid;

use crate::error::Result;
use crate::model::settle::JobSettle;
use crate::model::targets::{CommandResponse, JobTargets};
use crate::ops::queues::Queue;
use crate::sql::exec::{CallerDb, Exec, Handle, Param, Tx};
use crate::sql::job_statements::JobStatement;
use crate::sql::settle::Reinsert;
use crate::sql::{Db, Statements};

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
    let sql = which.cached(&queue.statements, &db.sql, queue);
    run(db.exec_for(caller), &sql, queue, targets, output).await
}

/// [`complete`] through any executor (a transactional worker's transaction), active jobs only.
pub async fn complete_through(
    at: Exec<'_>,
    sql: &Statements,
    queue: &Queue,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    let which = JobStatement::Complete {
        include_queued: false,
        fenced: targets.fenced(),
    };
    let statement = which.cached(&queue.statements, sql, queue);
    run(at, &statement, queue, targets, output).await
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
    fail_through(db.exec_for(caller), &db.sql, queue, targets, output).await
}

/// [`fail`] through any executor.
pub async fn fail_through(
    at: Exec<'_>,
    sql: &Statements,
    queue: &Queue,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    let fenced = targets.fenced();
    if sql.splits_mutations() {
        let removal = JobStatement::FailRemoval { fenced }.cached(&queue.statements, sql, queue);
        let removed = split_failure(
            at,
            sql,
            &queue.table,
            &removal,
            params(queue, targets, output),
        )
        .await?;
        return Ok(CommandResponse {
            jobs: targets.ids.clone(),
            affected: removed.ids.len() as i64,
            settled: removed.ids,
        });
    }
    let statement = JobStatement::Fail { fenced }.cached(&queue.statements, sql, queue);
    run(at, &statement, queue, targets, output).await
}

/// The jobs a split failure removed and wrote back.
#[derive(Debug, Default)]
pub struct Removed {
    pub ids: Vec<Uuid>,
    /// Those that failed for good whatever their retries (dead-lettered by the caller's ask).
    pub terminal: Vec<Uuid>,
}

/// A failure in steps (see `sql::settle::split_removal`), for a backend that refuses to change a
/// table twice in one statement: run in a transaction of ours when `at` is our pool, else inline
/// in the transaction `at` is already in (ours or the caller's), as pg-boss does.
pub async fn split_failure(
    at: Exec<'_>,
    sql: &Statements,
    table: &str,
    removal: &str,
    params: Vec<Param>,
) -> Result<Removed> {
    let Some(pool) = at.own_pool() else {
        return remove_and_reinsert(at, sql, table, removal, params).await;
    };
    let tx = Tx::begin(&Handle::Pool(pool.clone())).await?;
    let exec = Exec::tx(&tx).with_mode(at.mode());
    let removed = remove_and_reinsert(exec, sql, table, removal, params).await;
    tx.finish(removed).await
}

async fn remove_and_reinsert(
    at: Exec<'_>,
    sql: &Statements,
    table: &str,
    removal: &str,
    params: Vec<Param>,
) -> Result<Removed> {
    let (carried, ids, terminal): (String, Vec<Uuid>, Vec<Uuid>) =
        at.fetch_one(removal, params).await?;
    if ids.is_empty() {
        return Ok(Removed::default());
    }
    let first = sql.failing.reinsert(table, Reinsert::First);
    let written: Vec<(Uuid, bool)> = at
        .fetch_all(&first, vec![Param::text(carried.as_str())])
        .await?;
    let mut failed: Vec<Uuid> = written
        .iter()
        .filter(|(_, f)| *f)
        .map(|(id, _)| *id)
        .collect();
    if written.len() < ids.len() {
        // A policy's unique index refused some of the retries: those fail instead.
        let fallback = sql.failing.reinsert(table, Reinsert::Fallback);
        let first_ids = written.iter().map(|(id, _)| *id).collect();
        let refused: Vec<(Uuid,)> = at
            .fetch_all(
                &fallback,
                vec![Param::text(carried.as_str()), Param::Uuids(first_ids)],
            )
            .await?;
        failed.extend(refused.into_iter().map(|(id,)| id));
    }
    if !failed.is_empty() {
        let dead_letter = sql.failing.reinsert(table, Reinsert::DeadLetter);
        at.execute(
            &dead_letter,
            vec![Param::text(carried.as_str()), Param::Uuids(failed)],
        )
        .await?;
    }
    Ok(Removed { ids, terminal })
}

/// `complete`'s and `fail`'s parameters.
fn params(queue: &Queue, targets: &JobTargets, output: Option<&str>) -> Vec<Param> {
    vec![
        Param::text(queue.name.as_str()),
        Param::Uuids(targets.ids.clone()),
        Param::Text(output.map(str::to_string)),
        Param::Texts(targets.attempts.clone()),
    ]
}

async fn run(
    at: Exec<'_>,
    sql: &str,
    queue: &Queue,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    let (affected, settled): (i64, Vec<Uuid>) =
        at.fetch_one(sql, params(queue, targets, output)).await?;
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
    if db.sql.splits_mutations() {
        return settle_each_split(db, queue, params).await;
    }
    let sql = JobStatement::SettleEach.cached(&queue.statements, &db.sql, queue);
    let (completed, failed, dead_lettered): (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>) =
        db.exec().fetch_one(&sql, params).await?;
    Ok(SettledEach {
        completed,
        failed,
        dead_lettered,
    })
}

/// [`settle_each`] in steps, for a backend that refuses to change a table twice in one statement:
/// the completions, then the failures as a split failure, in one transaction.
async fn settle_each_split(db: &Db, queue: &Queue, params: Vec<Param>) -> Result<SettledEach> {
    let completions = JobStatement::SettleEachCompletions.cached(&queue.statements, &db.sql, queue);
    let removal = JobStatement::SettleEachRemoval.cached(&queue.statements, &db.sql, queue);
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    let settled = async {
        let completed: Vec<(Uuid,)> = exec.fetch_all(&completions, params.clone()).await?;
        let removed = remove_and_reinsert(exec, &db.sql, &queue.table, &removal, params).await?;
        Ok::<_, crate::error::Error>((completed, removed))
    }
    .await;
    let (completed, removed) = tx.finish(settled).await?;
    let (dead_lettered, failed) = removed
        .ids
        .into_iter()
        .partition(|id| removed.terminal.contains(id));
    Ok(SettledEach {
        completed: completed.into_iter().map(|(id,)| id).collect(),
        failed,
        dead_lettered,
    })
}
