//! The instance registry's table as operations see it: reading it (`getInstances()`) and keeping it
//! small (the maintenance pass's share).

use serde_json::json;
use sqlx::PgPool;

use crate::ensure;
use crate::error::Result;
use crate::ops::warnings::note_statement;

/// A row reads as live until it has missed this many heartbeats (its own interval, per row).
pub(crate) const QUIET_BEATS: i32 = 3;
/// Rows whose heartbeat has not moved for this long are deleted by maintenance, dead or not.
pub(crate) const RETENTION_DAYS: i32 = 7;
/// Dead rows kept per name (per host for unnamed instances) when an instance registers: a crash
/// loop or a fleet that never calls stop() leaves one row per life, and this bounds them early.
pub(crate) const DEAD_KEPT_PER_NAME: i64 = 20;
/// Dead rows kept across the whole table by maintenance.
pub(crate) const DEAD_KEPT: i64 = 1000;
/// `instance` rows that are over: stopped, or quiet for three of their own heartbeats.
pub(crate) fn dead(s: &str) -> String {
    format!("(stopped_on IS NOT NULL OR heartbeat_on < {s}.job_now() - heartbeat_seconds * {QUIET_BEATS} * interval '1 second')")
}

/// Deletes the dead rows that `filter` selects beyond the `keep` most recently started. Ranked
/// first and then locked with SKIP LOCKED, so a registration and a maintenance pass pruning at the
/// same time neither deadlock nor delete a row the other's ranking kept.
pub(crate) fn prune_dead_sql(s: &str, filter: &str, keep: i64) -> String {
    format!(
        "DELETE FROM {s}.instance WHERE id IN (
           SELECT id FROM {s}.instance WHERE id IN (
             SELECT id FROM (
               SELECT id, row_number() OVER (ORDER BY started_on DESC, id DESC) AS newest
               FROM {s}.instance WHERE {filter} AND {dead}) ranked
             WHERE newest > {keep})
           FOR UPDATE SKIP LOCKED)",
        dead = dead(s)
    )
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
pub async fn get_instances(
    pool: &PgPool,
    s: &str,
    limit: i64,
    after: Option<&str>,
) -> Result<String> {
    let sql = format!(
        "SELECT COALESCE(json_agg(json_build_object(
           'id', id, 'name', name, 'host', host, 'pid', pid, 'version', version, 'nodeVersion', node_version,
           'applicationName', application_name, 'heartbeatSeconds', heartbeat_seconds,
           'supervise', supervise, 'schedule', schedule, 'migrate', migrate,
           'persistQueueStats', persist_queue_stats, 'persistWarnings', persist_warnings,
           'poolMax', pool_max, 'poolTotal', pool_total, 'poolIdle', pool_idle, 'poolWaiting', pool_waiting,
           'workers', workers, 'metrics', metrics, 'config', config,
           'crashRestarts', crash_restarts, 'crashRestartsSince', crash_restarts_since,
           'startedOn', started_on, 'heartbeatOn', heartbeat_on, 'stoppedOn', stopped_on, 'live', live)
           ORDER BY started_on, id), '[]')::text
         FROM (
           SELECT *, NOT {dead} AS live FROM {s}.instance
           WHERE $1::text IS NULL
              OR (started_on, id) > ((SELECT started_on FROM {s}.instance WHERE id = $1::uuid), $1::uuid)
           ORDER BY started_on, id
           LIMIT $2) page",
        dead = dead(s)
    );
    let text: String = sqlx::query_scalar(&sql)
        .bind(after)
        .bind(limit)
        .fetch_one(pool)
        .await?;
    if let (Some(after), "[]") = (after, text.as_str()) {
        let found: Option<i32> =
            sqlx::query_scalar(&format!("SELECT 1 FROM {s}.instance WHERE id = $1::uuid"))
                .bind(after)
                .fetch_optional(pool)
                .await?;
        ensure!(
            found.is_some(),
            "getInstances: after names a row that no longer exists"
        );
    }
    Ok(text)
}
