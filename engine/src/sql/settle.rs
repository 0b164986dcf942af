//! Settling jobs: complete, fail (a retry while retries are left, else failed and copied to the
//! dead letter queue), and a batch settled job by job. A settle given the attempts it claimed is
//! fenced to them: a job whose attempt is no longer active is left alone.
//!
//! `complete`/`fail` take `$1` queue name, `$2` ids, `$3` output (JSON text) and, fenced, `$4`
//! `id:retryCount` of each job; they answer how many jobs they settled and which.

use crate::model::queue::QueueInfo;

// Columns are named: a caller's driver hands rows over as objects, which keep one of each name.
const SETTLED: &str =
    "SELECT count(*) AS affected, COALESCE(array_agg(id), '{}'::uuid[]) AS settled FROM results";

/// Keeps a statement over `id`/`retry_count` to the attempts in text array `$param`.
pub fn attempt_fence(param: usize) -> String {
    format!(
        "AND state = 'active' AND (id::text || ':' || retry_count::text) = ANY(${param}::text[])"
    )
}

fn fence(fenced: bool, param: usize) -> String {
    if fenced {
        attempt_fence(param)
    } else {
        String::new()
    }
}

/// Marks active jobs completed; with `include_queued`, jobs that have not started yet too.
pub fn complete(schema: &str, queue: &QueueInfo, include_queued: bool, fenced: bool) -> String {
    let table = &queue.table;
    let (state_filter, unblock) = if include_queued {
        (
            "state < 'completed'",
            ", blocked = false, pending_dependencies = 0",
        )
    } else {
        ("state = 'active'", "")
    };
    format!(
        "WITH results AS (
           UPDATE {schema}.{table} SET completed_on = {schema}.job_now(), state = 'completed', output = $3::text::jsonb{unblock}
           WHERE name = $1 AND id = ANY($2::uuid[]) AND {state_filter} {}
           RETURNING id)
         {SETTLED}",
        fence(fenced, 4)
    )
}

/// Fails the addressed jobs that have not finished.
pub fn fail(schema: &str, queue: &QueueInfo, fenced: bool) -> String {
    let filter = format!(
        "name = $1 AND id = ANY($2::uuid[]) AND state < 'completed' {}",
        fence(fenced, 4)
    );
    fail_sql(schema, &queue.table, &filter, "$3::text::jsonb")
}

/// The columns a failed job is written back with (it is deleted and re-inserted, so that a
/// policy's unique index can turn a would-be retry into a final failure).
const REINSERT_COLUMNS: &str = "id, name, priority, data, state, retry_limit, retry_count, retry_delay, retry_backoff,
  retry_delay_max, start_after, started_on, singleton_key, singleton_on, group_id, group_tier, expire_seconds,
  deletion_seconds, created_on, completed_on, keep_until, policy, output, dead_letter, heartbeat_on,
  heartbeat_seconds, blocked, blocking, pending_dependencies, source_name, source_id, source_created_on,
  source_retry_count, source_output, source_root_id, trace_context";

fn reinsert_values(state: &str, start_after: &str, completed_on: &str, output: &str) -> String {
    format!(
        "id, name, priority, data, {state}, retry_limit, retry_count, retry_delay, retry_backoff,
         retry_delay_max, {start_after}, started_on, singleton_key, singleton_on, group_id, group_tier, expire_seconds,
         deletion_seconds, created_on, {completed_on}, keep_until, policy, {output}, dead_letter, NULL,
         heartbeat_seconds, blocked, blocking, pending_dependencies, source_name, source_id, source_created_on,
         source_retry_count, source_output, source_root_id, trace_context"
    )
}

/// Fails jobs matching `filter` (over `$1` name and `$2` ids, or whatever the caller binds): each
/// goes to `retry` while it has retries left (after its delay or backoff), else to `failed`, and a
/// failed job with a dead letter queue is copied there. `output` is the SQL expression of the
/// stored output.
pub fn fail_sql(schema: &str, table: &str, filter: &str, output: &str) -> String {
    let removal = format!("DELETE FROM {schema}.{table} WHERE {filter} RETURNING *");
    format!(
        "WITH {}\n         {SETTLED}",
        fail_ctes(schema, table, &removal, output, "false")
    )
}

