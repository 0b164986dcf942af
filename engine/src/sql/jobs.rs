//! Jobs as they leave the database — JSON built by PostgreSQL with pg-boss's camelCase field
//! names — and the statements that read jobs back: `getJobById()`, `findJobs()`, and what a job
//! spy needs to see of settled rows.

use crate::model::queue::QueueInfo;

/// The fields every fetched job has (pg-boss's minimal job).
const JOB_FIELDS_MIN: &str =
    "'id', j.id, 'name', j.name, 'data', j.data, 'retryCount', j.retry_count,
  'expireInSeconds', j.expire_seconds, 'heartbeatSeconds', j.heartbeat_seconds,
  'groupId', j.group_id, 'groupTier', j.group_tier";

/// The rest of a job, for `includeMetadata` and for reads.
const JOB_FIELDS_METADATA: &str = "'policy', j.policy, 'state', j.state, 'priority', j.priority,
  'retryLimit', j.retry_limit, 'retryDelay', j.retry_delay, 'retryBackoff', j.retry_backoff,
  'retryDelayMax', j.retry_delay_max, 'startAfter', j.start_after, 'startedOn', j.started_on,
  'singletonKey', j.singleton_key, 'singletonOn', j.singleton_on, 'deleteAfterSeconds', j.deletion_seconds,
  'heartbeatOn', j.heartbeat_on, 'createdOn', j.created_on, 'completedOn', j.completed_on,
  'keepUntil', j.keep_until, 'deadLetter', j.dead_letter, 'blocked', j.blocked, 'blocking', j.blocking,
  'pendingDependencies', j.pending_dependencies, 'output', j.output, 'sourceName', j.source_name,
  'sourceId', j.source_id, 'sourceCreatedOn', j.source_created_on, 'sourceRetryCount', j.source_retry_count,
  'sourceOutput', j.source_output, 'sourceRootId', j.source_root_id";

/// A job row `j` as a JSON object.
fn job_object(include_metadata: bool) -> String {
    if include_metadata {
        format!("json_build_object({JOB_FIELDS_MIN}, {JOB_FIELDS_METADATA})")
    } else {
        format!("json_build_object({JOB_FIELDS_MIN})")
    }
}

/// A job row `j` as the JSON text a caller gets.
pub fn job_json(include_metadata: bool) -> String {
    format!("{}::text", job_object(include_metadata))
}

/// A claimed job row `j` as JSON text, with its stored trace context as `__traceContext` when
/// asked for.
pub fn claimed_job_json(include_metadata: bool, include_trace_context: bool) -> String {
    if !include_trace_context {
        return job_json(include_metadata);
    }
    let fields = if include_metadata {
        format!("{JOB_FIELDS_MIN}, {JOB_FIELDS_METADATA}")
    } else {
        JOB_FIELDS_MIN.to_string()
    };
    format!("json_build_object({fields}, '__traceContext', j.trace_context)::text")
}

/// `getJobById()`: `$1` queue name, `$2` id.
pub fn get_job_by_id(schema: &str, queue: &QueueInfo) -> String {
    format!(
        "SELECT {} FROM {schema}.{} j WHERE j.name = $1 AND j.id = $2",
        job_json(true),
        queue.table
    )
}

/// `findJobs()`: one JSON array of the queue's (`$1`) jobs, oldest first, filtered by `$2` id,
/// `$3` singleton key, `$4` data containment and `$5` queued; `$6` the job the page starts after
/// and `$7` the page's length.
pub fn find_jobs(schema: &str, queue: &QueueInfo) -> String {
    let table = &queue.table;
    format!(
        "SELECT COALESCE(json_agg(x.job ORDER BY x.created_on, x.id), '[]')::text FROM (
           SELECT {} AS job, j.created_on, j.id FROM {schema}.{table} j
           WHERE j.name = $1
             AND ($2::uuid IS NULL OR j.id = $2)
             AND ($3::text IS NULL OR j.singleton_key = $3)
             AND ($4::text IS NULL OR j.data @> $4::text::jsonb)
             AND (NOT $5 OR j.state < 'active')
             AND ($6::uuid IS NULL OR (j.created_on, j.id) > (SELECT a.created_on, a.id FROM {schema}.{table} a WHERE a.name = $1 AND a.id = $6))
           ORDER BY j.created_on, j.id
           LIMIT $7) x",
        job_object(true)
    )
}

/// Whether the job `$2` of queue `$1` exists (`findJobs()` pages after a job that must).
pub fn job_exists(schema: &str, queue: &QueueInfo) -> String {
    format!(
        "SELECT 1 FROM {schema}.{} WHERE name = $1 AND id = $2",
        queue.table
    )
}

/// The stored state and output of jobs `$2` of queue `$1`, for a job spy.
pub fn stored_outcomes(schema: &str, queue: &QueueInfo) -> String {
    format!(
        "SELECT id, state::text, output::text FROM {schema}.{} WHERE name = $1 AND id = ANY($2)",
        queue.table
    )
}
