//! A queue as the job operations see it, and pg-boss's queue policies.

use super::job_settings::{
    validate_deletion, validate_expiration, validate_heartbeat, validate_retention, validate_retry,
};
use super::names::assert_object_name;
use crate::config::js::Options;
use crate::ensure;
use crate::error::{Error, ErrorCode, Result};

/// What sending, fetching and settling need to know about a queue.
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

pub fn queue_not_found(name: &str) -> Error {
    Error::new(
        ErrorCode::QueueNotFound,
        format!("Queue {name} does not exist"),
    )
}

pub const POLICIES: [&str; 6] = [
    "standard",
    "short",
    "singleton",
    "stately",
    "exclusive",
    "key_strict_fifo",
];

/// The options `createQueue()` and `updateQueue()` share.
pub fn validate_queue_options(options: &Options) -> Result<()> {
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
    Ok(())
}
