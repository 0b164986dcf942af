//! What a worker calls with each batch, what the call answers, and how a per-job answer is
//! turned into one settle per job.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use serde_json::json;
use uuid::Uuid;

use crate::model::fetch::ClaimedJob;
use crate::model::settle::{JobResultStatus, JobSettle};

/// How a handler finished with a batch.
#[derive(Debug, Clone)]
pub enum HandlerOutcome {
    /// Resolved; the output (JSON text) is stored when the batch held one job. A `perJobResults`
    /// worker takes this as a broken contract and fails the whole batch.
    Completed(Option<String>),
    /// Threw or rejected; the serialized error (JSON text) becomes the jobs' output.
    Failed(String),
    /// Resolved with one result per job (`perJobResults`): each job is settled on its own. A job
    /// of the batch with no result fails; results for jobs outside the batch are ignored, and of
    /// several for one job the last counts. Honoured whatever the worker's options.
    PerJob(Vec<JobResult>),
}

/// One job's outcome in a `HandlerOutcome::PerJob` answer (pg-boss's `JobResult`).
#[derive(Debug, Clone)]
pub struct JobResult {
    /// `id`: the job, one of the batch.
    pub id: Uuid,
    /// `status`: how it is settled.
    pub status: JobResultStatus,
    /// JSON text stored as the job's output: the completion result or the failure detail.
    pub output: Option<String>,
}

/// What [`JobHandler::handle`] answers: a boxed future of the outcome.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerOutcome> + Send>>;

/// What `work()` calls for every fetched batch. The engine never knows what is behind it: the
/// Node binding calls a JavaScript function, a Rust service can implement it directly.
///
/// The batch's jobs are settled with the outcome once the future resolves. A handler that runs
/// past the jobs' expiration (`expireInSeconds`) is given up on: its jobs are failed at once
/// ("handler execution exceeded ...s"), its outcome is ignored, and the worker fetches nothing
/// more until the future ends (or the worker stops).
pub trait JobHandler: Send + Sync + 'static {
    /// Handles one batch. `jobs_json` is the JSON text of an array of jobs in pg-boss's shape:
    /// `{ id, name, data, retryCount, expireInSeconds, heartbeatSeconds, groupId, groupTier }`,
    /// plus every other column with `includeMetadata`.
    fn handle(&self, jobs_json: String) -> HandlerFuture;

    /// Handles one batch of a transactional worker (`work({ transactional: true })`): the
    /// handler's statements run in `tx` (`Boss::execute_in_transaction`), and the batch's
    /// completion joins them there, so both commit or neither does. A handler that cannot take a
    /// transaction (the default) fails the batch.
    fn handle_in_transaction(&self, jobs_json: String, tx: super::HandlerTx) -> HandlerFuture {
        let _ = (jobs_json, tx);
        Box::pin(async {
            HandlerOutcome::Failed(error_output(
                "this handler does not take a transaction: implement JobHandler::handle_in_transaction",
            ))
        })
    }
}

/// pg-boss's message for a `perJobResults` handler that did not answer with a list.
pub const NOT_A_RESULT_LIST: &str =
    "perJobResults handler must resolve with an array of job results";
/// pg-boss's message for a job its `perJobResults` handler said nothing (valid) about.
pub const NO_DISPOSITION: &str = "no disposition returned by handler";

/// An error as a handler's throw is stored, for failures the engine makes up itself.
pub fn error_output(message: &str) -> String {
    json!({ "name": "Error", "message": message, "stack": format!("Error: {message}") }).to_string()
}

/// How each job of a batch is settled after a per-job answer, in batch order, and which of them
/// the handler answered for (the rest fail with `NO_DISPOSITION`).
#[derive(Debug)]
pub struct PerJobPlan {
    /// One settle per job of the batch.
    pub settles: Vec<JobSettle>,
    /// Whether the handler answered for each job.
    pub answered: Vec<bool>,
}

impl PerJobPlan {
    /// The plan for `results` over the batch `jobs`.
    pub fn new(jobs: &[ClaimedJob], results: Vec<JobResult>) -> PerJobPlan {
        let position: HashMap<Uuid, usize> =
            jobs.iter().enumerate().map(|(i, j)| (j.id, i)).collect();
        let mut chosen: Vec<Option<JobResult>> = vec![None; jobs.len()];
        for result in results {
            if let Some(&i) = position.get(&result.id) {
                chosen[i] = Some(result);
            }
        }
        let answered = chosen.iter().map(Option::is_some).collect();
        let settles = jobs
            .iter()
            .zip(chosen)
            .map(|(job, result)| {
                let (status, output) = match result {
                    Some(r) => (r.status, r.output),
                    None => (JobResultStatus::Failed, Some(error_output(NO_DISPOSITION))),
                };
                JobSettle {
                    id: job.id,
                    retry_count: Some(job.retry_count),
                    status,
                    output,
                }
            })
            .collect();
        PerJobPlan { settles, answered }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn claimed(retry_count: i32) -> ClaimedJob {
        ClaimedJob {
            id: Uuid::new_v4(),
            retry_count,
            expire_seconds: 900,
            heartbeat_seconds: None,
            group_id: None,
            group_tier: None,
            json: "{}".into(),
        }
    }

    fn result(id: Uuid, status: JobResultStatus, output: &str) -> JobResult {
        JobResult {
            id,
            status,
            output: Some(output.into()),
        }
    }

    #[test]
    fn a_per_job_plan_follows_the_batch_and_the_last_result_for_each_job() {
        let jobs = [claimed(0), claimed(3), claimed(1)];
        let stranger = Uuid::new_v4();
        let plan = PerJobPlan::new(
            &jobs,
            vec![
                result(jobs[2].id, JobResultStatus::Completed, "1"),
                result(stranger, JobResultStatus::Completed, "2"),
                result(jobs[0].id, JobResultStatus::Completed, "3"),
                result(jobs[0].id, JobResultStatus::DeadLetter, "4"),
            ],
        );
        let summary: Vec<_> = plan
            .settles
            .iter()
            .map(|s| (s.id, s.retry_count, s.status))
            .collect();
        assert_eq!(
            summary,
            vec![
                (jobs[0].id, Some(0), JobResultStatus::DeadLetter),
                (jobs[1].id, Some(3), JobResultStatus::Failed),
                (jobs[2].id, Some(1), JobResultStatus::Completed),
            ]
        );
        assert_eq!(plan.answered, vec![true, false, true]);
        assert_eq!(plan.settles[0].output.as_deref(), Some("4"));
        let missing: Value =
            serde_json::from_str(plan.settles[1].output.as_deref().unwrap()).unwrap();
        assert_eq!(missing["message"], NO_DISPOSITION);
        assert_eq!(missing["name"], "Error");
    }
}
