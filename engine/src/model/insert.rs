//! The jobs of one `insert()`. As in pg-boss, insert() is the raw path: it checks only that ids
//! are not repeated and that groups are well formed; every other option goes to PostgreSQL as
//! given, and is read here as its cast reads it.

use std::collections::HashSet;

use serde_json::Value;

use super::job::{JobOptions, NewJob};
use super::send::{pin_zoneless_date_time, validate_group};
use crate::error::{Error, ErrorCode, Result};

/// Reads `insert()`'s list of jobs.
pub fn jobs_from_json(jobs: &[Value]) -> Result<Vec<NewJob>> {
    let mut seen = HashSet::new();
    let mut read = Vec::with_capacity(jobs.len());
    for job in jobs {
        let job = job
            .as_object()
            .ok_or_else(|| Error::invalid("each job must be an object"))?;
        if let Some(id) = job.get("id").filter(|v| !v.is_null()) {
            let shown = id
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string());
            if !seen.insert(shown.clone()) {
                // A plain Error in pg-boss, not an assertion.
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!("duplicate job id in insert batch: {shown}"),
                ));
            }
        }
        validate_group(job)?;
        // A date time string is pinned to UTC as send() pins it; a number is seconds, whatever
        // its sign; anything else is for PostgreSQL to read.
        let start_after = match job.get("startAfter") {
            Some(Value::String(s)) => Some(pin_zoneless_date_time(s)),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => super::unchecked::text(other),
            None => None,
        };
        read.push(NewJob {
            data: job.get("data").cloned().unwrap_or(Value::Null),
            options: JobOptions::read(job, start_after)?,
        });
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(jobs: Value) -> String {
        jobs_from_json(jobs.as_array().unwrap())
            .unwrap_err()
            .message
    }

    #[test]
    fn only_ids_and_groups_are_checked() {
        let id = "11111111-1111-4111-8111-111111111111";
        assert_eq!(
            message(json!([{"id": id}, {"id": id}])),
            format!("duplicate job id in insert batch: {id}")
        );
        assert_eq!(
            message(json!([{"group": {"id": ""}}])),
            "group.id must be a non-empty string"
        );
        assert_eq!(message(json!([1])), "each job must be an object");
        let jobs = jobs_from_json(
            json!([{"retryLimit": -1, "startAfter": -5, "data": {"n": 1}}, {}])
                .as_array()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(jobs[0].options.retry_limit, Some(-1));
        assert_eq!(jobs[0].options.start_after.as_deref(), Some("-5"));
        assert_eq!(jobs[0].data, json!({"n": 1}));
        assert_eq!(jobs[1].data, Value::Null);
    }
}
