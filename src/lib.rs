//! The Node.js binding: the only module that knows napi. Values cross as JSON text; engine
//! errors become JS errors here, as `CODE|SQLSTATE|message` that the JS entry turns into `Error`s.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{within_runtime_if_available, Function, Promise};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use serde_json::Value;

use pg_boss_engine::boss::{Boss, JobCommand, StopOptions};
use pg_boss_engine::config::BossConfig;
use pg_boss_engine::error::Error;
use pg_boss_engine::event::{Event, EventSink};
use pg_boss_engine::model::options::Options;
use pg_boss_engine::ops::commands::Stored;
use pg_boss_engine::ops::jobs::JobResultStatus;
use pg_boss_engine::worker::{HandlerFuture, HandlerOutcome, JobHandler, JobResult};

fn to_js(err: Error) -> napi::Error {
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
async fn run<T: Send + 'static>(
    work: impl std::future::Future<Output = pg_boss_engine::Result<T>> + Send + 'static,
) -> napi::Result<T> {
    match tokio::spawn(work).await {
        Ok(result) => result.map_err(to_js),
        Err(join) => Err(to_js(Error::internal(format!(
            "engine task failed: {join}"
        )))),
    }
}

fn parse(json: &str) -> napi::Result<Value> {
    serde_json::from_str(json).map_err(|e| to_js(e.into()))
}

fn parse_options(json: &str) -> napi::Result<Options> {
    match parse(json)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Options::new()),
        _ => Err(to_js(Error::invalid("options should be an object"))),
    }
}

/// Events go to one JS callback `(name, payloadJson)`; it is weak, so it never keeps Node alive.
type EventFn = ThreadsafeFunction<(String, String), (), (String, String), Status, false, true>;

struct JsEvents(EventFn);

