//! Queue statistics: `getQueueStats()`, and the history behind it.
//!
//! Without `persistQueueStats` there is no history: `getQueueStats()` answers one datapoint, the
//! counts the monitor keeps on the queue row, counting them afresh when they are older than the
//! cache allows (an hour, or the monitor/supervise interval when longer; a minute with `force`).
//!
//! With `persistQueueStats` every monitor pass that counts a queue also records a snapshot of those
//! counts in `queue_stats` (partitioned by UTC day; supervision creates today's and tomorrow's
//! partitions and drops the ones older than `queueStatRetentionDays`), and `getQueueStats()` reads
//! that series back, raw or in time buckets.
//!
//! A snapshot carries the queue row as the count left it (see counting.rs): the gauges, and the
//! throughput of the window the pass measured (created/completed/failed deltas, wait and run
//! histograms, the oldest ready job's wait). When the count's check finds jobs that committed
//! into windows already recorded, the pass trues those snapshots up ([`true_up`]). Snapshots
//! pg-boss instances record on the same schema are the same rows, read (and bucketed) the same way.

use crate::config::js::truthy;
use std::collections::HashSet;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::config::js::{is_integer, Options};
use crate::config::SupervisorSettings;
use crate::config::{resolve_schema_name, BossConfig};
use crate::ensure;
use crate::error::Result;
use crate::ops::queues::{self, QueueCache};
use crate::ops::warnings::{self, note_statement};
use crate::schema::install::advisory_lock_key;
use crate::service::supervisor::{self, CountLock, Counted};
use crate::sql::counting::{self, LATENCY_MIN_SECONDS};

/// How old the cached counts may be before a read counts again, without `force`...
const CACHE_TTL_SECONDS: f64 = 3600.0;
/// ...and with it.
const FORCE_TTL_SECONDS: f64 = 60.0;
const LIMIT_DEFAULT: i64 = 1000;
const LIMIT_MAX: i64 = 100_000;

// ---------------------------------------------------------------------------------------------
// Recording (called from supervision)

