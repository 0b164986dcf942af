//! In-place edits of queued jobs: `update()`, `upsert()` (edit, or insert when nothing matches),
//! and `getBlockedKeys()` for `key_strict_fifo` queues.
//!
//! An edit only touches jobs that have not started, and only the columns the caller supplied: the
//! payload carries exactly those keys, and the statement keeps every column whose key is absent.

use crate::config::js::truthy;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::js::{is_integer, Options};
use crate::ensure;
use crate::error::{Error, Result};
use crate::model::job_settings::{
    validate_expiration, validate_heartbeat, validate_retention, validate_retry,
};
use crate::model::names::assert_queue_name;
use crate::model::queue::QueueInfo;
use crate::model::send::{pin_zoneless_date_time, validate_group};
use crate::sql::exec::{CallerDb, Exec, ExecError, Param, Tx};

const MATCHES: [&str; 3] = ["newest", "oldest", "all"];

/// Which jobs an edit addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Id,
    Key(Match),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Newest,
    Oldest,
    All,
}

/// A checked `update()`/`upsert()` request.
pub struct UpdateRequest {
    pub name: String,
    target: Target,
    /// The columns to write, as the insert's recordset understands them (camelCase keys).
    payload: Map<String, Value>,
    has_key: bool,
}

/// Checks a request as pg-boss does, in its order and with its messages. `request` is
/// `{ name, data?, options? }` (the binding has already resolved the overloads; `data` is absent
/// when the caller left it undefined, which leaves a job's data as it is).
pub fn check(request: &Value, upsert: bool) -> Result<UpdateRequest> {
    let verb = if upsert { "upsert()" } else { "update()" };
    let name = request.get("name").cloned().unwrap_or(Value::Null);
    let mut options: Options = match request.get("options") {
        Some(Value::Object(o)) => o.clone(),
        _ => Options::new(),
    };
    ensure!(
        truthy(options.get("id")) != truthy(options.get("singletonKey")),
        "{verb} requires exactly one of id or singletonKey"
    );
    let by_id = truthy(options.get("id"));
    ensure!(
        !(by_id && options.contains_key("match")),
        "match is only valid when targeting jobs by singletonKey"
    );
    let matching = match options.get("match") {
        None => Match::Newest,
        Some(Value::String(m)) if MATCHES.contains(&m.as_str()) => match m.as_str() {
            "oldest" => Match::Oldest,
            "all" => Match::All,
            _ => Match::Newest,
        },
        Some(_) => {
            return Err(Error::invalid(format!(
                "match must be one of: {}",
                MATCHES.join(", ")
            )))
        }
    };
    if let Some(v) = options.get("priority") {
        ensure!(is_integer(v), "priority must be an integer");
    }
    if let Some(v) = options.get("startAfter") {
        // Unlike send(), any finite number counts, so 0 pulls a deferred job forward to now.
        let start = match v {
            Value::Number(n) => Some(Value::String(n.to_string())),
            Value::String(s) => Some(Value::String(pin_zoneless_date_time(s))),
            _ => None,
        };
        match start {
            Some(s) => options.insert("startAfter".into(), s),
            None => options.remove("startAfter"),
        };
    }
    validate_retry(&options)?;
    validate_expiration(&options)?;
    validate_retention(&options)?;
    validate_group(&options)?;
    validate_heartbeat(&options)?;
    let name = assert_queue_name(&name)?.to_string();

    let mut payload = Map::new();
    if let Some(data) = request.get("data") {
        payload.insert("data".into(), data.clone());
    }
    for key in [
        "priority",
        "startAfter",
        "retentionSeconds",
        "expireInSeconds",
        "deleteAfterSeconds",
        "retryLimit",
        "retryDelay",
        "retryBackoff",
        "retryDelayMax",
        "deadLetter",
        "heartbeatSeconds",
    ] {
        if let Some(v) = options.get(key) {
            payload.insert(key.into(), v.clone());
        }
    }
    if let Some(group) = options.get("group").and_then(Value::as_object) {
        for (from, to) in [("id", "groupId"), ("tier", "groupTier")] {
            if let Some(v) = group.get(from) {
                payload.insert(to.into(), v.clone());
            }
        }
    }
    for key in ["id", "singletonKey"] {
        if let Some(v) = options.get(key) {
            payload.insert(key.into(), v.clone());
        }
    }
    Ok(UpdateRequest {
        name,
        target: if by_id {
            Target::Id
        } else {
            Target::Key(matching)
        },
        has_key: truthy(options.get("singletonKey")),
        payload,
    })
}

impl UpdateRequest {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A start given as a date time is that instant; anything else is an interval from now.
fn resolved_start(schema: &str) -> String {
    format!(
        "CASE WHEN (o.v -> 'startAfter') IS NOT NULL
           THEN CASE WHEN right(o.v ->> 'startAfter', 1) = 'Z' OR (o.v ->> 'startAfter') ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}'
                  THEN (o.v ->> 'startAfter')::timestamptz
                  ELSE {schema}.job_now() + (o.v ->> 'startAfter')::interval END
           ELSE job.start_after END"
    )
}

