//! Job operations: send and insert, fetch, complete and fail, and reading jobs back. Jobs leave
//! the engine as JSON text built by PostgreSQL with pg-boss's camelCase field names.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::js::Options;
use crate::ensure;
use crate::error::{Error, Result};
use crate::model::fetch::validate_fetch_options;
use crate::model::queue::QueueInfo;
use crate::model::send::{normalize_send_options, validate_group};
use crate::ops::coalesce::SendCoalescer;
use crate::sql::exec::{Exec, ExecError, Param};

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

pub(crate) fn job_json(include_metadata: bool) -> String {
    if include_metadata {
        format!("json_build_object({JOB_FIELDS_MIN}, {JOB_FIELDS_METADATA})::text")
    } else {
        format!("json_build_object({JOB_FIELDS_MIN})::text")
    }
}

/// Joins JSON texts of single jobs into the text of an array.
fn json_array(items: impl IntoIterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// One job ready for the insert statement: the recordset fields pg-boss's insert understands.
fn job_record(data: Value, options: &Options) -> Value {
    let mut record = Map::new();
    record.insert("data".into(), data);
    for key in [
        "id",
        "priority",
        "startAfter",
        "singletonKey",
        "singletonSeconds",
        "singletonOffset",
        "expireInSeconds",
        "deleteAfterSeconds",
        "retentionSeconds",
        "retryLimit",
        "retryDelay",
        "retryBackoff",
        "retryDelayMax",
        "heartbeatSeconds",
        "deadLetter",
        "groupId",
        "groupTier",
    ] {
        if let Some(v) = options.get(key).filter(|v| !v.is_null()) {
            record.insert(key.into(), v.clone());
        }
    }
    if let Some(group) = options.get("group").and_then(Value::as_object) {
        record.insert(
            "groupId".into(),
            group.get("id").cloned().unwrap_or(Value::Null),
        );
        record.insert(
            "groupTier".into(),
            group.get("tier").cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(record)
}

/// Inserts the recordset `$1` into a queue's table. Options the job leaves out come from the
/// queue; start times given as date strings are instants, anything else is seconds from now.
fn insert_sql(schema: &str, queue: &QueueInfo, returning: bool) -> String {
    insert_sql_by_key(schema, queue, returning, false)
}

/// The end of a statement whose CTE `written` returns `id, start_after` of the jobs it wrote: their
/// ids, and on a queue with `notify` one pg_notify on the schema's channel when any of them can run
/// now. It is part of the statement, so it is only delivered if the write commits.
pub(crate) fn written_ids(schema: &str, queue: &QueueInfo) -> String {
    if !queue.notify {
        return "SELECT id FROM written".to_string();
    }
    format!(
        "SELECT id FROM written WHERE (SELECT count(*) FROM (
           SELECT pg_notify({}, '{}') FROM written WHERE start_after <= {schema}.job_now() LIMIT 1) notified) >= 0",
        crate::sql::install::notify_channel_sql(schema),
        queue.name.replace('\'', "''")
    )
}

/// The insert statement; with `by_key`, the new jobs are marked as created by an upsert on their
/// singleton key (`upsert_by_key`), which a unique index keeps to one queued job per key. The flow
/// columns (`blocked`, `blocking`, `pendingDependencies`) are only ever filled by `flows.rs`:
/// `job_record` never copies them from a caller's job.
pub(crate) fn insert_sql_by_key(
    schema: &str,
    queue: &QueueInfo,
    returning: bool,
    by_key: bool,
) -> String {
    insert_statement(schema, queue, returning, by_key, false)
}

/// The insert statement. With `slots`, a record may name its throttle slot outright
/// (`__singletonSlot`, a UTC wall time): the cron pass files an occurrence in the slot the
/// occurrence falls in, whenever the insert runs. Only that caller declares the column, so the
/// public `insert()` cannot set it.
fn insert_statement(
    schema: &str,
    queue: &QueueInfo,
    returning: bool,
    by_key: bool,
    slots: bool,
) -> String {
    let table = &queue.table;
    let (slot_column, slot_case) = if slots {
        (", \"__singletonSlot\" text", "WHEN i.\"__singletonSlot\" IS NOT NULL THEN i.\"__singletonSlot\"::timestamp\n             ")
    } else {
        ("", "")
    };
    // A notify queue's statement always reads the written rows back, to know whether to notify.
    // Reading the written rows back costs a tuplestore of them: only when they are wanted.
    let (open, close) = if returning || queue.notify {
        (
            "), written AS (".to_string(),
            format!(
                "RETURNING id, start_after)\n         {}",
                written_ids(schema, queue)
            ),
        )
    } else {
        (")".to_string(), String::new())
    };
    format!(
        "WITH input AS (
           SELECT x.*,
             CASE WHEN right(x.\"startAfter\", 1) = 'Z' OR x.\"startAfter\" ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}'
                  THEN x.\"startAfter\"::timestamptz
                  ELSE {schema}.job_now() + COALESCE(x.\"startAfter\", '0')::interval END AS start_at
           FROM json_to_recordset($1::text::json) AS x (
             id uuid, priority int, data jsonb, \"startAfter\" text, \"retryLimit\" int, \"retryDelay\" int,
             \"retryDelayMax\" int, \"retryBackoff\" bool, \"singletonKey\" text, \"singletonSeconds\" int,
             \"singletonOffset\" int, \"groupId\" text, \"groupTier\" text, \"expireInSeconds\" int,
             \"deleteAfterSeconds\" int, \"retentionSeconds\" int, \"deadLetter\" text, \"heartbeatSeconds\" int,
             blocked bool, blocking bool, \"pendingDependencies\" int{slot_column})
         {open}
         INSERT INTO {schema}.{table} (id, name, data, priority, start_after, created_on, singleton_key, singleton_on,
           group_id, group_tier, expire_seconds, deletion_seconds, keep_until, retry_limit, retry_delay,
           retry_backoff, retry_delay_max, policy, dead_letter, heartbeat_seconds, blocked, blocking,
           pending_dependencies, upsert_by_key)
         SELECT COALESCE(i.id, gen_random_uuid()), $2, i.data, COALESCE(i.priority, 0), i.start_at, {schema}.job_now(),
           i.\"singletonKey\",
           CASE {slot_case}WHEN i.\"singletonSeconds\" IS NOT NULL THEN 'epoch'::timestamp + '1s'::interval * (i.\"singletonSeconds\"::float8
             * floor((date_part('epoch', {schema}.job_now()) + COALESCE(i.\"singletonOffset\", 0)::float8) / i.\"singletonSeconds\"::float8)) END,
           i.\"groupId\", i.\"groupTier\",
           COALESCE(i.\"expireInSeconds\", q.expire_seconds, 900),
           COALESCE(i.\"deleteAfterSeconds\", q.deletion_seconds, 604800),
           i.start_at + COALESCE(i.\"retentionSeconds\", q.retention_seconds, 1209600) * interval '1s',
           COALESCE(i.\"retryLimit\", q.retry_limit, 2),
           COALESCE(i.\"retryDelay\", q.retry_delay, 0),
           COALESCE(i.\"retryBackoff\", q.retry_backoff, false),
           COALESCE(i.\"retryDelayMax\", q.retry_delay_max),
           q.policy,
           COALESCE(i.\"deadLetter\", q.dead_letter),
           COALESCE(i.\"heartbeatSeconds\", q.heartbeat_seconds),
           COALESCE(i.blocked, false), COALESCE(i.blocking, false), COALESCE(i.\"pendingDependencies\", 0),
           {}
         FROM input i LEFT JOIN {schema}.queue q ON q.name = $2
         ON CONFLICT DO NOTHING
         {close}",
        if by_key { "true" } else { "NULL::bool" },
    )
}

/// An insert's errors, said as pg-boss says them: a missing queue, or a missing dead letter queue
/// by name (the foreign key's detail names it: `Key (dead_letter)=(x) is not present ...`).
/// On the engine's pool a missing queue carries its code, which publish() uses to pass over a
/// subscriber deleted meanwhile. Through a caller's db it does not: the caller's transaction is
/// now unusable, and publish() reporting success would hide that.
pub(crate) fn insert_error(err: impl Into<ExecError>, queue: &str) -> Error {
    let err = err.into();
    if err.sql_state().as_deref() == Some("23503") {
        let constraint = err.constraint().or_else(|| {
            let detail = err.detail()?;
            Some(
                detail
                    .split_once("foreign key constraint \"")?
                    .1
                    .split_once('"')?
                    .0
                    .to_string(),
            )
        });
        match constraint.as_deref() {
            Some("q_fkey") if err.is_callers() => {
                return Error::internal(format!("Queue {queue} does not exist"))
            }
            Some("q_fkey") => return crate::model::queue::queue_not_found(queue),
            Some("dlq_fkey") => {
                let missing = err.detail().and_then(|detail| {
                    let value = detail
                        .split_once(")=(")?
                        .1
                        .split_once(") is not present")?
                        .0;
                    Some(value.trim_matches('\'').to_string())
                });
                return Error::internal(match missing {
                    Some(name) => format!("Dead letter queue {name} does not exist"),
                    None => "Dead letter queue does not exist".to_string(),
                });
            }
            _ => {}
        }
    }
    Error::from(err)
}

pub(crate) async fn insert_records(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    records: &[Value],
    returning: bool,
) -> Result<Vec<Uuid>> {
    let via = via.into();
    let sql = insert_sql(schema, queue, returning);
    let params = || {
        vec![
            Param::text(Value::Array(records.to_vec()).to_string()),
            Param::text(queue.name.as_str()),
        ]
    };
    if returning {
        let rows: Vec<(Uuid,)> = via
            .fetch_all(&sql, params())
            .await
            .map_err(|e| insert_error(e, &queue.name))?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    } else {
        via.execute(&sql, params())
            .await
            .map_err(|e| insert_error(e, &queue.name))?;
        Ok(Vec::new())
    }
}

fn require_key_for_strict_fifo(queue: &QueueInfo, key: Option<&Value>) -> Result<()> {
    ensure!(
        queue.policy != "key_strict_fifo"
            || key.and_then(Value::as_str).is_some_and(|k| !k.is_empty()),
        "key_strict_fifo queues require a singletonKey"
    );
    Ok(())
}

/// Checks a send request before anything else happens: returns its data and normalised options.
pub fn prepare_send(data: Value, options: Option<Value>) -> Result<(Value, Options)> {
    let mut options = match options {
        None | Some(Value::Null) => Options::new(),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(Error::invalid("options should be an object")),
    };
    normalize_send_options(&mut options)?;
    Ok((data, options))
}

/// `send()`: one job; `None` when a policy or throttle refused it. With a caller's handle (the
/// `db` option) the insert runs through it alone, since coalescing it with other sends would take
/// it out of the caller's transaction.
pub async fn send(
    pool: &PgPool,
    caller: Option<&dyn crate::sql::exec::CallerDb>,
    schema: &str,
    queue: &QueueInfo,
    sends: &SendCoalescer,
    data: Value,
    mut options: Options,
) -> Result<Option<Uuid>> {
    require_key_for_strict_fifo(queue, options.get("singletonKey"))?;
    let insert_one = |record: Value| async move {
        match caller {
            None => sends.insert_one(pool, schema, queue, record).await,
            Some(db) => Ok(
                insert_records(Exec::caller(db), schema, queue, &[record], true)
                    .await?
                    .first()
                    .copied(),
            ),
        }
    };
    if let Some(id) = insert_one(job_record(data.clone(), &options)).await? {
        return Ok(Some(id));
    }
    if options.get("singletonNextSlot") == Some(&Value::Bool(true)) {
        if let Some(seconds) = options.get("singletonSeconds").and_then(Value::as_i64) {
            // The current slot is taken: throttle into the next one, starting when it opens.
            let start = next_slot_start(pool, schema, seconds).await?;
            options.insert("startAfter".into(), json!(start));
            options.insert("singletonOffset".into(), json!(seconds));
            return insert_one(job_record(data, &options)).await;
        }
    }
    Ok(None)
}

/// Seconds from now until just inside the throttle slot after the current one, by the database's
/// clock (so every instance agrees): at least 1, and one more for slots over a second, as pg-boss.
async fn next_slot_start(pool: &PgPool, schema: &str, seconds: i64) -> Result<String> {
    let now_ms: f64 = sqlx::query_scalar(&format!(
        "SELECT (date_part('epoch', {schema}.job_now()) * 1000)::float8"
    ))
    .fetch_one(pool)
    .await?;
    Ok(next_slot_delay(now_ms, seconds).to_string())
}

fn next_slot_delay(now_ms: f64, seconds: i64) -> i64 {
    let slot_ms = (seconds * 1000) as f64;
    let slot_start = (now_ms / slot_ms).floor() * slot_ms;
    let into_slot = ((now_ms - slot_start) / 1000.0).floor() as i64;
    let delay = match seconds - into_slot {
        0 => 1,
        d => d,
    };
    if seconds > 1 {
        delay + 1
    } else {
        delay
    }
}

/// The cron pass's insert into its forwarding queue: records already in recordset form, each
/// naming its throttle slot in `__singletonSlot`. A slot another instance filed first is refused
/// by the queue's singleton index, which is what keeps an occurrence to one job.
pub(crate) async fn insert_slotted(
    pool: &PgPool,
    schema: &str,
    queue: &QueueInfo,
    records: &[Value],
) -> Result<()> {
    let sql = insert_statement(schema, queue, false, false, true);
    let payload = Value::Array(records.to_vec()).to_string();
    sqlx::query(&sql)
        .bind(payload)
        .bind(&queue.name)
        .execute(pool)
        .await
        .map_err(|e| insert_error(e, &queue.name))?;
    Ok(())
}

/// `insert()`: many jobs in one statement. Returns the new ids when asked to.
pub async fn insert(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    jobs: &[Value],
    return_id: bool,
) -> Result<Option<Vec<Uuid>>> {
    let mut seen = std::collections::HashSet::new();
    let mut records = Vec::with_capacity(jobs.len());
    for job in jobs {
        let job = job
            .as_object()
            .ok_or_else(|| Error::invalid("each job must be an object"))?;
        if let Some(id) = job.get("id").filter(|v| !v.is_null()) {
            let shown = id
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string());
            ensure!(
                seen.insert(shown.clone()),
                "duplicate job id in insert batch: {shown}"
            );
        }
        validate_group(job)?;
        require_key_for_strict_fifo(queue, job.get("singletonKey"))?;
        let mut options = job.clone();
        if let Some(Value::String(s)) = options.get("startAfter") {
            let pinned = crate::model::send::pin_zoneless_date_time(s);
            options.insert("startAfter".into(), Value::String(pinned));
        } else if let Some(Value::Number(n)) = options.get("startAfter") {
            let seconds = n.to_string();
            options.insert("startAfter".into(), Value::String(seconds));
        }
        let data = options.get("data").cloned().unwrap_or(Value::Null);
        records.push(job_record(data, &options));
    }
    if records.is_empty() {
        return Ok(None);
    }
    let ids = insert_records(via, schema, queue, &records, return_id).await?;
    Ok(if return_id && !ids.is_empty() {
        Some(ids)
    } else {
        None
    })
}

/// What a fetch asks for.
#[derive(Debug, Clone, Default)]
pub struct FetchRequest {
    pub batch_size: i64,
    pub include_metadata: bool,
    pub ignore_start_after: bool,
    pub min_priority: Option<i64>,
    pub max_priority: Option<i64>,
    /// Group ids not to claim from (`ignoreGroups`).
    pub ignore_groups: Option<Vec<String>>,
    /// `groupConcurrency`: active jobs per group across all instances.
    pub group_concurrency: Option<crate::sql::fetch::GroupLimit>,
}

impl FetchRequest {
    pub fn from_options(options: &Options) -> Result<FetchRequest> {
        validate_fetch_options(options)?;
        Ok(FetchRequest {
            batch_size: crate::config::js::int_opt(options, "batchSize")?.unwrap_or(1),
            include_metadata: crate::config::js::bool_opt(options, "includeMetadata")?
                .unwrap_or(false),
            ignore_start_after: crate::config::js::bool_opt(options, "ignoreStartAfter")?
                .unwrap_or(false),
            min_priority: crate::config::js::int_opt(options, "minPriority")?,
            max_priority: crate::config::js::int_opt(options, "maxPriority")?,
            ignore_groups: crate::ops::groups::ignore_groups(options)?,
            group_concurrency: options
                .get("groupConcurrency")
                .and_then(crate::sql::fetch::GroupLimit::from_value),
        })
    }
}

/// A claimed job as the engine tracks it; its full JSON goes to the handler.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: Uuid,
    pub retry_count: i32,
    pub expire_seconds: i32,
    pub heartbeat_seconds: Option<i32>,
    pub json: String,
}

pub struct FetchedBatch {
    pub jobs: Vec<ClaimedJob>,
}

impl FetchedBatch {
    pub fn json(&self) -> String {
        json_array(self.jobs.iter().map(|j| j.json.clone()))
    }
}

/// Claims up to `batch_size` jobs: highest priority first, then oldest. Rows another session
/// holds are skipped, so concurrent fetchers (of any kind) never claim the same job. The statement
/// itself (policies, priorities, groups) is built in `claim`.
fn fetch_sql(schema: &str, queue: &QueueInfo, request: &FetchRequest) -> String {
    crate::sql::fetch::fetch_sql(schema, queue, request)
}

pub async fn fetch(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    request: &FetchRequest,
) -> Result<FetchedBatch> {
    let via = via.into();
    let sql = fetch_sql(schema, queue, request);
    type Row = (Uuid, i32, i32, Option<i32>, String);
    let groups = request.group_concurrency.as_ref();
    let params = vec![
        Param::text(queue.name.as_str()),
        Param::Int8(request.batch_size),
        Param::Int4(request.min_priority.unwrap_or(0) as i32),
        Param::Int4(request.max_priority.unwrap_or(0) as i32),
        Param::Texts(request.ignore_groups.clone()),
        Param::Text(groups.and_then(|g| g.default.clone())),
        Param::Text(groups.and_then(|g| g.tiers.clone())),
    ];
    let rows: Vec<Row> = match via.fetch_all(&sql, params).await {
        Ok(rows) => rows,
        // A concurrent fetch won a policy slot first: nothing to claim this time. (In a caller's
        // transaction the failure has aborted it, so there it is the caller's to see.)
        Err(e) if !e.is_callers() && e.sql_state().as_deref() == Some("23505") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(FetchedBatch {
        jobs: rows
            .into_iter()
            .map(
                |(id, retry_count, expire_seconds, heartbeat_seconds, json)| ClaimedJob {
                    id,
                    retry_count,
                    expire_seconds,
                    heartbeat_seconds,
                    json,
                },
            )
            .collect(),
    })
}

/// Which jobs a settle addresses: plain ids, or ids with the attempt (`retryCount`) that was
/// fetched, which fences the settle to that attempt.
#[derive(Debug, Clone)]
pub struct JobTargets {
    pub ids: Vec<Uuid>,
    pub attempts: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct JobAttempt {
    id: String,
    #[serde(rename = "retryCount")]
    retry_count: i64,
}

impl JobTargets {
    /// Accepts what `complete()`/`fail()` accept: an id, ids, a job or jobs ({ id, retryCount }).
    pub fn from_value(value: &Value, method: &str) -> Result<JobTargets> {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Null => vec![],
            Value::String(s) if s.is_empty() => vec![],
            other => vec![other],
        };
        ensure!(!items.is_empty(), "{method}() requires an id");
        if items.iter().all(|v| v.is_string()) {
            let ids = items
                .iter()
                .map(|v| parse_uuid(v.as_str().unwrap_or_default()))
                .collect::<Result<_>>()?;
            return Ok(JobTargets {
                ids,
                attempts: None,
            });
        }
        let attempts: Vec<JobAttempt> = items
            .iter()
            .map(|v| serde_json::from_value::<JobAttempt>((*v).clone()).ok().filter(|a| a.retry_count >= 0))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{method}() requires either ids or jobs with an id and an integer retryCount, not a mix"
                ))
            })?;
        let ids: Vec<Uuid> = attempts
            .iter()
            .map(|a| parse_uuid(&a.id))
            .collect::<Result<_>>()?;
        let pairs = ids
            .iter()
            .zip(&attempts)
            .map(|(id, a)| format!("{id}:{}", a.retry_count))
            .collect();
        Ok(JobTargets {
            ids,
            attempts: Some(pairs),
        })
    }

    pub fn for_claimed(jobs: &[ClaimedJob]) -> JobTargets {
        JobTargets {
            ids: jobs.iter().map(|j| j.id).collect(),
            attempts: Some(
                jobs.iter()
                    .map(|j| format!("{}:{}", j.id, j.retry_count))
                    .collect(),
            ),
        }
    }

    pub(crate) fn fence(&self, param: usize) -> String {
        match self.attempts {
            Some(_) => format!("AND state = 'active' AND (id::text || ':' || retry_count::text) = ANY(${param}::text[])"),
            None => String::new(),
        }
    }
}

/// A malformed id fails as PostgreSQL's uuid cast fails in pg-boss: a database error, 22P02.
fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s.trim_matches(|c| c == '{' || c == '}')).map_err(|_| Error {
        code: crate::error::ErrorCode::Database,
        message: format!("invalid input syntax for type uuid: \"{s}\""),
        sql_state: Some("22P02".into()),
    })
}

/// pg-boss's answer to complete/fail/cancel and friends.
#[derive(Debug, Clone)]
pub struct CommandResponse {
    pub jobs: Vec<Uuid>,
    pub affected: i64,
    pub settled: Vec<Uuid>,
}

impl CommandResponse {
    pub fn to_json(&self) -> Value {
        json!({
            "jobs": self.jobs,
            "requested": self.jobs.len(),
            "affected": self.affected,
            "settled": self.settled,
        })
    }
}

async fn run_settle(
    via: Exec<'_>,
    sql: &str,
    queue: &str,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    let params = vec![
        Param::text(queue),
        Param::Uuids(targets.ids.clone()),
        Param::Text(output.map(str::to_string)),
        Param::Texts(targets.attempts.clone()),
    ];
    let (affected, settled): (i64, Vec<Uuid>) = via.fetch_one(sql, params).await?;
    Ok(CommandResponse {
        jobs: targets.ids.clone(),
        affected,
        settled,
    })
}

const SETTLED: &str =
    "SELECT count(*) AS affected, COALESCE(array_agg(id), '{}'::uuid[]) AS settled FROM results";

/// Marks active jobs completed with `output` (JSON text). With `include_queued`, jobs that have
/// not started yet are completed too.
pub async fn complete(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    targets: &JobTargets,
    output: Option<&str>,
    include_queued: bool,
) -> Result<CommandResponse> {
    let table = &queue.table;
    let (state_filter, unblock) = if include_queued {
        (
            "state < 'completed'",
            ", blocked = false, pending_dependencies = 0",
        )
    } else {
        ("state = 'active'", "")
    };
    let sql = format!(
        "WITH results AS (
           UPDATE {schema}.{table} SET completed_on = {schema}.job_now(), state = 'completed', output = $3::text::jsonb{unblock}
           WHERE name = $1 AND id = ANY($2::uuid[]) AND {state_filter} {}
           RETURNING id)
         {SETTLED}",
        targets.fence(4)
    );
    run_settle(via.into(), &sql, &queue.name, targets, output).await
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

/// Fails jobs matching `filter` (over `$1` name and `$2` ids): each goes to `retry` while it has
/// retries left (after its delay or backoff), else to `failed`, and a failed job with a dead letter
/// queue is copied there. `output` is the SQL expression of the stored output.
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
         ), dead_lettered AS (
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

pub async fn fail(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    let filter = format!(
        "name = $1 AND id = ANY($2::uuid[]) AND state < 'completed' {}",
        targets.fence(4)
    );
    let sql = fail_sql(schema, &queue.table, &filter, "$3::text::jsonb");
    run_settle(via.into(), &sql, &queue.name, targets, output).await
}

/// What a `perJobResults` handler said of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResultStatus {
    Completed,
    /// Fails the job as any failure does: a retry while it has retries left.
    Failed,
    /// Fails the job for good, retries left or not, so it goes to its dead letter queue at once.
    DeadLetter,
}

impl JobResultStatus {
    /// The name pg-boss gives it (`JobResultStatus`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobResultStatus::Completed => "completed",
            JobResultStatus::Failed => "failed",
            JobResultStatus::DeadLetter => "deadletter",
        }
    }

    pub fn from_name(name: &str) -> Option<JobResultStatus> {
        match name {
            "completed" => Some(JobResultStatus::Completed),
            "failed" => Some(JobResultStatus::Failed),
            "deadletter" => Some(JobResultStatus::DeadLetter),
            _ => None,
        }
    }
}

/// One job of a batch settled on its own: the attempt it was fetched at, how, and its output
/// (JSON text).
#[derive(Debug, Clone)]
pub struct JobSettle {
    pub id: Uuid,
    pub retry_count: i32,
    pub status: JobResultStatus,
    pub output: Option<String>,
}

/// The jobs a per-job settle changed, by what was asked of them; a job whose attempt was no longer
/// active is in none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettledEach {
    pub completed: Vec<Uuid>,
    /// Failed jobs, whether they went to `retry` or failed for good.
    pub failed: Vec<Uuid>,
    pub dead_lettered: Vec<Uuid>,
}

/// Settles every job with its own status and output in one statement, whatever the batch size:
/// completions update in place, failures go through the same delete and re-insert as `fail`. Each
/// job is fenced to its fetched attempt (active at that `retry_count`). Each id should appear once.
pub async fn settle_each(
    pool: &PgPool,
    schema: &str,
    queue: &QueueInfo,
    items: &[JobSettle],
) -> Result<SettledEach> {
    if items.is_empty() {
        return Ok(SettledEach::default());
    }
    let table = &queue.table;
    let removal = format!(
        "DELETE FROM {schema}.{table} j USING input i
           WHERE j.name = $1 AND j.id = i.id AND i.status <> 'completed' AND j.state = 'active' AND j.retry_count = i.retry_count
           RETURNING j.*, i.status AS disposition, i.output AS given"
    );
    let failing = fail_ctes(
        schema,
        table,
        &removal,
        "given::jsonb",
        "disposition = 'deadletter'",
    );
    let sql = format!(
        "WITH input AS (
           SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[]) AS i (id, retry_count, status, output)
         ), completed AS (
           UPDATE {schema}.{table} j SET completed_on = {schema}.job_now(), state = 'completed', output = i.output::jsonb
           FROM input i
           WHERE j.name = $1 AND j.id = i.id AND i.status = 'completed' AND j.state = 'active' AND j.retry_count = i.retry_count
           RETURNING j.id
         ), {failing}, landed AS (
           SELECT id, 'completed' AS status FROM completed
           UNION ALL SELECT r.id, i.status FROM results r JOIN input i ON i.id = r.id
         )
         SELECT COALESCE(array_agg(id) FILTER (WHERE status = 'completed'), '{{}}'),
                COALESCE(array_agg(id) FILTER (WHERE status = 'failed'), '{{}}'),
                COALESCE(array_agg(id) FILTER (WHERE status = 'deadletter'), '{{}}')
         FROM landed"
    );
    let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
    let attempts: Vec<i32> = items.iter().map(|i| i.retry_count).collect();
    let statuses: Vec<&str> = items.iter().map(|i| i.status.as_str()).collect();
    let outputs: Vec<Option<&str>> = items.iter().map(|i| i.output.as_deref()).collect();
    let (completed, failed, dead_lettered): (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>) =
        sqlx::query_as(&sql)
            .bind(&queue.name)
            .bind(&ids)
            .bind(&attempts)
            .bind(&statuses)
            .bind(&outputs)
            .fetch_one(pool)
            .await?;
    Ok(SettledEach {
        completed,
        failed,
        dead_lettered,
    })
}

/// pg-boss's rule for turning a settle's `data` argument into a stored output: objects are kept,
/// any other value is wrapped as `{ value }`, and nothing becomes null.
pub fn output_from_value(data: &Value) -> Option<String> {
    match data {
        Value::Null => None,
        Value::Object(_) => Some(data.to_string()),
        other => Some(json!({ "value": other }).to_string()),
    }
}

/// One job by id, as JSON text, or `None`.
pub async fn get_job_by_id(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    id: &str,
) -> Result<Option<String>> {
    let Ok(id) = parse_uuid(id) else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {} FROM {schema}.{} j WHERE j.name = $1 AND j.id = $2",
        job_json(true),
        queue.table
    );
    let row: Option<(String,)> = via
        .into()
        .fetch_optional(
            &sql,
            vec![Param::text(queue.name.as_str()), Param::Uuid(Some(id))],
        )
        .await?;
    Ok(row.map(|(job,)| job))
}

/// `findJobs()`: jobs of a queue by id, singleton key, data containment and/or queued state,
/// oldest first, as JSON text of an array.
pub async fn find_jobs(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &QueueInfo,
    options: &Options,
) -> Result<String> {
    let via = via.into();
    let limit = match options.get("limit").filter(|v| !v.is_null()) {
        None => 1000,
        Some(v) => {
            let limit = v
                .as_i64()
                .filter(|l| (1..=100_000).contains(l) && crate::config::js::is_integer(v));
            limit.ok_or_else(|| {
                Error::invalid("findJobs: limit must be an integer between 1 and 100000")
            })?
        }
    };
    let id = match options.get("id").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match v.as_str().map(parse_uuid) {
            Some(Ok(id)) => Some(id),
            _ => return Ok("[]".into()),
        },
    };
    let key = crate::config::js::string_opt(options, "key")?;
    let data = options
        .get("data")
        .filter(|v| !v.is_null())
        .map(Value::to_string);
    let queued = crate::config::js::bool_opt(options, "queued")?.unwrap_or(false);
    let after = match options.get("after").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => {
            let s = v
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::invalid("findJobs: after must be a non-empty string"))?;
            Some(parse_uuid(s).map_err(|_| Error::invalid("findJobs: after must be a uuid"))?)
        }
    };
    if let Some(after) = after {
        let exists: Option<(i32,)> = via
            .fetch_optional(
                &format!(
                    "SELECT 1 FROM {schema}.{} WHERE name = $1 AND id = $2",
                    queue.table
                ),
                vec![Param::text(queue.name.as_str()), Param::Uuid(Some(after))],
            )
            .await?;
        ensure!(
            exists.is_some(),
            "findJobs: after names a row that no longer exists"
        );
    }
    let sql = format!(
        "SELECT COALESCE(json_agg(x.job ORDER BY x.created_on, x.id), '[]')::text FROM (
           SELECT {} AS job, j.created_on, j.id FROM {schema}.{} j
           WHERE j.name = $1
             AND ($2::uuid IS NULL OR j.id = $2)
             AND ($3::text IS NULL OR j.singleton_key = $3)
             AND ($4::text IS NULL OR j.data @> $4::text::jsonb)
             AND (NOT $5 OR j.state < 'active')
             AND ($6::uuid IS NULL OR (j.created_on, j.id) > (SELECT a.created_on, a.id FROM {schema}.{} a WHERE a.name = $1 AND a.id = $6))
           ORDER BY j.created_on, j.id
           LIMIT $7) x",
        job_json(true).trim_end_matches("::text"),
        queue.table,
        queue.table
    );
    let params = vec![
        Param::text(queue.name.as_str()),
        Param::Uuid(id),
        Param::Text(key),
        Param::Text(data),
        Param::Bool(queued),
        Param::Uuid(after),
        Param::Int8(limit),
    ];
    let (jobs,): (String,) = via.fetch_one(&sql, params).await?;
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_slot_starts_when_the_current_one_ends() {
        // 25 s into a 60 s slot: 35 s left, plus one to land inside the next slot.
        assert_eq!(next_slot_delay(60_000.0 * 10.0 + 25_000.0, 60), 36);
        // One-second slots never wait zero.
        assert_eq!(next_slot_delay(1_000.0 * 7.0 + 500.0, 1), 1);
    }
}
