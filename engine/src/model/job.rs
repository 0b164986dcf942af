//! A new job as `send()` and `insert()` describe it: its data and its options, typed as the
//! insert statement takes them. Options a job leaves out come from its queue.

use serde_json::Value;
use uuid::Uuid;

use super::names::is_uuid_input;
use super::unchecked;
use crate::config::js::{truthy, Options};
use crate::error::Result;

/// A job's id as the caller gave it (pg-boss does not check it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobId {
    /// A uuid, in any spelling PostgreSQL accepts.
    Uuid(Uuid),
    /// Not a uuid: left to PostgreSQL's cast, which refuses it in pg-boss's words.
    Text(String),
}

impl JobId {
    /// Reads an id as PostgreSQL would: 32 hex digits, hyphens after any group of four, braces.
    pub fn given(text: String) -> JobId {
        if !is_uuid_input(&text) {
            return JobId::Text(text);
        }
        let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
        match Uuid::parse_str(&digits) {
            Ok(id) => JobId::Uuid(id),
            Err(_) => JobId::Text(text),
        }
    }

    /// The id, when it is a uuid.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            JobId::Uuid(id) => Some(*id),
            JobId::Text(_) => None,
        }
    }
}

/// A job's options (pg-boss's `JobOptions` and `JobInsert`). Numbers are what the job's columns
/// hold; `start_after` is the text the insert reads: a date time (that instant) or a number of
/// seconds from now. An option left `None` comes from the queue, else from pg-boss's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOptions {
    /// `id`: the job's id; a new uuid when left out.
    pub id: Option<JobId>,
    /// `priority`, default 0: higher is fetched first.
    pub priority: Option<i32>,
    /// `startAfter`: not fetched before then (an ISO date time, or seconds from now).
    pub start_after: Option<String>,
    /// `singletonKey`: what the queue's policy, throttling and `key_strict_fifo` key on.
    pub singleton_key: Option<String>,
    /// Whether the key as given is truthy in JavaScript, which is what pg-boss asks of a
    /// `key_strict_fifo` job's key (`0` is stored as "0", yet counts as no key).
    pub singleton_key_truthy: bool,
    /// `singletonSeconds`: throttle to one job per slot of this many seconds (per key).
    pub singleton_seconds: Option<i32>,
    /// Shifts the throttle slot by this many seconds (set by a send into the next slot).
    pub singleton_offset: Option<i32>,
    /// `group.id`: the group the job counts against for group concurrency.
    pub group_id: Option<String>,
    /// `group.tier`: the group's tier, for per-tier limits.
    pub group_tier: Option<String>,
    /// `expireInSeconds`, default 900: how long the job may stay active before it is failed.
    pub expire_in_seconds: Option<i32>,
    /// `deleteAfterSeconds`, default 604800 (7 days): how long a finished job is kept; 0 keeps it.
    pub delete_after_seconds: Option<i32>,
    /// `retentionSeconds`, default 1209600 (14 days): how long the job may wait to start before it
    /// is deleted.
    pub retention_seconds: Option<i32>,
    /// `retryLimit`, default 2: retries after a failure before the job fails for good.
    pub retry_limit: Option<i32>,
    /// `retryDelay`, default 0: seconds between retries.
    pub retry_delay: Option<i32>,
    /// `retryBackoff`, default false: exponential backoff from `retryDelay`.
    pub retry_backoff: Option<bool>,
    /// `retryDelayMax`: the longest backoff delay; no limit when left out.
    pub retry_delay_max: Option<i32>,
    /// `deadLetter`: the queue a job that fails for good is copied to.
    pub dead_letter: Option<String>,
    /// `heartbeatSeconds` (at least 10): an active job not heartbeated for this long is failed;
    /// no heartbeat is expected when left out.
    pub heartbeat_seconds: Option<i32>,
    /// `__traceContext`: the trace context (an object of propagation fields) the job was sent in,
    /// stored in `trace_context` so the span that processes the job continues that trace.
    pub trace_context: Option<Value>,
}