/// The edit: `$1` is the payload (JSON text). Returns the ids edited.
fn update_sql(schema: &str, queue: &QueueInfo, target: Target) -> String {
    let table = &queue.table;
    let (predicate, pick) = match target {
        Target::Id => ("job.id = (o.v ->> 'id')::uuid", ""),
        Target::Key(Match::Newest) => (
            "job.singleton_key = o.v ->> 'singletonKey'",
            "ORDER BY job.created_on DESC LIMIT 1",
        ),
        Target::Key(Match::Oldest) => (
            "job.singleton_key = o.v ->> 'singletonKey'",
            "ORDER BY job.created_on ASC LIMIT 1",
        ),
        Target::Key(Match::All) => ("job.singleton_key = o.v ->> 'singletonKey'", ""),
    };
    let start = resolved_start(schema);
    let name = queue.name.replace('\'', "''");
    // `(o.v -> 'k') IS NOT NULL` holds for a key given as JSON null too, so null clears a column
    // that may be null. The state is checked again on the locked row: a worker may have claimed
    // the job between the pick and the write.
    let ending = crate::ops::jobs::written_ids(schema, queue);
    format!(
        "WITH o AS (SELECT $1::text::jsonb AS v),
         picked AS (
           SELECT job.id FROM {schema}.{table} job, o
           WHERE job.name = '{name}' AND job.state < 'active' AND {predicate}
           {pick}
         ), written AS (
         UPDATE {schema}.{table} job SET
           data = CASE WHEN (o.v -> 'data') IS NOT NULL THEN o.v -> 'data' ELSE job.data END,
           priority = COALESCE((o.v ->> 'priority')::int, job.priority),
           start_after = {start},
           keep_until = CASE
             WHEN (o.v -> 'retentionSeconds') IS NOT NULL THEN ({start}) + (o.v ->> 'retentionSeconds')::int * interval '1s'
             WHEN (o.v -> 'startAfter') IS NOT NULL THEN ({start}) + (job.keep_until - job.start_after)
             ELSE job.keep_until END,
           expire_seconds = COALESCE((o.v ->> 'expireInSeconds')::int, job.expire_seconds),
           deletion_seconds = COALESCE((o.v ->> 'deleteAfterSeconds')::int, job.deletion_seconds),
           retry_limit = COALESCE((o.v ->> 'retryLimit')::int, job.retry_limit),
           retry_delay = COALESCE((o.v ->> 'retryDelay')::int, job.retry_delay),
           retry_backoff = COALESCE((o.v ->> 'retryBackoff')::bool, job.retry_backoff),
           retry_delay_max = CASE WHEN (o.v -> 'retryDelayMax') IS NOT NULL THEN (o.v ->> 'retryDelayMax')::int ELSE job.retry_delay_max END,
           dead_letter = CASE WHEN (o.v -> 'deadLetter') IS NOT NULL THEN o.v ->> 'deadLetter' ELSE job.dead_letter END,
           heartbeat_seconds = CASE WHEN (o.v -> 'heartbeatSeconds') IS NOT NULL THEN (o.v ->> 'heartbeatSeconds')::int ELSE job.heartbeat_seconds END,
           group_id = CASE WHEN (o.v -> 'groupId') IS NOT NULL THEN o.v ->> 'groupId' ELSE job.group_id END,
           group_tier = CASE WHEN (o.v -> 'groupTier') IS NOT NULL THEN o.v ->> 'groupTier' ELSE job.group_tier END
         FROM o
         WHERE job.name = '{name}' AND job.id IN (SELECT id FROM picked) AND job.state < 'active'
         RETURNING job.id, job.start_after)
         {ending}"
    )
}

