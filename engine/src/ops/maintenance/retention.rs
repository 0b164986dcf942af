//! Maintenance's share of a pass: delete the claimed queues' jobs past retention, then count the
//! finished jobs they keep outright (see sql/counting.rs) and drop their orphaned flow edges, as
//! pg-boss's maintenance pass does, so either kind of instance can maintain.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{claim, PassReport};
use crate::error::Result;
use crate::ops::flows::cleanup_dependencies;
use crate::ops::warnings::note_statement;
use crate::sql::exec::{Exec, Param, Tx};
use crate::sql::maintenance::BATCH;
use crate::sql::Db;

/// Per queue, the jobs a sweep removed and how many of them `retained_count` held.
type Removed = BTreeMap<String, (i32, i32)>;

pub(super) async fn maintain(
    db: &Db,
    table: &str,
    names: &[String],
    interval: Duration,
    report: &mut PassReport,
) -> Result<()> {
    let claimed: Vec<String> = claim(db, &db.sql.maintenance.claim_maintain, names, interval)
        .await?
        .into_iter()
        .map(|(name,)| name)
        .collect();
    if claimed.is_empty() {
        return Ok(());
    }
    // Taken before the sweep: what finishes while it runs is past the watermark, for a count.
    let (watermark,): (DateTime<Utc>,) = db
        .exec()
        .fetch_one(&db.sql.counting.retained_watermark, Vec::new())
        .await?;
    let mut removed = Removed::new();
    if let Err(err) = sweep(db, table, &claimed, &mut removed, report).await {
        // A sweep cut short has not counted what it kept, so it only takes what it deleted off the
        // counts; the next full sweep sets them. The sweep's error is the one worth reporting.
        let _ = reduce_retained(db, &removed).await;
        return Err(err);
    }
    set_retained(db, table, &claimed, watermark).await?;
    // Edges whose job is gone (deleted, or swept above) are dropped with it, as pg-boss's pass does.
    cleanup_dependencies(db, table, &claimed).await?;
    report.maintained.extend(claimed);
    Ok(())
}

/// Deletes the claimed queues' jobs past retention, a batch per transaction under pg-boss's
/// deletion lock, tallying what went into `removed`.
async fn sweep(
    db: &Db,
    table: &str,
    claimed: &[String],
    removed: &mut Removed,
    report: &mut PassReport,
) -> Result<()> {
    let sql = db.sql.maintenance.sweep(table);
    let lock = db.sql.maintenance.sweep_lock(table);
    loop {
        let started = Instant::now();
        let tx = Tx::begin(&db.handle).await?;
        let exec = Exec::tx(&tx).with_mode(db.mode);
        if let Some(lock) = &lock {
            exec.execute(lock, Vec::new()).await?;
        }
        let rows: Vec<(String, i32, i32)> = exec
            .fetch_all(&sql, vec![Param::Texts(Some(claimed.to_vec()))])
            .await?;
        tx.commit().await?;
        note_statement(started, &sql, || json!([claimed]));
        let mut deleted = 0;
        for (name, count, held) in rows {
            let tally = removed.entry(name).or_insert((0, 0));
            tally.0 += count;
            tally.1 += held;
            deleted += i64::from(count);
        }
        report.deleted += deleted;
        if deleted < BATCH {
            return Ok(());
        }
    }
}

/// After a full sweep: the finished jobs kept up to `watermark` become the queues' retained count.
async fn set_retained(
    db: &Db,
    table: &str,
    claimed: &[String],
    watermark: DateTime<Utc>,
) -> Result<()> {
    let sql = db.sql.counting.set_retained(table);
    let params = vec![
        Param::Texts(Some(claimed.to_vec())),
        Param::Timestamptz(Some(watermark)),
    ];
    let started = Instant::now();
    db.exec().execute(&sql, params).await?;
    note_statement(started, &sql, || json!([claimed, watermark]));
    Ok(())
}

async fn reduce_retained(db: &Db, removed: &Removed) -> Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    let params = vec![
        Param::Texts(Some(removed.keys().cloned().collect())),
        Param::Int4s(removed.values().map(|tally| tally.0).collect()),
        Param::Int4s(removed.values().map(|tally| tally.1).collect()),
    ];
    db.exec()
        .execute(&db.sql.counting.reduce_retained, params)
        .await?;
    Ok(())
}
