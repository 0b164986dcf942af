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

/// The values of a failed job's first re-insert (`retry` while it has retries left, else
/// `failed`) and of its fallback re-insert (`failed`, when a policy's unique index refused the
/// first), over the removed row's columns. A row for which `terminal` holds fails for good,
/// retries left or not; like pg-boss, its start time is still moved as a retry's would be.
fn reinserted_values(schema: &str, output: &str, terminal: &str) -> (String, String) {
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
    (first, terminal)
}

/// The CTEs of a failure, from `removed` (the `removal` statement, which returns the rows it
/// deleted) to `dead_lettered`; `results` holds the re-inserted rows.
fn fail_ctes(schema: &str, table: &str, removal: &str, output: &str, terminal: &str) -> String {
    let (first, terminal) = reinserted_values(schema, output, terminal);
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
           {}
           WHERE r.state = 'failed'
         )",
        dead_letter_insert(schema)
    )
}

/// Copies the jobs of `results` into their dead letter queue (those that have one); the caller
/// adds which of them.
fn dead_letter_insert(schema: &str) -> String {
    format!(
        "INSERT INTO {schema}.job (name, priority, data, retry_limit, retry_backoff, retry_delay, start_after,
             created_on, keep_until, deletion_seconds, expire_seconds, singleton_key, group_id, group_tier,
             heartbeat_seconds, source_name, source_id, source_created_on, source_retry_count, source_output,
             source_root_id, trace_context)
           SELECT r.dead_letter, r.priority, r.data, q.retry_limit, q.retry_backoff, q.retry_delay, {schema}.job_now(),
             {schema}.job_now(), {schema}.job_now() + q.retention_seconds * interval '1s', q.deletion_seconds,
             q.expire_seconds, r.singleton_key, r.group_id, r.group_tier, q.heartbeat_seconds, r.name, r.id,
             r.created_on, r.retry_count, r.output, COALESCE(r.source_root_id, r.id), r.trace_context
           FROM results r JOIN {schema}.queue q ON q.name = r.dead_letter"
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
           WHERE {EACH_FAILS}
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
           WHERE {EACH_COMPLETES}
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

// A backend that refuses two changes of one table in one statement (pg-boss's
// `noMultiMutationCte`, CockroachDB) fails jobs in steps instead, run in one transaction: the
// removal deletes the jobs and hands their rows over, then the re-inserts write them back as
// `fail_ctes` does, each statement changing one table once. The rows travel as JSON text, so the
// steps need nothing of the removed rows but the statement's answer.

/// The columns a split failure carries from its removal to its re-inserts, with their types: the
/// removed row, its `output` already the one it fails with, and whether it fails for good.
const CARRIED: &str = "id uuid, name text, priority int, data jsonb, state text, retry_limit int,
  retry_count int, retry_delay int, retry_backoff bool, retry_delay_max int, start_after timestamptz,
  started_on timestamptz, singleton_key text, singleton_on timestamp, group_id text, group_tier text,
  expire_seconds int, deletion_seconds int, created_on timestamptz, completed_on timestamptz,
  keep_until timestamptz, policy text, output jsonb, dead_letter text, heartbeat_on timestamptz,
  heartbeat_seconds int, blocked bool, blocking bool, pending_dependencies int, source_name text,
  source_id uuid, source_created_on timestamptz, source_retry_count int, source_output jsonb,
  source_root_id uuid, trace_context jsonb, terminal bool";

fn carried_names() -> impl Iterator<Item = &'static str> {
    CARRIED
        .split(',')
        .map(|column| column.split_whitespace().next().unwrap_or_default())
}

