//! A queue as the job operations see it, and pg-boss's queue policies.

use crate::error::{Error, ErrorCode};

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