/// The ids a statement answers: one `$1` payload, and the queue's name as `$2` when given.
async fn ids(
    at: Exec<'_>,
    sql: &str,
    payload: &str,
    name: Option<&str>,
) -> std::result::Result<Vec<Uuid>, ExecError> {
    let mut params = vec![Param::text(payload)];
    params.extend(name.map(Param::text));
    let rows: Vec<(Uuid,)> = at.fetch_all(sql, params).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

async fn edit(
    at: Exec<'_>,
    schema: &str,
    queue: &QueueInfo,
    request: &UpdateRequest,
    payload: &str,
) -> Result<Vec<Uuid>> {
    Ok(ids(
        at,
        &update_sql(schema, queue, request.target),
        payload,
        None,
    )
    .await?)
}

/// `update()`: `{ jobs, updated }`. With `caller`, through the caller's db.
pub async fn update(
    pool: &PgPool,
    caller: Option<&dyn CallerDb>,
    schema: &str,
    queue: &QueueInfo,
    request: &UpdateRequest,
) -> Result<Value> {
    let payload = Value::Object(request.payload.clone()).to_string();
    let jobs = edit(
        Exec::pool_or_caller(pool, caller),
        schema,
        queue,
        request,
        &payload,
    )
    .await?;
    Ok(json!({ "jobs": jobs, "updated": jobs.len() }))
}

/// `upsert()`: edits the matching queued job(s), or inserts one when nothing matches, in one
/// transaction: the engine's own, or with `caller` whatever transaction the caller's db holds.
/// `{ jobs, updated, inserted }`.
pub async fn upsert(
    pool: &PgPool,
    caller: Option<&dyn CallerDb>,
    schema: &str,
    queue: &QueueInfo,
    request: &UpdateRequest,
) -> Result<Value> {
    // An insert on a key_strict_fifo queue needs a key, so this is refused up front, even when the
    // edit targets an id.
    ensure!(
        queue.policy != "key_strict_fifo" || request.has_key,
        "key_strict_fifo queues require a singletonKey"
    );
    if let Some(db) = caller {
        return edit_or_insert(Exec::caller(db), schema, queue, request).await;
    }
    let tx = Tx::begin(pool).await?;
    let result = edit_or_insert(Exec::tx(&tx), schema, queue, request).await?;
    // The queue keys are checked at commit (they are deferred).
    tx.commit()
        .await
        .map_err(|e| crate::ops::jobs::insert_error(e, &queue.name))?;
    Ok(result)
}

async fn edit_or_insert(
    at: Exec<'_>,
    schema: &str,
    queue: &QueueInfo,
    request: &UpdateRequest,
) -> Result<Value> {
    let payload = Value::Object(request.payload.clone()).to_string();
    let records = Value::Array(vec![Value::Object(request.payload.clone())]).to_string();
    let by_key = matches!(request.target, Target::Key(_));
    let insert = crate::ops::jobs::insert_sql_by_key(schema, queue, true, by_key);
    let updated = edit(at, schema, queue, request, &payload).await?;
    if !updated.is_empty() {
        return Ok(json!({ "jobs": updated, "updated": updated.len(), "inserted": 0 }));
    }
    let inserted = ids(at, &insert, &records, Some(&queue.name))
        .await
        .map_err(|e| crate::ops::jobs::insert_error(e, &queue.name))?;
    if !inserted.is_empty() {
        return Ok(json!({ "jobs": inserted, "updated": 0, "inserted": inserted.len() }));
    }
    // A concurrent send or upsert took the slot first; its job is visible now: edit it.
    let updated = edit(at, schema, queue, request, &payload).await?;
    Ok(json!({ "jobs": updated, "updated": updated.len(), "inserted": 0 }))
}

/// `getBlockedKeys()`: the keys of a key_strict_fifo queue held by a failed job, in order.
pub async fn blocked_keys(
    pool: &PgPool,
    schema: &str,
    queue: &QueueInfo,
    limit: i64,
    after: Option<&str>,
) -> Result<Vec<String>> {
    ensure!(
        queue.policy == "key_strict_fifo",
        "getBlockedKeys is only available for key_strict_fifo queues"
    );
    let sql = format!(
        "SELECT DISTINCT singleton_key FROM {schema}.{} WHERE name = $1 AND state = 'failed' AND policy = 'key_strict_fifo'
           AND ($2::text IS NULL OR singleton_key > $2)
         ORDER BY singleton_key LIMIT $3",
        queue.table
    );
    Ok(sqlx::query_scalar::<_, String>(&sql)
        .bind(&queue.name)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(request: Value, upsert: bool) -> String {
        check(&request, upsert)
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
    }

    #[test]
    fn requests_are_checked_like_pg_boss() {
        assert_eq!(
            message(json!({"name": "q", "options": {}}), false),
            "update() requires exactly one of id or singletonKey"
        );
        assert_eq!(
            message(
                json!({"name": "q", "options": {"id": "x", "singletonKey": "k"}}),
                true
            ),
            "upsert() requires exactly one of id or singletonKey"
        );
        assert_eq!(
            message(
                json!({"name": "q", "options": {"id": "x", "match": "all"}}),
                false
            ),
            "match is only valid when targeting jobs by singletonKey"
        );
        assert_eq!(
            message(
                json!({"name": "q", "options": {"singletonKey": "k", "match": "latest"}}),
                false
            ),
            "match must be one of: newest, oldest, all"
        );
        assert!(message(
            json!({"name": "a b", "options": {"singletonKey": "k"}}),
            false
        )
        .contains("Name can only"));
        let ok = check(
            &json!({"name": "q", "options": {"singletonKey": "k", "startAfter": 0}}),
            false,
        )
        .unwrap();
        assert_eq!(ok.payload["startAfter"], json!("0"));
        assert!(!ok.payload.contains_key("data"));
    }
}
