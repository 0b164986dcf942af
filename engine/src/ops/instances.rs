//! The instance registry's table as operations see it: writing this instance's row, counting its
//! crash restarts and pruning its name's dead lives, reading the table (`getInstances()`), and
//! keeping it small (the maintenance pass's share).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::ensure;
use crate::error::Result;
use crate::ops::warnings::note_statement;
use crate::sql::exec::Param;
use crate::sql::Db;

// Maintenance builds its statements from these; they live with the registry's other statements.
pub(crate) use crate::sql::registry::{prune_dead_sql, DEAD_KEPT, RETENTION_DAYS};

/// What one write of the row carries: the identity and roles (the same at every write) and what
/// changes between beats (pool, workers, metrics).
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub id: Uuid,
    pub name: Option<String>,
    pub host: String,
    pub pid: i32,
    pub version: String,
    /// `node_version`: the host runtime.
    pub runtime_version: String,
    pub heartbeat_seconds: i32,
    pub supervise: bool,
    pub schedule: bool,
    pub migrate: bool,
    pub persist_queue_stats: bool,
    pub persist_warnings: bool,
    /// `pool_max`, `pool_total`, `pool_idle`, `pool_waiting`; unknown ones stay null.
    pub pool: [Option<i32>; 4],
    pub workers: Value,
    pub metrics: Option<Value>,
    pub config: Value,
}

impl InstanceRow {
    /// `$1..$19`, in the order the statements name the columns.
    fn params(&self) -> Vec<Param> {
        let [max, total, idle, waiting] = self.pool;
        vec![
            Param::Uuid(Some(self.id)),
            Param::Text(self.name.clone()),
            Param::text(&self.host),
            Param::Int4(self.pid),
            Param::text(&self.version),
            Param::text(&self.runtime_version),
            Param::Int4(self.heartbeat_seconds),
            Param::Bool(self.supervise),
            Param::Bool(self.schedule),
            Param::Bool(self.migrate),
            Param::Bool(self.persist_queue_stats),
            Param::Bool(self.persist_warnings),
            Param::MaybeInt4(max),
            Param::MaybeInt4(total),
            Param::MaybeInt4(idle),
            Param::MaybeInt4(waiting),
            Param::Json(Some(self.workers.clone())),
            Param::Json(self.metrics.clone()),
            Param::Json(Some(self.config.clone())),
        ]
    }
}

/// Writes the row afresh: a restarted `Boss` (same id) reads as live again from a new `started_on`,
/// with its crash count recounted. Answers the `started_on` written.
pub async fn register(db: &Db, row: &InstanceRow) -> Result<DateTime<Utc>> {
    let (started_on,) = db
        .exec()
        .fetch_one(&db.sql.registry.register, row.params())
        .await?;
    Ok(started_on)
}

/// Refreshes what changes between beats. An upsert, so a row deleted while the process was away
/// (a laptop asleep past the retention) comes back, with the `started_on` it registered with.
pub async fn beat(db: &Db, row: &InstanceRow, started_on: DateTime<Utc>) -> Result<()> {
    let mut params = row.params();
    params.push(Param::Timestamptz(Some(started_on)));
    db.exec().execute(&db.sql.registry.beat, params).await?;
    Ok(())
}

/// Marks the row stopped, so it reads as over at once rather than after three missed beats.
pub async fn mark_stopped(db: &Db, id: Uuid) -> Result<()> {
    db.exec()
        .execute(&db.sql.registry.mark_stopped, vec![Param::Uuid(Some(id))])
        .await?;
    Ok(())
}

/// Who an instance is to the lives before it: its name on its host, and its process.
pub struct Lineage<'a> {
    pub id: Uuid,
    pub name: Option<&'a str>,
    pub host: &'a str,
    pub pid: i32,
    /// When its process started: a row with its pid that beat last before this is an earlier
    /// process that reused the pid.
    pub process_started: DateTime<Utc>,
}

/// Counts this instance's crash restarts: the lives in a row on its name and host that ended
/// without `stop()` before it started. Worked out from the rows each time rather than handed from
/// one life to the next, because at registration a row that still reads live may be a predecessor
/// that crashed a moment ago or a sibling process that is fine, and only its next missed beats
/// tell which. So a life counts once it is quiet for good, and only if its last beat came before
/// this instance started (a live sibling's beats move past that).
///
/// The whole streak is rewritten: its earliest kept crash carries the count for the lives pruning
/// already took, and every later life (this one last) gets that count plus its place in the
/// streak, so a life that crashed before its own recount is corrected by its successor.
///
/// Answers how many seconds from now the rows that could not be judged yet go quiet, if any.
pub async fn count_crash_restarts(db: &Db, me: &Lineage<'_>) -> Result<Option<f64>> {
    let params = vec![
        Param::Uuid(Some(me.id)),
        Param::Text(me.name.map(str::to_string)),
        Param::text(me.host),
        Param::Int4(me.pid),
        Param::Timestamptz(Some(me.process_started)),
    ];
    let (recount,) = db
        .exec()
        .fetch_one(&db.sql.registry.count_crash_restarts, params)
        .await?;
    Ok(recount)
}

/// After registering: this name's dead rows (this host's unnamed ones, for an unnamed instance)
/// beyond the newest 20. Keyed on the name, since a recreated pod comes back on a new host name.
pub async fn prune_lives(db: &Db, me: &Lineage<'_>) -> Result<()> {
    let params = vec![
        Param::Uuid(Some(me.id)),
        Param::Text(me.name.map(str::to_string)),
        Param::text(me.host),
    ];
    db.exec()
        .execute(&db.sql.registry.prune_lives, params)
        .await?;
    Ok(())
}

/// The registry's share of a maintenance pass, whether or not this instance registers (the table is
/// the database's): rows quiet for the retention go, then dead rows beyond the newest 1000.
pub async fn maintain(db: &crate::sql::Db) -> Result<()> {
    let pass = &db.sql.maintenance;
    let old = pass.borrowed("instances-quiet", |s| {
        format!("DELETE FROM {s}.instance WHERE heartbeat_on < {s}.job_now() - interval '{RETENTION_DAYS} days'")
    });
    let trim = pass.borrowed("instances-dead", |s| prune_dead_sql(s, "true", DEAD_KEPT));
    for sql in [old, trim] {
        let started = std::time::Instant::now();
        db.exec().execute(&sql, Vec::new()).await?;
        note_statement(started, &sql, || json!([]));
    }
    Ok(())
}

/// `getInstances({ limit, after })`: rows in start order, as JSON text with pg-boss's field names.
/// `after` is the last id of the previous page; an empty page after an id that is gone is an error
/// rather than a quiet end of the list.
pub async fn get_instances(db: &Db, limit: i64, after: Option<&str>) -> Result<String> {
    let page = vec![Param::Text(after.map(str::to_string)), Param::Int8(limit)];
    let (text,): (String,) = db.exec().fetch_one(&db.sql.registry.page, page).await?;
    if let (Some(after), "[]") = (after, text.as_str()) {
        let found: Option<(i32,)> = db
            .exec()
            .fetch_optional(&db.sql.registry.exists, vec![Param::text(after)])
            .await?;
        ensure!(
            found.is_some(),
            "getInstances: after names a row that no longer exists"
        );
    }
    Ok(text)
}
