//! Which jobs a settle or a command addresses, the commands there are, and pg-boss's answer to
//! them.

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::fetch::ClaimedJob;
use crate::config::js::{to_js_string, truthy};
use crate::error::ensure;
use crate::error::{Error, ErrorCode, Result};

/// Which jobs a settle addresses: plain ids, or ids with the attempt (`retryCount`) that was
/// fetched, which fences the settle to that attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct JobTargets {
    /// The jobs.
    pub ids: Vec<Uuid>,
    /// `id:retryCount` of each job, when the settle is fenced to the attempts.
    pub attempts: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct JobAttempt {
    id: String,
    #[serde(rename = "retryCount")]
    retry_count: i64,
}

impl JobTargets {
    /// Accepts what `complete()`/`fail()` accept: an id, ids, a job or jobs ({ id, retryCount }).
    pub fn from_value(value: &Value, method: &str) -> Result<JobTargets> {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Null => vec![],
            Value::String(s) if s.is_empty() => vec![],
            other => vec![other],
        };
        ensure!(!items.is_empty(), "{method}() requires an id");
        if items.iter().all(|v| v.is_string()) {
            let ids = items
                .iter()
                .map(|v| parse_uuid(v.as_str().unwrap_or_default()))
                .collect::<Result<_>>()?;
            return Ok(JobTargets {
                ids,
                attempts: None,
            });
        }
        let attempts: Vec<JobAttempt> = items
            .iter()
            .map(|v| serde_json::from_value::<JobAttempt>((*v).clone()).ok().filter(|a| a.retry_count >= 0))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{method}() requires either ids or jobs with an id and an integer retryCount, not a mix"
                ))
            })?;
        let ids: Vec<Uuid> = attempts
            .iter()
            .map(|a| parse_uuid(&a.id))
            .collect::<Result<_>>()?;
        let pairs = ids
            .iter()
            .zip(&attempts)
            .map(|(id, a)| format!("{id}:{}", a.retry_count))
            .collect();
        Ok(JobTargets {
            ids,
            attempts: Some(pairs),
        })
    }

    /// The jobs a worker claimed, each at the attempt it claimed.
    #[doc(hidden)]
    pub fn for_claimed(jobs: &[ClaimedJob]) -> JobTargets {
        JobTargets {
            ids: jobs.iter().map(|j| j.id).collect(),
            attempts: Some(
                jobs.iter()
                    .map(|j| format!("{}:{}", j.id, j.retry_count))
                    .collect(),
            ),
        }
    }

    /// Whether the settle only touches the jobs at the attempts given.
    pub fn fenced(&self) -> bool {
        self.attempts.is_some()
    }

    /// Each job with the attempt it is fenced to (`None` when unfenced), in order; `None` for an
    /// attempt no job can be at (a retry count past PostgreSQL's int).
    pub fn each_attempt(&self) -> Option<Vec<(Uuid, Option<i32>)>> {
        let Some(attempts) = &self.attempts else {
            return Some(self.ids.iter().map(|id| (*id, None)).collect());
        };
        self.ids
            .iter()
            .zip(attempts)
            .map(|(id, attempt)| {
                let (_, count) = attempt.rsplit_once(':')?;
                Some((*id, Some(count.parse().ok()?)))
            })
            .collect()
    }

    /// The same jobs, any attempt.
    pub fn unfenced(mut self) -> JobTargets {
        self.attempts = None;
        self
    }
}

/// The ids of `resume()` and `retry()`, which pg-boss hands to PostgreSQL as they come: a null
/// matches no job, and anything but a uuid string fails the uuid cast (22P02).
fn plain_ids(value: &Value, method: &str) -> Result<JobTargets> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    ensure!(
        truthy(Some(value)) && !items.is_empty(),
        "{method}() requires an id"
    );
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Null => {}
            Value::String(s) => ids.push(parse_uuid(s)?),
            Value::Object(_) => return Err(uuid_syntax(&item.to_string())),
            other => return Err(uuid_syntax(&to_js_string(other))),
        }
    }
    Ok(JobTargets {
        ids,
        attempts: None,
    })
}

fn uuid_syntax(text: &str) -> Error {
    Error {
        code: ErrorCode::Database,
        message: format!("invalid input syntax for type uuid: \"{text}\""),
        sql_state: Some("22P02".into()),
    }
}

/// A malformed id fails as PostgreSQL's uuid cast fails in pg-boss: a database error, 22P02.
pub fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s.trim_matches(|c| c == '{' || c == '}')).map_err(|_| uuid_syntax(s))
}