impl JsEvents {
    fn send(&self, name: &str, payload: Value) {
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

/// A `work()` handler: a JS function `(jobsJson) => Promise<resultJson>` that never throws (the JS
/// entry wraps the user's handler). Strong while a worker holds it, released when the last
/// worker using it ends.
type HandlerFn = ThreadsafeFunction<String, Promise<String>, String, Status, false>;

struct JsHandler(Arc<HandlerFn>);

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

/// `{ ok: true, output }`, `{ ok: true, results: [{ id, status, output }] }` (a per-job answer) or
/// `{ ok: false, error }` as JSON text.
fn outcome_from_js(text: &str) -> HandlerOutcome {
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
fn job_result_from_js(item: &Value) -> Option<JobResult> {
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

/// Samples Node's side of the process for the registry: a JS function `(baseline) => Promise<json>`.
/// Weak, like the event callback: the registry's heartbeat must never keep Node alive.
type VitalsFn = ThreadsafeFunction<bool, Promise<String>, bool, Status, false, true>;

struct JsVitals(Arc<VitalsFn>);

impl pg_boss_engine::service::registry::Vitals for JsVitals {
    fn sample(&self, baseline: bool) -> pg_boss_engine::BoxFuture<'static, Option<Value>> {
        let tsfn = self.0.clone();
        Box::pin(async move {
            let text = tsfn.call_async_catch(baseline).await.ok()?.await.ok()?;
            serde_json::from_str::<Value>(&text)
                .ok()
                .filter(|v| v.is_object())
        })
    }
}

/// What the JS entry says about its process: `{ host, pid, nodeVersion, startedAt }` (epoch ms).
fn process_info(json: &str) -> napi::Result<pg_boss_engine::service::registry::ProcessInfo> {
    let value = parse(json)?;
    let mut info = pg_boss_engine::service::registry::ProcessInfo::current();
    if let Some(host) = value.get("host").and_then(Value::as_str) {
        info.host = host.to_string();
    }
    if let Some(pid) = value.get("pid").and_then(Value::as_u64) {
        info.pid = pid as u32;
    }
    if let Some(version) = value.get("nodeVersion").and_then(Value::as_str) {
        info.runtime_version = version.to_string();
    }
    if let Some(at) = value
        .get("startedAt")
        .and_then(Value::as_f64)
        .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
    {
        info.started_at = at;
    }
    Ok(info)
}

/// A caller's `db` for one call: the JS entry's `(token, requestJson) => Promise<answerJson>`,
/// which never rejects, runs `{ text, values }` on the db it registered under `token` and answers
/// `{ rows: [[column values]] }` or `{ error: { message, code, constraint, detail } }`. Weak: a
/// call in flight is awaited by its own promise, so this never needs to keep Node alive.
type CallerDbFn =
    ThreadsafeFunction<(u32, String), Promise<String>, (u32, String), Status, false, true>;

struct JsCallerDb {
    run: Arc<CallerDbFn>,
    token: u32,
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

#[napi]
pub struct NativeBoss {
    inner: Arc<Boss>,
    /// The JS event callback, also used directly for the binding's own flush markers.
    events: Arc<JsEvents>,
    caller_db: std::sync::OnceLock<Arc<CallerDbFn>>,
}

impl NativeBoss {
    /// The caller's db registered under `token`, for a call given the `db` option.
    fn caller(&self, token: Option<u32>) -> napi::Result<Option<JsCallerDb>> {
        let Some(token) = token else { return Ok(None) };
        let run = self
            .caller_db
            .get()
            .ok_or_else(|| to_js(Error::internal("no db runner was registered")))?;
        Ok(Some(JsCallerDb {
            run: run.clone(),
            token,
        }))
    }
}

#[napi]
impl NativeBoss {
    #[napi(constructor)]
    pub fn new(
        config_json: String,
        on_event: Function<(String, String), ()>,
    ) -> napi::Result<Self> {
        let config = BossConfig::from_value(&parse(&config_json)?).map_err(to_js)?;
        let events: EventFn = on_event
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        // The pool is created inside the engine's runtime, which sqlx needs even for a lazy pool.
        let events = Arc::new(JsEvents(events));
        let inner =
            within_runtime_if_available(|| Boss::new(config, events.clone())).map_err(to_js)?;
        Ok(NativeBoss {
            inner: Arc::new(inner),
            events,
            caller_db: std::sync::OnceLock::new(),
        })
    }

    #[napi]
    pub fn schema(&self) -> String {
        self.inner.config().schema.clone()
    }

    /// How to run a statement on a caller's `db` (see [`CallerDbFn`]).
    #[napi]
    pub fn set_caller_db(&self, run: Function<(u32, String), Promise<String>>) -> napi::Result<()> {
        let run: CallerDbFn = run
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        let _ = self.caller_db.set(Arc::new(run));
        Ok(())
    }

    /// Tells the registry about this Node process and how to sample it.
    #[napi]
    pub fn set_host(
        &self,
        process_json: String,
        vitals: Function<bool, Promise<String>>,
    ) -> napi::Result<()> {
        let process = process_info(&process_json)?;
        let vitals: VitalsFn = vitals
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        self.inner
            .set_host(pg_boss_engine::service::registry::Host {
                process,
                vitals: Some(Arc::new(JsVitals(Arc::new(vitals)))),
            });
        Ok(())
    }

    /// `attempt` is which try of `start({ attempts })` this is (1 when absent).
    #[napi]
    pub async fn start(&self, attempt: Option<u32>) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.start_attempt(attempt.unwrap_or(1).max(1)).await }).await
    }

    /// `getInstances()` as JSON text.
    #[napi]
    pub async fn get_instances(&self, limit: i64, after: Option<String>) -> napi::Result<String> {
        let boss = self.inner.clone();
        run(async move { boss.get_instances(limit, after).await }).await
    }

    /// Resolves true when the instance was running (so `stopped` is due).
    #[napi]
    pub async fn stop(&self, graceful: bool, close: bool, timeout_ms: f64) -> napi::Result<bool> {
        let options = StopOptions {
            graceful,
            close,
            timeout: Duration::from_millis(timeout_ms.max(0.0) as u64),
        };
        {
            let boss = self.inner.clone();
            run(async move { boss.stop(options).await }).await
        }
    }

    #[napi]
    pub async fn is_installed(&self) -> napi::Result<bool> {
        {
            let boss = self.inner.clone();
            run(async move { boss.is_installed().await }).await
        }
    }

    #[napi]
    pub async fn schema_version(&self) -> napi::Result<Option<i32>> {
        {
            let boss = self.inner.clone();
            run(async move { boss.schema_version().await }).await
        }
    }

    #[napi]
    pub async fn detect_schema_drift(&self) -> napi::Result<String> {
        {
            let boss = self.inner.clone();
            run(async move { boss.detect_schema_drift().await }).await
        }
    }

    #[napi]
    pub async fn create_queue(&self, name_json: String, options_json: String) -> napi::Result<()> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        {
            let boss = self.inner.clone();
            run(async move { boss.create_queue(&name, &options).await }).await
        }
    }

