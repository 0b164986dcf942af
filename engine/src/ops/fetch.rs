//! Fetching: claiming queued jobs for a caller or a worker, and handing claimed jobs back.

use uuid::Uuid;

use crate::error::Result;
use crate::model::fetch::{ClaimedJob, FetchRequest, FetchedBatch};
use crate::model::targets::JobTargets;
use crate::ops::queues::Queue;
use crate::sql::exec::{CallerDb, Param};
use crate::sql::fetch::ClaimShape;
use crate::sql::job_statements::JobStatement;
use crate::sql::Db;

/// The columns of a claimed job, as the claim statement answers them.
type ClaimRow = (
    Uuid,
    i32,
    i32,
    Option<i32>,
    Option<String>,
    Option<String>,
    String,
);

fn claimed(
    (id, retry_count, expire_seconds, heartbeat_seconds, group_id, group_tier, json): ClaimRow,
) -> ClaimedJob {
    ClaimedJob {
        id,
        retry_count,
        expire_seconds,
        heartbeat_seconds,
        group_id,
        group_tier,
        json,
    }
}

fn claim_params(queue: &Queue, request: &FetchRequest) -> Vec<Param> {
    let groups = request.group_concurrency.as_ref();
    vec![
        Param::text(queue.name.as_str()),
        Param::Int8(request.batch_size),
        Param::Int4(request.min_priority.unwrap_or(0) as i32),
        Param::Int4(request.max_priority.unwrap_or(0) as i32),
        Param::Texts(request.ignore_groups.clone()),
        Param::Text(groups.and_then(|g| g.default.clone())),
        Param::Text(groups.and_then(|g| g.tiers.clone())),
    ]
}

/// Whether a worker may complete its last batch in the statement that claims its next
/// ([`complete_and_fetch`]): only where the claim does not count active jobs, since it does not
/// see the completions made in the same statement; and never where a statement may change a
/// table only once, as that one changes the job table twice.
pub fn completes_with_claim(db: &Db, queue: &Queue, request: &FetchRequest) -> bool {
    !db.sql.splits_mutations()
        && matches!(queue.policy.as_str(), "standard" | "short")
        && request.group_concurrency.is_none()
}

/// Completes `targets` (fenced to their attempts) with `output` and claims up to `batch_size`
/// jobs, in one statement on the pool: one round trip and one commit for a worker's settle and
/// its next fetch. Answers how many of `targets` it completed, and the batch. Only where
/// [`completes_with_claim`] says so.
pub async fn complete_and_fetch(
    db: &Db,
    queue: &Queue,
    request: &FetchRequest,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<(i64, FetchedBatch)> {
    let shape = ClaimShape::of(request);
    let sql = JobStatement::CompleteAndClaim(shape).cached(&queue.statements, &db.sql, queue);
    let mut params = claim_params(queue, request);
    params.extend([
        Param::Uuids(targets.ids.clone()),
        Param::Text(output.map(str::to_string)),
        Param::Texts(targets.attempts.clone()),
    ]);
    type Row = (
        i64,
        Option<Uuid>,
        Option<i32>,
        Option<i32>,
        Option<i32>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = db
        .exec()
        .planned_each_time()
        .fetch_all(&sql, params)
        .await?;
    let mut completed = 0;
    let mut jobs = Vec::with_capacity(rows.len());
    for (affected, id, retry_count, expire, heartbeat, group_id, tier, json) in rows {
        completed = affected;
        if let (Some(id), Some(retry_count), Some(expire), Some(json)) =
            (id, retry_count, expire, json)
        {
            jobs.push(claimed((
                id,
                retry_count,
                expire,
                heartbeat,
                group_id,
                tier,
                json,
            )));
        }
    }
    Ok((completed, FetchedBatch { jobs }))
}

/// Claims up to `batch_size` jobs (see `sql::fetch` for which), through the caller's db when given.
pub async fn fetch(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    request: &FetchRequest,
) -> Result<FetchedBatch> {
    let shape = ClaimShape::of(request);
    let sql = JobStatement::Claim(shape).cached(&queue.statements, &db.sql, queue);
    let params = claim_params(queue, request);
    let claim = db.exec_for(caller).planned_each_time();
    let rows: Vec<ClaimRow> = match claim.fetch_all(&sql, params).await {
        Ok(rows) => rows,
        // A concurrent fetch won a policy slot first: nothing to claim this time. (In a caller's
        // transaction the failure has aborted it, so there it is the caller's to see.)
        Err(e) if !e.is_callers() && e.sql_state().as_deref() == Some("23505") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let jobs = rows.into_iter().map(claimed).collect();
    Ok(FetchedBatch { jobs })
}

/// Puts claimed jobs back as they were before the claim: queued, never started.
pub async fn restore(db: &Db, queue: &Queue, ids: Vec<Uuid>) -> Result<()> {
    let sql = JobStatement::Restore.cached(&queue.statements, &db.sql, queue);
    let params = vec![Param::text(queue.name.as_str()), Param::Uuids(ids)];
    db.exec().execute(&sql, params).await?;
    Ok(())
}
