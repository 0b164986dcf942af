//! What the engine reports as it works: one event type, and the sink it goes to. The binding turns
//! an event into pg-boss's event name and payload; a Rust caller matches on it.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::Error;

/// Something that happened in the background (or, for the internal ones, that the JS entry needs
/// to act on: a handler to abort, a spy to tell).
#[derive(Debug, Clone)]
pub enum Event {
    /// pg-boss's `error` event.
    Error(ErrorEvent),
    /// pg-boss's `warning` event.
    Warning(Warning),
    /// A worker's batch started or ended; the JS entry throttles these into `wip` events. Sent
    /// only while [`Boss::set_wip_listening`](crate::Boss::set_wip_listening) is on.
    Wip {
        /// The worker's queue.
        queue: String,
    },
    /// pg-boss's `bam` event: a background migration command changed status.
    Bam(Value),
    /// pg-boss's `flow` event: a resolution pass released dependent jobs.
    Flow(Value),
    /// What a settle did to jobs that job spies watch (`{ queue, jobs }` or `{ queue, active }`).
    Spy(Value),
    /// A handler outran its batch's expiration: its jobs are being failed, its signals aborted.
    BatchExpired {
        /// The jobs of the batch.
        ids: Vec<Uuid>,
    },
    /// A worker's settle of a batch ended (or its failing of a batch whose handler outran the
    /// batch's expiration). Sent only while
    /// [`Boss::set_settle_reports`](crate::Boss::set_settle_reports) is on: the JS entry times its
    /// settle spans by it.
    BatchSettled {
        /// The worker's queue.
        queue: String,
        /// The batch's first job, and the attempt it was claimed in: together they name the batch.
        id: Uuid,
        /// That job's `retryCount` as claimed.
        retry_count: i32,
        /// Why the settle failed, if it did.
        error: Option<String>,
    },
    /// A heartbeat found these jobs no longer held by the worker.
    ClaimLost {
        /// The worker's queue.
        queue: String,
        /// The jobs it lost.
        ids: Vec<Uuid>,
    },
}

impl Event {
    /// The name the binding emits it under.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Error(_) => "error",
            Event::Warning(_) => "warning",
            Event::Wip { .. } => "wip",
            Event::Bam(_) => "bam",
            Event::Flow(_) => "flow",
            Event::Spy(_) => "spy",
            Event::BatchExpired { .. } => "batchExpired",
            Event::BatchSettled { .. } => "batchSettled",
            Event::ClaimLost { .. } => "claimLost",
        }
    }

    /// Its payload as JSON, in the shapes the JS entry reads.
    pub fn payload(&self) -> Value {
        match self {
            Event::Error(error) => error.payload(),
            Event::Warning(warning) => warning.payload(),
            Event::Wip { queue } => json!({ "name": queue }),
            Event::Bam(payload) | Event::Flow(payload) | Event::Spy(payload) => payload.clone(),
            Event::BatchExpired { ids } => json!({ "ids": ids }),
            Event::BatchSettled {
                queue,
                id,
                retry_count,
                error,
            } => json!({ "queue": queue, "id": id, "retryCount": retry_count, "error": error }),
            Event::ClaimLost { queue, ids } => json!({ "queue": queue, "ids": ids }),
        }
    }
}

/// An `error` event's payload. One convention for every source: `code` is the SQLSTATE when
/// PostgreSQL raised the error (as pg-boss's events carry pg's errors), else the engine's stable
/// code; a worker's error also names its queue and worker, as pg-boss's do.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEvent {
    /// The error's message.
    pub message: String,
    /// The SQLSTATE, or the engine's code ([`Error::js_code`]).
    pub code: String,
    /// The queue whose work failed, for a worker's or a settle's error.
    pub queue: Option<String>,
    /// The worker that failed (its id, as `work()` and `getWipData()` name it).
    pub worker: Option<Uuid>,
}

impl ErrorEvent {
    /// The event of `err`, not tied to a queue.
    pub fn of(err: &Error) -> ErrorEvent {
        ErrorEvent {
            message: err.message.clone(),
            code: err.js_code().to_string(),
            queue: None,
            worker: None,
        }
    }

    /// The error of a queue's work (a worker's loop, a settle on that queue).
    pub fn in_queue(mut self, queue: &str, worker: Option<Uuid>) -> ErrorEvent {
        self.queue = Some(queue.to_string());
        self.worker = worker;
        self
    }

    fn payload(&self) -> Value {
        let mut payload = json!({ "message": self.message, "code": self.code });
        if let Some(queue) = &self.queue {
            payload["queue"] = json!(queue);
        }
        if let Some(worker) = &self.worker {
            payload["worker"] = json!(worker);
        }
        payload
    }
}

impl From<&Error> for Event {
    fn from(err: &Error) -> Event {
        Event::Error(ErrorEvent::of(err))
    }
}

/// One warning: its type (the warning table's `type` column), message and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// pg-boss's warning type: `slow_query`, `queue_backlog`, `clock_skew`,
    /// `listen_notify_unavailable`, `invalid_schedule`, `handler_overrun` and the others it names.
    pub kind: &'static str,
    /// The message, as pg-boss words it.
    pub message: String,
    /// The details, a JSON object in pg-boss's shape for that type.
    pub data: Value,
}

impl Warning {
    /// The `warning` event's payload.
    pub fn payload(&self) -> Value {
        json!({ "message": self.message, "data": self.data })
    }
}

/// Where the engine reports events. Called from the engine's tasks: keep `emit` quick and
/// non-blocking (hand the event to a channel if there is more to do).
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event.
    fn emit(&self, event: Event);

    /// Reports a failure that has no caller to return to.
    fn error(&self, err: &Error) {
        self.emit(Event::from(err));
    }
}

/// An [`EventSink`] that drops every event, for callers that do not listen.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) {}
}
