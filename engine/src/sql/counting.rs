//! The statements that write a queue's counts onto its row, with the rules pg-boss 12.38 writes
//! them by. pg-boss instances and ours share these columns and take turns counting a schema, so
//! every watermark below moves exactly as pg-boss moves it; a rule that differed would make one
//! of them count an interval twice or skip it.
//!
//! * The gauges come from the live jobs alone (created, retry, active, failed: what job_i14 holds).
//! * `total_count` is the live jobs plus `retained_count`, the completed and cancelled ones. A
//!   maintenance pass counts those outright, up to a watermark it stores in `retained_on`; every
//!   count after it adds the jobs finished since the watermark and moves the watermark up. So a
//!   count reads the live jobs and what finished lately, never every job the queue keeps.
//! * With `persistQueueStats`, a monitor pass also measures the throughput of the window since the
//!   queue's `delta_on`: jobs created, completed and failed, wait and run histograms, and how long
//!   the oldest ready job has waited. It also recounts the windows already recorded, to tell
//!   whether jobs committed into them late (the true-up check; `ops::stats::record::true_up`
//!   does the fix).
//!
//! Both watermarks trail the pass by [`LAG_SECONDS`]: job stamps come from `job_now()`, the start of the
//! transaction that wrote them, so a job committed just after a pass can carry a stamp from before
//! it. A window that ends ten seconds back still has that job ahead of it.

use std::sync::Arc;

use super::StatementCache;
use crate::sql::install::advisory_lock_key;

/// A schema's counting statements. The ones whose text names a job table are rendered the first
/// time a table is counted, and kept.
#[derive(Debug)]
pub struct CountingSql {
    schema: String,
    /// pg-boss's try-lock around counting (`queue-stats`): one instance counts a schema at a time.
    pub try_lock: Option<String>,
    /// The same lock, waited for: through a caller's handle a transaction goes as one text, which
    /// cannot skip its count when the try fails.
    pub lock: Option<String>,
    /// $1 names (text[]): hands a monitor claim back, for a monitor pass that found another
    /// instance counting.
    pub release_monitor_claim: String,
    /// See [`retained_watermark_sql`].
    pub retained_watermark: String,
    /// See [`reduce_retained_sql`].
    pub reduce_retained: String,
    per_table: StatementCache<CountStatement>,
}

/// The counting statements kept per job table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CountStatement {
    Count {
        table: String,
        monitor: bool,
        /// The throughput's reset gap, as the bits of its f64 (an instance has one).
        reset_max: Option<u64>,
    },
    SetRetained {
        table: String,
    },
}

impl CountingSql {
    pub fn new(schema: &str, locks: bool) -> CountingSql {
        CountingSql {
            schema: schema.to_string(),
            try_lock: locks.then(|| {
                format!(
                    "SELECT pg_try_advisory_xact_lock({})",
                    advisory_lock_key(schema, "queue-stats")
                )
            }),
            lock: locks.then(|| {
                format!(
                    "SELECT pg_advisory_xact_lock({})",
                    advisory_lock_key(schema, "queue-stats")
                )
            }),
            release_monitor_claim: format!(
                "UPDATE {schema}.queue q SET monitor_claim_on = NULL
                 FROM (SELECT name FROM {schema}.queue WHERE name = ANY($1) ORDER BY name FOR NO KEY UPDATE) r
                 WHERE q.name = r.name"
            ),
            retained_watermark: retained_watermark_sql(schema),
            reduce_retained: reduce_retained_sql(schema),
            per_table: StatementCache::default(),
        }
    }

    /// [`count_sql`] for `table`.
    pub fn count(&self, table: &str, monitor: bool, throughput: Option<Throughput>) -> Arc<str> {
        let key = CountStatement::Count {
            table: table.to_string(),
            monitor,
            reset_max: throughput.map(|t| t.reset_max_seconds.to_bits()),
        };
        self.per_table
            .get(key, || count_sql(&self.schema, table, monitor, throughput))
    }

    /// [`set_retained_sql`] for `table`.
    pub fn set_retained(&self, table: &str) -> Arc<str> {
        let key = CountStatement::SetRetained {
            table: table.to_string(),
        };
        self.per_table
            .get(key, || set_retained_sql(&self.schema, table))
    }
}