/// Creates the `queue_stats` partitions for today and tomorrow (UTC) that do not exist yet.
pub async fn ensure_partitions(pool: &PgPool, schema: &str) -> Result<()> {
    let sql = format!(
        "DO $stats_parts$
         DECLARE
           day date;
         BEGIN
           FOR ahead IN 0..1 LOOP
             day := ({schema}.job_now() AT TIME ZONE 'UTC')::date + ahead;
             IF to_regclass(format('{schema}.%I', 'queue_stats_' || to_char(day, 'YYYYMMDD'))) IS NULL THEN
               EXECUTE format('CREATE TABLE {schema}.%I PARTITION OF {schema}.queue_stats FOR VALUES FROM (%L) TO (%L)',
                 'queue_stats_' || to_char(day, 'YYYYMMDD'),
                 to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
                 to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
             END IF;
           END LOOP;
         END;
         $stats_parts$"
    );
    let started = Instant::now();
    sqlx::raw_sql(&sql).execute(pool).await?;
    note_statement(started, &sql, || json!([]));
    Ok(())
}

/// Drops the daily `queue_stats` partitions whose day is more than `days` before today (UTC).
pub async fn drop_old_partitions(pool: &PgPool, schema: &str, days: i64) -> Result<()> {
    let resolved = resolve_schema_name(schema).replace('\'', "''");
    let sql = format!(
        "DO $stats_prune$
         DECLARE
           part record;
           oldest_kept date := ({schema}.job_now() AT TIME ZONE 'UTC')::date - {days};
         BEGIN
           FOR part IN
             SELECT child.relname
             FROM pg_inherits inh
             JOIN pg_class parent ON parent.oid = inh.inhparent
             JOIN pg_class child ON child.oid = inh.inhrelid
             JOIN pg_namespace ns ON ns.oid = parent.relnamespace
             WHERE ns.nspname = '{resolved}' AND parent.relname = 'queue_stats'
               AND child.relname ~ '^queue_stats_[0-9]{{8}}$'
           LOOP
             IF to_date(substring(part.relname FROM 13), 'YYYYMMDD') < oldest_kept THEN
               EXECUTE format('DROP TABLE IF EXISTS {schema}.%I', part.relname);
             END IF;
           END LOOP;
         END;
         $stats_prune$"
    );
    let started = Instant::now();
    sqlx::raw_sql(&sql).execute(pool).await?;
    note_statement(started, &sql, || json!([]));
    Ok(())
}

/// What a monitor pass does once it has written the `counted` queues' counts: with
/// `persistQueueStats`, records their snapshots and trues up the recent ones of the queues whose
/// check found late commits; then notes a queue_backlog warning for each queue with more queued
/// jobs than its threshold.
pub async fn after_count(
    pool: &PgPool,
    schema: &str,
    table: &str,
    counted: &[Counted],
    settings: &SupervisorSettings,
) -> Result<()> {
    let observability = settings.observability;
    if observability.persist_queue_stats && !counted.is_empty() {
        let names: Vec<String> = counted.iter().map(|c| c.name.clone()).collect();
        record(pool, schema, &names).await?;
        let late: Vec<String> = counted
            .iter()
            .filter(|c| c.true_up == Some(true))
            .map(|c| c.name.clone())
            .collect();
        if !late.is_empty() {
            true_up(pool, schema, table, &late).await?;
        }
    }
    for row in counted {
        let threshold = if row.warning_queued != 0 {
            f64::from(row.warning_queued)
        } else {
            observability.warning_queue_size
        };
        if f64::from(row.queued) > threshold {
            let mut data = json!({ "name": row.name, "queuedCount": row.queued, "warningQueueSize": row.warning_queued });
            if let Some(late) = row.true_up {
                data["trueUp"] = json!(late);
            }
            data["pinSeconds"] = json!(row.pin_seconds);
            warnings::note(warnings::backlog(
                &row.name,
                i64::from(row.queued),
                threshold,
                data,
            ));
        }
    }
    Ok(())
}

/// One snapshot per queue of what the count just wrote on its row, throughput included.
async fn record(pool: &PgPool, schema: &str, queues: &[String]) -> Result<()> {
    let sql = format!(
        "INSERT INTO {schema}.queue_stats
           (name, deferred_count, queued_count, ready_count, active_count, failed_count, total_count,
            created_delta, completed_delta, failed_delta, delta_seconds, delta_on, wait_bins, run_bins, ready_oldest_seconds,
            captured_on)
         SELECT name, deferred_count, queued_count, ready_count, active_count, failed_count, total_count,
           created_delta, completed_delta, failed_delta, delta_seconds, delta_on, wait_bins, run_bins, ready_oldest_seconds,
           {schema}.job_now()
         FROM {schema}.queue WHERE name = ANY($1)"
    );
    let lock = format!(
        "SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(schema, "queue-stats-insert")
    );
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query(&lock).execute(&mut *tx).await?;
    sqlx::query(&sql).bind(queues).execute(&mut *tx).await?;
    tx.commit().await?;
    note_statement(started, &sql, || json!([queues]));
    Ok(())
}

/// Raises the recent snapshots of `queues` that fell short because jobs committed after the pass
/// that counted their window (a transaction older than the lag). Counters only ever rise: a
/// recount below a snapshot means retention or a delete removed rows it counted, not that it was
/// wrong. Under the stats try-lock, so two instances do not both scan; answers how many snapshots
/// were raised (none when another instance held the lock).
///
/// A snapshot's window is rebuilt rather than stored: it runs from the previous snapshot's
/// `delta_on` to its own, and the first one from the anchor (see `counting::true_up_anchor`).
/// `width_bucket` over those ends places every job in its window with a binary search.
pub async fn true_up(pool: &PgPool, schema: &str, table: &str, queues: &[String]) -> Result<u64> {
    let sql = format!(
        "WITH windows AS (
           SELECT s.id, s.captured_on, s.name, s.delta_on, s.created_delta, s.completed_delta, s.failed_delta, a.h,
             row_number() OVER (PARTITION BY s.name ORDER BY s.delta_on, s.captured_on) AS i
           FROM {schema}.queue q
           {anchor}
           JOIN {schema}.queue_stats s ON s.name = q.name AND {reach} AND s.delta_on > a.h
           WHERE q.name = ANY($1::text[])
         ),
         edges AS (
           SELECT name, h, array_prepend(h, array_agg(delta_on ORDER BY i)) AS ends FROM windows GROUP BY name, h
         ),
         placed AS (
           SELECT j.name, width_bucket(j.created_on, e.ends) AS i, 1 AS created, 0 AS completed, 0 AS failed
           FROM edges e JOIN {schema}.{table} j ON j.name = e.name AND j.created_on >= e.h
           UNION ALL
           SELECT j.name, width_bucket(j.completed_on, e.ends), 0, (j.state = 'completed')::int, (j.state = 'failed')::int
           FROM edges e JOIN {schema}.{table} j ON j.name = e.name AND j.completed_on >= e.h
           WHERE j.state IN ('completed', 'failed')
         ),
         recount AS (
           SELECT w.id, w.captured_on, sum(p.created)::int AS created, sum(p.completed)::int AS completed, sum(p.failed)::int AS failed
           FROM windows w JOIN placed p ON p.name = w.name AND p.i = w.i
           GROUP BY w.id, w.captured_on
         ),
         raised AS (
           UPDATE {schema}.queue_stats s SET
             created_delta = GREATEST(s.created_delta, r.created),
             completed_delta = GREATEST(s.completed_delta, r.completed),
             failed_delta = GREATEST(s.failed_delta, r.failed)
           FROM recount r
           WHERE s.id = r.id AND s.captured_on = r.captured_on
             AND (r.created > s.created_delta OR r.completed > s.completed_delta OR r.failed > s.failed_delta)
           RETURNING 1
         )
         SELECT count(*) FROM raised",
        anchor = counting::true_up_anchor(schema, "q"),
        reach = counting::true_up_reach(schema),
    );
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let got: bool = sqlx::query_scalar(&format!(
        "SELECT pg_try_advisory_xact_lock({})",
        advisory_lock_key(schema, "queue-stats")
    ))
    .fetch_one(&mut *tx)
    .await?;
    let raised = if got {
        sqlx::query_scalar::<_, i64>(&sql)
            .bind(queues)
            .fetch_one(&mut *tx)
            .await?
    } else {
        0
    };
    tx.commit().await?;
    note_statement(started, &sql, || json!([queues]));
    Ok(raised.max(0) as u64)
}