    #[napi]
    pub async fn update_queue(&self, name_json: String, options_json: String) -> napi::Result<()> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        {
            let boss = self.inner.clone();
            run(async move { boss.update_queue(&name, &options).await }).await
        }
    }

    #[napi]
    pub async fn delete_queue(&self, name_json: String) -> napi::Result<()> {
        let name = parse(&name_json)?;
        {
            let boss = self.inner.clone();
            run(async move { boss.delete_queue(&name).await }).await
        }
    }

    #[napi]
    pub async fn get_queues(
        &self,
        names: Option<Vec<String>>,
        limit: i64,
        after: Option<String>,
    ) -> napi::Result<String> {
        {
            let boss = self.inner.clone();
            run(async move { boss.get_queues(names, limit, after).await }).await
        }
    }

    #[napi]
    pub async fn send(
        &self,
        name: String,
        data_json: String,
        options_json: String,
        db: Option<u32>,
    ) -> napi::Result<Option<String>> {
        let (data, options, caller) = (parse(&data_json)?, parse(&options_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        let id = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .send(&name, data, Some(options))
                .await
        })
        .await?;
        Ok(id.map(|id| id.to_string()))
    }

    #[napi]
    pub async fn subscribe(&self, event: String, name: String) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.subscribe(&event, &name).await }).await
    }

    #[napi]
    pub async fn unsubscribe(&self, event: String, name: String) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.unsubscribe(&event, &name).await }).await
    }

    /// Resolves `{ subscribers, failures: [{ name, message }], sent: [[name, id]] }` as JSON text.
    #[napi]
    pub async fn publish(
        &self,
        event: String,
        data_json: String,
        options_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (data, options, caller) = (parse(&data_json)?, parse(&options_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        let report = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .publish(&event, data, Some(options))
                .await
        })
        .await?;
        let failures: Vec<Value> = report
            .failures
            .iter()
            .map(|(name, err)| serde_json::json!({ "name": name, "message": err.message }))
            .collect();
        Ok(serde_json::json!({ "subscribers": report.subscribers, "failures": failures, "sent": report.sent }).to_string())
    }

    #[napi]
    pub async fn insert(
        &self,
        name_json: String,
        jobs_json: String,
        return_id: bool,
        db: Option<u32>,
    ) -> napi::Result<Option<Vec<String>>> {
        let (name, caller) = (parse(&name_json)?, self.caller(db)?);
        let jobs = match parse(&jobs_json)? {
            Value::Array(jobs) => jobs,
            _ => return Err(to_js(Error::invalid("jobs argument should be an array"))),
        };
        let boss = self.inner.clone();
        let ids = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .insert(&name, &jobs, return_id)
                .await
        })
        .await?;
        Ok(ids.map(|ids| ids.iter().map(ToString::to_string).collect()))
    }

    #[napi]
    pub async fn fetch(
        &self,
        name_json: String,
        options_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (name, options, caller) = (
            parse(&name_json)?,
            parse_options(&options_json)?,
            self.caller(db)?,
        );
        let boss = self.inner.clone();
        run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .fetch(&name, &options)
                .await
        })
        .await
    }

    #[napi]
    pub async fn complete(
        &self,
        name_json: String,
        ids_json: String,
        data_json: String,
        include_queued: bool,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (name, ids, data, caller) = (
            parse(&name_json)?,
            parse(&ids_json)?,
            parse(&data_json)?,
            self.caller(db)?,
        );
        let boss = self.inner.clone();
        let response = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .complete(&name, &ids, &data, include_queued)
                .await
        })
        .await?;
        Ok(response.to_json().to_string())
    }

    #[napi]
    pub async fn fail(
        &self,
        name_json: String,
        ids_json: String,
        data_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (name, ids, data, caller) = (
            parse(&name_json)?,
            parse(&ids_json)?,
            parse(&data_json)?,
            self.caller(db)?,
        );
        let boss = self.inner.clone();
        let response = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .fail(&name, &ids, &data)
                .await
        })
        .await?;
        Ok(response.to_json().to_string())
    }

    #[napi]
    pub async fn get_job_by_id(
        &self,
        name_json: String,
        id: String,
        db: Option<u32>,
    ) -> napi::Result<Option<String>> {
        let (name, caller) = (parse(&name_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .get_job_by_id(&name, &id)
                .await
        })
        .await
    }

    #[napi]
    pub async fn find_jobs(
        &self,
        name_json: String,
        options_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (name, options, caller) = (
            parse(&name_json)?,
            parse_options(&options_json)?,
            self.caller(db)?,
        );
        let boss = self.inner.clone();
        run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .find_jobs(&name, &options)
                .await
        })
        .await
    }

    /// `update()`/`upsert()`: `request_json` is `{ name, data?, options? }`; resolves the response as JSON text.
    #[napi]
    pub async fn update(
        &self,
        request_json: String,
        upsert: bool,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (request, caller) = (parse(&request_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        Ok(run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .update(&request, upsert)
                .await
        })
        .await?
        .to_string())
    }

    #[napi]
    pub async fn get_blocked_keys(
        &self,
        name_json: String,
        limit: i64,
        after: Option<String>,
    ) -> napi::Result<Vec<String>> {
        let name = parse(&name_json)?;
        let boss = self.inner.clone();
        run(async move { boss.get_blocked_keys(&name, limit, after).await }).await
    }

    #[napi]
    pub fn work(
        &self,
        name_json: String,
        options_json: String,
        handler: Function<String, Promise<String>>,
    ) -> napi::Result<String> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        let tsfn: HandlerFn = handler
            .build_threadsafe_function()
            .callee_handled::<false>()
            .build()?;
        let handler = Arc::new(JsHandler(Arc::new(tsfn)));
        let id = within_runtime_if_available(|| self.inner.work(&name, &options, handler))
            .map_err(to_js)?;
        Ok(id.to_string())
    }

    #[napi]
    pub async fn off_work(
        &self,
        name_json: String,
        id: Option<String>,
        wait: bool,
    ) -> napi::Result<()> {
        let name = parse(&name_json)?;
        {
            let boss = self.inner.clone();
            run(async move { boss.off_work(&name, id.as_deref(), wait).await }).await
        }
    }

    /// `getWipData()` as JSON text.
    #[napi]
    pub fn wip(&self, include_internal: bool) -> String {
        Value::Array(self.inner.wip(include_internal)).to_string()
    }

    #[napi]
    pub fn is_maintaining(&self) -> bool {
        self.inner.is_maintaining()
    }

    /// The password a `password` function gave, before `start()`.
    #[napi]
    pub fn set_password(&self, password: String) -> napi::Result<()> {
        within_runtime_if_available(|| self.inner.set_password(password)).map_err(to_js)
    }

    /// Emits a marker behind every event already on its way, for the JS entry to wait on.
    #[napi]
    pub fn flush_events(&self, seq: u32) {
        // Through the same queue as the engine's events, so it arrives after every one before it.
        self.events
            .send("eventsFlushed", serde_json::json!({ "seq": seq }));
    }

    #[napi]
    pub fn set_wip_listening(&self, listening: bool) {
        self.inner.set_wip_listening(listening)
    }

    /// The queues job spies watch (all of them, each time the set changes).
    #[napi]
    pub fn set_spied_queues(&self, queues: Vec<String>) {
        self.inner.set_spied_queues(queues)
    }

    #[napi]
    pub fn notify_worker(&self, id: String) {
        self.inner.notify_worker(&id)
    }

    /// `method` is one of cancel, resume, retry, deleteJob, touch.
    #[napi]
    pub async fn job_command(
        &self,
        method: String,
        name_json: String,
        ids_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let command = JobCommand::from_method(&method)
            .ok_or_else(|| to_js(Error::internal(format!("unknown command {method}"))))?;
        let (name, ids, caller) = (parse(&name_json)?, parse(&ids_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        let response = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .job_command(command, &name, &ids)
                .await
        })
        .await?;
        let mut value = response.to_json();
        if matches!(command, JobCommand::Resume | JobCommand::Retry) {
            // pg-boss reports no settled ids for these two.
            value.as_object_mut().map(|o| o.remove("settled"));
        }
        Ok(value.to_string())
    }

    /// `which` is queued, stored or all; resolves the count, or null after a truncate.
    #[napi]
    pub async fn delete_stored_jobs(
        &self,
        name_json: String,
        which: String,
    ) -> napi::Result<Option<i64>> {
        let name = parse(&name_json)?;
        let which = match which.as_str() {
            "queued" => Stored::Queued,
            "stored" => Stored::Finished,
            _ => Stored::All,
        };
        let boss = self.inner.clone();
        run(async move { boss.delete_stored_jobs(Some(&name), which).await }).await
    }

    /// One supervision pass now (one queue, or all when `name_json` is null).
    #[napi]
    pub async fn supervise(&self, name_json: String) -> napi::Result<()> {
        let name = parse(&name_json)?;
        let boss = self.inner.clone();
        run(async move { boss.supervise(Some(&name)).await.map(|_| ()) }).await
    }

    /// `getQueueStats()` as JSON text: an array of datapoints, newest first.
    #[napi]
    pub async fn get_queue_stats(
        &self,
        name_json: String,
        options_json: String,
    ) -> napi::Result<String> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        let boss = self.inner.clone();
        run(async move { boss.get_queue_stats(&name, &options).await }).await
    }

    #[napi]
    pub async fn redrive(
        &self,
        name_json: String,
        options_json: String,
        preview: bool,
    ) -> napi::Result<String> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        let boss = self.inner.clone();
        Ok(
            run(async move { boss.redrive(&name, &options, preview).await })
                .await?
                .to_string(),
        )
    }

    /// `flow()`: resolves `[[ref, id], ...]` as JSON text, in input order.
    #[napi]
    pub async fn flow(&self, jobs_json: String) -> napi::Result<String> {
        let jobs = parse(&jobs_json)?;
        let boss = self.inner.clone();
        let ids = run(async move { boss.flow(&jobs).await }).await?;
        Ok(serde_json::json!(ids).to_string())
    }

    #[napi]
    pub async fn resolve_flow(&self) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.resolve_flow().await.map(|_| ()) }).await
    }

    #[napi]
    pub fn is_resolving_flow(&self) -> bool {
        self.inner.is_resolving_flow()
    }

    /// `getDependencies()` (`parents`) or `getDependents()`: resolves `[[name, id], ...]` as JSON text.
    #[napi]
    pub async fn dependencies(
        &self,
        parents: bool,
        name_json: String,
        id_json: String,
        options_json: String,
    ) -> napi::Result<String> {
        let (name, id, options) = (
            parse(&name_json)?,
            parse(&id_json)?,
            parse_options(&options_json)?,
        );
        let direction = if parents {
            pg_boss_engine::ops::flows::Direction::Parents
        } else {
            pg_boss_engine::ops::flows::Direction::Children
        };
        let boss = self.inner.clone();
        let refs =
            run(async move { boss.dependencies(direction, &name, &id, &options).await }).await?;
        let pairs: Vec<(String, String)> = refs
            .into_iter()
            .map(|r| (r.name, r.id.to_string()))
            .collect();
        Ok(serde_json::json!(pairs).to_string())
    }

    #[napi]
    pub fn is_timekeeping(&self) -> bool {
        self.inner.is_timekeeping()
    }

    #[napi]
    pub fn is_checking_skew(&self) -> bool {
        self.inner.is_checking_skew()
    }

    /// `request_json` is `{ name?, cron?, data?, options? }`, undefined fields left out.
    #[napi]
    pub async fn schedule(&self, request_json: String) -> napi::Result<()> {
        let request = parse(&request_json)?;
        let boss = self.inner.clone();
        run(async move { boss.schedule(&request).await }).await
    }

    #[napi]
    pub async fn unschedule(&self, name_json: String, key_json: String) -> napi::Result<()> {
        let (name, key) = (parse(&name_json)?, parse(&key_json)?);
        let boss = self.inner.clone();
        run(async move { boss.unschedule(&name, &key).await }).await
    }

    /// `key_json` is absent when the caller's key was undefined; `limit` absent reads every row.
    #[napi]
    pub async fn get_schedules(
        &self,
        name_json: String,
        key_json: Option<String>,
        limit: Option<i64>,
        after_name: Option<String>,
        after_key: Option<String>,
    ) -> napi::Result<String> {
        let name = parse(&name_json)?;
        let key = key_json.as_deref().map(parse).transpose()?;
        let after = after_name.zip(after_key);
        let boss = self.inner.clone();
        run(async move { boss.get_schedules(&name, key.as_ref(), limit, after).await }).await
    }

    /// Occurrences as epoch milliseconds; `from_ms` absent means this instance's database time.
    #[napi]
    pub fn preview_schedule(
        &self,
        cron_json: String,
        options_json: String,
        from_ms: Option<f64>,
    ) -> napi::Result<Vec<f64>> {
        let (cron, options) = (parse(&cron_json)?, parse_options(&options_json)?);
        let found = self
            .inner
            .preview_schedule(&cron, &options, from_ms.map(|ms| ms.floor() as i64))
            .map_err(to_js)?;
        Ok(found.into_iter().map(|ms| ms as f64).collect())
    }

    #[napi]
    pub fn is_bam_working(&self) -> bool {
        self.inner.is_bam_working()
    }

    #[napi]
    pub async fn get_bam_status(&self) -> napi::Result<String> {
        {
            let boss = self.inner.clone();
            run(async move { boss.get_bam_status().await }).await
        }
    }

    #[napi]
    pub async fn get_bam_entries(&self, limit: i64, after: Option<String>) -> napi::Result<String> {
        {
            let boss = self.inner.clone();
            run(async move { boss.get_bam_entries(limit, after).await }).await
        }
    }
}

/// The install script as SQL text, for `getConstructionPlans()`.
// Only JavaScript calls these: a unit-test build of the crate does not register them.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn construction_plans(schema: String, create_schema: bool) -> napi::Result<String> {
    pg_boss_engine::config::assert_schema_name(&schema).map_err(to_js)?;
    Ok(pg_boss_engine::schema::install::construction_plans(
        &schema,
        create_schema,
    ))
}

// Only JavaScript calls these: a unit-test build of the crate does not register them.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn uninstall_plans(schema: String) -> napi::Result<String> {
    pg_boss_engine::config::assert_schema_name(&schema).map_err(to_js)?;
    Ok(pg_boss_engine::schema::install::uninstall_plans(&schema))
}
