//! Commands on existing jobs: cancel, resume, retry, delete, touch, and the bulk deletes.

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Result;
use crate::model::queue::QueueInfo;
use crate::ops::jobs::{CommandResponse, JobTargets};
use crate::sql::exec::{Exec, Param};

// Columns are named: a caller's driver hands rows over as objects, which keep one of each name.
const SETTLED: &str = "SELECT count(*) AS affected, COALESCE(array_agg(id), '{}'::uuid[]) AS settled, 0::int8 AS retained FROM results";

/// Like SETTLED, for `results` rows carrying `name`, `state` and `completed_on` as they were: also
/// how many of them the queue's `retained_count` held.
fn settled_and_retained(schema: &str) -> String {
    format!(
        "SELECT count(*) AS affected, COALESCE(array_agg(id), '{{}}'::uuid[]) AS settled, count(*) FILTER (WHERE {}) AS retained FROM results r",
        crate::sql::counting::held_by_retained_count(schema, "r")
    )
}

/// What a command did: pg-boss's response, and how many of the jobs it moved out of the finished
/// ones the queue's `retained_count` held (see [`reduce_retained`]).
pub struct CommandOutcome {
    pub response: CommandResponse,
    pub retained: i64,
}

/// Runs a statement over `$1` queue name, `$2` ids and (when fenced) `$3` attempts, answering
/// with the count and ids it touched.
async fn run(
    via: Exec<'_>,
    sql: &str,
    queue: &QueueInfo,
    targets: &JobTargets,
) -> Result<CommandResponse> {
    Ok(run_counting(via, sql, queue, targets).await?.response)
}

async fn run_counting(
    via: Exec<'_>,
    sql: &str,
    queue: &QueueInfo,
    targets: &JobTargets,
) -> Result<CommandOutcome> {
    let params = vec![
        Param::text(queue.name.as_str()),
        Param::Uuids(targets.ids.clone()),
        Param::Texts(targets.attempts.clone()),
    ];
    let (affected, settled, retained): (i64, Vec<Uuid>, i64) = via.fetch_one(sql, params).await?;
    Ok(CommandOutcome {
        response: CommandResponse {
            jobs: targets.ids.clone(),
            affected,
            settled,
        },
        retained,
    })
}

/// Takes jobs a command moved out of a queue's finished ones off its cached counts at once, as
/// pg-boss does, instead of leaving `totalCount` high until the next maintenance pass: `removed`
/// off `total_count`, `held` off `retained_count`.
pub async fn reduce_retained(
    pool: &PgPool,
    schema: &str,
    queue: &str,
    removed: i64,
    held: i64,
) -> Result<()> {
    sqlx::query(&crate::sql::counting::reduce_retained_sql(schema))
        .bind(vec![queue.to_string()])
        .bind(vec![removed as i32])
        .bind(vec![held as i32])
        .execute(pool)
        .await?;
    Ok(())
}

/// An UPDATE of the addressed jobs that are in `state_filter`, answering with what it touched.
fn update_sql(
    schema: &str,
    queue: &QueueInfo,
    set: &str,
    state_filter: &str,
    fence: &str,
) -> String {
    format!(
        "WITH results AS (
           UPDATE {schema}.{} SET {set}
           WHERE name = $1 AND id = ANY($2::uuid[]) AND {state_filter} {fence}
           RETURNING id)
         {SETTLED}",
        queue.table
    )
}

/// Jobs not yet finished become `cancelled`.
pub async fn cancel(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    targets: &JobTargets,
) -> Result<CommandResponse> {
    let set = format!("completed_on = {schema}.job_now(), state = 'cancelled'");
    run(
        via.into(),
        &update_sql(
            schema,
            queue,
            &set,
            "state < 'completed'",
            &targets.fence(3),
        ),
        queue,
        targets,
    )
    .await
}

/// Cancelled jobs go back to `created`, runnable from now at the earliest.
pub async fn resume(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    targets: &JobTargets,
) -> Result<CommandOutcome> {
    let table = &queue.table;
    let sql = format!(
        "WITH resumable AS (
           SELECT id, name, state, completed_on FROM {schema}.{table}
           WHERE name = $1 AND id = ANY($2::uuid[]) AND state = 'cancelled'
         ), results AS (
           UPDATE {schema}.{table} j SET completed_on = NULL, state = 'created', upsert_by_key = NULL,
             start_after = GREATEST(j.start_after, {schema}.job_now())
           FROM resumable p
           WHERE j.name = $1 AND j.id = p.id AND j.state = 'cancelled'
           RETURNING j.id, p.name, p.state, p.completed_on)
         {}",
        settled_and_retained(schema)
    );
    run_counting(via.into(), &sql, queue, targets).await
}