// ---------------------------------------------------------------------------------------------
// Reading: getQueueStats()

/// A stored snapshot, a bucket of them, or the queue row's cached counts.
#[derive(Debug, Default, sqlx::FromRow)]
struct StatsRow {
    deferred_count: Option<i32>,
    queued_count: Option<i32>,
    ready_count: Option<i32>,
    active_count: Option<i32>,
    failed_count: Option<i32>,
    total_count: Option<i32>,
    created_delta: Option<i32>,
    completed_delta: Option<i32>,
    failed_delta: Option<i32>,
    delta_seconds: Option<i32>,
    delta_on: Option<DateTime<Utc>>,
    wait_bins: Option<Vec<Option<i32>>>,
    run_bins: Option<Vec<Option<i32>>>,
    ready_oldest_seconds: Option<i32>,
    captured_on: Option<DateTime<Utc>>,
}

/// One datapoint as `getQueueStats()` answers it, fields in pg-boss's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    name: String,
    deferred_count: i32,
    queued_count: i32,
    ready_count: i32,
    active_count: i32,
    failed_count: i32,
    total_count: i32,
    completed_delta: Option<i32>,
    failed_delta: Option<i32>,
    created_delta: Option<i32>,
    delta_seconds: Option<i32>,
    delta_on: Option<DateTime<Utc>>,
    wait_bins: Option<Vec<i64>>,
    run_bins: Option<Vec<i64>>,
    ready_oldest_seconds: Option<i32>,
    captured_on: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    percentiles: Option<Vec<PercentileReading>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PercentileReading {
    p: f64,
    wait_seconds: Option<f64>,
    run_seconds: Option<f64>,
}

/// A histogram as handed out: a slot stored as null (no job landed there) reads as 0.
fn bins(stored: &Option<Vec<Option<i32>>>) -> Option<Vec<i64>> {
    stored
        .as_ref()
        .map(|slots| slots.iter().map(|n| i64::from(n.unwrap_or(0))).collect())
}