/// The removal step of a split failure: `delete` (a `DELETE` with its filter, no `RETURNING`;
/// `prefix` qualifies the job table's columns; `inputs`, CTEs it reads) removes the jobs, and the
/// statement answers them as JSON text, their ids, and the ids of those that fail for good
/// (`terminal`). `output` is the SQL expression of the output they fail with.
pub fn split_removal(
    inputs: &str,
    delete: &str,
    prefix: &str,
    output: &str,
    terminal: &str,
) -> String {
    let returning: Vec<String> = carried_names()
        .map(|name| match name {
            "output" => format!("{output} AS output"),
            "terminal" => format!("{terminal} AS terminal"),
            _ => format!("{prefix}{name}"),
        })
        .collect();
    let object: Vec<String> = carried_names()
        .map(|name| format!("'{name}', {name}"))
        .collect();
    format!(
        "WITH {inputs}removed AS (
           {delete}
           RETURNING {}
         )
         SELECT COALESCE(json_agg(json_build_object({})), '[]')::text AS carried,
                COALESCE(array_agg(id), '{{}}'::uuid[]) AS ids,
                COALESCE(array_agg(id) FILTER (WHERE terminal), '{{}}'::uuid[]) AS terminal
         FROM removed",
        returning.join(", "),
        object.join(", ")
    )
}

/// The removal step of `fail`: the addressed jobs that have not finished, fenced to `$4` when
/// `fenced`, fail with `$3`.
pub fn fail_removal(schema: &str, queue: &QueueInfo, fenced: bool) -> String {
    let delete = format!(
        "DELETE FROM {schema}.{} WHERE name = $1 AND id = ANY($2::uuid[]) AND state < 'completed' {}",
        queue.table,
        fence(fenced, 4)
    );
    split_removal("", &delete, "", "$3::text::jsonb", "false")
}

/// The steps after a split failure's removal, over the removed rows (`$1`, the removal's JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reinsert {
    /// Writes each job back as `retry` while it has retries left, else `failed`; a job a policy's
    /// unique index refuses is left out. Answers each written id and whether it failed.
    First,
    /// Writes the jobs not in `$2` (those the first step wrote) back as `failed`. Answers their ids.
    Fallback,
    /// Copies the jobs in `$2` (those that failed for good) into their dead letter queues.
    DeadLetter,
}

/// The step `step` of a split failure of `table`'s jobs.
pub fn reinsert(schema: &str, table: &str, step: Reinsert) -> String {
    let rows = format!("json_to_recordset($1::text::json) AS r ({CARRIED})");
    let (first, fallback) = reinserted_values(schema, "output", "terminal");
    match step {
        Reinsert::First => format!(
            "WITH removed AS (SELECT * FROM {rows})
             INSERT INTO {schema}.{table} ({REINSERT_COLUMNS})
             SELECT {first} FROM removed
             ON CONFLICT DO NOTHING
             RETURNING id, state = 'failed' AS failed"
        ),
        Reinsert::Fallback => format!(
            "WITH removed AS (SELECT * FROM {rows})
             INSERT INTO {schema}.{table} ({REINSERT_COLUMNS})
             SELECT {fallback} FROM removed WHERE id <> ALL($2::uuid[])
             RETURNING id"
        ),
        Reinsert::DeadLetter => format!(
            "WITH results AS (SELECT * FROM {rows} WHERE id = ANY($2::uuid[]))
             {}",
            dead_letter_insert(schema)
        ),
    }
}

/// The re-insert steps of split failures, rendered the first time a job table needs them.
#[derive(Debug)]
pub struct SplitFailSql {
    schema: String,
    by_table: super::StatementCache<(String, Reinsert)>,
}

impl SplitFailSql {
    pub fn new(schema: &str) -> SplitFailSql {
        SplitFailSql {
            schema: schema.to_string(),
            by_table: super::StatementCache::default(),
        }
    }

    pub fn reinsert(&self, table: &str, step: Reinsert) -> std::sync::Arc<str> {
        self.by_table.get((table.to_string(), step), || {
            reinsert(&self.schema, table, step)
        })
    }
}

