//! Queues: create, read, update, delete, and the per-instance cache of what a queue's jobs need
//! (its table and policy).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sqlx::PgPool;

use crate::config::js::Options;
use crate::ensure;
use crate::error::{Error, Result};
use crate::model::names::assert_queue_name;
use crate::model::queue::validate_queue_options;
use crate::model::queue::{queue_not_found, QueueInfo, POLICIES};
use crate::schema::install::advisory_lock_key;
use crate::sql::{QueueStatement, StatementCache};

/// A queue as this instance caches it: its row, and the statements rendered for it so far.
#[derive(Debug)]
pub struct Queue {
    info: QueueInfo,
    pub statements: StatementCache<QueueStatement>,
}

impl Queue {
    pub fn new(info: QueueInfo) -> Queue {
        Queue {
            info,
            statements: StatementCache::default(),
        }
    }
}

impl std::ops::Deref for Queue {
    type Target = QueueInfo;

    fn deref(&self) -> &QueueInfo {
        &self.info
    }
}

/// The queues this instance has used, so sending, fetching and settling need not read the queue
/// row each time. Cleared every `queueCacheIntervalSeconds`, to follow changes other instances make.
#[derive(Default)]
pub struct QueueCache {
    entries: Mutex<HashMap<String, Arc<Queue>>>,
}

impl QueueCache {
    /// The cached entry, if there is one, without going to the database.
    pub fn get(&self, name: &str) -> Option<Arc<Queue>> {
        self.entries.lock().unwrap().get(name).cloned()
    }
    fn put(&self, info: QueueInfo) -> Arc<Queue> {
        let queue = Arc::new(Queue::new(info));
        self.entries
            .lock()
            .unwrap()
            .insert(queue.name.clone(), queue.clone());
        queue
    }
    pub fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }
    pub fn evict(&self, name: &str) {
        self.entries.lock().unwrap().remove(name);
    }
}

/// Reads one queue's row, bypassing the cache.
async fn load(pool: &PgPool, schema: &str, name: &str) -> Result<Option<QueueInfo>> {
    let sql = format!("SELECT name, table_name, policy, partition, notify, ready_count::int8 FROM {schema}.queue WHERE name = $1");
    let row: Option<(String, String, String, bool, bool, i64)> =
        sqlx::query_as(&sql).bind(name).fetch_optional(pool).await?;
    Ok(row.map(
        |(name, table, policy, partition, notify, ready_count)| QueueInfo {
            name,
            table,
            policy,
            partition,
            notify,
            ready_count,
        },
    ))
}

/// The cached queue, loaded on first use; a missing queue is an error.
pub async fn cached(
    pool: &PgPool,
    schema: &str,
    cache: &QueueCache,
    name: &str,
) -> Result<Arc<Queue>> {
    if let Some(queue) = cache.get(name) {
        return Ok(queue);
    }
    let info = load(pool, schema, name)
        .await?
        .ok_or_else(|| queue_not_found(name))?;
    Ok(cache.put(info))
}

/// Re-reads a queue after a change, so the cache follows what the database now says.
async fn reload(pool: &PgPool, schema: &str, cache: &QueueCache, name: &str) -> Result<()> {
    match load(pool, schema, name).await? {
        Some(info) => {
            cache.put(info);
        }
        None => cache.evict(name),
    }
    Ok(())
}

pub async fn create_queue(
    pool: &PgPool,
    schema: &str,
    cache: &QueueCache,
    name: &Value,
    options: &Options,
) -> Result<()> {
    let name = match name {
        Value::Null => options.get("name").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    let name = assert_queue_name(&name)?.to_string();
    let policy = match options.get("policy") {
        None | Some(Value::Null) => "standard".to_string(),
        Some(Value::String(p)) if p.is_empty() => "standard".to_string(),
        Some(p) => {
            let shown = p
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| p.to_string());
            ensure!(
                POLICIES.contains(&shown.as_str()),
                "{shown} is not a valid queue policy"
            );
            shown
        }
    };
    validate_queue_options(options)?;
    if let Some(partition) = options.get("partition") {
        ensure!(
            partition.is_boolean() || partition.is_null(),
            "partition must be a boolean"
        );
    }
    if let Some(dead_letter) = options
        .get("deadLetter")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        assert_queue_name(&Value::String(dead_letter.to_string()))?;
        ensure!(dead_letter != name, "deadLetter cannot be itself");
        cached(pool, schema, cache, dead_letter).await?;
    }
    let mut stored = options.clone();
    stored.insert("policy".into(), Value::String(policy));
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(schema, "create-queue")
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "SELECT {schema}.create_queue($1, $2::text::jsonb)"
    ))
    .bind(&name)
    .bind(Value::Object(stored).to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    reload(pool, schema, cache, &name).await
}