/// The time below which `p` percent of a histogram's jobs fall, estimated within its slot; null
/// for an empty histogram. Slot 0 only says "under 10 ms" and the last slot "past its lower edge".
pub fn percentile(bins: Option<&[i64]>, p: f64) -> Option<f64> {
    let bins = bins?;
    let total: i64 = bins.iter().sum();
    if total == 0 || bins.is_empty() {
        return None;
    }
    let target = p / 100.0 * total as f64;
    let last = bins.len() - 1;
    let (mut slot, mut below) = (0usize, 0.0f64);
    while slot < last && !(bins[slot] > 0 && below + bins[slot] as f64 >= target) {
        below += bins[slot] as f64;
        slot += 1;
    }
    if slot == 0 {
        return Some(LATENCY_MIN_SECONDS);
    }
    let lower = LATENCY_MIN_SECONDS * js_pow(std::f64::consts::SQRT_2, (slot - 1) as f64);
    if slot == last {
        return Some(lower);
    }
    Some(
        lower
            * js_pow(
                std::f64::consts::SQRT_2,
                (target - below) / bins[slot] as f64,
            ),
    )
}

/// `x ** y`. V8's pow can differ from the platform's in the last bit, so the JS entry reads the
/// percentiles again from the same histograms with JavaScript's own arithmetic.
fn js_pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}

impl StatsRow {
    /// `counted` rows (recorded snapshots) carry their throughput; the cached counts only gauges.
    fn snapshot(self, name: &str, counted: bool, percentiles: Option<&[f64]>) -> Snapshot {
        let mut out = Snapshot {
            name: name.to_string(),
            deferred_count: self.deferred_count.unwrap_or(0),
            queued_count: self.queued_count.unwrap_or(0),
            ready_count: self.ready_count.unwrap_or(0),
            active_count: self.active_count.unwrap_or(0),
            failed_count: self.failed_count.unwrap_or(0),
            total_count: self.total_count.unwrap_or(0),
            completed_delta: None,
            failed_delta: None,
            created_delta: None,
            delta_seconds: None,
            delta_on: None,
            wait_bins: None,
            run_bins: None,
            ready_oldest_seconds: None,
            captured_on: self.captured_on.unwrap_or_else(Utc::now),
            percentiles: None,
        };
        if counted {
            out.completed_delta = self.completed_delta;
            out.failed_delta = self.failed_delta;
            out.created_delta = self.created_delta;
            out.delta_seconds = self.delta_seconds;
            out.delta_on = self.delta_on;
            out.wait_bins = bins(&self.wait_bins);
            out.run_bins = bins(&self.run_bins);
            out.ready_oldest_seconds = self.ready_oldest_seconds;
        }
        out.percentiles = percentiles.map(|ps| {
            ps.iter()
                .map(|&p| PercentileReading {
                    p,
                    wait_seconds: percentile(out.wait_bins.as_deref(), p),
                    run_seconds: percentile(out.run_bins.as_deref(), p),
                })
                .collect()
        });
        out
    }
}

/// The columns of a snapshot row, as `StatsRow` reads them.
const SNAPSHOT_COLUMNS: &str = "deferred_count, queued_count, ready_count, active_count, failed_count, total_count,
  created_delta, completed_delta, failed_delta, delta_seconds, delta_on, wait_bins, run_bins, ready_oldest_seconds, captured_on";

/// How a bucket collapses its gauges.
#[derive(Debug, Clone, Copy)]
enum Aggregate {
    Max,
    Min,
    Avg,
}

impl Aggregate {
    fn of(self, column: &str) -> String {
        match self {
            Aggregate::Max => format!("max({column})::int"),
            Aggregate::Min => format!("min({column})::int"),
            Aggregate::Avg => format!("round(avg({column}))::int"),
        }
    }
}

/// How bucket widths are chosen: explicitly, or so the series fits in about N points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Buckets {
    Seconds(i64),
    MaxPoints(i64),
}

/// The history reading the options ask for.
struct HistoryRequest {
    from: Option<String>,
    to: Option<String>,
    limit: i64,
    buckets: Option<(Buckets, Aggregate)>,
}