/// How far behind the pass the throughput window and the retained watermark end. Shared with
/// pg-boss through `delta_on`/`retained_on`, so it cannot be ours to choose.
pub const LAG_SECONDS: i64 = 10;
/// A window starting further back than this (counting was off for a while) starts afresh instead,
/// rather than landing hours of work on one snapshot.
const RESET_MAX_SECONDS: f64 = 2.0 * 60.0 * 60.0;
/// Recorded windows younger than this may still be revised by a true-up.
const TRUE_UP_HORIZON: &str = "interval '1 hour'";
/// Slots in a latency histogram: under 10 ms, 46 slots each √2 wider, and everything past.
pub const LATENCY_SLOTS: usize = 48;
/// The lower edge of slot 1, in seconds.
pub const LATENCY_MIN_SECONDS: f64 = 0.01;

const LIVE_STATES: &str = "state IN ('created', 'retry', 'active', 'failed')";
const RETAINED_STATES: &str = "state IN ('completed', 'cancelled')";
const FINISHED_STATES: &str = "state IN ('completed', 'failed')";

/// The end of the window a count covers.
pub fn window_end(schema: &str) -> String {
    format!("({schema}.job_now() - interval '{LAG_SECONDS} seconds')")
}

/// How the throughput of a monitor pass is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// A window starting further back than this starts afresh.
    pub reset_max_seconds: f64,
}

impl Throughput {
    /// For an instance whose counting passes are `pass_seconds` apart: the reset gap is two of
    /// them when that is longer than two hours, or every window would start afresh.
    pub fn for_pass(pass_seconds: f64) -> Throughput {
        Throughput {
            reset_max_seconds: if pass_seconds * 2.0 > RESET_MAX_SECONDS {
                pass_seconds * 2.0
            } else {
                RESET_MAX_SECONDS
            },
        }
    }
}

/// The slot of a duration given in seconds (float8 SQL). The two constants are written out as
/// JavaScript prints them (`Math.log(0.01)`, `Math.log(2) / 2`), so a duration on a slot edge lands
/// in the same slot as in pg-boss's histograms. Durations of zero or less (two clocks) go to slot 0.
fn latency_slot(seconds: &str) -> String {
    format!(
        "LEAST(GREATEST(floor((ln(GREATEST(({seconds})::float8, 0.001::float8)) - ({LN_MIN})::float8) / ({HALF_LN2})::float8)::int + 1, 0), {last})",
        last = LATENCY_SLOTS - 1
    )
}
const LN_MIN: &str = "-4.605170185988091";
const HALF_LN2: &str = "0.34657359027997264";

/// How long a job waited (from when it could first run) and ran, as float8 seconds. date_part,
/// unlike extract, stays float8, which the slot arithmetic needs to match pg-boss's bit for bit.
const WAIT_SECONDS: &str =
    "date_part('epoch', (j.started_on - GREATEST(j.created_on, j.start_after)))";
const RUN_SECONDS: &str = "date_part('epoch', (j.completed_on - j.started_on))";

/// A histogram of the slots in `slots` (an int[] SQL expression, one element per job): every slot
/// in order, null where no job landed, so a pass in which nothing finished still writes 48 slots.
fn histogram(slots: &str) -> String {
    format!(
        "(SELECT array_agg(c.n ORDER BY s.slot)
          FROM generate_series(0, {last}) AS s(slot)
          LEFT JOIN (SELECT u.slot, count(*)::int AS n FROM unnest({slots}) AS u(slot) GROUP BY u.slot) c ON c.slot = s.slot)",
        last = LATENCY_SLOTS - 1
    )
}