impl JobOptions {
    /// Reads options that have passed whatever checks their call makes; the rest is read as
    /// PostgreSQL reads it. `start_after` comes already read: send() and insert() read it apart.
    pub(crate) fn read(options: &Options, start_after: Option<String>) -> Result<JobOptions> {
        let int = |key: &str| options.get(key).map_or(Ok(None), unchecked::int);
        let text = |key: &str| options.get(key).and_then(unchecked::text);
        // A `group` object wins over the raw columns, which pg-boss's insert also takes.
        let (group_id, group_tier) = match options.get("group").and_then(Value::as_object) {
            Some(group) => (
                group.get("id").and_then(unchecked::text),
                group.get("tier").and_then(unchecked::text),
            ),
            None => (text("groupId"), text("groupTier")),
        };
        Ok(JobOptions {
            id: text("id").map(JobId::given),
            priority: int("priority")?,
            start_after,
            singleton_key: text("singletonKey"),
            singleton_key_truthy: truthy(options.get("singletonKey")),
            singleton_seconds: int("singletonSeconds")?,
            singleton_offset: int("singletonOffset")?,
            group_id,
            group_tier,
            expire_in_seconds: int("expireInSeconds")?,
            delete_after_seconds: int("deleteAfterSeconds")?,
            retention_seconds: int("retentionSeconds")?,
            retry_limit: int("retryLimit")?,
            retry_delay: int("retryDelay")?,
            retry_backoff: options
                .get("retryBackoff")
                .map_or(Ok(None), unchecked::boolean)?,
            retry_delay_max: int("retryDelayMax")?,
            dead_letter: text("deadLetter"),
            heartbeat_seconds: int("heartbeatSeconds")?,
            trace_context: options
                .get("__traceContext")
                .filter(|v| v.is_object())
                .cloned(),
        })
    }

    /// Whether the job names a key (a `key_strict_fifo` queue requires one).
    pub fn has_singleton_key(&self) -> bool {
        self.singleton_key_truthy
    }
}

/// A job's payload as JSON text, handed to PostgreSQL as it was written: the engine never reads
/// a payload, so it does not parse one only to write it out again. As in pg-boss, whose driver
/// sends the text `JSON.stringify` made, PostgreSQL is what checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobData(String);

impl JobData {
    /// No payload (JSON null, which the insert stores as SQL NULL, as pg-boss's does).
    pub fn null() -> JobData {
        JobData("null".to_string())
    }

    /// A payload already written as JSON text (`JSON.stringify`'s output, or a value raw from a
    /// JSON document). It is not checked here: text that is not JSON fails the insert.
    pub fn from_json_text(text: String) -> JobData {
        JobData(text)
    }

    /// The payload's JSON text.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

impl From<&Value> for JobData {
    fn from(value: &Value) -> JobData {
        JobData(value.to_string())
    }
}

impl From<Value> for JobData {
    fn from(value: Value) -> JobData {
        JobData::from(&value)
    }
}

/// One job of an `insert()`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// `data`: the job's payload (null when left out).
    pub data: JobData,
    /// Its options.
    pub options: JobOptions,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_postgres_takes_are_uuids_and_the_rest_is_left_to_it() {
        let id = Uuid::parse_str("0123abcd-0000-4000-8000-000000000000").unwrap();
        assert_eq!(JobId::given(id.to_string()), JobId::Uuid(id));
        assert_eq!(
            JobId::given("{0123-abcd-0000-4000-8000-0000-0000-0000}".into()),
            JobId::Uuid(id)
        );
        assert_eq!(
            JobId::given(format!("urn:uuid:{id}")),
            JobId::Text(format!("urn:uuid:{id}"))
        );
        assert_eq!(JobId::given("5".into()), JobId::Text("5".into()));
    }

    #[test]
    fn options_are_read_as_the_insert_reads_them() {
        let options = json!({
            "priority": "4", "singletonKey": 7, "group": {"id": "g"}, "groupTier": "ignored",
            "retryBackoff": "yes", "deadLetter": null, "expireInSeconds": 60
        });
        let read = JobOptions::read(options.as_object().unwrap(), None).unwrap();
        assert_eq!(read.priority, Some(4));
        assert_eq!(read.singleton_key.as_deref(), Some("7"));
        assert_eq!(
            (read.group_id.as_deref(), read.group_tier.as_deref()),
            (Some("g"), None)
        );
        assert_eq!(read.retry_backoff, Some(true));
        assert_eq!(read.dead_letter, None);
        assert_eq!(read.expire_in_seconds, Some(60));
        let raw = json!({"groupId": "a", "groupTier": "b"});
        let read = JobOptions::read(raw.as_object().unwrap(), None).unwrap();
        assert_eq!(
            (read.group_id.as_deref(), read.group_tier.as_deref()),
            (Some("a"), Some("b"))
        );
    }

    #[test]
    fn a_key_counts_as_given_when_javascript_finds_it_truthy() {
        let key = |value: Value| {
            let options = value.as_object().unwrap().clone();
            JobOptions::read(&options, None)
                .unwrap()
                .has_singleton_key()
        };
        assert!(key(json!({ "singletonKey": "k" })));
        assert!(key(json!({ "singletonKey": 5 })));
        assert!(key(json!({ "singletonKey": "0" })));
        assert!(!key(json!({ "singletonKey": 0 })));
        assert!(!key(json!({ "singletonKey": "" })));
        assert!(!key(json!({ "singletonKey": false })));
        assert!(!key(json!({})));
    }
}
