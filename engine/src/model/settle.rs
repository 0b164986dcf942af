//! How a job is settled: the output a `complete()`/`fail()` stores, and what a `perJobResults`
//! handler says of each job.

use serde_json::{json, Value};
use uuid::Uuid;

/// pg-boss's rule for turning a settle's `data` argument into a stored output (JSON text):
/// objects are kept, any other value is wrapped as `{ value }`, and nothing becomes null.
pub fn output_from_value(data: &Value) -> Option<String> {
    match data {
        Value::Null => None,
        Value::Object(_) => Some(data.to_string()),
        other => Some(json!({ "value": other }).to_string()),
    }
}

/// The same rule for a `data` argument already written as JSON text: an object's text is stored
/// as it came (PostgreSQL reads it), anything else is read to be wrapped or dropped.
pub fn output_from_json_text(text: String) -> crate::error::Result<Option<String>> {
    if text.trim_start().starts_with('{') {
        return Ok(Some(text));
    }
    Ok(output_from_value(&serde_json::from_str(&text)?))
}

/// What a `perJobResults` handler said of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResultStatus {
    /// Completes the job, with the result's output.
    Completed,
    /// Fails the job as any failure does: a retry while it has retries left.
    Failed,
    /// Fails the job for good, retries left or not, so it goes to its dead letter queue at once.
    DeadLetter,
}

impl JobResultStatus {
    /// The name pg-boss gives it (`JobResultStatus`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobResultStatus::Completed => "completed",
            JobResultStatus::Failed => "failed",
            JobResultStatus::DeadLetter => "deadletter",
        }
    }

    /// The status pg-boss names so (`completed`, `failed`, `deadletter`).
    pub fn from_name(name: &str) -> Option<JobResultStatus> {
        match name {
            "completed" => Some(JobResultStatus::Completed),
            "failed" => Some(JobResultStatus::Failed),
            "deadletter" => Some(JobResultStatus::DeadLetter),
            _ => None,
        }
    }
}

/// One job settled on its own: the attempt it was fetched at, how, and its output (JSON text).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettle {
    pub id: Uuid,
    /// The attempt the settle is fenced to; `None` for a call given plain ids, which settles the
    /// job at any attempt (a completion still only an active job, a failure any unfinished one).
    pub retry_count: Option<i32>,
    pub status: JobResultStatus,
    pub output: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_objects_or_wrapped_values() {
        let text = |t: &str| output_from_json_text(t.to_string()).unwrap();
        assert_eq!(text("null"), None);
        assert_eq!(
            text(r#"{"b": 2, "a": 1}"#).as_deref(),
            Some(r#"{"b": 2, "a": 1}"#)
        );
        assert_eq!(text("5").as_deref(), Some(r#"{"value":5}"#));
        assert_eq!(output_from_value(&json!(null)), None);
        assert_eq!(
            output_from_value(&json!({"a": 1})).as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            output_from_value(&json!(5)).as_deref(),
            Some("{\"value\":5}")
        );
        for status in [
            JobResultStatus::Completed,
            JobResultStatus::Failed,
            JobResultStatus::DeadLetter,
        ] {
            assert_eq!(JobResultStatus::from_name(status.as_str()), Some(status));
        }
    }
}
