//! The statements of queue statistics: the daily `queue_stats` partitions, recording and truing
//! up snapshots, and reading the history back (raw or in time buckets) or the queue row's cached
//! counts.

use std::sync::Arc;

use super::counting;
use super::StatementCache;
use crate::config::resolve_schema_name;
use crate::model::stats::{Aggregate, BucketMode};
use crate::sql::install::advisory_lock_key;

/// The columns of a snapshot row, in the order a stats row is read.
pub const SNAPSHOT_COLUMNS: &str = "deferred_count, queued_count, ready_count, active_count, failed_count, total_count,
  created_delta, completed_delta, failed_delta, delta_seconds, delta_on, wait_bins, run_bins, ready_oldest_seconds, captured_on";

/// A schema's statistics statements; the variants of a few are rendered on first use, and kept.
#[derive(Debug)]
pub struct StatsSql {
    schema: String,
    /// Creates today's and tomorrow's partitions (UTC) that do not exist yet.
    pub ensure_partitions: String,
    /// Whether `queue_stats` is partitioned by day: it is not in a schema pg-boss installed
    /// without table partitioning (its `cockroachdb` and `yugabytedb` backends).
    pub partitioned: String,
    /// pg-boss's lock around recording snapshots.
    pub record_lock: Option<String>,
    /// $1 names: one snapshot per queue of what the last count wrote on its row.
    pub record: String,
    /// $1 name, $2/$3 from/to (text or null), $4 limit: snapshots, newest first.
    pub history: String,
    /// $1 name: the queue row's cached counts (see `CachedCounts` in ops).
    pub cached_counts: String,
    drop_partitions: StatementCache<i64>,
    delete_old: StatementCache<i64>,
    true_up: StatementCache<String>,
    bucketed: StatementCache<(BucketMode, Aggregate)>,
}

impl StatsSql {
    pub fn new(schema: &str, locks: bool) -> StatsSql {
        StatsSql {
            schema: schema.to_string(),
            ensure_partitions: ensure_partitions(schema),
            partitioned: format!(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = '{}' AND c.relname = 'queue_stats' AND c.relkind = 'p') AS partitioned",
                resolve_schema_name(schema).replace('\'', "''")
            ),
            record_lock: locks.then(|| {
                format!(
                    "SELECT pg_advisory_xact_lock({})",
                    advisory_lock_key(schema, "queue-stats-insert")
                )
            }),
            record: record(schema),
            history: history(schema),
            cached_counts: cached_counts(schema),
            drop_partitions: StatementCache::default(),
            delete_old: StatementCache::default(),
            true_up: StatementCache::default(),
            bucketed: StatementCache::default(),
        }
    }

    /// Drops the daily partitions whose day is more than `days` before today (UTC). A DO block
    /// takes no parameters, so each retention gets its own text (an instance has one).
    pub fn drop_partitions(&self, days: i64) -> Arc<str> {
        self.drop_partitions
            .get(days, || drop_partitions(&self.schema, days))
    }

    /// Without partitions: deletes a batch of the snapshots captured more than `days` ago;
    /// answers how many went.
    pub fn delete_old(&self, days: i64) -> Arc<str> {
        self.delete_old.get(days, || delete_old(&self.schema, days))
    }

    /// $1 names: raises `table`'s queues' recent snapshots to the jobs now stamped in their
    /// windows; answers how many were raised.
    pub fn true_up(&self, table: &str) -> Arc<str> {
        self.true_up
            .get(table.to_string(), || true_up(&self.schema, table))
    }

    /// $1 name, $2/$3 from/to, $4 limit, $5 width: the series in time buckets.
    pub fn bucketed(&self, mode: BucketMode, aggregate: Aggregate) -> Arc<str> {
        self.bucketed.get((mode, aggregate), || {
            bucketed_sql(&self.schema, mode, aggregate)
        })
    }
}

fn ensure_partitions(schema: &str) -> String {
    format!(
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
    )
}

/// How many old snapshots one statement deletes without partitions.
pub const DELETE_OLD_BATCH: i32 = 1000;

fn delete_old(schema: &str, days: i64) -> String {
    format!(
        "WITH batch AS (
           SELECT id FROM {schema}.queue_stats
           WHERE captured_on < {schema}.job_now() - interval '{days} days'
           ORDER BY captured_on, id
           LIMIT {DELETE_OLD_BATCH}
         ), removed AS (
           DELETE FROM {schema}.queue_stats WHERE id IN (SELECT id FROM batch) RETURNING 1
         )
         SELECT (SELECT count(*) FROM removed)::int AS deleted"
    )
}

fn drop_partitions(schema: &str, days: i64) -> String {
    let resolved = resolve_schema_name(schema).replace('\'', "''");
    format!(
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
    )
}

