//! The options of `findJobs()`, checked with pg-boss's rules and messages.

use serde_json::Value;
use uuid::Uuid;

use super::targets::parse_uuid;
use crate::config::js::{is_integer, present, to_js_string, truthy, Options};
use crate::error::{Error, Result};

/// A value as node-postgres sends it for a text parameter: a string as it is, an object as its
/// JSON, anything else as `String()` writes it. (An array goes as its JSON here where node-postgres
/// would send an array literal; neither is a uuid, and a key of either kind matches no job.)
fn pg_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(_) | Value::Array(_) => value.to_string(),
        other => to_js_string(other),
    }
}

/// What `findJobs()` looks for: jobs of a queue by id, singleton key, data containment and/or
/// queued state, oldest first, a page at a time. `Default` matches every job of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct FindJobsRequest {
    /// `limit`, default 1000 (1 to 100000): the most jobs to answer.
    pub limit: i64,
    /// `id`: only this job.
    pub id: Option<Uuid>,
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
            key: None,
            data: None,
            queued: false,
            after: None,
        }
    }
}

impl FindJobsRequest {
    /// Reads the options in pg-boss's order. The id, key and `queued` are not checked by pg-boss:
    /// the id and key go to PostgreSQL as text (so an id that is not a uuid fails its cast, 22P02)
    /// and `queued` is read for its truthiness.
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
        let key = present(options, "key").map(pg_text);
        let data = present(options, "data").map(Value::to_string);
        let queued = truthy(options.get("queued"));
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
        let id = match present(options, "id") {
            None => None,
            Some(v) => Some(parse_uuid(&pg_text(v))?),
        };
        Ok(FindJobsRequest {
            limit,
            id,
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
        // A bad id fails as PostgreSQL's uuid cast fails; `queued` is read for its truthiness.
        assert_eq!(
            read(json!({"id": 5})).unwrap_err().sql_state.as_deref(),
            Some("22P02")
        );
        assert!(read(json!({"queued": "x"})).unwrap().queued);
        assert_eq!(read(json!({"key": 5})).unwrap().key.as_deref(), Some("5"));
        assert_eq!(
            read(json!({"after": "x"})).unwrap_err().message,
            "findJobs: after must be a uuid"
        );
        let found = read(json!({"key": "k", "data": {"a": 1}, "queued": true})).unwrap();
        assert_eq!(found.data.as_deref(), Some("{\"a\":1}"));
        assert!(found.queued);
    }
}
