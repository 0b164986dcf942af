//! Queues as callers define them — the options of `createQueue()` and `updateQueue()`, checked with
//! pg-boss's rules and messages — and a queue as the job operations see it.

use serde_json::Value;

use super::job_settings::{
    validate_deletion, validate_expiration, validate_heartbeat, validate_retention, validate_retry,
};
use super::names::{assert_object_name, assert_queue_name};
use crate::config::js::Options;
use crate::error::ensure;
use crate::error::{Error, ErrorCode, Result};

/// What sending, fetching and settling need to know about a queue.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct QueueInfo {
    pub name: String,
    pub table: String,
    pub policy: String,
    pub partition: bool,
    pub notify: bool,
    /// The ready count the last monitor pass wrote on the queue row (for `burstWhenReadyExceeds`).
    pub ready_count: i64,
}

/// pg-boss's error for a queue that does not exist.
#[doc(hidden)]
pub fn queue_not_found(name: &str) -> Error {
    Error::new(
        ErrorCode::QueueNotFound,
        format!("Queue {name} does not exist"),
    )
}

/// The queue policies pg-boss knows (`policy` of `createQueue()`): `standard` (no limit), `short`
/// (one job queued), `singleton` (one job active), `stately` (one per state, queued and active),
/// `exclusive` (one queued or active) and `key_strict_fifo` (FIFO per `singletonKey`, which every
/// job must have). The four limits in between count per `singletonKey` when jobs have one.
pub const POLICIES: [&str; 6] = [
    "standard",
    "short",
    "singleton",
    "stately",
    "exclusive",
    "key_strict_fifo",
];

/// An option that may be null: `updateQueue()` tells a key given as null (clear the stored value)
/// from a key left out (keep it), as pg-boss does. At creation both mean "none".
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    /// Left out: keep what is stored.
    #[default]
    Keep,
    /// Given as null: clear the stored value.
    Clear,
    /// Given: store this.
    Set(T),
}

impl<T> Patch<T> {
    /// The value, when one is given.
    pub fn as_set(&self) -> Option<&T> {
        match self {
            Patch::Set(value) => Some(value),
            Patch::Keep | Patch::Clear => None,
        }
    }
}

/// `warningQueueSize`, which pg-boss hands to the database unchecked: a number, or anything else
/// as the text the database then casts to an integer (and refuses with its own error when it is
/// not one).
#[derive(Debug, Clone, PartialEq)]
pub enum Unchecked {
    /// A number.
    Number(f64),
    /// Anything else, as text.
    Text(String),
}

/// The options `createQueue()` and `updateQueue()` share. Numbers stay JavaScript numbers: the
/// database casts them, and refuses a fraction where it wants an integer, as it does for pg-boss.
/// A queue's settings are the defaults of its jobs; a job's own options win.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueOptions {
    /// `retryLimit`, default 2: retries after a failure before a job fails for good.
    pub retry_limit: Option<f64>,
    /// `retryDelay`, default 0: seconds between retries.
    pub retry_delay: Option<f64>,
    /// `retryBackoff`, default false: exponential backoff from `retryDelay`.
    pub retry_backoff: Option<bool>,
    /// `retryDelayMax`: the longest backoff delay (only with `retryBackoff`); no limit by default.
    pub retry_delay_max: Patch<f64>,
    /// `expireInSeconds`, default 900: how long a job may stay active before it is failed.
    pub expire_in_seconds: Option<f64>,
    /// `retentionSeconds`, default 1209600 (14 days): how long a job may wait to start before it
    /// is deleted.
    pub retention_seconds: Option<f64>,
    /// `deleteAfterSeconds`, default 604800 (7 days): how long a finished job is kept; 0 keeps it.
    pub delete_after_seconds: Option<f64>,
    /// `warningQueueSize`: this queue's backlog warning threshold (else the instance's).
    pub warning_queue_size: Option<Unchecked>,
    /// `heartbeatSeconds` (at least 10): an active job not heartbeated for this long is failed;
    /// none expected by default.
    pub heartbeat_seconds: Patch<f64>,
    /// `notify`, default false: creating a job sends a NOTIFY that wakes listening workers.
    pub notify: Option<bool>,
    /// `deadLetter`: the queue a job that fails for good is copied to.
    pub dead_letter: Patch<String>,
}

