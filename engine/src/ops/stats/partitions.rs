//! The daily `queue_stats` partitions: a supervision pass (with `persistQueueStats`) creates
//! today's and tomorrow's (UTC) and drops the ones older than `queueStatRetentionDays`.

use std::time::Instant;

use serde_json::json;

use crate::error::Result;
use crate::ops::warnings::note_statement;
use crate::sql::Db;

/// Creates the partitions for today and tomorrow (UTC) that do not exist yet.
pub async fn ensure_partitions(db: &Db) -> Result<()> {
    let sql = &db.sql.stats.ensure_partitions;
    let started = Instant::now();
    db.exec().execute(sql, Vec::new()).await?;
    note_statement(started, sql, || json!([]));
    Ok(())
}

/// Drops the partitions whose day is more than `days` before today (UTC).
pub async fn drop_old_partitions(db: &Db, days: i64) -> Result<()> {
    let sql = db.sql.stats.drop_partitions(days);
    let started = Instant::now();
    db.exec().execute(&sql, Vec::new()).await?;
    note_statement(started, &sql, || json!([]));
    Ok(())
}
