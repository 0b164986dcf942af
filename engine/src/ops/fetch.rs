//! Fetching: claiming queued jobs for a caller or a worker, and handing claimed jobs back.

use uuid::Uuid;

use crate::error::Result;
use crate::model::fetch::{ClaimedJob, FetchRequest, FetchedBatch};
use crate::ops::queues::Queue;
use crate::sql::exec::{CallerDb, Param};
use crate::sql::fetch::ClaimShape;
use crate::sql::job_statements::JobStatement;
use crate::sql::Db;

/// Claims up to `batch_size` jobs (see `sql::fetch` for which), through the caller's db when given.
pub async fn fetch(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    request: &FetchRequest,
) -> Result<FetchedBatch> {
    let shape = ClaimShape::of(request);
    let sql = JobStatement::Claim(shape).cached(&queue.statements, db.schema(), queue);
    let groups = request.group_concurrency.as_ref();
    let params = vec![
        Param::text(queue.name.as_str()),
        Param::Int8(request.batch_size),
        Param::Int4(request.min_priority.unwrap_or(0) as i32),
        Param::Int4(request.max_priority.unwrap_or(0) as i32),
        Param::Texts(request.ignore_groups.clone()),
        Param::Text(groups.and_then(|g| g.default.clone())),
        Param::Text(groups.and_then(|g| g.tiers.clone())),
    ];
    type Row = (
        Uuid,
        i32,
        i32,
        Option<i32>,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<Row> = match db.exec_for(caller).fetch_all(&sql, params).await {
        Ok(rows) => rows,
        // A concurrent fetch won a policy slot first: nothing to claim this time. (In a caller's
        // transaction the failure has aborted it, so there it is the caller's to see.)
        Err(e) if !e.is_callers() && e.sql_state().as_deref() == Some("23505") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let jobs = rows
        .into_iter()
        .map(
            |(id, retry_count, expire_seconds, heartbeat_seconds, group_id, group_tier, json)| {
                ClaimedJob {
                    id,
                    retry_count,
                    expire_seconds,
                    heartbeat_seconds,
                    group_id,
                    group_tier,
                    json,
                }
            },
        )
        .collect();
    Ok(FetchedBatch { jobs })
}

/// Puts claimed jobs back as they were before the claim: queued, never started.
pub async fn restore(db: &Db, queue: &Queue, ids: Vec<Uuid>) -> Result<()> {
    let sql = JobStatement::Restore.cached(&queue.statements, db.schema(), queue);
    let params = vec![Param::text(queue.name.as_str()), Param::Uuids(ids)];
    db.exec().execute(&sql, params).await?;
    Ok(())
}
