//! What job spies (pg-boss's `getSpy()`, a test aid) need from workers. The spies themselves live
//! on the JS side, which sees sends and handler answers; only the engine knows what a settle
//! changed. So, for the queues the JS side says it spies on, workers report each batch's outcome
//! as a `spy` event: per job, the spy state to record (pg-boss's rules, reading the stored rows
//! where pg-boss does) and, where pg-boss records it, the stored output. Unspied queues cost one
//! relaxed load per batch.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::event::{ErrorEvent, Event, EventSink};
use crate::model::fetch::ClaimedJob;
use crate::model::settle::JobResultStatus;
use crate::ops::queues::Queue;
use crate::ops::settle::SettledEach;
use crate::sql::exec::Param;
use crate::sql::job_statements::JobStatement;
use crate::sql::Db;
use crate::worker::PerJobPlan;

/// The queues being spied on.
#[derive(Default)]
pub struct SpyWatch {
    any: AtomicBool,
    queues: Mutex<HashSet<String>>,
}

impl SpyWatch {
    /// Replaces the set of spied queues.
    pub fn set(&self, queues: impl IntoIterator<Item = String>) {
        let mut watched = self.queues.lock().unwrap();
        *watched = queues.into_iter().collect();
        self.any.store(!watched.is_empty(), Ordering::Relaxed);
    }

    pub fn watching(&self, queue: &str) -> bool {
        self.any.load(Ordering::Relaxed) && self.queues.lock().unwrap().contains(queue)
    }
}

/// How a batch was settled.
pub enum Settle<'a> {
    /// Completed as a whole; `affected` is how many jobs the completion changed.
    Completed { affected: i64 },
    /// Failed as a whole (a throw, an overrun, a per-job answer that was no list).
    Failed,
    /// Settled job by job.
    Each {
        plan: &'a PerJobPlan,
        each: &'a SettledEach,
    },
    /// The settle failed: nothing is known, the JS side only forgets the batch.
    Unknown,
}

/// One job's entry: `state` is the spy state to record (null: record nothing). With `output`, that
/// is the output to record (null: none, or for a failure the thrown error's message and stack, as
/// pg-boss falls back to); without it, the output comes from the handler's answer, its item with
/// status `disposition` for a per-job answer.
fn entry(job: &ClaimedJob, state: Option<&str>) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("id".into(), json!(job.id));
    entry.insert("retryCount".into(), json!(job.retry_count));
    entry.insert("state".into(), json!(state));
    entry
}

fn with_output(mut entry: Map<String, Value>, output: Option<&Value>) -> Map<String, Value> {
    entry.insert("output".into(), output.cloned().unwrap_or(Value::Null));
    entry
}

/// The stored state and output of each job still in the queue's table.
async fn stored(
    db: &Db,
    queue: &Queue,
    jobs: &[ClaimedJob],
) -> crate::error::Result<HashMap<Uuid, (String, Value)>> {
    let sql = JobStatement::StoredOutcomes.cached(&queue.statements, &db.sql, queue);
    let params = vec![
        Param::text(queue.name.as_str()),
        Param::Uuids(jobs.iter().map(|j| j.id).collect()),
    ];
    let rows: Vec<(Uuid, String, Option<String>)> = db.exec().fetch_all(&sql, params).await?;
    Ok(rows
        .into_iter()
        .map(|(id, state, output)| {
            (
                id,
                (
                    state,
                    output
                        .and_then(|o| serde_json::from_str(&o).ok())
                        .unwrap_or(Value::Null),
                ),
            )
        })
        .collect())
}