/// The batch of a `settle_each`, one row per job.
/// Which job rows an item of a `settle_each` input completes: active at the item's attempt, or
/// active at any when it names none (as an unfenced `complete` completes).
const EACH_COMPLETES: &str =
    "j.name = $1 AND j.id = i.id AND i.status = 'completed' AND j.state = 'active'
             AND (i.retry_count IS NULL OR j.retry_count = i.retry_count)";

/// Which job rows an item of a `settle_each` input fails: active at the item's attempt, or any
/// unfinished one when it names none (as an unfenced `fail` fails).
const EACH_FAILS: &str =
    "j.name = $1 AND j.id = i.id AND i.status <> 'completed' AND j.state < 'completed'
             AND (i.retry_count IS NULL OR (j.state = 'active' AND j.retry_count = i.retry_count))";

const EACH_INPUT: &str = "input AS (
           SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[]) AS i (id, retry_count, status, output)
         )";

/// The split form of `settle_each`'s completions: the completed jobs of the batch, updated in
/// place (the statement's only change). Parameters as `settle_each`'s; answers the ids.
pub fn settle_each_completions(schema: &str, queue: &QueueInfo) -> String {
    let table = &queue.table;
    format!(
        "WITH {EACH_INPUT}
         UPDATE {schema}.{table} j SET completed_on = {schema}.job_now(), state = 'completed', output = i.output::jsonb
         FROM input i
         WHERE {EACH_COMPLETES}
         RETURNING j.id"
    )
}

/// The removal step of a split `settle_each`: the batch's failures, each with its own output,
/// failing for good when dead-lettered. Parameters as `settle_each`'s.
pub fn settle_each_removal(schema: &str, queue: &QueueInfo) -> String {
    let table = &queue.table;
    let delete = format!(
        "DELETE FROM {schema}.{table} j USING input i
           WHERE {EACH_FAILS}"
    );
    split_removal(
        &format!("{EACH_INPUT}, "),
        &delete,
        "j.",
        "i.output::jsonb",
        "i.status = 'deadletter'",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> QueueInfo {
        QueueInfo {
            name: "q".into(),
            table: "j1".into(),
            policy: "standard".into(),
            partition: true,
            notify: false,
            ready_count: 0,
        }
    }

    /// Each statement of a split failure changes one table once.
    fn mutations(sql: &str) -> usize {
        ["INSERT INTO", "DELETE FROM", "UPDATE "]
            .iter()
            .map(|verb| sql.matches(verb).count())
            .sum()
    }

    #[test]
    fn a_split_failure_changes_one_table_once_per_statement() {
        let q = queue();
        assert_eq!(mutations(&fail("s", &q, true)), 4);
        let removal = fail_removal("s", &q, true);
        assert_eq!(mutations(&removal), 1);
        assert!(removal.contains("DELETE FROM s.j1 WHERE name = $1"));
        assert!(
            removal.contains("$3::text::jsonb AS output") && removal.contains("false AS terminal")
        );
        assert!(removal.contains("'trace_context', trace_context, 'terminal', terminal"));
        for step in [Reinsert::First, Reinsert::Fallback, Reinsert::DeadLetter] {
            let sql = reinsert("s", "j1", step);
            assert_eq!(mutations(&sql), 1, "{sql}");
            assert!(sql.contains("json_to_recordset($1::text::json)"));
        }
        assert!(reinsert("s", "j1", Reinsert::First).contains("ON CONFLICT DO NOTHING"));
        assert!(reinsert("s", "j1", Reinsert::DeadLetter).contains("INSERT INTO s.job "));
        let each = settle_each_removal("s", &q);
        assert_eq!(mutations(&each), 1);
        assert!(
            each.contains("i.status = 'deadletter' AS terminal") && each.contains("j.retry_count,")
        );
        assert_eq!(mutations(&settle_each_completions("s", &q)), 1);
        // The carried columns are the re-inserted ones, and the flag.
        let carried: Vec<&str> = carried_names().collect();
        let reinserted: Vec<&str> = REINSERT_COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(carried[..carried.len() - 1], reinserted[..]);
    }
}
