//! Supervision: the background passes that keep a queue healthy — counting its jobs onto the queue
//! row, failing active jobs past their expiration or heartbeat, and deleting jobs past retention.
//! Every pass claims its queues through the same `monitor_claim_on` / `maintain_on` stamps and
//! advisory locks pg-boss uses, so pg-boss instances and ours never run one twice at once.

use std::sync::Arc;

use super::{Service, Stop};
use crate::config::SupervisorSettings;
use crate::event::EventSink;
use crate::sql::Db;
use crate::BoxFuture;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{Executor, PgPool};

use crate::error::Result;
use crate::ops::jobs::fail_sql;
use crate::ops::warnings::note_statement;
use crate::schema::install::advisory_lock_key;
use crate::sql::counting::{self, Throughput};

/// Jobs failed or deleted per statement, so no transaction holds too many row locks.
const BATCH: i64 = 1000;
/// Queues claimed per statement.
const CHUNK: usize = 100;

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
pub async fn supervise_pass(
    pool: &PgPool,
    schema: &str,
    names: Option<&[String]>,
    settings: SupervisorSettings,
) -> Result<PassReport> {
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
            maintain(
                pool,
                schema,
                table,
                chunk,
                settings.maintenance_interval,
                &mut report,
            )
            .await?;
        }
    }
    Ok(report)
}

/// Claims the queues whose `column` stamp is at least `interval` old, locking their rows in name
/// order (skipping rows another instance holds), and stamps them now.
async fn claim(
    pool: &PgPool,
    schema: &str,
    names: &[String],
    column: &str,
    interval: Duration,
) -> Result<Vec<String>> {
    let since = if column == "monitor_claim_on" {
        "COALESCE(monitor_claim_on, monitor_on"
    } else {
        "COALESCE(maintain_on"
    };
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
    let claimed = sqlx::query_scalar(&sql)
        .bind(names)
        .bind(interval.as_secs_f64())
        .fetch_all(pool)
        .await?;
    note_statement(started, &sql, || {
        serde_json::json!([names, interval.as_secs_f64()])
    });
    Ok(claimed)
}

async fn monitor(
    pool: &PgPool,
    schema: &str,
    table: &str,
    names: &[String],
    settings: &SupervisorSettings,
    report: &mut PassReport,
) -> Result<()> {
    let claimed = claim(
        pool,
        schema,
        names,
        "monitor_claim_on",
        settings.monitor_interval,
    )
    .await?;
    if claimed.is_empty() {
        return Ok(());
    }
    let throughput = settings
        .observability
        .persist_queue_stats
        .then(|| Throughput::for_pass(settings.pass_seconds()));
    if let Some(counted) = refresh_counts_with(
        pool,
        schema,
        table,
        &claimed,
        CountLock::Monitor,
        throughput,
    )
    .await?
    {
        crate::ops::stats::after_count(pool, schema, table, &counted, settings).await?;
    }
    let timed_out = format!(
        "state = 'active' AND started_on + expire_seconds * interval '1s' < {schema}.job_now() AND name = ANY($1::text[])"
    );
    report.expired += expire(
        pool,
        schema,
        table,
        &claimed,
        &timed_out,
        r#"{"value":{"message":"job timed out"}}"#,
        "failJobsByTimeout",
    )
    .await?;
    let heartbeat_lost = format!(
        "state = 'active' AND heartbeat_seconds IS NOT NULL AND heartbeat_on + heartbeat_seconds * interval '1s' < {schema}.job_now() AND name = ANY($1::text[])"
    );
    report.heartbeat_failed += expire(
        pool,
        schema,
        table,
        &claimed,
        &heartbeat_lost,
        r#"{"value":{"message":"job heartbeat timeout"}}"#,
        "failJobsByHeartbeat",
    )
    .await?;
    report.monitored.extend(claimed);
    Ok(())
}

