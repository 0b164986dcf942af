//! The daily `queue_stats` partitions: a supervision pass (with `persistQueueStats`) creates
//! today's and tomorrow's (UTC) and drops the ones older than `queueStatRetentionDays`. In a
//! schema pg-boss installed without table partitioning, `queue_stats` is one table: then nothing
//! is created, and the old snapshots are deleted a batch at a time, as pg-boss does there.

use std::time::Instant;

use serde_json::json;

use crate::error::Result;
use crate::ops::warnings::note_statement;
use crate::sql::stats::DELETE_OLD_BATCH;
use crate::sql::Db;

/// Whether the schema's `queue_stats` is partitioned by day.
async fn partitioned(db: &Db) -> Result<bool> {
    let (partitioned,): (bool,) = db
        .exec()
        .fetch_one(&db.sql.stats.partitioned, Vec::new())
        .await?;
    Ok(partitioned)
}

/// Creates the partitions for today and tomorrow (UTC) that do not exist yet.
pub async fn ensure_partitions(db: &Db) -> Result<()> {
    if !partitioned(db).await? {
        return Ok(());
    }
    let sql = &db.sql.stats.ensure_partitions;
    let started = Instant::now();
    db.exec().execute(sql, Vec::new()).await?;
    note_statement(started, sql, || json!([]));
    Ok(())
}

/// Drops the partitions whose day is more than `days` before today (UTC); without partitions,
/// deletes the snapshots captured more than `days` ago.
pub async fn drop_old_partitions(db: &Db, days: i64) -> Result<()> {
    if !partitioned(db).await? {
        let sql = db.sql.stats.delete_old(days);
        loop {
            let started = Instant::now();
            let (deleted,): (i32,) = db.exec().fetch_one(&sql, Vec::new()).await?;
            note_statement(started, &sql, || json!([]));
            if deleted < DELETE_OLD_BATCH {
                return Ok(());
            }
        }
    }
    let sql = db.sql.stats.drop_partitions(days);
    let started = Instant::now();
    db.exec().execute(&sql, Vec::new()).await?;
    note_statement(started, &sql, || json!([]));
    Ok(())
}
