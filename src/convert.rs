//! Crossing the edge: engine errors become JS errors (`CODE|SQLSTATE|message`, which the JS entry
//! turns into `Error`s), engine work runs as its own Tokio task, and JSON text is parsed once here.

use napi::Status;
use serde_json::Value;

use pg_boss_engine::config::js::Options;
use pg_boss_engine::error::Error;

pub(crate) fn to_js(err: Error) -> napi::Error {
    napi::Error::new(
        Status::GenericFailure,
        format!(
            "{}|{}|{}",
            err.code.as_str(),
            err.sql_state.unwrap_or_default(),
            err.message
        ),
    )
}

/// Runs engine work as its own Tokio task, so the future handed to napi owns everything it uses.
pub(crate) async fn run<T: Send + 'static>(
    work: impl std::future::Future<Output = pg_boss_engine::Result<T>> + Send + 'static,
) -> napi::Result<T> {
    match tokio::spawn(work).await {
        Ok(result) => result.map_err(to_js),
        Err(join) => Err(to_js(Error::internal(format!(
            "engine task failed: {join}"
        )))),
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
