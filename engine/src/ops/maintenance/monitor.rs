//! The monitor's share of a pass: count the claimed queues onto their rows (recording snapshots
//! with `persistQueueStats`), warn about backlogs, and fail the active jobs whose expiration or
//! heartbeat ran out. While a monitor backoff is in force (see ops/vacuum.rs) the counts wait;
//! expiry does not.

use std::time::Instant;

use serde_json::json;

use super::{claim, PassReport};
use crate::config::{Observability, SupervisorSettings};
use crate::error::Result;
use crate::ops::counts::{refresh_counts_with, CountLock, Counted};
use crate::ops::settle::split_failure;
use crate::ops::stats::record::record_counts;
use crate::ops::vacuum::VacuumState;
use crate::ops::warnings::{self, note_statement};
use crate::sql::counting::Throughput;
use crate::sql::exec::{Exec, Param, Tx};
use crate::sql::maintenance::{Expiry, BATCH};
use crate::sql::settle::{fail_sql, split_removal};
use crate::sql::Db;

pub(super) async fn monitor(
    db: &Db,
    table: &str,
    names: &[String],
    settings: &SupervisorSettings,
    report: &mut PassReport,
    vacuum: &mut VacuumState,
) -> Result<()> {
    let sql = &db.sql.maintenance.claim_monitor;
    let rows: Vec<(String, bool)> = claim(db, sql, names, settings.monitor_interval).await?;
    if rows.is_empty() {
        return Ok(());
    }
    // The backoff holds the whole schema's counts, so every row says the same.
    let refresh = rows.iter().all(|(_, refresh)| *refresh);
    let claimed: Vec<String> = rows.into_iter().map(|(name, _)| name).collect();
    let observability = settings.observability;
    if refresh {
        let throughput = observability
            .persist_queue_stats
            .then(|| Throughput::for_pass(settings.pass_seconds()));
        let started = Instant::now();
        let counted =
            refresh_counts_with(db, table, &claimed, CountLock::Monitor, throughput).await?;
        if let Some(counted) = counted {
            // How long the count held the horizon, by the server's clock (ours when it gave none).
            if !counted.is_empty() {
                let pinned = counted.iter().map(|c| c.pin_seconds).fold(0.0, f64::max);
                vacuum.add_pin(if pinned > 0.0 {
                    pinned
                } else {
                    started.elapsed().as_secs_f64()
                });
            }
            if observability.persist_queue_stats {
                let trued_up = record_counts(db, table, &counted).await?;
                vacuum.add_pin(trued_up);
            }
            warn_backlogs(&counted, &observability);
        }
    }
    report.expired += expire(db, table, &claimed, Expiry::Timeout).await?;
    report.heartbeat_failed += expire(db, table, &claimed, Expiry::Heartbeat).await?;
    report.monitored.extend(claimed);
    Ok(())
}

/// Notes a queue_backlog warning for each queue counted with more queued jobs than its threshold
/// (its own `warningQueueSize`, else the instance's).
fn warn_backlogs(counted: &[Counted], observability: &Observability) {
    for row in counted {
        let threshold = if row.warning_queued != 0 {
            f64::from(row.warning_queued)
        } else {
            observability.warning_queue_size
        };
        if f64::from(row.queued) <= threshold {
            continue;
        }
        let mut data = json!({ "name": row.name, "queuedCount": row.queued, "warningQueueSize": row.warning_queued });
        if let Some(late) = row.true_up {
            data["trueUp"] = json!(late);
        }
        data["pinSeconds"] = json!(row.pin_seconds);
        warnings::note(warnings::backlog(
            &row.name,
            i64::from(row.queued),
            threshold,
            data,
        ));
    }
}

/// Fails (retries or dead-letters, like any failure) the claimed queues' active jobs whose time
/// ran out, a batch per transaction under pg-boss's lock for the sweep. Answers how many.
async fn expire(db: &Db, table: &str, queues: &[String], expiry: Expiry) -> Result<i64> {
    let sql = &db.sql.maintenance;
    // Failing is the job path's statement; only its filter and output are the monitor's.
    let split = db.sql.splits_mutations();
    let fail = sql.expire(table, expiry, |filter, output| {
        if split {
            let delete = format!("DELETE FROM {}.{table} WHERE {filter}", db.schema());
            split_removal("", &delete, "", output, "false")
        } else {
            fail_sql(db.schema(), table, filter, output)
        }
    });
    let lock = sql.expire_lock(table, expiry);
    let mut total = 0;
    loop {
        let started = Instant::now();
        let tx = Tx::begin(&db.handle).await?;
        let exec = Exec::tx(&tx).with_mode(db.mode);
        if let Some(lock) = &lock {
            exec.execute(lock, Vec::new()).await?;
        }
        let params = vec![Param::Texts(Some(queues.to_vec()))];
        let count = if split {
            split_failure(exec, &db.sql, table, &fail, params)
                .await?
                .ids
                .len() as i64
        } else {
            let (count, _ids): (i64, Vec<uuid::Uuid>) = exec.fetch_one(&fail, params).await?;
            count
        };
        tx.commit().await?;
        note_statement(started, &fail, || json!([queues]));
        total += count;
        if count < BATCH {
            return Ok(total);
        }
    }
}