fn record(schema: &str) -> String {
    format!(
        "INSERT INTO {schema}.queue_stats
           (name, deferred_count, queued_count, ready_count, active_count, failed_count, total_count,
            created_delta, completed_delta, failed_delta, delta_seconds, delta_on, wait_bins, run_bins, ready_oldest_seconds,
            captured_on)
         SELECT name, deferred_count, queued_count, ready_count, active_count, failed_count, total_count,
           created_delta, completed_delta, failed_delta, delta_seconds, delta_on, wait_bins, run_bins, ready_oldest_seconds,
           {schema}.job_now()
         FROM {schema}.queue WHERE name = ANY($1)"
    )
}

/// A snapshot's window is rebuilt rather than stored: it runs from the previous snapshot's
/// `delta_on` to its own, and the first one from the anchor (see `counting::true_up_anchor`).
/// `width_bucket` over those ends places every job in its window with a binary search. Counters
/// only ever rise: a recount below a snapshot means retention or a delete removed rows it
/// counted, not that it was wrong.
fn true_up(schema: &str, table: &str) -> String {
    format!(
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
    )
}

fn history(schema: &str) -> String {
    format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM {schema}.queue_stats
         WHERE name = $1
           AND ($2::text IS NULL OR captured_on >= $2::text::timestamptz)
           AND ($3::text IS NULL OR captured_on <= $3::text::timestamptz)
         ORDER BY captured_on DESC
         LIMIT $4"
    )
}

/// The counts with the job table, the cache's age in milliseconds (null when never counted) and
/// whether a pg-boss instance backs off counting to spare autovacuum.
fn cached_counts(schema: &str) -> String {
    format!(
        "SELECT deferred_count, queued_count, ready_count, active_count, failed_count, total_count, monitor_on, table_name,
           (extract(epoch FROM ({schema}.job_now() - monitor_on)) * 1000)::float8 AS age_ms,
           coalesce((SELECT monitor_backoff_on > {schema}.job_now() FROM {schema}.version LIMIT 1), false) AS backoff
         FROM {schema}.queue WHERE name = $1"
    )
}

fn aggregate_of(aggregate: Aggregate, column: &str) -> String {
    match aggregate {
        Aggregate::Max => format!("max({column})::int"),
        Aggregate::Min => format!("min({column})::int"),
        Aggregate::Avg => format!("round(avg({column}))::int"),
    }
}

/// The series in time buckets aligned to the Unix epoch. $1 queue, $2/$3 from/to (text or null),
/// $4 limit, $5 the bucket width in seconds or the number of points to fit in.
///
/// Gauges (the counts) belong to the moment they were read, `captured_on`, and collapse with the
/// chosen aggregate. Counters (the deltas) describe an interval ending at `delta_on`, are bucketed
/// by that instead, and add up. A counter bucket with no capture in it joins the newest gauge
/// bucket before it (the first one when none precedes it), so every bucket returned has gauges
/// behind it. Histograms add up slot by slot over the passes placed in each returned bucket.
fn bucketed_sql(schema: &str, mode: BucketMode, aggregate: Aggregate) -> String {
    format!(
        "WITH {width},
         {gauges},
         {counters},
         {PLACED_CTE},
         {measured},
         {SLOT_SUMS_CTE},
         {HISTOGRAMS_CTE},
         {FOLDED_CTE}
         {select}",
        width = bucket_width(schema, mode),
        gauges = gauges_cte(schema, aggregate),
        counters = counters_cte(schema),
        measured = measured_cte(schema),
        select = select_buckets(mode),
    )
}

/// Whether `column` lies between $2 and $3, either of which may be left out.
fn in_range(column: &str) -> String {
    format!(
        "($2::text IS NULL OR {column} >= $2::text::timestamptz) AND ($3::text IS NULL OR {column} <= $3::text::timestamptz)"
    )
}

/// The start of the bucket `column` falls in.
fn bucket_of(column: &str) -> String {
    format!("to_timestamp(floor(extract(epoch FROM {column})::float8 / width.secs::float8) * width.secs::float8)")
}

/// `gauges`: the counts captured in each bucket, collapsed with `aggregate`.
fn gauges_cte(schema: &str, aggregate: Aggregate) -> String {
    let gauge = |column: &str| aggregate_of(aggregate, column);
    format!(
        "gauges AS (
           SELECT {captured_bucket} AS bucket,
             {deferred} AS deferred_count, {queued} AS queued_count, {ready} AS ready_count,
             {active} AS active_count, {failed} AS failed_count, {total} AS total_count
           FROM {schema}.queue_stats, width
           WHERE name = $1 AND {captured_range}
           GROUP BY 1
         )",
        captured_bucket = bucket_of("captured_on"),
        captured_range = in_range("captured_on"),
        deferred = gauge("deferred_count"),
        queued = gauge("queued_count"),
        ready = gauge("ready_count"),
        active = gauge("active_count"),
        failed = gauge("failed_count"),
        total = gauge("total_count"),
    )
}

/// `counters`: the deltas of the windows ending in each bucket, added up.
fn counters_cte(schema: &str) -> String {
    format!(
        "counters AS (
           SELECT {delta_bucket} AS bucket,
             sum(created_delta)::int AS created_delta, sum(completed_delta)::int AS completed_delta,
             sum(failed_delta)::int AS failed_delta, sum(delta_seconds)::int AS delta_seconds,
             max(delta_on) AS delta_on, max(ready_oldest_seconds) AS ready_oldest_seconds
           FROM {schema}.queue_stats, width
           WHERE name = $1 AND delta_on IS NOT NULL AND {delta_range}
           GROUP BY 1
         )",
        delta_bucket = bucket_of("delta_on"),
        delta_range = in_range("delta_on"),
    )
}

