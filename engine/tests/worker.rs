//! Workers: a Rust `JobHandler` driven by `Boss::work`, settling, off_work and stop().

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use pg_boss_engine::model::insert::jobs_from_json;
use pg_boss_engine::model::work::WorkOptions;
use pg_boss_engine::{Boss, ErrorCode, HandlerFuture, HandlerOutcome, JobHandler, StopOptions};
use serde_json::{json, Value};
use uuid::Uuid;

/// Records every batch it is handed, waits `delay`, then answers `outcome`; notes when it was
/// called while a call before was still running.
struct Recorder {
    batches: Mutex<Vec<Value>>,
    outcome: HandlerOutcome,
    delay: Duration,
    running: Arc<AtomicUsize>,
    overlapped: AtomicBool,
}

/// Counts a call as running until its future ends or is dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Recorder {
    fn new(outcome: HandlerOutcome, delay: Duration) -> Arc<Recorder> {
        Arc::new(Recorder {
            batches: Mutex::new(Vec::new()),
            outcome,
            delay,
            running: Arc::default(),
            overlapped: AtomicBool::new(false),
        })
    }
    fn completing(output: Option<&str>) -> Arc<Recorder> {
        Recorder::new(
            HandlerOutcome::Completed(output.map(str::to_string)),
            Duration::ZERO,
        )
    }
    fn batches(&self) -> Vec<Value> {
        self.batches.lock().unwrap().clone()
    }
    fn calls(&self) -> usize {
        self.batches.lock().unwrap().len()
    }
    fn overlapped(&self) -> bool {
        self.overlapped.load(Ordering::SeqCst)
    }
}

impl JobHandler for Recorder {
    fn handle(&self, jobs_json: String) -> HandlerFuture {
        self.batches.lock().unwrap().push(parse(&jobs_json));
        if self.running.fetch_add(1, Ordering::SeqCst) > 0 {
            self.overlapped.store(true, Ordering::SeqCst);
        }
        let running = Running(self.running.clone());
        let outcome = self.outcome.clone();
        let delay = self.delay;
        Box::pin(async move {
            let _running = running;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            outcome
        })
    }
}

const FAST: &str = r#"{"pollingIntervalSeconds": 0.5}"#;

fn fast() -> WorkOptions {
    work_options(serde_json::from_str(FAST).unwrap())
}

async fn shut_down(boss: &Boss) {
    boss.stop(StopOptions {
        graceful: false,
        close: true,
        timeout: Duration::from_secs(1),
    })
    .await
    .unwrap();
}