/// Fails (retries or dead-letters, like any failure) the jobs `predicate` matches, a batch per
/// transaction under pg-boss's lock for the sweep.
async fn expire(
    pool: &PgPool,
    schema: &str,
    table: &str,
    queues: &[String],
    predicate: &str,
    output: &str,
    lock: &str,
) -> Result<i64> {
    let filter = format!(
        "{predicate} AND id IN (SELECT id FROM {schema}.{table} WHERE {predicate} LIMIT {BATCH})"
    );
    let output_sql = format!("'{}'::jsonb", output.replace('\'', "''"));
    let sql = fail_sql(schema, table, &filter, &output_sql);
    let lock_sql = format!(
        "SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(schema, &format!("{table}{lock}"))
    );
    let mut total = 0;
    loop {
        let started = Instant::now();
        let mut tx = pool.begin().await?;
        tx.execute(lock_sql.as_str()).await?;
        let (count, _ids): (i64, Vec<uuid::Uuid>) = sqlx::query_as(&sql)
            .bind(queues)
            .fetch_one(&mut *tx)
            .await?;
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

/// A queue whose counts a count wrote, as the monitor needs it next.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    pub name: String,
    pub queued: i32,
    /// The queue's own queue_backlog threshold (0: the instance's).
    pub warning_queued: i32,
    /// With throughput: whether jobs committed late into windows already recorded.
    pub true_up: Option<bool>,
    /// How long the count held its snapshot, by the server's clock.
    pub pin_seconds: f64,
}

/// Writes the queues' counts onto their rows (see counting.rs), with their throughput when given.
/// Takes pg-boss's stats try-lock: when another instance is counting, nothing is counted twice and
/// the answer is `None` (a monitor pass also hands its claim back).
pub async fn refresh_counts_with(
    pool: &PgPool,
    schema: &str,
    table: &str,
    queues: &[String],
    lock: CountLock,
    throughput: Option<Throughput>,
) -> Result<Option<Vec<Counted>>> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let got: bool = lock == CountLock::Unlocked
        || sqlx::query_scalar(&format!(
            "SELECT pg_try_advisory_xact_lock({})",
            advisory_lock_key(schema, "queue-stats")
        ))
        .fetch_one(&mut *tx)
        .await?;
    if !got {
        if lock == CountLock::Monitor {
            sqlx::query(&format!(
                "UPDATE {schema}.queue q SET monitor_claim_on = NULL
                 FROM (SELECT name FROM {schema}.queue WHERE name = ANY($1) ORDER BY name FOR NO KEY UPDATE) r
                 WHERE q.name = r.name"
            ))
            .bind(queues)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        return Ok(None);
    }
    let sql = counting::count_sql(schema, table, lock == CountLock::Monitor, throughput);
    let rows: Vec<(String, i32, i32, Option<bool>, f64)> = sqlx::query_as(&sql)
        .bind(queues)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    note_statement(started, &sql, || serde_json::json!([queues]));
    let counted = rows
        .into_iter()
        .map(
            |(name, queued, warning_queued, true_up, pin_seconds)| Counted {
                name,
                queued,
                warning_queued,
                true_up,
                pin_seconds,
            },
        )
        .collect();
    Ok(Some(counted))
}

/// The retention sweep of the claimed queues, then their retained count taken outright (see
/// counting.rs) and their orphaned flow edges, as pg-boss's maintenance pass does, so either kind
/// of instance can maintain.
async fn maintain(
    pool: &PgPool,
    schema: &str,
    table: &str,
    names: &[String],
    interval: Duration,
    report: &mut PassReport,
) -> Result<()> {
    let claimed = claim(pool, schema, names, "maintain_on", interval).await?;
    if claimed.is_empty() {
        return Ok(());
    }
    // Taken before the sweep: what finishes while it runs is past the watermark, for a count.
    let watermark: DateTime<Utc> = sqlx::query_scalar(&counting::retained_watermark_sql(schema))
        .fetch_one(pool)
        .await?;
    let mut removed = BTreeMap::new();
    if let Err(err) = sweep(pool, schema, table, &claimed, &mut removed, report).await {
        // A sweep cut short has not counted what it kept, so it only takes what it deleted off the
        // counts; the next full sweep sets them. The sweep's error is the one worth reporting.
        let _ = reduce_retained(pool, schema, &removed).await;
        return Err(err);
    }
    let sql = counting::set_retained_sql(schema, table);
    let started = Instant::now();
    sqlx::query(&sql)
        .bind(&claimed)
        .bind(watermark)
        .execute(pool)
        .await?;
    note_statement(started, &sql, || serde_json::json!([claimed, watermark]));
    // Edges whose job is gone (deleted, or swept above) are dropped with it, as pg-boss's pass does.
    crate::ops::flows::cleanup_dependencies_on(pool, schema, table, &claimed).await?;
    report.maintained.extend(claimed);
    Ok(())
}

/// Deletes the claimed queues' jobs past retention, a batch per transaction under pg-boss's
/// deletion lock, tallying per queue the jobs removed and how many of them retained_count held.
async fn sweep(
    pool: &PgPool,
    schema: &str,
    table: &str,
    claimed: &[String],
    removed: &mut BTreeMap<String, (i32, i32)>,
    report: &mut PassReport,
) -> Result<()> {
    let lock_sql = format!(
        "SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(schema, &format!("{table}deletion"))
    );
    let expired = format!(
        "((deletion_seconds > 0 AND completed_on + deletion_seconds * interval '1s' < {schema}.job_now())
          OR (state < 'active' AND keep_until < {schema}.job_now()))"
    );
    let sql = format!(
        "WITH doomed AS (SELECT name, id FROM {schema}.{table} WHERE name = ANY($1::text[]) AND {expired} LIMIT {BATCH}),
              removed AS (DELETE FROM {schema}.{table} j USING doomed d WHERE j.name = d.name AND j.id = d.id AND {expired}
                          RETURNING j.name, j.state, j.completed_on)
         SELECT r.name, count(*)::int, (count(*) FILTER (WHERE {held}))::int FROM removed r GROUP BY r.name",
        held = counting::held_by_retained_count(schema, "r")
    );
    loop {
        let started = Instant::now();
        let mut tx = pool.begin().await?;
        tx.execute(lock_sql.as_str()).await?;
        let rows: Vec<(String, i32, i32)> = sqlx::query_as(&sql)
            .bind(claimed)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        note_statement(started, &sql, || serde_json::json!([claimed]));
        let mut deleted = 0;
        for (name, count, held) in rows {
            let tally = removed.entry(name).or_insert((0, 0));
            tally.0 += count;
            tally.1 += held;
            deleted += i64::from(count);
        }
        report.deleted += deleted;
        if deleted < BATCH {
            return Ok(());
        }
    }
}

