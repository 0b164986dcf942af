//! What `redrive()` and `previewRedrive()` are asked: the dead letter queue, which of its jobs
//! (the filter) and how many, checked with pg-boss's messages.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::names::assert_queue_name;
use super::targets::parse_uuid;
use crate::config::js::{is_integer, Options};
use crate::error::ensure;
use crate::error::{Error, Result};

/// Which dead-lettered jobs a redrive or preview considers.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RedriveFilter {
    /// `destination`: where the jobs go; by default each goes back to the queue it came from.
    pub destination: Option<String>,
    /// `sourceName`: only jobs that came from this queue.
    pub source_name: Option<String>,
    /// `data`: a JSON object the job's data must contain, as text.
    pub data: Option<String>,
    /// `createdBefore`: only jobs that arrived in the dead letter queue before then.
    pub created_before: Option<DateTime<Utc>>,
    /// `ids`: only these jobs (their ids in the dead letter queue).
    pub ids: Option<Vec<Uuid>>,
}

impl RedriveFilter {
    /// The filter options of `redrive()`/`previewRedrive()`, checked with pg-boss's messages.
    pub fn from_options(options: &Options) -> Result<RedriveFilter> {
        let name_opt = |key: &str| -> Result<Option<String>> {
            match options.get(key).filter(|v| !v.is_null()) {
                None => Ok(None),
                Some(v) => Ok(Some(assert_queue_name(v)?.to_string())),
            }
        };
        Ok(RedriveFilter {
            destination: name_opt("destination")?,
            source_name: name_opt("sourceName")?,
            data: data_filter(options)?,
            created_before: created_before(options)?,
            ids: ids(options)?,
        })
    }
}

fn data_filter(options: &Options) -> Result<Option<String>> {
    match options.get("data") {
        None => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.to_string())),
        Some(_) => Err(Error::invalid("data must be an object")),
    }
}

/// A `Date` crosses from JavaScript as its ISO text.
fn created_before(options: &Options) -> Result<Option<DateTime<Utc>>> {
    let invalid = || Error::invalid("createdBefore must be a valid Date");
    match options.get("createdBefore") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| invalid())?
                .with_timezone(&Utc),
        )),
        Some(_) => Err(invalid()),
    }
}

fn ids(options: &Options) -> Result<Option<Vec<Uuid>>> {
    match options.get("ids") {
        None => Ok(None),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            // pg-boss checks only that they are strings; PostgreSQL's uuid cast refuses the rest.
            let parse = |v: &Value| parse_uuid(v.as_str().unwrap_or_default());
            Ok(Some(items.iter().map(parse).collect::<Result<_>>()?))
        }
        Some(_) => Err(Error::invalid("ids must be a non-empty array of strings")),
    }
}

/// What `previewRedrive()` is asked for its limit at most.
const PREVIEW_LIMIT_MAX: i64 = 100_000;
const DEFAULT_LIMIT: i64 = 1000;

/// `redrive(name, options)` or `previewRedrive(name, options)`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RedriveRequest {
    /// The dead letter queue.
    pub name: String,
    /// Which of its jobs.
    pub filter: RedriveFilter,
    /// `limit`, default 1000: at most this many jobs, oldest first.
    pub limit: i64,
}

impl RedriveRequest {
    /// `redrive()`'s request.
    pub fn for_redrive(name: &Value, options: &Options) -> Result<RedriveRequest> {
        let name = assert_queue_name(name)?.to_string();
        let limit = limit_of(options, "limit must be an integer >= 1")?;
        Ok(RedriveRequest {
            name,
            filter: RedriveFilter::from_options(options)?,
            limit,
        })
    }

    /// `previewRedrive()`'s request, whose limit also has a ceiling.
    pub fn for_preview(name: &Value, options: &Options) -> Result<RedriveRequest> {
        let name = assert_queue_name(name)?.to_string();
        let message = "previewRedrive: limit must be an integer between 1 and 100000";
        let limit = limit_of(options, message)?;
        ensure!(limit <= PREVIEW_LIMIT_MAX, "{message}");
        Ok(RedriveRequest {
            name,
            filter: RedriveFilter::from_options(options)?,
            limit,
        })
    }
}

fn limit_of(options: &Options, message: &str) -> Result<i64> {
    match options.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => {
            ensure!(
                is_integer(v) && v.as_f64().unwrap_or(0.0) >= 1.0,
                "{message}"
            );
            Ok(v.as_i64().unwrap_or(DEFAULT_LIMIT))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redrive(options: Value) -> Result<RedriveRequest> {
        RedriveRequest::for_redrive(&json!("dlq"), options.as_object().unwrap())
    }

    fn preview(options: Value) -> Result<RedriveRequest> {
        RedriveRequest::for_preview(&json!("dlq"), options.as_object().unwrap())
    }

    #[test]
    fn a_request_reads_every_filter_and_defaults_the_limit() {
        let id = "0b6c2a3e-1f4d-4c2b-9a8e-7d6f5e4c3b2a";
        let request = redrive(json!({
            "destination": "back", "sourceName": "src", "data": { "a": 1 },
            "createdBefore": "2030-01-02T03:04:05.000Z", "ids": [id],
        }))
        .unwrap();
        assert_eq!(request.name, "dlq");
        assert_eq!(request.limit, 1000);
        assert_eq!(
            request.filter,
            RedriveFilter {
                destination: Some("back".into()),
                source_name: Some("src".into()),
                data: Some("{\"a\":1}".into()),
                created_before: Some("2030-01-02T03:04:05Z".parse().unwrap()),
                ids: Some(vec![Uuid::parse_str(id).unwrap()]),
            }
        );
        assert_eq!(
            redrive(json!({ "destination": null })).unwrap().filter,
            RedriveFilter::default()
        );
        assert_eq!(preview(json!({ "limit": 100_000 })).unwrap().limit, 100_000);
        assert_eq!(redrive(json!({ "limit": 100_001 })).unwrap().limit, 100_001);
    }

    #[test]
    fn bad_options_are_refused_with_pg_boss_messages() {
        let message = |result: Result<RedriveRequest>| result.unwrap_err().message;
        for limit in [json!(0), json!(1.5), json!("ten"), Value::Null] {
            assert_eq!(
                message(redrive(json!({ "limit": limit }))),
                "limit must be an integer >= 1"
            );
        }
        assert_eq!(
            message(preview(json!({ "limit": 100_001 }))),
            "previewRedrive: limit must be an integer between 1 and 100000"
        );
        assert_eq!(
            message(redrive(json!({ "destination": "bad name!" }))),
            "Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes"
        );
        assert_eq!(
            message(redrive(json!({ "sourceName": 5 }))),
            "Name must be a string"
        );
        for data in [json!("x"), json!([1]), Value::Null] {
            assert_eq!(
                message(preview(json!({ "data": data }))),
                "data must be an object"
            );
        }
        for date in [json!("2020-01-01"), json!(5)] {
            assert_eq!(
                message(redrive(json!({ "createdBefore": date }))),
                "createdBefore must be a valid Date"
            );
        }
        for ids in [json!([]), json!([1]), json!("abc")] {
            assert_eq!(
                message(redrive(json!({ "ids": ids }))),
                "ids must be a non-empty array of strings"
            );
        }
        assert_eq!(
            redrive(json!({ "ids": ["nope"] }))
                .unwrap_err()
                .sql_state
                .as_deref(),
            Some("22P02")
        );
        let unnamed = RedriveRequest::for_redrive(&json!(""), &Options::new());
        assert_eq!(unnamed.unwrap_err().message, "Name is required");
    }
}
