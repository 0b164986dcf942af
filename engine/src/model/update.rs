//! An `update()`/`upsert()` request: which queued jobs it edits, and the columns it writes (only
//! the ones the caller supplied), checked as pg-boss checks them, in its order and with its
//! messages.

use serde_json::{json, Value};
use uuid::Uuid;

use super::job_settings::{
    validate_expiration, validate_heartbeat, validate_retention, validate_retry,
};
use super::names::assert_queue_name;
use super::send::{pin_zoneless_date_time, validate_group};
use super::unchecked;
use crate::config::js::{is_integer, truthy, Options};
use crate::error::ensure;
use crate::error::{Error, Result};

const MATCHES: [&str; 3] = ["newest", "oldest", "all"];

/// Which jobs an edit addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateTarget {
    /// The job with the request's `id`.
    Id,
    /// The queued jobs with the request's `singleton_key`, as `match` picks them.
    Key(Match),
}

/// `match`: which of the queued jobs sharing a `singletonKey` an edit overwrites (by `createdOn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Match {
    /// `newest` (the default): the most recently created.
    Newest,
    /// `oldest`: the earliest created.
    Oldest,
    /// `all`: every one.
    All,
}

/// A checked request. A column left `None` is kept as it is; `Some(None)` clears a column that
/// may be null. `upsert()` inserts the same columns when nothing matches.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    /// The queue.
    pub name: String,
    /// Which jobs it edits.
    pub target: UpdateTarget,
    /// `id`: the job, when targeted by id.
    pub id: Option<String>,
    /// `singletonKey`: the key the jobs share, when targeted by key (and the new job's, for an
    /// upsert that inserts).
    pub singleton_key: Option<String>,
    /// The job's data; `Some(Value::Null)` stores null.
    pub data: Option<Value>,
    /// `priority`.
    pub priority: Option<i32>,
    /// `startAfter`: a date time (that instant) or a number of seconds from now, as the statement
    /// reads it.
    pub start_after: Option<String>,
    /// `retentionSeconds`.
    pub retention_seconds: Option<i32>,
    /// `expireInSeconds`.
    pub expire_in_seconds: Option<i32>,
    /// `deleteAfterSeconds`.
    pub delete_after_seconds: Option<i32>,
    /// `retryLimit`.
    pub retry_limit: Option<i32>,
    /// `retryDelay`.
    pub retry_delay: Option<i32>,
    /// `retryBackoff`.
    pub retry_backoff: Option<bool>,
    /// `retryDelayMax`; `Some(None)` removes the limit.
    pub retry_delay_max: Option<Option<i32>>,
    /// `deadLetter`; `Some(None)` removes the dead letter queue.
    pub dead_letter: Option<Option<String>>,
    /// `heartbeatSeconds`; `Some(None)` stops expecting heartbeats.
    pub heartbeat_seconds: Option<Option<i32>>,
    /// `group.id`.
    pub group_id: Option<String>,
    /// `group.tier`.
    pub group_tier: Option<String>,
    /// `__traceContext`: the trace context an upsert's inserted job stores (an edit keeps the
    /// job's own), as a send's does.
    pub trace_context: Option<Value>,
}

impl UpdateRequest {
    /// `request` is `{ name, data?, options? }` (the binding has already resolved the overloads;
    /// `data` is absent when the caller left it undefined, which leaves a job's data as it is).
    pub fn from_json(request: &Value, upsert: bool) -> Result<UpdateRequest> {
        let verb = if upsert { "upsert()" } else { "update()" };
        let empty = Options::new();
        let options = match request.get("options") {
            Some(Value::Object(o)) => o,
            _ => &empty,
        };
        let target = target(options, verb)?;
        if let Some(v) = options.get("priority") {
            ensure!(is_integer(v), "priority must be an integer");
        }
        validate_retry(options)?;
        validate_expiration(options)?;
        validate_retention(options)?;
        validate_group(options)?;
        validate_heartbeat(options)?;
        let name = request.get("name").unwrap_or(&Value::Null);
        let name = assert_queue_name(name)?.to_string();
        read(options, name, target, request.get("data").cloned())
    }

    /// Whether the edit targets a singleton key (an upsert then inserts under that key).
    pub fn by_key(&self) -> bool {
        matches!(self.target, UpdateTarget::Key(_))
    }
}

/// What an edit did: pg-boss's UpdateResponse, or with `inserted` its UpsertResponse.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateResponse {
    /// `jobs`: the ids of the jobs edited or inserted.
    pub jobs: Vec<Uuid>,
    /// `inserted`: for an upsert, how many of `jobs` are new (`None` for an update).
    pub inserted: Option<usize>,
}

impl UpdateResponse {
    /// An update's answer: every one of `jobs` was edited.
    pub fn updated(jobs: Vec<Uuid>) -> UpdateResponse {
        UpdateResponse {
            jobs,
            inserted: None,
        }
    }

    /// An upsert's answer: `inserted` of `jobs` are new, the rest were edited.
    pub fn upserted(jobs: Vec<Uuid>, inserted: usize) -> UpdateResponse {
        UpdateResponse {
            jobs,
            inserted: Some(inserted),
        }
    }

