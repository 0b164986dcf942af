//! Per-job results: the statement that settles each job of a batch on its own (`jobs::settle_each`).

mod common;

use std::sync::Arc;

use common::*;
use pg_boss_native::jobs::{settle_each, JobSettle, SettledEach};
use pg_boss_native::queues::{cached, QueueCache, QueueInfo};
use pg_boss_native::{Boss, BossConfig, JobResultStatus};
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

async fn queue_info(pool: &PgPool, schema: &str, queue: &str) -> QueueInfo {
    cached(pool, schema, &QueueCache::default(), queue).await.expect("queue")
}

/// Sends one job per data value and fetches them all: their ids in sending order.
async fn fetched(boss: &Boss, queue: &str, datas: &[Value]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for data in datas {
        ids.push(boss.send(queue, data.clone(), None).await.unwrap().unwrap());
    }
    let claimed = ids_of(&boss.fetch(&name(queue), &opts(json!({"batchSize": datas.len()}))).await.unwrap());
    assert_eq!(claimed.len(), ids.len());
    ids
}

fn settle(id: Uuid, retry_count: i32, status: JobResultStatus, output: Option<Value>) -> JobSettle {
    JobSettle { id, retry_count, status, output: output.map(|o| o.to_string()) }
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
    boss.create_queue(&name("graveyard"), &no_opts()).await.unwrap();
    boss.create_queue(&name("q"), &opts(json!({"retryLimit": 2, "deadLetter": "graveyard"}))).await.unwrap();
    let ids = fetched(&boss, "q", &[json!({"n": 1}), json!({"n": 2}), json!({"n": 3}), json!({"n": 4})]).await;
    let queue = queue_info(&pool, s, "q").await;

    let settled = settle_each(
        &pool,
        s,
        &queue,
        &[
            settle(ids[0], 0, JobResultStatus::Completed, Some(json!({"sum": 1}))),
            settle(ids[1], 0, JobResultStatus::Failed, Some(json!({"reason": "bad"}))),
            settle(ids[2], 0, JobResultStatus::DeadLetter, Some(json!({"reason": "poison"}))),
            settle(ids[3], 0, JobResultStatus::Completed, None),
        ],
    )
    .await
    .unwrap();
    assert_eq!(sorted(settled.completed.clone()), sorted(vec![ids[0], ids[3]]));
    assert_eq!(settled.failed, vec![ids[1]]);
    assert_eq!(settled.dead_lettered, vec![ids[2]]);

    let done = job_row(&pool, s, ids[0]).await.unwrap();
    assert_eq!((done["state"].as_str(), &done["output"]), (Some("completed"), &json!({"sum": 1})));
    assert!(!done["completed_on"].is_null());
    let retried = job_row(&pool, s, ids[1]).await.unwrap();
    assert_eq!((retried["state"].as_str(), &retried["output"]), (Some("retry"), &json!({"reason": "bad"})));
    assert!(retried["completed_on"].is_null());
    // Two retries were left: deadletter fails it for good anyway.
    let dead = job_row(&pool, s, ids[2]).await.unwrap();
    assert_eq!((dead["state"].as_str(), &dead["output"], &dead["retry_count"]), (Some("failed"), &json!({"reason": "poison"}), &json!(0)));
    assert!(!dead["completed_on"].is_null());
    let silent = job_row(&pool, s, ids[3]).await.unwrap();
    assert_eq!((silent["state"].as_str(), &silent["output"]), (Some("completed"), &Value::Null));

    // Only the dead-lettered job reached the dead letter queue.
    let copies: Vec<(Uuid, String)> = sqlx::query_as(&format!("SELECT source_id, source_output::text FROM {s}.job WHERE name = 'graveyard'"))
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
    boss.create_queue(&name("q"), &opts(json!({"retryLimit": 3}))).await.unwrap();
    let ids = fetched(&boss, "q", &[json!({"n": 1}), json!({"n": 2}), json!({"n": 3}), json!({"n": 4})]).await;
    let queue = queue_info(&pool, s, "q").await;
    // Job 1 is settled by someone else first; job 2 is named at an attempt that was never fetched.
    boss.complete(&name("q"), &json!(ids[0].to_string()), &json!({"first": true}), false).await.unwrap();

    let settled = settle_each(
        &pool,
        s,
        &queue,
        &[
            settle(ids[0], 0, JobResultStatus::Failed, Some(json!({"late": true}))),
            settle(ids[1], 1, JobResultStatus::DeadLetter, Some(json!({"wrong": "attempt"}))),
            settle(ids[2], 0, JobResultStatus::Completed, Some(json!({"late": false}))),
            settle(ids[3], 2, JobResultStatus::Completed, Some(json!({"wrong": "attempt"}))),
        ],
    )
    .await
    .unwrap();
    assert_eq!(settled, SettledEach { completed: vec![ids[2]], failed: vec![], dead_lettered: vec![] });

    let first = job_row(&pool, s, ids[0]).await.unwrap();
    assert_eq!((first["state"].as_str(), &first["output"]), (Some("completed"), &json!({"first": true})));
    for id in [ids[1], ids[3]] {
        let job = job_row(&pool, s, id).await.unwrap();
        assert_eq!((job["state"].as_str(), &job["output"]), (Some("active"), &Value::Null));
    }
    assert_eq!(job_state(&pool, s, ids[2]).await.as_deref(), Some("completed"));

    // Settling the same attempts again changes nothing.
    let again = settle_each(&pool, s, &queue, &[settle(ids[2], 0, JobResultStatus::Failed, None)]).await.unwrap();
    assert_eq!(again, SettledEach::default());
    assert_eq!(job_state(&pool, s, ids[2]).await.as_deref(), Some("completed"));
    assert_eq!(settle_each(&pool, s, &queue, &[]).await.unwrap(), SettledEach::default());
}

