//! Flows: a graph of jobs inserted at once, in which a job waits for the jobs it depends on.
//!
//! The bookkeeping is pg-boss 12.38's, column for column, so that either kind of instance runs and
//! resolves a flow the other one inserted:
//! - a job with parents is written `blocked`, its `pending_dependencies` the number of its distinct
//!   parents; a job with children is written `blocking`; every edge is a `job_dependency` row;
//! - completing a job does no dependency work (completion stays a one-table statement). A
//!   resolution pass later finds the completed `blocking` jobs, takes each one off its children's
//!   counts, releases the children that reach zero and clears `blocking`, so a parent is resolved
//!   exactly once (the passes themselves: `service::flow_resolver`);
//! - only completion releases children. A parent that fails for good, is cancelled or is deleted
//!   leaves them blocked; one that is retried or resumed releases them once it does complete.
//!
//! Passes that overlap (an on-demand one, or another instance's) cannot resolve a parent twice:
//! each batch locks its parents with SKIP LOCKED and clears their `blocking` in the same statement.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{Error, ErrorCode, Result};
use crate::model::flow::{DependencyQuery, Direction, FlowJob};
use crate::ops::insert::insert_error;
use crate::ops::queues::{self, Queue, QueueCache};
use crate::sql::exec::{Exec, ExecError, Handle, Param, StatementMode, Tx};
use crate::sql::flows::{EdgeSide, FlowSql, CLEANUP_BATCH};
use crate::sql::insert::insert_sql_by_key;
use crate::sql::{Db, QueueStatement};

const NOT_CREATED: &str =
    "one or more jobs could not be created. This usually means a job id was duplicated, collided \
with an existing job, or was rejected by a queue policy (short, singleton, stately, or exclusive).";

// ---------------------------------------------------------------------------------------------
// Inserting a flow

/// A checked flow laid out for its insert.
struct FlowRows {
    /// Each job's id, in input order: as the caller gave it, or new.
    ids: Vec<String>,
    /// Each queue's rows (the insert's recordset), queues in the order they first appear.
    by_queue: Vec<(String, Vec<Value>)>,
    /// The `job_dependency` rows.
    edges: Vec<Value>,
}

fn lay_out(jobs: &[FlowJob]) -> FlowRows {
    let ids: Vec<String> = jobs
        .iter()
        .map(|job| job.id.clone().unwrap_or_else(|| Uuid::new_v4().to_string()))
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
    let mut by_queue: Vec<(String, Vec<Value>)> = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        let row = flow_row(job, &ids[index], is_parent[index]);
        match by_queue.iter_mut().find(|(name, _)| *name == job.name) {
            Some((_, rows)) => rows.push(row),
            None => by_queue.push((job.name.clone(), vec![row])),
        }
    }
    FlowRows {
        ids,
        by_queue,
        edges,
    }
}

/// One job's recordset row: its options' fields, and the flow columns only a flow fills.
fn flow_row(job: &FlowJob, id: &str, is_parent: bool) -> Value {
    let mut row = job.fields.clone();
    row.insert("id".into(), json!(id));
    row.insert("data".into(), job.data.clone());
    if !job.depends_on.is_empty() {
        row.insert("blocked".into(), json!(true));
        row.insert("pendingDependencies".into(), json!(job.depends_on.len()));
    }
    if is_parent {
        row.insert("blocking".into(), json!(true));
    }
    Value::Object(row)
}

/// Inserts a checked flow in one transaction: every queue's jobs (queues in the order they first
/// appear), then the edges. Any job the insert skips (an id taken, a policy's unique index) undoes
/// the whole flow. Answers each ref's id, in input order.
pub async fn insert_flow(
    db: &Db,
    cache: &QueueCache,
    jobs: &[FlowJob],
) -> Result<Vec<(String, String)>> {
    let rows = lay_out(jobs);
    // Every queue is looked up before anything is written, so a missing one writes nothing.
    let mut targets: Vec<(Arc<Queue>, Vec<Value>)> = Vec::with_capacity(rows.by_queue.len());
    for (name, queue_rows) in rows.by_queue {
        let queue = queues::cached_in(db, cache, &name).await?;
        targets.push((queue, queue_rows));
    }
    write_flow(db, &targets, rows.edges).await?;
    Ok(jobs
        .iter()
        .zip(rows.ids)
        .map(|(job, id)| (job.reference.clone(), id))
        .collect())
}

