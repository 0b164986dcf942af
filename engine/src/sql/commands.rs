//! Commands on existing jobs — cancel, resume, retry, delete, touch — and the bulk deletes.
//!
//! A command takes `$1` queue name, `$2` ids and, fenced, `$3` `id:retryCount` of each job; it
//! answers how many jobs it touched, which, and how many of them the queue's `retained_count` held.

use super::settle::attempt_fence;
use crate::model::queue::QueueInfo;
use crate::model::targets::{JobCommand, Stored};

// Columns are named: a caller's driver hands rows over as objects, which keep one of each name.
const SETTLED: &str = "SELECT count(*) AS affected, COALESCE(array_agg(id), '{}'::uuid[]) AS settled, 0::int8 AS retained FROM results";

/// The schema's command statements that name no queue table.
#[derive(Debug)]
pub struct CommandSql {
    /// Takes finished jobs a command removed off their queues' cached counts: `$1` names,
    /// `$2` removed off `total_count`, `$3` held off `retained_count`.
    pub reduce_retained: String,
    /// Empties the shared job table.
    pub truncate_all: String,
    /// Zeroes the cached counts of every queue, or of queue `$1`.
    pub reset_counts: String,
}

impl CommandSql {
    pub fn new(schema: &str) -> CommandSql {
        CommandSql {
            reduce_retained: super::counting::reduce_retained_sql(schema),
            truncate_all: truncate(schema, "job"),
            reset_counts: format!(
                "UPDATE {schema}.queue SET deferred_count = 0, blocked_count = 0, queued_count = 0, ready_count = 0,
           active_count = 0, failed_count = 0, total_count = 0, retained_count = 0, singletons_active = NULL,
           monitor_on = {schema}.job_now()
         WHERE $1::text IS NULL OR name = $1"
            ),
        }
    }
}

/// Like SETTLED, for `results` rows carrying `name`, `state` and `completed_on` as they were: also
/// how many of them the queue's `retained_count` held.
fn settled_and_retained(schema: &str) -> String {
    format!(
        "SELECT count(*) AS affected, COALESCE(array_agg(id), '{{}}'::uuid[]) AS settled, count(*) FILTER (WHERE {}) AS retained FROM results r",
        super::counting::held_by_retained_count(schema, "r")
    )
}

/// The statement of `command`, fenced to the attempts when `fenced` (resume and retry never are).
pub fn command(schema: &str, queue: &QueueInfo, command: JobCommand, fenced: bool) -> String {
    let fence = if fenced {
        attempt_fence(3)
    } else {
        String::new()
    };
    match command {
        JobCommand::Cancel => {
            let set = format!("completed_on = {schema}.job_now(), state = 'cancelled'");
            update(schema, queue, &set, "state < 'completed'", &fence)
        }
        JobCommand::Retry => {
            let set = format!(
                "state = 'retry', retry_limit = retry_limit + 1, completed_on = NULL, start_after = GREATEST(start_after, {schema}.job_now())"
            );
            update(schema, queue, &set, "state = 'failed'", "")
        }
        JobCommand::Touch => {
            let set = format!("heartbeat_on = {schema}.job_now()");
            update(schema, queue, &set, "state = 'active'", &fence)
        }
        JobCommand::Resume => resume(schema, queue),
        JobCommand::Delete => delete(schema, queue, &fence),
    }
}

/// An UPDATE of the addressed jobs that are in `state_filter`.
fn update(schema: &str, queue: &QueueInfo, set: &str, state_filter: &str, fence: &str) -> String {
    format!(
        "WITH results AS (
           UPDATE {schema}.{} SET {set}
           WHERE name = $1 AND id = ANY($2::uuid[]) AND {state_filter} {fence}
           RETURNING id)
         {SETTLED}",
        queue.table
    )
}

/// Cancelled jobs go back to `created`, runnable from now at the earliest.
fn resume(schema: &str, queue: &QueueInfo) -> String {
    let table = &queue.table;
    format!(
        "WITH resumable AS (
           SELECT id, name, state, completed_on FROM {schema}.{table}
           WHERE name = $1 AND id = ANY($2::uuid[]) AND state = 'cancelled'
         ), results AS (
           UPDATE {schema}.{table} j SET completed_on = NULL, state = 'created', upsert_by_key = NULL,
             start_after = GREATEST(j.start_after, {schema}.job_now())
           FROM resumable p
           WHERE j.name = $1 AND j.id = p.id AND j.state = 'cancelled'
           RETURNING j.id, p.name, p.state, p.completed_on)
         {}",
        settled_and_retained(schema)
    )
}

fn delete(schema: &str, queue: &QueueInfo, fence: &str) -> String {
    format!(
        "WITH results AS (
           DELETE FROM {schema}.{} WHERE name = $1 AND id = ANY($2::uuid[]) {fence}
           RETURNING id, name, state, completed_on)
         {}",
        queue.table,
        settled_and_retained(schema)
    )
}

/// Deletes up to `$2` of queue `$1`'s jobs that `which` names; answers how many went, and how many
/// of those the queue's `retained_count` held.
pub fn delete_stored(schema: &str, queue: &QueueInfo, which: Stored) -> String {
    let predicate = match which {
        Stored::Queued => "state < 'active'",
        Stored::Finished => "state > 'active'",
        Stored::All => "true",
    };
    let table = &queue.table;
    format!(
        "WITH batch AS (SELECT id FROM {schema}.{table} WHERE name = $1 AND {predicate} LIMIT $2),
              removed AS (DELETE FROM {schema}.{table} j USING batch b WHERE j.name = $1 AND j.id = b.id AND {predicate}
                RETURNING j.name, j.state, j.completed_on)
         SELECT count(*) AS removed, count(*) FILTER (WHERE {}) AS held FROM removed r",
        super::counting::held_by_retained_count(schema, "r")
    )
}

/// Empties a table outright.
pub fn truncate(schema: &str, table: &str) -> String {
    format!("TRUNCATE {schema}.{table}")
}
