//! Writing new jobs: one insert statement for a batch of jobs (sends, inserts, the coalescer's
//! batches, the cron pass's slotted occurrences), and its errors said as pg-boss says them.

use serde_json::Value;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::job::NewJob;
use crate::ops::queues::Queue;
use crate::sql::exec::{Exec, ExecError, Param};
use crate::sql::insert::{records_json, InsertShape};
use crate::sql::job_statements::JobStatement;
use crate::sql::Db;

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
    let sql = JobStatement::Insert(shape).cached(&queue.statements, &db.sql, queue);
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
    let sql = JobStatement::Insert(shape).cached(&queue.statements, &db.sql, queue);
    let records = serde_json::to_string(records)?;
    run_insert(db.exec(), &sql, &queue.name, records, false).await?;
    Ok(())
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
