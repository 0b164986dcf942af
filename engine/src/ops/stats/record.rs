//! Recording what a monitor pass counted (with `persistQueueStats`): a snapshot per queue, and the
//! true-up of recent snapshots that fell short because jobs committed into their windows late.

use std::time::Instant;

use serde_json::json;

use crate::error::Result;
use crate::ops::counts::Counted;
use crate::ops::warnings::note_statement;
use crate::sql::exec::{Exec, Param, Tx};
use crate::sql::Db;

/// Records the snapshots of the `counted` queues of `table`, then trues up the recent ones of the
/// queues whose count found late commits. Answers the seconds the true-up took (it holds the
/// horizon as the count does; 0 when there was none).
pub async fn record_counts(db: &Db, table: &str, counted: &[Counted]) -> Result<f64> {
    if counted.is_empty() {
        return Ok(0.0);
    }
    let names: Vec<String> = counted.iter().map(|c| c.name.clone()).collect();
    record(db, &names).await?;
    let late: Vec<String> = counted
        .iter()
        .filter(|c| c.true_up == Some(true))
        .map(|c| c.name.clone())
        .collect();
    if late.is_empty() {
        return Ok(0.0);
    }
    let started = Instant::now();
    true_up(db, table, &late).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// One snapshot per queue of what the count just wrote on its row, throughput included.
async fn record(db: &Db, queues: &[String]) -> Result<()> {
    let sql = &db.sql.stats;
    let started = Instant::now();
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    if let Some(lock) = &sql.record_lock {
        exec.execute(lock, Vec::new()).await?;
    }
    exec.execute(&sql.record, vec![Param::Texts(Some(queues.to_vec()))])
        .await?;
    tx.commit().await?;
    note_statement(started, &sql.record, || json!([queues]));
    Ok(())
}

/// Raises the recent snapshots of `queues` that fell short because jobs committed after the pass
/// that counted their window (a transaction older than the lag). Under the stats try-lock, so two
/// instances do not both scan; answers how many snapshots were raised (none when another instance
/// held the lock).
pub async fn true_up(db: &Db, table: &str, queues: &[String]) -> Result<u64> {
    let sql = db.sql.stats.true_up(table);
    let started = Instant::now();
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    let counting = &db.sql.counting;
    let got = match (&counting.lock, &counting.try_lock) {
        // A backend without advisory locks trues up without pg-boss's guard, as pg-boss does.
        (None, _) | (_, None) => true,
        (Some(wait), _) if db.handle.is_caller() => {
            exec.execute(wait, Vec::new()).await?;
            true
        }
        (_, Some(try_lock)) => {
            let (got,): (bool,) = exec.fetch_one(try_lock, Vec::new()).await?;
            got
        }
    };
    let raised = if got {
        let (raised,): (i64,) = exec
            .fetch_one(&sql, vec![Param::Texts(Some(queues.to_vec()))])
            .await?;
        raised
    } else {
        0
    };
    tx.commit().await?;
    note_statement(started, &sql, || json!([queues]));
    Ok(raised.max(0) as u64)
}