impl QueueOptions {
    /// Checks the options with pg-boss's `validateQueueArgs` and reads them.
    pub fn from_options(options: &Options) -> Result<QueueOptions> {
        if let Some(v) = options.get("deadLetter") {
            ensure!(v.is_null() || v.is_string(), "deadLetter must be a string");
            if let Some(name) = v.as_str().filter(|s| !s.is_empty()) {
                assert_object_name(name, "deadLetter")?;
            }
        }
        if let Some(v) = options.get("notify") {
            ensure!(v.is_boolean(), "notify must be a boolean");
        }
        validate_retry(options)?;
        validate_expiration(options)?;
        validate_retention(options)?;
        validate_deletion(options)?;
        validate_heartbeat(options)?;
        // Checked above: every key below that is present holds the type it is read as.
        let number = |key: &str| options.get(key).and_then(Value::as_f64);
        let flag = |key: &str| options.get(key).and_then(Value::as_bool);
        Ok(QueueOptions {
            retry_limit: number("retryLimit"),
            retry_delay: number("retryDelay"),
            retry_backoff: flag("retryBackoff"),
            retry_delay_max: patch(options, "retryDelayMax", Value::as_f64),
            expire_in_seconds: number("expireInSeconds"),
            retention_seconds: number("retentionSeconds"),
            delete_after_seconds: number("deleteAfterSeconds"),
            warning_queue_size: options.get("warningQueueSize").and_then(unchecked),
            heartbeat_seconds: patch(options, "heartbeatSeconds", Value::as_f64),
            notify: flag("notify"),
            dead_letter: patch(options, "deadLetter", |v| v.as_str().map(str::to_string)),
        })
    }
}

fn patch<T>(options: &Options, key: &str, read: impl Fn(&Value) -> Option<T>) -> Patch<T> {
    match options.get(key) {
        None => Patch::Keep,
        Some(Value::Null) => Patch::Clear,
        Some(value) => read(value).map_or(Patch::Clear, Patch::Set),
    }
}

fn unchecked(value: &Value) -> Option<Unchecked> {
    match value {
        Value::Null => None,
        Value::Number(n) => n.as_f64().map(Unchecked::Number),
        Value::String(s) => Some(Unchecked::Text(s.clone())),
        other => Some(Unchecked::Text(other.to_string())),
    }
}

/// `createQueue(name, options)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateQueue {
    /// `name`.
    pub name: String,
    /// `policy`, default `standard`: one of [`POLICIES`].
    pub policy: String,
    /// `partition`, default false: the queue gets its own job table.
    pub partition: bool,
    /// Its job settings.
    pub options: QueueOptions,
}

impl CreateQueue {
    /// pg-boss's checks, in its order; whether the dead letter queue exists is the operation's
    /// to ask the database.
    pub fn from_json(name: &Value, options: &Options) -> Result<CreateQueue> {
        let name = match name {
            Value::Null => options.get("name").cloned().unwrap_or(Value::Null),
            other => other.clone(),
        };
        let name = assert_queue_name(&name)?.to_string();
        let policy = match options.get("policy") {
            None | Some(Value::Null) => "standard".to_string(),
            Some(Value::String(p)) if p.is_empty() => "standard".to_string(),
            Some(p) => {
                let shown = p
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| p.to_string());
                ensure!(
                    POLICIES.contains(&shown.as_str()),
                    "{shown} is not a valid queue policy"
                );
                shown
            }
        };
        let queue_options = QueueOptions::from_options(options)?;
        let partition = match options.get("partition") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(partition)) => *partition,
            Some(_) => return Err(Error::invalid("partition must be a boolean")),
        };
        let create = CreateQueue {
            name,
            policy,
            partition,
            options: queue_options,
        };
        if let Some(dead_letter) = create.dead_letter() {
            assert_queue_name(&Value::String(dead_letter.to_string()))?;
            ensure!(dead_letter != create.name, "deadLetter cannot be itself");
        }
        Ok(create)
    }

    /// A standard queue with every default (the scheduler's own queue).
    pub fn with_defaults(name: &str) -> Result<CreateQueue> {
        CreateQueue::from_json(&Value::String(name.to_string()), &Options::new())
    }

    /// The dead letter queue named, if any (an empty name names none).
    pub fn dead_letter(&self) -> Option<&str> {
        self.options
            .dead_letter
            .as_set()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// `updateQueue(name, options)`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateQueue {
    /// The queue.
    pub name: String,
    /// The settings to change: a field left `None` or [`Patch::Keep`] keeps its value.
    pub options: QueueOptions,
}

