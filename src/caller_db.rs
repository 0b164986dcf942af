//! pg-boss's `db` option: statements run through the caller's own `executeSql`.

use std::sync::Arc;

use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use serde_json::Value;

/// A caller's `db` for one call: the JS entry's `(token, requestJson) => Promise<answerJson>`,
/// which never rejects, runs `{ text, values }` on the db it registered under `token` and answers
/// `{ rows: [[column values]] }` or `{ error: { message, code, constraint, detail } }`. Weak: a
/// call in flight is awaited by its own promise, so this never needs to keep Node alive.
pub(crate) type CallerDbFn =
    ThreadsafeFunction<(u32, String), Promise<String>, (u32, String), Status, false, true>;

pub(crate) struct JsCallerDb {
    pub(crate) run: Arc<CallerDbFn>,
    pub(crate) token: u32,
}

impl pg_boss_engine::sql::exec::CallerDb for JsCallerDb {
    fn execute(&self, sql: &str, params: Vec<Value>) -> pg_boss_engine::sql::exec::CallerFuture {
        let (run, token) = (self.run.clone(), self.token);
        let request = serde_json::json!({ "text": sql, "values": params }).to_string();
        Box::pin(async move {
            let failed = |message: String| pg_boss_engine::sql::exec::CallerFailure {
                message,
                ..Default::default()
            };
            let text = match run.call_async_catch((token, request)).await {
                Ok(promise) => promise.await.map_err(|e| failed(e.reason))?,
                Err(e) => return Err(failed(e.reason)),
            };
            let answer: Value = serde_json::from_str(&text).map_err(|e| failed(e.to_string()))?;
            if let Some(error) = answer.get("error") {
                let field = |k: &str| error.get(k).and_then(Value::as_str).map(str::to_string);
                return Err(pg_boss_engine::sql::exec::CallerFailure {
                    message: field("message").unwrap_or_default(),
                    code: field("code"),
                    constraint: field("constraint"),
                    detail: field("detail"),
                });
            }
            let rows = answer
                .get("rows")
                .and_then(Value::as_array)
                .ok_or_else(|| failed("executeSql answered no rows".into()))?;
            Ok(rows
                .iter()
                .map(|row| row.as_array().cloned().unwrap_or_default())
                .collect())
        })
    }
}