/// `placed`: each counter bucket beside the gauge bucket it is returned in.
const PLACED_CTE: &str = "placed AS (
           SELECT coalesce(
                    max(g.bucket) OVER (ORDER BY coalesce(g.bucket, c.bucket) ROWS UNBOUNDED PRECEDING),
                    min(g.bucket) OVER ()
                  ) AS bucket,
                  c.bucket AS counter_bucket,
                  g.deferred_count, g.queued_count, g.ready_count, g.active_count, g.failed_count, g.total_count,
                  c.created_delta, c.completed_delta, c.failed_delta, c.delta_seconds, c.delta_on, c.ready_oldest_seconds
           FROM gauges g FULL JOIN counters c ON c.bucket = g.bucket
         )";

/// `measured`: the histograms of each pass that carries them, by counter bucket.
fn measured_cte(schema: &str) -> String {
    format!(
        "measured AS (
           SELECT {delta_bucket} AS counter_bucket, wait_bins, run_bins
           FROM {schema}.queue_stats, width
           WHERE name = $1 AND delta_on IS NOT NULL AND wait_bins IS NOT NULL AND {delta_range}
         )",
        delta_bucket = bucket_of("delta_on"),
        delta_range = in_range("delta_on"),
    )
}

/// `slot_sums`: each returned bucket's histograms added up, one row per slot.
const SLOT_SUMS_CTE: &str = "slot_sums AS (
           SELECT p.bucket, s.slot, coalesce(sum(s.w), 0)::int AS w, coalesce(sum(s.r), 0)::int AS r
           FROM (SELECT DISTINCT bucket, counter_bucket FROM placed) p
           JOIN measured m ON m.counter_bucket = p.counter_bucket,
           unnest(m.wait_bins, m.run_bins) WITH ORDINALITY AS s(w, r, slot)
           GROUP BY 1, 2
         )";

/// `histograms`: the slot sums folded back into arrays.
const HISTOGRAMS_CTE: &str = "histograms AS (
           SELECT bucket, array_agg(w ORDER BY slot) AS wait_bins, array_agg(r ORDER BY slot) AS run_bins
           FROM slot_sums GROUP BY 1
         )";

/// `folded`: one row per returned bucket, gauges and counters together.
const FOLDED_CTE: &str = "folded AS (
           SELECT bucket,
             max(deferred_count)::int AS deferred_count, max(queued_count)::int AS queued_count,
             max(ready_count)::int AS ready_count, max(active_count)::int AS active_count,
             max(failed_count)::int AS failed_count, max(total_count)::int AS total_count,
             sum(created_delta)::int AS created_delta, sum(completed_delta)::int AS completed_delta,
             sum(failed_delta)::int AS failed_delta, sum(delta_seconds)::int AS delta_seconds,
             max(delta_on) AS delta_on, max(ready_oldest_seconds)::int AS ready_oldest_seconds
           FROM placed WHERE bucket IS NOT NULL
           GROUP BY 1
         )";

/// The buckets as stats rows, newest first. An epoch-aligned span can straddle one boundary more
/// than asked for; the newest N are kept.
fn select_buckets(mode: BucketMode) -> String {
    let limit = match mode {
        BucketMode::Seconds => "$4",
        BucketMode::MaxPoints => "least($4::bigint, $5::bigint)",
    };
    format!(
        "SELECT f.deferred_count, f.queued_count, f.ready_count, f.active_count, f.failed_count, f.total_count,
           f.created_delta, f.completed_delta, f.failed_delta, f.delta_seconds, f.delta_on,
           h.wait_bins, h.run_bins, f.ready_oldest_seconds, f.bucket AS captured_on
         FROM folded f LEFT JOIN histograms h ON h.bucket = f.bucket
         ORDER BY f.bucket DESC
         LIMIT {limit}"
    )
}

/// The `width` CTE (`secs`): $5 seconds, or the span of the series over $5 points.
fn bucket_width(schema: &str, mode: BucketMode) -> String {
    match mode {
        BucketMode::Seconds => "width AS (SELECT greatest($5::bigint, 1) AS secs)".to_string(),
        BucketMode::MaxPoints => format!(
            "span AS (
               SELECT greatest(coalesce($2::text::timestamptz, first_at), first_at) AS lo,
                      least(coalesce($3::text::timestamptz, last_at), last_at) AS hi
               FROM (SELECT min(captured_on) AS first_at, max(captured_on) AS last_at FROM {schema}.queue_stats WHERE name = $1) extent
             ),
             width AS (
               SELECT greatest(1, ceil(extract(epoch FROM (hi - lo))::float8 / greatest($5::bigint, 1)::float8)::bigint) AS secs FROM span
             )"
        ),
    }
}
