//! The options of `findJobs()`, checked with pg-boss's rules and messages.

use serde_json::Value;
use uuid::Uuid;

use super::targets::parse_uuid;
use crate::config::js::{bool_opt, is_integer, present, string_opt, Options};
use crate::error::{Error, Result};

/// What `findJobs()` looks for: jobs of a queue by id, singleton key, data containment and/or
/// queued state, oldest first, a page at a time. `Default` matches every job of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct FindJobsRequest {
    /// `limit`, default 1000 (1 to 100000): the most jobs to answer.
    pub limit: i64,
    /// `id`: only this job.
    pub id: Option<Uuid>,
    /// An id was given that no job can have (not a uuid): nothing matches.
    pub matches_nothing: bool,
    /// `key`: only jobs with this `singletonKey`.
    pub key: Option<String>,
    /// `data`: JSON text the job's data must contain (PostgreSQL's `@>`).
    pub data: Option<String>,
    /// Only jobs that have not started.
    pub queued: bool,
    /// The page starts after this job (by creation, then id).
    pub after: Option<Uuid>,
}

impl Default for FindJobsRequest {
    fn default() -> Self {
        FindJobsRequest {
            limit: 1000,
            id: None,
            matches_nothing: false,
            key: None,
            data: None,
            queued: false,
            after: None,
        }
    }
}

impl FindJobsRequest {
    /// Reads the options in pg-boss's order: an id no job can have answers nothing at once,
    /// before the options after it are looked at.
    pub fn from_options(options: &Options) -> Result<FindJobsRequest> {
        let limit = match present(options, "limit") {
            None => 1000,
            Some(v) => v
                .as_i64()
                .filter(|l| (1..=100_000).contains(l) && is_integer(v))
                .ok_or_else(|| {
                    Error::invalid("findJobs: limit must be an integer between 1 and 100000")
                })?,
        };
        let id = match present(options, "id") {
            None => None,
            Some(v) => match v.as_str().map(parse_uuid) {
                Some(Ok(id)) => Some(id),
                _ => {
                    return Ok(FindJobsRequest {
                        limit,
                        matches_nothing: true,
                        ..FindJobsRequest::default()
                    })
                }
            },
        };
        let key = string_opt(options, "key")?;
        let data = present(options, "data").map(Value::to_string);
        let queued = bool_opt(options, "queued")?.unwrap_or(false);
        let after = match present(options, "after") {
            None => None,
            Some(v) => {
                let s = v
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| Error::invalid("findJobs: after must be a non-empty string"))?;
                Some(parse_uuid(s).map_err(|_| Error::invalid("findJobs: after must be a uuid"))?)
            }
        };
        Ok(FindJobsRequest {
            limit,
            id,
            matches_nothing: false,
            key,
            data,
            queued,
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<FindJobsRequest> {
        FindJobsRequest::from_options(v.as_object().unwrap())
    }

    #[test]
    fn find_options_are_read_like_pg_boss() {
        assert_eq!(read(json!({})).unwrap(), FindJobsRequest::default());
        assert_eq!(
            read(json!({"limit": 0})).unwrap_err().message,
            "findJobs: limit must be an integer between 1 and 100000"
        );
        // A bad id answers nothing before a bad `queued` is seen.
        assert!(
            read(json!({"id": "nope", "queued": "x"}))
                .unwrap()
                .matches_nothing
        );
        assert_eq!(
            read(json!({"queued": "x"})).unwrap_err().message,
            "queued must be a boolean"
        );
        assert_eq!(
            read(json!({"after": "x"})).unwrap_err().message,
            "findJobs: after must be a uuid"
        );
        let found = read(json!({"key": "k", "data": {"a": 1}, "queued": true})).unwrap();
        assert_eq!(found.data.as_deref(), Some("{\"a\":1}"));
        assert!(found.queued);
    }
}
