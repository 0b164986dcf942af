//! The insert statement every new job goes through (`send()`, `insert()`, `upsert()`, flows and
//! the cron pass), and the recordset it reads: `$1` the jobs as JSON text, `$2` the queue's name.
//! Options a job leaves out come from the queue; start times given as date strings are instants,
//! anything else is seconds from now.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::model::job::{JobId, JobOptions, NewJob};
use crate::model::queue::QueueInfo;

/// Which form of the insert statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InsertShape {
    /// Answers the new ids (else nothing, unless the queue notifies).
    pub returning: bool,
    /// Marks the new jobs as created by an upsert on their singleton key (`upsert_by_key`), which
    /// a unique index keeps to one queued job per key.
    pub by_key: bool,
    /// A record may name its throttle slot outright (`__singletonSlot`, a UTC wall time): the
    /// cron pass files an occurrence in the slot the occurrence falls in, whenever the insert
    /// runs. Only that caller declares the column, so the public `insert()` cannot set it.
    pub slots: bool,
}

/// The insert statement; with `by_key`, see [`InsertShape::by_key`]. The flow columns
/// (`blocked`, `blocking`, `pendingDependencies`) are only ever filled by flows: a caller's job
/// never carries them.
pub fn insert_sql_by_key(schema: &str, queue: &QueueInfo, returning: bool, by_key: bool) -> String {
    insert(
        schema,
        queue,
        InsertShape {
            returning,
            by_key,
            slots: false,
        },
    )
}

/// The end of a statement whose CTE `written` returns `id, start_after` of the jobs it wrote: their
/// ids, and on a queue with `notify` one pg_notify on the schema's channel when any of them can run
/// now. It is part of the statement, so it is only delivered if the write commits.
pub fn written_ids(schema: &str, queue: &QueueInfo) -> String {
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

/// The insert statement in the form `shape` says.
pub fn insert(schema: &str, queue: &QueueInfo, shape: InsertShape) -> String {
    let table = &queue.table;
    let (slot_column, slot_case) = if shape.slots {
        (", \"__singletonSlot\" text", "WHEN i.\"__singletonSlot\" IS NOT NULL THEN i.\"__singletonSlot\"::timestamp\n             ")
    } else {
        ("", "")
    };
    // A notify queue's statement always reads the written rows back, to know whether to notify.
    // Reading the written rows back costs a tuplestore of them: only when they are wanted.
    let (open, close) = if shape.returning || queue.notify {
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
        "{}
         {open}
         INSERT INTO {schema}.{table} (id, name, data, priority, start_after, created_on, singleton_key, singleton_on,
           group_id, group_tier, expire_seconds, deletion_seconds, keep_until, retry_limit, retry_delay,
           retry_backoff, retry_delay_max, policy, dead_letter, heartbeat_seconds, blocked, blocking,
           pending_dependencies, trace_context, upsert_by_key)
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
           i.\"__traceContext\", {}
         FROM input i LEFT JOIN {schema}.queue q ON q.name = $2
         ON CONFLICT DO NOTHING
         {close}",
        input(schema, slot_column),
        if shape.by_key { "true" } else { "NULL::bool" },
    )
}

/// The recordset `$1` as the CTE `input`, with each job's start as an instant (`start_at`).
fn input(schema: &str, slot_column: &str) -> String {
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
             blocked bool, blocking bool, \"pendingDependencies\" int, \"__traceContext\" jsonb{slot_column})"
    )
}

/// The recordset of jobs, as the insert's `$1` reads it: each job's `data` as the JSON text it
/// came in, then its options, written straight from the typed jobs with the keys a job leaves out
/// left out.
pub fn records_json<'a>(jobs: impl IntoIterator<Item = &'a NewJob>) -> String {
    let jobs: Vec<&NewJob> = jobs.into_iter().collect();
    // Room for the payloads and a few options each, so a large payload is copied once.
    let room: usize = jobs.iter().map(|job| job.data.as_json().len() + 64).sum();
    let mut out = String::with_capacity(room + 2);
    out.push('[');
    for (index, job) in jobs.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str("{\"data\":");
        out.push_str(job.data.as_json());
        let options =
            serde_json::to_string(&OptionsRecord(&job.options)).expect("options are always JSON");
        // `{...}` without its opening brace, after the data's comma; `{}` closes the record alone.
        if options.len() > 2 {
            out.push(',');
            out.push_str(&options[1..]);
        } else {
            out.push('}');
        }
    }
    out.push(']');
    out
}