async fn write_flow(
    db: &Db,
    targets: &[(Arc<Queue>, Vec<Value>)],
    edges: Vec<Value>,
) -> Result<()> {
    let sql = &db.sql.flows;
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    exec.execute(&sql.transaction_limits, Vec::new()).await?;
    for (queue, rows) in targets {
        let insert = queue.statements.get(QueueStatement::FlowInsert, || {
            insert_sql_by_key(db.schema(), queue, true, false)
        });
        let params = vec![
            Param::text(Value::Array(rows.clone()).to_string()),
            Param::text(queue.name.as_str()),
        ];
        let written: Vec<(Uuid,)> = exec
            .fetch_all(&insert, params)
            .await
            .map_err(|e| insert_error(e, &queue.name))?;
        if written.len() != rows.len() {
            return Err(Error::new(ErrorCode::Conflict, NOT_CREATED));
        }
    }
    if !edges.is_empty() {
        let params = vec![Param::text(Value::Array(edges).to_string())];
        exec.execute(&sql.insert_edges, params).await?;
    }
    let names: Vec<&str> = targets.iter().map(|(q, _)| q.name.as_str()).collect();
    // The queue foreign keys are deferred: a queue deleted since it was looked up fails here.
    tx.commit().await.map_err(|e| commit_error(e, &names))
}

/// A failed commit said as an insert's failure is: the missing queue named when the foreign key's
/// detail names one of the flow's queues, else all of them.
fn commit_error(err: ExecError, names: &[&str]) -> Error {
    let detail_value = err.detail().and_then(|detail| {
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
    insert_error(err, &queue)
}

// ---------------------------------------------------------------------------------------------
// Reading the edges

/// One end of an edge, as `getDependencies()` and `getDependents()` answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyRef {
    /// The job's queue.
    pub name: String,
    /// The job.
    pub id: Uuid,
}

/// `getDependencies()` / `getDependents()`: one page of a job's parents or children, ordered by
/// queue and id.
pub async fn edges(db: &Db, query: &DependencyQuery) -> Result<Vec<DependencyRef>> {
    let sql = &db.sql.flows;
    let statement = match (query.direction, query.after.is_some()) {
        (Direction::Parents, false) => &sql.parents,
        (Direction::Parents, true) => &sql.parents_after,
        (Direction::Children, false) => &sql.children,
        (Direction::Children, true) => &sql.children_after,
    };
    let (after_name, after_id) = query.after.clone().unzip();
    let params = vec![
        Param::text(query.name.as_str()),
        Param::Text(query.id.clone()),
        Param::Text(after_name),
        Param::Text(after_id),
        Param::Int8(query.limit),
    ];
    let rows: Vec<(String, Uuid)> = db.exec().fetch_all(statement, params).await?;
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
    /// The job table (pg-boss's `FlowEvent.table`).
    pub table: String,
    /// How many parents were resolved in it.
    pub resolved: i64,
}

/// Stamps `flow_on` when the last stamp is at least `interval` old, by the database's clock;
/// answers whether this caller won the interval's pass.
pub async fn try_stamp(db: &Db, interval: Duration) -> Result<bool> {
    let params = vec![Param::Float8(interval.as_secs_f64())];
    // Read from the row it answers: a caller's handle does not say how many rows a write touched.
    let won: Option<(bool,)> = db
        .exec()
        .fetch_optional(&db.sql.flows.stamp, params)
        .await?;
    Ok(won.is_some())
}

/// Every queue's name, grouped by its job table (tables in the order their first queue sorts).
pub async fn queue_tables(db: &Db) -> Result<Vec<(String, Vec<String>)>> {
    let rows: Vec<(String, String)> = db
        .exec()
        .fetch_all(&db.sql.flows.queue_tables, Vec::new())
        .await?;
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    for (name, table) in rows {
        match tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, names)) => names.push(name),
            None => tables.push((table, vec![name])),
        }
    }
    Ok(tables)
}

/// One batch of one job table: up to `sql::flows::RESOLVE_BATCH` completed parents of the named queues are resolved
/// (see `sql::flows`). Answers how many.
pub async fn resolve_batch(db: &Db, table: &str, names: &[String]) -> Result<i64> {
    if db.sql.splits_mutations() {
        return resolve_batch_split(db, table, names).await;
    }
    let statement = db.sql.flows.resolve_batch(table);
    let params = vec![Param::Texts(Some(names.to_vec()))];
    let (resolved,): (i64,) = db.exec().fetch_one(&statement, params).await?;
    Ok(resolved)
}

