//! Dead letter redrive: moving jobs that wait in a dead letter queue back to the queue they came
//! from (or another one), and previewing what a redrive would do.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::js::{is_integer, Options};
use crate::ensure;
use crate::error::{Error, Result};
use crate::model::names::assert_queue_name;
use crate::model::queue::QueueInfo;

/// Which dead-lettered jobs a redrive or preview considers.
#[derive(Debug, Default, Clone)]
pub struct RedriveFilter {
    pub destination: Option<String>,
    pub source_name: Option<String>,
    pub data: Option<String>,
    pub created_before: Option<DateTime<Utc>>,
    pub ids: Option<Vec<Uuid>>,
}

impl RedriveFilter {
    pub fn from_options(options: &Options) -> Result<RedriveFilter> {
        let name_opt = |key: &str| -> Result<Option<String>> {
            match options.get(key).filter(|v| !v.is_null()) {
                None => Ok(None),
                Some(v) => Ok(Some(assert_queue_name(v)?.to_string())),
            }
        };
        let data = match options.get("data") {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.to_string()),
            Some(_) => return Err(Error::invalid("data must be an object")),
        };
        let created_before = match options.get("createdBefore") {
            None => None,
            Some(Value::String(s)) => Some(
                DateTime::parse_from_rfc3339(s)
                    .map_err(|_| Error::invalid("createdBefore must be a valid Date"))?
                    .with_timezone(&Utc),
            ),
            Some(_) => return Err(Error::invalid("createdBefore must be a valid Date")),
        };
        let ids = match options.get("ids") {
            None => None,
            Some(Value::Array(items))
                if !items.is_empty() && items.iter().all(Value::is_string) =>
            {
                Some(
                    items
                        .iter()
                        .map(|v| {
                            Uuid::parse_str(v.as_str().unwrap_or_default())
                                .map_err(|_| Error::invalid("ids must be uuids"))
                        })
                        .collect::<Result<Vec<_>>>()?,
                )
            }
            Some(_) => return Err(Error::invalid("ids must be a non-empty array of strings")),
        };
        Ok(RedriveFilter {
            destination: name_opt("destination")?,
            source_name: name_opt("sourceName")?,
            data,
            created_before,
            ids,
        })
    }
}

/// The jobs a redrive may take: queued (not running) dead letters matching the filter, and not a
/// key_strict_fifo job whose key is held. Parameters: $1 dead letter queue, $2 destination,
/// $3 source name, $4 data, $5 created before, $6 ids.
fn candidates_where(schema: &str, table: &str) -> String {
    format!(
        "j.name = $1 AND j.state < 'active'
         AND NOT EXISTS (SELECT 1 FROM {schema}.{table} k WHERE j.policy = 'key_strict_fifo' AND k.name = j.name
           AND k.singleton_key = j.singleton_key AND k.policy = 'key_strict_fifo' AND k.state IN ('active', 'retry', 'failed'))
         AND ($3::text IS NULL OR j.source_name = $3)
         AND ($4::text IS NULL OR j.data @> $4::text::jsonb)
         AND ($5::timestamptz IS NULL OR j.created_on < $5)
         AND ($6::uuid[] IS NULL OR j.id = ANY($6))"
    )
}

fn bind_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    queue: &'q QueueInfo,
    filter: &'q RedriveFilter,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&queue.name)
        .bind(filter.destination.as_deref())
        .bind(filter.source_name.as_deref())
        .bind(filter.data.as_deref())
        .bind(filter.created_before)
        .bind(filter.ids.as_deref())
}

fn limit_of(options: &Options, default: i64, message: &str) -> Result<i64> {
    match options.get("limit") {
        None => Ok(default),
        Some(v) => {
            ensure!(
                is_integer(v) && v.as_f64().unwrap_or(0.0) >= 1.0,
                "{message}"
            );
            Ok(v.as_i64().unwrap_or(default))
        }
    }
}

