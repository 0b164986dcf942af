//! Commands on existing jobs: cancel, resume, retry, delete, touch, and the bulk deletes.

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Result;
use crate::jobs::{CommandResponse, JobTargets};
use crate::queues::QueueInfo;

const SETTLED: &str = "SELECT count(*), COALESCE(array_agg(id), '{}'::uuid[]) FROM results";

/// Runs a statement over `$1` queue name, `$2` ids and (when fenced) `$3` attempts, answering
/// with the count and ids it touched.
async fn run(pool: &PgPool, sql: &str, queue: &QueueInfo, targets: &JobTargets) -> Result<CommandResponse> {
    let (affected, settled): (i64, Vec<Uuid>) = sqlx::query_as(sql)
        .bind(&queue.name)
        .bind(&targets.ids)
        .bind(targets.attempts.as_deref())
        .fetch_one(pool)
        .await?;
    Ok(CommandResponse { jobs: targets.ids.clone(), affected, settled })
}

/// An UPDATE of the addressed jobs that are in `state_filter`, answering with what it touched.
fn update_sql(schema: &str, queue: &QueueInfo, set: &str, state_filter: &str, fence: &str) -> String {
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
pub async fn cancel(pool: &PgPool, schema: &str, queue: &QueueInfo, targets: &JobTargets) -> Result<CommandResponse> {
    let set = format!("completed_on = {schema}.job_now(), state = 'cancelled'");
    run(pool, &update_sql(schema, queue, &set, "state < 'completed'", &targets.fence(3)), queue, targets).await
}

/// Cancelled jobs go back to `created`, runnable from now at the earliest.
pub async fn resume(pool: &PgPool, schema: &str, queue: &QueueInfo, targets: &JobTargets) -> Result<CommandResponse> {
    let set = format!(
        "completed_on = NULL, state = 'created', upsert_by_key = NULL, start_after = GREATEST(start_after, {schema}.job_now())"
    );
    run(pool, &update_sql(schema, queue, &set, "state = 'cancelled'", ""), queue, targets).await
}

/// Failed jobs get one more attempt: back to `retry` with their limit raised by one.
pub async fn retry(pool: &PgPool, schema: &str, queue: &QueueInfo, targets: &JobTargets) -> Result<CommandResponse> {
    let set = format!(
        "state = 'retry', retry_limit = retry_limit + 1, completed_on = NULL, start_after = GREATEST(start_after, {schema}.job_now())"
    );
    run(pool, &update_sql(schema, queue, &set, "state = 'failed'", ""), queue, targets).await
}

pub async fn delete_jobs(pool: &PgPool, schema: &str, queue: &QueueInfo, targets: &JobTargets) -> Result<CommandResponse> {
    let sql = format!(
        "WITH results AS (
           DELETE FROM {schema}.{} WHERE name = $1 AND id = ANY($2::uuid[]) {}
           RETURNING id)
         {SETTLED}",
        queue.table,
        targets.fence(3)
    );
    run(pool, &sql, queue, targets).await
}

/// Refreshes the heartbeat of active jobs.
pub async fn touch(pool: &PgPool, schema: &str, queue: &QueueInfo, targets: &JobTargets) -> Result<CommandResponse> {
    let set = format!("heartbeat_on = {schema}.job_now()");
    run(pool, &update_sql(schema, queue, &set, "state = 'active'", &targets.fence(3)), queue, targets).await
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
/// locks. Returns how many went.
pub async fn delete_stored(pool: &PgPool, schema: &str, queue: &QueueInfo, which: Stored) -> Result<i64> {
    let predicate = match which {
        Stored::Queued => "state < 'active'",
        Stored::Finished => "state > 'active'",
        Stored::All => "true",
    };
    let table = &queue.table;
    let sql = format!(
        "WITH batch AS (SELECT id FROM {schema}.{table} WHERE name = $1 AND {predicate} LIMIT $2),
              removed AS (DELETE FROM {schema}.{table} j USING batch b WHERE j.name = $1 AND j.id = b.id AND {predicate} RETURNING 1)
         SELECT count(*) FROM removed"
    );
    let mut total = 0;
    loop {
        let deleted: i64 = sqlx::query_scalar(&sql).bind(&queue.name).bind(DELETE_BATCH).fetch_one(pool).await?;
        total += deleted;
        if deleted < DELETE_BATCH {
            return Ok(total);
        }
    }
}

/// Empties a table outright (every queue, or a queue with its own table) and zeroes the counts
/// cached on the queue rows it held.
pub async fn truncate(pool: &PgPool, schema: &str, queue: Option<&QueueInfo>) -> Result<()> {
    let mut tx = pool.begin().await?;
    let table = queue.map_or("job", |q| q.table.as_str());
    sqlx::query(&format!("TRUNCATE {schema}.{table}")).execute(&mut *tx).await?;
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
