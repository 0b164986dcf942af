//! Settling under load: many workers bursting through one queue, batches failing mid-run, and
//! stop() while completed batches are still being settled (a bursting worker completes its last
//! batch in the statement that claims its next). Nothing may be lost, and nothing settled twice.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use pg_boss_engine::model::insert::jobs_from_json;
use pg_boss_engine::{HandlerFuture, HandlerOutcome, JobHandler, StopOptions};
use serde_json::{json, Value};
use sqlx::Row;
use tokio::sync::Notify;

/// Records every job it is handed. A batch holding a job whose `i + 1` is a multiple of `poison`,
/// handed over for the first time, fails as a whole (every job in it goes to retry); any other
/// batch completes. After `stop_after` batches it wakes `stop`.
struct Settler {
    handled: Mutex<HashMap<i64, usize>>,
    /// Every job of every failed batch, as often as it was in one.
    failed: Mutex<HashMap<i64, usize>>,
    poisoned: Mutex<HashSet<i64>>,
    poison: i64,
    batches: AtomicUsize,
    stop_after: usize,
    stop: Notify,
    stopping: AtomicBool,
}

impl Settler {
    fn new(poison: i64, stop_after: usize) -> Arc<Settler> {
        Arc::new(Settler {
            handled: Mutex::default(),
            failed: Mutex::default(),
            poisoned: Mutex::default(),
            poison,
            batches: AtomicUsize::new(0),
            stop_after,
            stop: Notify::new(),
            stopping: AtomicBool::new(false),
        })
    }

    fn handled(&self) -> HashMap<i64, usize> {
        self.handled.lock().unwrap().clone()
    }
}

impl JobHandler for Settler {
    fn handle(&self, jobs_json: String) -> HandlerFuture {
        let jobs: Vec<i64> = parse(&jobs_json)
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["data"]["i"].as_i64().unwrap())
            .collect();
        {
            let mut handled = self.handled.lock().unwrap();
            for i in &jobs {
                *handled.entry(*i).or_default() += 1;
            }
        }
        let fails = {
            let mut poisoned = self.poisoned.lock().unwrap();
            let fresh: Vec<i64> = jobs
                .iter()
                .copied()
                .filter(|i| (i + 1) % self.poison == 0 && !poisoned.contains(i))
                .collect();
            poisoned.extend(&fresh);
            !fresh.is_empty()
        };
        if fails {
            let mut failed = self.failed.lock().unwrap();
            for i in &jobs {
                *failed.entry(*i).or_default() += 1;
            }
        }
        if self.batches.fetch_add(1, Ordering::SeqCst) + 1 == self.stop_after {
            self.stopping.store(true, Ordering::SeqCst);
            self.stop.notify_one();
        }
        Box::pin(async move {
            // Give the other workers a turn, so that settles and claims interleave.
            tokio::task::yield_now().await;
            if fails {
                HandlerOutcome::Failed(r#"{"message":"poisoned"}"#.into())
            } else {
                HandlerOutcome::Completed(None)
            }
        })
    }
}

async fn insert_jobs(boss: &pg_boss_engine::Boss, queue: &str, total: i64) {
    let jobs: Vec<Value> = (0..total).map(|i| json!({"data": {"i": i}})).collect();
    for chunk in jobs.chunks(500) {
        let chunk = jobs_from_json(chunk).unwrap();
        boss.insert(queue, &chunk, false, None).await.unwrap();
    }
}

/// Each job's state and retry count, by its `i`.
async fn job_states(pool: &sqlx::PgPool, schema: &str, queue: &str) -> HashMap<i64, (String, i32)> {
    sqlx::query(&format!(
        "SELECT (data->>'i')::int8 AS i, state::text AS state, retry_count FROM {schema}.job WHERE name = $1"
    ))
    .bind(queue)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|row| (row.get("i"), (row.get("state"), row.get("retry_count"))))
    .collect()
}

fn bursting(batch_size: usize, concurrency: usize) -> pg_boss_engine::model::work::WorkOptions {
    work_options(json!({
        "batchSize": batch_size,
        "localConcurrency": concurrency,
        "burstWhenBatchFull": true,
        "pollingIntervalSeconds": 0.5,
    }))
}