/// `getQueueStats(name, options)` as JSON text (fields in pg-boss's order): an array of
/// datapoints, newest first.
pub async fn get_queue_stats(
    pool: &PgPool,
    config: &BossConfig,
    cache: &QueueCache,
    name: &Value,
    options: &Options,
) -> Result<String> {
    let schema = config.schema.as_str();
    let name = crate::model::names::assert_queue_name(name)?;
    let percentiles = percentiles_option(options)?;
    let percentiles = percentiles.as_deref();
    let snapshots: Vec<Snapshot> = if config.observability.persist_queue_stats {
        queues::cached(pool, schema, cache, name).await?;
        let request = history_request(options)?;
        history(pool, schema, name, &request)
            .await?
            .into_iter()
            .map(|row| row.snapshot(name, true, percentiles))
            .collect()
    } else {
        vec![current(pool, config, name, options)
            .await?
            .snapshot(name, false, percentiles)]
    };
    Ok(serde_json::to_string(&snapshots)?)
}

/// `percentiles`: a non-empty list of percents from 1 to 100, each kept once in the order given.
fn percentiles_option(options: &Options) -> Result<Option<Vec<f64>>> {
    let Some(value) = options.get("percentiles") else {
        return Ok(None);
    };
    let list: Option<Vec<f64>> = value.as_array().filter(|a| !a.is_empty()).and_then(|a| {
        a.iter()
            .map(|p| p.as_f64().filter(|p| (1.0..=100.0).contains(p)))
            .collect()
    });
    let Some(list) = list else {
        return Err(crate::error::Error::invalid(
            "getQueueStats: percentiles must be a non-empty array of percents from 1 to 100, such as [50, 95]",
        ));
    };
    let mut seen = HashSet::new();
    Ok(Some(
        list.into_iter()
            .filter(|p| seen.insert(p.to_bits()))
            .collect(),
    ))
}

fn history_request(options: &Options) -> Result<HistoryRequest> {
    let limit = match options.get("limit") {
        None => LIMIT_DEFAULT,
        Some(v) => {
            ensure!(
                is_integer(v)
                    && v.as_f64()
                        .is_some_and(|l| (1.0..=LIMIT_MAX as f64).contains(&l)),
                "getQueueStats: limit must be an integer between 1 and {LIMIT_MAX}"
            );
            v.as_f64().unwrap_or(0.0) as i64
        }
    };
    let bucket_seconds = options.get("bucketSeconds");
    let max_points = options.get("maxDataPoints");
    let buckets = if bucket_seconds.is_some() || max_points.is_some() {
        let aggregate = match options.get("aggregate") {
            None => Some(Aggregate::Max),
            Some(v) => match v.as_str() {
                Some("max") => Some(Aggregate::Max),
                Some("min") => Some(Aggregate::Min),
                Some("avg") => Some(Aggregate::Avg),
                _ => None,
            },
        };
        let aggregate = aggregate.ok_or_else(|| {
            crate::error::Error::invalid("getQueueStats: aggregate must be 'max', 'min', or 'avg'")
        })?;
        // As pg-boss reads them: the mode by which key is present, the width by which is set.
        let key = if bucket_seconds.is_some() {
            "bucketSeconds"
        } else {
            "maxDataPoints"
        };
        let width = bucket_seconds
            .filter(|v| !v.is_null())
            .or(max_points)
            .unwrap_or(&Value::Null);
        ensure!(
            is_integer(width) && width.as_f64().is_some_and(|w| w >= 1.0),
            "getQueueStats: {key} must be a positive integer"
        );
        let width = width.as_f64().unwrap_or(1.0).min(i64::MAX as f64) as i64;
        let buckets = if bucket_seconds.is_some() {
            Buckets::Seconds(width)
        } else {
            Buckets::MaxPoints(width)
        };
        Some((buckets, aggregate))
    } else {
        None
    };
    Ok(HistoryRequest {
        from: time_option(options, "from"),
        to: time_option(options, "to"),
        limit,
        buckets,
    })
}

