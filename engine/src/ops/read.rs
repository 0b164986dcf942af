//! Reading jobs back: `getJobById()` and `findJobs()`, as pg-boss's JSON.

use crate::error::ensure;
use crate::error::Result;
use crate::model::find::FindJobsRequest;
use crate::model::targets::parse_uuid;
use crate::ops::queues::Queue;
use crate::sql::exec::{CallerDb, Param};
use crate::sql::job_statements::JobStatement;
use crate::sql::Db;

/// One job by id, as JSON text, or `None` (also for an id no job can have).
pub async fn get_job_by_id(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    id: Option<&str>,
) -> Result<Option<String>> {
    // pg-boss hands the id to PostgreSQL: no id (null) finds no job, and the uuid cast refuses a
    // malformed one (22P02).
    let Some(id) = id else {
        return Ok(None);
    };
    let id = parse_uuid(id)?;
    let sql = JobStatement::GetJobById.cached(&queue.statements, &db.sql, queue);
    let params = vec![Param::text(queue.name.as_str()), Param::Uuid(Some(id))];
    let row: Option<(String,)> = db.exec_for(caller).fetch_optional(&sql, params).await?;
    Ok(row.map(|(job,)| job))
}

/// `findJobs()`: the JSON text of an array of jobs, oldest first.
pub async fn find_jobs(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    request: &FindJobsRequest,
) -> Result<String> {
    let at = db.exec_for(caller);
    if let Some(after) = request.after {
        let sql = JobStatement::JobExists.cached(&queue.statements, &db.sql, queue);
        let params = vec![Param::text(queue.name.as_str()), Param::Uuid(Some(after))];
        let exists: Option<(i32,)> = at.fetch_optional(&sql, params).await?;
        ensure!(
            exists.is_some(),
            "findJobs: after names a row that no longer exists"
        );
    }
    let sql = JobStatement::FindJobs.cached(&queue.statements, &db.sql, queue);
    let params = vec![
        Param::text(queue.name.as_str()),
        Param::Uuid(request.id),
        Param::Text(request.key.clone()),
        Param::Text(request.data.clone()),
        Param::Bool(request.queued),
        Param::Uuid(request.after),
        Param::Int8(request.limit),
    ];
    let (jobs,): (String,) = at.fetch_one(&sql, params).await?;
    Ok(jobs)
}
