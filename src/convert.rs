//! Crossing the edge: engine errors become JS errors (`CODE|SQLSTATE|message`, which the JS entry
//! turns into `Error`s), engine work runs as its own Tokio task, and JSON text is parsed once here.

use napi::Status;
use serde_json::Value;

use pg_boss_engine::config::js::Options;
use pg_boss_engine::error::Error;

pub(crate) fn to_js(err: Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, reason(&err))
}

/// An engine error as the text the JS entry reads (`CODE|SQLSTATE|message`).
pub(crate) fn reason(err: &Error) -> String {
    format!(
        "{}|{}|{}",
        err.code.as_str(),
        err.sql_state.as_deref().unwrap_or_default(),
        err.message
    )
}

/// Runs engine work as its own Tokio task, so the future handed to napi owns everything it uses.
///
/// The task is spawned when this is called, not when the returned future is first polled: the
/// future napi moves onto its runtime (on the JS thread, once per call) then holds only the task's
/// handle instead of the engine future itself, whose state can run to kilobytes.
pub(crate) fn run<T: Send + 'static>(
    work: impl std::future::Future<Output = pg_boss_engine::Result<T>> + Send + 'static,
) -> impl std::future::Future<Output = napi::Result<T>> {
    let task = tokio::spawn(work);
    async move {
        match task.await {
            Ok(result) => result.map_err(to_js),
            Err(join) => Err(to_js(Error::internal(format!(
                "engine task failed: {join}"
            )))),
        }
    }
}

pub(crate) fn parse(json: &str) -> napi::Result<Value> {
    serde_json::from_str(json).map_err(|e| to_js(e.into()))
}

pub(crate) fn parse_options(json: &str) -> napi::Result<Options> {
    match parse(json)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Options::new()),
        _ => Err(to_js(Error::invalid("options should be an object"))),
    }
}
