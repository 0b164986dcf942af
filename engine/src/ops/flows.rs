//! Flows: a graph of jobs inserted at once, in which a job waits for the jobs it depends on.
//!
//! The bookkeeping is pg-boss 12.38's, column for column, so that either kind of instance runs and
//! resolves a flow the other one inserted:
//! - a job with parents is written `blocked`, its `pending_dependencies` the number of its distinct
//!   parents; a job with children is written `blocking`; every edge is a `job_dependency` row;
//! - completing a job does no dependency work (completion stays a one-table statement). A
//!   resolution pass later finds the completed `blocking` jobs, takes each one off its children's
//!   counts, releases the children that reach zero and clears `blocking`, so a parent is resolved
//!   exactly once;
//! - only completion releases children. A parent that fails for good, is cancelled or is deleted
//!   leaves them blocked; one that is retried or resumed releases them once it does complete.
//!
//! Background passes run every `flowIntervalSeconds` on whichever instance wins the `flow_on` stamp
//! of the version row, as pg-boss's do; `resolveFlow()` runs one now, whatever the stamp says.
//! Passes that overlap anyway (an on-demand one, or another instance's) cannot resolve a parent
//! twice: each batch locks its parents with SKIP LOCKED and clears their `blocking` in the same
//! statement.

use crate::config::FlowSettings;
use crate::model::names::is_uuid_input;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};
use sqlx::{Executor, PgPool};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::js::Options;
use crate::ensure;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventSink};
use crate::model::names::{assert_object_name, assert_queue_name};
use crate::model::send::normalize_send_options;
use crate::ops::queues::{self, Queue, QueueCache};
use crate::schema::install::advisory_lock_key;

/// Parents resolved per statement: bounds the row locks one batch holds.
pub const BATCH: i64 = 1000;
/// Batches per queue chunk in one pass, so a large backlog cannot hold a pass forever; what is
/// left is picked up by the next pass.
const MAX_BATCHES_PER_PASS: usize = 100;
/// Queues per resolution statement.
const CHUNK: usize = 100;
/// Dependency rows looked at per cleanup statement.
const CLEANUP_BATCH: i64 = 10_000;

const LIST_LIMIT_DEFAULT: i64 = 1000;
const LIST_LIMIT_MAX: i64 = 100_000;

const NOT_CREATED: &str =
    "one or more jobs could not be created. This usually means a job id was duplicated, collided \
with an existing job, or was rejected by a queue policy (short, singleton, stately, or exclusive).";

// ---------------------------------------------------------------------------------------------
// The graph

/// One job of a checked flow: its send options validated and normalised as `send()`'s are, and
/// its parents' refs without repeats.
#[derive(Debug, Clone)]
pub struct FlowJob {
    pub reference: String,
    pub name: String,
    pub data: Value,
    pub options: Options,
    pub depends_on: Vec<String>,
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// What JavaScript's `x && x.length > 0` says of a `dependsOn` value.
fn lists_something(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    }
}

