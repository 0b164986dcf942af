//! Shared helpers for the integration tests: the database url, a throw-away schema per test,
//! a `Boss` constructor, a recording event sink, row readers and a polling helper.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pg_boss_engine::config::js::Options;
use pg_boss_engine::event::{Event, EventSink, NoEvents};
use pg_boss_engine::{Boss, BossConfig};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1/postgres".to_string())
}

/// A unique schema name (`rt_<label>_<hex>`) that is dropped, with everything in it, when the
/// guard goes out of scope — also when the test panics.
pub struct TestSchema {
    pub name: String,
}

impl TestSchema {
    pub fn new(label: &str) -> TestSchema {
        let hex = Uuid::new_v4().simple().to_string();
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        TestSchema {
            name: format!("rt_{label}_{}", &hex[..12]),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = database_url();
        // A fresh thread with its own runtime: Drop cannot await, and may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(async move {
                for _ in 0..5 {
                    let Ok(mut conn) = PgConnection::connect(&url).await else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    let sql = format!(
                        "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                    );
                    let dropped = conn.execute(sql.as_str()).await.is_ok();
                    let _ = conn.close().await;
                    if dropped {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                eprintln!("warning: could not drop test schema {name}");
            });
        })
        .join();
    }
}

/// The config these helpers use: every default but `schedule`, which would add the scheduler's
/// internal queue and its passes to every schema (tests/schedule.rs covers scheduling).
fn config(schema: &TestSchema) -> BossConfig {
    let options = serde_json::json!({ "connectionString": database_url(), "schema": schema.as_str(), "schedule": false });
    BossConfig::from_value(&options).expect("config")
}

/// A `Boss` on the test schema with every default (scheduling off) and no event listener.
pub fn boss(schema: &TestSchema) -> Boss {
    Boss::new(config(schema), Arc::new(NoEvents)).expect("boss")
}

/// A `Boss` whose events are recorded.
pub fn boss_with_events(schema: &TestSchema) -> (Boss, Arc<RecordingEvents>) {
    let events = Arc::new(RecordingEvents::default());
    (
        Boss::new(config(schema), events.clone()).expect("boss"),
        events,
    )
}

/// A started `Boss` on a fresh schema.
pub async fn started(label: &str) -> (TestSchema, Boss) {
    let schema = TestSchema::new(label);
    let boss = boss(&schema);
    boss.start().await.expect("start");
    (schema, boss)
}

#[derive(Default)]
pub struct RecordingEvents {
    pub events: Mutex<Vec<(String, Value)>>,
}

impl RecordingEvents {
    pub fn named(&self, event: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _)| e == event)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

impl EventSink for RecordingEvents {
    fn emit(&self, event: Event) {
        self.events
            .lock()
            .unwrap()
            .push((event.name().to_string(), event.payload()));
    }
}

/// A small pool of our own for reading rows back.
pub async fn db() -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&database_url())
        .await
        .expect("connect to the test database")
}

pub fn opts(value: Value) -> Options {
    match value {
        Value::Object(map) => map,
        other => panic!("options must be an object, got {other}"),
    }
}

pub fn no_opts() -> Options {
    Options::new()
}

pub fn name(s: &str) -> Value {
    Value::String(s.to_string())
}

/// `createQueue(name, options)` as the binding reads it; options it refuses fail the test.
pub fn queue(name: &str, options: Options) -> pg_boss_engine::model::queue::CreateQueue {
    pg_boss_engine::model::queue::CreateQueue::from_json(&Value::String(name.to_string()), &options)
        .expect("queue options")
}

/// One job row (any queue table) as JSON, via `to_jsonb`, so every column can be checked.
pub async fn job_row(pool: &PgPool, schema: &str, id: Uuid) -> Option<Value> {
    let sql = format!("SELECT to_jsonb(j)::text FROM {schema}.job j WHERE j.id = $1");
    let text: Option<String> = sqlx::query_scalar(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await
        .expect("read job");
    text.map(|t| serde_json::from_str(&t).expect("job json"))
}

pub async fn job_state(pool: &PgPool, schema: &str, id: Uuid) -> Option<String> {
    job_row(pool, schema, id)
        .await
        .map(|j| j["state"].as_str().unwrap().to_string())
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

pub async fn regclass_exists(pool: &PgPool, qualified: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(qualified)
        .fetch_one(pool)
        .await
        .expect("to_regclass")
}

/// Polls `check` until it answers true or `timeout` passes; answers whether it became true.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Parses the JSON text the engine answers with.
pub fn parse(text: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("invalid JSON from the engine ({e}): {text}"))
}

/// The ids of a fetch answer (a JSON array of jobs), in order.
pub fn ids_of(fetched: &str) -> Vec<Uuid> {
    parse(fetched)
        .as_array()
        .expect("fetch answers an array")
        .iter()
        .map(|j| Uuid::parse_str(j["id"].as_str().expect("job id")).expect("uuid"))
        .collect()
}

// The job calls take typed requests; these read them from the JSON a JavaScript caller passes.

pub fn send_options(options: Value) -> pg_boss_engine::model::send::SendOptions {
    pg_boss_engine::model::send::SendOptions::from_json(&options).expect("send options")
}

pub fn fetch_options(options: Value) -> pg_boss_engine::model::fetch::FetchRequest {
    pg_boss_engine::model::fetch::FetchRequest::from_options(&opts(options)).expect("fetch options")
}

pub fn work_options(options: Value) -> pg_boss_engine::model::work::WorkOptions {
    pg_boss_engine::model::work::WorkOptions::from_options(&opts(options)).expect("work options")
}

/// Jobs to settle or command: an id, ids, or `{ id, retryCount }` jobs.
pub fn targets(ids: Value) -> pg_boss_engine::model::targets::JobTargets {
    pg_boss_engine::model::targets::JobTargets::from_value(&ids, "complete").expect("job ids")
}
