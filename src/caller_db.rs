//! pg-boss's `db` option: statements run through the caller's own `executeSql`, and, for a
//! transactional worker on the constructor's `db`, transactions open through its
//! `beginTransaction()`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use serde_json::{json, Value};

use pg_boss_engine::sql::exec::{
    CallerBeginFuture, CallerDb, CallerEndFuture, CallerFailure, CallerFuture, CallerTransaction,
};

/// A caller's `db` for one call: the JS entry's `(token, requestJson) => Promise<answerJson>`,
/// which never rejects. A request is `{ text, values }`, run on the db it registered under
/// `token`, answered `{ rows: [[column values]] }`; `{ begin: true }` opens a transaction on that
/// db, answered `{ key }` (the token its statements then go under); `{ end: 'commit' }` or
/// `{ end: 'rollback' }` ends the transaction registered under `token`. A failure is answered
/// `{ error: { message, code, constraint, detail } }`. Weak: a call in flight is awaited by its
/// own promise, so this never needs to keep Node alive.
pub(crate) type CallerDbFn =
    ThreadsafeFunction<(u32, String), Promise<String>, (u32, String), Status, false, true>;

/// What the constructor's db offers beyond `executeSql`, as the JS entry tells.
#[derive(Default)]
pub(crate) struct Offers {
    /// `beginTransaction()`.
    pub(crate) begin: AtomicBool,
    /// It is a `Db` of pg-boss's own making, whose pool transactional workers count against.
    pub(crate) pg_boss_pool: AtomicBool,
}

pub(crate) struct JsCallerDb {
    pub(crate) run: Arc<CallerDbFn>,
    pub(crate) token: u32,
    /// The constructor's db: what it offers. None for a per-call db.
    pub(crate) offers: Option<Arc<Offers>>,
}

fn failed(message: String) -> CallerFailure {
    CallerFailure {
        message,
        ..Default::default()
    }
}

/// Sends one request to the JS entry and answers its answer, or the failure it reports.
async fn ask(run: Arc<CallerDbFn>, token: u32, request: String) -> Result<Value, CallerFailure> {
    let text = match run.call_async_catch((token, request)).await {
        Ok(promise) => promise.await.map_err(|e| failed(e.reason))?,
        Err(e) => return Err(failed(e.reason)),
    };
    let answer: Value = serde_json::from_str(&text).map_err(|e| failed(e.to_string()))?;
    if let Some(error) = answer.get("error") {
        let field = |k: &str| error.get(k).and_then(Value::as_str).map(str::to_string);
        return Err(CallerFailure {
            message: field("message").unwrap_or_default(),
            code: field("code"),
            constraint: field("constraint"),
            detail: field("detail"),
        });
    }
    Ok(answer)
}

fn execute_on(run: &Arc<CallerDbFn>, token: u32, sql: &str, params: Vec<Value>) -> CallerFuture {
    let run = run.clone();
    let request = json!({ "text": sql, "values": params }).to_string();
    Box::pin(async move {
        let answer = ask(run, token, request).await?;
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

impl CallerDb for JsCallerDb {
    fn execute(&self, sql: &str, params: Vec<Value>) -> CallerFuture {
        execute_on(&self.run, self.token, sql, params)
    }

    fn can_begin(&self) -> bool {
        self.offers
            .as_ref()
            .is_some_and(|offers| offers.begin.load(Ordering::SeqCst))
    }

    fn begin(&self) -> CallerBeginFuture {
        let (run, token) = (self.run.clone(), self.token);
        Box::pin(async move {
            let answer = ask(run.clone(), token, json!({ "begin": true }).to_string()).await?;
            let key = answer
                .get("key")
                .and_then(Value::as_u64)
                .and_then(|key| u32::try_from(key).ok())
                .ok_or_else(|| failed("beginTransaction() answered no transaction".into()))?;
            let tx: Arc<dyn CallerTransaction> = Arc::new(JsCallerTx { run, key });
            Ok(tx)
        })
    }

    fn counts_pool_headroom(&self) -> bool {
        self.offers
            .as_ref()
            .is_some_and(|offers| offers.pg_boss_pool.load(Ordering::SeqCst))
    }
}

/// A transaction the constructor's db opened (its `beginTransaction()`), registered by the JS
/// entry under `key`.
struct JsCallerTx {
    run: Arc<CallerDbFn>,
    key: u32,
}

impl JsCallerTx {
    fn end(&self, how: &str) -> CallerEndFuture {
        let (run, key) = (self.run.clone(), self.key);
        let request = json!({ "end": how }).to_string();
        Box::pin(async move { ask(run, key, request).await.map(|_| ()) })
    }
}

impl CallerDb for JsCallerTx {
    fn execute(&self, sql: &str, params: Vec<Value>) -> CallerFuture {
        execute_on(&self.run, self.key, sql, params)
    }
}

impl CallerTransaction for JsCallerTx {
    fn commit(&self) -> CallerEndFuture {
        self.end("commit")
    }

    fn rollback(&self) -> CallerEndFuture {
        self.end("rollback")
    }

    fn key(&self) -> u32 {
        self.key
    }
}
