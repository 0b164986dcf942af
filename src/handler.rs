//! `work()` handlers: a JS function the engine calls with a batch and whose promise it awaits.

use std::sync::Arc;

use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use serde_json::Value;

use pg_boss_engine::model::settle::JobResultStatus;
use pg_boss_engine::worker::{HandlerFuture, HandlerOutcome, HandlerTx, JobHandler, JobResult};

/// A `work()` handler: a JS function `(jobsJson) => Promise<resultJson>` that never throws (the JS
/// entry wraps the user's handler). Strong while a worker holds it, released when the last
/// worker using it ends.
pub(crate) type HandlerFn = ThreadsafeFunction<String, Promise<String>, String, Status, false>;

pub(crate) struct JsHandler(pub(crate) Arc<HandlerFn>);

impl JobHandler for JsHandler {
    fn handle(&self, jobs_json: String) -> HandlerFuture {
        let tsfn = self.0.clone();
        Box::pin(async move {
            let answered = match tsfn.call_async_catch(jobs_json).await {
                Ok(promise) => promise.await,
                Err(err) => Err(err),
            };
            match answered {
                Ok(text) => outcome_from_js(&text),
                Err(err) => HandlerOutcome::Failed(
                    serde_json::json!({ "name": "Error", "message": err.reason }).to_string(),
                ),
            }
        })
    }
}

/// A transactional `work()` handler: a JS function `([jobsJson, token, callerKey]) =>
/// Promise<resultJson>` that never throws; `token` names the batch's transaction, on which the JS
/// entry's `tx` runs the handler's statements (`NativeBoss.executeInTransaction`), unless the
/// constructor's db opened it: then `callerKey` (0 otherwise) is the key the JS entry registered
/// that transaction under, and the statements go through it, while
/// `NativeBoss.handlerTransactionOpen(token)` says the handler may still use it.
pub(crate) type TxHandlerFn =
    ThreadsafeFunction<(String, u32, u32), Promise<String>, (String, u32, u32), Status, false>;

pub(crate) struct JsTxHandler(pub(crate) Arc<TxHandlerFn>);

impl JobHandler for JsTxHandler {
    /// Only called for a worker that is not transactional, which this handler never serves.
    fn handle(&self, _jobs_json: String) -> HandlerFuture {
        Box::pin(async {
            HandlerOutcome::Failed(
                serde_json::json!({ "name": "Error", "message": "a transactional handler needs its transaction" })
                    .to_string(),
            )
        })
    }

    fn handle_in_transaction(&self, jobs_json: String, tx: HandlerTx) -> HandlerFuture {
        let tsfn = self.0.clone();
        Box::pin(async move {
            let answered = match tsfn
                .call_async_catch((jobs_json, tx.token, tx.caller_key.unwrap_or(0)))
                .await
            {
                Ok(promise) => promise.await,
                Err(err) => Err(err),
            };
            match answered {
                Ok(text) => outcome_from_js(&text),
                Err(err) => HandlerOutcome::Failed(
                    serde_json::json!({ "name": "Error", "message": err.reason }).to_string(),
                ),
            }
        })
    }
}

/// `{ ok: true, output }`, `{ ok: true, results: [{ id, status, output }] }` (a per-job answer) or
/// `{ ok: false, error }` as JSON text.
pub(crate) fn outcome_from_js(text: &str) -> HandlerOutcome {
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if value.get("ok") == Some(&Value::Bool(true)) {
        if let Some(results) = value.get("results").and_then(Value::as_array) {
            return HandlerOutcome::PerJob(results.iter().filter_map(job_result_from_js).collect());
        }
        let output = value
            .get("output")
            .filter(|v| !v.is_null())
            .map(Value::to_string);
        HandlerOutcome::Completed(output)
    } else {
        let error = value.get("error").cloned().unwrap_or(Value::Null);
        HandlerOutcome::Failed(error.to_string())
    }
}

/// One item of a per-job answer, or `None` when it cannot name a job of the batch: pg-boss matches
/// ids by exact string, so only a canonical (lower case, hyphenated) uuid can, and an unknown
/// status counts as no answer at all.
pub(crate) fn job_result_from_js(item: &Value) -> Option<JobResult> {
    let text = item.get("id")?.as_str()?;
    let id = uuid::Uuid::parse_str(text)
        .ok()
        .filter(|id| id.hyphenated().to_string() == text)?;
    let status = JobResultStatus::from_name(item.get("status")?.as_str()?)?;
    let output = item
        .get("output")
        .filter(|v| !v.is_null())
        .map(Value::to_string);
    Some(JobResult { id, status, output })
}