pub async fn update_queue(
    pool: &PgPool,
    schema: &str,
    cache: &QueueCache,
    name: &Value,
    options: &Options,
) -> Result<()> {
    let name = assert_queue_name(name)?.to_string();
    ensure!(!options.is_empty(), "no properties found to update");
    ensure!(
        !options.contains_key("policy"),
        "queue policy cannot be changed after creation"
    );
    ensure!(
        !options.contains_key("partition"),
        "queue partitioning cannot be changed after creation"
    );
    validate_queue_options(options)?;
    if let Some(dead_letter) = options.get("deadLetter").and_then(Value::as_str) {
        assert_queue_name(&Value::String(dead_letter.to_string()))?;
        ensure!(dead_letter != name, "deadLetter cannot be itself");
    }
    // A key that is present (even as null) replaces the stored value for the nullable options;
    // the others keep their value unless given.
    let sql = format!(
        "UPDATE {schema}.queue q SET
           retry_limit = COALESCE((o->>'retryLimit')::int, q.retry_limit),
           retry_delay = COALESCE((o->>'retryDelay')::int, q.retry_delay),
           retry_backoff = COALESCE((o->>'retryBackoff')::bool, q.retry_backoff),
           retry_delay_max = CASE WHEN o ? 'retryDelayMax' THEN (o->>'retryDelayMax')::int ELSE q.retry_delay_max END,
           expire_seconds = COALESCE((o->>'expireInSeconds')::int, q.expire_seconds),
           retention_seconds = COALESCE((o->>'retentionSeconds')::int, q.retention_seconds),
           deletion_seconds = COALESCE((o->>'deleteAfterSeconds')::int, q.deletion_seconds),
           warning_queued = COALESCE((o->>'warningQueueSize')::int, q.warning_queued),
           heartbeat_seconds = CASE WHEN o ? 'heartbeatSeconds' THEN (o->>'heartbeatSeconds')::int ELSE q.heartbeat_seconds END,
           notify = COALESCE((o->>'notify')::bool, q.notify),
           dead_letter = CASE WHEN o ? 'deadLetter' THEN o->>'deadLetter' ELSE q.dead_letter END,
           updated_on = {schema}.job_now()
         FROM (SELECT $2::text::jsonb AS o) input
         WHERE q.name = $1"
    );
    sqlx::query(&sql)
        .bind(&name)
        .bind(Value::Object(options.clone()).to_string())
        .execute(pool)
        .await?;
    reload(pool, schema, cache, &name).await
}

pub async fn delete_queue(
    pool: &PgPool,
    schema: &str,
    cache: &QueueCache,
    name: &Value,
) -> Result<()> {
    let name = assert_queue_name(name)?.to_string();
    let Some(queue) = load(pool, schema, &name).await? else {
        cache.evict(&name);
        return Ok(());
    };
    if !queue.partition {
        let referrer_sql = format!(
            "(SELECT name, 'queue' FROM {schema}.queue WHERE dead_letter = $1 AND name <> $1 LIMIT 1)
             UNION ALL
             (SELECT name, 'job' FROM {schema}.job WHERE dead_letter = $1 AND name <> $1 LIMIT 1)
             LIMIT 1"
        );
        let referrer: Option<(String, String)> = sqlx::query_as(&referrer_sql)
            .bind(&name)
            .fetch_optional(pool)
            .await?;
        if let Some((other, kind)) = referrer {
            return Err(Error::internal(if kind == "queue" {
                format!(
                    "Queue {name} was not deleted: queue {other} uses it as its dead letter queue"
                )
            } else {
                format!("Queue {name} was not deleted: jobs in queue {other} name it as their dead letter queue")
            }));
        }
    }
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(schema, "delete-queue")
    ))
    .execute(&mut *tx)
    .await?;
    if queue.partition {
        sqlx::query(&format!(
            "LOCK TABLE {schema}.job_common, {schema}.\"{}\", {schema}.job IN ACCESS EXCLUSIVE MODE",
            queue.table.replace('"', "\"\"")
        ))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(&format!("SELECT {schema}.delete_queue($1)"))
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    if queue.partition {
        sqlx::query(&format!(
            "DELETE FROM {schema}.bam WHERE table_name = $1 AND status <> 'completed'"
        ))
        .bind(&queue.table)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    cache.evict(&name);
    Ok(())
}

/// Queues as JSON text (an array of pg-boss queue objects), ordered by name.
pub async fn get_queues_json(
    pool: &PgPool,
    schema: &str,
    names: Option<&[String]>,
    limit: i64,
    after: Option<&str>,
) -> Result<String> {
    let sql = format!(
        "SELECT COALESCE(json_agg(json_build_object(
            'name', q.name, 'policy', q.policy,
            'retryLimit', q.retry_limit, 'retryDelay', q.retry_delay, 'retryBackoff', q.retry_backoff,
            'retryDelayMax', q.retry_delay_max, 'expireInSeconds', q.expire_seconds,
            'retentionSeconds', q.retention_seconds, 'deleteAfterSeconds', q.deletion_seconds,
            'partition', q.partition, 'heartbeatSeconds', q.heartbeat_seconds, 'notify', q.notify,
            'deadLetter', q.dead_letter, 'deferredCount', q.deferred_count, 'blockedCount', q.blocked_count,
            'warningQueueSize', q.warning_queued, 'queuedCount', q.queued_count, 'readyCount', q.ready_count,
            'activeCount', q.active_count, 'failedCount', q.failed_count, 'totalCount', q.total_count,
            'createdDelta', q.created_delta, 'completedDelta', q.completed_delta, 'failedDelta', q.failed_delta,
            'deltaSeconds', q.delta_seconds, 'deltaOn', q.delta_on,
            'waitBins', (SELECT array_agg(COALESCE(b, 0)) FROM unnest(q.wait_bins) b),
            'runBins', (SELECT array_agg(COALESCE(b, 0)) FROM unnest(q.run_bins) b),
            'readyOldestSeconds', q.ready_oldest_seconds, 'singletonsActive', q.singletons_active,
            'table', q.table_name, 'createdOn', q.created_on, 'updatedOn', q.updated_on
          ) ORDER BY q.name), '[]')::text
         FROM (
           SELECT * FROM {schema}.queue
           WHERE ($1::text[] IS NULL OR name = ANY($1)) AND ($2::text IS NULL OR name > $2)
           ORDER BY name
           LIMIT $3
         ) q"
    );
    Ok(sqlx::query_scalar::<_, String>(&sql)
        .bind(names)
        .bind(after)
        .bind(limit)
        .fetch_one(pool)
        .await?)
}
