//! Sending jobs: `send()` (coalesced with concurrent sends, or alone through a caller's db),
//! `insert()`, the cron pass's slotted insert, and how an insert's failures are said.

use uuid::Uuid;

use crate::error::{Error, ErrorCode, Result};
use crate::model::job::{JobData, JobOptions, NewJob};
use crate::model::send::SendOptions;
use crate::ops::coalesce::SendCoalescer;
use crate::ops::insert::insert_jobs;
use crate::ops::queues::Queue;
use crate::sql::exec::CallerDb;
use crate::sql::Db;

/// `send()`: one job; `None` when a policy or throttle refused it. With a caller's handle (the
/// `db` option) the insert runs through it alone, since coalescing it with other sends would take
/// it out of the caller's transaction.
pub async fn send(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    sends: &SendCoalescer,
    data: JobData,
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

fn require_key_for_strict_fifo(queue: &Queue, job: &JobOptions) -> Result<()> {
    // A plain Error in pg-boss, not an assertion: the refusal is the queue's, not the argument's.
    if queue.policy == "key_strict_fifo" && !job.has_singleton_key() {
        return Err(Error::new(
            ErrorCode::Conflict,
            "key_strict_fifo queues require a singletonKey",
        ));
    }
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
