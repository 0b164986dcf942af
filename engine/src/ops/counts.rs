//! Counting queues: a count of a job table's queues written onto their rows (see
//! sql/counting.rs), under pg-boss's stats try-lock so two instances never count a schema at once.
//! The monitor counts every pass; `getQueueStats()` counts a queue whose cached counts are stale.

use std::time::Instant;

use serde_json::json;

use crate::error::Result;
use crate::ops::warnings::note_statement;
use crate::sql::counting::Throughput;
use crate::sql::exec::{Exec, Param, Tx};
use crate::sql::Db;

/// How a count takes pg-boss's stats try-lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountLock {
    /// A monitor pass: when another instance is counting, hand the claim back.
    Monitor,
    /// A read of a stale cache (getQueueStats): when another instance is counting, change nothing.
    Read,
    /// A queue never counted yet: count without the lock, there is no cache to fall back on.
    Unlocked,
}

/// A queue whose counts a count wrote, as the monitor needs it next.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    pub name: String,
    pub queued: i32,
    /// The queue's own queue_backlog threshold (0: the instance's).
    pub warning_queued: i32,
    /// With throughput: whether jobs committed late into windows already recorded.
    pub true_up: Option<bool>,
    /// How long the count held its snapshot, by the server's clock.
    pub pin_seconds: f64,
}

/// Writes the queues' counts onto their rows, with their throughput when given. When another
/// instance holds the stats try-lock nothing is counted twice and the answer is `None` (a monitor
/// pass also hands its claim back).
pub async fn refresh_counts_with(
    db: &Db,
    table: &str,
    queues: &[String],
    lock: CountLock,
    throughput: Option<Throughput>,
) -> Result<Option<Vec<Counted>>> {
    let sql = &db.sql.counting;
    let names = || Param::Texts(Some(queues.to_vec()));
    let started = Instant::now();
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    // A backend without advisory locks counts without pg-boss's guard, as pg-boss does.
    let got = match (lock, &sql.lock, &sql.try_lock) {
        (CountLock::Unlocked, _, _) | (_, None, _) | (_, _, None) => true,
        (_, Some(wait), Some(_)) if db.handle.is_caller() => {
            exec.execute(wait, Vec::new()).await?;
            true
        }
        (_, _, Some(try_lock)) => {
            let (got,): (bool,) = exec.fetch_one(try_lock, Vec::new()).await?;
            got
        }
    };
    if !got {
        if lock == CountLock::Monitor {
            exec.execute(&sql.release_monitor_claim, vec![names()])
                .await?;
        }
        tx.commit().await?;
        return Ok(None);
    }
    let count = sql.count(table, lock == CountLock::Monitor, throughput);
    let rows: Vec<(String, i32, i32, Option<bool>, f64)> =
        exec.fetch_all(&count, vec![names()]).await?;
    tx.commit().await?;
    note_statement(started, &count, || json!([queues]));
    let counted = rows
        .into_iter()
        .map(
            |(name, queued, warning_queued, true_up, pin_seconds)| Counted {
                name,
                queued,
                warning_queued,
                true_up,
                pin_seconds,
            },
        )
        .collect();
    Ok(Some(counted))
}