/// Checks a flow the way pg-boss does, in pg-boss's order (so the first problem reported is the
/// same): the list, each job's ref and name, at least one dependency, each `dependsOn`, cycles,
/// and then each job's send options.
pub fn check_flow(jobs: &Value) -> Result<Vec<FlowJob>> {
    let list = jobs
        .as_array()
        .ok_or_else(|| Error::invalid("flow requires an array of jobs"))?;
    ensure!(list.len() >= 2, "flow requires at least 2 jobs");
    let mut position: HashMap<&str, usize> = HashMap::new();
    for (index, job) in list.iter().enumerate() {
        let reference = non_empty_str(job.get("ref"))
            .ok_or_else(|| Error::invalid("each flow job must have a non-empty ref"))?;
        ensure!(
            !position.contains_key(reference),
            "duplicate ref: \"{reference}\""
        );
        position.insert(reference, index);
        let name = non_empty_str(job.get("name"))
            .ok_or_else(|| Error::invalid("each flow job must have a non-empty name"))?;
        assert_object_name(name, "Name")?;
    }
    ensure!(
        list.iter().any(|j| lists_something(j.get("dependsOn"))),
        "flow requires at least one job with dependsOn"
    );

    // children[p]: the jobs that name job p in their dependsOn, repeats kept, in input order.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); list.len()];
    let mut parents: Vec<Vec<String>> = vec![Vec::new(); list.len()];
    for (index, job) in list.iter().enumerate() {
        let reference = job["ref"].as_str().unwrap_or_default();
        let depends_on = job.get("dependsOn");
        if !crate::config::js::truthy(depends_on) {
            continue;
        }
        let entries = depends_on.and_then(Value::as_array).ok_or_else(|| {
            Error::invalid(format!(
                "dependsOn for ref \"{reference}\" must be an array"
            ))
        })?;
        for entry in entries {
            let parent = non_empty_str(Some(entry))
                .ok_or_else(|| Error::invalid("dependsOn entries must be non-empty strings"))?;
            ensure!(
                parent != reference,
                "job \"{reference}\" cannot depend on itself"
            );
            let parent_index = *position.get(parent).ok_or_else(|| {
                Error::invalid(format!("dependsOn ref \"{parent}\" not found in flow"))
            })?;
            children[parent_index].push(index);
            if !parents[index].iter().any(|p| p == parent) {
                parents[index].push(parent.to_string());
            }
        }
    }
    if let Some(cycle) = find_cycle(&children) {
        let refs: Vec<&str> = cycle
            .iter()
            .map(|&i| list[i]["ref"].as_str().unwrap_or_default())
            .collect();
        return Err(Error::invalid(format!(
            "flow contains a dependency cycle: {}",
            refs.join(" -> ")
        )));
    }

    let mut checked = Vec::with_capacity(list.len());
    for (job, depends_on) in list.iter().zip(parents) {
        let mut options = match job.get("options") {
            Some(Value::Object(o)) => o.clone(),
            // JavaScript's `options || {}`, and an array spreads to no send option at all.
            None | Some(Value::Null | Value::Array(_)) => Options::new(),
            Some(v) if !crate::config::js::truthy(Some(v)) => Options::new(),
            Some(_) => return Err(Error::invalid("options should be an object")),
        };
        normalize_send_options(&mut options)?;
        checked.push(FlowJob {
            reference: job["ref"].as_str().unwrap_or_default().to_string(),
            name: job["name"].as_str().unwrap_or_default().to_string(),
            data: job.get("data").cloned().unwrap_or(Value::Null),
            options,
            depends_on,
        });
    }
    Ok(checked)
}

/// The first cycle a depth-first walk meets, visiting the jobs and their children in input order
/// (so the cycle named is the one pg-boss names), closed by its first job again.
fn find_cycle(children: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; children.len()];
    for start in 0..children.len() {
        if mark[start] != Mark::New {
            continue;
        }
        let mut path = vec![start];
        let mut next_child = vec![0usize];
        mark[start] = Mark::OnPath;
        while let Some(&node) = path.last() {
            let cursor = next_child
                .last_mut()
                .expect("one cursor per node on the path");
            match children[node].get(*cursor) {
                Some(&child) => {
                    *cursor += 1;
                    match mark[child] {
                        Mark::OnPath => {
                            let from = path.iter().position(|&n| n == child).expect("on the path");
                            let mut cycle = path[from..].to_vec();
                            cycle.push(child);
                            return Some(cycle);
                        }
                        Mark::Done => {}
                        Mark::New => {
                            mark[child] = Mark::OnPath;
                            path.push(child);
                            next_child.push(0);
                        }
                    }
                }
                None => {
                    mark[node] = Mark::Done;
                    path.pop();
                    next_child.pop();
                }
            }
        }
    }
    None
}

/// The send options a flow job's row takes, as pg-boss's flow insert reads them (no throttle
/// offset or next-slot retry: a flow is inserted once, as written).
const RECORD_OPTIONS: [&str; 13] = [
    "priority",
    "startAfter",
    "singletonKey",
    "singletonSeconds",
    "expireInSeconds",
    "deleteAfterSeconds",
    "retentionSeconds",
    "retryLimit",
    "retryDelay",
    "retryBackoff",
    "retryDelayMax",
    "heartbeatSeconds",
    "deadLetter",
];

