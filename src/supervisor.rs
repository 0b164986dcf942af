//! Supervision: the background passes that keep a queue healthy — counting its jobs onto the queue
//! row, failing active jobs past their expiration or heartbeat, and deleting jobs past retention.
//! Every pass claims its queues through the same `monitor_claim_on` / `maintain_on` stamps and
//! advisory locks pg-boss uses, so pg-boss instances and ours never run one twice at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::{Executor, PgPool};

use crate::error::Result;
use crate::jobs::fail_sql;
use crate::schema::advisory_lock_key;
use crate::warnings::note_statement;

/// Jobs failed or deleted per statement, so no transaction holds too many row locks.
const BATCH: i64 = 1000;
/// Queues claimed per statement.
const CHUNK: usize = 100;

#[derive(Debug, Clone, Copy)]
pub struct SupervisorSettings {
    pub monitor_interval: Duration,
    pub maintenance_interval: Duration,
    /// Stats snapshots, backlog thresholds and the other warning options (see stats.rs, warnings.rs).
    pub observability: crate::config::Observability,
}

/// What a pass did, for tests and for whoever asked for it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub monitored: Vec<String>,
    pub maintained: Vec<String>,
    pub expired: i64,
    pub heartbeat_failed: i64,
    pub deleted: i64,
}

/// One pass over the named queues (all when `None`).
pub async fn supervise_pass(pool: &PgPool, schema: &str, names: Option<&[String]>, settings: SupervisorSettings) -> Result<PassReport> {
    let sql = format!("SELECT name, table_name FROM {schema}.queue WHERE $1::text[] IS NULL OR name = ANY($1) ORDER BY name");
    let started = Instant::now();
    let rows: Vec<(String, String)> = sqlx::query_as(&sql).bind(names).fetch_all(pool).await?;
    note_statement(started, &sql, || serde_json::json!([names]));
    let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, table) in rows {
        by_table.entry(table).or_default().push(name);
    }
    let mut report = PassReport::default();
    for (table, names) in &by_table {
        for chunk in names.chunks(CHUNK) {
            monitor(pool, schema, table, chunk, &settings, &mut report).await?;
            maintain(pool, schema, table, chunk, settings.maintenance_interval, &mut report).await?;
        }
    }
    Ok(report)
}

/// Claims the queues whose `column` stamp is at least `interval` old, locking their rows in name
/// order (skipping rows another instance holds), and stamps them now.
async fn claim(pool: &PgPool, schema: &str, names: &[String], column: &str, interval: Duration) -> Result<Vec<String>> {
    let since = if column == "monitor_claim_on" { "COALESCE(monitor_claim_on, monitor_on" } else { "COALESCE(maintain_on" };
    let sql = format!(
        "WITH due AS (
           SELECT name FROM {schema}.queue
           WHERE name = ANY($1::text[])
             AND EXTRACT(EPOCH FROM ({schema}.job_now() - {since}, {schema}.job_now() - interval '1 week'))) >= $2
           ORDER BY name FOR NO KEY UPDATE SKIP LOCKED)
         UPDATE {schema}.queue q SET {column} = {schema}.job_now() FROM due WHERE q.name = due.name
         RETURNING q.name"
    );
    let started = Instant::now();
    let claimed = sqlx::query_scalar(&sql).bind(names).bind(interval.as_secs_f64()).fetch_all(pool).await?;
    note_statement(started, &sql, || serde_json::json!([names, interval.as_secs_f64()]));
    Ok(claimed)
}