/// `from`/`to` arrive as JSON (a Date as its ISO text) and go to PostgreSQL as text, which parses
/// them as the timestamptz pg-boss would have sent.
fn time_option(options: &Options, key: &str) -> Option<String> {
    match options.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

async fn history(
    pool: &PgPool,
    schema: &str,
    name: &str,
    request: &HistoryRequest,
) -> Result<Vec<StatsRow>> {
    let Some((buckets, aggregate)) = request.buckets else {
        let sql = format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM {schema}.queue_stats
             WHERE name = $1
               AND ($2::text IS NULL OR captured_on >= $2::text::timestamptz)
               AND ($3::text IS NULL OR captured_on <= $3::text::timestamptz)
             ORDER BY captured_on DESC
             LIMIT $4"
        );
        return Ok(sqlx::query_as(&sql)
            .bind(name)
            .bind(&request.from)
            .bind(&request.to)
            .bind(request.limit)
            .fetch_all(pool)
            .await?);
    };
    let width = match buckets {
        Buckets::Seconds(seconds) => seconds,
        Buckets::MaxPoints(points) => points,
    };
    Ok(sqlx::query_as(&bucketed_sql(schema, buckets, aggregate))
        .bind(name)
        .bind(&request.from)
        .bind(&request.to)
        .bind(request.limit)
        .bind(width)
        .fetch_all(pool)
        .await?)
}