fn flow_record(job: &FlowJob, id: &Value, is_parent: bool) -> Value {
    let mut record = Map::new();
    record.insert("id".into(), id.clone());
    record.insert("data".into(), job.data.clone());
    for key in RECORD_OPTIONS {
        if let Some(v) = job.options.get(key).filter(|v| !v.is_null()) {
            record.insert(key.into(), v.clone());
        }
    }
    if let Some(group) = job.options.get("group").and_then(Value::as_object) {
        record.insert(
            "groupId".into(),
            group.get("id").cloned().unwrap_or(Value::Null),
        );
        record.insert(
            "groupTier".into(),
            group.get("tier").cloned().unwrap_or(Value::Null),
        );
    }
    if !job.depends_on.is_empty() {
        record.insert("blocked".into(), Value::Bool(true));
        record.insert("pendingDependencies".into(), json!(job.depends_on.len()));
    }
    if is_parent {
        record.insert("blocking".into(), Value::Bool(true));
    }
    Value::Object(record)
}

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Inserts a checked flow in one transaction: every queue's jobs (queues in the order they first
/// appear), then the edges. Any job the insert skips (an id taken, a policy's unique index) undoes
/// the whole flow. Answers each ref's id, in input order; ids are as the caller gave them (or new).
pub async fn insert_flow(
    pool: &PgPool,
    schema: &str,
    cache: &QueueCache,
    jobs: &[FlowJob],
) -> Result<Vec<(String, String)>> {
    let ids: Vec<Value> = jobs
        .iter()
        .map(|job| {
            job.options
                .get("id")
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or_else(|| json!(Uuid::new_v4()))
        })
        .collect();
    let by_ref: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.reference.as_str(), i))
        .collect();
    let mut is_parent = vec![false; jobs.len()];
    let mut edges = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        for parent in &job.depends_on {
            let parent_index = by_ref[parent.as_str()];
            is_parent[parent_index] = true;
            edges.push(json!({
                "child_name": job.name,
                "child_id": ids[index],
                "parent_name": jobs[parent_index].name,
                "parent_id": ids[parent_index],
            }));
        }
    }
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        let record = flow_record(job, &ids[index], is_parent[index]);
        match groups.iter_mut().find(|(name, _)| *name == job.name) {
            Some((_, records)) => records.push(record),
            None => groups.push((job.name.clone(), vec![record])),
        }
    }
    // Every queue is looked up before anything is written, so a missing one writes nothing.
    let mut targets: Vec<(Arc<Queue>, Vec<Value>)> = Vec::with_capacity(groups.len());
    for (name, records) in groups {
        targets.push((queues::cached(pool, schema, cache, &name).await?, records));
    }

    let mut tx = pool.begin().await?;
    tx.execute(
        "SET LOCAL lock_timeout = 30000; SET LOCAL idle_in_transaction_session_timeout = 30000",
    )
    .await?;
    for (queue, records) in &targets {
        let sql = crate::ops::jobs::insert_sql_by_key(schema, queue, true, false);
        let written: Vec<Uuid> = sqlx::query_scalar(&sql)
            .bind(Value::Array(records.clone()).to_string())
            .bind(&queue.name)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| crate::ops::jobs::insert_error(e, &queue.name))?;
        if written.len() != records.len() {
            return Err(Error::new(ErrorCode::Conflict, NOT_CREATED));
        }
    }
    if !edges.is_empty() {
        let sql = format!(
            "INSERT INTO {schema}.job_dependency (child_name, child_id, parent_name, parent_id)
             SELECT child_name, child_id, parent_name, parent_id
             FROM json_to_recordset($1::text::json) AS x (child_name text, child_id uuid, parent_name text, parent_id uuid)
             ON CONFLICT DO NOTHING"
        );
        sqlx::query(&sql)
            .bind(Value::Array(edges).to_string())
            .execute(&mut *tx)
            .await?;
    }
    let names: Vec<&str> = targets.iter().map(|(q, _)| q.name.as_str()).collect();
    // The queue foreign keys are deferred: a queue deleted since it was looked up fails here.
    tx.commit().await.map_err(|e| commit_error(e, &names))?;
    Ok(jobs
        .iter()
        .zip(&ids)
        .map(|(job, id)| (job.reference.clone(), id_text(id)))
        .collect())
}

