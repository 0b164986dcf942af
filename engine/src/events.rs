//! Where the engine reports what happens in the background (`error`, `stopped`, ...).

use serde_json::Value;

pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: &str, payload: Value);
}

/// For callers that do not listen.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &str, _payload: Value) {}
}
