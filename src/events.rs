//! Engine events to the JS entry's one callback `(name, payloadJson)`.

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use serde_json::Value;

use pg_boss_engine::event::{Event, EventSink};

/// Events go to one JS callback `(name, payloadJson)`; it is weak, so it never keeps Node alive.
pub(crate) type EventFn =
    ThreadsafeFunction<(String, String), (), (String, String), Status, false, true>;

pub(crate) struct JsEvents(pub(crate) EventFn);

impl JsEvents {
    pub(crate) fn send(&self, name: &str, payload: Value) {
        self.0.call(
            (name.to_string(), payload.to_string()),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
}

impl EventSink for JsEvents {
    fn emit(&self, event: Event) {
        self.send(event.name(), event.payload());
    }
}
