//! Supervision: the pass that keeps queues healthy, run in the background by the supervisor
//! service and on demand by `supervise()` — one operation for both.
//!
//! A pass covers its queues a job table at a time, a chunk of queues per statement:
//! * the monitor (`monitor.rs`) counts the queues onto their rows (recording snapshots with
//!   `persistQueueStats`), warns about backlogs, and fails active jobs past their expiration or
//!   heartbeat;
//! * maintenance (`retention.rs`) deletes jobs past retention and counts the finished jobs kept.
//!
//! Each claims its queues through the same `monitor_claim_on` / `maintain_on` stamps and advisory
//! locks pg-boss uses, so pg-boss instances and ours never run one twice at once. Around them the
//! pass keeps the stats partitions, the warning table and the instance table in bounds.

mod monitor;
mod retention;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::SupervisorSettings;
use crate::error::Result;
use crate::event::EventSink;
use crate::ops::vacuum::{self, VacuumState};
use crate::ops::warnings::{self, note_statement, WarningSink};
use crate::ops::{instances, stats};
use crate::sql::exec::{Param, Row};
use crate::sql::Db;

/// Queues claimed per statement.
const CHUNK: usize = 100;

/// What a pass did, for tests and for whoever asked for it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// The queues this pass monitored (those whose monitor was due and not claimed elsewhere).
    pub monitored: Vec<String>,
    /// The queues this pass maintained.
    pub maintained: Vec<String>,
    /// Active jobs failed for outliving their expiration.
    pub expired: i64,
    /// Active jobs failed for missing their heartbeat.
    pub heartbeat_failed: i64,
    /// Jobs deleted past their retention.
    pub deleted: i64,
    /// The job tables of the queues the pass covered (claimed or not), by name.
    pub tables: Vec<String>,
}

/// One supervision pass over the named queues (all when `None`), with what pg-boss does around
/// it. The warnings found on the way are published at the end, whether or not it succeeded.
pub async fn supervise(
    db: &Db,
    names: Option<&[String]>,
    settings: SupervisorSettings,
    events: &Arc<dyn EventSink>,
    vacuum: &mut VacuumState,
) -> Result<PassReport> {
    let observability = settings.observability;
    let slow_after = Duration::from_secs_f64(observability.warning_slow_query_seconds);
    let (result, found) =
        warnings::watch(slow_after, pass(db, names, settings, events, vacuum)).await;
    let sink = WarningSink::new(events.clone(), &observability);
    for warning in &found {
        sink.publish_in(db, warning).await;
    }
    result
}

/// Today's and tomorrow's stats partitions first (with `persistQueueStats`), then the queues, then
/// the monitor backoff and the vacuum check (with `monitorVacuum`), then pruning the warning
/// table (with `persistWarnings`), the stats history (with `persistQueueStats`) and the instance
/// table.
async fn pass(
    db: &Db,
    names: Option<&[String]>,
    settings: SupervisorSettings,
    events: &Arc<dyn EventSink>,
    state: &mut VacuumState,
) -> Result<PassReport> {
    let observability = settings.observability;
    if observability.persist_queue_stats {
        stats::partitions::ensure_partitions(db).await?;
    }
    let report = supervise_queues(db, names, &settings, state).await?;
    vacuum::apply_backoff(db, state, settings.vacuum).await?;
    vacuum::check(db, state, settings.vacuum).await?;
    if observability.persist_warnings {
        warnings::prune(db, observability.warning_retention_days).await?;
    }
    if observability.persist_queue_stats {
        stats::partitions::drop_old_partitions(db, observability.queue_stat_retention_days).await?;
    }
    // Best effort, as in pg-boss: a role granted privileges table by table may have none on the
    // instance table, and that must not fail the pass.
    if let Err(err) = instances::maintain(db).await {
        events.error(&err);
    }
    Ok(report)
}

/// The monitor and maintenance of the named queues (all when `None`), a job table at a time.
async fn supervise_queues(
    db: &Db,
    names: Option<&[String]>,
    settings: &SupervisorSettings,
    vacuum: &mut VacuumState,
) -> Result<PassReport> {
    let sql = &db.sql.maintenance.queues;
    let names_param = Param::Texts(names.map(<[String]>::to_vec));
    let started = Instant::now();
    let rows: Vec<(String, String)> = db.exec().fetch_all(sql, vec![names_param]).await?;
    note_statement(started, sql, || serde_json::json!([names]));
    let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, table) in rows {
        by_table.entry(table).or_default().push(name);
    }
    let mut report = PassReport {
        tables: by_table.keys().cloned().collect(),
        ..PassReport::default()
    };
    for (table, names) in &by_table {
        for chunk in names.chunks(CHUNK) {
            monitor::monitor(db, table, chunk, settings, &mut report, vacuum).await?;
            retention::maintain(db, table, chunk, settings.maintenance_interval, &mut report)
                .await?;
        }
    }
    Ok(report)
}

/// Claims the queues not monitored (or maintained: `sql` says which) for `interval`, locking
/// their rows in name order (skipping rows another instance holds), and stamps them now. Answers
/// a row per queue claimed, its name first.
async fn claim<R: Row>(db: &Db, sql: &str, names: &[String], interval: Duration) -> Result<Vec<R>> {
    let params = vec![
        Param::Texts(Some(names.to_vec())),
        Param::Float8(interval.as_secs_f64()),
    ];
    let started = Instant::now();
    let claimed: Vec<R> = db.exec().fetch_all(sql, params).await?;
    note_statement(started, sql, || {
        serde_json::json!([names, interval.as_secs_f64()])
    });
    Ok(claimed)
}