/// `total` jobs worked with `options`, one batch in `poison` failing mid-run: every job ends
/// completed, handled once plus once for every failed batch it was in, with as many retries.
async fn every_job_settled_once(
    label: &str,
    total: i64,
    poison: i64,
    options: pg_boss_engine::model::work::WorkOptions,
) {
    let (schema, boss) = started(label).await;
    let s = schema.as_str();
    let pool = db().await;
    let queue_options = opts(json!({"retryLimit": 3, "retryDelay": 0}));
    boss.create_queue(&queue("many", queue_options))
        .await
        .unwrap();
    insert_jobs(&boss, "many", total).await;

    let handler = Settler::new(poison, usize::MAX);
    boss.work("many", options, handler.clone()).unwrap();
    let done = wait_until(Duration::from_secs(60), || async {
        let states = job_states(&pool, s, "many").await;
        states.len() == total as usize && states.values().all(|(state, _)| state == "completed")
    })
    .await;
    assert!(done, "every job completed");

    let handled = handler.handled();
    let failed = handler.failed.lock().unwrap().clone();
    assert!(!failed.is_empty(), "some batches failed");
    let states = job_states(&pool, s, "many").await;
    for i in 0..total {
        let failures = failed.get(&i).copied().unwrap_or(0);
        // Handled once, and once more for every failed batch it was in: never twice for one
        // attempt, so no batch was settled twice or lost its settle.
        assert_eq!(handled.get(&i).copied(), Some(1 + failures), "job {i}");
        assert_eq!(states[&i].1 as usize, failures, "retry count of job {i}");
    }
    boss.stop(StopOptions {
        graceful: true,
        close: true,
        timeout: Duration::from_secs(10),
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_bursting_workers_settle_every_job_once_with_failures_mid_run() {
    every_job_settled_once("settle_burst", 1200, 97, bursting(25, 6)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_polling_workers_share_the_completer_and_settle_every_job_once() {
    // No burst: every batch is settled through the instance's completer, while the other
    // workers' settles on the queue are in flight.
    let options = work_options(json!({
        "batchSize": 8,
        "localConcurrency": 12,
        "pollingIntervalSeconds": 0.5,
    }));
    every_job_settled_once("settle_shared", 600, 41, options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_while_completed_batches_are_being_settled_loses_nothing() {
    let (schema, boss) = started("settle_stop").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("halt", no_opts())).await.unwrap();
    let total = 2000;
    insert_jobs(&boss, "halt", total).await;

    // Never poisoned (no `i + 1` is a multiple of a number above the total): every batch completes.
    let handler = Settler::new(total + 1, 12);
    boss.work("halt", bursting(20, 4), handler.clone()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), handler.stop.notified())
        .await
        .expect("the workers to reach the stop");
    assert!(handler.stopping.load(Ordering::SeqCst));
    let stopped = boss
        .stop(StopOptions {
            graceful: true,
            close: true,
            timeout: Duration::from_secs(10),
        })
        .await
        .unwrap();
    assert!(stopped);

    // Every job a handler completed is committed as completed once stop() is done; no other job
    // is, none is left active, none was handed out twice.
    let handled = handler.handled();
    assert!(handled.values().all(|n| *n == 1), "a job was handled twice");
    let states = job_states(&pool, s, "halt").await;
    let completed: HashSet<i64> = states
        .iter()
        .filter(|(_, (state, _))| state == "completed")
        .map(|(i, _)| *i)
        .collect();
    let handed: HashSet<i64> = handled.keys().copied().collect();
    let mut unsettled: Vec<_> = handed
        .difference(&completed)
        .map(|i| (*i, states[i].clone()))
        .collect();
    unsettled.sort();
    assert!(
        unsettled.is_empty(),
        "handled, not completed: {unsettled:?}"
    );
    assert_eq!(completed, handed);
    assert!(
        states
            .values()
            .all(|(state, _)| state == "completed" || state == "created"),
        "{:?}",
        states
            .values()
            .filter(|(state, _)| state != "completed" && state != "created")
            .collect::<Vec<_>>()
    );
    assert!(
        completed.len() < total as usize,
        "stopped before the queue was empty"
    );
}