/// A failed commit said as an insert's failure is: the missing queue named when the foreign key's
/// detail names one of the flow's queues, else all of them.
fn commit_error(err: sqlx::Error, names: &[&str]) -> Error {
    let detail_value = err
        .as_database_error()
        .and_then(|db| db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
        .and_then(|pg| pg.detail())
        .and_then(|detail| {
            detail
                .split_once(")=(")?
                .1
                .split_once(") is not present")
                .map(|(v, _)| v.to_string())
        });
    let queue = match detail_value {
        Some(value) if names.contains(&value.as_str()) => value,
        _ => names.join(", "),
    };
    crate::ops::jobs::insert_error(err, &queue)
}

// ---------------------------------------------------------------------------------------------
// Reading the edges

/// One end of an edge, as `getDependencies()` and `getDependents()` answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyRef {
    pub name: String,
    pub id: Uuid,
}

/// Which end of the edges a read starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The parents of a job (`getDependencies`).
    Parents,
    /// The children of a job (`getDependents`).
    Children,
}

impl Direction {
    fn method(self) -> &'static str {
        match self {
            Direction::Parents => "getDependencies",
            Direction::Children => "getDependents",
        }
    }
}

/// Where a page of edges starts: after `{ name, id }`, the previous page's last row.
fn page_after(options: &Options, method: &str) -> Result<Option<(String, String)>> {
    let Some(after) = options.get("after") else {
        return Ok(None);
    };
    let name = after.get("name").and_then(Value::as_str);
    let id = after.get("id").and_then(Value::as_str);
    let (Some(name), Some(id)) = (name, id) else {
        return Err(Error::invalid(format!(
            "{method}: after must be an object with string name and id"
        )));
    };
    ensure!(is_uuid_input(id), "{method}: after.id must be a uuid");
    Ok(Some((name.to_string(), id.to_string())))
}

fn page_limit(options: &Options, method: &str) -> Result<i64> {
    match options.get("limit") {
        None => Ok(LIST_LIMIT_DEFAULT),
        Some(v) => v
            .as_i64()
            .filter(|l| crate::config::js::is_integer(v) && (1..=LIST_LIMIT_MAX).contains(l))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{method}: limit must be an integer between 1 and {LIST_LIMIT_MAX}"
                ))
            }),
    }
}

/// `getDependencies()` / `getDependents()`: one page of a job's parents or children, ordered by
/// queue and id. The job's id is not checked beforehand: a malformed one fails as the uuid cast
/// fails, as in pg-boss.
pub async fn edges(
    pool: &PgPool,
    schema: &str,
    direction: Direction,
    name: &Value,
    id: &Value,
    options: &Options,
) -> Result<Vec<DependencyRef>> {
    let method = direction.method();
    let name = assert_queue_name(name)?;
    let limit = page_limit(options, method)?;
    let after = page_after(options, method)?;
    let (from, to) = match direction {
        Direction::Parents => ("child", "parent"),
        Direction::Children => ("parent", "child"),
    };
    let id = match id {
        Value::Null => None,
        other => Some(id_text(other)),
    };
    let page = if after.is_some() {
        format!("AND ({to}_name, {to}_id) > ($3, $4::uuid)")
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {to}_name, {to}_id FROM {schema}.job_dependency
         WHERE {from}_name = $1 AND {from}_id = $2::uuid {page}
         ORDER BY {to}_name, {to}_id
         LIMIT $5"
    );
    let (after_name, after_id) = after.unzip();
    let rows: Vec<(String, Uuid)> = sqlx::query_as(&sql)
        .bind(name)
        .bind(id)
        .bind(after_name)
        .bind(after_id)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(name, id)| DependencyRef { name, id })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Resolution

/// What one resolution statement did: parents resolved in one job table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub table: String,
    pub resolved: i64,
}