/// The statements that write `job_common` while `settle` runs, by kind.
async fn statements_during(pool: &PgPool, schema: &str, settle: impl std::future::Future<Output = ()>) -> Vec<(String, i64)> {
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
    sqlx::query(&format!("DROP TRIGGER log_statements ON {schema}.job_common")).execute(pool).await.unwrap();
    sqlx::query_as(&format!("SELECT op, count(*) FROM {schema}.statement_log GROUP BY op ORDER BY op")).fetch_all(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_each_takes_as_many_statements_for_any_batch_size() {
    let (schema, boss, _) = quiet("pjstmts").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&name("graveyard"), &no_opts()).await.unwrap();
    let statuses = [JobResultStatus::Completed, JobResultStatus::Failed, JobResultStatus::DeadLetter];
    let mut logs = Vec::new();
    for size in [3usize, 300] {
        let q = format!("q{size}");
        boss.create_queue(&name(&q), &opts(json!({"retryLimit": 1, "deadLetter": "graveyard"}))).await.unwrap();
        let queue = queue_info(&pool, s, &q).await;
        let jobs: Vec<Value> = (0..size).map(|i| json!({"data": {"i": i}})).collect();
        boss.insert(&name(&q), &jobs, false).await.unwrap();
        let ids = ids_of(&boss.fetch(&name(&q), &opts(json!({"batchSize": size}))).await.unwrap());
        assert_eq!(ids.len(), size);
        let items: Vec<JobSettle> = ids.iter().enumerate().map(|(i, id)| settle(*id, 0, statuses[i % 3], Some(json!({"i": i})))).collect();
        let log = statements_during(&pool, s, async {
            let settled = settle_each(&pool, s, &queue, &items).await.unwrap();
            assert_eq!(settled.completed.len() + settled.failed.len() + settled.dead_lettered.len(), size);
        })
        .await;
        logs.push(log);
    }
    assert!(!logs[0].is_empty(), "the trigger saw no statement");
    assert_eq!(logs[0], logs[1]);
}
