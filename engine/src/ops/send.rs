//! Sending jobs: `send()` (coalesced with concurrent sends, or alone through a caller's db),
//! `insert()`, the cron pass's slotted insert, and how an insert's failures are said.

use serde_json::Value;
use uuid::Uuid;

use crate::ensure;
use crate::error::{Error, Result};
use crate::model::job::{JobOptions, NewJob};
use crate::model::send::SendOptions;
use crate::ops::coalesce::SendCoalescer;
use crate::ops::queues::Queue;
use crate::sql::exec::{CallerDb, Exec, ExecError, Param};
use crate::sql::insert::{records_json, InsertShape};
use crate::sql::job_statements::JobStatement;
use crate::sql::Db;

/// `send()`: one job; `None` when a policy or throttle refused it. With a caller's handle (the
/// `db` option) the insert runs through it alone, since coalescing it with other sends would take
/// it out of the caller's transaction.
pub async fn send(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    sends: &SendCoalescer,
    data: Value,
    options: SendOptions,
) -> Result<Option<Uuid>> {
    require_key_for_strict_fifo(queue, &options.job)?;
    // Only a send that may go again into the next slot keeps a copy for it.
    let next_slot = match (options.singleton_next_slot, options.job.singleton_seconds) {
        (true, Some(seconds)) => Some((seconds, data.clone(), options.job.clone())),
        _ => None,
    };
    let job = NewJob {
        data,
        options: options.job,
    };
    if let Some(id) = insert_one(db, caller, queue, sends, job).await? {
        return Ok(Some(id));
    }
    let Some((seconds, data, mut options)) = next_slot else {
        return Ok(None);
    };
    // The current slot is taken: throttle into the next one, starting when it opens.
    options.start_after = Some(next_slot_start(db, seconds).await?.to_string());
    options.singleton_offset = Some(seconds);
    insert_one(db, caller, queue, sends, NewJob { data, options }).await
}

async fn insert_one(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    sends: &SendCoalescer,
    job: NewJob,
) -> Result<Option<Uuid>> {
    match caller {
        None => sends.insert_one(db, queue, job).await,
        Some(_) => {
            let ids = insert_jobs(db, db.exec_for(caller), queue, &[job], true).await?;
            Ok(ids.first().copied())
        }
    }
}

/// `insert()`: many jobs in one statement. Returns the new ids when asked to.
pub async fn insert(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    jobs: &[NewJob],
    return_id: bool,
) -> Result<Option<Vec<Uuid>>> {
    for job in jobs {
        require_key_for_strict_fifo(queue, &job.options)?;
    }
    if jobs.is_empty() {
        return Ok(None);
    }
    let ids = insert_jobs(db, db.exec_for(caller), queue, jobs, return_id).await?;
    Ok((return_id && !ids.is_empty()).then_some(ids))
}

/// Inserts `jobs` into `queue` through `at`; answers their ids when `returning`.
pub(crate) async fn insert_jobs(
    db: &Db,
    at: Exec<'_>,
    queue: &Queue,
    jobs: &[NewJob],
    returning: bool,
) -> Result<Vec<Uuid>> {
    let shape = InsertShape {
        returning,
        by_key: false,
        slots: false,
    };
    let sql = JobStatement::Insert(shape).cached(&queue.statements, db.schema(), queue);
    run_insert(at, &sql, &queue.name, records_json(jobs), returning).await
}

/// Runs an insert statement over `records` (the recordset's JSON text).
pub(crate) async fn run_insert(
    at: Exec<'_>,
    sql: &str,
    queue: &str,
    records: String,
    returning: bool,
) -> Result<Vec<Uuid>> {
    let params = vec![Param::Text(Some(records)), Param::text(queue)];
    if returning {
        let rows: Vec<(Uuid,)> = at
            .fetch_all(sql, params)
            .await
            .map_err(|e| insert_error(e, queue))?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    } else {
        at.execute(sql, params)
            .await
            .map_err(|e| insert_error(e, queue))?;
        Ok(Vec::new())
    }
}