/// Failed jobs get one more attempt: back to `retry` with their limit raised by one.
pub async fn retry(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    targets: &JobTargets,
) -> Result<CommandResponse> {
    let set = format!(
        "state = 'retry', retry_limit = retry_limit + 1, completed_on = NULL, start_after = GREATEST(start_after, {schema}.job_now())"
    );
    run(
        via.into(),
        &update_sql(schema, queue, &set, "state = 'failed'", ""),
        queue,
        targets,
    )
    .await
}

pub async fn delete_jobs(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    targets: &JobTargets,
) -> Result<CommandOutcome> {
    let sql = format!(
        "WITH results AS (
           DELETE FROM {schema}.{} WHERE name = $1 AND id = ANY($2::uuid[]) {}
           RETURNING id, name, state, completed_on)
         {}",
        queue.table,
        targets.fence(3),
        settled_and_retained(schema)
    );
    run_counting(via.into(), &sql, queue, targets).await
}

/// Refreshes the heartbeat of active jobs.
pub async fn touch(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    targets: &JobTargets,
) -> Result<CommandResponse> {
    let set = format!("heartbeat_on = {schema}.job_now()");
    run(
        via.into(),
        &update_sql(schema, queue, &set, "state = 'active'", &targets.fence(3)),
        queue,
        targets,
    )
    .await
}

/// Which jobs a bulk delete removes.
#[derive(Debug, Clone, Copy)]
pub enum Stored {
    /// Not started yet (`created`, `retry`).
    Queued,
    /// Finished (`completed`, `cancelled`, `failed`).
    Finished,
    All,
}

const DELETE_BATCH: i64 = 10_000;

/// Deletes one queue's jobs a batch at a time, so no transaction holds more than a batch of row
/// locks. Returns how many went, and how many of those the queue's `retained_count` held.
pub async fn delete_stored(
    pool: &PgPool,
    schema: &str,
    queue: &QueueInfo,
    which: Stored,
) -> Result<(i64, i64)> {
    let predicate = match which {
        Stored::Queued => "state < 'active'",
        Stored::Finished => "state > 'active'",
        Stored::All => "true",
    };
    let table = &queue.table;
    let sql = format!(
        "WITH batch AS (SELECT id FROM {schema}.{table} WHERE name = $1 AND {predicate} LIMIT $2),
              removed AS (DELETE FROM {schema}.{table} j USING batch b WHERE j.name = $1 AND j.id = b.id AND {predicate}
                RETURNING j.name, j.state, j.completed_on)
         SELECT count(*), count(*) FILTER (WHERE {}) FROM removed r",
        crate::sql::counting::held_by_retained_count(schema, "r")
    );
    let (mut total, mut retained) = (0, 0);
    loop {
        let (deleted, held): (i64, i64) = sqlx::query_as(&sql)
            .bind(&queue.name)
            .bind(DELETE_BATCH)
            .fetch_one(pool)
            .await?;
        total += deleted;
        retained += held;
        if deleted < DELETE_BATCH {
            return Ok((total, retained));
        }
    }
}

/// Empties a table outright (every queue, or a queue with its own table) and zeroes the counts
/// cached on the queue rows it held.
pub async fn truncate(pool: &PgPool, schema: &str, queue: Option<&QueueInfo>) -> Result<()> {
    let mut tx = pool.begin().await?;
    let table = queue.map_or("job", |q| q.table.as_str());
    sqlx::query(&format!("TRUNCATE {schema}.{table}"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "UPDATE {schema}.queue SET deferred_count = 0, blocked_count = 0, queued_count = 0, ready_count = 0,
           active_count = 0, failed_count = 0, total_count = 0, retained_count = 0, singletons_active = NULL,
           monitor_on = {schema}.job_now()
         WHERE $1::text IS NULL OR name = $1"
    ))
    .bind(queue.map(|q| q.name.as_str()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