    /// pg-boss's shape: `{ jobs, updated }`, and `inserted` for an upsert.
    pub fn to_json(&self) -> Value {
        let updated = self.jobs.len() - self.inserted.unwrap_or(0);
        match self.inserted {
            None => json!({ "jobs": self.jobs, "updated": updated }),
            Some(inserted) => {
                json!({ "jobs": self.jobs, "updated": updated, "inserted": inserted })
            }
        }
    }
}

/// Exactly one of `id` and `singletonKey`, and `match` only with a key.
fn target(options: &Options, verb: &str) -> Result<UpdateTarget> {
    ensure!(
        truthy(options.get("id")) != truthy(options.get("singletonKey")),
        "{verb} requires exactly one of id or singletonKey"
    );
    let by_id = truthy(options.get("id"));
    ensure!(
        !(by_id && options.contains_key("match")),
        "match is only valid when targeting jobs by singletonKey"
    );
    let matching = match options.get("match") {
        None => Match::Newest,
        Some(Value::String(m)) if MATCHES.contains(&m.as_str()) => match m.as_str() {
            "oldest" => Match::Oldest,
            "all" => Match::All,
            _ => Match::Newest,
        },
        Some(_) => {
            return Err(Error::invalid(format!(
                "match must be one of: {}",
                MATCHES.join(", ")
            )))
        }
    };
    Ok(if by_id {
        UpdateTarget::Id
    } else {
        UpdateTarget::Key(matching)
    })
}

/// The checked options, typed. Unlike send(), any number is a start, so 0 pulls a deferred job
/// forward to now.
fn read(
    options: &Options,
    name: String,
    target: UpdateTarget,
    data: Option<Value>,
) -> Result<UpdateRequest> {
    let int = |key: &str| options.get(key).map_or(Ok(None), unchecked::int);
    let nullable_int = |key: &str| options.get(key).map(unchecked::int).transpose();
    let group = options.get("group").and_then(Value::as_object);
    let group_field = |key: &str| group.and_then(|g| g.get(key)).and_then(unchecked::text);
    Ok(UpdateRequest {
        name,
        target,
        id: options.get("id").and_then(unchecked::text),
        singleton_key: options.get("singletonKey").and_then(unchecked::text),
        data,
        priority: int("priority")?,
        start_after: match options.get("startAfter") {
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(s)) => Some(pin_zoneless_date_time(s)),
            _ => None,
        },
        retention_seconds: int("retentionSeconds")?,
        expire_in_seconds: int("expireInSeconds")?,
        delete_after_seconds: int("deleteAfterSeconds")?,
        retry_limit: int("retryLimit")?,
        retry_delay: int("retryDelay")?,
        retry_backoff: options
            .get("retryBackoff")
            .map_or(Ok(None), unchecked::boolean)?,
        retry_delay_max: nullable_int("retryDelayMax")?,
        dead_letter: options.get("deadLetter").map(unchecked::text),
        heartbeat_seconds: nullable_int("heartbeatSeconds")?,
        group_id: group_field("id"),
        group_tier: group_field("tier"),
        trace_context: options
            .get("__traceContext")
            .filter(|v| v.is_object())
            .cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(request: Value, upsert: bool) -> String {
        UpdateRequest::from_json(&request, upsert)
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
    }

    #[test]
    fn requests_are_checked_like_pg_boss() {
        assert_eq!(
            message(json!({"name": "q", "options": {}}), false),
            "update() requires exactly one of id or singletonKey"
        );
        assert_eq!(
            message(
                json!({"name": "q", "options": {"id": "x", "singletonKey": "k"}}),
                true
            ),
            "upsert() requires exactly one of id or singletonKey"
        );
        assert_eq!(
            message(
                json!({"name": "q", "options": {"id": "x", "match": "all"}}),
                false
            ),
            "match is only valid when targeting jobs by singletonKey"
        );
        assert_eq!(
            message(
                json!({"name": "q", "options": {"singletonKey": "k", "match": "latest"}}),
                false
            ),
            "match must be one of: newest, oldest, all"
        );
        assert!(message(
            json!({"name": "a b", "options": {"singletonKey": "k"}}),
            false
        )
        .contains("Name can only"));
    }

    #[test]
    fn only_the_columns_given_are_written() {
        let ok = UpdateRequest::from_json(
            &json!({"name": "q", "options": {"singletonKey": "k", "startAfter": 0, "match": "all",
                "heartbeatSeconds": null, "group": {"id": "g"}}}),
            false,
        )
        .unwrap();
        assert_eq!(ok.target, UpdateTarget::Key(Match::All));
        assert_eq!(ok.start_after.as_deref(), Some("0"));
        assert_eq!(ok.data, None);
        assert_eq!(ok.heartbeat_seconds, Some(None));
        assert_eq!(ok.retry_delay_max, None);
        assert_eq!(
            (ok.group_id.as_deref(), ok.group_tier.as_deref()),
            (Some("g"), None)
        );
        let with_data = UpdateRequest::from_json(
            &json!({"name": "q", "data": null, "options": {"id": "x"}}),
            true,
        )
        .unwrap();
        assert_eq!(with_data.data, Some(Value::Null));
        assert!(!with_data.by_key());
    }
}