/// A lateral join giving `a.h`, the anchor of queue `q`'s revisable windows: the recorded windows
/// ending after it are the ones a true-up may still raise.
///
/// The newest snapshot at least the horizon old anchors, and so does one that started a window
/// afresh (null seconds), which counted nothing before its end on purpose. But never before the
/// first window end inside the queue's retention (the shorter of its two), since a recount of
/// windows retention has been deleting from would fall short and hide every late commit.
pub fn true_up_anchor(schema: &str, q: &str) -> String {
    format!(
        "LEFT JOIN LATERAL (
           SELECT CASE WHEN x.f IS NULL OR x.f > x.b THEN x.f ELSE x.b END AS h
           FROM (
             SELECT COALESCE(
                 max(s.delta_on) FILTER (WHERE s.delta_on <= {schema}.job_now() - {TRUE_UP_HORIZON} OR s.delta_seconds IS NULL),
                 min(s.delta_on)) AS b,
               min(s.delta_on) FILTER (WHERE s.delta_on >= {schema}.job_now() - (CASE
                   WHEN {q}.deletion_seconds > 0 AND {q}.deletion_seconds < {q}.retention_seconds THEN {q}.deletion_seconds
                   ELSE {q}.retention_seconds END) * interval '1s') AS f
             FROM {schema}.queue_stats s
             WHERE s.name = {q}.name AND {reach}
           ) x
         ) a ON true",
        reach = true_up_reach(schema)
    )
}

/// The snapshots a true-up looks at (`s` is a queue_stats row): recent ones that carry a window.
pub fn true_up_reach(schema: &str) -> String {
    format!(
        "s.captured_on >= {schema}.job_now() - 2 * {TRUE_UP_HORIZON} AND s.delta_on IS NOT NULL"
    )
}

/// The count of `table`'s jobs for the queues in `$1` (text[]), written onto their rows. Answers a
/// row per queue written: name, queued count, own warning threshold, whether the true-up check
/// fired (null without `throughput`), and how long the transaction has held its snapshot (seconds,
/// by the server's clock, so pool waits are not counted).
///
/// `monitor` passes also add a ready-count sample to `ready_history`; reads of a stale cache
/// (getQueueStats) only refresh the counts. Only a monitor pass with `throughput` touches the
/// throughput columns: without it they keep whatever the last counting pass left.
///
/// The aggregate is materialized before the first queue row is locked (the count in `locked`),
/// so no queue row stays locked through the job table scan; rows are locked in name order.
pub fn count_sql(
    schema: &str,
    table: &str,
    monitor: bool,
    throughput: Option<Throughput>,
) -> String {
    let terms = CountTerms::new(schema, table);
    let measured = match throughput {
        None => ThroughputParts::unmeasured(),
        Some(throughput) => ThroughputParts::measured(&terms, throughput),
    };
    format!(
        "WITH {stats},
         {locked}
         {update}",
        stats = stats_cte(&terms, &measured),
        locked = locked_queues_cte(schema),
        update = update_queue_rows(&terms, &measured, monitor),
    )
}

/// What every part of a count is written in: the job table, the clock and the kinds of queued job.
struct CountTerms<'a> {
    schema: &'a str,
    table: &'a str,
    /// The clock jobs are stamped by.
    now: String,
    /// See [`window_end`].
    end: String,
    /// A queued job that may run now, and one whose start_after is still ahead.
    ready: String,
    deferred: String,
}

/// A job (`j`) that has not started.
const QUEUED: &str = "j.state < 'active'";

impl CountTerms<'_> {
    fn new<'a>(schema: &'a str, table: &'a str) -> CountTerms<'a> {
        let now = format!("{schema}.job_now()");
        CountTerms {
            schema,
            table,
            end: window_end(schema),
            ready: format!("{QUEUED} AND NOT j.blocked AND j.start_after <= {now}"),
            deferred: format!("{QUEUED} AND NOT j.blocked AND j.start_after > {now}"),
            now,
        }
    }
}

/// `stats`: one row per queue in `$1`, whatever the queue's row says, with its live counts, the
/// retained jobs finished since its watermark, its active singleton keys and, when measured, its
/// throughput.
fn stats_cte(terms: &CountTerms, measured: &ThroughputParts) -> String {
    format!(
        "stats AS MATERIALIZED (
           SELECT n.name,
             COALESCE(live.deferred, 0) AS deferred, COALESCE(live.blocked, 0) AS blocked, COALESCE(live.ready, 0) AS ready,
             COALESCE(live.queued, 0) AS queued, COALESCE(live.active, 0) AS active, COALESCE(live.failed, 0) AS failed,
             COALESCE(live.live, 0) AS live,
             since.retained_from, since.since, since.recent,
             {throughput_columns}
             singletons.keys AS singletons
           FROM unnest($1::text[]) AS n(name)
           {live}
           {since}
           {singletons}{throughput_join}
         )",
        throughput_columns = measured.columns,
        live = live_counts_join(terms),
        since = retained_since_join(terms),
        singletons = active_singletons_join(terms),
        throughput_join = measured.join,
    )
}