/// The cron pass's insert into its forwarding queue: records already in recordset form, each
/// naming its throttle slot in `__singletonSlot`. A slot another instance filed first is refused
/// by the queue's singleton index, which is what keeps an occurrence to one job.
pub async fn insert_slotted(db: &Db, queue: &Queue, records: &[Value]) -> Result<()> {
    let shape = InsertShape {
        returning: false,
        by_key: false,
        slots: true,
    };
    let sql = JobStatement::Insert(shape).cached(&queue.statements, db.schema(), queue);
    let records = serde_json::to_string(records)?;
    run_insert(db.exec(), &sql, &queue.name, records, false).await?;
    Ok(())
}

fn require_key_for_strict_fifo(queue: &Queue, job: &JobOptions) -> Result<()> {
    ensure!(
        queue.policy != "key_strict_fifo" || job.has_singleton_key(),
        "key_strict_fifo queues require a singletonKey"
    );
    Ok(())
}

/// Seconds from now until just inside the throttle slot after the current one, by the database's
/// clock (so every instance agrees).
async fn next_slot_start(db: &Db, seconds: i32) -> Result<i64> {
    let (now_ms,): (i64,) = db.exec().fetch_one(&db.sql.jobs.clock_ms, vec![]).await?;
    Ok(next_slot_delay(now_ms as f64, i64::from(seconds)))
}

/// At least 1, and one more for slots over a second, as pg-boss.
fn next_slot_delay(now_ms: f64, seconds: i64) -> i64 {
    let slot_ms = (seconds * 1000) as f64;
    let slot_start = (now_ms / slot_ms).floor() * slot_ms;
    let into_slot = ((now_ms - slot_start) / 1000.0).floor() as i64;
    let delay = match seconds - into_slot {
        0 => 1,
        d => d,
    };
    if seconds > 1 {
        delay + 1
    } else {
        delay
    }
}

/// An insert's errors, said as pg-boss says them: a missing queue, or a missing dead letter queue
/// by name (the foreign key's detail names it: `Key (dead_letter)=(x) is not present ...`).
/// On the engine's pool a missing queue carries its code, which publish() uses to pass over a
/// subscriber deleted meanwhile. Through a caller's db it does not: the caller's transaction is
/// now unusable, and publish() reporting success would hide that.
pub fn insert_error(err: impl Into<ExecError>, queue: &str) -> Error {
    let err = err.into();
    if err.sql_state().as_deref() != Some("23503") {
        return Error::from(err);
    }
    let constraint = err.constraint().or_else(|| {
        let detail = err.detail()?;
        Some(
            detail
                .split_once("foreign key constraint \"")?
                .1
                .split_once('"')?
                .0
                .to_string(),
        )
    });
    match constraint.as_deref() {
        Some("q_fkey") if err.is_callers() => {
            Error::internal(format!("Queue {queue} does not exist"))
        }
        Some("q_fkey") => crate::model::queue::queue_not_found(queue),
        Some("dlq_fkey") => {
            let missing = err.detail().and_then(|detail| {
                let value = detail
                    .split_once(")=(")?
                    .1
                    .split_once(") is not present")?
                    .0;
                Some(value.trim_matches('\'').to_string())
            });
            Error::internal(match missing {
                Some(name) => format!("Dead letter queue {name} does not exist"),
                None => "Dead letter queue does not exist".to_string(),
            })
        }
        _ => Error::from(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_slot_starts_when_the_current_one_ends() {
        // 25 s into a 60 s slot: 35 s left, plus one to land inside the next slot.
        assert_eq!(next_slot_delay(60_000.0 * 10.0 + 25_000.0, 60), 36);
        // One-second slots never wait zero.
        assert_eq!(next_slot_delay(1_000.0 * 7.0 + 500.0, 1), 1);
    }
}