/// Stamps `flow_on` when the last stamp is at least `interval` old, by the database's clock; answers
/// whether this caller won the interval's pass.
pub async fn try_stamp(pool: &PgPool, schema: &str, interval: Duration) -> Result<bool> {
    let sql = format!(
        "UPDATE {schema}.version SET flow_on = {schema}.job_now()
         WHERE EXTRACT(EPOCH FROM ({schema}.job_now() - COALESCE(flow_on, {schema}.job_now() - interval '1 week'))) >= $1::float8
         RETURNING true"
    );
    let won: Option<bool> = sqlx::query_scalar(&sql)
        .bind(interval.as_secs_f64())
        .fetch_optional(pool)
        .await?;
    Ok(won.is_some())
}

/// One batch of one job table: up to [`BATCH`] completed parents of the named queues, locked
/// (skipping those another pass holds), are taken off their blocked children's counts; children
/// reaching zero are released, runnable from now at the earliest (so their wait counts from the
/// release); the parents lose `blocking`. Children are locked in key order, so passes that share
/// children wait for each other rather than deadlock. Answers how many parents it resolved.
pub async fn resolve_batch(
    pool: &PgPool,
    schema: &str,
    table: &str,
    names: &[String],
) -> Result<i64> {
    let sql = format!(
        "WITH parents AS (
           SELECT p.name, p.id FROM {schema}.{table} p
           WHERE p.blocking AND p.state = 'completed' AND p.name = ANY($1::text[])
           ORDER BY p.name, p.id
           LIMIT {BATCH}
           FOR UPDATE OF p SKIP LOCKED
         ), owed AS (
           SELECT d.child_name, d.child_id, count(*)::int AS n
           FROM {schema}.job_dependency d JOIN parents p ON d.parent_name = p.name AND d.parent_id = p.id
           GROUP BY d.child_name, d.child_id
         ), children AS (
           SELECT c.name, c.id, o.n
           FROM {schema}.job c JOIN owed o ON o.child_name = c.name AND o.child_id = c.id
           WHERE c.blocked
           ORDER BY c.name, c.id
           FOR UPDATE OF c
         ), released AS (
           UPDATE {schema}.job c
           SET pending_dependencies = GREATEST(c.pending_dependencies - k.n, 0),
               blocked = c.pending_dependencies - k.n > 0,
               start_after = CASE WHEN c.pending_dependencies - k.n > 0 THEN c.start_after
                                  ELSE GREATEST(c.start_after, {schema}.job_now()) END
           FROM children k
           WHERE c.name = k.name AND c.id = k.id
           RETURNING 1
         ), cleared AS (
           UPDATE {schema}.{table} p SET blocking = false
           FROM parents q
           WHERE p.name = q.name AND p.id = q.id
           RETURNING 1
         )
         SELECT count(*)::int8 FROM cleared"
    );
    Ok(sqlx::query_scalar(&sql).bind(names).fetch_one(pool).await?)
}

/// Deletes the edges of the named queues whose job on one side no longer exists (a parent or child
/// deleted, or removed by retention), walking each queue's edges a batch at a time under pg-boss's
/// `cleanupDependencies` lock for the table. A child whose parent went this way stays blocked:
/// only a completed parent releases it.
pub async fn cleanup_dependencies(
    pool: &PgPool,
    schema: &str,
    table: &str,
    names: &[String],
) -> Result<i64> {
    let lock = format!(
        "SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(schema, &format!("{table}cleanupDependencies"))
    );
    let mut removed = 0;
    for name in names {
        for side in ["child", "parent"] {
            let sql = format!(
                "WITH batch AS (
                   SELECT {side}_id AS id FROM {schema}.job_dependency
                   WHERE {side}_name = $1 AND ($2::uuid IS NULL OR {side}_id > $2)
                   ORDER BY {side}_id
                   LIMIT {CLEANUP_BATCH}
                 ), removed AS (
                   DELETE FROM {schema}.job_dependency d
                   WHERE d.{side}_name = $1 AND d.{side}_id IN (SELECT id FROM batch)
                     AND NOT EXISTS (SELECT 1 FROM {schema}.{table} j WHERE j.name = $1 AND j.id = d.{side}_id)
                   RETURNING 1
                 )
                 SELECT (SELECT id FROM batch ORDER BY id DESC LIMIT 1), (SELECT count(*) FROM batch), (SELECT count(*) FROM removed)"
            );
            let mut cursor: Option<Uuid> = None;
            loop {
                let mut tx = pool.begin().await?;
                tx.execute(lock.as_str()).await?;
                let (last, seen, deleted): (Option<Uuid>, i64, i64) = sqlx::query_as(&sql)
                    .bind(name)
                    .bind(cursor)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                removed += deleted;
                if seen < CLEANUP_BATCH {
                    break;
                }
                cursor = last;
            }
        }
    }
    Ok(removed)
}