/// The entries for a settle, in batch order.
async fn entries(
    db: &Db,
    queue: &Queue,
    jobs: &[ClaimedJob],
    settle: Settle<'_>,
) -> crate::error::Result<Vec<Value>> {
    let entries: Vec<Map<String, Value>> = match settle {
        Settle::Unknown => jobs.iter().map(|j| entry(j, None)).collect(),
        // Every job completed as answered.
        Settle::Completed { affected } if affected == jobs.len() as i64 => {
            jobs.iter().map(|j| entry(j, Some("completed"))).collect()
        }
        Settle::Completed { .. } => {
            let rows = stored(db, queue, jobs).await?;
            jobs.iter()
                .map(|job| partly_completed(job, &rows))
                .collect()
        }
        // Only a failure for good is one to a spy: a job with retries left may yet complete.
        Settle::Failed => {
            let rows = stored(db, queue, jobs).await?;
            jobs.iter()
                .map(|job| match rows.get(&job.id) {
                    Some((state, output)) if state == "failed" => {
                        with_output(entry(job, Some("failed")), Some(output))
                    }
                    _ => entry(job, None),
                })
                .collect()
        }
        Settle::Each { plan, each } => settled_each(jobs, plan, each),
    };
    Ok(entries.into_iter().map(Value::Object).collect())
}

/// A completion that changed fewer jobs than the batch: the handler settled some itself, and what
/// is stored says what happened to each. A job that is gone counts as completed; one back in
/// retry, or cancelled, has no spy state.
fn partly_completed(job: &ClaimedJob, rows: &HashMap<Uuid, (String, Value)>) -> Map<String, Value> {
    match rows.get(&job.id) {
        None => with_output(entry(job, Some("completed")), None),
        Some((state, output)) => match state.as_str() {
            "completed" | "failed" | "active" | "created" => {
                with_output(entry(job, Some(state)), Some(output))
            }
            _ => entry(job, None),
        },
    }
}

/// As pg-boss: a job failed by its per-job answer is `failed` to a spy even on its way to a
/// retry; jobs the fence left alone are not reported.
fn settled_each(
    jobs: &[ClaimedJob],
    plan: &PerJobPlan,
    each: &SettledEach,
) -> Vec<Map<String, Value>> {
    let landed: HashSet<Uuid> = each
        .completed
        .iter()
        .chain(&each.failed)
        .chain(&each.dead_lettered)
        .copied()
        .collect();
    jobs.iter()
        .zip(plan.settles.iter().zip(&plan.answered))
        .map(|(job, (settle, answered))| {
            if !landed.contains(&job.id) {
                return entry(job, None);
            }
            let state = if settle.status == JobResultStatus::Completed {
                "completed"
            } else {
                "failed"
            };
            let mut e = entry(job, Some(state));
            if *answered {
                e.insert("disposition".into(), json!(settle.status.as_str()));
                e
            } else {
                let output = settle
                    .output
                    .as_deref()
                    .and_then(|o| serde_json::from_str::<Value>(o).ok());
                with_output(e, output.as_ref())
            }
        })
        .collect()
}

/// Reports how a batch was settled as a `spy` event `{ queue, jobs }`. A failed read of the stored
/// rows is an `error` event, and the batch is reported with nothing to record.
pub async fn report(
    db: &Db,
    queue: &Queue,
    events: &dyn EventSink,
    jobs: &[ClaimedJob],
    settle: Settle<'_>,
) {
    let entries = match entries(db, queue, jobs, settle).await {
        Ok(entries) => entries,
        Err(err) => {
            events.emit(Event::Error(
                ErrorEvent::of(&err).in_queue(&queue.name, None),
            ));
            jobs.iter().map(|j| Value::Object(entry(j, None))).collect()
        }
    };
    events.emit(Event::Spy(json!({ "queue": queue.name, "jobs": entries })));
}

/// Reports the fetched jobs that `localGroupConcurrency` sent back before the handler saw them as
/// `spy` event `{ queue, active: [{ id, data }] }`: pg-boss's spies record every fetched job active.
pub fn report_restored(
    events: &dyn EventSink,
    queue: &str,
    fetched: &[ClaimedJob],
    kept: &[ClaimedJob],
) {
    let kept: HashSet<Uuid> = kept.iter().map(|j| j.id).collect();
    let restored: Vec<Value> = fetched
        .iter()
        .filter(|j| !kept.contains(&j.id))
        .map(|j| {
            let data = serde_json::from_str::<Value>(&j.json)
                .ok()
                .and_then(|v| v.get("data").cloned())
                .unwrap_or(Value::Null);
            json!({ "id": j.id, "data": data })
        })
        .collect();
    if !restored.is_empty() {
        events.emit(Event::Spy(json!({ "queue": queue, "active": restored })));
    }
}