async fn wait_for_state(
    pool: &sqlx::PgPool,
    schema: &str,
    id: Uuid,
    state: &str,
    timeout: Duration,
) -> bool {
    wait_until(timeout, || async {
        job_state(pool, schema, id).await.as_deref() == Some(state)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_handler_completes_jobs_with_its_output() {
    let (schema, boss) = started("wcomplete").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("w", no_opts())).await.unwrap();
    let id = boss
        .send("w", json!({"hello": "world"}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();

    let handler = Recorder::completing(Some("{\"v\":1}"));
    let worker_id = boss.work("w", fast(), handler.clone()).unwrap();
    assert!(
        wait_for_state(&pool, s, id, "completed", Duration::from_secs(5)).await,
        "the worker never completed the job"
    );

    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["output"], json!({"v": 1}));
    assert_eq!(job["retry_count"], 0);
    let batches = handler.batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0][0]["id"], id.to_string());
    assert_eq!(batches[0][0]["data"], json!({"hello": "world"}));
    assert_eq!(batches[0][0]["name"], "w");

    // The loop keeps polling: a job sent later is picked up too.
    let later = boss
        .send("w", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(wait_for_state(&pool, s, later, "completed", Duration::from_secs(5)).await);
    assert_eq!(handler.calls(), 2);

    let wip = boss.wip(false);
    assert_eq!(wip.len(), 1);
    assert_eq!(wip[0]["id"], worker_id.to_string());
    assert_eq!(wip[0]["name"], "w");
    shut_down(&boss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_stored_only_for_a_batch_of_one() {
    let (schema, boss) = started("wbatch").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("b", no_opts())).await.unwrap();
    let jobs: Vec<Value> = (0..3).map(|i| json!({"data": {"i": i}})).collect();
    let ids = boss
        .insert("b", &jobs_from_json(&jobs).unwrap(), true, None)
        .await
        .unwrap()
        .unwrap();

    let handler = Recorder::completing(Some("{\"v\":1}"));
    boss.work(
        "b",
        work_options(json!({"pollingIntervalSeconds": 0.5, "batchSize": 3})),
        handler.clone(),
    )
    .unwrap();
    for id in &ids {
        assert!(wait_for_state(&pool, s, *id, "completed", Duration::from_secs(5)).await);
    }
    let batches = handler.batches();
    assert_eq!(batches.len(), 1, "one batch of three: {batches:?}");
    assert_eq!(batches[0].as_array().unwrap().len(), 3);
    for id in &ids {
        assert_eq!(
            job_row(&pool, s, *id).await.unwrap()["output"],
            Value::Null,
            "a batch's output is not stored"
        );
    }
    shut_down(&boss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_puts_the_job_into_retry() {
    let (schema, boss) = started("wfail").await;
    let s = schema.as_str();
    let pool = db().await;
    // A long retry delay keeps the worker from picking the job up again during the test.
    boss.create_queue(&queue(
        "f",
        opts(json!({"retryLimit": 1, "retryDelay": 60})),
    ))
    .await
    .unwrap();
    let id = boss
        .send("f", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();

    let error = r#"{"name":"Error","message":"boom"}"#;
    let handler = Recorder::new(HandlerOutcome::Failed(error.to_string()), Duration::ZERO);
    boss.work("f", fast(), handler.clone()).unwrap();
    assert!(
        wait_for_state(&pool, s, id, "retry", Duration::from_secs(5)).await,
        "the job never went to retry"
    );

    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["output"], json!({"name": "Error", "message": "boom"}));
    assert_eq!(job["retry_count"], 0);
    let delay: f64 = sqlx::query_scalar(&format!(
        "SELECT extract(epoch FROM start_after - now())::float8 FROM {s}.job WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        delay > 50.0,
        "the retry waits out retryDelay, starts in {delay}s"
    );
    assert_eq!(handler.calls(), 1);
    shut_down(&boss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_work_stops_the_loop() {
    let (schema, boss) = started("woff").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("o", no_opts())).await.unwrap();
    let handler = Recorder::completing(None);
    boss.work("o", fast(), handler.clone()).unwrap();
    let first = boss
        .send("o", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        wait_for_state(&pool, s, first, "completed", Duration::from_secs(5)).await,
        "the worker is not running"
    );

    boss.off_work("o", None, true).await.unwrap();
    assert!(boss.wip(false).is_empty());
    let second = boss
        .send("o", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    // Two polling intervals and then some: a live loop would have claimed the job by then.
    let claimed = wait_until(Duration::from_millis(1300), || async {
        job_state(&pool, s, second).await.as_deref() != Some("created")
    });
    assert!(!claimed.await, "a stopped worker claimed a job");
    assert_eq!(handler.calls(), 1);
    shut_down(&boss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_work_by_id_stops_only_that_worker() {
    let (_schema, boss) = started("woffid").await;
    boss.create_queue(&queue("o", no_opts())).await.unwrap();
    let a = boss.work("o", fast(), Recorder::completing(None)).unwrap();
    let b = boss.work("o", fast(), Recorder::completing(None)).unwrap();
    assert_eq!(boss.wip(false).len(), 2);
    boss.off_work("o", Some(&a.to_string()), true)
        .await
        .unwrap();
    let wip = boss.wip(false);
    assert_eq!(wip.len(), 1);
    assert_eq!(wip[0]["id"], b.to_string());

    let err = boss
        .work("bad name", fast(), Recorder::completing(None))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    let err = WorkOptions::from_options(&opts(json!({"pollingIntervalSeconds": 0.1}))).unwrap_err();
    assert_eq!(
        err.message,
        "configuration assert: pollingIntervalSeconds must be at least every 500ms"
    );
    shut_down(&boss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_a_missing_queue_reports_errors() {
    let schema = TestSchema::new("wmissing");
    let (boss, events) = boss_with_events(&schema);
    boss.start().await.unwrap();
    boss.work("ghost", fast(), Recorder::completing(None))
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            !events.named("error").is_empty()
        })
        .await,
        "no error event"
    );
    let error = &events.named("error")[0];
    assert_eq!(error["code"], "PGBOSS_QUEUE_NOT_FOUND");
    assert_eq!(error["queue"], "ghost");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Queue ghost does not exist"),
        "{error}"
    );
    shut_down(&boss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_waits_for_a_quick_handler() {
    let (schema, boss) = started("wstopok").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("g", no_opts())).await.unwrap();
    let id = boss
        .send("g", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let handler = Recorder::new(
        HandlerOutcome::Completed(Some("{\"done\":true}".into())),
        Duration::from_millis(400),
    );
    boss.work("g", fast(), handler.clone()).unwrap();
    assert!(wait_for_state(&pool, s, id, "active", Duration::from_secs(5)).await);

    let started_at = Instant::now();
    let stopped = boss
        .stop(StopOptions {
            graceful: true,
            close: true,
            timeout: Duration::from_secs(10),
        })
        .await
        .unwrap();
    assert!(stopped);
    assert!(
        started_at.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        started_at.elapsed()
    );
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(
        job["state"], "completed",
        "the running handler was allowed to finish"
    );
    assert_eq!(job["output"], json!({"done": true}));

    // A stopped instance refuses new work, and a second stop has nothing to do.
    let err = boss.work("g", fast(), handler.clone()).unwrap_err();
    assert_eq!(err.message, "Workers are disabled. pg-boss is stopped");
    assert!(!boss.stop(StopOptions::default()).await.unwrap());
}

/// Sets its flag when dropped: tells whether a handler's future was dropped (aborted).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A handler that never finishes in time; its future raises `dropped` when it goes away.
struct Sleeper {
    dropped: Arc<AtomicBool>,
}

impl JobHandler for Sleeper {
    fn handle(&self, _jobs_json: String) -> HandlerFuture {
        let guard = DropFlag(self.dropped.clone());
        Box::pin(async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(20)).await;
            HandlerOutcome::Completed(None)
        })
    }
}

/// Sends a job, starts a `Sleeper` on it, waits until it is active, then stops gracefully with a
/// one-second timeout. Answers the job id, how long stop took, and the handler's drop flag.
async fn stop_while_a_handler_sleeps(
    boss: &Boss,
    pool: &sqlx::PgPool,
    schema: &str,
) -> (Uuid, Duration, Arc<AtomicBool>) {
    boss.create_queue(&queue("slow", no_opts())).await.unwrap();
    let id = boss
        .send("slow", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    boss.work(
        "slow",
        fast(),
        Arc::new(Sleeper {
            dropped: dropped.clone(),
        }),
    )
    .unwrap();
    assert!(
        wait_for_state(pool, schema, id, "active", Duration::from_secs(5)).await,
        "the job was never claimed"
    );

    let started_at = Instant::now();
    let stopped = boss
        .stop(StopOptions {
            graceful: true,
            close: true,
            timeout: STOP_TIMEOUT,
        })
        .await
        .unwrap();
    assert!(stopped);
    (id, started_at.elapsed(), dropped)
}

const STOP_TIMEOUT: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_returns_after_its_timeout() {
    let (schema, boss) = started("wstoptime").await;
    let pool = db().await;
    let (_id, took, _dropped) = stop_while_a_handler_sleeps(&boss, &pool, schema.as_str()).await;
    assert!(
        took >= STOP_TIMEOUT - Duration::from_millis(100),
        "stop returned before the timeout: {took:?}"
    );
    assert!(
        took < STOP_TIMEOUT + Duration::from_secs(3),
        "stop took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn graceful_stop_fails_jobs_whose_handler_outlives_the_timeout() {
    let (schema, boss) = started("wstop").await;
    let s = schema.as_str();
    let pool = db().await;
    let (id, took, dropped) = stop_while_a_handler_sleeps(&boss, &pool, s).await;
    assert!(
        took < STOP_TIMEOUT + Duration::from_secs(3),
        "stop took {took:?}"
    );

    let job = job_row(&pool, s, id).await.unwrap();
    assert!(
        matches!(job["state"].as_str(), Some("retry" | "failed")),
        "an abandoned job must be failed, it is {}",
        job["state"]
    );
    assert_eq!(job["state"], "retry", "retryLimit 2 leaves retries");
    assert_eq!(
        job["output"],
        json!({"value": "pg-boss shut down while active"})
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the abandoned handler must be dropped by stop()"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_expiration_fails_its_job_and_holds_the_worker_until_it_returns() {
    let (schema, boss) = started("woverrun").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue(
        "late",
        opts(json!({"expireInSeconds": 1, "retryLimit": 0})),
    ))
    .await
    .unwrap();
    let first = boss
        .send("late", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    // Answers a second after its expiration, and would complete the job if it were still held.
    let handler = Recorder::new(
        HandlerOutcome::Completed(Some("{\"late\":true}".into())),
        Duration::from_millis(2500),
    );
    boss.work("late", fast(), handler.clone()).unwrap();
    assert!(
        wait_for_state(&pool, s, first, "failed", Duration::from_secs(5)).await,
        "the overrun job was not failed"
    );
    let job = job_row(&pool, s, first).await.unwrap();
    assert_eq!(job["output"]["message"], "handler execution exceeded 1s");

    let second = boss
        .send("late", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || async { handler.calls() == 2 }).await,
        "the worker never fetched again"
    );
    assert_eq!(handler.batches()[1][0]["id"], second.to_string());
    assert!(
        !handler.overlapped(),
        "the worker fetched while its handler was still running"
    );
    assert_eq!(
        job_row(&pool, s, first).await.unwrap()["state"],
        "failed",
        "a late answer changed the failed job"
    );
    shut_down(&boss).await;
}
