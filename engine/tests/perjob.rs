//! Per-job results: the statement that settles each job of a batch on its own (`settle::settle_each`),
//! a Rust `JobHandler` answering `HandlerOutcome::PerJob`, and the settle reports job spies get.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use pg_boss_engine::model::insert::jobs_from_json;
use pg_boss_engine::model::settle::JobSettle;
use pg_boss_engine::ops::queues::{cached_in, Queue, QueueCache};
use pg_boss_engine::ops::settle::{settle_each, SettledEach};
use pg_boss_engine::sql::{Db, Statements};
use pg_boss_engine::worker::{NOT_A_RESULT_LIST, NO_DISPOSITION};
use pg_boss_engine::{
    Boss, BossConfig, HandlerFuture, HandlerOutcome, JobHandler, JobResult, JobResultStatus,
    StopOptions,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// A started instance on a fresh schema without background passes, so the only statements on the
/// job tables are the test's own and its workers'.
async fn quiet(label: &str) -> (TestSchema, Boss, Arc<RecordingEvents>) {
    let schema = TestSchema::new(label);
    let options = json!({ "connectionString": database_url(), "schema": schema.as_str(), "supervise": false, "schedule": false });
    let events = Arc::new(RecordingEvents::default());
    let boss = Boss::new(BossConfig::from_value(&options).unwrap(), events.clone()).unwrap();
    boss.start().await.unwrap();
    (schema, boss, events)
}

/// The schema's statements on our own pool, as operations take them.
fn jobs_db(pool: &PgPool, schema: &str) -> Db {
    Db {
        handle: pg_boss_engine::sql::exec::Handle::Pool(pool.clone()),
        mode: Default::default(),
        sql: Arc::new(Statements::new(schema)),
        lost: None,
    }
}

async fn queue_info(pool: &PgPool, schema: &str, queue: &str) -> std::sync::Arc<Queue> {
    cached_in(&jobs_db(pool, schema), &QueueCache::default(), queue)
        .await
        .expect("queue")
}

/// Sends one job per data value and fetches them all: their ids in sending order.
async fn fetched(boss: &Boss, queue: &str, datas: &[Value]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for data in datas {
        ids.push(
            boss.send(queue, data.clone(), Default::default(), None)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let claimed = ids_of(
        &boss
            .fetch(
                queue,
                &fetch_options(json!({"batchSize": datas.len()})),
                None,
            )
            .await
            .unwrap(),
    );
    assert_eq!(claimed.len(), ids.len());
    ids
}

fn settle(id: Uuid, retry_count: i32, status: JobResultStatus, output: Option<Value>) -> JobSettle {
    JobSettle {
        id,
        retry_count: Some(retry_count),
        status,
        output: output.map(|o| o.to_string()),
    }
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_each_gives_every_job_its_own_outcome() {
    let (schema, boss, _) = quiet("pjeach").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("graveyard", no_opts()))
        .await
        .unwrap();
    boss.create_queue(&queue(
        "q",
        opts(json!({"retryLimit": 2, "deadLetter": "graveyard"})),
    ))
    .await
    .unwrap();
    let ids = fetched(
        &boss,
        "q",
        &[
            json!({"n": 1}),
            json!({"n": 2}),
            json!({"n": 3}),
            json!({"n": 4}),
        ],
    )
    .await;
    let queue = queue_info(&pool, s, "q").await;

    let settled = settle_each(
        &jobs_db(&pool, s),
        &queue,
        &[
            settle(
                ids[0],
                0,
                JobResultStatus::Completed,
                Some(json!({"sum": 1})),
            ),
            settle(
                ids[1],
                0,
                JobResultStatus::Failed,
                Some(json!({"reason": "bad"})),
            ),
            settle(
                ids[2],
                0,
                JobResultStatus::DeadLetter,
                Some(json!({"reason": "poison"})),
            ),
            settle(ids[3], 0, JobResultStatus::Completed, None),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        sorted(settled.completed.clone()),
        sorted(vec![ids[0], ids[3]])
    );
    assert_eq!(settled.failed, vec![ids[1]]);
    assert_eq!(settled.dead_lettered, vec![ids[2]]);

    let done = job_row(&pool, s, ids[0]).await.unwrap();
    assert_eq!(
        (done["state"].as_str(), &done["output"]),
        (Some("completed"), &json!({"sum": 1}))
    );
    assert!(!done["completed_on"].is_null());
    let retried = job_row(&pool, s, ids[1]).await.unwrap();
    assert_eq!(
        (retried["state"].as_str(), &retried["output"]),
        (Some("retry"), &json!({"reason": "bad"}))
    );
    assert!(retried["completed_on"].is_null());
    // Two retries were left: deadletter fails it for good anyway.
    let dead = job_row(&pool, s, ids[2]).await.unwrap();
    assert_eq!(
        (
            dead["state"].as_str(),
            &dead["output"],
            &dead["retry_count"]
        ),
        (Some("failed"), &json!({"reason": "poison"}), &json!(0))
    );
    assert!(!dead["completed_on"].is_null());
    let silent = job_row(&pool, s, ids[3]).await.unwrap();
    assert_eq!(
        (silent["state"].as_str(), &silent["output"]),
        (Some("completed"), &Value::Null)
    );

    // Only the dead-lettered job reached the dead letter queue.
    let copies: Vec<(Uuid, String)> = sqlx::query_as(&format!(
        "SELECT source_id, source_output::text FROM {s}.job WHERE name = 'graveyard'"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].0, ids[2]);
    assert_eq!(parse(&copies[0].1), json!({"reason": "poison"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_each_is_fenced_to_the_fetched_attempt() {
    let (schema, boss, _) = quiet("pjfence").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("q", opts(json!({"retryLimit": 3}))))
        .await
        .unwrap();
    let ids = fetched(
        &boss,
        "q",
        &[
            json!({"n": 1}),
            json!({"n": 2}),
            json!({"n": 3}),
            json!({"n": 4}),
        ],
    )
    .await;
    let queue = queue_info(&pool, s, "q").await;
    // Job 1 is settled by someone else first; job 2 is named at an attempt that was never fetched.
    boss.complete(
        "q",
        &targets(json!(ids[0].to_string())),
        Some(&json!({"first": true}).to_string()),
        false,
        None,
    )
    .await
    .unwrap();

    let settled = settle_each(
        &jobs_db(&pool, s),
        &queue,
        &[
            settle(
                ids[0],
                0,
                JobResultStatus::Failed,
                Some(json!({"late": true})),
            ),
            settle(
                ids[1],
                1,
                JobResultStatus::DeadLetter,
                Some(json!({"wrong": "attempt"})),
            ),
            settle(
                ids[2],
                0,
                JobResultStatus::Completed,
                Some(json!({"late": false})),
            ),
            settle(
                ids[3],
                2,
                JobResultStatus::Completed,
                Some(json!({"wrong": "attempt"})),
            ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        settled,
        SettledEach {
            completed: vec![ids[2]],
            failed: vec![],
            dead_lettered: vec![]
        }
    );

    let first = job_row(&pool, s, ids[0]).await.unwrap();
    assert_eq!(
        (first["state"].as_str(), &first["output"]),
        (Some("completed"), &json!({"first": true}))
    );
    for id in [ids[1], ids[3]] {
        let job = job_row(&pool, s, id).await.unwrap();
        assert_eq!(
            (job["state"].as_str(), &job["output"]),
            (Some("active"), &Value::Null)
        );
    }
    assert_eq!(
        job_state(&pool, s, ids[2]).await.as_deref(),
        Some("completed")
    );

    // Settling the same attempts again changes nothing.
    let again = settle_each(
        &jobs_db(&pool, s),
        &queue,
        &[settle(ids[2], 0, JobResultStatus::Failed, None)],
    )
    .await
    .unwrap();
    assert_eq!(again, SettledEach::default());
    assert_eq!(
        job_state(&pool, s, ids[2]).await.as_deref(),
        Some("completed")
    );
    assert_eq!(
        settle_each(&jobs_db(&pool, s), &queue, &[]).await.unwrap(),
        SettledEach::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_each_settles_jobs_without_an_attempt_as_complete_and_fail_do() {
    let (schema, boss, _) = quiet("pjany").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("q", opts(json!({"retryLimit": 1}))))
        .await
        .unwrap();
    let active = fetched(
        &boss,
        "q",
        &[json!({"n": 1}), json!({"n": 2}), json!({"n": 3})],
    )
    .await;
    let mut queued = Vec::new();
    for n in [4, 5] {
        let id = boss.send("q", json!({ "n": n }), Default::default(), None);
        queued.push(id.await.unwrap().unwrap());
    }
    let queue = queue_info(&pool, s, "q").await;
    let any = |id, status, output: Option<Value>| JobSettle {
        retry_count: None,
        ..settle(id, 0, status, output)
    };

    let settled = settle_each(
        &jobs_db(&pool, s),
        &queue,
        &[
            any(active[0], JobResultStatus::Completed, Some(json!({"a": 1}))),
            any(active[1], JobResultStatus::Failed, Some(json!({"b": 2}))),
            // Beside them, a job fenced to an attempt it is not at.
            settle(active[2], 4, JobResultStatus::Completed, None),
            // Not started: a failure takes it, a completion does not.
            any(queued[0], JobResultStatus::Failed, None),
            any(queued[1], JobResultStatus::Completed, None),
        ],
    )
    .await
    .unwrap();
    assert_eq!(settled.completed, vec![active[0]]);
    assert_eq!(sorted(settled.failed), sorted(vec![active[1], queued[0]]));
    assert!(settled.dead_lettered.is_empty());

    let states = [
        (active[0], "completed"),
        (active[1], "retry"),
        (active[2], "active"),
        (queued[0], "retry"),
        (queued[1], "created"),
    ];
    for (id, state) in states {
        assert_eq!(job_state(&pool, s, id).await.as_deref(), Some(state));
    }
    let failed = job_row(&pool, s, active[1]).await.unwrap();
    assert_eq!(failed["output"], json!({"b": 2}));
}

/// The statements that write `job_common` while `settle` runs, by kind.
async fn statements_during(
    pool: &PgPool,
    schema: &str,
    settle: impl std::future::Future<Output = ()>,
) -> Vec<(String, i64)> {
    for sql in [
        format!("CREATE TABLE IF NOT EXISTS {schema}.statement_log (op text)"),
        format!(
            "CREATE OR REPLACE FUNCTION {schema}.log_statement() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO {schema}.statement_log VALUES (TG_OP); RETURN NULL; END $$"
        ),
        format!("DELETE FROM {schema}.statement_log"),
        format!(
            "CREATE TRIGGER log_statements AFTER INSERT OR UPDATE OR DELETE ON {schema}.job_common
             FOR EACH STATEMENT EXECUTE FUNCTION {schema}.log_statement()"
        ),
    ] {
        sqlx::query(&sql).execute(pool).await.unwrap();
    }
    settle.await;
    sqlx::query(&format!(
        "DROP TRIGGER log_statements ON {schema}.job_common"
    ))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query_as(&format!(
        "SELECT op, count(*) FROM {schema}.statement_log GROUP BY op ORDER BY op"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_each_takes_as_many_statements_for_any_batch_size() {
    let (schema, boss, _) = quiet("pjstmts").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("graveyard", no_opts()))
        .await
        .unwrap();
    let statuses = [
        JobResultStatus::Completed,
        JobResultStatus::Failed,
        JobResultStatus::DeadLetter,
    ];
    let mut logs = Vec::new();
    for size in [3usize, 300] {
        let q = format!("q{size}");
        boss.create_queue(&queue(
            &q,
            opts(json!({"retryLimit": 1, "deadLetter": "graveyard"})),
        ))
        .await
        .unwrap();
        let queue = queue_info(&pool, s, &q).await;
        let jobs: Vec<Value> = (0..size).map(|i| json!({"data": {"i": i}})).collect();
        boss.insert(&q, &jobs_from_json(&jobs).unwrap(), false, None)
            .await
            .unwrap();
        let ids = ids_of(
            &boss
                .fetch(&q, &fetch_options(json!({"batchSize": size})), None)
                .await
                .unwrap(),
        );
        assert_eq!(ids.len(), size);
        let items: Vec<JobSettle> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| settle(*id, 0, statuses[i % 3], Some(json!({"i": i}))))
            .collect();
        let log = statements_during(&pool, s, async {
            let settled = settle_each(&jobs_db(&pool, s), &queue, &items)
                .await
                .unwrap();
            assert_eq!(
                settled.completed.len() + settled.failed.len() + settled.dead_lettered.len(),
                size
            );
        })
        .await;
        logs.push(log);
    }
    assert!(!logs[0].is_empty(), "the trigger saw no statement");
    assert_eq!(logs[0], logs[1]);
}

type Answer = Box<dyn Fn(&[(Uuid, Value)]) -> HandlerOutcome + Send + Sync>;

/// Answers every batch with what `answer` makes of the jobs' ids and data.
struct PerJobHandler {
    answer: Answer,
    batches: Mutex<Vec<Vec<Uuid>>>,
}

impl PerJobHandler {
    fn new(
        answer: impl Fn(&[(Uuid, Value)]) -> HandlerOutcome + Send + Sync + 'static,
    ) -> Arc<PerJobHandler> {
        Arc::new(PerJobHandler {
            answer: Box::new(answer),
            batches: Mutex::new(Vec::new()),
        })
    }
}

impl JobHandler for PerJobHandler {
    fn handle(&self, jobs_json: String) -> HandlerFuture {
        let jobs: Vec<(Uuid, Value)> = parse(&jobs_json)
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                (
                    Uuid::parse_str(j["id"].as_str().unwrap()).unwrap(),
                    j["data"].clone(),
                )
            })
            .collect();
        self.batches
            .lock()
            .unwrap()
            .push(jobs.iter().map(|(id, _)| *id).collect());
        let outcome = (self.answer)(&jobs);
        Box::pin(async move { outcome })
    }
}

fn by_key(jobs: &[(Uuid, Value)], key: &str) -> Uuid {
    jobs.iter()
        .find(|(_, data)| data["key"] == key)
        .map(|(id, _)| *id)
        .expect("job with that key")
}

fn result(id: Uuid, status: JobResultStatus, output: Value) -> JobResult {
    JobResult {
        id,
        status,
        output: Some(output.to_string()),
    }
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

async fn until_none_active(pool: &PgPool, schema: &str, ids: &[Uuid]) {
    let sql = format!("SELECT count(*) FROM {schema}.job WHERE id = ANY('{{{}}}'::uuid[]) AND state IN ('created', 'active')",
        ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","));
    let settled = wait_until(Duration::from_secs(10), || async {
        count(pool, &sql).await == 0
    })
    .await;
    assert!(settled, "the batch was never settled");
}

const ONE_BATCH: &str = r#"{"batchSize": 10, "pollingIntervalSeconds": 30, "perJobResults": true}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_handler_settles_each_job_with_its_own_result() {
    let (schema, boss, _) = quiet("pjrust").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("q", opts(json!({"retryLimit": 0}))))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for key in ["done", "failed", "omitted", "twice"] {
        ids.push(
            boss.send("q", json!({"key": key}), Default::default(), None)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let handler = PerJobHandler::new(|jobs| {
        HandlerOutcome::PerJob(vec![
            result(
                by_key(jobs, "done"),
                JobResultStatus::Completed,
                json!({"ok": true}),
            ),
            result(
                by_key(jobs, "failed"),
                JobResultStatus::Failed,
                json!({"ok": false}),
            ),
            result(
                Uuid::new_v4(),
                JobResultStatus::Completed,
                json!({"stranger": true}),
            ),
            result(
                by_key(jobs, "twice"),
                JobResultStatus::Failed,
                json!({"first": true}),
            ),
            result(
                by_key(jobs, "twice"),
                JobResultStatus::Completed,
                json!({"last": true}),
            ),
        ])
    });
    boss.work(
        "q",
        work_options(serde_json::from_str(ONE_BATCH).unwrap()),
        handler.clone(),
    )
    .unwrap();
    until_none_active(&pool, s, &ids).await;
    shut_down(&boss).await;

    assert_eq!(handler.batches.lock().unwrap().len(), 1);
    let rows: Vec<Value> = rows_of(&pool, s, &ids).await;
    assert_eq!(
        (rows[0]["state"].as_str(), &rows[0]["output"]),
        (Some("completed"), &json!({"ok": true}))
    );
    assert_eq!(
        (rows[1]["state"].as_str(), &rows[1]["output"]),
        (Some("failed"), &json!({"ok": false}))
    );
    assert_eq!(rows[2]["state"], "failed");
    assert_eq!(rows[2]["output"]["message"], NO_DISPOSITION);
    assert_eq!(
        (rows[3]["state"].as_str(), &rows[3]["output"]),
        (Some("completed"), &json!({"last": true}))
    );
}

async fn rows_of(pool: &PgPool, schema: &str, ids: &[Uuid]) -> Vec<Value> {
    let mut rows = Vec::new();
    for id in ids {
        rows.push(job_row(pool, schema, *id).await.expect("job"));
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_job_worker_fails_the_batch_on_an_answer_that_is_no_list() {
    let (schema, boss, _) = quiet("pjnolist").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("q", opts(json!({"retryLimit": 1}))))
        .await
        .unwrap();
    let a = boss
        .send("q", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let b = boss
        .send("q", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let handler =
        PerJobHandler::new(|_| HandlerOutcome::Completed(Some("{\"whole\":true}".into())));
    boss.work(
        "q",
        work_options(serde_json::from_str(ONE_BATCH).unwrap()),
        handler,
    )
    .unwrap();
    until_none_active(&pool, s, &[a, b]).await;
    shut_down(&boss).await;
    for id in [a, b] {
        let job = job_row(&pool, s, id).await.unwrap();
        assert_eq!(job["state"], "retry");
        assert_eq!(job["output"]["message"], NOT_A_RESULT_LIST);
        assert_eq!(job["output"]["name"], "Error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_job_answers_are_honoured_without_the_option() {
    let (schema, boss, _) = quiet("pjplain").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("q", opts(json!({"retryLimit": 0}))))
        .await
        .unwrap();
    let a = boss
        .send("q", json!({"key": "a"}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let b = boss
        .send("q", json!({"key": "b"}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let handler = PerJobHandler::new(|jobs| {
        HandlerOutcome::PerJob(vec![
            result(
                by_key(jobs, "a"),
                JobResultStatus::Completed,
                json!({"a": 1}),
            ),
            result(
                by_key(jobs, "b"),
                JobResultStatus::DeadLetter,
                json!({"b": 2}),
            ),
        ])
    });
    boss.work(
        "q",
        work_options(json!({"batchSize": 2, "pollingIntervalSeconds": 30})),
        handler,
    )
    .unwrap();
    until_none_active(&pool, s, &[a, b]).await;
    shut_down(&boss).await;
    assert_eq!(
        job_row(&pool, s, a).await.unwrap()["output"],
        json!({"a": 1})
    );
    assert_eq!(job_state(&pool, s, b).await.as_deref(), Some("failed"));
}

/// The `spy` events recorded so far, as `(queue, jobs)`.
fn spy_reports(events: &RecordingEvents) -> Vec<(String, Vec<Value>)> {
    events
        .named("spy")
        .into_iter()
        .filter(|e| e.get("jobs").is_some())
        .map(|e| {
            (
                e["queue"].as_str().unwrap().to_string(),
                e["jobs"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_report_settles_only_for_spied_queues() {
    let (schema, boss, events) = quiet("pjspy").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("spied", opts(json!({"retryLimit": 1}))))
        .await
        .unwrap();
    boss.create_queue(&queue("plain", no_opts())).await.unwrap();
    boss.set_spied_queues(vec!["spied".into()]);

    let mut ids = Vec::new();
    for key in ["done", "retry", "dead", "omitted"] {
        ids.push(
            boss.send("spied", json!({"key": key}), Default::default(), None)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let plain = boss
        .send("plain", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let handler = PerJobHandler::new(|jobs| {
        HandlerOutcome::PerJob(vec![
            result(
                by_key(jobs, "done"),
                JobResultStatus::Completed,
                json!({"ok": true}),
            ),
            result(
                by_key(jobs, "retry"),
                JobResultStatus::Failed,
                json!({"again": true}),
            ),
            result(
                by_key(jobs, "dead"),
                JobResultStatus::DeadLetter,
                json!({"dead": true}),
            ),
        ])
    });
    boss.work(
        "spied",
        work_options(serde_json::from_str(ONE_BATCH).unwrap()),
        handler,
    )
    .unwrap();
    let whole = PerJobHandler::new(|_| HandlerOutcome::Completed(None));
    boss.work(
        "plain",
        work_options(json!({"pollingIntervalSeconds": 30})),
        whole,
    )
    .unwrap();
    until_none_active(&pool, s, &ids).await;
    until_none_active(&pool, s, &[plain]).await;
    assert!(
        wait_until(Duration::from_secs(5), || async {
            !spy_reports(&events).is_empty()
        })
        .await,
        "no spy report"
    );
    shut_down(&boss).await;

    let reports = spy_reports(&events);
    assert_eq!(
        reports.len(),
        1,
        "only the spied queue reports: {reports:?}"
    );
    let (queue, jobs) = &reports[0];
    assert_eq!(queue, "spied");
    let of = |id: Uuid| {
        jobs.iter()
            .find(|j| j["id"] == id.to_string())
            .cloned()
            .expect("every job of the batch is in the report")
    };
    // Answered jobs take their spy output from the answer; the one with none from what was stored.
    assert_eq!(
        of(ids[0]),
        json!({"id": ids[0], "retryCount": 0, "state": "completed", "disposition": "completed"})
    );
    assert_eq!(
        of(ids[1]),
        json!({"id": ids[1], "retryCount": 0, "state": "failed", "disposition": "failed"})
    );
    assert_eq!(
        of(ids[2]),
        json!({"id": ids[2], "retryCount": 0, "state": "failed", "disposition": "deadletter"})
    );
    let omitted = of(ids[3]);
    assert_eq!(omitted["state"], "failed");
    assert_eq!(omitted["output"]["message"], NO_DISPOSITION);
    assert!(omitted.get("disposition").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spied_failure_is_reported_only_once_it_is_final() {
    let (schema, boss, events) = quiet("pjspyfail").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("q", opts(json!({"retryLimit": 1}))))
        .await
        .unwrap();
    boss.set_spied_queues(vec!["q".into()]);
    let id = boss
        .send("q", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let handler = PerJobHandler::new(|_| HandlerOutcome::Failed("{\"message\":\"boom\"}".into()));
    boss.work(
        "q",
        work_options(json!({"pollingIntervalSeconds": 0.5})),
        handler,
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || async {
            job_state(&pool, s, id).await.as_deref() == Some("failed")
        })
        .await
    );
    assert!(
        wait_until(Duration::from_secs(5), || async {
            spy_reports(&events).len() == 2
        })
        .await,
        "two attempts, two reports"
    );
    shut_down(&boss).await;

    let reports = spy_reports(&events);
    // The first failure left a retry: nothing to record.
    assert_eq!(
        reports[0].1,
        vec![json!({"id": id, "retryCount": 0, "state": null})]
    );
    assert_eq!(
        reports[1].1,
        vec![json!({"id": id, "retryCount": 1, "state": "failed", "output": {"message": "boom"}})]
    );
}