/// The CTEs of a failure, from `removed` (the `removal` statement, which returns the rows it
/// deleted) to `dead_lettered`; `results` holds the re-inserted rows. A row for which `terminal`
/// holds fails for good, retries left or not; like pg-boss, its start time is still moved as a
/// retry's would be.
fn fail_ctes(schema: &str, table: &str, removal: &str, output: &str, terminal: &str) -> String {
    let retry_state = format!(
        "CASE WHEN NOT ({terminal}) AND retry_count < retry_limit THEN 'retry'::{schema}.job_state ELSE 'failed'::{schema}.job_state END"
    );
    let retry_start = format!(
        "CASE WHEN retry_count = retry_limit THEN start_after
              WHEN NOT retry_backoff THEN {schema}.job_now() + retry_delay * interval '1s'
              ELSE {schema}.job_now() + LEAST(retry_delay_max,
                GREATEST(retry_delay, 1) * (2 ^ LEAST(16, retry_count + 1) / 2 + 2 ^ LEAST(16, retry_count + 1) / 2 * random())
              ) * interval '1s' END"
    );
    let retry_completed = format!("CASE WHEN NOT ({terminal}) AND retry_count < retry_limit THEN NULL ELSE {schema}.job_now() END");
    let first = reinsert_values(&retry_state, &retry_start, &retry_completed, output);
    let terminal = reinsert_values(
        &format!("'failed'::{schema}.job_state"),
        "start_after",
        &format!("{schema}.job_now()"),
        output,
    );
    format!(
        "removed AS (
           {removal}
         ), retried AS (
           INSERT INTO {schema}.{table} ({REINSERT_COLUMNS})
           SELECT {first} FROM removed
           ON CONFLICT DO NOTHING
           RETURNING *
         ), failed AS (
           INSERT INTO {schema}.{table} ({REINSERT_COLUMNS})
           SELECT {terminal} FROM removed WHERE id NOT IN (SELECT id FROM retried)
           RETURNING *
         ), results AS (
           SELECT * FROM retried UNION ALL SELECT * FROM failed
         ), {}",
        dead_lettered(schema)
    )
}

/// Copies the jobs of `results` that failed for good into their dead letter queue.
fn dead_lettered(schema: &str) -> String {
    format!(
        "dead_lettered AS (
           INSERT INTO {schema}.job (name, priority, data, retry_limit, retry_backoff, retry_delay, start_after,
             created_on, keep_until, deletion_seconds, expire_seconds, singleton_key, group_id, group_tier,
             heartbeat_seconds, source_name, source_id, source_created_on, source_retry_count, source_output,
             source_root_id, trace_context)
           SELECT r.dead_letter, r.priority, r.data, q.retry_limit, q.retry_backoff, q.retry_delay, {schema}.job_now(),
             {schema}.job_now(), {schema}.job_now() + q.retention_seconds * interval '1s', q.deletion_seconds,
             q.expire_seconds, r.singleton_key, r.group_id, r.group_tier, q.heartbeat_seconds, r.name, r.id,
             r.created_on, r.retry_count, r.output, COALESCE(r.source_root_id, r.id), r.trace_context
           FROM results r JOIN {schema}.queue q ON q.name = r.dead_letter
           WHERE r.state = 'failed'
         )"
    )
}

/// Settles every job with its own status and output in one statement, whatever the batch size:
/// completions update in place, failures go through the same delete and re-insert as `fail`. A
/// job given an attempt is fenced to it (active at that `retry_count`); one given none (a null
/// attempt) is settled as `complete`/`fail` unfenced settle it: completed while active, failed
/// while unfinished. `$1` queue name, then one array each of `$2` ids, `$3` attempts, `$4`
/// statuses and `$5` outputs; answers the ids completed, failed and dead-lettered.
pub fn settle_each(schema: &str, queue: &QueueInfo) -> String {
    let table = &queue.table;
    let removal = format!(
        "DELETE FROM {schema}.{table} j USING input i
           WHERE j.name = $1 AND j.id = i.id AND i.status <> 'completed' AND j.state < 'completed'
             AND (i.retry_count IS NULL OR (j.state = 'active' AND j.retry_count = i.retry_count))
           RETURNING j.*, i.status AS disposition, i.output AS given"
    );
    let failing = fail_ctes(
        schema,
        table,
        &removal,
        "given::jsonb",
        "disposition = 'deadletter'",
    );
    format!(
        "WITH input AS (
           SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[]) AS i (id, retry_count, status, output)
         ), completed AS (
           UPDATE {schema}.{table} j SET completed_on = {schema}.job_now(), state = 'completed', output = i.output::jsonb
           FROM input i
           WHERE j.name = $1 AND j.id = i.id AND i.status = 'completed' AND j.state = 'active'
             AND (i.retry_count IS NULL OR j.retry_count = i.retry_count)
           RETURNING j.id
         ), {failing}, landed AS (
           SELECT id, 'completed' AS status FROM completed
           UNION ALL SELECT r.id, i.status FROM results r JOIN input i ON i.id = r.id
         )
         SELECT COALESCE(array_agg(id) FILTER (WHERE status = 'completed'), '{{}}') AS completed,
                COALESCE(array_agg(id) FILTER (WHERE status = 'failed'), '{{}}') AS failed,
                COALESCE(array_agg(id) FILTER (WHERE status = 'deadletter'), '{{}}') AS deadletter
         FROM landed"
    )
}