async fn monitor(pool: &PgPool, schema: &str, table: &str, names: &[String], settings: &SupervisorSettings, report: &mut PassReport) -> Result<()> {
    let claimed = claim(pool, schema, names, "monitor_claim_on", settings.monitor_interval).await?;
    if claimed.is_empty() {
        return Ok(());
    }
    let counting = Instant::now();
    if refresh_counts(pool, schema, table, &claimed).await? {
        crate::stats::after_count(pool, schema, &claimed, settings, counting.elapsed()).await?;
    }
    let timed_out = format!(
        "state = 'active' AND started_on + expire_seconds * interval '1s' < {schema}.job_now() AND name = ANY($1::text[])"
    );
    report.expired += expire(pool, schema, table, &claimed, &timed_out, r#"{"value":{"message":"job timed out"}}"#, "failJobsByTimeout").await?;
    let heartbeat_lost = format!(
        "state = 'active' AND heartbeat_seconds IS NOT NULL AND heartbeat_on + heartbeat_seconds * interval '1s' < {schema}.job_now() AND name = ANY($1::text[])"
    );
    report.heartbeat_failed +=
        expire(pool, schema, table, &claimed, &heartbeat_lost, r#"{"value":{"message":"job heartbeat timeout"}}"#, "failJobsByHeartbeat").await?;
    report.monitored.extend(claimed);
    Ok(())
}

/// Fails (retries or dead-letters, like any failure) the jobs `predicate` matches, a batch per
/// transaction under pg-boss's lock for the sweep.
async fn expire(pool: &PgPool, schema: &str, table: &str, queues: &[String], predicate: &str, output: &str, lock: &str) -> Result<i64> {
    let filter = format!("{predicate} AND id IN (SELECT id FROM {schema}.{table} WHERE {predicate} LIMIT {BATCH})");
    let output_sql = format!("'{}'::jsonb", output.replace('\'', "''"));
    let sql = fail_sql(schema, table, &filter, &output_sql);
    let lock_sql = format!("SELECT pg_advisory_xact_lock({})", advisory_lock_key(schema, &format!("{table}{lock}")));
    let mut total = 0;
    loop {
        let started = Instant::now();
        let mut tx = pool.begin().await?;
        tx.execute(lock_sql.as_str()).await?;
        let (count, _ids): (i64, Vec<uuid::Uuid>) = sqlx::query_as(&sql).bind(queues).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        note_statement(started, &sql, || serde_json::json!([queues]));
        total += count;
        if count < BATCH {
            return Ok(total);
        }
    }
}

/// How a count takes pg-boss's stats try-lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountLock {
    /// A monitor pass: when another instance is counting, hand the claim back.
    Monitor,
    /// A read of a stale cache (getQueueStats): when another instance is counting, change nothing.
    Read,
    /// A queue never counted yet: count without the lock, there is no cache to fall back on.
    Unlocked,
}

/// Writes the queues' job counts onto their rows. Takes pg-boss's stats try-lock: when another
/// instance is counting, this pass hands its claim back instead of scanning the table twice.
/// Answers whether it counted.
pub async fn refresh_counts(pool: &PgPool, schema: &str, table: &str, queues: &[String]) -> Result<bool> {
    refresh_counts_with(pool, schema, table, queues, CountLock::Monitor).await
}

pub async fn refresh_counts_with(pool: &PgPool, schema: &str, table: &str, queues: &[String], lock: CountLock) -> Result<bool> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let got: bool = lock == CountLock::Unlocked
        || sqlx::query_scalar(&format!("SELECT pg_try_advisory_xact_lock({})", advisory_lock_key(schema, "queue-stats")))
            .fetch_one(&mut *tx)
            .await?;
    if !got {
        if lock == CountLock::Monitor {
            sqlx::query(&format!("UPDATE {schema}.queue SET monitor_claim_on = NULL WHERE name = ANY($1)"))
                .bind(queues)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        return Ok(false);
    }
    let sql = format!(
        "WITH counts AS (
           SELECT n.name,
             count(j.id) FILTER (WHERE j.state < 'active' AND NOT j.blocked AND j.start_after > {schema}.job_now())::int AS deferred,
             count(j.id) FILTER (WHERE j.state < 'active' AND j.blocked)::int AS blocked,
             count(j.id) FILTER (WHERE j.state < 'active' AND NOT j.blocked AND j.start_after <= {schema}.job_now())::int AS ready,
             count(j.id) FILTER (WHERE j.state < 'active')::int AS queued,
             count(j.id) FILTER (WHERE j.state = 'active')::int AS active,
             count(j.id) FILTER (WHERE j.state = 'failed')::int AS failed,
             count(j.id)::int AS total,
             array_agg(j.singleton_key) FILTER (WHERE j.state = 'active' AND j.policy IN ('singleton', 'stately')) AS singletons
           FROM unnest($1::text[]) AS n(name)
           LEFT JOIN {schema}.{table} j ON j.name = n.name
           GROUP BY n.name
         ), locked AS (
           SELECT name FROM {schema}.queue WHERE name = ANY($1::text[]) AND (SELECT count(*) FROM counts) >= 0
           ORDER BY name FOR NO KEY UPDATE
         )
         UPDATE {schema}.queue q SET
           deferred_count = c.deferred, blocked_count = c.blocked, ready_count = c.ready, queued_count = c.queued,
           active_count = c.active, failed_count = c.failed, total_count = c.total, singletons_active = c.singletons,
           monitor_on = {schema}.job_now(),
           ready_history = (SELECT COALESCE(array_agg(v ORDER BY ord), '{{}}'::int[]) FROM (
             SELECT v, ord FROM (
               SELECT c.ready AS v, 0::bigint AS ord
               UNION ALL
               SELECT h.v, h.ord FROM unnest(q.ready_history) WITH ORDINALITY AS h(v, ord)
             ) merged ORDER BY ord LIMIT 60) capped)
         FROM counts c, locked l
         WHERE q.name = c.name AND l.name = c.name"
    );
    sqlx::query(&sql).bind(queues).execute(&mut *tx).await?;
    tx.commit().await?;
    note_statement(started, &sql, || serde_json::json!([queues]));
    Ok(true)
}

async fn maintain(pool: &PgPool, schema: &str, table: &str, names: &[String], interval: Duration, report: &mut PassReport) -> Result<()> {
    let claimed = claim(pool, schema, names, "maintain_on", interval).await?;
    if claimed.is_empty() {
        return Ok(());
    }
    let lock_sql = format!("SELECT pg_advisory_xact_lock({})", advisory_lock_key(schema, &format!("{table}deletion")));
    let expired = format!(
        "((deletion_seconds > 0 AND completed_on + deletion_seconds * interval '1s' < {schema}.job_now())
          OR (state < 'active' AND keep_until < {schema}.job_now()))"
    );
    let sql = format!(
        "WITH doomed AS (SELECT name, id FROM {schema}.{table} WHERE name = ANY($1::text[]) AND {expired} LIMIT {BATCH}),
              removed AS (DELETE FROM {schema}.{table} j USING doomed d WHERE j.name = d.name AND j.id = d.id AND {expired} RETURNING 1)
         SELECT count(*) FROM removed"
    );
    loop {
        let started = Instant::now();
        let mut tx = pool.begin().await?;
        tx.execute(lock_sql.as_str()).await?;
        let deleted: i64 = sqlx::query_scalar(&sql).bind(&claimed).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        note_statement(started, &sql, || serde_json::json!([claimed]));
        report.deleted += deleted;
        if deleted < BATCH {
            break;
        }
    }
    report.maintained.extend(claimed);
    Ok(())
}