async fn reduce_retained(
    pool: &PgPool,
    schema: &str,
    removed: &BTreeMap<String, (i32, i32)>,
) -> Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = removed.keys().cloned().collect();
    let counts: Vec<i32> = removed.values().map(|t| t.0).collect();
    let held: Vec<i32> = removed.values().map(|t| t.1).collect();
    sqlx::query(&counting::reduce_retained_sql(schema))
        .bind(names)
        .bind(counts)
        .bind(held)
        .execute(pool)
        .await?;
    Ok(())
}

/// The background supervision pass, every `superviseIntervalSeconds` while `supervise` is on. A
/// `supervise()` call already running covers a pass that falls due meanwhile, as in pg-boss.
pub struct Supervisor {
    pub db: Db,
    pub settings: SupervisorSettings,
    pub events: Arc<dyn EventSink>,
    /// Held while any supervision pass of this instance runs (`isMaintaining()`).
    pub running: Arc<tokio::sync::Mutex<()>>,
}

impl Service for Supervisor {
    fn name(&self) -> &'static str {
        "supervisor"
    }

    fn interval(&self) -> Duration {
        self.settings.supervise_interval
    }

    fn first_pass(&self) -> Duration {
        self.settings.supervise_interval
    }

    /// A pass counts and fails jobs in bounded batches; one that runs this long is stuck.
    fn timeout(&self) -> Duration {
        Duration::from_secs(15 * 60).max(self.settings.supervise_interval)
    }

    fn run_once<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move {
            let Ok(_running) = self.running.try_lock() else {
                return Ok(None);
            };
            crate::ops::warnings::supervise(
                &self.db.pool,
                self.db.schema(),
                None,
                self.settings,
                &self.events,
            )
            .await?;
            Ok(None)
        })
    }
}