/// The series in time buckets aligned to the Unix epoch. $1 queue, $2/$3 from/to (text or null),
/// $4 limit, $5 the bucket width in seconds or the number of points to fit in.
///
/// Gauges (the counts) belong to the moment they were read, `captured_on`, and collapse with the
/// chosen aggregate. Counters (the deltas) describe an interval ending at `delta_on`, are bucketed
/// by that instead, and add up. A counter bucket with no capture in it joins the newest gauge
/// bucket before it (the first one when none precedes it), so every bucket returned has gauges
/// behind it. Histograms add up slot by slot over the passes placed in each returned bucket.
fn bucketed_sql(schema: &str, buckets: Buckets, aggregate: Aggregate) -> String {
    let from = "($2::text IS NULL OR {col} >= $2::text::timestamptz)";
    let to = "($3::text IS NULL OR {col} <= $3::text::timestamptz)";
    let in_range = |col: &str| {
        format!(
            "{} AND {}",
            from.replace("{col}", col),
            to.replace("{col}", col)
        )
    };
    let width = match buckets {
        Buckets::Seconds(_) => "width AS (SELECT greatest($5::bigint, 1) AS secs)".to_string(),
        Buckets::MaxPoints(_) => format!(
            "span AS (
               SELECT greatest(coalesce($2::text::timestamptz, first_at), first_at) AS lo,
                      least(coalesce($3::text::timestamptz, last_at), last_at) AS hi
               FROM (SELECT min(captured_on) AS first_at, max(captured_on) AS last_at FROM {schema}.queue_stats WHERE name = $1) extent
             ),
             width AS (
               SELECT greatest(1, ceil(extract(epoch FROM (hi - lo))::float8 / greatest($5::bigint, 1)::float8)::bigint) AS secs FROM span
             )"
        ),
    };
    // An epoch-aligned span can straddle one boundary more than asked for; the newest N are kept.
    let limit = match buckets {
        Buckets::Seconds(_) => "$4",
        Buckets::MaxPoints(_) => "least($4::bigint, $5::bigint)",
    };
    let bucket = |col: &str| {
        format!("to_timestamp(floor(extract(epoch FROM {col})::float8 / width.secs::float8) * width.secs::float8)")
    };
    let gauge = |col: &str| aggregate.of(col);
    format!(
        "WITH {width},
         gauges AS (
           SELECT {captured_bucket} AS bucket,
             {deferred} AS deferred_count, {queued} AS queued_count, {ready} AS ready_count,
             {active} AS active_count, {failed} AS failed_count, {total} AS total_count
           FROM {schema}.queue_stats, width
           WHERE name = $1 AND {captured_range}
           GROUP BY 1
         ),
         counters AS (
           SELECT {delta_bucket} AS bucket,
             sum(created_delta)::int AS created_delta, sum(completed_delta)::int AS completed_delta,
             sum(failed_delta)::int AS failed_delta, sum(delta_seconds)::int AS delta_seconds,
             max(delta_on) AS delta_on, max(ready_oldest_seconds) AS ready_oldest_seconds
           FROM {schema}.queue_stats, width
           WHERE name = $1 AND delta_on IS NOT NULL AND {delta_range}
           GROUP BY 1
         ),
         placed AS (
           SELECT coalesce(
                    max(g.bucket) OVER (ORDER BY coalesce(g.bucket, c.bucket) ROWS UNBOUNDED PRECEDING),
                    min(g.bucket) OVER ()
                  ) AS bucket,
                  c.bucket AS counter_bucket,
                  g.deferred_count, g.queued_count, g.ready_count, g.active_count, g.failed_count, g.total_count,
                  c.created_delta, c.completed_delta, c.failed_delta, c.delta_seconds, c.delta_on, c.ready_oldest_seconds
           FROM gauges g FULL JOIN counters c ON c.bucket = g.bucket
         ),
         measured AS (
           SELECT {delta_bucket} AS counter_bucket, wait_bins, run_bins
           FROM {schema}.queue_stats, width
           WHERE name = $1 AND delta_on IS NOT NULL AND wait_bins IS NOT NULL AND {delta_range}
         ),
         slot_sums AS (
           SELECT p.bucket, s.slot, coalesce(sum(s.w), 0)::int AS w, coalesce(sum(s.r), 0)::int AS r
           FROM (SELECT DISTINCT bucket, counter_bucket FROM placed) p
           JOIN measured m ON m.counter_bucket = p.counter_bucket,
           unnest(m.wait_bins, m.run_bins) WITH ORDINALITY AS s(w, r, slot)
           GROUP BY 1, 2
         ),
         histograms AS (
           SELECT bucket, array_agg(w ORDER BY slot) AS wait_bins, array_agg(r ORDER BY slot) AS run_bins
           FROM slot_sums GROUP BY 1
         ),
         folded AS (
           SELECT bucket,
             max(deferred_count)::int AS deferred_count, max(queued_count)::int AS queued_count,
             max(ready_count)::int AS ready_count, max(active_count)::int AS active_count,
             max(failed_count)::int AS failed_count, max(total_count)::int AS total_count,
             sum(created_delta)::int AS created_delta, sum(completed_delta)::int AS completed_delta,
             sum(failed_delta)::int AS failed_delta, sum(delta_seconds)::int AS delta_seconds,
             max(delta_on) AS delta_on, max(ready_oldest_seconds)::int AS ready_oldest_seconds
           FROM placed WHERE bucket IS NOT NULL
           GROUP BY 1
         )
         SELECT f.deferred_count, f.queued_count, f.ready_count, f.active_count, f.failed_count, f.total_count,
           f.created_delta, f.completed_delta, f.failed_delta, f.delta_seconds, f.delta_on,
           h.wait_bins, h.run_bins, f.ready_oldest_seconds, f.bucket AS captured_on
         FROM folded f LEFT JOIN histograms h ON h.bucket = f.bucket
         ORDER BY f.bucket DESC
         LIMIT {limit}",
        captured_bucket = bucket("captured_on"),
        delta_bucket = bucket("delta_on"),
        captured_range = in_range("captured_on"),
        delta_range = in_range("delta_on"),
        deferred = gauge("deferred_count"),
        queued = gauge("queued_count"),
        ready = gauge("ready_count"),
        active = gauge("active_count"),
        failed = gauge("failed_count"),
        total = gauge("total_count"),
    )
}

/// The queue row's cached counts, counted afresh when older than the cache allows.
async fn current(
    pool: &PgPool,
    config: &BossConfig,
    name: &str,
    options: &Options,
) -> Result<StatsRow> {
    let schema = config.schema.as_str();
    let (row, table, age_ms, backoff) = cached_counts(pool, schema, name).await?;
    let force = truthy(options.get("force"));
    let budget_seconds = if force {
        FORCE_TTL_SECONDS
    } else {
        CACHE_TTL_SECONDS
            .max(config.monitor_interval_seconds)
            .max(config.supervise_interval_seconds)
    };
    let never_counted = row.captured_on.is_none();
    // A pg-boss instance backing off to spare autovacuum defers counting; the cache is served then,
    // unless there is none yet.
    if (backoff && !never_counted) || age_ms.is_some_and(|age| age <= budget_seconds * 1000.0) {
        return Ok(row);
    }
    // A queue never counted has nothing to fall back on, so its first count does not give way to
    // a count in progress elsewhere; later ones do, and serve the cache they would have refreshed.
    let lock = if never_counted {
        CountLock::Unlocked
    } else {
        CountLock::Read
    };
    if supervisor::refresh_counts_with(pool, schema, &table, &[name.to_string()], lock, None)
        .await?
        .is_some()
    {
        Ok(cached_counts(pool, schema, name).await?.0)
    } else {
        Ok(row)
    }
}