/// The gauges, from the live jobs alone.
fn live_counts_join(terms: &CountTerms) -> String {
    let CountTerms {
        schema,
        table,
        ready,
        deferred,
        ..
    } = terms;
    format!(
        "LEFT JOIN (
             SELECT j.name,
               count(*) FILTER (WHERE {deferred})::int AS deferred,
               count(*) FILTER (WHERE {QUEUED} AND j.blocked)::int AS blocked,
               count(*) FILTER (WHERE {ready})::int AS ready,
               count(*) FILTER (WHERE {QUEUED})::int AS queued,
               count(*) FILTER (WHERE j.state = 'active')::int AS active,
               count(*) FILTER (WHERE j.state = 'failed')::int AS failed,
               count(*)::int AS live
             FROM {schema}.{table} j
             WHERE j.name = ANY($1::text[]) AND j.{LIVE_STATES}
             GROUP BY j.name
           ) live ON live.name = n.name"
    )
}

/// The queue's retained watermark as this count read it, the retained jobs finished between it
/// and the window's end (`since`), and those finished after the end (`recent`).
fn retained_since_join(terms: &CountTerms) -> String {
    let CountTerms {
        schema,
        table,
        now,
        end,
        ..
    } = terms;
    format!(
        "LEFT JOIN LATERAL (
             SELECT qr.retained_on AS retained_from,
               (SELECT count(*)::int FROM {schema}.{table} j
                WHERE j.name = qr.name AND j.completed_on > qr.retained_on AND j.completed_on <= {end} AND j.{RETAINED_STATES}) AS since,
               (SELECT count(*)::int FROM {schema}.{table} j
                WHERE j.name = qr.name AND j.completed_on > GREATEST(qr.retained_on, {end}) AND j.completed_on <= {now}
                  AND j.{RETAINED_STATES}) AS recent
             FROM {schema}.queue qr
             WHERE qr.name = n.name
           ) since ON true"
    )
}

/// The singleton keys the queue's active singleton and stately jobs hold.
fn active_singletons_join(terms: &CountTerms) -> String {
    let CountTerms { schema, table, .. } = terms;
    format!(
        "LEFT JOIN (
             SELECT j.name, array_agg(j.singleton_key) AS keys
             FROM {schema}.{table} j
             WHERE j.name = ANY($1::text[]) AND j.state = 'active' AND j.policy IN ('singleton', 'stately')
             GROUP BY j.name
           ) singletons ON singletons.name = n.name"
    )
}

/// `locked`: the queue rows to write, locked in name order once `stats` is complete.
fn locked_queues_cte(schema: &str) -> String {
    format!(
        "locked AS (
           SELECT name FROM {schema}.queue
           WHERE name = ANY($1::text[]) AND (SELECT count(*) FROM stats) >= 0
           ORDER BY name FOR NO KEY UPDATE
         )"
    )
}

/// Writes `stats` onto the locked queue rows and answers what [`count_sql`] answers.
fn update_queue_rows(terms: &CountTerms, measured: &ThroughputParts, monitor: bool) -> String {
    let CountTerms { schema, now, .. } = terms;
    format!(
        "UPDATE {schema}.queue q SET
           deferred_count = s.deferred, blocked_count = s.blocked, queued_count = s.queued, ready_count = s.ready,
           active_count = s.active, failed_count = s.failed,
           {retained}
           {throughput_set}
           singletons_active = s.singletons,
           monitor_on = {now}{ready_history}
         FROM locked l JOIN stats s ON s.name = l.name
         WHERE q.name = l.name
         RETURNING q.name, q.queued_count, q.warning_queued, {true_up},
           EXTRACT(EPOCH FROM (clock_timestamp() - transaction_timestamp()))::float8",
        retained = retained_assignments(terms),
        throughput_set = measured.set,
        ready_history = ready_history_assignment(monitor),
        true_up = measured.true_up,
    )
}