/// The commands that act on jobs by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobCommand {
    /// `cancel()`: unfinished jobs (created, retry, active) become `cancelled`.
    Cancel,
    /// `resume()`: cancelled jobs go back to `created`.
    Resume,
    /// `retry()`: failed jobs go back to `retry`, with one more retry allowed.
    Retry,
    /// `deleteJob()`: the jobs are deleted.
    Delete,
    /// `touch()`: active jobs record a heartbeat now.
    Touch,
}

impl JobCommand {
    /// pg-boss's method name (`cancel`, `resume`, `retry`, `deleteJob`, `touch`).
    pub fn method(self) -> &'static str {
        match self {
            JobCommand::Cancel => "cancel",
            JobCommand::Resume => "resume",
            JobCommand::Retry => "retry",
            JobCommand::Delete => "deleteJob",
            JobCommand::Touch => "touch",
        }
    }

    /// The command pg-boss's method `method` runs.
    pub fn from_method(method: &str) -> Option<JobCommand> {
        [
            JobCommand::Cancel,
            JobCommand::Resume,
            JobCommand::Retry,
            JobCommand::Delete,
            JobCommand::Touch,
        ]
        .into_iter()
        .find(|c| c.method() == method)
    }

    /// The jobs the command acts on: resume and retry take plain ids, since an attempt means
    /// nothing to a job that is not running.
    pub fn targets(self, value: &Value) -> Result<JobTargets> {
        match self {
            JobCommand::Resume | JobCommand::Retry => plain_ids(value, self.method()),
            _ => JobTargets::from_value(value, self.method()),
        }
    }
}

/// Which jobs a bulk delete removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stored {
    /// Not started yet (`created`, `retry`).
    Queued,
    /// Finished (`completed`, `cancelled`, `failed`).
    Finished,
    /// Every job.
    All,
}

/// pg-boss's answer to complete/fail/cancel and friends.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResponse {
    /// `jobs`: the ids the call named (`requested` is their count).
    pub jobs: Vec<Uuid>,
    /// `affected`: how many of them the command changed.
    pub affected: i64,
    /// `settled`: the ids of the jobs it changed.
    pub settled: Vec<Uuid>,
}

impl CommandResponse {
    /// pg-boss's shape: `{ jobs, requested, affected, settled }`.
    pub fn to_json(&self) -> Value {
        json!({
            "jobs": self.jobs,
            "requested": self.jobs.len(),
            "affected": self.affected,
            "settled": self.settled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f0b1a52-3f55-4f3c-9c44-3a4de37d3f10";

    #[test]
    fn targets_are_ids_or_attempts_never_a_mix() {
        let plain = JobTargets::from_value(&json!(ID), "complete").unwrap();
        assert!(!plain.fenced());
        let fenced = JobTargets::from_value(&json!([{"id": ID, "retryCount": 2}]), "fail").unwrap();
        assert_eq!(fenced.attempts, Some(vec![format!("{ID}:2")]));
        let id = Uuid::parse_str(ID).unwrap();
        assert_eq!(fenced.each_attempt(), Some(vec![(id, Some(2))]));
        assert_eq!(plain.each_attempt(), Some(vec![(id, None)]));
        let beyond = json!([{"id": ID, "retryCount": 1_u64 << 40}]);
        let beyond = JobTargets::from_value(&beyond, "fail").unwrap();
        assert_eq!(beyond.each_attempt(), None);
        assert_eq!(
            JobTargets::from_value(&json!([ID, {"id": ID, "retryCount": 2}]), "fail")
                .unwrap_err()
                .message,
            "fail() requires either ids or jobs with an id and an integer retryCount, not a mix"
        );
        assert_eq!(
            JobTargets::from_value(&json!(""), "cancel")
                .unwrap_err()
                .message,
            "cancel() requires an id"
        );
        let bad = JobTargets::from_value(&json!("nope"), "complete").unwrap_err();
        assert_eq!(bad.sql_state.as_deref(), Some("22P02"));
        // resume() and retry() hand their ids to PostgreSQL unchecked: a job object fails the uuid
        // cast, a null matches nothing, and nothing at all is an assertion.
        let retry = JobCommand::Retry.targets(&json!([{"id": ID, "retryCount": 1}]));
        assert_eq!(retry.unwrap_err().sql_state.as_deref(), Some("22P02"));
        let resume = JobCommand::Resume.targets(&json!([ID, null])).unwrap();
        assert!(!resume.fenced());
        assert_eq!(resume.ids.len(), 1);
        assert_eq!(
            JobCommand::Resume.targets(&json!(0)).unwrap_err().message,
            "resume() requires an id"
        );
        assert_eq!(
            JobCommand::from_method("deleteJob"),
            Some(JobCommand::Delete)
        );
    }
}