/// [`resolve_batch`] in steps, in one transaction, for a backend whose statements may change a
/// table only once (see `FlowSql::split_resolve`).
async fn resolve_batch_split(db: &Db, table: &str, names: &[String]) -> Result<i64> {
    let [parents, release, clear] = db.sql.flows.split_resolve(table);
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    let resolved = async {
        let locked: Vec<(String, Uuid)> = exec
            .fetch_all(&parents, vec![Param::Texts(Some(names.to_vec()))])
            .await?;
        if locked.is_empty() {
            return Ok::<i64, Error>(0);
        }
        let (parent_names, ids): (Vec<String>, Vec<Uuid>) = locked.into_iter().unzip();
        let pairs = || {
            vec![
                Param::Texts(Some(parent_names.clone())),
                Param::Uuids(ids.clone()),
            ]
        };
        exec.execute(&release, pairs()).await?;
        exec.execute(&clear, pairs()).await?;
        Ok(ids.len() as i64)
    }
    .await;
    tx.finish(resolved).await
}

// ---------------------------------------------------------------------------------------------
// Cleanup

/// Deletes the edges of the named queues whose job on one side no longer exists (a parent or child
/// deleted, or removed by retention), walking each queue's edges a batch at a time under pg-boss's
/// `cleanupDependencies` lock for the table. A child whose parent went this way stays blocked:
/// only a completed parent releases it. Answers how many edges went.
pub async fn cleanup_dependencies(db: &Db, table: &str, names: &[String]) -> Result<i64> {
    cleanup_with(&db.handle, db.mode, &db.sql.flows, table, names).await
}

async fn cleanup_with(
    pool: &Handle,
    mode: StatementMode,
    sql: &FlowSql,
    table: &str,
    names: &[String],
) -> Result<i64> {
    let lock = sql.cleanup_lock(table);
    let mut removed = 0;
    for name in names {
        for side in EdgeSide::BOTH {
            let statement = sql.cleanup(table, side);
            removed += cleanup_side(pool, mode, lock.as_deref(), &statement, name).await?;
        }
    }
    Ok(removed)
}

/// One queue's edges by one side, a batch per transaction.
async fn cleanup_side(
    pool: &Handle,
    mode: StatementMode,
    lock: Option<&str>,
    statement: &str,
    name: &str,
) -> Result<i64> {
    let mut removed = 0;
    let mut cursor: Option<Uuid> = None;
    loop {
        let tx = Tx::begin(pool).await?;
        let exec = Exec::tx(&tx).with_mode(mode);
        if let Some(lock) = lock {
            exec.execute(lock, Vec::new()).await?;
        }
        let params = vec![Param::text(name), Param::Uuid(cursor)];
        let (last, seen, deleted): (Option<Uuid>, i64, i64) =
            exec.fetch_one(statement, params).await?;
        tx.commit().await?;
        removed += deleted;
        if seen < CLEANUP_BATCH {
            return Ok(removed);
        }
        cursor = last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flow::check_flow;

    #[test]
    fn a_flow_is_laid_out_by_queue_with_its_flags_and_edges() {
        let jobs = check_flow(&json!([
            { "ref": "a", "name": "q", "options": { "id": "given", "priority": 2 } },
            { "ref": "b", "name": "r", "dependsOn": ["a", "a"] },
            { "ref": "c", "name": "q", "dependsOn": ["b", "a"], "data": { "n": 1 } },
        ]))
        .unwrap();
        let rows = lay_out(&jobs);
        assert_eq!(rows.ids[0], "given");
        assert!(Uuid::parse_str(&rows.ids[1]).is_ok());
        let queues: Vec<(&str, usize)> = rows
            .by_queue
            .iter()
            .map(|(name, rows)| (name.as_str(), rows.len()))
            .collect();
        assert_eq!(queues, [("q", 2), ("r", 1)]);
        let a = &rows.by_queue[0].1[0];
        assert_eq!(
            *a,
            json!({ "id": "given", "data": null, "priority": 2, "blocking": true })
        );
        let c = &rows.by_queue[0].1[1];
        assert_eq!(
            (c["blocked"].clone(), c["pendingDependencies"].clone()),
            (json!(true), json!(2))
        );
        assert!(c.get("blocking").is_none());
        assert_eq!(rows.edges.len(), 3);
        assert_eq!(
            rows.edges[0],
            json!({ "child_name": "r", "child_id": rows.ids[1], "parent_name": "q", "parent_id": "given" })
        );
    }
}