/// The finished jobs count into retained_count only while retained_on is still the watermark
/// they were counted from: a maintenance pass (or another count) that moved it meanwhile has
/// counted them already.
const COUNTED: &str = "q.retained_on IS NOT DISTINCT FROM s.retained_from";

/// retained_count, retained_on and total_count. A queue no maintenance pass has reached yet has no
/// retained_count; its total is then the larger of its live jobs and the total it had.
fn retained_assignments(terms: &CountTerms) -> String {
    let end = &terms.end;
    let retained = format!("CASE WHEN {COUNTED} THEN q.retained_count + COALESCE(s.since, 0) ELSE q.retained_count END");
    format!(
        "retained_count = {retained},
           retained_on = CASE WHEN {COUNTED} AND q.retained_on IS NOT NULL THEN GREATEST(q.retained_on, {end}) ELSE q.retained_on END,
           total_count = CASE
             WHEN q.retained_count IS NULL THEN GREATEST(q.total_count, s.live)
             WHEN {COUNTED} THEN s.live + {retained} + COALESCE(s.recent, 0)
             ELSE q.total_count
           END,"
    )
}

/// A monitor pass's ready-count sample: newest first, at most 60.
fn ready_history_assignment(monitor: bool) -> &'static str {
    if !monitor {
        return "";
    }
    ",
           ready_history = (SELECT COALESCE(array_agg(v ORDER BY ord), '{}'::int[]) FROM (
             SELECT v, ord FROM (
               SELECT s.ready AS v, 0::bigint AS ord
               UNION ALL
               SELECT h.v, h.ord FROM unnest(q.ready_history) WITH ORDINALITY AS h(v, ord)
             ) merged ORDER BY ord LIMIT 60) capped)"
}

/// What measuring throughput adds to a count: columns of `stats`, the join computing them, the
/// assignments writing them, and the true-up flag answered. All empty (and the flag null) for a
/// count that does not measure it.
struct ThroughputParts {
    columns: &'static str,
    join: String,
    set: String,
    true_up: &'static str,
}

impl ThroughputParts {
    fn unmeasured() -> ThroughputParts {
        ThroughputParts {
            columns: "",
            join: String::new(),
            set: String::new(),
            true_up: "NULL::bool",
        }
    }

    fn measured(terms: &CountTerms, throughput: Throughput) -> ThroughputParts {
        let reset = format!("interval '{} seconds'", throughput.reset_max_seconds);
        ThroughputParts {
            columns: "tp.created AS created_delta, tp.completed AS completed_delta, tp.failed AS failed_delta, tp.wait_bins, tp.run_bins, tp.ready_oldest, tp.true_up,",
            join: throughput_join(terms, &reset),
            set: throughput_assignments(terms, &reset),
            true_up: "s.true_up",
        }
    }
}

/// The window runs from the queue's delta_on (unless further back than `reset`) to the lagged
/// end. created counts every job stamped inside it; completed and failed the jobs that finished
/// inside it, which is the only way a table of current state tells how many went through. Beside
/// them, the recount of the windows already recorded.
fn throughput_join(terms: &CountTerms, reset: &str) -> String {
    format!(
        "
               LEFT JOIN LATERAL (
                 SELECT created.n AS created, done.completed, done.failed,
                   {wait_histogram} AS wait_bins, {run_histogram} AS run_bins,
                   oldest.secs AS ready_oldest,
                   COALESCE(recount.n > w.settled, false) AS true_up
                 FROM (
                   {window}
                 ) w
                 {created}
                 {done}
                 {oldest}
                 {recount}
               ) tp ON true",
        wait_histogram = histogram("done.wait_slots"),
        run_histogram = histogram("done.run_slots"),
        window = throughput_window(terms, reset),
        created = created_in_window(terms),
        done = finished_in_window(terms),
        oldest = oldest_ready(terms),
        recount = recount_recorded_windows(terms),
    )
}