impl UpdateQueue {
    /// pg-boss's checks of `updateQueue(name, options)`, in its order (the policy and
    /// partitioning cannot change).
    pub fn from_json(name: &Value, options: &Options) -> Result<UpdateQueue> {
        let name = assert_queue_name(name)?.to_string();
        ensure!(!options.is_empty(), "no properties found to update");
        // Plain Errors in pg-boss, not assertions.
        for (key, what) in [("policy", "policy"), ("partition", "partitioning")] {
            if options.contains_key(key) {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!("queue {what} cannot be changed after creation"),
                ));
            }
        }
        let options = QueueOptions::from_options(options)?;
        if let Some(dead_letter) = options.dead_letter.as_set() {
            assert_queue_name(&Value::String(dead_letter.clone()))?;
            ensure!(*dead_letter != name, "deadLetter cannot be itself");
        }
        Ok(UpdateQueue { name, options })
    }
}

/// The queue a call names, or none when it names none (`supervise()` over every queue).
pub fn optional_queue_name(name: &Value) -> Result<Option<String>> {
    match name {
        Value::Null => Ok(None),
        name => Ok(Some(assert_queue_name(name)?.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(value: Value) -> Options {
        value.as_object().unwrap().clone()
    }

    fn create(name: Value, value: Value) -> Result<CreateQueue> {
        CreateQueue::from_json(&name, &options(value))
    }

    fn update(value: Value) -> Result<UpdateQueue> {
        UpdateQueue::from_json(&json!("q"), &options(value))
    }

    #[test]
    fn create_reads_every_option() {
        let queue = create(
            json!("orders"),
            json!({
                "policy": "singleton", "retryLimit": 4, "retryDelay": 2, "retryBackoff": true,
                "retryDelayMax": 30, "expireInSeconds": 60, "retentionSeconds": 3600,
                "deleteAfterSeconds": 0, "warningQueueSize": 7, "heartbeatSeconds": 20,
                "notify": true, "deadLetter": "dlq", "partition": true, "unknown": 1,
            }),
        )
        .unwrap();
        assert_eq!(queue.name, "orders");
        assert_eq!(queue.policy, "singleton");
        assert!(queue.partition);
        assert_eq!(queue.dead_letter(), Some("dlq"));
        let o = &queue.options;
        assert_eq!(
            (o.retry_limit, o.retry_delay, o.retry_backoff),
            (Some(4.0), Some(2.0), Some(true))
        );
        assert_eq!(o.retry_delay_max, Patch::Set(30.0));
        assert_eq!(
            (
                o.expire_in_seconds,
                o.retention_seconds,
                o.delete_after_seconds
            ),
            (Some(60.0), Some(3600.0), Some(0.0))
        );
        assert_eq!(o.warning_queue_size, Some(Unchecked::Number(7.0)));
        assert_eq!(o.heartbeat_seconds, Patch::Set(20.0));
        assert_eq!(o.notify, Some(true));
    }

    #[test]
    fn create_takes_the_name_from_the_options_and_defaults_the_policy() {
        let queue = create(json!(null), json!({ "name": "q", "policy": "" })).unwrap();
        assert_eq!(
            (queue.name.as_str(), queue.policy.as_str()),
            ("q", "standard")
        );
        assert!(!queue.partition);
        assert_eq!(queue.options, QueueOptions::default());
        assert_eq!(
            create(json!(null), json!({})).unwrap_err().message,
            "Name is required"
        );
    }

    #[test]
    fn create_refuses_with_pg_boss_messages() {
        let refused = |name: Value, value: Value| create(name, value).unwrap_err().message;
        assert_eq!(
            refused(json!("q"), json!({ "policy": "x" })),
            "x is not a valid queue policy"
        );
        assert_eq!(
            refused(json!("q"), json!({ "policy": 5 })),
            "5 is not a valid queue policy"
        );
        assert_eq!(
            refused(json!("q"), json!({ "partition": "yes" })),
            "partition must be a boolean"
        );
        assert_eq!(
            refused(json!("q"), json!({ "deadLetter": "q" })),
            "deadLetter cannot be itself"
        );
        assert_eq!(
            refused(json!("q"), json!({ "deadLetter": 3 })),
            "deadLetter must be a string"
        );
        assert_eq!(
            refused(json!("q"), json!({ "notify": 1 })),
            "notify must be a boolean"
        );
        assert_eq!(
            refused(json!("q"), json!({ "retryDelayMax": 5 })),
            "retryDelayMax can only be set if retryBackoff is true"
        );
        assert_eq!(
            refused(json!("q"), json!({ "heartbeatSeconds": 5 })),
            "heartbeatSeconds must be an integer >= 10"
        );
        // The policy is checked before the other options, as in pg-boss.
        assert_eq!(
            refused(json!("q"), json!({ "policy": "x", "retryLimit": -1 })),
            "x is not a valid queue policy"
        );
        // An empty dead letter queue names none.
        let queue = create(json!("q"), json!({ "deadLetter": "" })).unwrap();
        assert_eq!(queue.dead_letter(), None);
    }

    #[test]
    fn update_tells_null_from_absent() {
        let cleared = update(json!({ "deadLetter": null, "heartbeatSeconds": null })).unwrap();
        assert_eq!(cleared.options.dead_letter, Patch::Clear);
        assert_eq!(cleared.options.heartbeat_seconds, Patch::Clear);
        assert_eq!(cleared.options.retry_delay_max, Patch::Keep);
        let kept = update(json!({ "retryLimit": 3 })).unwrap();
        assert_eq!(kept.options.dead_letter, Patch::Keep);
        assert_eq!(kept.options.retry_limit, Some(3.0));
        let unknown = update(json!({ "whatever": 1 })).unwrap();
        assert_eq!(unknown.options, QueueOptions::default());
    }

    #[test]
    fn update_refuses_with_pg_boss_messages() {
        let refused = |value: Value| update(value).unwrap_err().message;
        assert_eq!(refused(json!({})), "no properties found to update");
        assert_eq!(
            refused(json!({ "policy": "standard" })),
            "queue policy cannot be changed after creation"
        );
        assert_eq!(
            refused(json!({ "partition": false })),
            "queue partitioning cannot be changed after creation"
        );
        assert_eq!(
            refused(json!({ "retryLimit": -1 })),
            "retryLimit must be an integer >= 0"
        );
        assert_eq!(
            refused(json!({ "deadLetter": "q" })),
            "deadLetter cannot be itself"
        );
        assert_eq!(refused(json!({ "deadLetter": "" })), "Name is required");
    }

    #[test]
    fn warning_queue_size_is_left_to_the_database() {
        let size = |v: Value| {
            create(json!("q"), json!({ "warningQueueSize": v }))
                .unwrap()
                .options
                .warning_queue_size
        };
        assert_eq!(size(json!(2.5)), Some(Unchecked::Number(2.5)));
        assert_eq!(size(json!("12")), Some(Unchecked::Text("12".into())));
        assert_eq!(size(json!(true)), Some(Unchecked::Text("true".into())));
        assert_eq!(size(json!(null)), None);
    }

    #[test]
    fn an_optional_name_is_null_or_a_queue_name() {
        assert_eq!(optional_queue_name(&json!(null)).unwrap(), None);
        assert_eq!(
            optional_queue_name(&json!("q")).unwrap(),
            Some("q".to_string())
        );
        assert!(optional_queue_name(&json!("a b")).is_err());
    }
}