/// Re-creates up to `limit` dead letters (oldest first) as new jobs in their destination, which
/// supplies every queue setting; a job the destination's policy refuses is failed in place with the
/// reason. Returns how many moved.
pub async fn redrive(
    pool: &PgPool,
    schema: &str,
    queue: &QueueInfo,
    options: &Options,
) -> Result<i64> {
    let limit = limit_of(options, 1000, "limit must be an integer >= 1")?;
    let filter = RedriveFilter::from_options(options)?;
    let table = &queue.table;
    let sql = format!(
        "WITH candidates AS MATERIALIZED (
           SELECT j.id, gen_random_uuid() AS new_id
           FROM {schema}.{table} j JOIN {schema}.queue q ON q.name = COALESCE($2, j.source_name)
           WHERE {where_}
           ORDER BY j.created_on LIMIT $7
           FOR UPDATE OF j SKIP LOCKED
         ), created AS (
           INSERT INTO {schema}.job (id, name, data, priority, retry_limit, retry_backoff, retry_delay, retry_delay_max,
             expire_seconds, start_after, created_on, keep_until, deletion_seconds, policy, singleton_key, group_id,
             group_tier, heartbeat_seconds, dead_letter, source_root_id, trace_context)
           SELECT c.new_id, q.name, m.data, m.priority, q.retry_limit, q.retry_backoff, q.retry_delay, q.retry_delay_max,
             q.expire_seconds, {schema}.job_now(), {schema}.job_now(), {schema}.job_now() + q.retention_seconds * interval '1s',
             q.deletion_seconds, q.policy, m.singleton_key, m.group_id, m.group_tier, q.heartbeat_seconds, q.dead_letter,
             COALESCE(m.source_root_id, m.source_id), m.trace_context
           FROM candidates c
             JOIN {schema}.{table} m ON m.name = $1 AND m.id = c.id
             JOIN {schema}.queue q ON q.name = COALESCE($2, m.source_name)
           ORDER BY m.created_on
           ON CONFLICT DO NOTHING
           RETURNING id
         ), outcome AS (
           SELECT c.id, (r.id IS NOT NULL) AS moved FROM candidates c LEFT JOIN created r ON r.id = c.new_id
         ), removed AS (
           DELETE FROM {schema}.{table} WHERE name = $1 AND id IN (SELECT id FROM outcome WHERE moved)
         ), refused AS (
           UPDATE {schema}.{table} j SET
             state = 'failed', completed_on = {schema}.job_now(),
             source_output = COALESCE(j.source_output, j.output),
             output = jsonb_build_object(
               'message', 'Not redriven: queue ' || q.name || CASE WHEN j.singleton_key IS NULL
                 THEN ' already has a job this one conflicts with'
                 ELSE ' already has a job with singletonKey ' || j.singleton_key END
                 || ' under its ' || COALESCE(q.policy, 'standard') || ' policy',
               'reason', 'redrive_conflict', 'destination', q.name, 'policy', q.policy, 'singletonKey', j.singleton_key)
           FROM outcome o, {schema}.queue q
           WHERE j.name = $1 AND j.id = o.id AND NOT o.moved AND q.name = COALESCE($2, j.source_name)
             AND (j.policy IS DISTINCT FROM 'key_strict_fifo' OR j.singleton_key IS NULL OR j.id IN (
               SELECT DISTINCT ON (x.singleton_key) x.id FROM {schema}.{table} x
               WHERE x.name = $1 AND x.id IN (SELECT id FROM outcome WHERE NOT moved) AND x.policy = 'key_strict_fifo'
               ORDER BY x.singleton_key, x.created_on, x.id))
         )
         SELECT count(*) FROM created",
        where_ = candidates_where(schema, table)
    );
    let moved: i64 = bind_filter(sqlx::query(&sql), queue, &filter)
        .bind(limit)
        .fetch_one(pool)
        .await
        .and_then(|row| sqlx::Row::try_get(&row, 0))?;
    Ok(moved)
}

/// What `redrive()` with the same filter would do: how many jobs, by destination, and how many it
/// would leave because they have nowhere to go.
pub async fn preview(
    pool: &PgPool,
    schema: &str,
    queue: &QueueInfo,
    options: &Options,
) -> Result<Value> {
    let limit = limit_of(
        options,
        1000,
        "previewRedrive: limit must be an integer between 1 and 100000",
    )?;
    ensure!(
        limit <= 100_000,
        "previewRedrive: limit must be an integer between 1 and 100000"
    );
    let filter = RedriveFilter::from_options(options)?;
    let table = &queue.table;
    let from = format!(
        "FROM {schema}.{table} j LEFT JOIN {schema}.queue q ON q.name = COALESCE($2, j.source_name) WHERE {}",
        candidates_where(schema, table)
    );
    let sql = format!(
        "(SELECT q.name {from} AND q.name IS NOT NULL LIMIT $7) UNION ALL (SELECT NULL {from} AND q.name IS NULL LIMIT $7)"
    );
    let rows = bind_filter(sqlx::query(&sql), queue, &filter)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let mut counts: Vec<(String, i64)> = Vec::new();
    let mut unroutable = 0;
    for row in &rows {
        match sqlx::Row::try_get::<Option<String>, _>(row, 0)? {
            None => unroutable += 1,
            Some(name) => match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count += 1,
                None => counts.push((name, 1)),
            },
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(json!({
        "total": rows.len(),
        "destinations": counts.iter().map(|(name, count)| json!({ "name": name, "count": count })).collect::<Vec<_>>(),
        "unroutable": unroutable,
    }))
}