/// `w`: the queue's window, its true-up anchor, and the end and sum of the recorded windows past
/// the anchor.
fn throughput_window(terms: &CountTerms, reset: &str) -> String {
    let CountTerms { schema, end, .. } = terms;
    format!(
        "SELECT qw.name, CASE WHEN qw.delta_on > {end} - {reset} THEN qw.delta_on END AS w_start, {end} AS w_end,
                     a.h, t.top, t.settled
                   FROM {schema}.queue qw
                   {anchor}
                   LEFT JOIN LATERAL (
                     SELECT max(s.delta_on) AS top, sum(s.created_delta + s.completed_delta + s.failed_delta) AS settled
                     FROM {schema}.queue_stats s
                     WHERE s.name = qw.name AND {reach} AND s.delta_on > a.h
                   ) t ON true
                   WHERE qw.name = n.name",
        anchor = true_up_anchor(schema, "qw"),
        reach = true_up_reach(schema),
    )
}

/// `created`: the jobs stamped inside the window.
fn created_in_window(terms: &CountTerms) -> String {
    let CountTerms { schema, table, .. } = terms;
    format!(
        "CROSS JOIN LATERAL (
                   SELECT count(*)::int AS n FROM {schema}.{table} j
                   WHERE j.name = w.name AND j.created_on >= w.w_start AND j.created_on < w.w_end
                 ) created"
    )
}

/// `done`: the jobs that finished inside the window, and the wait and run slots of those that ran.
fn finished_in_window(terms: &CountTerms) -> String {
    let CountTerms { schema, table, .. } = terms;
    format!(
        "CROSS JOIN LATERAL (
                   SELECT count(*) FILTER (WHERE j.state = 'completed')::int AS completed,
                     count(*) FILTER (WHERE j.state = 'failed')::int AS failed,
                     array_agg({wait_slot}) FILTER (WHERE j.started_on IS NOT NULL) AS wait_slots,
                     array_agg({run_slot}) FILTER (WHERE j.started_on IS NOT NULL) AS run_slots
                   FROM {schema}.{table} j
                   WHERE j.name = w.name AND j.completed_on >= w.w_start AND j.completed_on < w.w_end AND j.{FINISHED_STATES}
                 ) done",
        wait_slot = latency_slot(WAIT_SECONDS),
        run_slot = latency_slot(RUN_SECONDS),
    )
}

/// `oldest`: how long the oldest ready job has waited, in whole seconds.
fn oldest_ready(terms: &CountTerms) -> String {
    let CountTerms {
        schema,
        table,
        now,
        ready,
        ..
    } = terms;
    format!(
        "CROSS JOIN LATERAL (
                   SELECT round(extract(epoch FROM ({now} - min(GREATEST(j.created_on, j.start_after)))))::int AS secs
                   FROM {schema}.{table} j
                   WHERE j.name = w.name AND {ready}
                 ) oldest"
    )
}

/// `recount`: the jobs now stamped inside the recorded windows past the anchor, to hold against
/// what those windows recorded.
fn recount_recorded_windows(terms: &CountTerms) -> String {
    let CountTerms { schema, table, .. } = terms;
    format!(
        "CROSS JOIN LATERAL (
                   SELECT (SELECT count(*)::int FROM {schema}.{table} j
                           WHERE j.name = w.name AND j.created_on >= w.h AND j.created_on < w.top)
                        + (SELECT count(*)::int FROM {schema}.{table} j
                           WHERE j.name = w.name AND j.completed_on >= w.h AND j.completed_on < w.top AND j.{FINISHED_STATES}) AS n
                 ) recount"
    )
}