/// A job's options as the keys of its record.
struct OptionsRecord<'a>(&'a JobOptions);

impl Serialize for OptionsRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let o = self.0;
        let mut map = serializer.serialize_map(None)?;
        match &o.id {
            Some(JobId::Uuid(id)) => map.serialize_entry("id", id)?,
            Some(JobId::Text(id)) => map.serialize_entry("id", id)?,
            None => {}
        }
        entry(&mut map, "priority", &o.priority)?;
        entry(&mut map, "startAfter", &o.start_after)?;
        entry(&mut map, "singletonKey", &o.singleton_key)?;
        entry(&mut map, "singletonSeconds", &o.singleton_seconds)?;
        entry(&mut map, "singletonOffset", &o.singleton_offset)?;
        entry(&mut map, "groupId", &o.group_id)?;
        entry(&mut map, "groupTier", &o.group_tier)?;
        entry(&mut map, "expireInSeconds", &o.expire_in_seconds)?;
        entry(&mut map, "deleteAfterSeconds", &o.delete_after_seconds)?;
        entry(&mut map, "retentionSeconds", &o.retention_seconds)?;
        entry(&mut map, "retryLimit", &o.retry_limit)?;
        entry(&mut map, "retryDelay", &o.retry_delay)?;
        entry(&mut map, "retryBackoff", &o.retry_backoff)?;
        entry(&mut map, "retryDelayMax", &o.retry_delay_max)?;
        entry(&mut map, "deadLetter", &o.dead_letter)?;
        entry(&mut map, "heartbeatSeconds", &o.heartbeat_seconds)?;
        entry(&mut map, "__traceContext", &o.trace_context)?;
        map.end()
    }
}

/// Writes `key` when the option is given: a key left out is a column the queue fills.
pub(crate) fn entry<M: SerializeMap, T: Serialize>(
    map: &mut M,
    key: &str,
    value: &Option<T>,
) -> Result<(), M::Error> {
    match value {
        Some(value) => map.serialize_entry(key, value),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::job::JobData;
    use serde_json::{json, Value};
    use uuid::Uuid;

    #[test]
    fn records_carry_only_the_options_given() {
        let id = Uuid::new_v4();
        let jobs = [
            NewJob {
                data: json!({"n": 1}).into(),
                options: JobOptions {
                    id: Some(JobId::Uuid(id)),
                    priority: Some(3),
                    start_after: Some("30".into()),
                    group_id: Some("g".into()),
                    retry_backoff: Some(true),
                    ..JobOptions::default()
                },
            },
            NewJob {
                data: JobData::null(),
                options: JobOptions::default(),
            },
            NewJob {
                data: JobData::null(),
                options: JobOptions {
                    trace_context: Some(json!({"traceparent": "00-a-b-01"})),
                    ..JobOptions::default()
                },
            },
        ];
        let records: Value = serde_json::from_str(&records_json(&jobs)).unwrap();
        assert_eq!(
            records,
            json!([
                {"data": {"n": 1}, "id": id, "priority": 3, "startAfter": "30", "groupId": "g", "retryBackoff": true},
                {"data": null},
                {"data": null, "__traceContext": {"traceparent": "00-a-b-01"}}
            ])
        );
    }

    #[test]
    fn a_payload_is_written_as_the_text_it_came_in() {
        let jobs = [
            NewJob {
                data: JobData::from_json_text(r#"{"b": [1.50, "\u00e9"], "a": null}"#.into()),
                options: JobOptions::default(),
            },
            NewJob {
                data: JobData::from_json_text("7".into()),
                options: JobOptions {
                    priority: Some(1),
                    ..JobOptions::default()
                },
            },
        ];
        assert_eq!(
            records_json(&jobs),
            r#"[{"data":{"b": [1.50, "\u00e9"], "a": null}},{"data":7,"priority":1}]"#
        );
        assert_eq!(records_json(&[] as &[NewJob]), "[]");
    }
}