/// The queue row's counts with its job table, the cache's age in milliseconds (none when never
/// counted) and whether a monitor backoff is in force.
async fn cached_counts(
    pool: &PgPool,
    schema: &str,
    name: &str,
) -> Result<(StatsRow, String, Option<f64>, bool)> {
    let sql = format!(
        "SELECT deferred_count, queued_count, ready_count, active_count, failed_count, total_count, monitor_on, table_name,
           (extract(epoch FROM ({schema}.job_now() - monitor_on)) * 1000)::float8 AS age_ms,
           coalesce((SELECT monitor_backoff_on > {schema}.job_now() FROM {schema}.version LIMIT 1), false) AS backoff
         FROM {schema}.queue WHERE name = $1"
    );
    type Row = (
        i32,
        i32,
        i32,
        i32,
        i32,
        i32,
        Option<DateTime<Utc>>,
        String,
        Option<f64>,
        bool,
    );
    let row: Option<Row> = sqlx::query_as(&sql).bind(name).fetch_optional(pool).await?;
    let (deferred, queued, ready, active, failed, total, monitor_on, table, age_ms, backoff) =
        row.ok_or_else(|| crate::model::queue::queue_not_found(name))?;
    let stats = StatsRow {
        deferred_count: Some(deferred),
        queued_count: Some(queued),
        ready_count: Some(ready),
        active_count: Some(active),
        failed_count: Some(failed),
        total_count: Some(total),
        captured_on: monitor_on,
        ..StatsRow::default()
    };
    Ok((stats, table, age_ms, backoff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_histograms_like_pg_boss() {
        assert_eq!(percentile(None, 50.0), None);
        assert_eq!(percentile(Some(&[0, 0, 0]), 50.0), None);
        // Everything in slot 0: under 10 ms.
        assert_eq!(percentile(Some(&[4, 0, 0]), 95.0), Some(0.01));
        // Everything in the last slot: its lower edge.
        assert_eq!(
            percentile(Some(&[0, 0, 2]), 50.0),
            Some(0.01 * std::f64::consts::SQRT_2)
        );
        // Half-way through slot 1 (0.01 .. 0.01·√2).
        let p = percentile(Some(&[0, 2, 0]), 50.0).unwrap();
        assert!((p - 0.01 * std::f64::consts::SQRT_2.powf(0.5)).abs() < 1e-12);
    }

    #[test]
    fn options_are_validated_with_pg_boss_messages() {
        let opts = |v: Value| v.as_object().unwrap().clone();
        assert!(percentiles_option(&opts(json!({ "percentiles": [] }))).is_err());
        assert!(percentiles_option(&opts(json!({ "percentiles": [0.5] }))).is_err());
        assert_eq!(
            percentiles_option(&opts(json!({ "percentiles": [95, 50, 95] }))).unwrap(),
            Some(vec![95.0, 50.0])
        );
        let err = history_request(&opts(json!({ "limit": 0 }))).err().unwrap();
        assert_eq!(
            err.message,
            "getQueueStats: limit must be an integer between 1 and 100000"
        );
        let err = history_request(&opts(json!({ "bucketSeconds": 60, "aggregate": "sum" })))
            .err()
            .unwrap();
        assert_eq!(
            err.message,
            "getQueueStats: aggregate must be 'max', 'min', or 'avg'"
        );
        let err = history_request(&opts(json!({ "maxDataPoints": 1.5 })))
            .err()
            .unwrap();
        assert_eq!(
            err.message,
            "getQueueStats: maxDataPoints must be a positive integer"
        );
        let request =
            history_request(&opts(json!({ "bucketSeconds": 60, "maxDataPoints": 10 }))).unwrap();
        assert!(matches!(
            request.buckets,
            Some((Buckets::Seconds(60), Aggregate::Max))
        ));
    }
}