/// Sets a flag for as long as it lives, so an early return or an error cannot leave it set.
struct Raised<'a>(&'a AtomicBool);

impl<'a> Raised<'a> {
    fn new(flag: &'a AtomicBool) -> Raised<'a> {
        flag.store(true, Ordering::SeqCst);
        Raised(flag)
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

struct Poller {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

/// An instance's flow resolver: the background passes (with `supervise` on) and `resolveFlow()`.
/// One pass at a time per instance: an on-demand pass waits for a background one in flight, and a
/// background pass due while another runs is skipped.
pub struct Navigator {
    schema: String,
    settings: FlowSettings,
    events: Arc<dyn EventSink>,
    pass: tokio::sync::Mutex<()>,
    working: AtomicBool,
    stopping: AtomicBool,
    poller: Mutex<Option<Poller>>,
}

impl Navigator {
    pub fn new(
        schema: impl Into<String>,
        settings: FlowSettings,
        events: Arc<dyn EventSink>,
    ) -> Navigator {
        Navigator {
            schema: schema.into(),
            settings,
            events,
            pass: tokio::sync::Mutex::new(()),
            working: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            poller: Mutex::new(None),
        }
    }

    /// `isResolvingFlow()`: whether a pass (its stamp included) is under way.
    pub fn is_working(&self) -> bool {
        self.working.load(Ordering::SeqCst)
    }

    /// Arms the resolver; with `poll`, the first background pass runs at once and the next ones
    /// every interval. Without it only on-demand passes run.
    pub fn start(self: &Arc<Self>, pool: PgPool, poll: bool) {
        self.stopping.store(false, Ordering::SeqCst);
        if !poll {
            return;
        }
        let stop = Arc::new(Notify::new());
        let navigator = self.clone();
        let signal = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                let anchor = navigator.poll(&pool).await;
                // Measured from the stamp when the pass got that far: the next stamp then lands an
                // interval after this one plus a round trip, never before the interval is up.
                let next = anchor.unwrap_or_else(Instant::now) + navigator.settings.interval;
                tokio::select! {
                    _ = signal.notified() => return,
                    _ = tokio::time::sleep_until(next) => {}
                }
            }
        });
        if let Some(previous) = self.poller.lock().unwrap().replace(Poller { stop, task }) {
            previous.task.abort();
        }
    }

    /// Stops the background passes and waits for a pass in flight, which ends at its next batch.
    /// On-demand passes asked for from here on do nothing.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let poller = self.poller.lock().unwrap().take();
        if let Some(poller) = poller {
            poller.stop.notify_one();
            let _ = poller.task.await;
        }
        let _idle = self.pass.lock().await;
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn report(&self, err: &Error) {
        self.events.error(err);
    }

    /// One background pass, when none is running: the stamp, and a resolution when it is won.
    /// Failures become `error` events. Answers when the stamp was taken.
    async fn poll(&self, pool: &PgPool) -> Option<Instant> {
        if self.stopping() {
            return None;
        }
        let Ok(_pass) = self.pass.try_lock() else {
            return None;
        };
        let _working = Raised::new(&self.working);
        let mut anchor = None;
        let result = async {
            if let Some(message) = &self.settings.fail_with {
                return Err(Error::internal(message.clone()));
            }
            if let Some(delay) = self.settings.delay {
                tokio::time::sleep(delay).await;
            }
            let won = try_stamp(pool, &self.schema, self.settings.interval).await?;
            anchor = Some(Instant::now());
            if won {
                self.resolve(pool).await?;
            }
            Ok(())
        }
        .await;
        if let Err(err) = result {
            self.report(&err);
        }
        anchor
    }

    /// `resolveFlow()`: one pass now, without the stamp, after any pass in flight.
    pub async fn resolve_now(&self, pool: &PgPool) -> Result<Vec<Resolved>> {
        let _pass = self.pass.lock().await;
        if self.stopping() {
            return Ok(Vec::new());
        }
        let _working = Raised::new(&self.working);
        self.resolve(pool).await
    }

    /// Every queue's completed parents, a job table and a hundred queues per statement, until a
    /// batch comes back short (or the pass's batch budget is spent). Each batch that resolved
    /// something is a `flow` event.
    async fn resolve(&self, pool: &PgPool) -> Result<Vec<Resolved>> {
        let sql = format!(
            "SELECT name, table_name FROM {}.queue ORDER BY name",
            self.schema
        );
        let rows: Vec<(String, String)> = sqlx::query_as(&sql).fetch_all(pool).await?;
        let mut tables: Vec<(String, Vec<String>)> = Vec::new();
        for (name, table) in rows {
            match tables.iter_mut().find(|(t, _)| *t == table) {
                Some((_, names)) => names.push(name),
                None => tables.push((table, vec![name])),
            }
        }
        let mut done = Vec::new();
        for (table, names) in &tables {
            for chunk in names.chunks(CHUNK) {
                for _ in 0..MAX_BATCHES_PER_PASS {
                    if self.stopping() {
                        return Ok(done);
                    }
                    let resolved = resolve_batch(pool, &self.schema, table, chunk).await?;
                    if resolved > 0 {
                        self.events
                            .emit(Event::Flow(json!({ "table": table, "resolved": resolved })));
                        done.push(Resolved {
                            table: table.clone(),
                            resolved,
                        });
                    }
                    if resolved < BATCH {
                        break;
                    }
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(jobs: Value) -> String {
        check_flow(&jobs).unwrap_err().message
    }

    #[test]
    fn the_graph_is_refused_with_pg_boss_messages_in_pg_boss_order() {
        assert_eq!(message(json!({})), "flow requires an array of jobs");
        assert_eq!(
            message(json!([{ "ref": "a", "name": "q" }])),
            "flow requires at least 2 jobs"
        );
        assert_eq!(
            message(json!([{ "ref": "", "name": "q" }, { "ref": "b", "name": "q" }])),
            "each flow job must have a non-empty ref"
        );
        assert_eq!(
            message(json!([null, { "ref": "b", "name": "q" }])),
            "each flow job must have a non-empty ref"
        );
        assert_eq!(
            message(json!([{ "ref": "a", "name": "q" }, { "ref": "a", "name": "q" }])),
            "duplicate ref: \"a\""
        );
        assert_eq!(
            message(json!([{ "ref": "a" }, { "ref": "b", "name": "q" }])),
            "each flow job must have a non-empty name"
        );
        assert_eq!(
            message(json!([{ "ref": "a", "name": "q q" }, { "ref": "b", "name": "q" }])),
            "Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": [] }])
            ),
            "flow requires at least one job with dependsOn"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": "a" }])
            ),
            "dependsOn for ref \"b\" must be an array"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": ["a", 1] }])
            ),
            "dependsOn entries must be non-empty strings"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": ["b"] }])
            ),
            "job \"b\" cannot depend on itself"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": ["c"] }])
            ),
            "dependsOn ref \"c\" not found in flow"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q", "options": "x" }, { "ref": "b", "name": "q", "dependsOn": ["a"] }])
            ),
            "options should be an object"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q", "options": { "priority": 1.5 } }, { "ref": "b", "name": "q", "dependsOn": ["a"] }])
            ),
            "priority must be an integer"
        );
    }

    #[test]
    fn a_cycle_is_named_as_a_depth_first_walk_in_input_order_meets_it() {
        let three = json!([
            { "ref": "x", "name": "q", "dependsOn": ["y"] },
            { "ref": "y", "name": "q", "dependsOn": ["w"] },
            { "ref": "w", "name": "q", "dependsOn": ["x"] },
        ]);
        assert_eq!(
            message(three),
            "flow contains a dependency cycle: x -> w -> y -> x"
        );
        let behind_a_root = json!([
            { "ref": "q", "name": "q" },
            { "ref": "x", "name": "q", "dependsOn": ["q", "y"] },
            { "ref": "y", "name": "q", "dependsOn": ["x"] },
        ]);
        assert_eq!(
            message(behind_a_root),
            "flow contains a dependency cycle: x -> y -> x"
        );
    }

    #[test]
    fn repeated_parents_count_once_and_options_are_normalised() {
        let jobs = check_flow(&json!([
            { "ref": "a", "name": "q", "options": { "startAfter": 30 } },
            { "ref": "b", "name": "q", "dependsOn": ["a", "a"] },
            { "ref": "c", "name": "r", "dependsOn": ["b", "a"], "data": { "n": 1 }, "options": null },
        ]))
        .unwrap();
        assert_eq!(jobs[1].depends_on, vec!["a"]);
        assert_eq!(jobs[2].depends_on, vec!["b", "a"]);
        assert_eq!(jobs[0].options.get("startAfter"), Some(&json!("30")));
        assert_eq!(jobs[2].data, json!({ "n": 1 }));
        let record = flow_record(&jobs[1], &json!("id"), true);
        assert_eq!(record["blocked"], json!(true));
        assert_eq!(record["blocking"], json!(true));
        assert_eq!(record["pendingDependencies"], json!(1));
        assert!(flow_record(&jobs[0], &json!("id"), false)
            .get("blocked")
            .is_none());
    }

    #[test]
    fn the_interval_has_pg_boss_floor_and_default() {
        let read = |v: Value| FlowSettings::from_options(v.as_object().unwrap());
        assert_eq!(read(json!({})).unwrap().interval, Duration::from_secs(5));
        assert_eq!(
            read(json!({ "flowIntervalSeconds": 2 })).unwrap().interval,
            Duration::from_secs(2)
        );
        let refused = read(json!({ "flowIntervalSeconds": 0.5 })).unwrap_err();
        assert_eq!(
            refused.message,
            "configuration assert: flowIntervalSeconds must be at least 1 seconds"
        );
        assert!(read(json!({ "flowIntervalSeconds": null })).is_err());
        assert!(read(json!({ "flowIntervalSeconds": "2" })).is_err());
        let bypassed =
            json!({ "flowIntervalSeconds": 0.5, "__test__bypass_flow_interval_check": true });
        assert_eq!(read(bypassed).unwrap().interval, Duration::from_millis(500));
        let below =
            read(json!({ "flowIntervalSeconds": 0.4, "__test__bypass_flow_interval_check": true }))
                .unwrap_err();
        assert_eq!(
            below.message,
            "configuration assert: flowIntervalSeconds must be at least 0.5 seconds"
        );
        let hooks =
            read(json!({ "__test__delay_flow_ms": 250, "__test__throw_flow": "boom" })).unwrap();
        assert_eq!(hooks.delay, Some(Duration::from_millis(250)));
        assert_eq!(hooks.fail_with.as_deref(), Some("boom"));
    }

    #[test]
    fn uuids_are_read_as_pg_boss_reads_them() {
        assert!(is_uuid_input("0b6c2a3e-1f4d-4c2b-9a8e-7d6f5e4c3b2a"));
        assert!(is_uuid_input("{0B6C2A3E1F4D4C2B9A8E7D6F5E4C3B2A}"));
        assert!(is_uuid_input("0b6c-2a3e-1f4d-4c2b-9a8e-7d6f-5e4c-3b2a"));
        assert!(!is_uuid_input("0b6c2a3e-1f4d-4c2b-9a8e-7d6f5e4c3b2"));
        assert!(!is_uuid_input("0b6c2a3e--1f4d-4c2b-9a8e-7d6f5e4c3b2a"));
        assert!(!is_uuid_input("-0b6c2a3e1f4d4c2b9a8e7d6f5e4c3b2a"));
        assert!(!is_uuid_input("0b6c2a3e1f4d4c2b9a8e7d6f5e4c3b2a-"));
        assert!(!is_uuid_input("{0b6c2a3e1f4d4c2b9a8e7d6f5e4c3b2a"));
        assert!(!is_uuid_input("0b6c2-a3e1f4d4c2b9a8e7d6f5e4c3b2a"));
    }
}