/// The right-hand sides read the row as it was, so delta_seconds measures the window the counts
/// used. A pass with no window start records null seconds (CASE, not GREATEST, which would skip
/// the null), and the window never moves backwards.
fn throughput_assignments(terms: &CountTerms, reset: &str) -> String {
    let end = &terms.end;
    let seconds = format!("round(extract(epoch FROM ({end} - (CASE WHEN q.delta_on > {end} - {reset} THEN q.delta_on END))))::int");
    format!(
        "created_delta = COALESCE(s.created_delta, 0),
                 completed_delta = COALESCE(s.completed_delta, 0),
                 failed_delta = COALESCE(s.failed_delta, 0),
                 delta_seconds = CASE WHEN {seconds} < 0 THEN 0 ELSE {seconds} END,
                 delta_on = GREATEST(q.delta_on, {end}),
                 wait_bins = COALESCE(s.wait_bins, array_fill(NULL::int, ARRAY[{LATENCY_SLOTS}])),
                 run_bins = COALESCE(s.run_bins, array_fill(NULL::int, ARRAY[{LATENCY_SLOTS}])),
                 ready_oldest_seconds = COALESCE(s.ready_oldest, 0),"
    )
}

/// The retained watermark a maintenance pass counts up to: the lag behind the database clock, to
/// the millisecond as pg-boss takes it.
pub fn retained_watermark_sql(schema: &str) -> String {
    format!("SELECT to_timestamp((round(date_part('epoch', {schema}.job_now()) * 1000) - {})::float8 / 1000)", LAG_SECONDS * 1000)
}

/// After a full retention sweep of the queues in `$1` (text[]): their completed and cancelled jobs
/// finished by `$2` (the watermark) become `retained_count`, `$2` becomes `retained_on`, and
/// `total_count` is the live jobs of the last count plus every finished job kept (the ones past
/// the watermark too, which the next count adds to retained_count).
pub fn set_retained_sql(schema: &str, table: &str) -> String {
    format!(
        "WITH kept AS MATERIALIZED (
           SELECT n.name,
             count(j.id) FILTER (WHERE j.completed_on <= $2)::int AS retained,
             count(j.id) FILTER (WHERE j.completed_on > $2 AND j.completed_on <= {schema}.job_now())::int AS recent
           FROM unnest($1::text[]) AS n(name)
           LEFT JOIN {schema}.{table} j ON j.name = n.name AND j.completed_on IS NOT NULL AND j.{RETAINED_STATES}
           GROUP BY n.name
         ),
         locked AS (
           SELECT name FROM {schema}.queue
           WHERE name = ANY($1::text[]) AND (SELECT count(*) FROM kept) >= 0
           ORDER BY name FOR NO KEY UPDATE
         )
         UPDATE {schema}.queue q SET
           retained_count = k.retained,
           retained_on = $2,
           total_count = q.queued_count + q.active_count + q.failed_count + k.retained + k.recent
         FROM locked l JOIN kept k ON k.name = l.name
         WHERE q.name = l.name"
    )
}

/// Takes jobs removed by a sweep that did not finish off the counts at once: `$2` (int[]) jobs
/// off `total_count` and `$3` (int[]) off `retained_count`, per queue in `$1` (text[]). A queue
/// without a retained_count keeps none.
pub fn reduce_retained_sql(schema: &str) -> String {
    format!(
        "UPDATE {schema}.queue q SET
           retained_count = CASE WHEN q.retained_count IS NULL THEN NULL ELSE GREATEST(q.retained_count - r.held, 0) END,
           total_count = GREATEST(q.total_count - r.removed, 0)
         FROM unnest($1::text[], $2::int[], $3::int[]) AS r(name, removed, held)
         WHERE q.name = r.name"
    )
}

/// Whether a removed job (`r`, with `state` and `completed_on`) was one retained_count held.
pub fn held_by_retained_count(schema: &str, r: &str) -> String {
    format!(
        "{r}.{RETAINED_STATES} AND {r}.completed_on <= (SELECT rq.retained_on FROM {schema}.queue rq WHERE rq.name = {r}.name)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_edges_are_the_ones_javascript_computes() {
        assert_eq!(format!("{}", LATENCY_MIN_SECONDS.ln()), LN_MIN);
        assert_eq!(format!("{}", std::f64::consts::LN_2 / 2.0), HALF_LN2);
    }

    #[test]
    fn the_reset_gap_grows_with_slow_passes() {
        assert_eq!(Throughput::for_pass(60.0).reset_max_seconds, 7200.0);
        assert_eq!(Throughput::for_pass(3600.0).reset_max_seconds, 7200.0);
        assert_eq!(Throughput::for_pass(5000.0).reset_max_seconds, 10_000.0);
    }
}
