//! The statements of the queue calls: create, update, delete and list queues, and the read of one
//! queue row behind the queue cache.

use serde_json::{Map, Value};

use crate::model::queue::{CreateQueue, Patch, QueueOptions, Unchecked};
use crate::sql::install::advisory_lock_key;

/// A schema's queue statements.
#[derive(Debug)]
pub struct QueueSql {
    /// pg-boss's lock around creating a queue (none on a backend without advisory locks).
    pub create_lock: Option<String>,
    /// $1 name, $2 the options document (text; see [`create_document`]).
    pub create: String,
    /// $1 name, $2 the options document (text; see [`update_document`]).
    pub update: String,
    /// $1 name: a queue, or a job of another queue, naming it as their dead letter queue.
    pub dead_letter_referrer: String,
    /// pg-boss's lock around deleting a queue (none on a backend without advisory locks).
    pub delete_lock: Option<String>,
    /// $1 name.
    pub delete: String,
    /// $1 the table of a partitioned queue: its background migrations that have not finished.
    pub delete_migrations: String,
    /// $1 names (text[] or null), $2 after (text or null), $3 limit: pg-boss's queue objects as
    /// one JSON array text, ordered by name.
    pub list: String,
}

impl QueueSql {
    pub fn new(schema: &str, locks: bool) -> QueueSql {
        let lock = |key: &str| {
            locks.then(|| {
                format!(
                    "SELECT pg_advisory_xact_lock({})",
                    advisory_lock_key(schema, key)
                )
            })
        };
        QueueSql {
            create_lock: lock("create-queue"),
            create: format!("SELECT {schema}.create_queue($1, $2::text::jsonb)"),
            update: update(schema),
            dead_letter_referrer: format!(
                "(SELECT name, 'queue' FROM {schema}.queue WHERE dead_letter = $1 AND name <> $1 LIMIT 1)
                 UNION ALL
                 (SELECT name, 'job' FROM {schema}.job WHERE dead_letter = $1 AND name <> $1 LIMIT 1)
                 LIMIT 1"
            ),
            delete_lock: lock("delete-queue"),
            delete: format!("SELECT {schema}.delete_queue($1)"),
            delete_migrations: format!(
                "DELETE FROM {schema}.bam WHERE table_name = $1 AND status <> 'completed'"
            ),
            list: list(schema),
        }
    }
}

/// $1 name: the queue row as [`crate::model::queue::QueueInfo`] holds it. Without `notifies` (a
/// backend without LISTEN/NOTIFY) no queue notifies: its inserts would fail on `pg_notify`, so
/// they leave it out and workers find the jobs by polling, as pg-boss does there.
pub fn load(schema: &str, notifies: bool) -> String {
    let notify = if notifies {
        "notify"
    } else {
        "false AS notify"
    };
    format!("SELECT name, table_name, policy, partition, {notify}, ready_count::int8 FROM {schema}.queue WHERE name = $1")
}

/// Locks a partitioned queue's own table with the tables it hangs from, before it is dropped, so
/// the drop never waits holding half of them (`QueueStatement::LockTables`).
pub fn lock_tables(schema: &str, table: &str) -> String {
    format!(
        "LOCK TABLE {schema}.job_common, {schema}.\"{}\", {schema}.job IN ACCESS EXCLUSIVE MODE",
        table.replace('"', "\"\"")
    )
}

/// A key present (even as null) replaces the stored value for the nullable options; the others
/// keep their value unless given.
fn update(schema: &str) -> String {
    format!(
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
    )
}

fn list(schema: &str) -> String {
    format!(
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
    )
}

/// The options document the schema's `create_queue()` function reads (pg-boss's own keys).
pub fn create_document(queue: &CreateQueue) -> String {
    let mut document = options_document(&queue.options);
    document.insert("policy".into(), Value::String(queue.policy.clone()));
    document.insert("partition".into(), Value::Bool(queue.partition));
    Value::Object(document).to_string()
}

/// The options document the update statement reads: a key for every option given, null for one
/// given as null.
pub fn update_document(options: &QueueOptions) -> String {
    Value::Object(options_document(options)).to_string()
}

fn options_document(o: &QueueOptions) -> Map<String, Value> {
    let mut document = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            document.insert(key.to_string(), value);
        }
    };
    put("retryLimit", o.retry_limit.map(number));
    put("retryDelay", o.retry_delay.map(number));
    put("retryBackoff", o.retry_backoff.map(Value::Bool));
    put("retryDelayMax", patched(&o.retry_delay_max, |n| number(*n)));
    put("expireInSeconds", o.expire_in_seconds.map(number));
    put("retentionSeconds", o.retention_seconds.map(number));
    put("deleteAfterSeconds", o.delete_after_seconds.map(number));
    put(
        "warningQueueSize",
        o.warning_queue_size.as_ref().map(|size| match size {
            Unchecked::Number(n) => number(*n),
            Unchecked::Text(text) => Value::String(text.clone()),
        }),
    );
    put(
        "heartbeatSeconds",
        patched(&o.heartbeat_seconds, |n| number(*n)),
    );
    put("notify", o.notify.map(Value::Bool));
    put(
        "deadLetter",
        patched(&o.dead_letter, |name| Value::String(name.clone())),
    );
    document
}

fn patched<T>(patch: &Patch<T>, value: impl Fn(&T) -> Value) -> Option<Value> {
    match patch {
        Patch::Keep => None,
        Patch::Clear => Some(Value::Null),
        Patch::Set(v) => Some(value(v)),
    }
}

/// A JavaScript number as `JSON.stringify` writes it: whole numbers without a fraction, since the
/// database casts `'4.0'` to an integer no better than pg-boss's `'4.5'`.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < i64::MAX as f64 {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::queue::UpdateQueue;
    use serde_json::json;

    #[test]
    fn documents_carry_what_was_given() {
        let options = json!({ "retryLimit": 4, "expireInSeconds": 1.5, "deadLetter": null, "warningQueueSize": "9" });
        let update = UpdateQueue::from_json(&json!("q"), options.as_object().unwrap()).unwrap();
        let document: Value = serde_json::from_str(&update_document(&update.options)).unwrap();
        assert_eq!(
            document,
            json!({ "retryLimit": 4, "expireInSeconds": 1.5, "deadLetter": null, "warningQueueSize": "9" })
        );
        assert_eq!(update_document(&update.options).matches("4.0").count(), 0);

        let create = CreateQueue::with_defaults("q").unwrap();
        let document: Value = serde_json::from_str(&create_document(&create)).unwrap();
        assert_eq!(
            document,
            json!({ "policy": "standard", "partition": false })
        );
    }
}
