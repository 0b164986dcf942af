//! Commands on existing jobs — cancel, resume, retry, delete, touch — and the bulk deletes.

use uuid::Uuid;

use crate::error::Result;
pub use crate::model::targets::Stored;
use crate::model::targets::{CommandResponse, JobCommand, JobTargets};
use crate::ops::queues::Queue;
use crate::sql::exec::{CallerDb, Exec, Param, Tx};
use crate::sql::job_statements::JobStatement;
use crate::sql::{Db, Statements};

/// What a command did: pg-boss's response, and how many of the jobs it moved out of the finished
/// ones the queue's `retained_count` held (see [`reduce_retained`]).
pub struct CommandOutcome {
    pub response: CommandResponse,
    pub retained: i64,
}

/// Runs `command` on the addressed jobs, through the caller's db when given.
pub async fn run(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    command: JobCommand,
    targets: &JobTargets,
) -> Result<CommandOutcome> {
    run_through(db.exec_for(caller), &db.sql, queue, command, targets).await
}

async fn run_through(
    at: Exec<'_>,
    sql: &Statements,
    queue: &Queue,
    command: JobCommand,
    targets: &JobTargets,
) -> Result<CommandOutcome> {
    let which = JobStatement::Command {
        command,
        fenced: targets.fenced(),
    };
    let statement = which.cached(&queue.statements, sql, queue);
    let params = vec![
        Param::text(queue.name.as_str()),
        Param::Uuids(targets.ids.clone()),
        Param::Texts(targets.attempts.clone()),
    ];
    let (affected, settled, retained): (i64, Vec<Uuid>, i64) =
        at.fetch_one(&statement, params).await?;
    Ok(CommandOutcome {
        response: CommandResponse {
            jobs: targets.ids.clone(),
            affected,
            settled,
        },
        retained,
    })
}

/// Refreshes the heartbeat of active jobs (a worker's keep-alive).
pub async fn touch(db: &Db, queue: &Queue, targets: &JobTargets) -> Result<CommandResponse> {
    let outcome = run_through(db.exec(), &db.sql, queue, JobCommand::Touch, targets).await?;
    Ok(outcome.response)
}

/// Takes jobs a command moved out of a queue's finished ones off its cached counts at once, as
/// pg-boss does, instead of leaving `totalCount` high until the next maintenance pass: `removed`
/// off `total_count`, `held` off `retained_count`.
pub async fn reduce_retained(db: &Db, queue: &str, removed: i64, held: i64) -> Result<()> {
    let params = vec![
        Param::Texts(Some(vec![queue.to_string()])),
        Param::Int4Array(vec![removed as i32]),
        Param::Int4Array(vec![held as i32]),
    ];
    db.exec()
        .execute(&db.sql.jobs.commands.reduce_retained, params)
        .await?;
    Ok(())
}

const DELETE_BATCH: i64 = 10_000;

/// Deletes one queue's jobs a batch at a time, so no transaction holds more than a batch of row
/// locks. Returns how many went, and how many of those the queue's `retained_count` held.
pub async fn delete_stored(db: &Db, queue: &Queue, which: Stored) -> Result<(i64, i64)> {
    let sql = JobStatement::DeleteStored(which).cached(&queue.statements, &db.sql, queue);
    let (mut total, mut retained) = (0, 0);
    loop {
        let params = vec![Param::text(queue.name.as_str()), Param::Int8(DELETE_BATCH)];
        let (deleted, held): (i64, i64) = db.exec().fetch_one(&sql, params).await?;
        total += deleted;
        retained += held;
        if deleted < DELETE_BATCH {
            return Ok((total, retained));
        }
    }
}

/// Empties a table outright (every queue, or a queue with its own table) and zeroes the counts
/// cached on the queue rows it held.
pub async fn truncate(db: &Db, queue: Option<&Queue>) -> Result<()> {
    let statements = &db.sql.jobs.commands;
    let truncate = match queue {
        Some(queue) => JobStatement::Truncate.cached(&queue.statements, &db.sql, queue),
        None => statements.truncate_all.as_str().into(),
    };
    let tx = Tx::begin(&db.handle).await?;
    let at = Exec::tx(&tx).with_mode(db.mode);
    at.execute(&truncate, vec![]).await?;
    let name = queue.map(|q| q.name.clone());
    at.execute(&statements.reset_counts, vec![Param::Text(name)])
        .await?;
    tx.commit().await?;
    Ok(())
}
