//! In-place edits of queued jobs (`update()`, and `upsert()`'s edit) and `getBlockedKeys()`.
//!
//! An edit only touches jobs that have not started, and only the columns the caller supplied: its
//! `$1` payload carries exactly those keys, and the statement keeps every column whose key is
//! absent. The same payload, as a one-row recordset, is what `upsert()` inserts.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::insert::{entry, written_ids};
use crate::model::queue::QueueInfo;
use crate::model::update::{Match, UpdateRequest, UpdateTarget};

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

/// The edit of the jobs `target` picks; answers the ids edited.
pub fn update(schema: &str, queue: &QueueInfo, target: UpdateTarget) -> String {
    let table = &queue.table;
    let (predicate, pick) = match target {
        UpdateTarget::Id => ("job.id = (o.v ->> 'id')::uuid", ""),
        UpdateTarget::Key(Match::Newest) => (
            "job.singleton_key = o.v ->> 'singletonKey'",
            "ORDER BY job.created_on DESC LIMIT 1",
        ),
        UpdateTarget::Key(Match::Oldest) => (
            "job.singleton_key = o.v ->> 'singletonKey'",
            "ORDER BY job.created_on ASC LIMIT 1",
        ),
        UpdateTarget::Key(Match::All) => ("job.singleton_key = o.v ->> 'singletonKey'", ""),
    };
    let name = queue.name.replace('\'', "''");
    // The state is checked again on the locked row: a worker may have claimed the job between the
    // pick and the write.
    format!(
        "WITH o AS (SELECT $1::text::jsonb AS v),
         picked AS (
           SELECT job.id FROM {schema}.{table} job, o
           WHERE job.name = '{name}' AND job.state < 'active' AND {predicate}
           {pick}
         ), written AS (
         UPDATE {schema}.{table} job SET
           {}
         FROM o
         WHERE job.name = '{name}' AND job.id IN (SELECT id FROM picked) AND job.state < 'active'
         RETURNING job.id, job.start_after)
         {}",
        assignments(schema),
        written_ids(schema, queue)
    )
}

/// `(o.v -> 'k') IS NOT NULL` holds for a key given as JSON null too, so null clears a column that
/// may be null; the others keep their value when given null.
fn assignments(schema: &str) -> String {
    let start = resolved_start(schema);
    format!(
        "data = CASE WHEN (o.v -> 'data') IS NOT NULL THEN o.v -> 'data' ELSE job.data END,
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
           group_tier = CASE WHEN (o.v -> 'groupTier') IS NOT NULL THEN o.v ->> 'groupTier' ELSE job.group_tier END"
    )
}

/// The keys of a key_strict_fifo queue (`$1`) held by a failed job, after `$2`, `$3` of them.
pub fn blocked_keys(schema: &str, queue: &QueueInfo) -> String {
    format!(
        "SELECT DISTINCT singleton_key FROM {schema}.{} WHERE name = $1 AND state = 'failed' AND policy = 'key_strict_fifo'
           AND ($2::text IS NULL OR singleton_key > $2)
         ORDER BY singleton_key LIMIT $3",
        queue.table
    )
}

/// The edit's payload: the columns the request gives, by pg-boss's option names.
pub fn payload(request: &UpdateRequest) -> String {
    serde_json::to_string(&Payload(request)).expect("an update payload is always JSON")
}

/// The payload as the insert's one-row recordset, for an upsert that matched nothing.
pub fn insert_record(request: &UpdateRequest) -> String {
    let mut record =
        serde_json::to_value(Payload(request)).expect("an update payload is always JSON");
    if let (Some(context), Some(map)) = (&request.trace_context, record.as_object_mut()) {
        map.insert("__traceContext".into(), context.clone());
    }
    serde_json::Value::Array(vec![record]).to_string()
}

struct Payload<'a>(&'a UpdateRequest);

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut map = serializer.serialize_map(None)?;
        entry(&mut map, "data", &r.data)?;
        entry(&mut map, "priority", &r.priority)?;
        entry(&mut map, "startAfter", &r.start_after)?;
        entry(&mut map, "retentionSeconds", &r.retention_seconds)?;
        entry(&mut map, "expireInSeconds", &r.expire_in_seconds)?;
        entry(&mut map, "deleteAfterSeconds", &r.delete_after_seconds)?;
        entry(&mut map, "retryLimit", &r.retry_limit)?;
        entry(&mut map, "retryDelay", &r.retry_delay)?;
        entry(&mut map, "retryBackoff", &r.retry_backoff)?;
        entry(&mut map, "retryDelayMax", &r.retry_delay_max)?;
        entry(&mut map, "deadLetter", &r.dead_letter)?;
        entry(&mut map, "heartbeatSeconds", &r.heartbeat_seconds)?;
        entry(&mut map, "groupId", &r.group_id)?;
        entry(&mut map, "groupTier", &r.group_tier)?;
        entry(&mut map, "id", &r.id)?;
        entry(&mut map, "singletonKey", &r.singleton_key)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn the_payload_carries_the_columns_given_and_nulls_that_clear() {
        let request = UpdateRequest::from_json(
            &json!({"name": "q", "data": null, "options": {"singletonKey": "k", "heartbeatSeconds": null, "priority": 2}}),
            false,
        )
        .unwrap();
        let payload: Value = serde_json::from_str(&payload(&request)).unwrap();
        assert_eq!(
            payload,
            json!({"data": null, "priority": 2, "heartbeatSeconds": null, "singletonKey": "k"})
        );
        let records: Value = serde_json::from_str(&insert_record(&request)).unwrap();
        assert_eq!(records, json!([payload]));
    }

    #[test]
    fn only_the_insert_of_an_upsert_stores_the_trace_context() {
        let context = json!({"traceparent": "00-a-b-01"});
        let request = UpdateRequest::from_json(
            &json!({"name": "q", "options": {"singletonKey": "k", "__traceContext": context}}),
            true,
        )
        .unwrap();
        let payload: Value = serde_json::from_str(&payload(&request)).unwrap();
        assert_eq!(payload, json!({"singletonKey": "k"}));
        let records: Value = serde_json::from_str(&insert_record(&request)).unwrap();
        assert_eq!(
            records,
            json!([{"singletonKey": "k", "__traceContext": context}])
        );
    }
}
